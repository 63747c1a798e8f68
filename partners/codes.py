"""Single-use code pools: uploaded or generated, and handed out one per customer, safely under concurrency.

A code belongs to one pool of its tenant: the same code is never in two pools (or both a pool code
and another offer's shared code), so a redeemed code always names one offer.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    ForeignKeyConstraint,
    Index,
    Select,
    Table,
    UniqueConstraint,
    bindparam,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import ReturningUpdate
from sqlmodel import Field, Session, SQLModel

from partners import offers
from partners.db import UTCDateTime, utcnow
from partners.errors import Conflict, Invalid
from partners.ids import new_id
from partners.offer_rules import CodeMode, OfferState, normalize_code

# No 0/O, 1/I/L: codes are read off screens and typed in by people.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
GENERATED_LENGTH = 10
MAX_BATCH = 10_000
_PREFIX = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,9}$")
_CHUNK = 500
_FREE = "reserved_at IS NULL"


class OfferCode(SQLModel, table=True):
    __tablename__ = "offer_codes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code", name="uq_offer_codes_code"),
        ForeignKeyConstraint(["tenant_id", "offer_id"], ["offers.tenant_id", "offers.id"], ondelete="CASCADE"),
        # Handing out the next free code reads only this small index.
        Index(
            "ix_offer_codes_free", "tenant_id", "offer_id", "id", sqlite_where=text(_FREE), postgresql_where=text(_FREE)
        ),
        Index("ix_offer_codes_holder", "tenant_id", "offer_id", "reserved_for"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(default_factory=lambda: new_id("cod"), primary_key=True, max_length=40)
    offer_id: str = Field(max_length=40)
    code: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    reserved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reserved_for: str | None = Field(default=None, max_length=200)
    redeemed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


@dataclass(frozen=True)
class CodeCounts:
    total: int
    available: int


@dataclass(frozen=True)
class Upload:
    added: int
    already_in_pool: int


def _table() -> Table:
    table: Table = OfferCode.__table__  # type: ignore[attr-defined]
    return table


def _pool_offer(session: Session, tenant_id: str, offer_id: str) -> offers.Offer:
    offer = offers.get(session, tenant_id, offer_id, for_update=True)
    if offer.state == OfferState.archived:
        raise Conflict("This offer is archived; its codes can no longer change.", param="id")
    if offer.code_mode != CodeMode.pool:
        raise Conflict(
            f"This offer uses the '{offer.code_mode}' code mode; set codes.mode to 'pool' for single-use codes.",
            param="codes",
        )
    return offer


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def owners_of(session: Session, tenant_id: str, codes: Sequence[str]) -> dict[str, str]:
    """Which of the tenant's offers hold each of these codes, in a pool or as their shared code."""
    table, found = _table(), {}
    offer_table = offers.Offer.__table__  # type: ignore[attr-defined]
    for chunk in _chunks(codes):
        pooled = select(table.c.code, table.c.offer_id).where(table.c.tenant_id == tenant_id, table.c.code.in_(chunk))
        shared = select(offer_table.c.shared_code, offer_table.c.id).where(
            offer_table.c.tenant_id == tenant_id,
            offer_table.c.shared_code.in_(chunk),
            offer_table.c.state != OfferState.archived,
        )
        for statement in (pooled, shared):
            found.update({str(code): str(offer_id) for code, offer_id in session.execute(statement).all()})
    return found


def upload(session: Session, tenant_id: str, offer_id: str, raw_codes: Sequence[str]) -> Upload:
    """Add codes to the offer's pool: duplicates collapse, codes already in this pool are skipped,
    and codes held by another of the tenant's offers refuse the whole upload."""
    if not 1 <= len(raw_codes) <= MAX_BATCH:
        raise Invalid(f"Upload 1 to {MAX_BATCH} codes at a time.", param="codes")
    _pool_offer(session, tenant_id, offer_id)
    codes = list(dict.fromkeys(normalize_code(code) for code in raw_codes))
    owners = owners_of(session, tenant_id, codes)
    elsewhere = sorted(code for code, owner in owners.items() if owner != offer_id)
    if elsewhere:
        shown = ", ".join(elsewhere[:5]) + (f" and {len(elsewhere) - 5} more" if len(elsewhere) > 5 else "")
        raise Invalid(f"These codes are already used by another of your offers: {shown}.", param="codes")
    fresh = [code for code in codes if code not in owners]
    _insert(session, tenant_id, offer_id, fresh)
    return Upload(added=len(fresh), already_in_pool=len(codes) - len(fresh))


def generate(session: Session, tenant_id: str, offer_id: str, count: int, prefix: str = "") -> list[str]:
    """Make `count` new random codes in the offer's pool (unambiguous alphabet); the codes made."""
    if not 1 <= count <= MAX_BATCH:
        raise Invalid(f"Generate 1 to {MAX_BATCH} codes at a time.", param="count")
    prefix = prefix.strip().upper()
    if prefix and not _PREFIX.match(prefix):
        raise Invalid("A prefix is 1–10 letters, digits or '-'.", param="prefix")
    _pool_offer(session, tenant_id, offer_id)
    made: list[str] = []
    while len(made) < count:
        wanted = count - len(made)
        batch = {prefix + "".join(secrets.choice(ALPHABET) for _ in range(GENERATED_LENGTH)) for _ in range(wanted)}
        taken = owners_of(session, tenant_id, sorted(batch))
        made.extend(code for code in sorted(batch) if code not in taken and code not in made)
    _insert(session, tenant_id, offer_id, made)
    return made


def _insert(session: Session, tenant_id: str, offer_id: str, codes: Sequence[str]) -> None:
    if not codes:
        return
    now = utcnow()
    rows = [
        {"tenant_id": tenant_id, "id": new_id("cod"), "offer_id": offer_id, "code": c, "created_at": now} for c in codes
    ]
    try:
        for start in range(0, len(rows), _CHUNK):
            session.execute(insert(_table()), rows[start : start + _CHUNK])
    except IntegrityError as exc:
        raise Conflict("Some of these codes were added by another request meanwhile; retry.", param="codes") from exc


def counts(session: Session, tenant_id: str, offer_id: str) -> CodeCounts:
    """How many codes the offer's pool holds, and how many are not yet handed out."""
    table = _table()
    statement = select(func.count(), func.count().filter(table.c.reserved_at.is_(None))).where(
        table.c.tenant_id == tenant_id, table.c.offer_id == offer_id
    )
    total, available = session.execute(statement).one()
    return CodeCounts(int(total), int(available))


def has_available(session: Session, tenant_id: str, offer_id: str) -> bool:
    """Whether at least one code of the pool is not yet handed out."""
    table = _table()
    statement = select(table.c.id).where(
        table.c.tenant_id == tenant_id, table.c.offer_id == offer_id, table.c.reserved_at.is_(None)
    )
    return session.execute(statement.limit(1)).first() is not None


def reserve_code(
    session: Session, tenant_id: str, offer_id: str, customer_ref: str, *, now: datetime | None = None
) -> str | None:
    """The code to give `customer_ref` for the offer of `tenant_id` (the offering tenant), or None.

    Pool offers: the customer's unredeemed code if it already holds one, else a free code marked
    as reserved for it — one statement that two transactions can never both win for the same code
    (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so concurrent callers take different rows without
    waiting; SQLite: a single atomic UPDATE, writers being serialised). None when the pool is dry.
    Shared-code offers: the shared code. Offers without codes: None.
    """
    if not customer_ref or len(customer_ref) > 200:
        raise Invalid("customer_ref is 1–200 characters.", param="customer_ref")
    params = {"tenant": tenant_id, "offer": offer_id, "ref": customer_ref, "now": now or utcnow()}
    if session.get_bind().dialect.name == "postgresql":
        # One round trip: the held code if any, else a claimed one (the claim runs only without one).
        code: str | None = session.execute(_HELD_OR_CLAIMED, params).scalar()
        if code is not None:
            return code
    else:
        code = session.execute(_HELD, params).scalar()
        if code is None:
            code = session.execute(_CLAIM, params).scalar()
        if code is not None:
            return str(code)
    offer = session.get(offers.Offer, (tenant_id, offer_id))
    return offer.shared_code if offer is not None and offer.code_mode == CodeMode.shared else None


def _free() -> Select[tuple[str]]:
    table = _table()
    mine = (table.c.tenant_id == bindparam("tenant"), table.c.offer_id == bindparam("offer"))
    return select(table.c.id).where(*mine, table.c.reserved_at.is_(None)).order_by(table.c.id).limit(1)


def _claim(free: Select[tuple[str]]) -> ReturningUpdate[tuple[str]]:
    table = _table()
    return (
        update(table)
        .where(
            table.c.tenant_id == bindparam("tenant"),
            table.c.id == free.scalar_subquery(),
            table.c.reserved_at.is_(None),
        )
        .values(reserved_at=bindparam("now", type_=UTCDateTime()), reserved_for=bindparam("ref"))
        .returning(table.c.code)
    )


def _held() -> Select[tuple[str]]:
    table = _table()
    return (
        select(table.c.code)
        .where(
            table.c.tenant_id == bindparam("tenant"),
            table.c.offer_id == bindparam("offer"),
            table.c.reserved_for == bindparam("ref"),
            table.c.redeemed_at.is_(None),
        )
        .limit(1)
    )


def _held_or_claimed() -> Select[tuple[str]]:
    # PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent callers take different rows without
    # waiting. Both CTEs see the same snapshot: the claim is guarded by NOT EXISTS (held).
    held = _held().cte("held")
    free = _free().where(~exists(held.select())).with_for_update(skip_locked=True)
    claimed = _claim(free).cte("claimed")
    both = select(held.c.code).union_all(select(claimed.c.code)).subquery()
    return select(both.c.code).limit(1)


# Built once: SQLAlchemy caches their compiled form, and psycopg prepares them.
_HELD = _held()
_CLAIM = _claim(_free())
_HELD_OR_CLAIMED = _held_or_claimed()
# The PostgreSQL claim and the shared-code fallback, for a caller with its own connection (`exchange_async`).
HELD_OR_CLAIMED = _HELD_OR_CLAIMED


def _shared_code_query() -> Select[tuple[str, str | None]]:
    offer = offers.Offer.__table__  # type: ignore[attr-defined]
    return select(offer.c.code_mode, offer.c.shared_code).where(
        offer.c.tenant_id == bindparam("tenant"), offer.c.id == bindparam("offer")
    )


SHARED_CODE_QUERY = _shared_code_query()


def mark_redeemed(session: Session, tenant_id: str, code: str, *, now: datetime | None = None) -> str | None:
    """Mark a pool code used; the offer it belongs to, or None if no unredeemed pool code of the tenant matches."""
    table = _table()
    statement = (
        update(table)
        .where(
            table.c.tenant_id == tenant_id,
            table.c.code == normalize_code(code, param="code"),
            table.c.redeemed_at.is_(None),
        )
        .values(redeemed_at=now or utcnow())
        .returning(table.c.offer_id)
    )
    offer_id: str | None = session.execute(statement).scalar()
    return offer_id


def pool_codes_exist(session: Session, tenant_id: str, offer_id: str) -> bool:
    """Whether the offer's pool holds any code at all."""
    table = _table()
    statement = select(table.c.id).where(table.c.tenant_id == tenant_id, table.c.offer_id == offer_id).limit(1)
    return session.execute(statement).first() is not None


def shared_code_owner(session: Session, tenant_id: str, code: str) -> str | None:
    """The offer already holding this code (in a pool, or as its shared code), if any."""
    return owners_of(session, tenant_id, [code]).get(code)

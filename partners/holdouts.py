"""Holdouts: a share of a host's eligible customers who are never shown a partnership's (or one offer's) offers.

Who is held out is a stable keyed hash of (host, holdout, customer): the same customer stays in
the same group on every call, nobody without the platform key can tell the groups apart, and
one holdout's draw is independent of another's. A holdout keeps one share for life: a new share
ends it and starts a new one, so each report compares groups drawn alike. The exchange records
each customer's group the first time an offer under a holdout is eligible for them
(`HoldoutAssignment`), shown or not: reports compare those groups (see `holdout_report`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, Insert, Select, Table, bindparam, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col

from partners import partnerships, placements
from partners.db import (
    UTCDateTime,
    Write,
    execute_together,
    keyset_page,
    multirow_params,
    multirow_upsert,
    owned,
    utcnow,
)
from partners.errors import Conflict, Invalid, NotFound
from partners.ids import new_id

MAX_SHARE_BPS = 5000  # 50 %
WHOLE_PARTNERSHIP = "*"  # `offer_id` of a holdout that covers every offer of the partnership
_CONTEXT = b"partnerloop/holdout/v1\x00"
_ACTIVE = "ended_at IS NULL"


class Holdout(SQLModel, table=True):
    __tablename__ = "holdouts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "partnership_id"], ["partnerships.tenant_id", "partnerships.id"], ondelete="CASCADE"
        ),
        # At most one running holdout per partnership and offer; the exchange reads the host's running ones.
        Index(
            "uq_holdouts_running",
            "tenant_id",
            "partnership_id",
            "offer_id",
            unique=True,
            sqlite_where=text(_ACTIVE),
            postgresql_where=text(_ACTIVE),
        ),
    )

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")  # the host
    id: str = Field(default_factory=lambda: new_id("hld"), primary_key=True, max_length=40)
    partnership_id: str = Field(max_length=40)
    offer_id: str = Field(max_length=40)  # a partner's offer, or WHOLE_PARTNERSHIP
    share_bps: int  # 0–5000: hundredths of a percent held out
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class HoldoutAssignment(SQLModel, table=True):
    """A customer's group in a holdout, recorded when an offer under it was first eligible for them."""

    __tablename__ = "holdout_assignments"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "holdout_id"], ["holdouts.tenant_id", "holdouts.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"], ondelete="CASCADE"),
        Index("ix_holdout_assignments_time", "tenant_id", "holdout_id", "first_eligible_at"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40)
    holdout_id: str = Field(primary_key=True, max_length=40)
    customer_id: str = Field(primary_key=True, max_length=40)
    held_out: bool
    first_eligible_at: datetime = Field(sa_type=UTCDateTime)


def share_bps(percent: float | str | Decimal) -> int:
    """A share given in percent (up to two decimals) as basis points; Invalid outside 0–50 %."""
    try:
        value = Decimal(str(percent))
    except InvalidOperation as exc:
        raise Invalid("share_percent must be a number from 0 to 50.", param="share_percent") from exc
    if not value.is_finite() or not Decimal(0) <= value <= Decimal(50) or value != value.quantize(Decimal("0.01")):
        raise Invalid(
            "share_percent must be from 0 to 50 % (with up to two decimals): holding out more than half "
            "the customers would hide the offer from most of them.",
            param="share_percent",
        )
    return int(value * 100)


def bucket(key: bytes, host_tenant_id: str, holdout_id: str, customer_id: str) -> int:
    """The customer's stable draw in 0–9999 for this holdout (a keyed hash)."""
    message = _CONTEXT + f"{host_tenant_id}\x00{holdout_id}\x00{customer_id}".encode()
    digest = hmac.digest(key, message, hashlib.sha256)
    return int.from_bytes(digest[:8], "big") % 10_000


def is_held_out(key: bytes, host_tenant_id: str, holdout_id: str, customer_id: str, share: int) -> bool:
    """Whether the customer is in the held-out group (their draw falls below the share)."""
    return bucket(key, host_tenant_id, holdout_id, customer_id) < share


@dataclass(frozen=True, slots=True)
class RunningHoldout:
    id: str
    share_bps: int


def _running_query() -> Select[tuple[str, str, str, int]]:
    table: Table = Holdout.__table__  # type: ignore[attr-defined]
    return select(table.c.partnership_id, table.c.offer_id, table.c.id, table.c.share_bps).where(
        table.c.tenant_id == bindparam("host"), table.c.ended_at.is_(None)
    )


# The host's running holdouts (bind parameter `host`): one indexed read, built once so that the
# exchange's async path can prepare it and send it with its other reads.
RUNNING_QUERY = _running_query()


def running_of(rows: Iterable[Sequence[Any]]) -> dict[tuple[str, str], RunningHoldout]:
    """The running holdouts by (partnership id, offer id or WHOLE_PARTNERSHIP) from `RUNNING_QUERY`'s rows."""
    return {(str(p), str(o)): RunningHoldout(str(i), int(share)) for p, o, i, share in rows}


def running_for_host(session: Session, host_tenant_id: str) -> dict[tuple[str, str], RunningHoldout]:
    """The host's running holdouts by (partnership id, offer id or WHOLE_PARTNERSHIP)."""
    return running_of(session.execute(RUNNING_QUERY, {"host": host_tenant_id}).all())


def holdout_for(
    running: Mapping[tuple[str, str], RunningHoldout], partnership_id: str, offer_id: str
) -> RunningHoldout | None:
    """The holdout an offer falls under: its own, else its partnership's."""
    return running.get((partnership_id, offer_id)) or running.get((partnership_id, WHOLE_PARTNERSHIP))


_ASSIGNMENT_COLUMNS = ("tenant_id", "holdout_id", "customer_id", "held_out", "first_eligible_at")


def assignments_statement(
    dialect: str, host_tenant_id: str, customer_id: str, groups: Mapping[str, bool], now: datetime
) -> Write | None:
    """The insert recording the customer's group in each holdout unless recorded already (first
    eligibility counts), for a caller that writes more in the same round trip; None without groups."""
    if not groups:
        return None
    rows = [
        {
            "tenant_id": host_tenant_id,
            "holdout_id": holdout_id,
            "customer_id": customer_id,
            "held_out": held,
            "first_eligible_at": now,
        }
        for holdout_id, held in sorted(groups.items())
    ]
    return _assignments_insert(dialect, len(rows)), multirow_params(_ASSIGNMENT_COLUMNS, rows, "h")


@functools.cache
def _assignments_insert(dialect: str, count: int) -> Insert:
    table: Table = HoldoutAssignment.__table__  # type: ignore[attr-defined]
    return multirow_upsert(table, _ASSIGNMENT_COLUMNS, count, "h", dialect).on_conflict_do_nothing()


def assignments_write(
    session: Session, host_tenant_id: str, customer_id: str, groups: Mapping[str, bool], now: datetime
) -> None:
    """Record the customer's group in each holdout, unless recorded already (first eligibility counts)."""
    write = assignments_statement(session.get_bind().dialect.name, host_tenant_id, customer_id, groups, now)
    if write is not None:
        execute_together(session, [write])


def _check_partnership(session: Session, host_tenant_id: str, partnership_id: str) -> None:
    try:
        partnerships.get(session, host_tenant_id, partnership_id)
    except NotFound as exc:
        raise NotFound(f"No partnership with id '{partnership_id}'.", param="partnership_id") from exc


def set_share(
    session: Session, host_tenant_id: str, partnership_id: str, offer_id: str, share: int, now: datetime
) -> Holdout | None:
    """Hold out `share` basis points from now on; a different share ends the running holdout first.

    The same share again changes nothing; 0 ends the holdout. Returns the running holdout, if any.
    """
    if not 0 <= share <= MAX_SHARE_BPS:
        raise Invalid("share_percent must be from 0 to 50 %.", param="share_percent")
    query = owned(Holdout, host_tenant_id).where(
        col(Holdout.partnership_id) == partnership_id,
        col(Holdout.offer_id) == offer_id,
        col(Holdout.ended_at).is_(None),
    )
    running = session.exec(query.with_for_update()).first()
    if running is not None and running.share_bps == share:
        return running
    if running is not None:
        running.ended_at = now
        session.add(running)
        session.flush()
    if share == 0:
        return None
    started = Holdout(
        tenant_id=host_tenant_id, partnership_id=partnership_id, offer_id=offer_id, share_bps=share, started_at=now
    )
    try:
        with session.begin_nested():
            session.add(started)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "The holdout was changed at the same time; read it again and retry.", param="share_percent"
        ) from exc
    return started


def set_for_partnership(
    session: Session, host_tenant_id: str, partnership_id: str, share: int, now: datetime
) -> Holdout | None:
    """The holdout over every partner offer the host shows on this partnership."""
    _check_partnership(session, host_tenant_id, partnership_id)
    return set_share(session, host_tenant_id, partnership_id, WHOLE_PARTNERSHIP, share, now)


def set_for_offer(session: Session, host_tenant_id: str, offer_id: str, share: int, now: datetime) -> Holdout | None:
    """The holdout over one partner offer the host shows (it takes precedence over the partnership's)."""
    placement = placements.get_for_host(session, host_tenant_id, offer_id)
    return set_share(session, host_tenant_id, placement.partnership_id, offer_id, share, now)


def get(session: Session, host_tenant_id: str, holdout_id: str) -> Holdout:
    """One of the host's holdouts, running or ended."""
    found = session.get(Holdout, (host_tenant_id, holdout_id))
    if found is None:
        raise NotFound(f"No holdout with id '{holdout_id}'.", param="holdout_id")
    return found


def list_holdouts(
    session: Session, host_tenant_id: str, after: str | None, limit: int
) -> tuple[Sequence[Holdout], bool]:
    """The host's holdouts, running and ended, oldest first."""
    return keyset_page(session, owned(Holdout, host_tenant_id), Holdout, after, limit)

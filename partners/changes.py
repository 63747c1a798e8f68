"""Change feeds: a per-tenant change sequence, numbered at commit, that readers page through.

Writers call `touch(session, tenant, feed, key)` for each item whose representation changed; the
transaction's touches are numbered when it commits (a `before_commit` hook): for each tenant, in
tenant id order, the tenant's counter row is incremented (`UPDATE … RETURNING`, a row lock held
until the commit), and each touched item's row in `changes` is moved to a fresh number. So numbers
are handed out in commit order: a transaction that numbers after another waits until that one has
committed, and any snapshot sees, for each tenant, the numbers 1…k of committed changes and nothing
beyond. A reader that pages by `seq > cursor` therefore never skips a change, whichever transaction
began first. On SQLite writes are serialized, which gives the same order.

`changes` holds one row per item (the latest number wins), so a feed is compact: reading it returns
each changed item once, in the order of its last change, and the reader fetches its current state
(a missing item is a tombstone). Locking tenants in id order keeps concurrent writers deadlock-free.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Index, event, select, update
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Field, Session, SQLModel, col

from partners.db import UTCDateTime, upsert_insert, utcnow

_PENDING = "partnerloop.changes"


class Feed(StrEnum):
    offers = "offers"  # the tenant's own offers; key: offer id
    partner_offers = "partner_offers"  # partners' offers the tenant hosts; key: "<partnership id>/<offer id>"
    redemptions = "redemptions"  # either side's redemptions; key: "<offering tenant id>/<redemption id>"
    consent_events = "consent_events"  # the tenant's consent events; key: event row id (cev_…)


class ChangeCounter(SQLModel, table=True):
    """The last change number handed out for a tenant; its row lock orders the tenant's commits."""

    __tablename__ = "change_counters"

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    last_seq: int = Field(default=0, sa_type=BigInteger)


class Change(SQLModel, table=True):
    """An item of a tenant's feed, at the number of its latest change."""

    __tablename__ = "changes"
    __table_args__ = (Index("ix_changes_feed_seq", "tenant_id", "feed", "seq", unique=True),)

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    feed: str = Field(primary_key=True, max_length=20)
    key: str = Field(primary_key=True, max_length=100)
    seq: int = Field(sa_type=BigInteger)
    changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


@dataclass
class _Pending:
    keys: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    prefixes: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))


def _pending(session: OrmSession) -> _Pending:
    found = session.info.get(_PENDING)
    if found is None:
        found = session.info[_PENDING] = _Pending()
    assert isinstance(found, _Pending)
    return found


def touch(session: OrmSession, tenant_id: str, feed: Feed, key: str) -> None:
    """Mark an item of the tenant's feed as changed; it gets its number when the transaction commits."""
    _pending(session).keys[(tenant_id, feed)].add(key)


def touch_prefix(session: OrmSession, tenant_id: str, feed: Feed, prefix: str) -> None:
    """Mark every item already in the tenant's feed whose key starts with `prefix` as changed."""
    _pending(session).prefixes[(tenant_id, feed)].add(prefix)


def _expand(session: OrmSession, pending: _Pending) -> dict[str, dict[str, set[str]]]:
    """Touched keys by tenant and feed, prefixes resolved against the rows already there."""
    by_tenant: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for (tenant_id, feed), keys in pending.keys.items():
        by_tenant[tenant_id][feed] |= keys
    for (tenant_id, feed), prefixes in pending.prefixes.items():
        for prefix in prefixes:
            query = select(col(Change.key)).where(
                col(Change.tenant_id) == tenant_id,
                col(Change.feed) == feed,
                col(Change.key).startswith(prefix, autoescape=True),
            )
            by_tenant[tenant_id][feed] |= set(session.execute(query).scalars())
    return by_tenant


def _reserve(session: OrmSession, tenant_id: str, count: int) -> int:
    """Lock the tenant's counter and take `count` numbers; the first one."""
    table = ChangeCounter.__table__  # type: ignore[attr-defined]
    bump = update(table).where(table.c.tenant_id == tenant_id).values(last_seq=table.c.last_seq + count)
    last = session.execute(bump.returning(table.c.last_seq)).scalar()
    if last is None:
        # The tenant's first change: make the counter (racing writers both get here; one insert wins).
        session.execute(_insert(session, table).values(tenant_id=tenant_id, last_seq=0).on_conflict_do_nothing())
        last = session.execute(bump.returning(table.c.last_seq)).scalar_one()
    return int(last) - count + 1


def _insert(session: OrmSession, table: Any) -> Any:
    return upsert_insert(table, session.get_bind().dialect.name)


def _number(session: OrmSession, tenant_id: str, feeds: dict[str, set[str]], now: datetime) -> None:
    items = sorted((feed, key) for feed, keys in feeds.items() for key in keys)
    if not items:
        return
    first = _reserve(session, tenant_id, len(items))
    table = Change.__table__  # type: ignore[attr-defined]
    rows = [
        {"tenant_id": tenant_id, "feed": feed, "key": key, "seq": first + i, "changed_at": now}
        for i, (feed, key) in enumerate(items)
    ]
    upsert = _insert(session, table)
    upsert = upsert.on_conflict_do_update(
        index_elements=["tenant_id", "feed", "key"],
        set_={"seq": upsert.excluded.seq, "changed_at": upsert.excluded.changed_at},
    )
    session.execute(upsert, rows)


@event.listens_for(OrmSession, "before_commit")
def _number_at_commit(session: OrmSession) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: the outer transaction numbers everything when it commits
    pending = session.info.pop(_PENDING, None)
    if not isinstance(pending, _Pending):
        return
    now = utcnow()
    touched = _expand(session, pending)
    for tenant_id in sorted(touched):  # one lock order for everyone: no deadlocks between writers
        _number(session, tenant_id, touched[tenant_id], now)


@event.listens_for(OrmSession, "after_soft_rollback")
def _forget(session: OrmSession, previous: SessionTransaction) -> None:
    # A savepoint rolled back keeps the outer transaction's touches (a spare touch is harmless).
    if not previous.nested:
        session.info.pop(_PENDING, None)


@dataclass(frozen=True)
class Entry:
    seq: int
    key: str
    changed_at: datetime


def read(session: Session, tenant_id: str, feed: Feed, after: int, limit: int) -> tuple[list[Entry], bool]:
    """Up to `limit` items of the tenant's feed changed after number `after`, oldest change first."""
    query = (
        select(col(Change.seq), col(Change.key), col(Change.changed_at))
        .where(col(Change.tenant_id) == tenant_id, col(Change.feed) == feed, col(Change.seq) > after)
        .order_by(col(Change.seq))
        .limit(limit + 1)
    )
    rows = [Entry(int(seq), key, at) for seq, key, at in session.execute(query).all()]
    return rows[:limit], len(rows) > limit


def split_key(key: str) -> tuple[str, str]:
    """The two ids of a composite key ("<a>/<b>")."""
    first, _, second = key.partition("/")
    return first, second

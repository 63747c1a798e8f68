"""Running counts the exchange ranks by, kept up as impressions and redemptions are recorded.

Ranking needs each offer's observed conversion and each partnership's reciprocity balance on
every call; counting impression rows per request would grow with history. So they are counted
once, when the event happens, in its transaction:

- `offer_counters` (owned by the offering tenant): impressions of each offer at every host, and
  its redemptions net of reversals.
- `partnership_impressions` (owned by the host): impressions the host gave of its partner's
  offers on a partnership, one row per month and one for all time (`month = "all"`). What the
  partner gave back is the partner's own row of the same partnership id.

Writes are upserts that add to the row (`INSERT … ON CONFLICT DO UPDATE`), taken in key order so
two transactions never wait on each other's rows in opposite orders (no deadlocks).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKeyConstraint, Insert, Table, select
from sqlmodel import Field, Session, SQLModel

from partners.db import Write, execute_together, multirow_params, multirow_upsert

ALL_TIME = "all"


class OfferCounter(SQLModel, table=True):
    __tablename__ = "offer_counters"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "offer_id"], ["offers.tenant_id", "offers.id"], ondelete="CASCADE"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40)  # the offering tenant
    offer_id: str = Field(primary_key=True, max_length=40)
    impressions: int = Field(default=0, sa_type=BigInteger)
    redemptions: int = Field(default=0, sa_type=BigInteger)  # net of reversals


class PartnershipImpressions(SQLModel, table=True):
    __tablename__ = "partnership_impressions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "partnership_id"], ["partnerships.tenant_id", "partnerships.id"], ondelete="CASCADE"
        ),
    )

    tenant_id: str = Field(primary_key=True, max_length=40)  # the host that gave the impressions
    partnership_id: str = Field(primary_key=True, max_length=40)
    month: str = Field(primary_key=True, max_length=7)  # "YYYY-MM", or ALL_TIME
    given: int = Field(default=0, sa_type=BigInteger)


def month_of(at: datetime) -> str:
    """The ledger month ("YYYY-MM", UTC) of a time."""
    return f"{at.year:04d}-{at.month:02d}"


_Rows = dict[tuple[str, ...], dict[str, int]]
_OFFER_KEYS = ("tenant_id", "offer_id")
_PARTNERSHIP_KEYS = ("tenant_id", "partnership_id", "month")


@functools.cache
def _upsert(dialect: str, table: Table, keys: tuple[str, ...], amounts: tuple[str, ...], count: int) -> Insert:
    """Add-to-counter upsert of `count` rows with named parameters, built once per shape (so it is
    compiled once and prepared by psycopg); parameters are `{table}{i}_{column}`."""
    statement = multirow_upsert(table, (*keys, *amounts), count, table.name, dialect)
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: table.c[name] + statement.excluded[name] for name in amounts}
    )


def _write(dialect: str, table: Table, keys: tuple[str, ...], rows: _Rows) -> Write | None:
    """Add each row's amounts to its counters, creating missing rows: one statement, in key order."""
    if not rows:
        return None
    values = [dict(zip(keys, key, strict=True), **amounts) for key, amounts in sorted(rows.items())]
    amounts = tuple(name for name in values[0] if name not in keys)
    statement = _upsert(dialect, table, keys, amounts, len(values))
    return statement, multirow_params((*keys, *amounts), values, table.name)


def _add(session: Session, table: Table, keys: tuple[str, ...], rows: _Rows) -> None:
    write = _write(session.get_bind().dialect.name, table, keys, rows)
    if write is not None:
        execute_together(session, [write])


def impression_writes(
    dialect: str, host_tenant_id: str, shown: Iterable[tuple[str, str, str]], at: datetime
) -> list[Write]:
    """The upserts counting impressions just recorded, for a caller that writes more in the same round
    trip: `shown` holds (partnership id, offering tenant id, offer id)."""
    shown = list(shown)
    per_offer = Counter((offering, offer) for _, offering, offer in shown)
    per_partnership = Counter(partnership for partnership, _, _ in shown)
    offer_rows: _Rows = {key: {"impressions": n, "redemptions": 0} for key, n in per_offer.items()}
    month = month_of(at)
    partnership_rows: _Rows = {
        (host_tenant_id, partnership, period): {"given": n}
        for partnership, n in per_partnership.items()
        for period in (month, ALL_TIME)
    }
    offer_table: Table = OfferCounter.__table__  # type: ignore[attr-defined]
    partnership_table: Table = PartnershipImpressions.__table__  # type: ignore[attr-defined]
    writes = (
        _write(dialect, offer_table, _OFFER_KEYS, offer_rows),
        _write(dialect, partnership_table, _PARTNERSHIP_KEYS, partnership_rows),
    )
    return [w for w in writes if w is not None]


def count_impressions(
    session: Session, host_tenant_id: str, shown: Iterable[tuple[str, str, str]], at: datetime
) -> None:
    """Count impressions just recorded: `shown` holds (partnership id, offering tenant id, offer id)."""
    execute_together(session, impression_writes(session.get_bind().dialect.name, host_tenant_id, shown, at))


def count_redemption(session: Session, offering_tenant_id: str, offer_id: str, delta: int) -> None:
    """A redemption (+1) or its reversal (-1) of the offer."""
    rows: _Rows = {(offering_tenant_id, offer_id): {"impressions": 0, "redemptions": delta}}
    _add(session, OfferCounter.__table__, _OFFER_KEYS, rows)  # type: ignore[attr-defined]


def given_by_month(session: Session, tenant_id: str, partnership_id: str) -> dict[str, int]:
    """Impressions `tenant_id` gave on the partnership, per month (the all-time row left out)."""
    table = PartnershipImpressions.__table__  # type: ignore[attr-defined]
    rows = session.execute(
        select(table.c.month, table.c.given).where(
            table.c.tenant_id == tenant_id, table.c.partnership_id == partnership_id, table.c.month != ALL_TIME
        )
    ).all()
    return {str(month): int(given) for month, given in rows}


def offer_counts(session: Session, offering_tenant_id: str, offer_id: str) -> tuple[int, int]:
    """(impressions, redemptions net of reversals) of one offer."""
    row = session.get(OfferCounter, (offering_tenant_id, offer_id))
    return (row.impressions, row.redemptions) if row is not None else (0, 0)

"""The ledger: commissions owed by the offering partner to the host, per partnership and month.

Each redemption (and each reversal) writes one entry on each side in the redemption's transaction,
naming the redemption; amounts are signed (a reversal is negative) and `direction` says which way
the money goes from that side's point of view. `monthly` nets them per month and currency, beside
the impressions each side gave and received and the reciprocity balance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Index, func, select
from sqlmodel import Field, Session, SQLModel, col

from partners.db import UTCDateTime
from partners.ids import new_id
from partners.impressions import Impression, ReceivedImpression

if TYPE_CHECKING:
    from partners.redemptions import Redemption

COMMISSION = "commission"
REVERSAL = "reversal"
OWED_TO_ME = "owed_to_me"
OWED_BY_ME = "owed_by_me"


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_partnership_month", "tenant_id", "partnership_id", "month"),)

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(primary_key=True, max_length=40)
    partnership_id: str = Field(max_length=40)
    month: str = Field(max_length=7)
    redemption_id: str = Field(max_length=40)
    kind: str = Field(max_length=20)
    amount: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    direction: str = Field(max_length=20)
    created_at: datetime = Field(sa_type=UTCDateTime)


def month_of(at: datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}"


def post(session: Session, redemption: Redemption, kind: str, amount: int, at: datetime) -> None:
    """One entry for the offering side (it owes) and one for the host (it is owed)."""
    entry_id = new_id("led")
    for tenant_id, direction in ((redemption.tenant_id, OWED_BY_ME), (redemption.host_tenant_id, OWED_TO_ME)):
        session.add(
            LedgerEntry(
                tenant_id=tenant_id,
                id=entry_id,
                partnership_id=redemption.partnership_id,
                month=month_of(at),
                redemption_id=redemption.id,
                kind=kind,
                amount=amount,
                currency=redemption.currency,
                direction=direction,
                created_at=at,
            )
        )
    session.flush()


@dataclass
class Money:
    currency: str
    commissions: int = 0
    reversals: int = 0

    @property
    def net(self) -> int:
        return self.commissions + self.reversals


@dataclass
class Month:
    month: str
    owed_to_me: dict[str, Money] = field(default_factory=dict)
    owed_by_me: dict[str, Money] = field(default_factory=dict)
    impressions_given: int = 0
    impressions_received: int = 0

    @property
    def reciprocity_balance(self) -> int:
        """Impressions given minus received: positive when this side showed more than it got."""
        return self.impressions_given - self.impressions_received


def month_expression(session: Session, column: Any) -> Any:
    """'YYYY-MM' of a UTC timestamp column, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.strftime("%Y-%m", column)


def entries(session: Session, tenant_id: str, partnership_id: str) -> Sequence[LedgerEntry]:
    """Every entry of the partnership on this side, oldest first."""
    query = (
        select(LedgerEntry)
        .where(col(LedgerEntry.tenant_id) == tenant_id, col(LedgerEntry.partnership_id) == partnership_id)
        .order_by(col(LedgerEntry.created_at), col(LedgerEntry.id))
    )
    return list(session.execute(query).scalars())


def _impressions_by_month(
    session: Session, model: type[SQLModel], tenant_id: str, partnership_id: str
) -> dict[str, int]:
    table = model.__table__  # type: ignore[attr-defined]
    month = month_expression(session, table.c.created_at)
    rows = session.execute(
        select(month, func.count())
        .where(table.c.tenant_id == tenant_id, table.c.partnership_id == partnership_id)
        .group_by(month)
    ).all()
    return {str(m): int(n) for m, n in rows}


def monthly(session: Session, tenant_id: str, partnership_id: str) -> list[Month]:
    """Per month, newest first: commissions net of reversals each way, impressions given and received."""
    months: dict[str, Month] = {}

    def at(key: str) -> Month:
        return months.setdefault(key, Month(key))

    table = LedgerEntry.__table__  # type: ignore[attr-defined]
    rows = session.execute(
        select(table.c.month, table.c.direction, table.c.currency, table.c.kind, func.sum(table.c.amount))
        .where(table.c.tenant_id == tenant_id, table.c.partnership_id == partnership_id)
        .group_by(table.c.month, table.c.direction, table.c.currency, table.c.kind)
    ).all()
    for month, direction, currency, kind, total in rows:
        side = at(str(month)).owed_to_me if direction == OWED_TO_ME else at(str(month)).owed_by_me
        money = side.setdefault(str(currency), Money(str(currency)))
        if kind == REVERSAL:
            money.reversals += int(total)
        else:
            money.commissions += int(total)
    given = _impressions_by_month(session, Impression, tenant_id, partnership_id)
    received = _impressions_by_month(session, ReceivedImpression, tenant_id, partnership_id)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key, n in given.items():
        counts[key][0] = n
    for key, n in received.items():
        counts[key][1] = n
    for key, (g, r) in counts.items():
        month_row = at(key)
        month_row.impressions_given, month_row.impressions_received = g, r
    return sorted(months.values(), key=lambda m: m.month, reverse=True)

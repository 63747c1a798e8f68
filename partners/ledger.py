"""The ledger: commissions owed by the offering partner to the host, per partnership and month.

Each redemption (and each reversal) writes one entry on each side in the redemption's transaction,
naming the redemption; amounts are signed (a reversal is negative) and `direction` says which way
the money goes from that side's point of view. `monthly` nets them per month and currency, beside
the impressions each side gave and received and the reciprocity balance (from `partners.counters`:
what I gave is my counter row of the partnership, what I received is my partner's).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Index, func, select
from sqlmodel import Field, Session, SQLModel, col

from partners import counters, partnerships
from partners.db import UTCDateTime, keyset_page, owned
from partners.errors import Invalid
from partners.ids import new_id

if TYPE_CHECKING:
    from partners.redemptions import Redemption

COMMISSION = "commission"
REVERSAL = "reversal"
OWED_TO_ME = "owed_to_me"
OWED_BY_ME = "owed_by_me"
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


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
    """The ledger month ("YYYY-MM", UTC) of a time."""
    return counters.month_of(at)


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


def entries(
    session: Session,
    tenant_id: str,
    partnership_id: str,
    *,
    month: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> tuple[Sequence[LedgerEntry], bool]:
    """The partnership's entries on this side in id (= time) order, a page at a time, optionally of one month."""
    partnerships.get(session, tenant_id, partnership_id)
    query = owned(LedgerEntry, tenant_id).where(col(LedgerEntry.partnership_id) == partnership_id)
    if month is not None:
        if not _MONTH.match(month):
            raise Invalid("month is 'YYYY-MM'.", param="month")
        query = query.where(col(LedgerEntry.month) == month)
    return keyset_page(session, query, LedgerEntry, after, limit)


def monthly(session: Session, tenant_id: str, partnership_id: str) -> list[Month]:
    """Per month, newest first: commissions net of reversals each way, impressions given and received.

    NotFound unless the partnership is the tenant's.
    """
    partner_tenant_id = partnerships.get(session, tenant_id, partnership_id).partner_tenant_id
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
    given = counters.given_by_month(session, tenant_id, partnership_id)
    received = counters.given_by_month(session, partner_tenant_id, partnership_id)
    for key in given.keys() | received.keys():
        month_row = at(key)
        month_row.impressions_given, month_row.impressions_received = given.get(key, 0), received.get(key, 0)
    return sorted(months.values(), key=lambda m: m.month, reverse=True)

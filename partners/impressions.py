"""What the exchange showed: every answer, and each offer shown, stored for the host and the offering side.

The host's row names its customer; the offering side's row does not (it holds the impression
id, the offer, the code and the host), so no customer identity crosses tenants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import JSON, Index, Table, func, select
from sqlmodel import Field, Session, SQLModel

from partners import counters
from partners.db import UTCDateTime, Write, execute_together, multirow_insert, multirow_params


class ExchangeAnswer(SQLModel, table=True):
    """One call to the exchange: who asked about whom, for which placement, and what was decided."""

    __tablename__ = "exchange_answers"

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(primary_key=True, max_length=40)
    customer_id: str | None = Field(default=None, max_length=40)
    placement: str = Field(max_length=30)
    shown: int
    decisions: dict[str, int] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Impression(SQLModel, table=True):
    """An offer shown to one of the host's customers (the host's side)."""

    __tablename__ = "impressions"
    __table_args__ = (
        Index("ix_impressions_customer_time", "tenant_id", "customer_id", "created_at"),
        # Reports: one partnership's impressions over a date range (and its unique customers).
        Index("ix_impressions_partnership_time", "tenant_id", "partnership_id", "created_at"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(primary_key=True, max_length=40)
    answer_id: str = Field(max_length=40)
    # NULL once the customer is erased: the impression still counts in both sides' reports.
    customer_id: str | None = Field(default=None, max_length=40)
    partnership_id: str = Field(max_length=40)
    offering_tenant_id: str = Field(max_length=40)
    offer_id: str = Field(max_length=40)
    offer_version: int
    placement: str = Field(max_length=30)
    code: str | None = Field(default=None, max_length=64)
    rank: int
    score: float
    created_at: datetime = Field(sa_type=UTCDateTime)


class ReceivedImpression(SQLModel, table=True):
    """The same impression as the offering side sees it: no customer."""

    __tablename__ = "received_impressions"
    __table_args__ = (
        Index("ix_received_impressions_code", "tenant_id", "code"),
        Index("ix_received_impressions_offer", "tenant_id", "offer_id", "created_at"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(primary_key=True, max_length=40)
    host_tenant_id: str = Field(max_length=40)
    partnership_id: str = Field(max_length=40)
    offer_id: str = Field(max_length=40)
    offer_version: int
    placement: str = Field(max_length=30)
    code: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)


@dataclass(frozen=True, slots=True)
class Shown:
    impression_id: str
    partnership_id: str
    offering_tenant_id: str
    offer_id: str
    offer_version: int
    code: str | None
    rank: int
    score: float


@dataclass(frozen=True, slots=True)
class RecentCounts:
    last_7_days: int
    last_30_days: int


# The rolling windows of the frequency caps.
WEEK = timedelta(days=7)
MONTH = timedelta(days=30)


def recent_counts(session: Session, host_tenant_id: str, customer_id: str, now: datetime) -> RecentCounts:
    """Partner offers this customer was shown by the host (all partners) in rolling windows."""
    table = Impression.__table__  # type: ignore[attr-defined]
    week = now - WEEK
    row = session.execute(
        select(func.count(), func.count().filter(table.c.created_at > week)).where(
            table.c.tenant_id == host_tenant_id,
            table.c.customer_id == customer_id,
            table.c.created_at > now - MONTH,
        )
    ).one()
    return RecentCounts(last_7_days=int(row[1]), last_30_days=int(row[0]))


def record(
    session: Session,
    *,
    host_tenant_id: str,
    answer_id: str,
    customer_id: str | None,
    placement: str,
    shown: Sequence[Shown],
    decisions: dict[str, int],
    now: datetime,
) -> None:
    """Store the answer and its impressions on both sides, in the caller's transaction (Core inserts),
    and count them for ranking (`partners.counters`)."""
    execute_together(
        session,
        record_statements(
            host_tenant_id=host_tenant_id,
            answer_id=answer_id,
            customer_id=customer_id,
            placement=placement,
            shown=shown,
            decisions=decisions,
            now=now,
        ),
    )
    count(session, host_tenant_id, shown, now)


def count(session: Session, host_tenant_id: str, shown: Sequence[Shown], now: datetime) -> None:
    """Count the impressions just written for ranking; run after the writes, so the counter rows
    (shared with concurrent answers) stay locked only until commit."""
    if not shown:
        return
    counters.count_impressions(
        session, host_tenant_id, [(s.partnership_id, s.offering_tenant_id, s.offer_id) for s in shown], now
    )


_ANSWER_COLUMNS = ("tenant_id", "id", "customer_id", "placement", "shown", "decisions", "created_at")
_COMMON_COLUMNS = ("id", "partnership_id", "offer_id", "offer_version", "placement", "code", "created_at")
_HOST_COLUMNS = (*_COMMON_COLUMNS, "tenant_id", "answer_id", "customer_id", "offering_tenant_id", "rank", "score")
_PARTNER_COLUMNS = (*_COMMON_COLUMNS, "tenant_id", "host_tenant_id")


def record_statements(
    *,
    host_tenant_id: str,
    answer_id: str,
    customer_id: str | None,
    placement: str,
    shown: Sequence[Shown],
    decisions: dict[str, int],
    now: datetime,
) -> list[Write]:
    """The inserts `record` runs, for a caller that writes more in the same round trip."""
    answer = {
        "tenant_id": host_tenant_id,
        "id": answer_id,
        "customer_id": customer_id,
        "placement": placement,
        "shown": len(shown),
        "decisions": decisions,
        "created_at": now,
    }
    answers: Table = ExchangeAnswer.__table__  # type: ignore[attr-defined]
    writes = [
        (multirow_insert(answers, _ANSWER_COLUMNS, 1, "a"), multirow_params(_ANSWER_COLUMNS, [answer], "a")),
    ]
    if not shown or customer_id is None:
        return writes
    common = [
        {
            "id": s.impression_id,
            "partnership_id": s.partnership_id,
            "offer_id": s.offer_id,
            "offer_version": s.offer_version,
            "placement": placement,
            "code": s.code,
            "created_at": now,
        }
        for s in shown
    ]
    host_rows = [
        dict(
            c,
            tenant_id=host_tenant_id,
            answer_id=answer_id,
            customer_id=customer_id,
            offering_tenant_id=s.offering_tenant_id,
            rank=s.rank,
            score=s.score,
        )
        for c, s in zip(common, shown, strict=True)
    ]
    partner_rows = [
        dict(c, tenant_id=s.offering_tenant_id, host_tenant_id=host_tenant_id)
        for c, s in zip(common, shown, strict=True)
    ]
    host: Table = Impression.__table__  # type: ignore[attr-defined]
    partner: Table = ReceivedImpression.__table__  # type: ignore[attr-defined]
    writes.append(
        (multirow_insert(host, _HOST_COLUMNS, len(shown), "h"), multirow_params(_HOST_COLUMNS, host_rows, "h"))
    )
    writes.append(
        (
            multirow_insert(partner, _PARTNER_COLUMNS, len(shown), "r"),
            multirow_params(_PARTNER_COLUMNS, partner_rows, "r"),
        )
    )
    return writes

"""Redemptions: the offering shop reports an order that used a partner offer; the platform attributes it.

A redemption is owned by the offering tenant. It is found through that tenant's received impressions
(by code or impression id), so another tenant's codes are simply unknown. Attribution picks the most
recent impression of that code (or the one quoted) that the redemption falls within the agreed
attribution window of. Single-use pool codes are marked used: a second order on one is refused (409).
Each redemption and reversal writes the commission into both sides' ledgers in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Index, UniqueConstraint, select
from sqlmodel import Field, Session, SQLModel, col

from partners import changes, codes, ledger, offer_actions, outbox
from partners.db import UTCDateTime, get_owned
from partners.errors import Conflict, Invalid, NotFound
from partners.ids import new_id
from partners.impressions import ReceivedImpression
from partners.offer_rules import CodeMode, normalize_code
from partners.offers import Offer, OfferVersion
from partners.partnerships import Partnership
from partners.terms import PartnershipTerms

REDEMPTION_RECORDED = "redemption.recorded"
REDEMPTION_REVERSED = "redemption.reversed"
MAX_ORDER_VALUE = 10**12


class Redemption(SQLModel, table=True):
    """An order of the offering tenant attributed to an impression at a host."""

    __tablename__ = "redemptions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "order_id", name="uq_redemptions_order"),
        Index("ix_redemptions_partnership_time", "tenant_id", "partnership_id", "redeemed_at"),
        Index("ix_redemptions_offer_time", "tenant_id", "offer_id", "redeemed_at"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(primary_key=True, max_length=40)
    order_id: str = Field(max_length=128)
    impression_id: str = Field(max_length=40)
    partnership_id: str = Field(max_length=40)
    host_tenant_id: str = Field(max_length=40)
    offer_id: str = Field(max_length=40)
    code: str | None = Field(default=None, max_length=64)
    order_value: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    commission_bps: int
    commission: int = Field(sa_type=BigInteger)
    redeemed_at: datetime = Field(sa_type=UTCDateTime)
    reversed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reversal_reason: str | None = Field(default=None, max_length=500)


@dataclass(frozen=True)
class RedemptionInput:
    order_id: str
    order_value: int
    currency: str
    code: str | None = None
    impression_id: str | None = None
    redeemed_at: datetime | None = None


@dataclass(frozen=True)
class Recorded:
    redemption: Redemption
    created: bool


def commission_of(order_value: int, bps: int) -> int:
    """Rate × value in minor units, rounded half up."""
    return (order_value * bps + 5_000) // 10_000


def _agreed_terms(session: Session, tenant_id: str, partnership_id: str) -> PartnershipTerms | None:
    partnership = session.get(Partnership, (tenant_id, partnership_id))
    if partnership is None or partnership.agreed_version is None:
        return None
    return session.get(PartnershipTerms, (tenant_id, partnership_id, partnership.agreed_version))


def _candidates(session: Session, tenant_id: str, data: RedemptionInput, code: str | None) -> list[ReceivedImpression]:
    query = select(ReceivedImpression).where(col(ReceivedImpression.tenant_id) == tenant_id)
    if data.impression_id is not None:
        query = query.where(col(ReceivedImpression.id) == data.impression_id)
    if code is not None:
        query = query.where(col(ReceivedImpression.code) == code)
    found = list(session.execute(query.order_by(col(ReceivedImpression.created_at).desc())).scalars())
    if not found:
        what = "impression" if data.impression_id is not None else "code"
        raise NotFound(f"No impression of your offers with this {what}.", param=what)
    return found


def _attribute(
    session: Session, tenant_id: str, found: list[ReceivedImpression], at: datetime
) -> tuple[ReceivedImpression, PartnershipTerms]:
    for impression in found:  # most recent first
        terms = _agreed_terms(session, tenant_id, impression.partnership_id)
        if terms is None:
            continue
        window = timedelta(days=terms.attribution_window_days)
        if impression.created_at <= at <= impression.created_at + window:
            return impression, terms
    raise Invalid("The redemption is outside the attribution window of every impression of this code.", param="code")


def _same(existing: Redemption, data: RedemptionInput, code: str | None) -> bool:
    return (
        existing.order_value == data.order_value
        and existing.currency == data.currency
        and (code is None or existing.code == code)
        and (data.impression_id is None or existing.impression_id == data.impression_id)
    )


def _validate(data: RedemptionInput) -> str | None:
    if not data.order_id or len(data.order_id) > 128:
        raise Invalid("order_id is 1–128 characters.", param="order_id")
    if not 0 < data.order_value <= MAX_ORDER_VALUE:
        raise Invalid("order_value is a positive amount in minor units.", param="order_value")
    if len(data.currency) != 3 or not data.currency.isalpha() or not data.currency.isupper():
        raise Invalid("currency is an ISO 4217 code such as 'GBP'.", param="currency")
    if data.code is None and data.impression_id is None:
        raise Invalid("Give the code the customer used, or the impression id.", param="code")
    if data.redeemed_at is not None and data.redeemed_at.tzinfo is None:
        raise Invalid("redeemed_at needs a timezone.", param="redeemed_at")
    return normalize_code(data.code, param="code") if data.code is not None else None


def record(session: Session, tenant_id: str, data: RedemptionInput, *, now: datetime) -> Recorded:
    """Attribute and store a redemption reported by the offering tenant; idempotent by order id."""
    code = _validate(data)
    existing = session.execute(
        select(Redemption).where(col(Redemption.tenant_id) == tenant_id, col(Redemption.order_id) == data.order_id)
    ).scalar()
    if existing is not None:
        if _same(existing, data, code):
            return Recorded(existing, created=False)
        raise Conflict(f"Order '{data.order_id}' was already reported with other details.", param="order_id")
    at = data.redeemed_at or now
    if at > now + timedelta(minutes=5):
        raise Invalid("redeemed_at is in the future.", param="redeemed_at")
    impression, terms = _attribute(session, tenant_id, _candidates(session, tenant_id, data, code), at)
    version = session.get(OfferVersion, (tenant_id, impression.offer_id, impression.offer_version))
    if version is not None and version.currency != data.currency:
        raise Invalid(f"This offer is in {version.currency}; report the order in that currency.", param="currency")
    offer = session.get(Offer, (tenant_id, impression.offer_id))
    used_code = code or impression.code
    single_use = offer is not None and offer.code_mode == CodeMode.pool and used_code is not None
    if single_use and codes.mark_redeemed(session, tenant_id, str(used_code), now=at) is None:
        raise Conflict("This single-use code has already been redeemed.", param="code")
    redemption = Redemption(
        tenant_id=tenant_id,
        id=new_id("red"),
        order_id=data.order_id,
        impression_id=impression.id,
        partnership_id=impression.partnership_id,
        host_tenant_id=impression.host_tenant_id,
        offer_id=impression.offer_id,
        code=used_code,
        order_value=data.order_value,
        currency=data.currency,
        commission_bps=terms.commission_bps,
        commission=commission_of(data.order_value, terms.commission_bps),
        redeemed_at=at,
    )
    session.add(redemption)
    session.flush()
    offer_actions.use_budget(session, tenant_id, impression.offer_id, redemptions=1, value=redemption.commission)
    ledger.post(session, redemption, ledger.COMMISSION, redemption.commission, at)
    outbox.emit(session, tenant_id, REDEMPTION_RECORDED, _payload(redemption), recipient=redemption.host_tenant_id)
    _touch(session, redemption)
    return Recorded(redemption, created=True)


def feed_key(redemption: Redemption) -> str:
    """The key of a redemption in both sides' `redemptions` change feeds."""
    return f"{redemption.tenant_id}/{redemption.id}"


def _touch(session: Session, redemption: Redemption) -> None:
    for tenant_id in (redemption.tenant_id, redemption.host_tenant_id):
        changes.touch(session, tenant_id, changes.Feed.redemptions, feed_key(redemption))


def _payload(redemption: Redemption) -> dict[str, object]:
    return {
        "redemption_id": redemption.id,
        "partnership_id": redemption.partnership_id,
        "impression_id": redemption.impression_id,
        "offer_id": redemption.offer_id,
        "order_value": redemption.order_value,
        "currency": redemption.currency,
        "commission": redemption.commission,
        "redeemed_at": redemption.redeemed_at.isoformat(),
    }


def get(session: Session, tenant_id: str, redemption_id: str) -> Redemption:
    """The offering tenant's redemption (NotFound for anyone else's)."""
    return get_owned(session, Redemption, tenant_id, redemption_id)


def reverse(session: Session, tenant_id: str, redemption_id: str, reason: str | None, *, now: datetime) -> Redemption:
    """Record a refund: the commission is netted in both ledgers; reversing twice changes nothing."""
    if reason is not None and len(reason) > 500:
        raise Invalid("reason is at most 500 characters.", param="reason")
    found = session.execute(
        select(Redemption)
        .where(col(Redemption.tenant_id) == tenant_id, col(Redemption.id) == redemption_id)
        .with_for_update()
    ).scalar()
    if not isinstance(found, Redemption):
        raise NotFound(f"No redemption with id '{redemption_id}'.", param="id")
    if found.reversed_at is not None:
        return found
    found.reversed_at = now
    found.reversal_reason = reason
    session.add(found)
    session.flush()
    ledger.post(session, found, ledger.REVERSAL, -found.commission, now)
    payload = dict(_payload(found), reversed_at=now.isoformat())
    outbox.emit(session, tenant_id, REDEMPTION_REVERSED, payload, recipient=found.host_tenant_id)
    _touch(session, found)
    return found

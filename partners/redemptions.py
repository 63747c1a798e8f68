"""Redemptions: the offering shop reports an order that used a partner offer; the platform attributes it.

A redemption is owned by the offering tenant. It is found through that tenant's received impressions
(by code or impression id), so another tenant's codes are simply unknown. Attribution picks the most
recent impression of that code (or the one quoted) that the redemption falls within the agreed
attribution window of. Single-use pool codes are marked used: a second order on one is refused (409).
Each redemption and reversal writes the commission into both sides' ledgers, the offer's counters
(its observed conversion, for ranking) and a webhook event to each side, in the same transaction.
Every refusal has its own problem `code` (`unknown_code`, `code_expired`, `code_already_redeemed`, …).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, Index, UniqueConstraint, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col

from partners import changes, codes, counters, ledger, offer_actions, outbox
from partners.db import UTCDateTime, get_owned
from partners.errors import Conflict, Invalid, NotFound
from partners.ids import new_id
from partners.impressions import ReceivedImpression
from partners.offer_rules import CodeMode, normalize_code
from partners.offers import Offer, OfferVersion
from partners.partnerships import Partnership
from partners.terms import MAX_ATTRIBUTION_DAYS, PartnershipTerms

REDEMPTION_RECORDED = "redemption.recorded"
REDEMPTION_REVERSED = "redemption.reversed"
MAX_ORDER_VALUE = 10**12
MAX_CLOCK_SKEW = timedelta(minutes=5)


class UnknownCode(NotFound):
    code = "unknown_code"
    title = "Unknown code"


class UnknownImpression(NotFound):
    code = "unknown_impression"
    title = "Unknown impression"


class CodeExpired(Invalid):
    code = "code_expired"
    title = "Code expired"


class OutsideAttributionWindow(Invalid):
    code = "outside_attribution_window"
    title = "Outside the attribution window"


class CurrencyMismatch(Invalid):
    code = "currency_mismatch"
    title = "Currency mismatch"


class CodeAlreadyRedeemed(Conflict):
    code = "code_already_redeemed"
    title = "Code already redeemed"


class OrderAlreadyReported(Conflict):
    code = "order_already_reported"
    title = "Order already reported"


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


def _latest_per_partnership(
    session: Session, tenant_id: str, data: RedemptionInput, code: str | None, at: datetime
) -> list[tuple[str, datetime]]:
    """(partnership id, time of its latest impression at or before `at`) for the code or impression.

    One row per partnership, however often a shared code was shown: the longest agreed window
    bounds how far back to look.
    """
    table = ReceivedImpression.__table__  # type: ignore[attr-defined]
    where = [table.c.tenant_id == tenant_id]
    if data.impression_id is not None:
        where.append(table.c.id == data.impression_id)
    if code is not None:
        where.append(table.c.code == code)
    if session.execute(select(table.c.id).where(*where).limit(1)).first() is None:
        if data.impression_id is not None:
            raise UnknownImpression(
                f"No impression of your offers has id '{data.impression_id}'.", param="impression_id"
            )
        raise UnknownCode("No impression of your offers carried this code.", param="code")
    latest = func.max(table.c.created_at)
    rows = session.execute(
        select(table.c.partnership_id, latest)
        .where(*where, table.c.created_at <= at, table.c.created_at >= at - timedelta(days=MAX_ATTRIBUTION_DAYS))
        .group_by(table.c.partnership_id)
    ).all()
    found = [(str(partnership), when) for partnership, when in rows]
    return sorted(found, key=lambda row: row[1], reverse=True)  # most recent first


def _attribute(
    session: Session, tenant_id: str, data: RedemptionInput, code: str | None, at: datetime
) -> tuple[ReceivedImpression, PartnershipTerms]:
    """The impression the order is credited to, and the terms (window, commission) it falls under."""
    table = ReceivedImpression.__table__  # type: ignore[attr-defined]
    for partnership_id, shown_at in _latest_per_partnership(session, tenant_id, data, code, at):
        terms = _agreed_terms(session, tenant_id, partnership_id)
        if terms is None or at > _as_utc(shown_at) + timedelta(days=terms.attribution_window_days):
            continue
        query = select(ReceivedImpression).where(
            col(ReceivedImpression.tenant_id) == tenant_id,
            col(ReceivedImpression.partnership_id) == partnership_id,
            table.c.created_at == _as_utc(shown_at),
        )
        if data.impression_id is not None:
            query = query.where(col(ReceivedImpression.id) == data.impression_id)
        if code is not None:
            query = query.where(col(ReceivedImpression.code) == code)
        impression = session.execute(query.limit(1)).scalar()
        if impression is not None:
            return impression, terms
    raise OutsideAttributionWindow(
        "The order is not within the attribution window after any impression of this code.",
        param="impression_id" if code is None else "code",
    )


def _as_utc(at: datetime) -> datetime:
    # Aggregates bypass the column type on SQLite and come back naive (they are UTC).
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _check_window(version: OfferVersion | None, at: datetime, param: str) -> None:
    if version is None:
        return
    if at < version.starts_at or (version.ends_at is not None and at >= version.ends_at):
        raise CodeExpired(
            f"The offer was valid from {version.starts_at.isoformat()}"
            + (f" until {version.ends_at.isoformat()}" if version.ends_at else "")
            + "; this order is outside it.",
            param=param,
        )


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
    if data.impression_id is not None and not 1 <= len(data.impression_id) <= 40:
        raise Invalid("impression_id is an 'imp_…' id.", param="impression_id")
    if data.code is None and data.impression_id is None:
        raise Invalid("Give the code the customer used, or the impression id.", param="code")
    if data.redeemed_at is not None and data.redeemed_at.tzinfo is None:
        raise Invalid("redeemed_at needs a timezone.", param="redeemed_at")
    return normalize_code(data.code, param="code") if data.code is not None else None


def _by_order(session: Session, tenant_id: str, order_id: str) -> Redemption | None:
    query = select(Redemption).where(col(Redemption.tenant_id) == tenant_id, col(Redemption.order_id) == order_id)
    found: Redemption | None = session.execute(query).scalar()
    return found


def _again(existing: Redemption, data: RedemptionInput, code: str | None) -> Recorded:
    """The same order reported again: the stored redemption if the details match, else a conflict."""
    if _same(existing, data, code):
        return Recorded(existing, created=False)
    raise OrderAlreadyReported(f"Order '{data.order_id}' was already reported with other details.", param="order_id")


def record(session: Session, tenant_id: str, data: RedemptionInput, *, now: datetime) -> Recorded:
    """Attribute and store a redemption reported by the offering tenant; idempotent by order id."""
    code = _validate(data)
    existing = _by_order(session, tenant_id, data.order_id)
    if existing is not None:
        return _again(existing, data, code)
    at = data.redeemed_at or now
    if at > now + MAX_CLOCK_SKEW:
        raise Invalid("redeemed_at is in the future.", param="redeemed_at")
    impression, terms = _attribute(session, tenant_id, data, code, at)
    version = session.get(OfferVersion, (tenant_id, impression.offer_id, impression.offer_version))
    if version is not None and version.currency != data.currency:
        raise CurrencyMismatch(
            f"This offer is in {version.currency}; report the order in that currency.", param="currency"
        )
    _check_window(version, at, "code" if code is not None else "impression_id")
    offer = session.get(Offer, (tenant_id, impression.offer_id))
    used_code = code or impression.code
    single_use = offer is not None and offer.code_mode == CodeMode.pool and used_code is not None
    if single_use and codes.mark_redeemed(session, tenant_id, str(used_code), now=at) is None:
        # A parallel request may have just recorded this very order (it waited on the code's row lock).
        existing = _by_order(session, tenant_id, data.order_id)
        if existing is not None:
            return _again(existing, data, code)
        raise CodeAlreadyRedeemed("This single-use code has already been redeemed.", param="code")
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
    try:
        with session.begin_nested():
            session.add(redemption)
            session.flush()
    except IntegrityError:
        # The same order id was stored by a parallel request (no single-use code to wait on).
        existing = _by_order(session, tenant_id, data.order_id)
        if existing is None:
            raise
        return _again(existing, data, code)
    offer_actions.use_budget(session, tenant_id, impression.offer_id, redemptions=1, value=redemption.commission)
    ledger.post(session, redemption, ledger.COMMISSION, redemption.commission, at)
    counters.count_redemption(session, tenant_id, redemption.offer_id, +1)
    _emit(session, redemption, REDEMPTION_RECORDED, _payload(redemption))
    _touch(session, redemption)
    return Recorded(redemption, created=True)


def _emit(session: Session, redemption: Redemption, event_type: str, payload: dict[str, object]) -> None:
    """The event goes to both partners concerned: the host (owed the commission) and the offering side."""
    for recipient in (redemption.host_tenant_id, redemption.tenant_id):
        outbox.emit(session, redemption.tenant_id, event_type, payload, recipient=recipient)


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
        "commission_bps": redemption.commission_bps,
        "commission": redemption.commission,
        "order_id": redemption.order_id,
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
        raise NotFound(f"No redemption with id '{redemption_id}'.", param="redemption_id")
    if found.reversed_at is not None:
        return found
    found.reversed_at = now
    found.reversal_reason = reason
    session.add(found)
    session.flush()
    ledger.post(session, found, ledger.REVERSAL, -found.commission, now)
    counters.count_redemption(session, tenant_id, found.offer_id, -1)
    payload = dict(_payload(found), reversed_at=now.isoformat(), reason=reason)
    _emit(session, found, REDEMPTION_REVERSED, payload)
    _touch(session, found)
    return found


def for_ledger(
    session: Session, tenant_id: str, partner_tenant_id: str, entries: Sequence[ledger.LedgerEntry]
) -> dict[str, Redemption]:
    """The redemptions behind ledger entries of one partnership: mine (I owe) or my partner's (owed to me)."""
    wanted: dict[str, set[str]] = {}
    for entry in entries:
        owner = tenant_id if entry.direction == ledger.OWED_BY_ME else partner_tenant_id
        wanted.setdefault(owner, set()).add(entry.redemption_id)
    found: dict[str, Redemption] = {}
    for owner, ids in wanted.items():
        query = select(Redemption).where(col(Redemption.tenant_id) == owner, col(Redemption.id).in_(sorted(ids)))
        found.update({r.id: r for r in session.execute(query).scalars()})
    return found

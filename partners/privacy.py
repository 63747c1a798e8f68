"""Data-subject rights: erasure (GDPR Art. 17) and export (Art. 20).

Erasure deletes everything held about the customer — identity, purchases, profile,
consent history and state, the record of which partners received anything — unlinks it from
what both partners' reports and ledgers keep (impressions, answers, codes: `customer_traces`),
and keeps only keyed hashes of its external id and email (`customer_suppressions`), so that a
later re-import is refused rather than contacted. Partners that received anything are told,
each with its own references (`erasure.requested` in the outbox, in the same transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, delete, select

from partners import changes, customer_traces, disclosures, outbox
from partners.codes import OfferCode
from partners.consent_ledger import ConsentEvent, ConsentState, all_events, current_state
from partners.customers import (
    Customer,
    SuppressionKind,
    check_external_id,
    find_customer,
    get_customer,
    is_suppressed,
    stored_email,
    suppress,
)
from partners.db import owned, utcnow
from partners.errors import NotFound
from partners.impressions import ExchangeAnswer, Impression
from partners.interest_store import CustomerInterest, CustomerProfile, load_profile
from partners.interests import ProfileState
from partners.notices import ConsentNotice, notices_by_id
from partners.purchases import Purchase, PurchaseLine, lines_of
from partners.redemptions import Redemption
from partners.retailers import Tenant


@dataclass(frozen=True)
class Erasure:
    external_id: str
    erased_at: datetime
    partners_notified: int
    already_erased: bool


def erase_customer(
    session: Session, tenant_id: str, external_id: str, *, hash_key: bytes, now: datetime | None = None
) -> Erasure:
    """Erase the customer; asking again for an erased customer answers the same, changing nothing."""
    now = now or utcnow()
    check_external_id(external_id)
    customer = find_customer(session, tenant_id, external_id, for_update=True)
    if customer is None:
        if is_suppressed(session, tenant_id, hash_key, SuppressionKind.external_id, external_id):
            return Erasure(external_id, now, 0, True)
        raise NotFound(f"No customer with external id '{external_id}'.", param="external_id")
    notified = disclosures.recipients(session, tenant_id, customer.id)
    traces = customer_traces.collect(session, tenant_id, customer.id)
    # Earlier events named our internal customer id; partners get their own references instead.
    customer_traces.rewrite_earlier_events(session, tenant_id, customer.id, traces)
    customer_traces.blank_own_events(session, tenant_id, customer.id)
    for partner_id in notified:
        held = customer_traces.references(traces, partner_id).as_payload()
        payload = {"partner_id": partner_id, **held, "requested_at": now.isoformat()}
        outbox.emit(session, tenant_id, outbox.ERASURE_REQUESTED, payload)
    customer_traces.unlink(session, tenant_id, customer.id, traces)
    suppress(session, tenant_id, hash_key, SuppressionKind.external_id, customer.external_id)
    if customer.email_hash is not None:
        suppress(session, tenant_id, hash_key, SuppressionKind.email, customer.email_hash)
    _delete_everything(session, tenant_id, customer)
    return Erasure(external_id, now, len(notified), False)


def _delete_everything(session: Session, tenant_id: str, customer: Customer) -> None:
    orders = select(Purchase.id).where(col(Purchase.tenant_id) == tenant_id, col(Purchase.customer_id) == customer.id)
    session.exec(
        delete(PurchaseLine).where(col(PurchaseLine.tenant_id) == tenant_id, col(PurchaseLine.purchase_id).in_(orders))
    )
    # The change feed turns each erased consent event into a tombstone, so that copies are deleted too.
    events = select(ConsentEvent.id).where(
        col(ConsentEvent.tenant_id) == tenant_id, col(ConsentEvent.customer_id) == customer.id
    )
    for event_id in session.exec(events).all():
        changes.touch(session, tenant_id, changes.Feed.consent_events, event_id)
    for model in (ConsentState, ConsentEvent, CustomerInterest, CustomerProfile, Purchase, disclosures.Disclosure):
        session.exec(
            delete(model).where(
                col(model.tenant_id) == tenant_id,
                col(model.customer_id) == customer.id,
            )
        )
    session.delete(customer)
    session.flush()


@dataclass(frozen=True)
class OrderRecord:
    purchase: Purchase
    lines: Sequence[PurchaseLine]


@dataclass(frozen=True)
class OfferShown:
    """A partner's offer shown to the customer, with the partner's name."""

    impression: Impression
    partner_name: str


@dataclass(frozen=True)
class CustomerExport:
    """Everything held about one customer."""

    customer: Customer
    email: str | None
    orders: Sequence[OrderRecord]
    profile: ProfileState | None
    consent_events: Sequence[ConsentEvent]
    consent_states: Sequence[ConsentState]
    notices: Sequence[ConsentNotice]
    disclosures: Sequence[disclosures.Disclosure]
    answers: Sequence[ExchangeAnswer]
    offers_shown: Sequence[OfferShown]
    codes: Sequence[OfferCode]
    redemptions: Sequence[Redemption]
    exported_at: datetime


def export_customer(
    session: Session, tenant_id: str, external_id: str, *, encryption_key: str, now: datetime | None = None
) -> CustomerExport:
    """The customer's data, including the full consent history and the notices it cites."""
    customer = get_customer(session, tenant_id, external_id)
    purchases = session.exec(
        owned(Purchase, tenant_id)
        .where(col(Purchase.customer_id) == customer.id)
        .order_by(col(Purchase.ordered_at), col(Purchase.id))
    ).all()
    lines = lines_of(session, tenant_id, [p.id for p in purchases])
    events = all_events(session, tenant_id, customer.id)
    notice_ids = sorted({e.notice_id for e in events if e.notice_id})
    traces = customer_traces.collect(session, tenant_id, customer.id)
    names = _partner_names(session, {row.offering_tenant_id for row in traces.impressions})
    return CustomerExport(
        customer=customer,
        email=stored_email(customer, encryption_key),
        orders=[OrderRecord(p, lines[p.id]) for p in purchases],
        profile=load_profile(session, tenant_id, customer.id),
        consent_events=events,
        consent_states=current_state(session, tenant_id, customer.id),
        notices=list(notices_by_id(session, tenant_id, notice_ids).values()),
        disclosures=disclosures.disclosures_of(session, tenant_id, customer.id),
        answers=customer_traces.answers_about(session, tenant_id, customer.id),
        offers_shown=[OfferShown(row, names.get(row.offering_tenant_id, "")) for row in traces.impressions],
        codes=traces.codes,
        redemptions=traces.redemptions,
        exported_at=now or utcnow(),
    )


def _partner_names(session: Session, tenant_ids: set[str]) -> dict[str, str]:
    if not tenant_ids:
        return {}
    rows = session.exec(select(Tenant).where(col(Tenant.id).in_(sorted(tenant_ids)))).all()
    return {row.id: row.name for row in rows}

"""Contact sharing: a partner shop receives a host's customer's email, and only when everything allows it.

The partner asks with the id of an impression of its own offer (what it holds about the customer).
It receives the address only if the customer is still held by the host (not erased), the customer's
current `partner_contact_sharing` consent names exactly this partner, the partnership is active and
its agreed terms allow contact sharing, and the host keeps the address (`store_email`). Every answer
is recorded as a disclosure, so that the partner is told when consent is withdrawn or the customer
erased. Each refusal has its own problem `code`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from partners import disclosures
from partners.consent_ledger import ConsentState
from partners.consent_rules import Purpose, Status
from partners.customers import Customer, stored_email
from partners.errors import Conflict, Forbidden, NotFound
from partners.impressions import Impression, ReceivedImpression
from partners.partnership_rules import State
from partners.partnerships import Partnership
from partners.terms import PartnershipTerms


class UnknownImpression(NotFound):
    code = "unknown_impression"
    title = "Unknown impression"


class NoContactConsent(Forbidden):
    code = "no_contact_consent"
    title = "No consent to share contact details"


class ContactSharingNotAgreed(Forbidden):
    code = "contact_sharing_not_agreed"
    title = "Contact sharing not agreed"


class NoContactDetails(Conflict):
    code = "no_contact_details"
    title = "No contact details held"


@dataclass(frozen=True)
class SharedContact:
    impression_id: str
    host_tenant_id: str
    email: str
    shared_at: datetime


def share(
    session: Session, partner_tenant_id: str, impression_id: str, *, encryption_key: str, now: datetime
) -> SharedContact:
    """The email of the customer shown `impression_id` (one of the caller's received impressions)."""
    received = session.get(ReceivedImpression, (partner_tenant_id, impression_id))
    if received is None:
        raise UnknownImpression(f"No impression of your offers has id '{impression_id}'.", param="impression_id")
    host = received.host_tenant_id
    _check_terms(session, host, received.partnership_id)
    shown = session.get(Impression, (host, impression_id))
    customer = session.get(Customer, (host, shown.customer_id)) if shown is not None and shown.customer_id else None
    # An erased customer has no consent left: it is refused exactly like a withdrawn one.
    if customer is None or not _consents(session, host, customer.id, partner_tenant_id):
        raise NoContactConsent(
            "The customer has not consented to sharing contact details with you (or has withdrawn it).",
            param="impression_id",
        )
    email = stored_email(customer, encryption_key)
    if email is None:
        raise NoContactDetails("The partner shop keeps no email address for this customer.", param="impression_id")
    disclosures.record_disclosure(session, host, customer.id, partner_tenant_id, now)
    return SharedContact(impression_id=impression_id, host_tenant_id=host, email=email, shared_at=now)


def _check_terms(session: Session, host_tenant_id: str, partnership_id: str) -> None:
    partnership = session.get(Partnership, (host_tenant_id, partnership_id))
    terms = (
        session.get(PartnershipTerms, (host_tenant_id, partnership_id, partnership.agreed_version))
        if partnership is not None and partnership.agreed_version is not None
        else None
    )
    if partnership is None or partnership.state != State.active or terms is None or not terms.contact_sharing:
        raise ContactSharingNotAgreed(
            "The partnership is not active, or its agreed terms do not allow contact sharing; "
            "propose terms with contact_sharing: true.",
            param="impression_id",
        )


def _consents(session: Session, host_tenant_id: str, customer_id: str, partner_tenant_id: str) -> bool:
    """A granted contact-sharing state naming exactly this partner (never one for all partners)."""
    state = session.exec(
        select(ConsentState).where(
            col(ConsentState.tenant_id) == host_tenant_id,
            col(ConsentState.customer_id) == customer_id,
            col(ConsentState.purpose) == Purpose.partner_contact_sharing,
            col(ConsentState.partner) == partner_tenant_id,
        )
    ).first()
    return state is not None and state.status == Status.granted

"""Contact sharing: the partner gets the email only with consent naming it, agreed terms, and an address kept."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlmodel import Session

from partners import consent, disclosures, outbox, partnerships, privacy
from partners.consent_rules import Method, Purpose, Source
from partners.errors import DomainError
from partners.notices import ConsentNotice
from partners.partnership_rules import Action as PartnershipAction
from partners.retailers import Tenant
from tests.factories_contacts import EMAIL, Sharing, grant_contact_sharing
from tests.factories_offers import actor


def refusal(session: Session, case: Sharing, **ask: object) -> str:
    """The problem code of a refused request, which must name the impression and share nothing."""
    with pytest.raises(DomainError) as caught:
        case.ask(session, **ask)  # type: ignore[arg-type]
    session.rollback()
    assert caught.value.param == "impression_id"
    return caught.value.code


def test_the_partner_named_by_the_consent_receives_the_email_and_it_is_recorded(
    session: Session, sharing: Callable[..., Sharing]
) -> None:
    case = sharing()
    assert disclosures.recipients(session, case.host.id, case.shown.story.customer.id) == []
    assert case.ask(session) == EMAIL
    assert disclosures.recipients(session, case.host.id, case.shown.story.customer.id) == [case.partner.id]


def test_without_a_contact_sharing_consent_nothing_is_shared(session: Session, sharing: Callable[..., Sharing]) -> None:
    case = sharing(consented=False)
    assert refusal(session, case) == "no_contact_consent"
    assert disclosures.recipients(session, case.host.id, case.shown.story.customer.id) == []


def test_consent_naming_another_partner_does_not_cover_this_one(
    session: Session,
    sharing: Callable[..., Sharing],
    make_partner: Callable[..., Tenant],
    make_notice: Callable[..., ConsentNotice],
) -> None:
    case = sharing(consented=False)
    other = make_partner(case.host)
    notice = make_notice(case.host, (Purpose.partner_contact_sharing,), (other.id,), key="contact-other")
    grant_contact_sharing(session, case.host, other.id, notice)
    assert refusal(session, case) == "no_contact_consent"


def test_terms_without_contact_sharing_refuse(session: Session, sharing: Callable[..., Sharing]) -> None:
    assert refusal(session, sharing(terms=False)) == "contact_sharing_not_agreed"


def test_a_paused_partnership_refuses(session: Session, sharing: Callable[..., Sharing]) -> None:
    case = sharing()
    partnerships.act(session, actor(case.host), case.shown.partnership_id, PartnershipAction.pause)
    session.commit()
    assert refusal(session, case) == "contact_sharing_not_agreed"


def test_no_address_kept_is_a_conflict(session: Session, sharing: Callable[..., Sharing]) -> None:
    assert refusal(session, sharing(store_email=False)) == "no_contact_details"


def test_withdrawn_and_erased_customers_are_never_shared(session: Session, sharing: Callable[..., Sharing]) -> None:
    case = sharing()
    consent.withdraw(
        session,
        case.host.id,
        "dog-owner-1",
        method=Method.preference_link,
        source=Source.preference_page,
        purposes=(Purpose.partner_contact_sharing,),
        partner=case.partner.id,
    )
    session.commit()
    assert refusal(session, case) == "no_contact_consent"
    privacy.erase_customer(
        session, case.host.id, "dog-owner-1", hash_key=case.settings.identity_hash_key.get_secret_value().encode()
    )
    session.commit()
    assert refusal(session, case) == "no_contact_consent"


def test_a_shared_contact_is_told_of_withdrawal(session: Session, sharing: Callable[..., Sharing]) -> None:
    case = sharing()
    case.ask(session)
    consent.withdraw(session, case.host.id, "dog-owner-1", method=Method.toggle, source=Source.account_page)
    session.commit()
    [told] = outbox.pending(session, case.host.id, outbox.CONSENT_WITHDRAWN)
    assert told.recipient == case.partner.id and told.payload["impression_ids"] == [case.shown.impression_id]


def test_only_the_partner_that_received_the_impression_may_ask(
    session: Session, sharing: Callable[..., Sharing], make_partner: Callable[..., Tenant]
) -> None:
    case = sharing()
    stranger = make_partner(case.host)
    assert refusal(session, case, partner=stranger) == "unknown_impression"
    assert refusal(session, case, partner=case.host) == "unknown_impression"
    assert refusal(session, case, impression_id="imp_unknown") == "unknown_impression"

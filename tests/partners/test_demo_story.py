"""The demo's story: a demo install answers the exchange from the start, and seeding twice changes nothing."""

from sqlmodel import Session, func, select

from partners import demo, demo_story, exchange
from partners.customers import Customer
from partners.db import utcnow

KEYS = demo_story.Keys(hash_key=b"k" * 32, encryption_key="")


def _ask(session: Session, host: str, external_id: str) -> exchange.ExchangeResult:
    request = exchange.ExchangeRequest(external_id, exchange.Placement.order_confirmation, dry_run=True)
    return exchange.answer(session, host, request, now=utcnow(), code_key=b"c" * 32)


def test_consenting_dog_owners_see_the_care_offer_and_the_others_see_nothing(session: Session) -> None:
    tenants = demo.seed(session).tenants
    story = demo_story.seed_story(session, tenants, KEYS, utcnow())
    session.commit()
    assert story.created and len(story.consenting) == 16 and len(story.not_consenting) == 8
    shown = _ask(session, tenants["pet-beds"], story.consenting[0]).offers
    assert [(s.offer.offer_id, s.offer.offering_tenant_id, s.code) for s in shown] == [
        (story.offer_id, tenants["pet-care"], demo_story.SHARED_CODE)
    ]
    assert _ask(session, tenants["pet-beds"], story.not_consenting[0]).offers == []
    # Pawsome Care's own customers are not Snoozy Paws': nothing crosses the other way.
    assert _ask(session, tenants["pet-care"], story.consenting[0]).offers == []


def test_seeding_the_story_twice_changes_nothing(session: Session) -> None:
    tenants = demo.seed(session).tenants
    first = demo_story.seed_story(session, tenants, KEYS, utcnow())
    second = demo_story.seed_story(session, tenants, KEYS, utcnow())
    session.commit()
    assert first.created and not second.created
    assert second.partnership_id == first.partnership_id
    assert session.exec(select(func.count()).select_from(Customer)).one() == demo_story.CUSTOMERS

"""Erasure leaves only keyed-hash suppression entries and tells partners; export holds everything."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, SQLModel, col, select

from partners import (
    codes,
    consent,
    deliveries,
    disclosures,
    exchange,
    outbox,
    privacy,
    purchases,
    redemptions,
    survey_answers,
    surveys,
    webhook_events,
    webhooks,
)
from partners.codes import OfferCode
from partners.consent import ConsentInput
from partners.consent_ledger import ConsentEvent, ConsentState
from partners.consent_rules import ALL_PARTNERS, Action, Method, Purpose, Source
from partners.customers import Customer, CustomerSuppressed, Suppression, upsert_customer
from partners.db import utcnow
from partners.deliveries import WebhookDelivery
from partners.errors import NotFound
from partners.impressions import Impression, ReceivedImpression
from partners.interest_store import CustomerInterest, CustomerProfile
from partners.ledger import LedgerEntry
from partners.notices import ConsentNotice
from partners.outbox import OutboxEvent
from partners.partnerships import is_active_partner
from partners.purchases import Channel, LineInput, Purchase, PurchaseInput
from partners.redemptions import Redemption, RedemptionInput
from partners.retailers import Tenant
from partners.schema import metadata
from partners.settings import Settings
from tests.factories_exchange import Story, buy, consent_to
from tests.factories_redemptions import CODE_KEY, ShownOffer

T0 = datetime(2025, 4, 1, tzinfo=UTC)
EMAIL = "Jane@Example.com"


def hash_key(settings: Settings) -> bytes:
    return settings.identity_hash_key.get_secret_value().encode()


def populate(session: Session, tenant: Tenant, partner: Tenant, notice: ConsentNotice) -> None:
    """Purchases, a profile, consent history and a disclosure for customer 'c-1'."""
    order = PurchaseInput("o-1", T0, "EUR", (LineInput("cat_dog_beds", 5000, 1, Channel.physical),))
    purchases.record_purchase(session, tenant.id, "c-1", order)
    grant = ConsentInput(
        "g-1",
        Action.granted,
        Method.checkbox,
        Source.checkout,
        T0,
        (Purpose.partner_offers,),
        ALL_PARTNERS,
        notice.id,
    )
    consent.record_event(session, tenant.id, "c-1", grant, is_active_partner=is_active_partner)
    consent.withdraw(
        session,
        tenant.id,
        "c-1",
        method=Method.toggle,
        source=Source.account_page,
        purposes=(Purpose.partner_offers,),
        partner=partner.id,
        occurred_at=T0 + timedelta(days=1),
    )
    session.commit()


@pytest.fixture
def shop(
    session: Session,
    make_tenant: Callable[..., Tenant],
    make_partner: Callable[..., Tenant],
    make_notice: Callable[..., ConsentNotice],
    make_customer: Callable[..., Customer],
) -> tuple[Tenant, Tenant, Customer, ConsentNotice]:
    tenant = make_tenant()
    partner = make_partner(tenant)
    notice = make_notice(tenant)
    customer = make_customer(tenant, "c-1", email=EMAIL, store_email=True)
    populate(session, tenant, partner, notice)
    disclosures.record_disclosure(session, tenant.id, customer.id, partner.id)
    session.commit()
    return tenant, partner, customer, notice


def rows_about(session: Session, model: type[SQLModel], tenant_id: str, customer_id: str) -> int:
    query = (
        select(func.count())
        .select_from(model)
        .where(
            col(model.tenant_id) == tenant_id,  # type: ignore[attr-defined]
            col(model.customer_id) == customer_id,  # type: ignore[attr-defined]
        )
    )
    return int(session.exec(query).one())


@dataclass
class Traced:
    """A customer of the care shop shown the bed shop's single-use codes twice (both codes of the pool),
    one of them redeemed."""

    story: Story
    customer: Customer
    impression_ids: list[str]
    redeemed_code: str
    reserved_code: str
    redemption: Redemption
    old_event: OutboxEvent


@pytest.fixture
def traced(
    session: Session,
    settings: Settings,
    exchange_story: Callable[..., Story],
    show_offer: Callable[..., ShownOffer],
    make_endpoint: Callable[..., webhooks.IssuedEndpoint],
) -> Traced:
    story = exchange_story(pool=2)
    host, offering = story.setup.host, story.setup.offering
    customer = upsert_customer(
        session,
        host.id,
        "dog-owner-1",
        email=EMAIL,
        store_email=True,
        hash_key=hash_key(settings),
        encryption_key=settings.encryption_key.get_secret_value(),
    ).customer
    first = show_offer(story)
    assert first.code is not None
    order = RedemptionInput("order-1", 12_000, "GBP", code=first.code)
    redemption = redemptions.record(session, offering.id, order, now=utcnow()).redemption
    session.commit()
    second = show_offer(story)
    assert second.code is not None and second.code != first.code
    # An event as it was written before payload version 2, already handed to the partner's endpoint.
    make_endpoint(offering, events=["consent.withdrawn", "erasure.requested"])
    old = outbox.emit(
        session,
        host.id,
        outbox.CONSENT_WITHDRAWN,
        {"partner_id": offering.id, "customer_id": customer.id, "purposes": ["partner_offers"], "scope": "all"},
    )
    old.payload_version = 1
    session.add(old)
    session.commit()
    deliveries.dispatch(session, now=utcnow())
    session.commit()
    return Traced(
        story, customer, [first.impression_id, second.impression_id], first.code, second.code, redemption, old
    )


def identifiers(traced: Traced, settings: Settings) -> dict[str, str]:
    """Every value that identifies the erased customer, or lets a partner link rows to it."""
    host = traced.story.setup.host
    assert traced.customer.email_hash is not None
    return {
        "customer id": traced.customer.id,
        "external id": traced.customer.external_id,
        "email hash": traced.customer.email_hash,
        "email": EMAIL.lower(),
        "code pseudonym": exchange.customer_ref(CODE_KEY, host.id, traced.customer.id),
    }


def rows_naming(session: Session, values: dict[str, str]) -> list[str]:
    """Every row of every table (from the schema, so new tables are covered) holding one of `values`."""
    found = []
    for table in metadata.sorted_tables:
        if table.name == Suppression.__tablename__:
            continue
        for row in session.execute(table.select()).all():
            text = json.dumps([str(v) if not isinstance(v, dict | list) else v for v in row], default=str).lower()
            found += [f"{table.name}: {name}" for name, value in values.items() if value.lower() in text]
    return found


def test_erasure_deletes_everything_but_keyed_suppression_entries(
    session: Session, settings: Settings, traced: Traced
) -> None:
    host, offering = traced.story.setup.host, traced.story.setup.offering
    customer = traced.customer
    values = identifiers(traced, settings)
    before = rows_naming(session, values)
    for table in ("customers", "impressions", "exchange_answers", "offer_codes", "outbox_events", "webhook_deliveries"):
        assert any(row.startswith(f"{table}:") for row in before), f"the scenario puts the customer in {table}"

    erasure = privacy.erase_customer(session, host.id, "dog-owner-1", hash_key=hash_key(settings))
    session.commit()

    assert erasure.partners_notified == 1 and not erasure.already_erased
    assert rows_naming(session, values) == []
    for model in (Purchase, CustomerProfile, CustomerInterest, ConsentEvent, ConsentState, disclosures.Disclosure):
        assert rows_about(session, model, host.id, customer.id) == 0, model
    assert session.exec(select(Customer).where(col(Customer.id) == customer.id)).first() is None
    entries = session.exec(select(Suppression).where(col(Suppression.tenant_id) == host.id)).all()
    assert sorted(e.kind for e in entries) == ["email", "external_id"]

    # What both partners' reports and ledgers need stays, with nobody behind it.
    shown = session.exec(select(Impression).where(col(Impression.tenant_id) == host.id)).all()
    assert sorted(i.id for i in shown) == sorted(traced.impression_ids)
    assert all(i.customer_id is None for i in shown)
    assert session.exec(select(func.count()).select_from(ReceivedImpression)).one() == 2
    kept = session.get(Redemption, (offering.id, traced.redemption.id))
    assert kept is not None and (kept.order_value, kept.commission) == (12_000, 1_200)
    assert session.exec(select(func.count()).select_from(LedgerEntry)).one() == 2
    codes = {c.code: c for c in session.exec(select(OfferCode).where(col(OfferCode.tenant_id) == offering.id))}
    used, released = codes[traced.redeemed_code], codes[traced.reserved_code]
    assert used.redeemed_at is not None and used.reserved_at is not None and used.reserved_for is None
    assert released.reserved_at is None and released.reserved_for is None, "an unused code goes back to the pool"

    # The partner is told what it holds itself; the earlier event no longer names our customer id.
    [told] = outbox.pending(session, host.id, outbox.ERASURE_REQUESTED)
    assert told.recipient == offering.id and told.payload_version == 2
    assert told.payload["impression_ids"] == sorted(traced.impression_ids)
    assert told.payload["codes"] == sorted([traced.redeemed_code, traced.reserved_code])
    assert told.payload["redemption_ids"] == [traced.redemption.id]
    old = session.get(OutboxEvent, (host.id, traced.old_event.id))
    assert old is not None and old.payload_version == 2 and "customer_id" not in old.payload
    assert old.payload["codes"] == told.payload["codes"]
    [delivery] = session.exec(select(WebhookDelivery).where(col(WebhookDelivery.event_id) == old.id)).all()
    body = json.loads(delivery.body)
    assert body["version"] == 2 and body["data"]["impression_ids"] == sorted(traced.impression_ids)


def test_erasure_blanks_the_customer_in_survey_answered_events_and_their_deliveries(
    session: Session,
    settings: Settings,
    shop: tuple[Tenant, Tenant, Customer, ConsentNotice],
    make_endpoint: Callable[..., webhooks.IssuedEndpoint],
) -> None:
    tenant, _partner, customer, _notice = shop
    make_endpoint(tenant, events=["survey.answered"])
    purpose, definition = surveys.template("experience")
    survey, _ = surveys.create(session, tenant.id, purpose, definition, template_name="experience")
    link = survey_answers.issue_link(session, tenant.id, survey.id, "c-1", 7, utcnow())
    opened = survey_answers.open_link(session, tenant.id, link.id, utcnow())
    assert opened is not None
    sent = {"found_us": ["search"], "experience": ["9"], "checkout": ["easy"], "recommend": ["10"]}
    response = survey_answers.record_response(session, opened, sent, utcnow())
    session.commit()
    deliveries.dispatch(session, now=utcnow())
    session.commit()
    values = {"customer id": customer.id, "external id": customer.external_id}
    assert {row.split(":")[0] for row in rows_naming(session, values)} >= {"outbox_events", "webhook_deliveries"}

    privacy.erase_customer(session, tenant.id, "c-1", hash_key=hash_key(settings))
    session.commit()

    assert rows_naming(session, values) == []
    [event] = session.exec(select(OutboxEvent).where(col(OutboxEvent.type) == survey_answers.SURVEY_ANSWERED)).all()
    assert event.payload["response_id"] == response.id
    assert event.payload["customer_id"] is None and event.payload["customer_external_id"] is None
    [delivery] = session.exec(select(WebhookDelivery).where(col(WebhookDelivery.event_id) == event.id)).all()
    data = json.loads(delivery.body)["data"]
    assert data["survey_id"] == survey.id and data["customer_external_id"] is None


def test_a_released_code_is_handed_to_the_next_customer(
    session: Session,
    settings: Settings,
    traced: Traced,
    make_customer: Callable[..., Customer],
    show_offer: Callable[..., ShownOffer],
) -> None:
    story = traced.story
    privacy.erase_customer(session, story.setup.host.id, "dog-owner-1", hash_key=hash_key(settings))
    session.commit()
    make_customer(story.setup.host, "dog-owner-2")
    buy(session, story.setup.host.id, "dog-owner-2", "cat_dog_beds", 9000)
    consent_to(session, story.setup.host.id, "dog-owner-2", story.setup.offering.id, Action.granted, story.notice_id)
    session.commit()
    assert codes.counts(session, story.setup.offering.id, story.offer.id).available == 1
    # The pool had two codes: the released one is the only one left to hand out.
    assert show_offer(story, "dog-owner-2").code == traced.reserved_code


def test_an_erased_customer_is_not_registered_again(
    session: Session, settings: Settings, shop: tuple[Tenant, Tenant, Customer, ConsentNotice]
) -> None:
    tenant = shop[0]
    privacy.erase_customer(session, tenant.id, "c-1", hash_key=hash_key(settings))
    session.commit()
    encryption_key = settings.encryption_key.get_secret_value()
    for external_id, email, param in (("c-1", None, "external_id"), ("c-new", "jane@example.COM", "email")):
        with pytest.raises(CustomerSuppressed) as info:
            upsert_customer(
                session,
                tenant.id,
                external_id,
                email=email,
                store_email=False,
                hash_key=hash_key(settings),
                encryption_key=encryption_key,
            )
        assert info.value.param == param
    with pytest.raises(NotFound):
        purchases.record_purchase(
            session,
            tenant.id,
            "c-1",
            PurchaseInput("o-2", T0, "EUR", (LineInput("cat_dog_beds", 1, 1, Channel.physical),)),
        )


def test_suppression_is_per_tenant(
    session: Session,
    settings: Settings,
    shop: tuple[Tenant, Tenant, Customer, ConsentNotice],
    make_customer: Callable[..., Customer],
) -> None:
    privacy.erase_customer(session, shop[0].id, "c-1", hash_key=hash_key(settings))
    session.commit()
    elsewhere = make_customer(external_id="c-1", email=EMAIL)
    assert elsewhere.tenant_id != shop[0].id


def test_erasing_twice_answers_the_same_and_unknown_is_not_found(
    session: Session, settings: Settings, shop: tuple[Tenant, Tenant, Customer, ConsentNotice]
) -> None:
    tenant = shop[0]
    privacy.erase_customer(session, tenant.id, "c-1", hash_key=hash_key(settings))
    session.commit()
    again = privacy.erase_customer(session, tenant.id, "c-1", hash_key=hash_key(settings))
    assert again.already_erased and again.partners_notified == 0
    assert len(outbox.pending(session, tenant.id, outbox.ERASURE_REQUESTED)) == 1
    with pytest.raises(NotFound):
        privacy.erase_customer(session, tenant.id, "never-seen", hash_key=hash_key(settings))


def test_export_holds_everything_including_the_consent_history(
    session: Session, settings: Settings, shop: tuple[Tenant, Tenant, Customer, ConsentNotice]
) -> None:
    tenant, partner, customer, notice = shop
    export = privacy.export_customer(
        session, tenant.id, "c-1", encryption_key=settings.encryption_key.get_secret_value()
    )
    assert export.customer.id == customer.id and export.email == EMAIL
    assert [o.purchase.order_id for o in export.orders] == ["o-1"]
    assert [line.category_id for line in export.orders[0].lines] == ["cat_dog_beds"]
    assert export.profile is not None and export.profile.order_count == 1
    assert [(e.action, e.partner) for e in export.consent_events] == [
        ("granted", ALL_PARTNERS),
        ("withdrawn", partner.id),
    ]
    assert {(s.partner, s.status) for s in export.consent_states} == {
        (ALL_PARTNERS, "granted"),
        (partner.id, "withdrawn"),
    }
    assert [n.id for n in export.notices] == [notice.id]
    assert [d.partner_tenant_id for d in export.disclosures] == [partner.id]


def test_export_of_another_tenants_customer_is_not_found(
    session: Session, settings: Settings, shop: tuple[Tenant, Tenant, Customer, ConsentNotice]
) -> None:
    with pytest.raises(NotFound):
        privacy.export_customer(session, shop[1].id, "c-1", encryption_key=settings.encryption_key.get_secret_value())


def test_withdrawal_tells_each_partner_what_it_holds_and_nothing_shared(
    session: Session, traced: Traced, make_partner: Callable[..., Tenant]
) -> None:
    host, offering = traced.story.setup.host, traced.story.setup.offering
    other = make_partner(host)
    disclosures.record_disclosure(session, host.id, traced.customer.id, other.id)
    session.commit()
    consent.withdraw(session, host.id, "dog-owner-1", method=Method.toggle, source=Source.account_page)
    session.commit()
    told = {
        e.recipient: e
        for e in outbox.pending(session, host.id, outbox.CONSENT_WITHDRAWN)
        if e.id != traced.old_event.id
    }
    assert sorted(told) == sorted([offering.id, other.id])
    mine = told[offering.id].payload
    assert told[offering.id].payload_version == 2 and "customer_id" not in mine
    assert mine["impression_ids"] == sorted(traced.impression_ids)
    assert mine["codes"] == sorted([traced.redeemed_code, traced.reserved_code])
    assert mine["redemption_ids"] == [traced.redemption.id]
    assert told[other.id].payload["impression_ids"] == told[other.id].payload["codes"] == []
    bodies = [
        json.loads(webhook_events.render_body(e.id, e.type, e.created_at, host.id, e.recipient, e.payload, 2))
        for e in told.values()
    ]
    assert all(traced.customer.id not in json.dumps(body) for body in bodies)
    assert all(body["version"] == 2 and "partner_id" not in body["data"] for body in bodies)


def test_export_holds_the_offers_shown_codes_answers_and_redemptions(
    session: Session, settings: Settings, traced: Traced
) -> None:
    host, offering = traced.story.setup.host, traced.story.setup.offering
    export = privacy.export_customer(
        session, host.id, "dog-owner-1", encryption_key=settings.encryption_key.get_secret_value()
    )
    assert [s.impression.id for s in export.offers_shown] == traced.impression_ids, "oldest first"
    assert {(s.impression.offering_tenant_id, s.partner_name, s.impression.offer_id) for s in export.offers_shown} == {
        (offering.id, offering.name, traced.story.offer.id)
    }
    assert [s.impression.code for s in export.offers_shown] == [traced.redeemed_code, traced.reserved_code]
    assert [(a.placement, a.shown) for a in export.answers] == [("order_confirmation", 1)] * 2
    assert {(c.tenant_id, c.code, c.redeemed_at is not None) for c in export.codes} == {
        (offering.id, traced.redeemed_code, True),
        (offering.id, traced.reserved_code, False),
    }
    assert [(r.id, r.order_value, r.impression_id) for r in export.redemptions] == [
        (traced.redemption.id, 12_000, traced.impression_ids[0])
    ]


def test_export_of_a_customer_never_shown_anything_is_empty_there(
    session: Session, settings: Settings, shop: tuple[Tenant, Tenant, Customer, ConsentNotice]
) -> None:
    export = privacy.export_customer(
        session, shop[0].id, "c-1", encryption_key=settings.encryption_key.get_secret_value()
    )
    assert (export.answers, export.offers_shown, export.codes, export.redemptions) == ([], [], [], [])

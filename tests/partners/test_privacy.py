"""Erasure leaves only keyed-hash suppression entries and tells partners; export holds everything."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, SQLModel, col, select

from partners import consent, disclosures, outbox, privacy, purchases
from partners.consent import ConsentInput
from partners.consent_ledger import ConsentEvent, ConsentState
from partners.consent_rules import ALL_PARTNERS, Action, Method, Purpose, Source
from partners.customers import Customer, CustomerSuppressed, Suppression, upsert_customer
from partners.errors import NotFound
from partners.interests import CustomerInterest, CustomerProfile
from partners.notices import ConsentNotice
from partners.partnerships import is_active_partner
from partners.purchases import Channel, LineInput, Purchase, PurchaseInput, PurchaseLine
from partners.retailers import Tenant
from partners.settings import Settings

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


def test_erasure_deletes_everything_but_keyed_suppression_entries(
    session: Session, settings: Settings, shop: tuple[Tenant, Tenant, Customer, ConsentNotice]
) -> None:
    tenant, partner, customer, _ = shop
    erasure = privacy.erase_customer(session, tenant.id, "c-1", hash_key=hash_key(settings))
    session.commit()
    assert erasure.partners_notified == 1 and not erasure.already_erased
    for model in (
        Purchase,
        CustomerProfile,
        CustomerInterest,
        ConsentEvent,
        ConsentState,
        disclosures.Disclosure,
    ):
        assert rows_about(session, model, tenant.id, customer.id) == 0, model
    assert session.exec(select(func.count()).select_from(PurchaseLine)).one() == 0
    assert session.exec(select(Customer).where(col(Customer.id) == customer.id)).first() is None
    entries = session.exec(select(Suppression).where(col(Suppression.tenant_id) == tenant.id)).all()
    assert sorted(e.kind for e in entries) == ["email", "external_id"]
    assert all("c-1" not in e.value_hash and "jane" not in e.value_hash.lower() for e in entries)
    told = outbox.pending(session, tenant.id, outbox.ERASURE_REQUESTED)
    assert [(e.payload["partner_id"], e.payload["customer_id"]) for e in told] == [(partner.id, customer.id)]


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

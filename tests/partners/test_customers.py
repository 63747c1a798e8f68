"""Customers are pseudonymous; purchases are checked, idempotent by order id, and feed the profile."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from partners import customers, purchases
from partners.customers import Customer, upsert_customer
from partners.errors import Conflict, Invalid, NotFound
from partners.identity import keyed_email_hash, normalize_email
from partners.purchases import Channel, LineInput, PurchaseInput
from partners.retailers import Tenant
from partners.settings import Settings

T0 = datetime(2025, 2, 1, 10, 0, tzinfo=UTC)


def upsert(
    session: Session,
    settings: Settings,
    tenant: Tenant,
    external_id: str,
    email: str | None = None,
    store: bool = False,
) -> customers.Upserted:
    return upsert_customer(
        session,
        tenant.id,
        external_id,
        email=email,
        store_email=store,
        hash_key=settings.identity_hash_key.get_secret_value().encode(),
        encryption_key=settings.encryption_key.get_secret_value(),
    )


def put(
    session: Session,
    settings: Settings,
    tenant: Tenant,
    external_id: str,
    email: str | None = None,
    store: bool = False,
) -> Customer:
    result = upsert(session, settings, tenant, external_id, email, store)
    session.commit()
    return result.customer


def test_email_is_kept_only_as_a_keyed_hash_of_its_normal_form(
    session: Session, settings: Settings, make_tenant: Callable[..., Tenant]
) -> None:
    tenant = make_tenant()
    customer = put(session, settings, tenant, "c-1", email="  Jane.Doe+shop@GMAIL.com ")
    key = settings.identity_hash_key.get_secret_value().encode()
    assert customer.email_hash == keyed_email_hash(key, normalize_email("janedoe@gmail.com"))
    assert customer.email_encrypted is None
    row = session.exec(select(Customer).where(Customer.id == customer.id)).one()
    assert "jane" not in repr(row.model_dump()).lower()


def test_the_raw_email_is_stored_encrypted_only_when_asked(
    session: Session, settings: Settings, make_tenant: Callable[..., Tenant]
) -> None:
    customer = put(session, settings, make_tenant(), "c-1", "jane@example.com", store=True)
    assert customer.email_encrypted and "jane" not in customer.email_encrypted
    assert customers.stored_email(customer, settings.encryption_key.get_secret_value()) == "jane@example.com"


def test_upsert_creates_then_replaces(session: Session, settings: Settings, make_tenant: Callable[..., Tenant]) -> None:
    tenant = make_tenant()
    created = upsert(session, settings, tenant, "c-1", "a@example.com", store=True)
    again = upsert(session, settings, tenant, "c-1")
    assert created.created and not again.created
    assert again.customer.id == created.customer.id
    assert again.customer.email_hash is None and again.customer.email_encrypted is None


@pytest.mark.parametrize(
    ("external_id", "email", "store", "param"),
    [
        ("jane@example.com", None, False, "external_id"),
        ("", None, False, "external_id"),
        ("x" * 129, None, False, "external_id"),
        ("has space", None, False, "external_id"),
        ("c-1", "not-an-email", False, "email"),
        ("c-1", "a@b", False, "email"),
        ("c-1", "two@@example.com", False, "email"),
        ("c-1", None, True, "store_email"),
    ],
)
def test_bad_customers_are_refused_naming_the_field(
    session: Session,
    settings: Settings,
    make_tenant: Callable[..., Tenant],
    external_id: str,
    email: str | None,
    store: bool,
    param: str,
) -> None:
    with pytest.raises(Invalid) as info:
        put(session, settings, make_tenant(), external_id, email, store)
    assert info.value.param == param


def test_customers_are_per_tenant(session: Session, make_customer: Callable[..., Customer]) -> None:
    mine = make_customer(external_id="same")
    theirs = make_customer(external_id="same")
    assert mine.tenant_id != theirs.tenant_id and mine.id != theirs.id
    with pytest.raises(NotFound):
        customers.get_customer_by_id(session, mine.tenant_id, theirs.id)


def line(category: str = "cat_dog_beds", price: int = 5000, quantity: int = 1) -> LineInput:
    return LineInput(category, price, quantity, Channel.physical)


def test_purchase_for_an_unknown_customer_is_a_clear_not_found(
    session: Session, make_tenant: Callable[..., Tenant]
) -> None:
    with pytest.raises(NotFound) as info:
        purchases.record_purchase(session, make_tenant().id, "ghost", PurchaseInput("o-1", T0, "EUR", (line(),)))
    assert info.value.param == "external_id"


def test_the_same_order_again_is_a_no_op_and_a_changed_one_a_conflict(
    session: Session, make_customer: Callable[..., Customer]
) -> None:
    customer = make_customer(external_id="c-1")
    order = PurchaseInput("o-1", T0, "EUR", (line(quantity=2), line("cat_dog_toys", 900)))
    first = purchases.record_purchase(session, customer.tenant_id, "c-1", order)
    again = purchases.record_purchase(session, customer.tenant_id, "c-1", order)
    assert first.created and not again.created
    assert again.purchase.id == first.purchase.id
    assert first.purchase.total_minor == 10_900
    changed = PurchaseInput("o-1", T0, "EUR", (line(price=4000),))
    with pytest.raises(Conflict) as info:
        purchases.record_purchase(session, customer.tenant_id, "c-1", changed)
    assert info.value.param == "order_id"


@pytest.mark.parametrize(
    ("order", "param"),
    [
        (PurchaseInput("o 1", T0, "EUR", (line(),)), "order_id"),
        (PurchaseInput("o-1", T0, "eur", (line(),)), "currency"),
        (PurchaseInput("o-1", datetime(2100, 1, 1, tzinfo=UTC), "EUR", (line(),)), "ordered_at"),
        (PurchaseInput("o-1", datetime(1999, 12, 31, tzinfo=UTC), "EUR", (line(),)), "ordered_at"),
        (PurchaseInput("o-1", T0, "EUR", ()), "lines"),
        (PurchaseInput("o-1", T0, "EUR", (line(), line("cat_no_such_thing"))), "lines.1.category_id"),
        (PurchaseInput("o-1", T0, "EUR", (line(price=-1),)), "lines.0.unit_price_minor"),
        (PurchaseInput("o-1", T0, "EUR", (line(quantity=0),)), "lines.0.quantity"),
        (PurchaseInput("o-1", T0, "EUR", (LineInput("cat_dog_beds", 1, 1, "vinyl"),)), "lines.0.channel"),  # type: ignore[arg-type]
    ],
)
def test_bad_orders_are_refused_naming_the_field(
    session: Session, make_customer: Callable[..., Customer], order: PurchaseInput, param: str
) -> None:
    customer = make_customer(external_id="c-1")
    with pytest.raises(Invalid) as info:
        purchases.record_purchase(session, customer.tenant_id, "c-1", order)
    assert info.value.param == param


def test_a_small_clock_skew_is_tolerated(session: Session, make_customer: Callable[..., Customer]) -> None:
    customer = make_customer(external_id="c-1")
    soon = datetime.now(UTC) + timedelta(minutes=2)
    recorded = purchases.record_purchase(
        session, customer.tenant_id, "c-1", PurchaseInput("o-1", soon, "EUR", (line(),))
    )
    assert recorded.created

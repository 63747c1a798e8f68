"""Bulk upload of purchases: NDJSON and CSV, per-row errors by line, idempotent, profiles kept up."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from partners import ingest_jobs, interest_store, interests
from partners.customers import Customer
from partners.db import utcnow
from partners.purchases import Channel, LineInput, Purchase, PurchaseInput, PurchaseLine, record_purchase
from partners.retailers import Tenant
from tests.flows import bearer

NDJSON = {"content-type": "application/x-ndjson"}
CSV = {"content-type": "text/csv"}
CSV_HEADER = "external_id,order_id,ordered_at,currency,category_id,unit_price_minor,quantity,channel"
BED, FOOD = "cat_orthopedic_dog_beds", "cat_dog_food"


class Shop:
    def __init__(self, client: TestClient, tenant: Tenant, headers: dict[str, str]) -> None:
        self.client, self.tenant, self.headers = client, tenant, headers

    def upload(self, body: bytes, kind: dict[str, str] = NDJSON) -> Any:
        response = self.client.post("/v1/uploads/purchases", content=body, headers={**self.headers, **kind})
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture
def shop(
    client: TestClient,
    make_tenant: Callable[..., Tenant],
    make_customer: Callable[..., Customer],
    token_for: Callable[..., str],
) -> Shop:
    tenant = make_tenant()
    for i in range(5):
        make_customer(tenant, f"c-{i}")
    return Shop(client, tenant, bearer(token_for(["customers:write"], tenant=tenant)))


def when(days_ago: int) -> str:
    return (datetime(2025, 6, 1, tzinfo=UTC) - timedelta(days=days_ago)).isoformat()


def order(order_id: str, customer: str, days_ago: int = 10, lines: list[tuple[str, int, int]] | None = None) -> Any:
    return {
        "external_id": customer,
        "order_id": order_id,
        "ordered_at": when(days_ago),
        "currency": "EUR",
        "lines": [
            {"category_id": c, "unit_price_minor": p, "quantity": q, "channel": "physical"}
            for c, p, q in (lines or [(BED, 8900, 1)])
        ],
    }


def ndjson(rows: list[Any]) -> bytes:
    return b"".join((row if isinstance(row, bytes) else json.dumps(row).encode()) + b"\n" for row in rows)


def stored(session: Session, tenant: Tenant) -> tuple[int, int]:
    session.expire_all()
    orders = select(func.count()).select_from(Purchase).where(col(Purchase.tenant_id) == tenant.id)
    lines = select(func.count()).select_from(PurchaseLine).where(col(PurchaseLine.tenant_id) == tenant.id)
    return session.exec(orders).one(), session.exec(lines).one()


def profile(session: Session, tenant: Tenant, external_id: str) -> interests.ProfileState | None:
    session.expire_all()
    customer = session.exec(
        select(Customer).where(col(Customer.tenant_id) == tenant.id, col(Customer.external_id) == external_id)
    ).one()
    return interest_store.load_profile(session, tenant.id, customer.id)


def test_bad_line_in_the_middle_and_unknown_customer_are_reported_the_rest_kept(shop: Shop, session: Session) -> None:
    rows: list[Any] = [order(f"o-{i}", f"c-{i % 5}", days_ago=i) for i in range(40)]
    rows.insert(20, b'{"external_id": "c-1", "order_id": ')
    rows.insert(30, order("o-ghost", "nobody"))
    rows.insert(35, {**order("o-future", "c-2"), "ordered_at": (utcnow() + timedelta(days=2)).isoformat()})
    job = shop.upload(ndjson(rows))
    assert (job["status"], job["rows_seen"], job["rows_ok"], job["rows_failed"]) == ("done", 43, 40, 3)
    assert [(e["line"], e["field"]) for e in job["errors"]] == [(21, None), (31, "external_id"), (36, "ordered_at")]
    assert "JSON" in job["errors"][0]["message"]
    assert "nobody" in job["errors"][1]["message"]
    assert stored(session, shop.tenant) == (40, 40)


def test_profiles_equal_the_single_route_fold_and_re_upload_changes_nothing(shop: Shop, session: Session) -> None:
    # Several orders per customer in one batch, out of time order, with mixed categories.
    rows = [
        order("o-1", "c-0", 30, [(BED, 9000, 1), (FOOD, 1500, 2)]),
        order("o-2", "c-0", 300, [(FOOD, 1400, 1)]),
        order("o-3", "c-1", 5, [(BED, 12000, 1)]),
        order("o-4", "c-0", 2, [(BED, 8000, 1)]),
    ]
    first = shop.upload(ndjson(rows))
    assert (first["rows_ok"], first["rows_failed"]) == (4, 0)
    before = profile(session, shop.tenant, "c-0")
    assert before is not None
    expected = interests.derive(
        interests.OrderFacts(
            datetime.fromisoformat(r["ordered_at"]),
            "EUR",
            tuple(
                interests.LineFacts(x["category_id"], x["unit_price_minor"], x["quantity"], "physical")
                for x in r["lines"]
            ),
        )
        for r in rows
        if r["external_id"] == "c-0"
    )
    assert expected is not None
    assert (
        before.order_count == 3
        and before.spend["EUR"].minor == expected.spend["EUR"].minor == 9000 + 3000 + 1400 + 8000
    )
    assert before.affinities() == pytest.approx(expected.affinities())

    again = shop.upload(ndjson([*rows, order("o-5", "c-1", 1)]))
    assert (again["rows_ok"], again["rows_failed"]) == (5, 0)
    assert stored(session, shop.tenant) == (5, 6)
    after = profile(session, shop.tenant, "c-0")
    assert after is not None and after.order_count == 3 and after.spend == before.spend
    c1 = profile(session, shop.tenant, "c-1")
    assert c1 is not None and c1.order_count == 2


def test_an_order_id_sent_again_with_other_contents_is_refused_per_row(shop: Shop, session: Session) -> None:
    shop.upload(ndjson([order("o-1", "c-0")]))
    job = shop.upload(
        ndjson(
            [order("o-1", "c-0", lines=[(BED, 1, 1)]), order("o-2", "c-1"), order("o-2", "c-2"), order("o-3", "c-3")]
        )
    )
    assert (job["rows_ok"], job["rows_failed"]) == (2, 2)
    assert [(e["line"], e["field"]) for e in job["errors"]] == [(1, "order_id"), (3, "order_id")]
    assert stored(session, shop.tenant) == (3, 3)


def csv_body(lines: list[str]) -> bytes:
    return ("\r\n".join([CSV_HEADER, *lines]) + "\r\n").encode()


def test_csv_orders_span_lines_and_a_bad_line_refuses_only_its_order(shop: Shop, session: Session) -> None:
    at = when(3)
    lines = [
        f"c-0,o-1,{at},EUR,{BED},8900,1,physical",
        f"c-0,o-1,{at},EUR,{FOOD},1200,3,physical",
        f"c-1,o-2,{at},EUR,{BED},9900,,download",  # quantity left empty: 1
        f"c-1,o-3,{at},EUR,{BED},9900,1,physical",
        f"c-1,o-3,{at},EUR,cat_no_such_thing,100,1,physical",  # line 6: order o-3 refused
        f"c-2,o-4,{at},EUR,{BED},5000,1,physical",
        f"c-2,o-4,{at},USD,{BED},5000,1,physical",  # line 8: the currency changes within the order
        f"c-3,o-5,{at},EUR,{FOOD},700,1,subscription",
    ]
    job = shop.upload(csv_body(lines), CSV)
    assert (job["rows_seen"], job["rows_ok"], job["rows_failed"]) == (5, 3, 2)
    assert [(e["line"], e["field"]) for e in job["errors"]] == [(6, "category_id"), (8, "currency")]
    assert stored(session, shop.tenant) == (3, 4)
    c0 = profile(session, shop.tenant, "c-0")
    assert c0 is not None and c0.spend["EUR"].minor == 8900 + 3600


def test_csv_unreadable_line_refuses_the_orders_it_may_belong_to(
    shop: Shop, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_jobs, "BATCH_SIZE", 3)  # orders and the bad line straddle batches
    at = when(3)
    lines = [
        f"c-0,o-1,{at},EUR,{BED},8900,1,physical",
        f"c-0,o-2,{at},EUR,{BED},8900,1,physical",
        f"c-0,o-2,{at},EUR,{FOOD},100,1,physical",
        f"c-0,o-2,{at},EUR,{FOOD},100,1,physical",
        "c-0,o-2,broken",  # line 6: o-2 and o-3 around it are not stored
        f"c-1,o-3,{at},EUR,{BED},8900,1,physical",
        f"c-1,o-4,{at},EUR,{BED},8900,1,physical",
        f"c-1,o-4,{at},EUR,{FOOD},100,1,physical",
    ]
    job = shop.upload(csv_body(lines), CSV)
    assert (job["rows_seen"], job["rows_ok"], job["rows_failed"]) == (5, 2, 3)
    assert sorted((e["line"], e["field"]) for e in job["errors"]) == [(3, None), (6, None), (7, None)]
    assert stored(session, shop.tenant) == (2, 3)
    refused = {e["line"]: e["message"] for e in job["errors"]}
    assert "line 6" in refused[3] and "Expected 8 columns" in refused[6]


def test_tenants_do_not_see_each_others_customers_orders_or_jobs(
    shop: Shop,
    session: Session,
    make_tenant: Callable[..., Tenant],
    make_customer: Callable[..., Customer],
    token_for: Callable[..., str],
) -> None:
    job = shop.upload(ndjson([order("o-1", "c-0")]))
    other_tenant = make_tenant()
    make_customer(other_tenant, "mine")
    other = Shop(shop.client, other_tenant, bearer(token_for(["customers:write"], tenant=other_tenant)))
    # The same order id is another shop's own; A's customer is unknown to B.
    theirs = other.upload(ndjson([order("o-1", "mine"), order("o-2", "c-0")]))
    assert (theirs["rows_ok"], theirs["rows_failed"]) == (1, 1)
    assert theirs["errors"][0]["field"] == "external_id"
    assert stored(session, shop.tenant) == (1, 1)
    assert shop.client.get(f"/v1/uploads/{job['id']}", headers=other.headers).status_code == 404
    mine = shop.client.get(f"/v1/uploads/{job['id']}", headers=shop.headers)
    assert mine.status_code == 200 and mine.json()["kind"] == "purchases"


def stored_profiles(session: Session, tenant: Tenant) -> dict[tuple[str, str], dict[str, Any]]:
    """Every stored profile and interest row of the tenant by (external id, category or ''), ids left out."""
    session.expire_all()
    external = {c.id: c.external_id for c in session.exec(select(Customer).where(col(Customer.tenant_id) == tenant.id))}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for p in session.exec(
        select(interest_store.CustomerProfile).where(col(interest_store.CustomerProfile.tenant_id) == tenant.id)
    ):
        # Left out too: when the row was written (and assessed, once profiles carry churn risk).
        written = {"updated_at", "risk_assessed_at"}
        rows[(external[p.customer_id], "")] = p.model_dump(exclude={"tenant_id", "customer_id", *written})
    for i in session.exec(
        select(interest_store.CustomerInterest).where(col(interest_store.CustomerInterest.tenant_id) == tenant.id)
    ):
        rows[(external[i.customer_id], i.category_id)] = i.model_dump(exclude={"tenant_id", "customer_id"})
    return rows


def test_stored_profiles_equal_those_the_single_route_stores_to_the_last_bit(
    shop: Shop, session: Session, make_tenant: Callable[..., Tenant], make_customer: Callable[..., Customer]
) -> None:
    # A first load (new profiles) and then a second upload onto stored profiles, several
    # orders per customer, out of time order, several lines, currencies and formats.
    channels = ("physical", "download", "subscription")
    batches = [
        [
            {
                **order(f"o-{b}-{i}", f"c-{i % 5}", (i * 37 + b * 11) % 400, [(BED, 900 + i * 7, 1), (FOOD, 1500, 2)]),
                "currency": ("EUR", "GBP")[i % 7 == 3],
            }
            for i in range(12)
        ]
        for b in range(2)
    ]
    for batch in batches:
        for i, row in enumerate(batch):
            for n, line in enumerate(row["lines"]):
                line["channel"] = channels[(i + n) % 3]
        assert shop.upload(ndjson(batch))["rows_ok"] == 12
    single = make_tenant()
    for i in range(5):
        make_customer(single, f"c-{i}")
    for batch in batches:
        for row in batch:
            lines = tuple(
                LineInput(x["category_id"], x["unit_price_minor"], x["quantity"], Channel(x["channel"]))
                for x in row["lines"]
            )
            purchase = PurchaseInput(row["order_id"], datetime.fromisoformat(row["ordered_at"]), row["currency"], lines)
            record_purchase(session, single.id, row["external_id"], purchase)
    session.commit()
    bulk_rows, single_rows = stored_profiles(session, shop.tenant), stored_profiles(session, single)
    assert len(bulk_rows) == len(single_rows) > 5
    assert bulk_rows == single_rows


def test_a_line_with_a_nul_is_a_row_error_and_the_rest_is_kept(shop: Shop, session: Session) -> None:
    bad = json.dumps(order("o-2", "c-1")).replace('"o-2"', '"o-\\u0000"').encode()
    job = shop.upload(ndjson([order("o-1", "c-0"), bad, order("o-3", "c-2")]))
    assert (job["status"], job["rows_ok"], job["rows_failed"]) == ("done", 2, 1)
    assert (job["errors"][0]["line"], job["errors"][0]["field"]) == (2, "order_id")
    good = [f"c-3,o-{i},{when(3)},EUR,{BED},100,1,physical" for i in (4, 5)]
    csv = "\n".join([CSV_HEADER, *good, f"c-4,o-\x00,{when(3)},EUR,{BED},100,1,physical"]) + "\n"
    job = shop.upload(csv.encode(), CSV)
    # o-5 is refused too: the unreadable line beside it may have belonged to it.
    assert (job["rows_ok"], job["rows_failed"]) == (1, 2)
    assert [(e["line"], "U+0000" in e["message"]) for e in job["errors"]] == [(3, False), (4, True)]
    assert stored(session, shop.tenant) == (3, 3)

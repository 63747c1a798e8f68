"""Bulk upload of consent events: the single route's rules per row, idempotent, withdrawals told."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from partners import consent_ledger, disclosures, ingest_consents, outbox
from partners.consent_ledger import ConsentEvent
from partners.customers import Customer
from partners.db import utcnow
from partners.notices import ConsentNotice
from partners.retailers import Tenant
from tests.flows import bearer

NDJSON = {"content-type": "application/x-ndjson"}
CSV = {"content-type": "text/csv"}


class Shop:
    def __init__(self, client: TestClient, tenant: Tenant, headers: dict[str, str], partner: Tenant, notice: str):
        self.client, self.tenant, self.headers, self.partner, self.notice = client, tenant, headers, partner, notice

    def upload(self, body: bytes, kind: dict[str, str] = NDJSON, headers: dict[str, str] | None = None) -> Any:
        response = self.client.post(
            "/v1/uploads/consent-events", content=body, headers={**(headers or self.headers), **kind}
        )
        assert response.status_code == 201, response.text
        return response.json()

    def grant(self, event_id: str, customer: str = "c-0", minutes: int = 0, **extra: Any) -> dict[str, Any]:
        occurred = datetime(2025, 5, 1, 8, tzinfo=UTC) + timedelta(minutes=minutes)
        row = {
            "external_id": customer,
            "event_id": event_id,
            "action": "granted",
            "purposes": ["partner_offers"],
            "partner": self.partner.id,
            "notice_id": self.notice,
            "method": "checkbox",
            "source": "checkout",
            "occurred_at": occurred.isoformat(),
        }
        return {**row, **extra}


@pytest.fixture
def shop(
    client: TestClient,
    make_tenant: Callable[..., Tenant],
    make_partner: Callable[..., Tenant],
    make_customer: Callable[..., Customer],
    make_notice: Callable[..., ConsentNotice],
    token_for: Callable[..., str],
) -> Shop:
    tenant = make_tenant()
    partner = make_partner(tenant)
    for i in range(3):
        make_customer(tenant, f"c-{i}")
    headers = bearer(token_for(["consents:write"], tenant=tenant))
    return Shop(client, tenant, headers, partner, make_notice(tenant).id)


def ndjson(rows: list[Any]) -> bytes:
    return b"".join((row if isinstance(row, bytes) else json.dumps(row).encode()) + b"\n" for row in rows)


def events(session: Session, tenant: Tenant) -> int:
    session.expire_all()
    query = select(func.count()).select_from(ConsentEvent).where(col(ConsentEvent.tenant_id) == tenant.id)
    return session.exec(query).one()


def statuses(session: Session, tenant: Tenant, external_id: str) -> list[tuple[str, str, str]]:
    session.expire_all()
    customer = session.exec(
        select(Customer).where(col(Customer.tenant_id) == tenant.id, col(Customer.external_id) == external_id)
    ).one()
    return [(s.purpose, s.partner, s.status) for s in consent_ledger.current_state(session, tenant.id, customer.id)]


def test_each_row_meets_the_single_routes_rules(
    shop: Shop, session: Session, make_tenant: Callable[..., Tenant], make_partner: Callable[..., Tenant]
) -> None:
    stranger = make_tenant()
    former = make_partner(shop.tenant, active=False)
    rows: list[Any] = [
        shop.grant("g-0", "c-0"),
        shop.grant("g-1", "c-1", partner=stranger.id),  # not a partner
        shop.grant("g-2", "nobody"),  # unknown customer
        b"{not json",
        shop.grant("g-3", "c-1", occurred_at=(utcnow() + timedelta(hours=1)).isoformat()),  # beyond clock skew
        shop.grant("g-4", "c-1", partner=former.id),  # partnership not active
        shop.grant("g-5", "c-1", method="telepathy"),
        shop.grant("g-0", "c-0"),  # the same event again: a no-op
        shop.grant("g-6", "c-2", minutes=1),
    ]
    job = shop.upload(ndjson(rows))
    assert (job["rows_seen"], job["rows_ok"], job["rows_failed"]) == (9, 3, 6)
    assert [(e["line"], e["field"]) for e in job["errors"]] == [
        (2, "partner"),
        (3, "external_id"),
        (4, None),
        (5, "occurred_at"),
        (6, "partner"),
        (7, "method"),
    ]
    assert events(session, shop.tenant) == 2
    assert statuses(session, shop.tenant, "c-0") == [("partner_offers", shop.partner.id, "granted")]
    assert statuses(session, shop.tenant, "c-1") == []

    again = shop.upload(ndjson(rows))
    assert (again["rows_ok"], again["rows_failed"]) == (3, 6)
    assert events(session, shop.tenant) == 2


def test_withdrawals_in_a_file_tell_the_partners_who_received_data(shop: Shop, session: Session) -> None:
    shop.upload(ndjson([shop.grant("g-1", "c-0", partner="all", purposes=["partner_offers", "overlap_analysis"])]))
    customer = session.exec(
        select(Customer).where(col(Customer.tenant_id) == shop.tenant.id, col(Customer.external_id) == "c-0")
    ).one()
    disclosures.record_disclosure(session, shop.tenant.id, customer.id, shop.partner.id)
    session.commit()
    withdrawal = {
        "external_id": "c-0",
        "event_id": "w-1",
        "action": "withdrawn",
        "purposes": ["partner_offers"],
        "partner": "all",
        "method": "unsubscribe_link",
        "source": "email",
        "occurred_at": datetime(2025, 5, 2, tzinfo=UTC).isoformat(),
    }
    job = shop.upload(ndjson([withdrawal]))
    assert (job["rows_ok"], job["rows_failed"]) == (1, 0)
    assert {p: s for p, _, s in statuses(session, shop.tenant, "c-0")} == {
        "partner_offers": "withdrawn",
        "overlap_analysis": "granted",
    }
    told = outbox.pending(session, shop.tenant.id, outbox.CONSENT_WITHDRAWN)
    assert [(e.payload["partner_id"], e.payload["purposes"]) for e in told] == [(shop.partner.id, ["partner_offers"])]
    shop.upload(ndjson([withdrawal]))  # sent again: recorded once, told once
    assert len(outbox.pending(session, shop.tenant.id, outbox.CONSENT_WITHDRAWN)) == 1


def test_csv_with_purposes_and_origin_columns(shop: Shop, session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_consents, "BATCH_SIZE", 2)
    header = (
        "external_id,event_id,action,purposes,partner,notice_id,method,source,occurred_at,origin_ip,origin_page_url"
    )
    at = "2025-05-01T08:00:00+00:00"
    page = "https://shop.example/checkout"
    lines = [
        header,
        f"c-0,g-1,granted,partner_offers|overlap_analysis,all,{shop.notice},checkbox,checkout,{at},203.0.113.7,{page}",
        f"c-1,g-2,granted,partner_offers,{shop.partner.id},{shop.notice},checkbox,checkout,{at},not-an-ip,{page}",
        f"c-1,g-3,granted,partner_offers sharing_everything,all,{shop.notice},checkbox,checkout,{at},,",
        f"c-2,g-4,granted,partner_offers,{shop.partner.id},{shop.notice},double_opt_in,checkout,{at},,",
    ]
    job = shop.upload(("\n".join(lines) + "\n").encode(), CSV)
    assert (job["rows_seen"], job["rows_ok"], job["rows_failed"]) == (4, 2, 2)
    assert [(e["line"], e["field"]) for e in job["errors"]] == [(3, "origin_ip"), (4, "purposes")]
    assert [s for _, _, s in statuses(session, shop.tenant, "c-0")] == ["granted", "granted"]
    assert statuses(session, shop.tenant, "c-2") == [("partner_offers", shop.partner.id, "pending")]
    stored = session.exec(select(ConsentEvent).where(col(ConsentEvent.event_id) == "g-1")).first()
    assert stored is not None and (stored.origin_ip, stored.origin_page) == ("203.0.113.7", page)


def test_jobs_are_read_by_their_tenant_under_the_scope_they_were_sent_with(
    shop: Shop, make_tenant: Callable[..., Tenant], token_for: Callable[..., str]
) -> None:
    job = shop.upload(ndjson([shop.grant("g-1")]))
    path = f"/v1/uploads/{job['id']}"
    assert shop.client.get(path, headers=shop.headers).json()["kind"] == "consent_events"
    customers_only = bearer(token_for(["customers:write"], tenant=shop.tenant))
    assert shop.client.get(path, headers=customers_only).status_code == 403
    elsewhere = bearer(token_for(["consents:write", "customers:write"], tenant=make_tenant()))
    assert shop.client.get(path, headers=elsewhere).status_code == 404
    refused = shop.client.post("/v1/uploads/consent-events", content=b"", headers={**customers_only, **NDJSON})
    assert refused.status_code == 403


def test_the_list_of_uploads_shows_the_jobs_a_token_may_read(
    shop: Shop, make_tenant: Callable[..., Tenant], token_for: Callable[..., str]
) -> None:
    consents_job = shop.upload(ndjson([shop.grant("g-1")]))
    both = bearer(token_for(["consents:write", "customers:write"], tenant=shop.tenant))
    people = shop.client.post(
        "/v1/uploads/customers", content=ndjson([{"external_id": "c-9"}]), headers={**both, **NDJSON}
    ).json()
    listed = shop.client.get("/v1/uploads", headers=both).json()
    assert [job["id"] for job in listed["data"]] == [consents_job["id"], people["id"]]
    assert [j["kind"] for j in shop.client.get("/v1/uploads", headers=shop.headers).json()["data"]] == [
        "consent_events"
    ]
    assert shop.client.get("/v1/uploads?status=running", headers=both).json()["data"] == []
    assert len(shop.client.get("/v1/uploads?status=done", headers=both).json()["data"]) == 2
    elsewhere = bearer(token_for(["consents:write", "customers:write"], tenant=make_tenant()))
    assert shop.client.get("/v1/uploads", headers=elsewhere).json()["data"] == []
    assert (
        shop.client.get("/v1/uploads", headers=bearer(token_for(["offers:read"], tenant=shop.tenant))).status_code
        == 403
    )


def test_a_line_with_a_nul_is_a_row_error_and_the_rest_is_kept(shop: Shop, session: Session) -> None:
    rows = [
        shop.grant("g-0", "c-0"),
        shop.grant("g-1", "c-1", origin={"user_agent": "Mozilla/5.0\u0000"}),
        shop.grant("g-2", "c-2"),
    ]
    job = shop.upload(ndjson(rows))
    assert (job["status"], job["rows_ok"], job["rows_failed"]) == ("done", 2, 1)
    assert (job["errors"][0]["line"], job["errors"][0]["field"]) == (2, "origin.user_agent")
    assert events(session, shop.tenant) == 2


def test_a_batch_folds_each_customers_states_as_the_single_route_does(
    shop: Shop, session: Session, make_customer: Callable[..., Customer]
) -> None:
    # The upload re-folds its customers once, at the end of the batch; the single route after each
    # event. The same events, for twin customers, must leave the same states.
    def story(customer: str, tag: str) -> list[dict[str, Any]]:
        if customer.endswith("0"):  # all, then the partner withdrawn; a grant arriving late but older
            return [
                shop.grant(f"{tag}a", customer, 0, partner="all"),
                shop.grant(f"{tag}b", customer, 2, action="withdrawn", method="preference_link", notice_id=None),
                shop.grant(f"{tag}c", customer, 1),
            ]
        if customer.endswith("1"):  # the partner, then everything withdrawn
            return [
                shop.grant(f"{tag}a", customer, 0),
                shop.grant(f"{tag}b", customer, 1, action="withdrawn", method="toggle", partner="all", notice_id=None),
            ]
        return [  # double opt-in, then its confirmation
            shop.grant(f"{tag}a", customer, 0, method="double_opt_in"),
            {
                "external_id": customer,
                "event_id": f"{tag}b",
                "action": "confirmed",
                "method": "email_confirmation",
                "source": "email",
                "occurred_at": datetime(2025, 5, 1, 9, tzinfo=UTC).isoformat(),
                "confirms": f"{tag}a",
            },
        ]

    uploaded = [row for i in range(3) for row in story(f"c-{i}", f"u{i}-")]
    uploaded.insert(2, shop.grant("bad", "c-1", partner="ten_unknown"))  # refused mid-batch
    job = shop.upload(ndjson(uploaded))
    assert (job["rows_ok"], job["rows_failed"]) == (7, 1)
    for i in range(3):
        make_customer(shop.tenant, f"d-{i}")
        for row in story(f"d-{i}", f"s{i}-"):
            body = {key: value for key, value in row.items() if key != "external_id" and value is not None}
            response = shop.client.post(f"/v1/customers/d-{i}/consent-events", json=body, headers=shop.headers)
            assert response.status_code == 201, response.text
    expected = [
        [("partner_offers", "all", "granted"), ("partner_offers", shop.partner.id, "withdrawn")],
        [("partner_offers", "all", "withdrawn"), ("partner_offers", shop.partner.id, "withdrawn")],
        [("partner_offers", shop.partner.id, "granted")],
    ]
    for i in range(3):
        assert statuses(session, shop.tenant, f"c-{i}") == statuses(session, shop.tenant, f"d-{i}") == expected[i]

"""The churn-risk list over HTTP: filters, counts per level, paging, bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from partners.db import utcnow
from partners.retailers import Tenant
from tests.flows import bearer


@pytest.fixture
def headers(client: TestClient, make_tenant: Callable[..., Tenant], token_for: Callable[..., str]) -> dict[str, str]:
    tenant = make_tenant()
    headers = bearer(token_for(["customers:write"], tenant=tenant))
    for name, days in (("fresh", 5), ("cool", 100), ("risky", 170), ("gone", 400)):
        assert client.put(f"/v1/customers/{name}", json={}, headers=headers).status_code == 201
        body = {
            "order_id": f"{name}-1",
            "ordered_at": (utcnow() - timedelta(days=days)).isoformat(),
            "currency": "GBP",
            "lines": [{"category_id": "cat_dog_beds", "unit_price_minor": 5000, "channel": "physical"}],
        }
        assert client.post(f"/v1/customers/{name}/purchases", json=body, headers=headers).status_code == 201
    return headers


def get(client: TestClient, headers: dict[str, str], query: str) -> Any:
    response = client.get(f"/v1/churn-risk/customers{query}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_lists_customers_by_level_with_counts(client: TestClient, headers: dict[str, str]) -> None:
    body = get(client, headers, "?level=at_risk&level=lapsed")
    assert sorted(c["external_id"] for c in body["data"]) == ["gone", "risky"]
    assert body["counts"] == {"active": 1, "cooling": 1, "at_risk": 1, "lapsed": 1}
    risky = next(c for c in body["data"] if c["external_id"] == "risky")
    assert risky["risk_level"] == "at_risk" and risky["expected_interval_days"] == 60.0
    assert 109 < risky["days_overdue"] < 111 and risky["lifetime_value"]["historic_minor"] == 5000
    first = get(client, headers, "?limit=2")
    rest = get(client, headers, f"?limit=2&cursor={first['next_cursor']}")
    assert len(first["data"]) == 2 and len(rest["data"]) == 2 and rest["next_cursor"] is None
    before = (utcnow() - timedelta(days=150)).isoformat().replace("+00:00", "Z")
    assert {c["external_id"] for c in get(client, headers, f"?last_order_before={before}")["data"]} == {"risky", "gone"}
    assert get(client, headers, "?min_orders=2")["data"] == []


@pytest.mark.parametrize(
    "query", ["?level=gone", "?last_order_before=2026-01-01T00:00:00", "?last_order_before=1990-01-01T00:00:00Z"]
)
def test_bad_filters_are_refused(client: TestClient, headers: dict[str, str], query: str) -> None:
    response = client.get(f"/v1/churn-risk/customers{query}", headers=headers)
    assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json")

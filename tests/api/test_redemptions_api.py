"""Redemptions, the ledger and reports over HTTP: scopes, status codes, problems."""

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.factories_redemptions import ShownOffer


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_redeem_once_refuse_twice_then_both_sides_see_it(
    client: TestClient, shown_offer: Callable[..., ShownOffer], token_for: Callable[..., str]
) -> None:
    shown = shown_offer()
    shop = token_for(["redemptions:write", "reports:read"], tenant=shown.offering)
    host = token_for(["reports:read"], tenant=shown.host)
    body = {"order_id": "A-1", "order_value": 5_000, "currency": "GBP", "code": shown.code}

    first = client.post("/v1/redemptions", json=body, headers=_headers(shop))
    assert first.status_code == 201, first.text
    red = first.json()
    assert red["impression_id"] == shown.impression_id and red["commission"] == 500
    again = client.post("/v1/redemptions", json=body, headers=_headers(shop))
    assert again.status_code == 200 and again.json()["id"] == red["id"]
    second = client.post("/v1/redemptions", json={**body, "order_id": "A-2"}, headers=_headers(shop))
    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"
    assert client.get(f"/v1/redemptions/{red['id']}", headers=_headers(shop)).json()["order_id"] == "A-1"

    for token, direction, report_side in ((host, "owed_to_me", "as_host"), (shop, "owed_by_me", "as_offering")):
        ledger = client.get(f"/v1/partnerships/{shown.partnership_id}/ledger", headers=_headers(token))
        assert ledger.status_code == 200, ledger.text
        [month] = ledger.json()["months"]
        assert month[direction] == [{"currency": "GBP", "commissions": 500, "reversals": 0, "net": 500}]
        assert [e["redemption_id"] for e in ledger.json()["entries"]] == [red["id"]]
        report = client.get(f"/v1/reports/partnerships/{shown.partnership_id}", headers=_headers(token))
        assert report.status_code == 200, report.text
        stats = report.json()[report_side]
        assert stats["impressions"] == 1 and stats["unique_customers"] == 1 and stats["redemptions"] == 1
        assert stats["revenue"] == {"GBP": 5_000} and stats["commission"] == {"GBP": 500}
        assert "customer" not in report.text.replace("unique_customers", "")

    offer_report = client.get(f"/v1/reports/offers/{red['offer_id']}", headers=_headers(shop))
    assert offer_report.json()["stats"]["conversion_rate"] == 1.0

    reversed_ = client.post(f"/v1/redemptions/{red['id']}/reverse", json={"reason": "refund"}, headers=_headers(shop))
    assert reversed_.status_code == 200 and reversed_.json()["reversed_at"]
    ledger = client.get(f"/v1/partnerships/{shown.partnership_id}/ledger", headers=_headers(host)).json()
    assert ledger["months"][0]["owed_to_me"][0]["net"] == 0


def test_bad_redemptions_are_problems(
    client: TestClient, shown_offer: Callable[..., ShownOffer], token_for: Callable[..., str]
) -> None:
    shown = shown_offer()
    shop = token_for(["redemptions:write"], tenant=shown.offering)
    base = {"order_id": "B-1", "order_value": 5_000, "currency": "GBP", "code": shown.code}
    for body, status in (
        ({**base, "code": "UNKNOWN1"}, 404),
        ({**base, "currency": "EUR"}, 422),
        ({**base, "order_value": 0}, 422),
        ({"order_id": "B-1", "order_value": 5_000, "currency": "GBP"}, 422),
    ):
        response = client.post("/v1/redemptions", json=body, headers=_headers(shop))
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
    foreign = client.post("/v1/redemptions", json=base, headers=_headers(token_for(["redemptions:write"], shown.host)))
    assert foreign.status_code == 404, "the host cannot redeem the offering shop's code"
    no_scope = client.post("/v1/redemptions", json=base, headers=_headers(token_for(["reports:read"], shown.offering)))
    assert no_scope.status_code == 403

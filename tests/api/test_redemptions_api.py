"""Redemptions, the ledger and reports over HTTP: scopes, status codes, problems."""

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

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
        entries = client.get(f"/v1/partnerships/{shown.partnership_id}/ledger/entries", headers=_headers(token))
        assert entries.status_code == 200, entries.text
        [entry] = entries.json()["data"]
        assert (entry["redemption_id"], entry["impression_id"]) == (red["id"], shown.impression_id)
        assert (entry["amount"], entry["order_value"], entry["direction"]) == (500, 5_000, direction)
        report = client.get(f"/v1/reports/partnerships/{shown.partnership_id}", headers=_headers(token))
        assert report.status_code == 200, report.text
        stats = report.json()[report_side]["total"]
        assert stats["impressions"] == 1 and stats["unique_customers"] == 1 and stats["redemptions"] == 1
        assert stats["revenue"] == {"GBP": 5_000} and stats["commission"] == {"GBP": 500}
        assert [o["offer_id"] for o in report.json()[report_side]["offers"]] == [red["offer_id"]]
        assert "customer_id" not in report.text

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
    for body, status, problem in (
        ({**base, "code": "UNKNOWN1"}, 404, "unknown_code"),
        ({**base, "code": None, "impression_id": "imp_nope"}, 404, "unknown_impression"),
        ({**base, "currency": "EUR"}, 422, "currency_mismatch"),
        ({**base, "order_value": 0}, 422, "validation_error"),
        ({**base, "redeemed_at": "2020-01-01T00:00:00Z"}, 422, "outside_attribution_window"),
        ({**base, "redeemed_at": "2020-01-01T00:00:00"}, 422, "invalid"),
        ({"order_id": "B-1", "order_value": 5_000, "currency": "GBP"}, 422, "invalid"),
    ):
        response = client.post("/v1/redemptions", json=body, headers=_headers(shop))
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == problem, response.text
    assert client.post("/v1/redemptions", json=base, headers=_headers(shop)).status_code == 201
    used = client.post("/v1/redemptions", json={**base, "order_id": "B-2"}, headers=_headers(shop))
    assert (used.status_code, used.json()["code"], used.json()["param"]) == (409, "code_already_redeemed", "code")
    changed = client.post("/v1/redemptions", json={**base, "order_value": 1}, headers=_headers(shop))
    assert (changed.status_code, changed.json()["code"]) == (409, "order_already_reported")
    foreign = client.post("/v1/redemptions", json=base, headers=_headers(token_for(["redemptions:write"], shown.host)))
    assert foreign.status_code == 404, "the host cannot redeem the offering shop's code"
    no_scope = client.post("/v1/redemptions", json=base, headers=_headers(token_for(["reports:read"], shown.offering)))
    assert no_scope.status_code == 403


def test_reports_download_as_csv(
    client: TestClient, shown_offer: Callable[..., ShownOffer], token_for: Callable[..., str]
) -> None:
    shown = shown_offer()
    shop = token_for(["redemptions:write", "reports:read"], tenant=shown.offering)
    body = {"order_id": "C-1", "order_value": 8_000, "currency": "GBP", "code": shown.code}
    offer_id = client.post("/v1/redemptions", json=body, headers=_headers(shop)).json()["offer_id"]
    path = f"/v1/reports/partnerships/{shown.partnership_id}"
    now = datetime.now(UTC)
    window = {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(days=1)).isoformat()}
    by_header = client.get(path, params=window, headers={**_headers(shop), "Accept": "text/csv"})
    by_query = client.get(path, params={**window, "format": "csv"}, headers=_headers(shop))
    for response in (by_header, by_query):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(by_query.text)))
    assert by_header.text == by_query.text
    offering = [r for r in rows if r["direction"] == "as_offering"]
    assert [(r["offer_id"], r["currency"], r["revenue"], r["commission"]) for r in offering] == [
        ("", "GBP", "8000", "800"),
        (offer_id, "GBP", "8000", "800"),
    ]
    assert [(r["offer_id"], r["impressions"], r["currency"]) for r in rows if r["direction"] == "as_host"] == [
        ("", "0", "")
    ]
    offer_csv = client.get(f"/v1/reports/offers/{offer_id}", params={**window, "format": "csv"}, headers=_headers(shop))
    [row] = list(csv.DictReader(io.StringIO(offer_csv.text)))
    assert (row["impressions"], row["redemptions"], row["conversion_rate"]) == ("1", "1", "1.0")
    as_json = client.get(f"/v1/reports/offers/{offer_id}", headers={**_headers(shop), "Accept": "application/json"})
    assert as_json.json()["stats"]["redemptions"] == 1
    bad = client.get(f"/v1/reports/offers/{offer_id}?format=xml", headers=_headers(shop))
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    backwards = client.get(
        f"/v1/reports/offers/{offer_id}",
        params={"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        headers=_headers(shop),
    )
    assert backwards.status_code == 422 and backwards.json()["param"] == "from"


def test_the_document_declares_the_200_of_an_order_reported_again(client: TestClient) -> None:
    # Found by the SDK: a repeated report answers 200 (RecordedRedemption.created is False), undocumented till now.
    responses = client.get("/openapi.json").json()["paths"]["/v1/redemptions"]["post"]["responses"]
    assert {"200", "201"} <= set(responses)
    schema = responses["200"]["content"]["application/json"]["schema"]
    assert schema == responses["201"]["content"]["application/json"]["schema"]

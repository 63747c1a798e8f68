"""The exchange over HTTP: scope, the answer's shape, idempotent retries, bad input."""

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.factories_exchange import Story


def _ask(client: TestClient, token: str, key: str | None = None, **body: object) -> object:
    payload = {"customer_external_id": "dog-owner-1", "placement": "order_confirmation", **body}
    headers = {"Authorization": f"Bearer {token}"}
    if key:
        headers["Idempotency-Key"] = key
    return client.post("/v1/exchange", json=payload, headers=headers)


def test_the_host_asks_and_gets_the_partner_offer(
    client: TestClient, exchange_story: Callable[..., Story], token_for: Callable[..., str]
) -> None:
    story = exchange_story(pool=3)
    token = token_for(["exchange:read"], tenant=story.setup.host)
    response = _ask(client, token)
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    [offer] = body["offers"]
    assert offer["offer_id"] == story.offer.id
    assert offer["partner"]["display_name"] == "Snoozy Beds"
    assert offer["percent_off"] == 20.0
    assert offer["code"] and offer["impression_id"].startswith("imp_")
    assert body["answer_id"].startswith("exa_")


def test_a_retry_with_the_same_key_is_the_same_answer(
    client: TestClient, exchange_story: Callable[..., Story], token_for: Callable[..., str]
) -> None:
    story = exchange_story(pool=3)
    token = token_for(["exchange:read"], tenant=story.setup.host)
    first = _ask(client, token, key="checkout-123").json()  # type: ignore[attr-defined]
    again = _ask(client, token, key="checkout-123")
    assert again.json() == first  # type: ignore[attr-defined]
    assert again.headers["idempotent-replayed"] == "true"  # type: ignore[attr-defined]


def test_unknown_customers_and_scopes(
    client: TestClient, exchange_story: Callable[..., Story], token_for: Callable[..., str]
) -> None:
    story = exchange_story()
    token = token_for(["exchange:read"], tenant=story.setup.host)
    unknown = _ask(client, token, customer_external_id="nobody").json()  # type: ignore[attr-defined]
    assert unknown["offers"] == []
    no_scope = _ask(client, token_for(["offers:read"], tenant=story.setup.host))
    assert no_scope.status_code == 403  # type: ignore[attr-defined]


def test_bad_requests_are_problems(client: TestClient, token_for: Callable[..., str]) -> None:
    token = token_for(["exchange:read"])
    for body, param in (
        ({"placement": "billboard"}, "placement"),
        ({"limit": 0}, "limit"),
        ({"limit": 11}, "limit"),
        ({"region": "gb"}, "region"),
        ({"customer_external_id": ""}, "customer_external_id"),
        ({"surprise": True}, "surprise"),
    ):
        response = _ask(client, token, **body)
        assert response.status_code == 422, body  # type: ignore[attr-defined]
        assert response.json()["param"] == param  # type: ignore[attr-defined]

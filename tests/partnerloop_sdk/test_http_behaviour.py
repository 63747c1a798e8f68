"""The SDK's HTTP behaviour against a mocked Partnerloop (respx): tokens, retries, idempotency keys, errors.

Only the remote party's network is fake here; tests/partnerloop_sdk/test_against_app.py runs the
same SDK against our real app.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from partnerloop_sdk import MemoryCursorStore, Partnerloop, PartnerloopError, RetryPolicy, TransportError

BASE = "https://partnerloop.test"
TOKEN_URL = f"{BASE}/oauth/token"


class Sleeps:
    """Records the waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def _token(n: int = 1, expires_in: int = 900, **extra: Any) -> httpx.Response:
    body = {"token_type": "Bearer", "access_token": f"at-{n}", "expires_in": expires_in, "scope": "offers:read"}
    return httpx.Response(200, json={**body, **extra})


def _problem(status: int, code: str, **extra: Any) -> httpx.Response:
    body = {"type": f"https://partnerloop.dev/problems/{code}", "title": "t", "status": status, "detail": "why"}
    return httpx.Response(
        status, json={**body, "code": code, **extra}, headers={"content-type": "application/problem+json"}
    )


def _client(sleeps: Sleeps, attempts: int = 4) -> Partnerloop:
    retry = RetryPolicy(max_attempts=attempts, sleep=sleeps, rng=lambda: 1.0)
    return Partnerloop.with_client_credentials(BASE, "cli_1", "plp_cs_secret", retry=retry)


def test_a_client_credentials_token_is_fetched_once_and_sent_as_bearer(api: respx.MockRouter, sleeps: Sleeps) -> None:
    token = api.post("/oauth/token").mock(return_value=_token())
    tenant = api.get("/v1/tenant").mock(return_value=httpx.Response(200, json={"id": "ten_1", "name": "x"}))
    with _client(sleeps) as pl:
        assert pl.profile.tenant()["id"] == "ten_1"
        pl.profile.tenant()
    assert token.call_count == 1
    sent = token.calls[0].request
    assert sent.headers["authorization"].startswith("Basic ")  # client_secret_basic, never in the URL
    assert b"grant_type=client_credentials" in sent.content
    assert [c.request.headers["authorization"] for c in tenant.calls] == ["Bearer at-1", "Bearer at-1"]


def test_a_token_about_to_expire_is_renewed_before_the_call(api: respx.MockRouter, sleeps: Sleeps) -> None:
    # 30 s left is inside the 60 s leeway: the SDK fetches a new token rather than send one that may lapse.
    token = api.post("/oauth/token").mock(side_effect=[_token(1), _token(2)])
    tenant = api.get("/v1/tenant").mock(return_value=httpx.Response(200, json={"id": "ten_1"}))
    with _client(sleeps) as pl:
        pl.profile.tenant()
        assert pl.token is not None and pl.token["access_token"] == "at-1"
        pl.api.http.token["expires_at"] = int(time.time()) + 30  # type: ignore[attr-defined]  # fourteen and a half minutes later
        pl.profile.tenant()
    assert token.call_count == 2
    assert [c.request.headers["authorization"] for c in tenant.calls] == ["Bearer at-1", "Bearer at-2"]


def test_a_revoked_token_is_replaced_once_after_a_401(api: respx.MockRouter, sleeps: Sleeps) -> None:
    api.post("/oauth/token").mock(side_effect=[_token(1), _token(2)])
    tenant = api.get("/v1/tenant").mock(side_effect=[_problem(401, "invalid_token"), httpx.Response(200, json={})])
    with _client(sleeps) as pl:
        pl.profile.tenant()
    assert [c.request.headers["authorization"] for c in tenant.calls] == ["Bearer at-1", "Bearer at-2"]


def test_a_refused_token_request_raises_the_oauth_error(api: respx.MockRouter, sleeps: Sleeps) -> None:
    api.post("/oauth/token").mock(return_value=httpx.Response(401, json={"error": "invalid_client"}))
    with _client(sleeps) as pl, pytest.raises(PartnerloopError) as raised:
        pl.profile.tenant()
    assert (raised.value.status, raised.value.code) == (401, "invalid_client")


def test_staff_tokens_are_refreshed_and_each_rotated_refresh_token_is_used_next(
    api: respx.MockRouter, sleeps: Sleeps
) -> None:
    stale = {
        "access_token": "at-0",
        "token_type": "Bearer",
        "refresh_token": "rt-0",
        "expires_at": int(time.time()) - 1,
    }
    refreshes = api.post("/oauth/token").mock(
        side_effect=[_token(1, expires_in=10, refresh_token="rt-1"), _token(2, refresh_token="rt-2")]
    )
    tenant = api.get("/v1/tenant").mock(return_value=httpx.Response(200, json={}))
    saved: list[dict[str, Any]] = []
    with Partnerloop.with_staff_token(BASE, stale, on_token=saved.append) as pl:
        pl.profile.tenant()  # at-0 expired: refresh with rt-0
        pl.profile.tenant()  # at-1 expires within the leeway: refresh with rt-1, never rt-0 again
    forms = [dict(httpx.QueryParams(c.request.content.decode())) for c in refreshes.calls]
    assert [(f["grant_type"], f["refresh_token"], f["client_id"]) for f in forms] == [
        ("refresh_token", "rt-0", "partnerloop-docs"),
        ("refresh_token", "rt-1", "partnerloop-docs"),
    ]
    assert [t["refresh_token"] for t in saved] == ["rt-1", "rt-2"]
    assert [c.request.headers["authorization"] for c in tenant.calls] == ["Bearer at-1", "Bearer at-2"]


def test_a_mutating_post_carries_one_idempotency_key_across_its_retries(api: respx.MockRouter, sleeps: Sleeps) -> None:
    api.post("/oauth/token").mock(return_value=_token())
    answer = {"answer_id": "exa_1", "offers": []}
    exchange = api.post("/v1/exchange").mock(
        side_effect=[_problem(503, "unavailable"), httpx.ConnectError("refused"), httpx.Response(200, json=answer)]
    )
    with _client(sleeps) as pl:
        assert pl.exchange.offers_for("cust-1")["answer_id"] == "exa_1"
    keys = {c.request.headers["idempotency-key"] for c in exchange.calls}
    assert len(exchange.calls) == 3 and len(keys) == 1 and next(iter(keys)).startswith("sdk_")
    assert sleeps.waits == [0.5, 1.0]  # exponential backoff (jitter pinned to its top)


def test_retry_after_is_honoured_in_seconds_and_as_a_date(api: respx.MockRouter, sleeps: Sleeps) -> None:
    api.post("/oauth/token").mock(return_value=_token())
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    api.get("/v1/tenant").mock(
        side_effect=[
            httpx.Response(429, json={"status": 429, "code": "rate_limited"}, headers={"Retry-After": "7"}),
            httpx.Response(429, json={"status": 429, "code": "rate_limited"}, headers={"Retry-After": later}),
            httpx.Response(200, json={}),
        ]
    )
    with _client(sleeps) as pl:
        pl.profile.tenant()
    assert sleeps.waits[0] == 7
    assert 18 <= sleeps.waits[1] <= 20


def test_a_patch_is_not_repeated_after_a_503(api: respx.MockRouter, sleeps: Sleeps) -> None:
    api.post("/oauth/token").mock(return_value=_token())
    patch = api.patch("/v1/offers/off_1").mock(return_value=_problem(503, "unavailable"))
    with _client(sleeps) as pl, pytest.raises(PartnerloopError) as raised:
        pl.offers.update("off_1", {"title": "new"})
    assert patch.call_count == 1 and raised.value.status == 503


def test_a_patch_whose_answer_timed_out_is_not_repeated_but_one_never_sent_is(
    api: respx.MockRouter, sleeps: Sleeps
) -> None:
    api.post("/oauth/token").mock(return_value=_token())
    patch = api.patch("/v1/offers/off_1").mock(side_effect=[httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
    with _client(sleeps) as pl, pytest.raises(TransportError):
        pl.offers.update("off_1", {"title": "new"})
    assert patch.call_count == 2  # refused: safe to send again; timed out mid-way: maybe applied, not resent


def test_retries_stop_after_the_last_attempt_with_the_last_error(api: respx.MockRouter, sleeps: Sleeps) -> None:
    api.post("/oauth/token").mock(return_value=_token())
    route = api.get("/v1/offers/off_1").mock(return_value=_problem(503, "unavailable", request_id="req_9"))
    with _client(sleeps, attempts=3) as pl, pytest.raises(PartnerloopError) as raised:
        pl.offers.get("off_1")
    assert route.call_count == 3 and len(sleeps.waits) == 2
    assert (raised.value.status, raised.value.code, raised.value.request_id) == (503, "unavailable", "req_9")


def test_a_problem_is_raised_with_its_status_code_param_detail_and_request_id(
    api: respx.MockRouter, sleeps: Sleeps
) -> None:
    api.post("/oauth/token").mock(return_value=_token())
    api.post("/v1/redemptions").mock(
        return_value=_problem(409, "code_already_redeemed", param="code", request_id="req_1")
    )
    with _client(sleeps) as pl, pytest.raises(PartnerloopError) as raised:
        pl.redemptions.record("o-1", 4000, "GBP", code="PAW-1")
    error = raised.value
    assert (error.status, error.code, error.param, error.detail, error.request_id) == (
        409, "code_already_redeemed", "code", "why", "req_1",
    )  # fmt: skip
    assert sleeps.waits == []  # a refusal is final: no retry


def test_change_feed_iteration_follows_cursors_and_saves_each_page_once_read(
    api: respx.MockRouter, sleeps: Sleeps
) -> None:
    api.post("/oauth/token").mock(return_value=_token())
    pages = [
        {"data": [{"seq": 1}, {"seq": 2}], "next_cursor": "c2", "has_more": True},
        {"data": [{"seq": 3}], "next_cursor": "c3", "has_more": False},
    ]
    feed = api.get("/v1/changes/offers").mock(side_effect=[httpx.Response(200, json=p) for p in pages])
    store = MemoryCursorStore()
    store.save("offers", "c1")
    with _client(sleeps) as pl:
        items = pl.changes.iterate("offers", store)
        assert next(items)["seq"] == 1
        next(items)
        assert store.load("offers") == "c1"  # page 1 not finished with yet: a crash now reads it again
        assert next(items)["seq"] == 3
        assert store.load("offers") == "c2"
        assert list(items) == []
    assert store.load("offers") == "c3"
    assert [c.request.url.params.get("cursor") for c in feed.calls] == ["c1", "c2"]


def test_an_upload_streams_the_file_without_an_idempotency_key_and_resends_it_on_503(
    api: respx.MockRouter, sleeps: Sleeps, tmp_path: Path
) -> None:
    api.post("/oauth/token").mock(return_value=_token())
    rows = "".join(json.dumps({"external_id": f"c-{i}"}) + "\n" for i in range(2000))
    path = tmp_path / "customers.ndjson"
    path.write_text(rows)
    job = {"id": "ing_1", "kind": "customers", "status": "done", "rows_seen": 2000, "rows_ok": 2000}
    upload = api.post("/v1/uploads/customers").mock(
        side_effect=[_problem(503, "unavailable"), httpx.Response(201, json=job)]
    )
    with _client(sleeps) as pl:
        assert pl.uploads.upload("customers", path, chunk_bytes=4096)["rows_ok"] == 2000
    assert upload.call_count == 2
    for call in upload.calls:
        assert call.request.content == rows.encode()
        assert call.request.headers["content-type"] == "application/x-ndjson"
        assert call.request.headers["content-length"] == str(len(rows))
        assert "idempotency-key" not in call.request.headers

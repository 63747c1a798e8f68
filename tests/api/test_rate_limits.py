"""Rate limits: a token bucket per authenticated caller and per address for public writes, 429
problem+json with Retry-After; in memory by default, shared between replicas through Redis."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.ratelimit import Limit, MemoryBuckets, RedisBuckets
from partners.retailers import Tenant
from partners.settings import Settings
from tests.flows import bearer

REDIS_URL = os.environ.get("PARTNERLOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BURST = 3


def limited(settings: Settings, **overrides: object) -> Settings:
    # One token a minute: however slow the machine, nothing refills while a test runs.
    values: dict[str, object] = {
        "rate_limit_per_minute": 1,
        "rate_limit_burst": BURST,
        "public_rate_limit_per_minute": 1,
        "public_rate_limit_burst": BURST,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


@pytest.fixture
def limited_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(limited(settings), engine), raise_server_exceptions=False) as client:
        yield client


def assert_rate_limited(response: object) -> int:
    assert response.status_code == 429, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    assert response.json()["code"] == "rate_limited"  # type: ignore[attr-defined]
    retry_after = int(response.headers["retry-after"])  # type: ignore[attr-defined]
    assert 1 <= retry_after <= 60  # one token a minute
    return retry_after


def test_a_client_over_its_burst_gets_429_with_retry_after(
    limited_client: TestClient, token_for: Callable[..., str]
) -> None:
    token = token_for()
    answers = [limited_client.get("/v1/tenant", headers=bearer(token)).status_code for _ in range(BURST)]
    assert answers == [200] * BURST
    assert assert_rate_limited(limited_client.get("/v1/tenant", headers=bearer(token))) > 30  # a minute's refill


def test_each_client_has_its_own_bucket(
    limited_client: TestClient, token_for: Callable[..., str], make_tenant: Callable[..., Tenant]
) -> None:
    tenant = make_tenant()
    greedy, polite, other_tenant = token_for(tenant=tenant), token_for(tenant=tenant), token_for()
    for _ in range(BURST + 2):
        limited_client.get("/v1/tenant", headers=bearer(greedy))
    assert_rate_limited(limited_client.get("/v1/tenant", headers=bearer(greedy)))
    assert limited_client.get("/v1/tenant", headers=bearer(polite)).status_code == 200
    assert limited_client.get("/v1/tenant", headers=bearer(other_tenant)).status_code == 200


def test_a_forged_token_spends_no_ones_budget(limited_client: TestClient, token_for: Callable[..., str]) -> None:
    # Counting happens after the token is verified: garbage tokens are 401s, and the victim is untouched.
    victim = token_for()
    for _ in range(BURST + 2):
        assert limited_client.get("/v1/tenant", headers=bearer(victim[:-4] + "AAAA")).status_code == 401
    assert limited_client.get("/v1/tenant", headers=bearer(victim)).status_code == 200


def test_public_writes_are_limited_per_address(limited_client: TestClient) -> None:
    for _ in range(BURST):
        assert limited_client.post("/oauth/token", data={"grant_type": "client_credentials"}).status_code == 401
    assert_rate_limited(limited_client.post("/oauth/token", data={"grant_type": "client_credentials"}))
    assert_rate_limited(limited_client.post("/v1/tenants", json={}))
    # Reads and other routes are not counted against the address.
    assert limited_client.get("/healthz").status_code == 200


def test_the_bucket_refills_at_its_rate() -> None:
    now = [1000.0]
    buckets = MemoryBuckets(clock=lambda: now[0])
    limit = Limit(per_minute=60, burst=2)
    assert [buckets.take("k", limit).allowed for _ in range(3)] == [True, True, False]
    assert buckets.take("k", limit).retry_after == 1
    now[0] += 1.0
    assert buckets.take("k", limit).allowed
    assert not buckets.take("k", limit).allowed
    now[0] += 3600
    assert [buckets.take("k", limit).allowed for _ in range(3)] == [True, True, False]  # never above the burst


def test_refilled_buckets_are_forgotten() -> None:
    now = [0.0]
    buckets = MemoryBuckets(clock=lambda: now[0])
    limit = Limit(per_minute=60, burst=1)
    for n in range(MemoryBuckets.PRUNE_EVERY - 1):
        buckets.take(f"address-{n}", limit)
    now[0] += 10
    buckets.take("last", limit)  # the PRUNE_EVERY-th take prunes the refilled buckets
    assert set(buckets._state) == {"last"}


# --- shared through Redis ---------------------------------------------------------------------


def _redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not _redis_available(), reason=f"no Redis at {REDIS_URL} (.ci/run starts one)")


@needs_redis
def test_replicas_share_one_bucket_through_redis(
    settings: Settings, engine: Engine, token_for: Callable[..., str]
) -> None:
    shared = limited(settings, redis_url=REDIS_URL)
    token = token_for()
    with (
        TestClient(create_app(shared, engine), raise_server_exceptions=False) as replica_a,
        TestClient(create_app(shared, engine), raise_server_exceptions=False) as replica_b,
    ):
        answers = [
            (replica_a if n % 2 else replica_b).get("/v1/tenant", headers=bearer(token)).status_code
            for n in range(BURST)
        ]
        assert answers == [200] * BURST
        # Either replica alone has seen fewer than BURST requests; together they used the bucket up.
        assert_rate_limited(replica_a.get("/v1/tenant", headers=bearer(token)))
        assert_rate_limited(replica_b.get("/v1/tenant", headers=bearer(token)))


@needs_redis
def test_redis_buckets_refill_on_redis_clock() -> None:
    buckets = RedisBuckets(REDIS_URL)
    key = "test:" + secrets.token_hex(8)
    limit = Limit(per_minute=6000, burst=2)  # 100 a second: refilled long before the next call's round trip ends
    assert buckets.take(key, limit).allowed and buckets.take(key, limit).allowed
    strict = Limit(per_minute=1, burst=1)
    other = "test:" + secrets.token_hex(8)
    assert buckets.take(other, strict).allowed
    refused = buckets.take(other, strict)
    assert not refused.allowed and 1 <= refused.retry_after <= 60


def test_an_unreachable_redis_does_not_take_the_api_down(
    settings: Settings, engine: Engine, token_for: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 1: the limiter fails open and says so in the log.
    app: FastAPI = create_app(limited(settings, redis_url="redis://127.0.0.1:1/0"), engine)
    token = token_for()
    with TestClient(app, raise_server_exceptions=False) as client:
        answers = [client.get("/v1/tenant", headers=bearer(token)).status_code for _ in range(BURST + 2)]
    assert answers == [200] * (BURST + 2)
    assert "rate limiter unavailable" in caplog.text

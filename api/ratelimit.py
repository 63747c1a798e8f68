"""Rate limits: a token bucket per caller, in memory or shared through Redis; 429 with Retry-After.

Authenticated requests are counted per tenant and caller (the API client, or the staff member
acting through the docs client) once the token is verified, so nobody can spend another's
budget by forging claims. Unauthenticated calls to the public write routes (sign-up, invitation
acceptance, the OAuth token endpoints) are counted per client address by the middleware below.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import ApiProblem, problem
from partners.settings import Settings

log = logging.getLogger("partnerloop.ratelimit")

# Unauthenticated routes that write or check credentials: limited per client address.
PUBLIC_WRITES = frozenset(
    {"/v1/tenants", "/v1/invitations/accept", "/oauth/token", "/oauth/revoke", "/oauth/introspect"}
)


@dataclass(frozen=True)
class Limit:
    """`per_minute` tokens flow into a bucket holding at most `burst`; a request takes one."""

    per_minute: int
    burst: int

    @property
    def per_second(self) -> float:
        return self.per_minute / 60


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0


class Buckets(Protocol):
    def take(self, key: str, limit: Limit) -> Decision: ...


def _retry_after(tokens: float, limit: Limit) -> int:
    """Whole seconds until the bucket holds one token again (at least 1)."""
    return max(1, math.ceil((1 - tokens) / limit.per_second))


class MemoryBuckets:
    """Buckets in this process: right for the embedded default (one process, one replica)."""

    PRUNE_EVERY = 1024

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (tokens, when counted, the limit it is counted against)
        self._state: dict[str, tuple[float, float, Limit]] = {}
        self._takes = 0

    def take(self, key: str, limit: Limit) -> Decision:
        with self._lock:
            now = self._clock()
            tokens = self._tokens(key, limit, now)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._state[key] = (tokens, now, limit)
            self._takes += 1
            if self._takes % self.PRUNE_EVERY == 0:
                self._prune(now)
            return Decision(True) if allowed else Decision(False, _retry_after(tokens, limit))

    def _tokens(self, key: str, limit: Limit, now: float) -> float:
        tokens, last, _ = self._state.get(key, (float(limit.burst), now, limit))
        return min(float(limit.burst), tokens + (now - last) * limit.per_second)

    def _prune(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket: forget it, so addresses don't pile up.
        full = [key for key, (_, _, limit) in self._state.items() if self._tokens(key, limit, now) >= limit.burst]
        for key in full:
            del self._state[key]


# Atomic refill-and-take on Redis' clock, so every replica sees one bucket per key.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {allowed, tostring(tokens)}
"""


class RedisBuckets:
    """Buckets in Redis, shared by every API replica; if Redis fails, requests pass (and we log it)."""

    PREFIX = "partnerloop:ratelimit:"

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self._client.register_script(_TAKE)
        self._errors = (redis.RedisError,)

    def take(self, key: str, limit: Limit) -> Decision:
        try:
            raw: Any = self._script(keys=[self.PREFIX + key], args=[limit.per_second, limit.burst])
        except self._errors as exc:
            # Failing open: an outage of the limiter must not become an outage of the API.
            log.warning("rate limiter unavailable, not limiting: %s", type(exc).__name__)
            return Decision(True)
        allowed, tokens = int(raw[0]), float(raw[1])
        return Decision(True) if allowed else Decision(False, _retry_after(tokens, limit))


@dataclass(frozen=True)
class RateLimiter:
    """The app's buckets and the limits it applies."""

    buckets: Buckets
    callers: Limit
    public: Limit

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        buckets: Buckets = RedisBuckets(settings.redis_url) if settings.redis_url else MemoryBuckets()
        return cls(
            buckets,
            Limit(settings.rate_limit_per_minute, settings.rate_limit_burst),
            Limit(settings.public_rate_limit_per_minute, settings.public_rate_limit_burst),
        )


def _too_many(retry_after: int) -> tuple[str, str, str, dict[str, str]]:
    detail = f"Too many requests from this client; retry in {retry_after} s."
    return "rate_limited", "Too many requests", detail, {"Retry-After": str(retry_after)}


def check_caller(request: Request, tenant_id: str, caller_id: str) -> None:
    """Count one request of an authenticated caller (once per request); ApiProblem 429 when over."""
    if getattr(request.state, "rate_limited", False):
        return
    request.state.rate_limited = True
    limiter: RateLimiter = request.app.state.rate_limiter
    decision = limiter.buckets.take(f"caller:{tenant_id}:{caller_id}", limiter.callers)
    if not decision.allowed:
        code, title, detail, headers = _too_many(decision.retry_after)
        raise ApiProblem(429, code, title, detail, headers=headers)


async def check_caller_async(request: Request, tenant_id: str, caller_id: str) -> None:
    """`check_caller` from the event loop: in-process buckets inline, Redis in the threadpool."""
    limiter: RateLimiter = request.app.state.rate_limiter
    if isinstance(limiter.buckets, MemoryBuckets):
        check_caller(request, tenant_id, caller_id)
    else:
        await run_in_threadpool(check_caller, request, tenant_id, caller_id)


class PublicRateLimitMiddleware:
    """Limits unauthenticated writes (sign-up, token requests) per client address."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in PUBLIC_WRITES:
            await self.app(scope, receive, send)
            return
        limiter: RateLimiter = scope["app"].state.rate_limiter
        address = (scope.get("client") or ("unknown", 0))[0]
        # Redis is a network call: off the event loop.
        decision = await run_in_threadpool(limiter.buckets.take, f"address:{address}", limiter.public)
        if decision.allowed:
            await self.app(scope, receive, send)
            return
        code, title, detail, headers = _too_many(decision.retry_after)
        response = problem(Request(scope), 429, code, title, detail, headers=headers)
        await response(scope, receive, send)

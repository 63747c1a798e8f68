"""When a call may be sent again, and how long to wait first (pure, so it is easy to test)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 503})
# Sent when the same Idempotency-Key is still being processed (with Retry-After: 1): waiting is right.
IN_PROGRESS_CODE = "idempotency_request_in_progress"


@dataclass(frozen=True)
class RetryPolicy:
    """Retries with exponential backoff and full jitter; `Retry-After` is honoured up to `max_delay`."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    rng: Callable[[], float] = field(default=random.random, compare=False)

    def backoff(self, attempt: int) -> float:
        """The wait before retry number `attempt` (1 for the first retry)."""
        return min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1)) * (0.5 + self.rng() / 2)

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        """The wait before retry `attempt`: what the server asked for, else the backoff."""
        asked = retry_after(response) if response is not None else None
        if asked is not None:
            return min(self.max_delay, max(asked, 0.0))
        return self.backoff(attempt)


def may_retry(method: str, headers: httpx.Headers) -> bool:
    """Whether sending the request twice is safe: idempotent methods, and POSTs with an Idempotency-Key."""
    return method.upper() in IDEMPOTENT_METHODS or "idempotency-key" in headers


def retryable_status(response: httpx.Response) -> bool:
    """429 and 503 are worth retrying; so is a 409 for a keyed request still in progress."""
    if response.status_code in RETRY_STATUSES:
        return True
    if response.status_code == 409 and "retry-after" in response.headers:
        try:
            return bool(response.json().get("code") == IN_PROGRESS_CODE)
        except ValueError:
            return False
    return False


def retryable_error(error: httpx.TransportError, method: str, headers: httpx.Headers) -> bool:
    """A connection never made can always be retried; one that broke mid-way only when the call is safe to repeat."""
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
        return True
    return may_retry(method, headers)


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (RFC 9110: delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())

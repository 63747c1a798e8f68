"""When to try a failed webhook delivery again: pure functions, so the schedule is easy to test.

Ten attempts in all: the first at once, then after about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
20 h and 24 h (roughly three days), each delay moved by up to ±20 % of jitter so that a partner
coming back up is not hit by every retry at the same second. A `Retry-After` the partner sent is
honoured: we never come back earlier than it asked, nor later than a day.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
MAX_ATTEMPTS = len(SCHEDULE) + 1
JITTER = 0.2
MAX_RETRY_AFTER = timedelta(hours=24)


def retry_delay(
    attempts_made: int, *, rng: random.Random | None = None, retry_after: timedelta | None = None
) -> timedelta | None:
    """How long to wait after the `attempts_made`-th attempt failed; None once they are all used."""
    if attempts_made < 1:
        raise ValueError("attempts_made counts from 1")
    if attempts_made >= MAX_ATTEMPTS:
        return None
    base = SCHEDULE[attempts_made - 1]
    factor = 1 + (rng or random.SystemRandom()).uniform(-JITTER, JITTER)
    delay = base * factor
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A `Retry-After` header (seconds, or an HTTP date) as a delay from `now`; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=min(int(value), int(MAX_RETRY_AFTER.total_seconds())))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when - now, timedelta(0))

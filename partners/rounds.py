"""Background jobs that work in rounds: repeat until a round finds nothing, within a time budget."""

from __future__ import annotations

import time
from collections.abc import Callable


def until_idle(one_round: Callable[[], int], max_seconds: float) -> int:
    """Run rounds until one handles nothing or `max_seconds` passed (to let other jobs run); items handled."""
    started, total = time.monotonic(), 0
    while time.monotonic() - started < max_seconds:
        done = one_round()
        total += done
        if done == 0:
            break
    return total

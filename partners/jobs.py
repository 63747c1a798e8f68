"""Periodic housekeeping jobs the worker runs; each is one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from partners import churn_signals, idempotency, offer_sync, worker
from partners.db import unit_of_work, utcnow
from partners.metrics import Metrics


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[Engine], int]


def purge_idempotency_keys(engine: Engine) -> int:
    """Drop idempotency keys past their 24 h retention."""
    with unit_of_work(engine) as session:
        return idempotency.purge_expired(session, utcnow())


def jobs(metrics: Metrics | None = None) -> tuple[Job, ...]:
    """The worker's jobs; webhook attempts are counted in `metrics` when given."""
    return (
        Job("purge_idempotency_keys", timedelta(minutes=10), purge_idempotency_keys),
        # Every poll: hand out outbox events and deliver due webhooks (partners.worker).
        Job("deliver_webhooks", timedelta(0), lambda engine: worker.deliver_webhooks(engine, metrics)),
        # Every poll: pull the offer feeds that are due (partners.offer_sync; one indexed query when none is).
        Job("sync_offer_feeds", timedelta(0), offer_sync.sync_offer_feeds),
        # Daily: silence moves customers from active towards lapsed without any order (partners.churn_signals).
        Job("reassess_churn_risk", timedelta(days=1), churn_signals.reassess_all),
    )

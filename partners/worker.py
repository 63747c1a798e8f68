"""The webhook delivery loop of `partnerloop worker`.

Each round is: hand pending outbox events to deliveries (one transaction), lease a batch of due
deliveries (one short transaction), send the batch concurrently over the guarded client with no
transaction open, then record each attempt (one transaction each). Any number of workers may run
at once; a lease outlasts an attempt's hard deadline, so no delivery is attempted by two workers at
the same time, and a worker that dies mid-attempt only delays its deliveries until the lease ends.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

import httpx
from sqlalchemy import Engine

from partners import deliveries
from partners.db import unit_of_work, utcnow
from partners.egress import EgressPolicy, Reply, Resolver, client, policy_from, post
from partners.metrics import Metrics
from partners.rounds import until_idle
from partners.settings import Settings, load_settings
from partners.webhook_signing import headers

log = logging.getLogger("partnerloop.worker")
MAX_ROUND_SECONDS = 30.0


# Records one attempt; answers the outcome (succeeded, retrying, failed, cancelled, superseded).
Settle = Callable[[deliveries.Claim, Reply], str]


async def _attempt(
    http: httpx.AsyncClient, policy: EgressPolicy, leased: deliveries.Claim, settle: Settle, metrics: Metrics | None
) -> None:
    signed = headers(leased.signing_secrets, leased.event_id, int(time.time()), leased.body)
    signed["content-type"] = "application/json"
    reply = await post(http, policy, leased.url, leased.body, signed)
    # Recorded as soon as it is known, in a thread: the event loop goes on with the other calls.
    try:
        outcome = await asyncio.to_thread(settle, leased, reply)
    except Exception:
        # Not recorded (the database went away, say): the lease expires and the delivery is retried.
        log.exception("could not record the attempt of delivery %s", leased.delivery_id)
        outcome = "not_recorded"
    if metrics is not None:
        metrics.count_attempt(outcome, reply.duration_ms / 1000)


def outcome_of(delivery: deliveries.WebhookDelivery | None, leased: deliveries.Claim) -> str:
    """What became of a delivery after `deliveries.record` settled one attempt of it (a metrics label)."""
    if delivery is None:
        return "cancelled"  # its endpoint was deleted meanwhile
    if delivery.attempts != leased.attempt:
        return "superseded"  # our lease ran out and another worker leased it again: it settles it
    if delivery.status == deliveries.DeliveryStatus.pending:
        return "retrying"
    return str(delivery.status)


async def send_batch(
    claims: Sequence[deliveries.Claim], policy: EgressPolicy, settle: Settle, metrics: Metrics | None = None
) -> None:
    """Attempt every leased delivery at once, settling each as its answer comes."""
    async with client(policy, max_connections=max(len(claims), 1)) as http:
        await asyncio.gather(*(_attempt(http, policy, leased, settle, metrics) for leased in claims))


def deliver_round(
    engine: Engine,
    settings: Settings,
    policy: EgressPolicy,
    rng: random.Random | None = None,
    metrics: Metrics | None = None,
) -> int:
    """One round: dispatch, lease, send, record. Returns how many events and attempts it handled."""
    with unit_of_work(engine) as session:
        handed = deliveries.dispatch(session, now=utcnow())
    with unit_of_work(engine) as session:
        claims = deliveries.claim(
            session,
            now=utcnow(),
            lease=timedelta(seconds=settings.webhook_lease_seconds),
            limit=settings.webhook_batch_size,
            encryption_key=settings.encryption_key.get_secret_value(),
        )
    if not claims:
        return handed
    disable_after = timedelta(days=settings.webhook_disable_after_days)

    def settle(leased: deliveries.Claim, reply: Reply) -> str:
        with unit_of_work(engine) as session:
            delivery = deliveries.record(session, leased, reply, now=utcnow(), disable_after=disable_after, rng=rng)
            outcome = outcome_of(delivery, leased)
        if not reply.ok:
            log.info(
                "delivery %s to %s failed: %s",
                leased.delivery_id,
                leased.url,
                reply.error or reply.status_code,
                extra={"tenant_id": leased.tenant_id},
            )
        return outcome

    asyncio.run(send_batch(claims, policy, settle, metrics))
    return handed + len(claims)


def deliver_due(
    engine: Engine,
    settings: Settings,
    *,
    resolver: Resolver | None = None,
    max_seconds: float = MAX_ROUND_SECONDS,
    metrics: Metrics | None = None,
) -> int:
    """Rounds until nothing is due (or `max_seconds` passed, to let other jobs run)."""
    policy = policy_from(settings, resolver)
    return until_idle(lambda: deliver_round(engine, settings, policy, metrics=metrics), max_seconds)


def deliver_webhooks(engine: Engine, metrics: Metrics | None = None) -> int:
    """The worker's job: deliver what is due, with the settings of the environment."""
    return deliver_due(engine, load_settings(), metrics=metrics)

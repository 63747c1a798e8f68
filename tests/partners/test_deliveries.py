from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from partners import deliveries, delivery_log, outbox, retry_schedule, webhooks
from partners.deliveries import WebhookAttempt, WebhookDelivery
from partners.egress import Reply
from partners.errors import Conflict, NotFound
from partners.outbox import OutboxEvent
from partners.retailers import Tenant
from partners.settings import Settings
from partners.webhooks import IssuedEndpoint

LEASE = timedelta(seconds=60)
FIVE_DAYS = timedelta(days=5)


def _claim(session: Session, settings: Settings, now: datetime, limit: int = 10) -> list[deliveries.Claim]:
    claims = deliveries.claim(
        session, now=now, lease=LEASE, limit=limit, encryption_key=settings.encryption_key.get_secret_value()
    )
    session.commit()
    return claims


def _dispatch(session: Session, now: datetime) -> int:
    handed = deliveries.dispatch(session, now=now)
    session.commit()
    return handed


def _record(session: Session, claim: deliveries.Claim, reply: Reply, now: datetime) -> WebhookDelivery:
    row = deliveries.record(session, claim, reply, now=now, disable_after=FIVE_DAYS, rng=random.Random(1))
    session.commit()
    assert row is not None
    return row


def _deliveries(session: Session) -> list[WebhookDelivery]:
    session.expire_all()
    return list(session.exec(select(WebhookDelivery).order_by(col(WebhookDelivery.id))).all())


# --- the outbox's recipient rule -----------------------------------------------------------


def test_recipient_is_explicit_else_partner_id_else_the_owner(
    session: Session, make_tenant: Callable[..., Tenant]
) -> None:
    shop, partner, third = make_tenant(), make_tenant(), make_tenant()
    explicit = outbox.emit(session, shop.id, "offer.updated", {"partner_id": partner.id}, recipient=third.id)
    by_payload = outbox.emit(session, shop.id, "offer.updated", {"partner_id": partner.id})
    own = outbox.emit(session, shop.id, "webhook_endpoint.disabled", {"endpoint_id": "whe_1"})
    to_self = outbox.emit(session, shop.id, "offer.updated", {}, recipient=shop.id)
    assert [e.recipient_tenant_id for e in (explicit, by_payload, own, to_self)] == [third.id, partner.id, None, None]
    assert [e.recipient for e in (explicit, by_payload, own)] == [third.id, partner.id, shop.id]


# --- fan-out -------------------------------------------------------------------------------


def test_dispatch_fans_out_to_the_recipients_subscribed_enabled_endpoints_once(
    session: Session,
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., OutboxEvent],
) -> None:
    shop, partner = make_tenant(), make_tenant()
    family = make_endpoint(partner, events=["offer.*"])
    exact = make_endpoint(partner, events=["offer.approved"])
    make_endpoint(partner, events=["consent.withdrawn"])  # not subscribed
    off = make_endpoint(partner, events=["offer.*"])
    deliveries.disable_endpoint(
        session, partner.id, off.endpoint.id, webhooks.DisabledReason.by_owner, now=_now(), notify=False
    )
    make_endpoint(shop, events=["offer.*"])  # the sender's own endpoint: not the recipient
    event = make_event(shop, "offer.approved", partner_id=partner.id)

    assert _dispatch(session, _now()) == 1
    assert _dispatch(session, _now()) == 0
    rows = _deliveries(session)
    assert sorted(r.endpoint_id for r in rows) == sorted([family.endpoint.id, exact.endpoint.id])
    assert {(r.tenant_id, r.event_id, r.status) for r in rows} == {(partner.id, event.id, "pending")}
    body = json.loads(rows[0].body)
    assert body == {
        "id": event.id,
        "type": "offer.approved",
        "version": 1,
        "timestamp": event.created_at.isoformat(),
        "source_tenant_id": shop.id,
        "data": {"offer_id": "off_x"},
    }
    assert outbox.pending(session, shop.id) == []


def test_an_event_without_endpoints_is_still_handed_out(
    session: Session, make_tenant: Callable[..., Tenant], make_event: Callable[..., OutboxEvent]
) -> None:
    shop = make_tenant()
    make_event(shop, "offer.approved")
    assert _dispatch(session, _now()) == 1
    assert _deliveries(session) == []


# --- claiming ------------------------------------------------------------------------------


def _one_pending(
    session: Session,
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., OutboxEvent],
) -> IssuedEndpoint:
    shop = make_tenant()
    issued = make_endpoint(shop)
    make_event(shop)
    _dispatch(session, _now())
    return issued


def test_a_lease_excludes_others_until_it_expires_then_the_same_message_is_retried(
    session: Session,
    settings: Settings,
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., OutboxEvent],
) -> None:
    issued = _one_pending(session, make_tenant, make_endpoint, make_event)
    now = _now()
    first = _claim(session, settings, now)
    assert [c.attempt for c in first] == [1]
    assert first[0].signing_secrets == (issued.secret,)
    assert _claim(session, settings, now + LEASE - timedelta(seconds=1)) == []
    again = _claim(session, settings, now + LEASE)
    assert [c.attempt for c in again] == [2]
    assert (again[0].event_id, again[0].body) == (first[0].event_id, first[0].body)
    assert again[0].token != first[0].token


def test_a_worker_whose_lease_ran_out_logs_its_attempt_but_does_not_settle(
    session: Session,
    settings: Settings,
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., OutboxEvent],
) -> None:
    _one_pending(session, make_tenant, make_endpoint, make_event)
    now = _now()
    stale = _claim(session, settings, now)[0]
    fresh = _claim(session, settings, now + LEASE)[0]
    row = _record(session, stale, Reply(500, None, 10), now + LEASE)
    assert (row.status, row.lock_token) == ("pending", fresh.token)
    row = _record(session, fresh, Reply(200, None, 10), now + LEASE)
    assert row.status == "succeeded"
    assert len(session.exec(select(WebhookAttempt)).all()) == 2


# --- settling ------------------------------------------------------------------------------


def test_success_failure_retry_after_and_giving_up(
    session: Session,
    settings: Settings,
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., OutboxEvent],
) -> None:
    _one_pending(session, make_tenant, make_endpoint, make_event)
    now = _now()
    claim = _claim(session, settings, now)[0]
    row = _record(session, claim, Reply(500, None, 30, "boom"), now)
    assert row.status == "pending"
    assert timedelta(seconds=4) <= row.next_attempt_at - now <= timedelta(seconds=6)
    endpoint = session.get(webhooks.WebhookEndpoint, (row.tenant_id, row.endpoint_id))
    assert endpoint is not None and endpoint.failing_since == now

    now = row.next_attempt_at
    claim = _claim(session, settings, now)[0]
    row = _record(session, claim, Reply(429, None, 5, retry_after="3600"), now)
    assert row.next_attempt_at - now == timedelta(hours=1)  # more than the 5 minutes the schedule says

    for _ in range(retry_schedule.MAX_ATTEMPTS - 2):
        now = row.next_attempt_at
        claim = _claim(session, settings, now)[0]
        row = _record(session, claim, Reply(None, "ConnectError", 5), now)
    assert (row.status, row.attempts) == ("failed", retry_schedule.MAX_ATTEMPTS)
    log = session.exec(select(WebhookAttempt).order_by(col(WebhookAttempt.id))).all()
    assert [a.attempt for a in log] == list(range(1, retry_schedule.MAX_ATTEMPTS + 1))
    assert (log[0].status_code, log[0].response_excerpt, log[-1].error) == (500, "boom", "ConnectError")


def test_success_clears_the_failing_mark(
    session: Session,
    settings: Settings,
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., OutboxEvent],
) -> None:
    issued = _one_pending(session, make_tenant, make_endpoint, make_event)
    now = _now()
    row = _record(session, _claim(session, settings, now)[0], Reply(503, None, 5), now)
    now = row.next_attempt_at
    row = _record(session, _claim(session, settings, now)[0], Reply(200, None, 5), now)
    assert (row.status, row.finished_at) == ("succeeded", now)
    session.expire_all()
    assert webhooks.get_endpoint(session, issued.endpoint.tenant_id, issued.endpoint.id).failing_since is None


def test_410_disables_the_endpoint_cancels_its_queue_and_tells_the_owner(
    session: Session,
    settings: Settings,
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., OutboxEvent],
) -> None:
    shop = make_tenant()
    issued = make_endpoint(shop)
    make_event(shop)
    make_event(shop)
    _dispatch(session, _now())
    now = _now()
    first = _claim(session, settings, now, limit=1)[0]
    row = _record(session, first, Reply(410, None, 5), now)
    assert row.status == "failed"
    assert sorted(r.status for r in _deliveries(session)) == ["cancelled", "failed"]
    endpoint = webhooks.get_endpoint(session, shop.id, issued.endpoint.id)
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "gone")
    told = outbox.pending(session, shop.id, deliveries.ENDPOINT_DISABLED)
    assert [e.payload for e in told] == [{"endpoint_id": endpoint.id, "url": endpoint.url, "reason": "gone"}]
    assert _claim(session, settings, now + timedelta(days=1)) == []


def test_an_endpoint_failing_for_days_is_disabled(
    session: Session,
    settings: Settings,
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., OutboxEvent],
) -> None:
    issued = _one_pending(session, make_tenant, make_endpoint, make_event)
    now = _now()
    row = _record(session, _claim(session, settings, now)[0], Reply(500, None, 5), now)
    later = now + FIVE_DAYS
    assert row.next_attempt_at < later
    row = _record(session, _claim(session, settings, later)[0], Reply(500, None, 5), later)
    assert row.status == "cancelled"
    endpoint = webhooks.get_endpoint(session, issued.endpoint.tenant_id, issued.endpoint.id)
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "failing")
    assert len(outbox.pending(session, endpoint.tenant_id, deliveries.ENDPOINT_DISABLED)) == 1


def test_a_delivery_in_flight_when_its_endpoint_is_disabled_is_cancelled_by_the_next_claim(
    session: Session,
    settings: Settings,
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., OutboxEvent],
) -> None:
    issued = _one_pending(session, make_tenant, make_endpoint, make_event)
    now = _now()
    leased = _claim(session, settings, now)[0]
    reason = webhooks.DisabledReason.by_owner
    deliveries.disable_endpoint(session, issued.endpoint.tenant_id, issued.endpoint.id, reason, now=now, notify=False)
    session.commit()
    assert [r.status for r in _deliveries(session)] == ["pending"]  # the worker holding it settles it
    row = _record(session, leased, Reply(503, None, 5), now)
    assert _claim(session, settings, row.next_attempt_at) == []
    assert [r.status for r in _deliveries(session)] == ["cancelled"]


def test_a_delivery_of_a_deleted_endpoint_is_dropped_quietly(
    session: Session,
    settings: Settings,
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., OutboxEvent],
) -> None:
    issued = _one_pending(session, make_tenant, make_endpoint, make_event)
    claim = _claim(session, settings, _now())[0]
    webhooks.delete_endpoint(session, issued.endpoint.tenant_id, issued.endpoint.id)
    session.commit()
    assert deliveries.record(session, claim, Reply(200, None, 1), now=_now(), disable_after=FIVE_DAYS) is None
    assert session.exec(select(WebhookAttempt)).all() == []


# --- secrets -------------------------------------------------------------------------------


def test_a_rotated_secret_signs_beside_the_new_one_during_the_overlap(
    session: Session, settings: Settings, make_endpoint: Callable[..., IssuedEndpoint]
) -> None:
    issued = make_endpoint()
    key = settings.encryption_key.get_secret_value()
    now = _now()
    rotated = webhooks.rotate_secret(
        session, issued.endpoint.tenant_id, issued.endpoint.id, encryption_key=key, overlap=timedelta(hours=1), now=now
    )
    assert rotated.secret != issued.secret
    assert issued.secret not in rotated.endpoint.secret_encrypted
    both = webhooks.signing_secrets(rotated.endpoint, key, now + timedelta(minutes=59))
    assert both == (rotated.secret, issued.secret)
    assert webhooks.signing_secrets(rotated.endpoint, key, now + timedelta(hours=1)) == (rotated.secret,)
    at_once = webhooks.rotate_secret(
        session, issued.endpoint.tenant_id, issued.endpoint.id, encryption_key=key, overlap=timedelta(0), now=now
    )
    assert webhooks.signing_secrets(at_once.endpoint, key, now) == (at_once.secret,)


# --- replay --------------------------------------------------------------------------------


def test_replaying_one_event_queues_it_again_with_the_same_id_and_body(
    session: Session,
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., OutboxEvent],
) -> None:
    shop, partner = make_tenant(), make_tenant()
    make_endpoint(partner)
    event = make_event(shop, "offer.approved", partner_id=partner.id)
    _dispatch(session, _now())
    assert delivery_log.replay_event(session, partner.id, event.id, now=_now()) == 1
    session.commit()
    first, second = _deliveries(session)
    assert (first.event_id, first.body) == (second.event_id, second.body)
    with pytest.raises(NotFound):
        delivery_log.replay_event(session, shop.id, event.id, now=_now())  # meant for the partner, not the sender


def test_replaying_since_a_time_takes_the_window_and_the_subscription(
    session: Session,
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., OutboxEvent],
) -> None:
    shop = make_tenant()
    issued = make_endpoint(shop, events=["offer.*"])
    old = make_event(shop, "offer.approved")
    old.created_at = _now() - timedelta(days=3)
    session.add(old)
    session.commit()
    recent = make_event(shop, "offer.paused")
    make_event(shop, "erasure.requested")  # not subscribed
    _dispatch(session, _now())
    since = _now() - timedelta(days=1)
    assert delivery_log.replay_since(session, shop.id, issued.endpoint.id, since, None, now=datetime.now(UTC)) == 1
    session.commit()
    assert [r.event_id for r in _deliveries(session)].count(recent.id) == 2
    deliveries.disable_endpoint(
        session, shop.id, issued.endpoint.id, webhooks.DisabledReason.by_owner, now=_now(), notify=False
    )
    with pytest.raises(Conflict):
        delivery_log.replay_since(session, shop.id, issued.endpoint.id, since, None, now=_now())


# --- the schedule (pure) -------------------------------------------------------------------


def test_the_schedule_is_roughly_the_documented_one_with_jitter() -> None:
    expected = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    rng = random.Random(7)
    for attempt, seconds in enumerate(expected, start=1):
        delays = {retry_schedule.retry_delay(attempt, rng=rng) for _ in range(20)}
        assert all(d is not None and 0.8 * seconds <= d.total_seconds() <= 1.2 * seconds for d in delays)
        assert len(delays) > 1  # jittered
    assert retry_schedule.retry_delay(10) is None
    with pytest.raises(ValueError, match="from 1"):
        retry_schedule.retry_delay(0)


def test_retry_after_is_honoured_within_a_day() -> None:
    rng = random.Random(1)
    assert retry_schedule.retry_delay(1, rng=rng, retry_after=timedelta(minutes=2)) == timedelta(minutes=2)
    assert retry_schedule.retry_delay(1, rng=rng, retry_after=timedelta(days=9)) == timedelta(days=1)
    delay = retry_schedule.retry_delay(2, rng=rng, retry_after=timedelta(seconds=1))
    assert delay is not None and delay > timedelta(minutes=3)


def test_parse_retry_after() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert retry_schedule.parse_retry_after("120", now) == timedelta(seconds=120)
    assert retry_schedule.parse_retry_after("Wed, 01 Jan 2025 12:10:00 GMT", now) == timedelta(minutes=10)
    assert retry_schedule.parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now) == timedelta(0)
    assert retry_schedule.parse_retry_after("99999999999999999999", now) == timedelta(days=1)
    for bad in (None, "", "soon", "-5"):
        assert retry_schedule.parse_retry_after(bad, now) is None


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)

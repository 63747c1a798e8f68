"""Partners' endpoints misbehaving, and workers dying or running side by side: nothing is lost.

Partner endpoints are mocked with respx (only the remote party's network is fake), or are a real
receiver on 127.0.0.1 allowed by the egress allowlist; the database is the real test database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import respx
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from standardwebhooks import Webhook

from partners import outbox, worker
from partners.deliveries import ENDPOINT_DISABLED, WebhookAttempt, WebhookDelivery
from partners.outbox import OutboxEvent
from partners.retailers import Tenant
from partners.settings import Settings
from partners.webhooks import IssuedEndpoint, get_endpoint
from tests.factories_webhooks import PARTNER_HOST, PARTNER_URL, Received, Receiver, fake_resolver

FIFTY_MB = 50 * 1024 * 1024
CHUNK = 1024 * 1024


def _deliver(engine: Engine, settings: Settings) -> None:
    worker.deliver_due(engine, settings, resolver=fake_resolver())


def _rows(session: Session) -> tuple[list[WebhookDelivery], list[WebhookAttempt]]:
    session.expire_all()
    deliveries = session.exec(select(WebhookDelivery).order_by(col(WebhookDelivery.id))).all()
    attempts = session.exec(select(WebhookAttempt).order_by(col(WebhookAttempt.id))).all()
    return list(deliveries), list(attempts)


@pytest.fixture
def one_event(
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., OutboxEvent],
) -> tuple[IssuedEndpoint, OutboxEvent]:
    shop = make_tenant()
    return make_endpoint(shop), make_event(shop, "offer.approved")


def _assert_retry_in(row: WebhookDelivery, low: timedelta, high: timedelta) -> None:
    assert row.status == "pending"
    assert row.last_attempt_at is not None
    assert low <= row.next_attempt_at - row.last_attempt_at <= high


def test_an_endpoint_that_is_down_is_retried_later(
    engine: Engine, session: Session, worker_settings: Settings, one_event: tuple[IssuedEndpoint, OutboxEvent]
) -> None:
    with respx.mock(assert_all_called=True) as partner:
        partner.post(PARTNER_URL).mock(side_effect=httpx.ConnectError("connection refused"))
        _deliver(engine, worker_settings)
    (row,), (attempt,) = _rows(session)
    _assert_retry_in(row, timedelta(seconds=4), timedelta(seconds=6))
    assert attempt.status_code is None and attempt.error is not None and "refused" in attempt.error


def test_a_slow_endpoint_times_out_and_is_retried(
    engine: Engine,
    session: Session,
    worker_settings: Settings,
    receiver: Receiver,
    make_endpoint: Callable[..., IssuedEndpoint],
    make_tenant: Callable[..., Tenant],
    make_event: Callable[..., OutboxEvent],
) -> None:
    release = threading.Event()
    receiver.respond = lambda _r, _n: (release.wait(10), (200, b"late"))[1]
    shop = make_tenant()
    make_endpoint(shop, url=receiver.url)
    make_event(shop)
    started = time.monotonic()
    _deliver(engine, worker_settings)
    release.set()
    assert time.monotonic() - started < worker_settings.webhook_timeout_seconds + 2
    (row,), (attempt,) = _rows(session)
    _assert_retry_in(row, timedelta(seconds=4), timedelta(seconds=6))
    assert attempt.error == "timed out after 2 s"


def test_a_500_is_retried_with_the_same_webhook_id_and_a_fresh_signature(
    engine: Engine, session: Session, worker_settings: Settings, one_event: tuple[IssuedEndpoint, OutboxEvent]
) -> None:
    issued, event = one_event
    with respx.mock(assert_all_called=True) as partner:
        route = partner.post(PARTNER_URL).mock(side_effect=[httpx.Response(500), httpx.Response(200)])
        _deliver(engine, worker_settings)
        (row,), _ = _rows(session)
        _assert_retry_in(row, timedelta(seconds=4), timedelta(seconds=6))
        row.next_attempt_at = datetime.now(UTC)
        session.add(row)
        session.commit()
        _deliver(engine, worker_settings)
    requests = [call.request for call in route.calls]
    assert [r.headers["webhook-id"] for r in requests] == [event.id, event.id]
    assert requests[0].content == requests[1].content
    for request in requests:
        Webhook(issued.secret).verify(request.content, dict(request.headers))
    (row,), attempts = _rows(session)
    assert row.status == "succeeded"
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 500), (2, 200)]


def test_a_429_with_retry_after_is_honoured(
    engine: Engine, session: Session, worker_settings: Settings, one_event: tuple[IssuedEndpoint, OutboxEvent]
) -> None:
    with respx.mock(assert_all_called=True) as partner:
        partner.post(PARTNER_URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "120"}))
        _deliver(engine, worker_settings)
    (row,), (attempt,) = _rows(session)
    _assert_retry_in(row, timedelta(seconds=120), timedelta(seconds=120))
    assert attempt.status_code == 429


def test_a_410_disables_the_endpoint_and_tells_its_owner(
    engine: Engine, session: Session, worker_settings: Settings, one_event: tuple[IssuedEndpoint, OutboxEvent]
) -> None:
    issued, _ = one_event
    with respx.mock(assert_all_called=True) as partner:
        route = partner.post(PARTNER_URL).mock(return_value=httpx.Response(410))
        _deliver(engine, worker_settings)
    assert route.call_count == 1
    (row,), _ = _rows(session)
    assert row.status == "failed"
    endpoint = get_endpoint(session, issued.endpoint.tenant_id, issued.endpoint.id)
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "gone")
    told = session.exec(select(OutboxEvent).where(OutboxEvent.type == ENDPOINT_DISABLED)).all()
    assert [e.payload["endpoint_id"] for e in told] == [endpoint.id]


def test_a_redirect_is_not_followed(
    engine: Engine, session: Session, worker_settings: Settings, one_event: tuple[IssuedEndpoint, OutboxEvent]
) -> None:
    elsewhere = "http://169.254.169.254/latest/meta-data/"
    with respx.mock(assert_all_called=False) as partner:
        partner.post(PARTNER_URL).mock(return_value=httpx.Response(307, headers={"Location": elsewhere}))
        target = partner.route(url=elsewhere).mock(return_value=httpx.Response(200))
        _deliver(engine, worker_settings)
    assert not target.called
    (row,), (attempt,) = _rows(session)
    assert attempt.status_code == 307
    _assert_retry_in(row, timedelta(seconds=4), timedelta(seconds=6))


class Firehose(httpx.AsyncByteStream):
    """A 50 MB answer, produced only as fast as it is read."""

    def __init__(self) -> None:
        self.produced = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.produced < FIFTY_MB:
            self.produced += CHUNK
            yield b"z" * CHUNK


def test_a_50_mb_answer_is_cut_at_the_cap(
    engine: Engine, session: Session, worker_settings: Settings, one_event: tuple[IssuedEndpoint, OutboxEvent]
) -> None:
    body = Firehose()
    with respx.mock(assert_all_called=True) as partner:
        answer = httpx.Response(200, headers={"content-length": str(FIFTY_MB)}, stream=body)
        partner.post(PARTNER_URL).mock(return_value=answer)
        _deliver(engine, worker_settings)
    assert body.produced <= 2 * CHUNK
    (row,), (attempt,) = _rows(session)
    assert row.status == "succeeded"
    assert attempt.response_excerpt == "z" * 1024


def test_a_name_resolving_to_a_private_address_is_never_called(
    engine: Engine, session: Session, worker_settings: Settings, receiver: Receiver, one_event: object
) -> None:
    # No respx here: the real guarded client resolves the partner's host to the metadata address.
    worker.deliver_due(engine, worker_settings, resolver=fake_resolver({PARTNER_HOST: ["169.254.169.254"]}))
    (row,), (attempt,) = _rows(session)
    assert attempt.error == "refused: 169.254.169.254 is not a public address"
    assert row.status == "pending"
    assert receiver.requests == []


# --- real worker processes -----------------------------------------------------------------


def _worker_env(database_url: str, settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTNERLOOP_")}
    env.update(
        PYTHONUNBUFFERED="1",
        PARTNERLOOP_DATABASE_URL=database_url,
        PARTNERLOOP_SECRET_KEY=settings.secret_key.get_secret_value(),
        PARTNERLOOP_ENCRYPTION_KEY=settings.encryption_key.get_secret_value(),
        PARTNERLOOP_IDENTITY_HASH_KEY=settings.identity_hash_key.get_secret_value(),
        PARTNERLOOP_SECRETS_FILE=str(tmp_path / "secrets.json"),
        PARTNERLOOP_EGRESS_ALLOWLIST='["127.0.0.0/8"]',
        PARTNERLOOP_WEBHOOK_TIMEOUT_SECONDS="2",
        PARTNERLOOP_WEBHOOK_LEASE_SECONDS="4",
        PARTNERLOOP_LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


class Workers:
    """`partnerloop worker` processes, each writing to its own log file."""

    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.env, self.tmp_path = env, tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        script = Path(sys.executable).with_name("partnerloop")
        command = [str(script), "worker", "--poll-seconds", "0.2"]
        with (self.tmp_path / f"worker{len(self.procs)}.log").open("wb") as log:
            proc = subprocess.Popen(  # noqa: S603 (our own console script)
                command, env=self.env, cwd=self.tmp_path, stdout=log, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        return proc

    def output(self, index: int) -> str:
        return (self.tmp_path / f"worker{index}.log").read_text()

    def wait_started(self, index: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while "Worker started" not in self.output(index):
            assert self.procs[index].poll() is None, self.output(index)
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.05)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(database_url: str, settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Workers]]:
    made: list[Workers] = []

    def make(**extra: str) -> Workers:
        made.append(Workers(_worker_env(database_url, settings, tmp_path, **extra), tmp_path))
        return made[-1]

    yield make
    for group in made:
        group.stop_all()


def _wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _all_settled(session: Session, count: int) -> bool:
    rows, _ = _rows(session)
    return len(rows) == count and all(r.status == "succeeded" for r in rows)


def test_a_worker_killed_mid_delivery_loses_nothing(
    session: Session,
    receiver: Receiver,
    workers: Callable[..., Workers],
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
) -> None:
    shop = make_tenant()
    issued = make_endpoint(shop, url=receiver.url, events=["offer.*"])
    events = [outbox.emit(session, shop.id, "offer.updated", {"offer_id": f"off_{n}"}) for n in range(5)]
    session.commit()
    release = threading.Event()

    def respond(_got: Received, number: int) -> tuple[int, bytes]:
        if number == 1:
            release.wait(30)  # the first request hangs until the worker is dead
        return 200, b"ok"

    receiver.respond = respond
    group = workers()
    first = group.start()
    receiver.wait_for(1)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    release.set()
    hung = receiver.ids()[0]

    group.start()
    expected = {e.id for e in events}
    _wait_until(lambda: set(receiver.ids()) == expected and receiver.ids().count(hung) >= 2, 30, "redelivery")
    _wait_until(lambda: _all_settled(session, len(events)), 30, "deliveries to settle")
    group.stop_all()

    ids = receiver.ids()
    assert set(ids) == expected
    for got in receiver.requests:
        message = Webhook(issued.secret).verify(got.body, got.headers)
        assert message["id"] == got.headers["webhook-id"]  # a duplicate carries its event's id
    assert first.returncode == -signal.SIGKILL


def test_two_workers_never_deliver_one_event_at_the_same_time(
    engine: Engine,
    session: Session,
    receiver: Receiver,
    workers: Callable[..., Workers],
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip(
            "needs PostgreSQL (FOR UPDATE SKIP LOCKED between processes); SQLite serialises writers in one "
            "file: run with PARTNERLOOP_TEST_DATABASE_URL set"
        )
    shop = make_tenant()
    make_endpoint(shop, url=receiver.url, events=["offer.*"])
    in_flight: set[str] = set()
    overlaps: list[str] = []
    lock = threading.Lock()

    def respond(got: Received, _number: int) -> tuple[int, bytes]:
        webhook_id = got.headers["webhook-id"]
        with lock:
            if webhook_id in in_flight:
                overlaps.append(webhook_id)
            in_flight.add(webhook_id)
        time.sleep(0.1)
        with lock:
            in_flight.discard(webhook_id)
        return 200, b"ok"

    receiver.respond = respond
    group = workers(PARTNERLOOP_WEBHOOK_BATCH_SIZE="3")
    group.start()
    group.start()
    group.wait_started(0)
    group.wait_started(1)
    events = [outbox.emit(session, shop.id, "offer.updated", {"offer_id": f"off_{n}"}) for n in range(40)]
    session.commit()

    _wait_until(lambda: _all_settled(session, len(events)), 60, "every delivery")
    group.stop_all()
    assert overlaps == []
    assert sorted(receiver.ids()) == sorted(e.id for e in events)  # each exactly once
    for index in (0, 1):
        assert "deliver_webhooks" in group.output(index), f"worker {index} delivered nothing"

"""Factories for webhooks: endpoints, outbox events, settings for the worker, and a local receiver."""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlmodel import Session

from partners import outbox, webhooks
from partners.egress import EgressPolicy
from partners.outbox import OutboxEvent
from partners.retailers import Tenant
from partners.settings import Settings

PUBLIC_IP = "93.184.216.34"
PARTNER_HOST = "hooks.partner.example"
PARTNER_URL = f"https://{PARTNER_HOST}/partnerloop"
LOCAL_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def fake_resolver(table: dict[str, Sequence[str]] | None = None) -> Callable[[str, int], list[str]]:
    """DNS for made-up partner hosts: PARTNER_HOST is public unless `table` says otherwise."""
    answers = {PARTNER_HOST: [PUBLIC_IP], **(table or {})}

    def resolve(host: str, _port: int) -> list[str]:
        if host in answers:
            return list(answers[host])
        return [host]  # an address literal resolves to itself

    return resolve


def local_policy(**overrides: Any) -> EgressPolicy:
    """An egress policy that allows http and the loopback network (tests only)."""
    values: dict[str, Any] = {"https_only": False, "allowlist": LOCAL_NETWORKS, "resolver": fake_resolver()}
    values.update(overrides)
    return EgressPolicy(**values)


@pytest.fixture
def worker_settings(settings: Settings) -> Settings:
    """The test settings with what a worker needs: loopback allowed, short timeouts."""
    return settings.model_copy(
        update={
            "egress_allowlist": list(LOCAL_NETWORKS),
            "webhook_timeout_seconds": 2.0,
            "webhook_connect_timeout_seconds": 1.0,
            "webhook_lease_seconds": 4.0,
        }
    )


@pytest.fixture
def make_endpoint(
    session: Session, settings: Settings, make_tenant: Callable[..., Tenant]
) -> Callable[..., webhooks.IssuedEndpoint]:
    """An enabled endpoint of `tenant` (a new tenant by default) subscribed to `events`."""

    def make(
        tenant: Tenant | None = None, url: str = PARTNER_URL, events: Sequence[str] = ("offer.*", "consent.withdrawn")
    ) -> webhooks.IssuedEndpoint:
        issued = webhooks.create_endpoint(
            session,
            (tenant or make_tenant()).id,
            url,
            events,
            policy=local_policy(),
            encryption_key=settings.encryption_key.get_secret_value(),
        )
        session.commit()
        return issued

    return make


@pytest.fixture
def make_event(session: Session) -> Callable[..., OutboxEvent]:
    """An outbox event committed as a change of `tenant` would leave it."""

    def make(
        tenant: Tenant, event_type: str = "offer.approved", recipient: str | None = None, **payload: Any
    ) -> OutboxEvent:
        event = outbox.emit(session, tenant.id, event_type, {"offer_id": "off_x", **payload}, recipient=recipient)
        session.commit()
        return event

    return make


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """A partner's endpoint on 127.0.0.1: records every request; `respond` decides the answer."""

    url: str
    requests: list[Received] = field(default_factory=list)
    respond: Callable[[Received, int], tuple[int, bytes]] = lambda _r, _n: (200, b"ok")
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        with self.lock:
            return [r.headers["webhook-id"] for r in self.requests]

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            assert time.monotonic() < deadline, f"received {len(self.requests)} of {count}"
            time.sleep(0.05)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local HTTP receiver (threaded); answers 200 unless the test sets `respond`."""
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            if len(body) < length:
                return  # the sender died mid-request (a killed worker): a real server drops it too
            got = Received({k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
            box = holder[0]
            with box.lock:
                box.requests.append(got)
                number = len(box.requests)
            status, answer = box.respond(got, number)
            try:
                self.send_response(status)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the caller went away (a killed worker, a timeout)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder[0]
    server.shutdown()
    server.server_close()

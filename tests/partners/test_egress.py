from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from partners import egress
from partners.egress import EgressPolicy, EgressRefused, Reply
from partners.settings import Environment, Settings, SettingsError
from tests.factories_webhooks import LOCAL_NETWORKS, fake_resolver, local_policy

FIFTY_MB = 50 * 1024 * 1024

BLOCKED = [
    "127.0.0.1",
    "127.1.2.3",
    "10.0.0.8",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared address space (carrier NAT)
    "100.100.100.200",  # a cloud's metadata, in the shared space
    "0.0.0.0",  # noqa: S104 (an address to refuse, not one we bind)
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",  # cloud metadata over IPv6
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "ff02::1",
]


@pytest.mark.parametrize("address", BLOCKED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not egress.is_public(ipaddress.ip_address(address))
    with pytest.raises(EgressRefused):
        egress.check_address(address, EgressPolicy())


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.216.34"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert egress.is_public(ipaddress.ip_address(address))
    egress.check_address(address, EgressPolicy())


def test_the_allowlist_lets_a_network_through() -> None:
    policy = EgressPolicy(allowlist=LOCAL_NETWORKS)
    egress.check_address("127.0.0.1", policy)
    egress.check_address("::1", policy)
    with pytest.raises(EgressRefused):
        egress.check_address("10.0.0.1", policy)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.partner.example/x", "must use https"),
        ("ftp://hooks.partner.example/x", "must use https"),
        ("https:///x", "no host"),
        ("https://user:pw@hooks.partner.example/x", "user name"),
        ("https://10.1.2.3/x", "not a public address"),
        ("https://[::1]/x", "not a public address"),
        ("https://169.254.169.254/latest/meta-data", "not a public address"),
        ("https://localhost/x", "not a public address"),
        ("https://api.localhost/x", "not a public address"),
        ("https://hooks.partner.example:99999/x", "malformed"),
    ],
)
def test_urls_we_refuse_before_any_dns(url: str, reason: str) -> None:
    with pytest.raises(EgressRefused, match=reason):
        egress.check_url(url, EgressPolicy(https_only=True))


def test_http_is_allowed_outside_production_only() -> None:
    assert egress.check_url("http://hooks.partner.example/x", EgressPolicy(https_only=False))
    assert egress.check_url("https://hooks.partner.example/x", EgressPolicy(https_only=True))


class _Handler(BaseHTTPRequestHandler):
    sent: dict[str, int] = {}
    hits: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.hits.append(self.path)
        getattr(self, "_" + self.path.strip("/"), self._ok)()

    def _ok(self) -> None:
        self._answer(200, b"hello")

    def _redirect(self) -> None:
        self.send_response(302)
        port = self.server.server_address[1]  # type: ignore[index]
        self.send_header("location", f"http://127.0.0.1:{port}/ok")
        self.send_header("content-length", "0")
        self.end_headers()

    def _slow(self) -> None:
        time.sleep(3)
        self._answer(200, b"late")

    def _drip(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "1000")
        self.end_headers()
        for _ in range(1000):
            if not self._write(b"x"):
                return
            time.sleep(0.1)

    def _huge(self) -> None:
        self.send_response(200)
        self.send_header("content-length", str(FIFTY_MB))
        self.end_headers()
        chunk, sent = b"y" * 65536, 0
        while sent < FIFTY_MB and self._write(chunk):
            sent += len(chunk)
            self.sent["huge"] = sent

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self._write(body)

    def _write(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            return False
        return True

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[str]:
    _Handler.sent, _Handler.hits = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _post(url: str, policy: EgressPolicy) -> Reply:
    async def go() -> Reply:
        async with egress.client(policy) as http:
            return await egress.post(http, policy, url, b"{}", {"content-type": "application/json"})

    return asyncio.run(go())


def test_an_allowlisted_local_server_is_called(local_server: str) -> None:
    reply = _post(local_server + "/ok", local_policy())
    assert (reply.status_code, reply.excerpt, reply.ok) == (200, "hello", True)


def test_loopback_is_refused_without_the_allowlist(local_server: str) -> None:
    reply = _post(local_server + "/ok", local_policy(allowlist=()))
    assert reply.status_code is None and reply.error is not None and "not a public address" in reply.error
    assert _Handler.hits == []


def test_a_name_that_resolves_to_a_private_address_is_refused_at_connect(local_server: str) -> None:
    port = local_server.rsplit(":", 1)[1]
    # DNS rebinding: the name looks harmless but answers with the metadata address, or with loopback.
    for answer in (["169.254.169.254"], ["93.184.216.34", "127.0.0.1"]):
        policy = local_policy(allowlist=(), resolver=fake_resolver({"rebind.partner.example": answer}))
        reply = _post(f"http://rebind.partner.example:{port}/ok", policy)
        assert reply.error is not None and reply.error.startswith("refused"), reply
    assert _Handler.hits == []


def test_the_connection_goes_to_the_address_that_was_checked(local_server: str) -> None:
    port = local_server.rsplit(":", 1)[1]
    policy = local_policy(resolver=fake_resolver({"pinned.partner.example": ["127.0.0.1"]}))
    reply = _post(f"http://pinned.partner.example:{port}/ok", policy)
    assert reply.status_code == 200


def test_redirects_are_not_followed(local_server: str) -> None:
    reply = _post(local_server + "/redirect", local_policy())
    assert reply.status_code == 302 and not reply.ok
    assert _Handler.hits == ["/redirect"]


def test_a_slow_endpoint_times_out_at_the_deadline(local_server: str) -> None:
    started = time.monotonic()
    reply = _post(local_server + "/slow", local_policy(total_timeout=0.5))
    assert reply.status_code is None and reply.error == "timed out after 0.5 s"
    assert time.monotonic() - started < 2


def test_a_dripping_body_cannot_hold_a_call_past_the_deadline(local_server: str) -> None:
    started = time.monotonic()
    reply = _post(local_server + "/drip", local_policy(total_timeout=1.0))
    assert reply.error == "timed out after 1 s"
    assert time.monotonic() - started < 3


def test_a_50_mb_answer_is_read_only_up_to_the_cap(local_server: str) -> None:
    started = time.monotonic()
    reply = _post(local_server + "/huge", local_policy(max_response_bytes=64 * 1024))
    assert reply.status_code == 200
    assert len(reply.excerpt) == egress.EXCERPT_BYTES
    assert time.monotonic() - started < 5
    time.sleep(0.2)
    assert _Handler.sent.get("huge", 0) < FIFTY_MB


def test_a_refused_connection_is_an_error_not_an_exception() -> None:
    reply = _post("http://127.0.0.1:9/x", local_policy())
    assert reply.status_code is None and reply.error is not None and "ConnectError" in reply.error


def test_https_only_refuses_http_when_sending() -> None:
    reply = _post("http://hooks.partner.example/x", local_policy(https_only=True))
    assert reply.error == "refused: the URL must use https"


def test_an_unusable_dns_answer_is_refused() -> None:
    policy = local_policy(resolver=fake_resolver({"odd.partner.example": ["not-an-address"]}))
    reply = _post("http://odd.partner.example/x", policy)
    assert reply.error == "refused: odd.partner.example resolved to an unusable address"


def test_the_policy_follows_the_settings() -> None:
    settings = Settings(egress_allowlist=["127.0.0.0/8"], webhook_timeout_seconds=3, webhook_lease_seconds=10)
    policy = egress.policy_from(settings)
    assert (policy.https_only, policy.allowlist, policy.total_timeout) == (False, LOCAL_NETWORKS[:1], 3)
    production = settings.model_copy(update={"environment": Environment.production})
    assert egress.policy_from(production).https_only
    with pytest.raises(SettingsError, match="LEASE"):
        Settings(webhook_timeout_seconds=10, webhook_lease_seconds=10)

"""Guarded outbound HTTP to partners' URLs (webhooks, feeds).

What a partner gives us as a URL must not let it reach our own network (SSRF):

- the scheme is https (http only outside production), with no user info;
- every address a host name resolves to must be public: loopback, private, link-local (which holds the
  cloud metadata address 169.254.169.254), shared, multicast, reserved and unspecified addresses are
  refused, for IPv4, IPv6 and IPv4 embedded in IPv6 (`::ffff:…`, NAT64, 6to4), unless the address is
  in the configured allowlist (`PARTNERLOOP_EGRESS_ALLOWLIST`, for tests and local demos);
- the check happens when the connection is opened and the connection goes to the very address that
  was checked (TLS still verifies the host name), so a DNS answer that changes in between cannot
  slip a private address in;
- redirects are never followed, proxies from the environment are ignored, each call has a connect
  timeout and a hard overall deadline, and at most `max_response_bytes` of an answer are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
import httpcore
import httpx

from partners.settings import Settings

log = logging.getLogger("partnerloop.egress")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
EXCERPT_BYTES = 1024
USER_AGENT = "Partnerloop-Webhooks/1"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAMES = ("localhost", "localhost.localdomain")


class EgressRefused(Exception):
    """A URL or an address we will not call."""


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for `host`."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class EgressPolicy:
    """Where and how we may call out."""

    https_only: bool = True
    allowlist: tuple[IPNetwork, ...] = ()
    connect_timeout: float = 5.0
    total_timeout: float = 15.0
    max_response_bytes: int = 64 * 1024
    resolver: Resolver = field(default=system_resolver)


def policy_from(settings: Settings, resolver: Resolver | None = None) -> EgressPolicy:
    """The policy the settings describe: https only in production, the configured allowlist and limits."""
    return EgressPolicy(
        https_only=settings.is_production,
        allowlist=tuple(settings.egress_allowlist),
        connect_timeout=min(settings.webhook_connect_timeout_seconds, settings.webhook_timeout_seconds),
        total_timeout=settings.webhook_timeout_seconds,
        max_response_bytes=settings.webhook_max_response_bytes,
        resolver=resolver or system_resolver,
    )


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether an address is a public unicast one (and so is any IPv4 address it carries)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    inner = _embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_unspecified)


def check_address(address: str, policy: EgressPolicy) -> IPAddress:
    """The parsed address if we may connect to it; EgressRefused otherwise."""
    parsed = ipaddress.ip_address(address.split("%", 1)[0])
    if any(parsed in network for network in policy.allowlist) or is_public(parsed):
        return parsed
    raise EgressRefused(f"{parsed} is not a public address")


def check_url(url: str, policy: EgressPolicy) -> str:
    """A URL we may call (checked without DNS: scheme, host, literal addresses); EgressRefused otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EgressRefused("the URL is malformed") from exc
    allowed = ("https",) if policy.https_only else ("https", "http")
    if parts.scheme not in allowed:
        raise EgressRefused(f"the URL must use {' or '.join(allowed)}")
    if not parts.hostname:
        raise EgressRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise EgressRefused("the URL must not carry a user name or password")
    if port == 0:
        raise EgressRefused("the URL's port is invalid")
    host = parts.hostname.rstrip(".").lower()
    literal = "127.0.0.1" if host in _LOCAL_NAMES or host.endswith(".localhost") else host
    # A name (ValueError here) is checked when we connect, against what it resolves to then.
    with contextlib.suppress(ValueError):
        check_address(literal, policy)
    return url


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, refuses non-public addresses, and connects to the address it checked."""

    def __init__(self, policy: EgressPolicy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            found = await anyio.to_thread.run_sync(self._policy.resolver, host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not found:
            raise httpcore.ConnectError(f"{host} has no address")
        try:
            addresses = [check_address(address, self._policy) for address in found]
        except ValueError as exc:
            raise EgressRefused(f"{host} resolved to an unusable address") from exc
        error: Exception | None = None
        for address in dict.fromkeys(addresses):
            try:
                return await self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("unix sockets are not partner endpoints")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a connection pool that goes through `GuardedBackend`, HTTP/1.1 only."""

    def __init__(self, policy: EgressPolicy, max_connections: int = 20) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=0,
            network_backend=GuardedBackend(policy),
        )


def client(policy: EgressPolicy, max_connections: int = 20) -> httpx.AsyncClient:
    """An httpx client that calls out only as `policy` allows and never follows redirects."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, max_connections),
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(policy.total_timeout, connect=policy.connect_timeout),
        headers={"user-agent": USER_AGENT, "accept-encoding": "identity"},
    )


@dataclass(frozen=True)
class Reply:
    """What came back from one call: a status, or an error; never more than a capped excerpt."""

    status_code: int | None
    error: str | None
    duration_ms: int
    excerpt: str = ""
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    """The first `EXCERPT_BYTES` of the body, reading no more than `cap` bytes of it in all."""
    kept, total = bytearray(), 0
    async for chunk in response.aiter_raw():
        total += len(chunk)
        if len(kept) < EXCERPT_BYTES:
            kept += chunk[: EXCERPT_BYTES - len(kept)]
        if total >= cap:
            break
    return bytes(kept)


async def post(
    http: httpx.AsyncClient, policy: EgressPolicy, url: str, body: bytes, headers: Mapping[str, str]
) -> Reply:
    """POST `body` to `url` within the policy's deadline; errors come back in the reply, not raised."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        check_url(url, policy)
        async with asyncio.timeout(policy.total_timeout):
            request = http.build_request("POST", url, content=body, headers=dict(headers))
            response = await http.send(request, stream=True)
            try:
                excerpt = await _read_capped(response, policy.max_response_bytes)
            finally:
                await response.aclose()
    except EgressRefused as exc:
        return Reply(None, f"refused: {exc}", elapsed())
    except (TimeoutError, httpx.TimeoutException):
        return Reply(None, f"timed out after {policy.total_timeout:g} s", elapsed())
    except httpx.HTTPError as exc:
        return Reply(None, f"{type(exc).__name__}: {exc}"[:500], elapsed())
    except Exception as exc:  # a partner must never be able to crash the worker
        log.exception("unexpected error calling %s", url)
        return Reply(None, f"unexpected error: {type(exc).__name__}", elapsed())
    text = excerpt.decode("utf-8", errors="replace")
    return Reply(response.status_code, None, elapsed(), text, response.headers.get("retry-after"))

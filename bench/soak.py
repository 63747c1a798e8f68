"""Mixed traffic for ten minutes on PostgreSQL, then a reconciliation of what it left (run by hand).

    .venv/bin/python bench/soak.py --duration 600

Seeds a fresh database (`bench_soak`) with a cell of 10 retailers through the domain code (each
with 4 active partnerships, 3 live offers approved at 2 partners, half with single-use code pools,
30 customers with purchases and consents), starts `partnerloop serve --workers 2` and two
`partnerloop worker --poll-seconds 0.2`, a local webhook receiver that checks every signature
(and answers 503 to the first attempt of one delivery in 50, so retries are exercised), and then
drives, from `--users` concurrent clients with a token per retailer:

- the exchange, recorded (most calls);
- redemptions of what was shown, by single-use code, shared code or impression id; the same
  order reported again (must answer 200, same redemption); a used single-use code on another
  order (must answer 409); reversals;
- consent withdrawals and new grants;
- bulk ingest: new customers, their orders and their grants, as three NDJSON uploads;
- webhook deliveries of every event that traffic makes, to the receiver.

Any answer other than the one expected is an error; the run must end with none. Then, once the
outbox and deliveries have drained, it reconciles against the database: every redemption
attributed to one impression of its offer and booked once on each side of the ledger; every
event since the start delivered and received; no single-use code shown to two customers; no
offer shown to a customer who did not consent to its partner at that moment (the consent events
recorded by then, folded with `partners.consent_rules`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from exchange import HEADERS, make_clients, partnerloop_command, server_env, start_server, tokens_for
from seed_exchange import _create, _leaves, build_cell

from partners import consent_rules, webhook_signing
from partners.db import make_engine
from partners.scopes import Scope

SCOPES = tuple(
    str(s)
    for s in (
        Scope.exchange_read,
        Scope.redemptions_write,
        Scope.consents_write,
        Scope.customers_write,
        Scope.webhooks_write,
    )
)
EVENT_FAMILIES = ["consent.*", "erasure.*", "offer.*", "partnership.*", "redemption.*"]
# Share of each operation in the mix (the rest of a user's time is the exchange).
MIX = {"redeem": 0.12, "redeem_again": 0.03, "reuse_code": 0.02, "reverse": 0.03, "withdraw": 0.05, "grant": 0.05}
INGEST_EVERY = 10.0  # seconds between bulk uploads, per run


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


# --- the webhook receiver -------------------------------------------------------------------


@dataclass
class Received:
    """What the receiver saw: deliveries by (tenant, webhook-id), refusals, and the seconds each took."""

    secrets: dict[str, str] = field(default_factory=dict)  # tenant -> whsec_ secret
    since: datetime | None = None  # events written before (by the seeding) are not timed
    ids: Counter[tuple[str, str]] = field(default_factory=Counter)
    refused_first: set[str] = field(default_factory=set)
    bad_signatures: int = 0
    lag: list[float] = field(default_factory=list)  # event written to received, first attempts
    lag_retried: list[float] = field(default_factory=list)  # the same, for deliveries refused once
    lock: threading.Lock = field(default_factory=threading.Lock)


def start_receiver(received: Received) -> tuple[ThreadingHTTPServer, str]:
    """A local HTTP server taking webhooks at /hooks/{tenant}; its base URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a partner's server would

        def do_POST(self) -> None:
            tenant = self.path.rsplit("/", 1)[-1]
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            try:
                webhook_signing.verify(received.secrets[tenant], dict(self.headers), body, now=int(time.time()))
            except (KeyError, webhook_signing.InvalidSignature):
                with received.lock:
                    received.bad_signatures += 1
                self._answer(400)
                return
            webhook_id = self.headers["webhook-id"]
            # One delivery in 50 fails its first attempt, the same ones whichever worker sends them.
            flaky = hashlib.sha256(webhook_id.encode()).digest()[0] < 256 // 50
            with received.lock:
                if flaky and webhook_id not in received.refused_first:
                    received.refused_first.add(webhook_id)
                    self._answer(503)
                    return
                received.ids[(tenant, webhook_id)] += 1
                sent = datetime.fromisoformat(json.loads(body)["timestamp"])
                if received.since is not None and sent >= received.since:
                    lag = received.lag_retried if webhook_id in received.refused_first else received.lag
                    lag.append((datetime.now(UTC) - sent).total_seconds())
            self._answer(200)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # each worker opens up to a batch (20) of connections at once
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# --- the world the clients act in -----------------------------------------------------------


@dataclass
class Shown:
    host: str
    offering: str
    customer: str
    impression_id: str
    code: str | None


@dataclass
class Redeemed:
    offering: str
    id: str
    body: dict[str, Any]
    reversed: bool = False


@dataclass
class Seeded:
    """The retailers the seed made: their customers (external ids), notices and active partners."""

    tenants: list[str]
    customers: dict[str, list[str]]
    notices: dict[str, str]
    partners: dict[str, list[str]]


@dataclass
class World(Seeded):
    """What the clients know and have done; shared by every simulated user (one event loop)."""

    tokens: dict[str, str]
    leaves: list[str]
    rng: random.Random
    shown: list[Shown] = field(default_factory=list)
    redeemed: list[Redeemed] = field(default_factory=list)
    used_codes: set[tuple[str, str]] = field(default_factory=set)  # (offering tenant, single-use code)
    code_holder: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    customer_locks: defaultdict[tuple[str, str], asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock)
    )
    code_locks: defaultdict[tuple[str, str], asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    latencies: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    ingested: int = 0
    orders: int = 0


def is_single_use(code: str | None) -> bool:
    return code is not None and not code.startswith("SHARE")  # the seed names its shared codes SHARE…


class Driver:
    """Sends one operation at a time and checks its answer against what it must be."""

    def __init__(self, http: httpx.AsyncClient, world: World) -> None:
        self.http, self.world = http, world

    async def call(
        self, op: str, tenant: str, method: str, path: str, expect: int, **kwargs: Any
    ) -> httpx.Response | None:
        headers = {**HEADERS, "Authorization": self.world.tokens[tenant], **kwargs.pop("headers", {})}
        started = time.perf_counter()
        try:
            response = await self.http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            self.world.errors.append(f"{op}: {type(exc).__name__}: {exc}")
            return None
        self.world.latencies[op].append(time.perf_counter() - started)
        if response.status_code != expect:
            self.world.errors.append(f"{op}: {response.status_code} (expected {expect}): {response.text[:300]}")
            return None
        return response

    async def exchange(self) -> None:
        w = self.world
        host = w.rng.choice(w.tenants)
        customer = w.rng.choice(w.customers[host])
        body = {"customer_external_id": customer, "placement": w.rng.choice(["order_confirmation", "email"])}
        async with w.customer_locks[(host, customer)]:
            response = await self.call("exchange", host, "POST", "/v1/exchange", 200, json=body)
        if response is None:
            return
        for offer in response.json()["offers"]:
            shown = Shown(host, offer["partner"]["tenant_id"], customer, offer["impression_id"], offer["code"])
            if is_single_use(shown.code):
                key = (shown.offering, str(shown.code))
                holder = w.code_holder.setdefault(key, (host, customer))
                if holder != (host, customer):
                    w.errors.append(f"single-use code {shown.code} shown to {holder} and to {(host, customer)}")
            w.shown.append(shown)

    async def redeem(self) -> None:
        w = self.world
        if not w.shown:
            return await self.exchange()
        shown = w.shown.pop(w.rng.randrange(len(w.shown)))
        w.orders += 1
        body: dict[str, Any] = {
            "order_id": f"soak-{w.orders}-{secrets.token_hex(4)}",
            "order_value": w.rng.randint(50, 300) * 100,
            "currency": "GBP",
        }
        if shown.code is None:
            body["impression_id"] = shown.impression_id
        else:
            body["code"] = shown.code
        key = (shown.offering, str(shown.code))
        async with w.code_locks[key]:
            used = is_single_use(shown.code) and key in w.used_codes
            response = await self.call(
                "redeem (409 expected)" if used else "redeem",
                shown.offering,
                "POST",
                "/v1/redemptions",
                409 if used else 201,
                json=body,
            )
            if response is not None and not used:
                w.redeemed.append(Redeemed(shown.offering, response.json()["id"], body))
                if is_single_use(shown.code):
                    w.used_codes.add(key)

    async def redeem_again(self) -> None:
        """The same order reported again: the same redemption, 200."""
        w = self.world
        if not w.redeemed:
            return await self.redeem()
        done = w.rng.choice(w.redeemed)
        response = await self.call("redeem again", done.offering, "POST", "/v1/redemptions", 200, json=done.body)
        if response is not None and response.json()["id"] != done.id:
            w.errors.append(f"order {done.body['order_id']} answered {response.json()['id']}, not {done.id}")

    async def reuse_code(self) -> None:
        """A used single-use code on a new order: 409."""
        w = self.world
        used = [r for r in w.redeemed if is_single_use(r.body.get("code"))]
        if not used:
            return await self.redeem()
        done = w.rng.choice(used)
        w.orders += 1
        body = {**done.body, "order_id": f"soak-{w.orders}-{secrets.token_hex(4)}"}
        await self.call("redeem (409 expected)", done.offering, "POST", "/v1/redemptions", 409, json=body)

    async def reverse(self) -> None:
        w = self.world
        open_ = [r for r in w.redeemed if not r.reversed]
        if not open_:
            return await self.redeem()
        done = w.rng.choice(open_)
        done.reversed = True
        path = f"/v1/redemptions/{done.id}/reverse"
        await self.call("reverse", done.offering, "POST", path, 200, json={"reason": "refund"})

    async def withdraw(self) -> None:
        w = self.world
        tenant = w.rng.choice(w.tenants)
        customer = w.rng.choice(w.customers[tenant])
        body = {"method": "preference_link", "source": "preference_page", "purposes": ["partner_offers"]}
        async with w.customer_locks[(tenant, customer)]:
            path = f"/v1/customers/{customer}/consents/withdraw"
            await self.call("consent withdraw", tenant, "POST", path, 200, json=body)

    async def grant(self) -> None:
        w = self.world
        tenant = w.rng.choice(w.tenants)
        customer = w.rng.choice(w.customers[tenant])
        async with w.customer_locks[(tenant, customer)]:
            path = f"/v1/customers/{customer}/consent-events"
            await self.call("consent grant", tenant, "POST", path, 201, json=self.grant_body(tenant))

    def grant_body(self, tenant: str) -> dict[str, Any]:
        w = self.world
        partner = "all" if w.rng.random() < 0.8 else w.rng.choice(w.partners[tenant])
        return {
            "event_id": f"soak-{secrets.token_hex(8)}",
            "action": "granted",
            "method": "checkbox",
            "source": "checkout",
            "occurred_at": now_iso(),
            "purposes": ["partner_offers"],
            "partner": partner,
            "notice_id": w.notices[tenant],
        }

    async def ingest(self, rows: int) -> None:
        """New customers, their orders and their grants, as three uploads; then they join the traffic."""
        w = self.world
        tenant = w.rng.choice(w.tenants)
        new = [f"soak-{secrets.token_hex(6)}" for _ in range(rows)]
        ordered = (datetime.now(UTC) - timedelta(days=3)).isoformat()
        uploads: dict[str, list[dict[str, Any]]] = {
            "customers": [{"external_id": c, "store_email": False} for c in new],
            "purchases": [
                {
                    "external_id": c,
                    "order_id": f"{c}-o1",
                    "ordered_at": ordered,
                    "currency": "GBP",
                    "lines": [
                        {"category_id": leaf, "unit_price_minor": w.rng.randint(5, 120) * 100, "channel": "physical"}
                        for leaf in w.rng.sample(w.leaves, 2)
                    ],
                }
                for c in new
            ],
            "consent-events": [{"external_id": c, **self.grant_body(tenant)} for c in new],
        }
        for kind, lines in uploads.items():
            content = "\n".join(json.dumps(line) for line in lines).encode()
            response = await self.call(
                f"upload {kind}",
                tenant,
                "POST",
                f"/v1/uploads/{kind}",
                201,
                content=content,
                headers={"Content-Type": "application/x-ndjson"},
            )
            if response is None:
                return
            job = response.json()
            if job["rows_ok"] != rows or job["rows_failed"]:
                w.errors.append(f"upload {kind}: {job['rows_ok']} ok, {job['rows_failed']} failed of {rows}")
                return
        w.customers[tenant].extend(new)
        w.ingested += rows


async def user(driver: Driver, until: float) -> None:
    operations: list[tuple[float, Callable[[], Awaitable[None]]]] = [(MIX[name], getattr(driver, name)) for name in MIX]
    while time.monotonic() < until:
        roll = driver.world.rng.random()
        chosen: Callable[[], Awaitable[None]] = driver.exchange
        for share, operation in operations:
            if roll < share:
                chosen = operation
                break
            roll -= share
        await chosen()


async def ingester(driver: Driver, until: float, rows: int) -> None:
    while time.monotonic() < until:
        await asyncio.sleep(INGEST_EVERY)
        await driver.ingest(rows)


async def renew_tokens(base: str, made: dict[str, tuple[str, str]], world: World, until: float) -> None:
    """Access tokens live 15 minutes: fetch fresh ones every 5."""
    while time.monotonic() < until - 300:
        await asyncio.sleep(300)
        world.tokens.update(await asyncio.to_thread(tokens_for, base, made, SCOPES))


async def progress(world: World, engine: Engine, started: float, until: float) -> None:
    while time.monotonic() < until:
        await asyncio.sleep(30)
        done = sum(len(v) for v in world.latencies.values())
        events, deliveries = await asyncio.to_thread(backlog_of, engine)
        elapsed = time.monotonic() - started
        print(
            f"  {elapsed:5.0f} s: {done:,} calls ({done / elapsed:,.0f}/s), {len(world.errors)} errors, "
            f"{world.ingested:,} customers ingested, outbox backlog {events} events, {deliveries} deliveries",
            flush=True,
        )


async def drive(
    base: str, world: World, engine: Engine, args: argparse.Namespace, made: dict[str, tuple[str, str]]
) -> float:
    limits = httpx.Limits(max_connections=args.users + 2, max_keepalive_connections=args.users + 2)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        driver = Driver(http, world)
        started = time.monotonic()
        until = started + args.duration
        await asyncio.gather(
            *(user(driver, until) for _ in range(args.users)),
            ingester(driver, until, args.ingest_rows),
            renew_tokens(base, made, world, until),
            progress(world, engine, started, until),
        )
        return time.monotonic() - started


# --- set-up ---------------------------------------------------------------------------------


def seed(engine: Engine, url: str, rng: random.Random) -> Seeded:
    """A fresh database with one domain-built cell: its tenants, their customers, notices and partners."""
    _create(url)
    cell = argparse.Namespace(
        cell=10, tenants=10, partners=4, placements=2, offers=30, pool_share=0.5, pool_size=400, template_customers=30
    )
    tenants = build_cell(engine, cell, rng).tenant_ids
    with engine.connect() as connection:
        customers: dict[str, list[str]] = defaultdict(list)
        for tenant, external in connection.execute(text("SELECT tenant_id, external_id FROM customers")):
            customers[tenant].append(external)
        rows = connection.execute(text("SELECT tenant_id, id FROM consent_notices")).all()
        notices: dict[str, str] = {tenant: notice for tenant, notice in rows}  # noqa: C416 (rows, not pairs)
        partners: dict[str, list[str]] = defaultdict(list)
        for tenant, partner in connection.execute(
            text("SELECT tenant_id, partner_tenant_id FROM partnerships WHERE state = 'active'")
        ):
            partners[tenant].append(partner)
    return Seeded(tenants, dict(customers), notices, dict(partners))


def register_endpoints(base: str, tenants: list[str], tokens: dict[str, str], hooks: str, received: Received) -> None:
    with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as http:
        for tenant in tenants:
            response = http.post(
                "/v1/webhook-endpoints",
                json={"url": f"{hooks}/hooks/{tenant}", "events": EVENT_FAMILIES},
                headers={"Authorization": tokens[tenant]},
            )
            response.raise_for_status()
            received.secrets[tenant] = response.json()["secret"]


def backlog_of(engine: Engine) -> tuple[int, int]:
    """Outbox events not yet handed out, and deliveries still pending."""
    with engine.connect() as connection:
        events, deliveries = connection.execute(
            text(
                "SELECT (SELECT count(*) FROM outbox_events WHERE delivered_at IS NULL), "
                "(SELECT count(*) FROM webhook_deliveries WHERE status = 'pending')"
            )
        ).one()
    return int(events), int(deliveries)


def drain(engine: Engine, timeout: float) -> float:
    """Wait until the outbox and deliveries are empty; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if backlog_of(engine) == (0, 0):
            return time.monotonic() - started
        time.sleep(0.5)
    return time.monotonic() - started


# --- the reconciliation ---------------------------------------------------------------------


def reconcile(engine: Engine, world: World, received: Received, since: datetime) -> list[tuple[str, int, str]]:
    """(check, failures, detail) for each promise; a clean run fails none."""
    checks = []
    with engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT r.id, r.impression_id, i.id IS NOT NULL AND i.offer_id = r.offer_id "
                "AND i.partnership_id = r.partnership_id AND i.offering_tenant_id = r.tenant_id "
                "AND (r.code IS NULL OR i.code = r.code), r.reversed_at IS NOT NULL, "
                "(SELECT count(*) FROM ledger_entries l WHERE l.redemption_id = r.id AND l.kind = 'commission'), "
                "(SELECT count(*) FROM ledger_entries l WHERE l.redemption_id = r.id AND l.kind = 'reversal'), "
                "(SELECT coalesce(sum(l.amount), 0) FROM ledger_entries l WHERE l.redemption_id = r.id) "
                "FROM redemptions r LEFT JOIN impressions i "
                "ON i.tenant_id = r.host_tenant_id AND i.id = r.impression_id"
            )
        ).all()
        ours = {r.id for r in world.redeemed}
        stored = {row[0] for row in rows}
        bad = [
            row
            for row in rows
            if not row[2] or row[4] != 2 or row[5] != (2 if row[3] else 0) or (row[3] and row[6] != 0)
        ]
        missing = ours - stored
        reversed_ours = {r.id for r in world.redeemed if r.reversed}
        reversed_db = {row[0] for row in rows if row[3]}
        checks.append(
            (
                "every redemption attributed once",
                len(bad) + len(missing) + len(stored - ours) + len(reversed_ours ^ reversed_db),
                f"{len(stored):,} redemptions ({len(reversed_db):,} reversed), each on one impression of its offer "
                f"and booked once on both sides; {len(missing)} of ours missing, {len(stored - ours)} unknown",
            )
        )
        events = c.execute(
            text(
                # A join, not a subquery per event: webhook_deliveries has no index by event id.
                "SELECT e.id, e.delivered_at IS NOT NULL, string_agg(d.tenant_id || ' ' || d.status, ',') "
                "FROM outbox_events e LEFT JOIN webhook_deliveries d ON d.event_id = e.id "
                "WHERE e.created_at >= :since GROUP BY e.id, e.delivered_at"
            ),
            {"since": since},
        ).all()
        undelivered = 0
        deliveries = 0
        for event_id, handed, outcome in events:
            parts = [p.split(" ") for p in (outcome or "").split(",") if p]
            deliveries += len(parts)
            if not handed or not parts:
                undelivered += 1
                continue
            for tenant, status in parts:
                if status != "succeeded" or (tenant, event_id) not in received.ids:
                    undelivered += 1
        duplicates = sum(n - 1 for n in received.ids.values())
        checks.append(
            (
                "every event delivered",
                undelivered + received.bad_signatures,
                f"{len(events):,} events, {deliveries:,} deliveries, all succeeded and received with a valid "
                f"signature; {len(received.refused_first)} first attempts refused on purpose and retried; "
                f"{duplicates} received twice; {received.bad_signatures} bad signatures",
            )
        )
        twice = c.execute(
            text(
                "SELECT count(*) FROM (SELECT offering_tenant_id, code FROM impressions "
                "WHERE code IS NOT NULL AND code NOT LIKE 'SHARE%' GROUP BY 1, 2 "
                "HAVING count(DISTINCT (tenant_id, customer_id)) > 1) AS t"
            )
        ).scalar_one()
        codes = c.execute(
            text("SELECT count(DISTINCT (offering_tenant_id, code)) FROM impressions WHERE code NOT LIKE 'SHARE%'")
        ).scalar_one()
        clients_saw = sum("shown to" in e for e in world.errors)
        checks.append(
            (
                "no single-use code issued twice",
                twice + clients_saw,
                f"{codes:,} single-use codes shown, each to one customer (database and clients agree)",
            )
        )
        checks.append(consent_check(c))
    return checks


def consent_check(c: Any) -> tuple[str, int, str]:
    """Every impression against the consent events recorded before it, folded."""
    events: defaultdict[tuple[str, str], list[tuple[datetime, consent_rules.EventFacts]]] = defaultdict(list)
    for row in c.execute(
        text(
            "SELECT tenant_id, customer_id, id, event_id, seq, occurred_at, purpose, partner, action, method, "
            "notice_id, confirms, recorded_at FROM consent_events WHERE purpose = 'partner_offers'"
        )
    ):
        facts = consent_rules.EventFacts(*row[2:12])
        events[(row[0], row[1])].append((row[12], facts))
    impressions = c.execute(
        text("SELECT tenant_id, customer_id, offering_tenant_id, created_at FROM impressions ORDER BY created_at")
    ).all()
    violations = 0
    for tenant, customer, partner, at in impressions:
        known = [facts for recorded, facts in events[(tenant, customer)] if recorded <= at]
        states = consent_rules.fold(known)
        if not consent_rules.consenting(states, "partner_offers", partner, partner_active=True):
            violations += 1
    detail = f"{len(impressions):,} impressions, each with a valid consent for its partner when it was made"
    return ("no offer shown without consent at that moment", violations, detail)


# --- the run --------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


def report(world: World, elapsed: float, checks: list[tuple[str, int, str]], drained: float, hooks: Received) -> None:
    print(f"\n{'operation':<24} {'calls':>8} {'per s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    total = 0
    for op, values in sorted(world.latencies.items(), key=lambda kv: -len(kv[1])):
        total += len(values)
        print(
            f"{op:<24} {len(values):>8,} {len(values) / elapsed:>7.1f} {percentile(values, 0.5):>7.1f} "
            f"{percentile(values, 0.99):>7.1f} {max(values) * 1000:>7.1f}"
        )
    print(f"{'all':<24} {total:>8,} {total / elapsed:>7.1f}")
    print(f"errors: {len(world.errors)}")
    for line in world.errors[:10]:
        print("  ", line)
    for name, lag in (("first attempt", hooks.lag), ("after one refusal", hooks.lag_retried)):
        if lag:
            print(
                f"webhooks, event to receipt, {name}: {len(lag):,} deliveries, "
                f"p50 {percentile(lag, 0.5) / 1000:.2f} s, p99 {percentile(lag, 0.99) / 1000:.2f} s"
            )
    print(f"outbox and deliveries drained {drained:.1f} s after the load stopped")
    print("\nreconciliation")
    for name, failures, detail in checks:
        print(f"  {'ok  ' if failures == 0 else 'FAIL'} {name}: {failures} failures; {detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/bench_soak")
    parser.add_argument("--duration", type=int, default=600, help="seconds of load")
    parser.add_argument("--users", type=int, default=16, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    parser.add_argument("--delivery-workers", type=int, default=2, help="`partnerloop worker` processes")
    parser.add_argument("--ingest-rows", type=int, default=50, help="customers per bulk upload (one each 10 s)")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311 (a reproducible workload, not secrets)
    engine = make_engine(args.database_url)
    print("seeding a cell of 10 retailers through the domain ...", flush=True)
    seeded = seed(engine, args.database_url, rng)
    tenants, customers = seeded.tenants, seeded.customers
    received = Received()
    receiver, hooks = start_receiver(received)
    work = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    local = {"PARTNERLOOP_ENVIRONMENT": "development", "PARTNERLOOP_EGRESS_ALLOWLIST": '["127.0.0.0/8"]'}
    server = start_server(args, work / "server.log", local)
    base = f"http://127.0.0.1:{args.port}"
    workers: list[subprocess.Popen[bytes]] = []
    try:
        made = make_clients(engine, tenants, SCOPES)
        tokens = tokens_for(base, made, SCOPES)
        register_endpoints(base, tenants, tokens, hooks, received)
        since = received.since = datetime.now(UTC)
        env = server_env(args.database_url, local)
        for n in range(args.delivery_workers):
            log = (work / f"worker-{n}.log").open("wb")
            command = [partnerloop_command(), "worker", "--poll-seconds", "0.2"]
            workers.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))  # noqa: S603
        world = World(**vars(seeded), tokens=tokens, leaves=_leaves(), rng=rng)
        print(
            f"{len(tenants)} retailers, {sum(map(len, customers.values()))} customers; {args.users} clients for "
            f"{args.duration} s against {args.workers} API workers and {args.delivery_workers} delivery workers; "
            f"logs in {work}",
            flush=True,
        )
        elapsed = asyncio.run(drive(base, world, engine, args, made))
        print("load stopped; waiting for the outbox to drain ...", flush=True)
        drained = drain(engine, timeout=120)
        checks = reconcile(engine, world, received, since)
    finally:
        for process in [*workers, server]:
            process.terminate()
            process.wait(timeout=30)
        receiver.shutdown()
    report(world, elapsed, checks, drained, received)
    engine.dispose()
    if world.errors or any(failures for _, failures, _ in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()

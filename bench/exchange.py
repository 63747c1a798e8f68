"""The exchange under load beside the no-op `/healthz`, in one run of one app (run by hand).

    .venv/bin/python bench/seed_exchange.py     # once: 1,000 tenants, 1M customers, 10,000 offers
    .venv/bin/python bench/exchange.py --workers 2 --connections 8,32 --duration 20

Starts `partnerloop serve` with production settings (PARTNERLOOP_ENVIRONMENT=production,
https issuer behind `X-Forwarded-Proto`, random secrets) on the seeded database, creates an
API client with `exchange:read` for a sample of host tenants and gets a client-credentials
token for each over HTTP, then drives, with wrk and the same connection count:
`GET /healthz`, `POST /v1/exchange` for random (host, customer) pairs (recorded: answers,
impressions on both sides, single-use codes reserved), and the same with `dry_run`.
Prints throughput and latency percentiles of each, the exchange's ratio to the no-op, and the
CPU time per request of the serve processes and of PostgreSQL (from /proc: same machine only).

Before the run, what earlier runs recorded is cleared (answers, impressions, disclosures,
idempotency keys) and reserved codes are handed back, unless `--keep-usage`.
wrk is closed-loop (each connection waits for its answer): latency under saturation is
queueing; compare runs at the same connection count.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import Engine, text

from partners import clients, live_offers
from partners.db import make_engine, unit_of_work
from partners.scopes import Scope

ROOT = Path(__file__).resolve().parent.parent
ISSUER = "https://bench.partnerloop.example"
HEADERS = {"X-Forwarded-Proto": "https"}

_DONE = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args)
  math.randomseed(os.time() * 100 + tid)
end
bad, empty, shown, seq = 0, 0, 0, 0
function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    if bad <= 3 then io.stderr:write("status " .. status .. ": " .. string.sub(body, 1, 300) .. "\\n") end
  elseif string.find(body, '"offers":[]', 1, true) then
    empty = empty + 1
  else
    shown = shown + 1
  end
end
function done(summary, latency, requests)
  local b, e, s = 0, 0, 0
  for _, t in ipairs(threads) do
    b = b + t:get("bad"); e = e + t:get("empty"); s = s + t:get("shown")
  end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50": %d, "p90": %d, "p99": %d, "max": %d, ' ..
    '"non200": %d, "empty": %d, "shown": %d, "socket_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, b, e, s, errors))
end
"""

_EXCHANGE = """
local dry = "%(dry)s"
local idempotency = %(idempotency)s
local placements = {"order_confirmation", "email", "account_page"}
request = function()
  local pair = customers[math.random(#customers)]
  seq = seq + 1
  local body = '{"customer_external_id": "' .. pair[2] .. '", "placement": "' ..
    placements[math.random(#placements)] .. '", "region": "GB", "dry_run": ' .. dry .. '}'
  local headers = {["Authorization"] = tokens[pair[1]], ["Content-Type"] = "application/json",
    ["X-Forwarded-Proto"] = "https"}
  if idempotency then headers["Idempotency-Key"] = "bench-" .. tid .. "-" .. os.time() .. "-" .. seq end
  return wrk.format("POST", "/v1/exchange", headers, body)
end
"""

_HEALTHZ = """
request = function()
  return wrk.format("GET", "/healthz", {["X-Forwarded-Proto"] = "https"})
end
"""


@dataclass
class Result:
    name: str
    connections: int
    rps: float
    p50: float
    p90: float
    p99: float
    max: float
    non200: int
    socket_errors: int
    shown_share: float | None
    app_cpu_ms: float | None = None  # CPU of the serve processes per request
    pg_cpu_ms: float | None = None  # CPU of every PostgreSQL process per request


class CpuMeter:
    """CPU seconds used so far by the server's processes and by PostgreSQL's (same machine, /proc)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        try:
            self.pg_uid: int | None = pwd.getpwnam("postgres").pw_uid
        except KeyError:
            self.pg_uid = None

    @staticmethod
    def _stat(pid: str) -> list[str]:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()

    def read(self) -> tuple[float, float]:
        app = pg = 0.0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = self._stat(entry.name)
                owner = entry.stat().st_uid
            except OSError:
                continue  # it ended meanwhile
            used = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            if int(entry.name) == self.server_pid or int(fields[1]) == self.server_pid:
                app += used
            elif owner == self.pg_uid:
                pg += used
        return app, pg


def reset_usage(engine: Engine) -> str:
    """Forget what earlier runs recorded, and hand reserved codes back (live rows refreshed)."""
    with engine.begin() as connection:
        for table in ("exchange_answers", "impressions", "received_impressions", "customer_disclosures"):
            connection.execute(text(f"TRUNCATE {table}"))
        connection.execute(text("DELETE FROM idempotency_keys"))
        freed = connection.execute(
            text(
                "UPDATE offer_codes SET reserved_at = NULL, reserved_for = NULL "
                "WHERE reserved_at IS NOT NULL AND redeemed_at IS NULL"
            )
        ).rowcount
        stale = connection.execute(
            text("SELECT DISTINCT offering_tenant_id, offer_id FROM live_offers WHERE status <> 'live'")
        ).all()
    with unit_of_work(engine) as session:
        for offering, offer_id in stale:
            live_offers.refresh_offer(session, str(offering), str(offer_id))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        # The counters and impressions grow with every run: fresh statistics keep their plans by key.
        tables = "offer_codes, live_offers, offer_counters, partnership_impressions, impressions, received_impressions"
        connection.execute(text(f"VACUUM ANALYZE {tables}"))
        # Write out what the reset dirtied now, not during the first rounds (it read as the exchange's cost).
        connection.execute(text("CHECKPOINT"))
    return f"{freed:,} codes handed back, {len(stale)} offers' live rows refreshed"


def sample(engine: Engine, hosts: int, per_host: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Random host tenants that host offers, and random customers of theirs."""
    with engine.connect() as connection:
        host_ids = [
            str(h)
            for h in connection.execute(
                text("SELECT DISTINCT tenant_id FROM live_offers ORDER BY 1 LIMIT 100000")
            ).scalars()
        ]
        chosen = sorted(secrets.SystemRandom().sample(host_ids, min(hosts, len(host_ids))))
        rows = connection.execute(
            text("SELECT tenant_id, external_id FROM customers WHERE tenant_id = ANY(:h) ORDER BY random() LIMIT :n"),
            {"h": chosen, "n": hosts * per_host},
        ).all()
    return chosen, [(str(t), str(e)) for t, e in rows]


def make_clients(
    engine: Engine, hosts: list[str], scopes: tuple[str, ...] = (str(Scope.exchange_read),)
) -> dict[str, tuple[str, str]]:
    """An API client per host with `scopes` (made through the domain): id and secret."""
    made = {}
    with unit_of_work(engine) as session:
        for host in hosts:
            issued = clients.create_client(session, host, "exchange bench", list(scopes), frozenset(Scope), "usr_bench")
            made[host] = (issued.client.id, issued.secret)
    return made


def tokens_for(
    base: str, made: dict[str, tuple[str, str]], scopes: tuple[str, ...] = (str(Scope.exchange_read),)
) -> dict[str, str]:
    """A client-credentials access token per host for `scopes`, from /oauth/token."""
    found = {}
    with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as http:
        for host, (client_id, secret) in made.items():
            response = http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", "scope": " ".join(scopes)},
                auth=(client_id, secret),
            )
            response.raise_for_status()
            found[host] = "Bearer " + response.json()["access_token"]
    return found


def lua_exchange(path: Path, tokens: dict[str, str], pairs: list[tuple[str, str]], *, dry: bool, keys: bool) -> None:
    index = {host: i + 1 for i, host in enumerate(tokens)}
    lines = ["tokens = {" + ", ".join(json.dumps(tokens[h]) for h in tokens) + "}", "customers = {"]
    lines += [f"  {{{index[host]}, {json.dumps(ext)}}}," for host, ext in pairs]
    lines.append("}")
    options = {"dry": "true" if dry else "false", "idempotency": "true" if keys else "false"}
    path.write_text("\n".join(lines) + _EXCHANGE % options + _DONE)


def run_wrk(
    name: str, script: Path, base: str, connections: int, duration: int, threads: int, meter: CpuMeter | None = None
) -> Result:
    threads = min(threads, connections)  # wrk needs a connection per thread
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(script), base]
    before = meter.read() if meter else (0.0, 0.0)
    done = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    after = meter.read() if meter else (0.0, 0.0)
    if done.stderr.strip():
        print(done.stderr.strip(), file=sys.stderr)
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRKJSON "))
    data = json.loads(line.removeprefix("WRKJSON "))
    answered = data["empty"] + data["shown"]
    return Result(
        name=name,
        connections=connections,
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50=data["p50"] / 1000,
        p90=data["p90"] / 1000,
        p99=data["p99"] / 1000,
        max=data["max"] / 1000,
        non200=data["non200"],
        socket_errors=data["socket_errors"],
        shown_share=data["shown"] / answered if answered and name != "GET /healthz" else None,
        app_cpu_ms=(after[0] - before[0]) * 1000 / data["requests"] if meter and data["requests"] else None,
        pg_cpu_ms=(after[1] - before[1]) * 1000 / data["requests"] if meter and data["requests"] else None,
    )


def server_env(database_url: str, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """The settings the bench runs Partnerloop's processes with: production, fixed keys, wide limits."""
    env = dict(os.environ)
    env.update(
        PARTNERLOOP_ENVIRONMENT="production",
        PARTNERLOOP_DATABASE_URL=database_url,
        PARTNERLOOP_BASE_URL=ISSUER,
        # Fixed for the bench database: signing keys are stored encrypted under ENCRYPTION_KEY.
        PARTNERLOOP_SECRET_KEY="bench-secret-key-" + "s" * 40,
        PARTNERLOOP_ENCRYPTION_KEY="bench-encryption-key-" + "e" * 40,
        PARTNERLOOP_IDENTITY_HASH_KEY="bench-identity-hash-key-" + "i" * 40,
        # The limiter still counts every call (its cost is measured), but 100 token requests from one
        # address and ~20 calls/s per client must not be refused: this measures the exchange.
        PARTNERLOOP_PUBLIC_RATE_LIMIT_BURST="1000",
        PARTNERLOOP_RATE_LIMIT_PER_MINUTE="600000",
        PARTNERLOOP_RATE_LIMIT_BURST="10000",
    )
    env.update(extra_env or {})
    return env


def partnerloop_command() -> str:
    """The `partnerloop` script of this interpreter's environment."""
    return shutil.which("partnerloop", path=str(Path(sys.executable).parent)) or "partnerloop"


def start_server(
    args: argparse.Namespace, log_path: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = server_env(args.database_url, extra_env)
    command = [
        partnerloop_command(),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(args.port),
        "--workers",
        str(args.workers),
    ]
    log = log_path.open("wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)  # noqa: S603
    base = f"http://127.0.0.1:{args.port}"
    for _ in range(300):
        if server.poll() is not None:
            sys.exit(f"bench: the server stopped; see {log_path}")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.terminate()
    sys.exit(f"bench: the server did not answer; see {log_path}")


def recorded(engine: Engine) -> str:
    with engine.connect() as connection:
        answers = connection.execute(text("SELECT count(*) FROM exchange_answers")).scalar_one()
        shown = connection.execute(text("SELECT count(*) FROM impressions")).scalar_one()
        codes = connection.execute(text("SELECT count(*) FROM offer_codes WHERE reserved_at IS NOT NULL")).scalar_one()
    return f"recorded: {answers:,} answers, {shown:,} impressions, {codes:,} single-use codes reserved"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/bench_exchange")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--connections", default="8,32", help="comma-separated: one round per value")
    parser.add_argument("--duration", type=int, default=20, help="seconds per endpoint and round")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of exchange calls before each round")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--hosts", type=int, default=100, help="host tenants calling (one API client each)")
    parser.add_argument("--customers-per-host", type=int, default=500)
    parser.add_argument("--no-dry-run", action="store_true", help="skip the dry-run round")
    parser.add_argument("--idempotency-keys", action="store_true", help="send a fresh Idempotency-Key each call")
    parser.add_argument("--keep-usage", action="store_true", help="keep what earlier runs recorded")
    parser.add_argument("--hold", action="store_true", help="leave the server up after the run (profiling)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is needed (apt-get install wrk)")
    engine = make_engine(args.database_url)
    if not args.keep_usage:
        print("reset:", reset_usage(engine), flush=True)
    hosts, pairs = sample(engine, args.hosts, args.customers_per_host)
    made = make_clients(engine, hosts)
    work = Path(tempfile.mkdtemp(prefix="bench-exchange-"))
    server = start_server(args, work / "server.log")
    base = f"http://127.0.0.1:{args.port}"
    results: list[Result] = []
    try:
        tokens = tokens_for(base, made)
        print(f"{len(hosts)} hosts with a token, {len(pairs):,} (host, customer) pairs; server log {work}", flush=True)
        healthz, recorded_script, dry_script = work / "healthz.lua", work / "exchange.lua", work / "dry.lua"
        healthz.write_text(_HEALTHZ + _DONE)
        lua_exchange(recorded_script, tokens, pairs, dry=False, keys=args.idempotency_keys)
        lua_exchange(dry_script, tokens, pairs, dry=True, keys=args.idempotency_keys)
        meter = CpuMeter(server.pid)
        rounds = [("GET /healthz", healthz), ("POST /v1/exchange", recorded_script)]
        if not args.no_dry_run:
            rounds.append(("POST /v1/exchange dry_run", dry_script))
        for connections in (int(c) for c in args.connections.split(",")):
            if args.warmup:
                run_wrk("warm-up", dry_script, base, connections, args.warmup, args.threads)
            for name, script in rounds:
                results.append(run_wrk(name, script, base, connections, args.duration, args.threads, meter))
            print(f"  {connections} connections done", flush=True)
        if args.hold:
            input(f"server up at {base} (pid {server.pid}); Enter stops it ")
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(recorded(engine))
    engine.dispose()
    report(args, results)


def report(args: argparse.Namespace, results: list[Result]) -> None:
    load = os.getloadavg()
    print(
        f"\n{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"{args.workers} uvicorn workers; wrk -t{args.threads}, {args.duration} s per line"
        + ("; Idempotency-Key on every call" if args.idempotency_keys else "")
    )
    print(
        f"{'endpoint':<27} {'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'non-200':>7} {'shown':>6} {'x no-op':>7} {'app CPU':>7} {'pg CPU':>7}"
    )
    noop: dict[int, float] = {}
    for r in results:
        if r.name == "GET /healthz":
            noop[r.connections] = r.rps
        ratio = r.rps / noop[r.connections] if r.connections in noop else 0.0
        shown = f"{r.shown_share:.0%}" if r.shown_share is not None else "-"
        print(
            f"{r.name:<27} {r.connections:>5} {r.rps:>8,.0f} {r.p50:>7.1f} {r.p90:>7.1f} {r.p99:>7.1f} "
            f"{r.max:>7.1f} {r.non200 + r.socket_errors:>7} {shown:>6} {ratio:>7.2f} "
            f"{_ms(r.app_cpu_ms):>7} {_ms(r.pg_cpu_ms):>7}"
        )
    print("app CPU, pg CPU: milliseconds of CPU per request, of the serve processes and of PostgreSQL's")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()

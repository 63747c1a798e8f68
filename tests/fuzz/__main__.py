"""Fuzz the API from its own OpenAPI document: `python -m tests.fuzz [--max-examples N] [--seed N|random]`.

Starts `partnerloop serve` on a fresh SQLite database (or, with `--postgres URL`, on a fresh
PostgreSQL database made beside the one URL names and dropped afterwards), seeds two retailers (an active
partnership, customers, offers, a notice, a webhook endpoint), logs the fuzzed retailer's
owner in through the real login page (authorization code + PKCE, every scope), and runs
schemathesis over every operation of /openapi.json with every built-in check plus ours
(tests/fuzz/hooks.py): no 5xx, responses as documented, problem+json on every 4xx.
Exits non-zero on any failure, and prints the number of operations and generated cases.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import make_url, text

from partners.db import make_engine
from partners.migrate import upgrade
from tests.fuzz import seed

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
OWNER_EMAIL = "owner@fuzzed.example"
OWNER_PASSWORD = "fuzzing is not a password"  # a throwaway database's login
DEFAULT_SEED = 20240901
# The scraper's token for this run's server: /metrics is fuzzed opened, like any other operation.
METRICS_TOKEN = "fuzzing-scraper-token-" + "x" * 24
# Per operation, in the fuzzing phase (the coverage phase makes its own, deterministic cases): with
# the 86 operations of today the whole run takes ~3 minutes on this 2-core machine.
DEFAULT_MAX_EXAMPLES = 10
# Share of generated path parameters aimed at seeded objects rather than random strings.
AIM_AT_SEEDED = 0.5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fresh_postgres(url: str) -> str:
    """A new, empty database beside the one `url` names (dropped by `drop_postgres`)."""
    base = make_url(url)
    name = f"{base.database or 'fuzz'}_fuzz_{secrets.token_hex(4)}"
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def drop_postgres(admin_url: str, url: str) -> None:
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def server_env(workdir: Path, base_url: str, database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PARTNERLOOP_ENVIRONMENT": "development",
            "PARTNERLOOP_DATABASE_URL": database_url,
            "PARTNERLOOP_BASE_URL": base_url,
            "PARTNERLOOP_SECRETS_FILE": str(workdir / "secrets.json"),
            "PARTNERLOOP_LOG_LEVEL": "WARNING",
            # The fuzzer is one client sending thousands of requests: the limits are tested elsewhere.
            "PARTNERLOOP_RATE_LIMIT_PER_MINUTE": "1000000",
            "PARTNERLOOP_RATE_LIMIT_BURST": "1000000",
            "PARTNERLOOP_PUBLIC_RATE_LIMIT_PER_MINUTE": "1000000",
            "PARTNERLOOP_PUBLIC_RATE_LIMIT_BURST": "1000000",
            "PARTNERLOOP_METRICS_TOKEN": METRICS_TOKEN,
        }
    )
    env.pop("PARTNERLOOP_REDIS_URL", None)
    return env


def wait_until_up(http: httpx.Client, server: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        if server.poll() is not None:
            sys.exit(f"fuzz: the server exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if http.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    sys.exit("fuzz: the server did not come up in 30 s")


def config(
    args: argparse.Namespace, token: str, client: seed.Credentials, ids: dict[str, list[str]], workdir: Path
) -> str:
    """schemathesis.toml for this run: ours, with this run's seed, token and seeded ids."""
    head = [f"seed = {args.seed}", f"workers = {args.workers}"]
    tail = [
        "[generation]",
        f"max-examples = {args.max_examples}",
        # No example database: the same seed gives the same cases on every machine.
        'database = "none"',
        "[headers]",
        f'Authorization = "Bearer {token}"',
        "[reports.json]",
        "enabled = true",
        f'path = "{workdir / "report.json"}"',
    ]
    for name, values in ids.items():
        tail += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}"]
        tail += [f'[parameters."path.{name}"]', f'dictionary = "{name}"', f"probability = {AIM_AT_SEEDED}"]
    # Revocation and introspection authenticate the client itself (RFC 7009, RFC 7662).
    basic = base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()
    tail += [
        "[[operations]]",
        'include-path-regex = "^/oauth/(revoke|introspect)$"',
        f'headers = {{ Authorization = "Basic {basic}" }}',
    ]
    # The scrape is opened by the operator's token, not a tenant's.
    tail += [
        "[[operations]]",
        'include-path-regex = "^/metrics$"',
        f'headers = {{ Authorization = "Bearer {METRICS_TOKEN}" }}',
    ]
    static = (Path(__file__).parent / "schemathesis.toml").read_text()
    return "\n".join(head) + "\n" + static + "\n" + "\n".join(tail) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=DEFAULT_MAX_EXAMPLES)
    parser.add_argument("--seed", default=str(DEFAULT_SEED), help="an integer, or 'random'")
    parser.add_argument("--workers", type=int, default=1, help="schemathesis workers (1 keeps a seed's run exact)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (database, logs, report)")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="fuzz on a fresh PostgreSQL database made beside this one (e.g. postgresql://postgres@127.0.0.1:5432/test)",
    )
    parser.add_argument("extra", nargs="*", help="more schemathesis options, after --")
    args = parser.parse_args(argv)
    if args.seed == "random":
        args.seed = secrets.randbelow(2**31)
    args.seed = int(args.seed)

    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="partnerloop-fuzz-"))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    url = fresh_postgres(args.postgres) if args.postgres else f"sqlite:///{workdir / 'fuzz.db'}"
    print(f"fuzz: on {'PostgreSQL' if args.postgres else 'SQLite'}")
    try:
        return fuzz(args, workdir, base_url, port, url, started)
    finally:
        if args.postgres and not args.keep:
            drop_postgres(args.postgres, url)


def fuzz(args: argparse.Namespace, workdir: Path, base_url: str, port: int, url: str, started: float) -> int:
    """Seed the database at `url`, serve it, run schemathesis; 0 when nothing failed."""
    env = server_env(workdir, base_url, url)
    upgrade(url)
    engine = make_engine(url)
    fuzzed, partner = seed.tenants(engine)
    marketer = seed.staff(engine, fuzzed.tenant_id, OWNER_EMAIL, OWNER_PASSWORD)
    engine.dispose()

    server_log = workdir / "server.log"
    with server_log.open("wb") as log_file:
        server = subprocess.Popen(  # noqa: S603
            [str(BIN / "partnerloop"), "serve", "--port", str(port)], env=env, stdout=log_file, stderr=log_file
        )
    try:
        with httpx.Client(base_url=base_url, timeout=30) as http:
            wait_until_up(http, server, server_log)
            print(f"fuzz: server up in {time.perf_counter() - started:.0f} s")
            ids = {**seed.through_api(http, fuzzed, partner), "user_id": [marketer]}
            token = seed.staff_token(http, OWNER_EMAIL, OWNER_PASSWORD)
            print(f"fuzz: seeded in {time.perf_counter() - started:.0f} s")
            (workdir / "schemathesis.toml").write_text(config(args, token, fuzzed, ids, workdir))
            print(f"== fuzzing {base_url}/openapi.json (seed {args.seed}, {args.max_examples} examples a phase)")
            result = subprocess.run(  # noqa: S603
                [
                    str(BIN / "schemathesis"),
                    "--config-file",
                    str(workdir / "schemathesis.toml"),
                    "run",
                    f"{base_url}/openapi.json",
                    *args.extra,
                ],
                cwd=ROOT,
                check=False,
            )
            still_in = http.get("/v1/tenant", headers={"Authorization": f"Bearer {token}"}).status_code
    finally:
        server.terminate()
        server.wait(timeout=30)
    failures = summarize(workdir / "report.json", make_url(url).get_backend_name())
    unhandled = [line for line in server_log.read_text().splitlines() if "unhandled error" in line]
    ok = result.returncode == 0 and not failures and not unhandled and still_in == 200
    if unhandled:
        print(f"fuzz: the server logged {len(unhandled)} unhandled error(s); see {server_log}")
    if still_in != 200:
        print(f"fuzz: the fuzzer locked itself out (GET /v1/tenant answered {still_in}); coverage is suspect")
    if args.keep or not ok:
        print(f"fuzz: work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


def summarize(report: Path, database: str) -> int:
    """Print operations and generated cases from schemathesis' JSON report; the number of failures."""
    if not report.exists():
        print("fuzz: schemathesis wrote no report")
        return 1
    data = json.loads(report.read_text())
    operations, cases = data["operations"], data["test_cases"]
    failures = sum(f["count"] for f in data["failures"]) + len(data["errors"])
    print(
        f"FUZZ SUMMARY ({database}): {operations['tested']} of {operations['total']} operations tested, "
        f"{cases['generated']} cases generated, {failures} failures, {data['running_time']:.0f} s "
        f"(seed {data['seed']})"
    )
    return failures


if __name__ == "__main__":
    sys.exit(main())

"""The `partnerloop` command: serve, db upgrade, demo, worker, upload; operator commands in api/cli_ops.py."""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from sqlalchemy.exc import OperationalError

from api import cli_ops, cli_upload
from api.middleware import log_context
from partners import demo, demo_retention, demo_story, jobs, signing_keys
from partners.db import make_engine, unit_of_work, utcnow
from partners.logs import configure
from partners.metrics import MULTIPROCESS_DIR_ENV, Metrics
from partners.migrate import upgrade
from partners.settings import Settings, SettingsError, load_settings

log = logging.getLogger("partnerloop.cli")
WORKER_STARTUP_SECONDS = 60


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        sys.exit(f"partnerloop: {exc}")


def cmd_db_upgrade(settings: Settings, _args: argparse.Namespace) -> None:
    print(f"Upgrading {_redacted(settings.database_url)} ...")
    upgrade(settings.database_url)
    print("Database schema is current.")


def cmd_demo(settings: Settings, _args: argparse.Namespace, *, migrated: bool = False) -> None:
    if settings.is_production:
        sys.exit("partnerloop: demo data has known passwords; it is not seeded in production.")
    if not migrated:
        upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    keys = demo_story.Keys(
        hash_key=settings.identity_hash_key.get_secret_value().encode(),
        encryption_key=settings.encryption_key.get_secret_value(),
    )
    with unit_of_work(engine) as session:
        summary = demo.seed(session, progress=lambda line: print("  " + line))
        story = demo_story.seed_story(
            session, summary.tenants, keys, utcnow(), progress=lambda line: print("  " + line)
        )
        retention = demo_retention.seed_retention(
            session, summary.tenants, keys, utcnow(), progress=lambda line: print("  " + line)
        )
    engine.dispose()
    print(f"Demo data: {len(summary.created)} created, {len(summary.existing)} already there.")
    for line in summary.created + summary.existing:
        print("  " + line)
    if story.created:
        print("Try the exchange as Snoozy Paws Beds: POST /v1/exchange with customer_external_id")
        print(
            f"  {story.consenting[0]} (consenting: gets the offer) or {story.not_consenting[0]} (not consenting: none)"
        )
    if retention.created:
        print(
            f"Retention: GET /v1/churn-risk/customers?level=at_risk lists {retention.customer}; "
            f"POST /v1/exchange with placement win_back; survey {retention.survey_id} (POST .../links)"
        )
    print("Demo logins (use them with Authorize in /docs):")
    for line in demo.credentials():
        print("  " + line)


def check_signing_keys(settings: Settings) -> None:
    """Refuse to start when the stored signing keys were encrypted under another encryption key."""
    engine = make_engine(settings.database_url)
    with unit_of_work(engine) as session:
        unreadable = signing_keys.unreadable_keys(session, settings.encryption_key.get_secret_value())
    engine.dispose()
    if unreadable:
        sys.exit(
            f"partnerloop: PARTNERLOOP_ENCRYPTION_KEY cannot decrypt the signing key(s) {', '.join(unreadable)}: "
            "it differs from the key they were stored under. Restore the previous encryption key "
            "(or the .partnerloop-secrets.json it came from) and start again."
        )


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    if "PARTNERLOOP_BASE_URL" not in os.environ and not settings.is_production:
        # The issuer and the docs' redirect URI follow where we actually listen (workers read the env).
        host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host  # noqa: S104
        os.environ["PARTNERLOOP_BASE_URL"] = f"http://{host}:{args.port}"
        settings = settings.model_copy(update={"base_url": os.environ["PARTNERLOOP_BASE_URL"]})
    # Once, here, under the migration lock; not again in `cmd_demo` nor in each worker's start.
    upgrade(settings.database_url)
    os.environ["PARTNERLOOP_MIGRATE_ON_START"] = "false"
    check_signing_keys(settings)
    if args.demo:
        cmd_demo(settings, args, migrated=True)
    print(f"Partnerloop on {settings.base_url}: interactive docs at {settings.base_url.rstrip('/')}/docs")
    extra: dict[str, Any] = {}
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.run).parameters:
        # Importing the app takes seconds of CPU; on a busy host a worker would miss uvicorn's
        # default 5 s startup check and be killed and respawned forever.
        extra["timeout_worker_healthcheck"] = WORKER_STARTUP_SECONDS
    with _shared_metrics(args.workers):
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            server_header=False,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            log_config=None,
            **extra,
        )


@contextmanager
def _shared_metrics(workers: int) -> Iterator[None]:
    """With several worker processes, one directory they all write their metrics to, for this run only."""
    configured = os.environ.get(MULTIPROCESS_DIR_ENV)
    if configured:
        # The operator's directory: samples of an earlier run would be added to this one's.
        for stale in Path(configured).glob("*.db"):
            stale.unlink()
        yield
        return
    if workers <= 1:
        yield  # one process counts in memory
        return
    path = tempfile.mkdtemp(prefix="partnerloop-metrics-")
    os.environ[MULTIPROCESS_DIR_ENV] = path  # read by the worker processes when they import prometheus_client
    try:
        yield
    finally:
        os.environ.pop(MULTIPROCESS_DIR_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> None:
    engine = make_engine(settings.database_url)
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    metrics = Metrics()
    if args.metrics_port is not None:
        serve_worker_metrics(metrics, args.metrics_host, args.metrics_port)
    todo = jobs.jobs(metrics)
    last_run = {job.name: utcnow() - job.every for job in todo}
    print(f"Worker started: {len(todo)} job(s): {', '.join(j.name for j in todo)}")
    while not stopping:
        for job in todo:
            if utcnow() - last_run[job.name] < job.every:
                continue
            try:
                count = job.run(engine)
            except OperationalError as exc:
                log.warning("job %s failed; will retry: %s", job.name, exc)
                continue
            last_run[job.name] = utcnow()
            if count:
                print(f"{utcnow().isoformat(timespec='seconds')} {job.name}: {count} done", flush=True)
        if args.once:
            break
        time.sleep(args.poll_seconds)
    engine.dispose()
    print("Worker stopped.")


def serve_worker_metrics(metrics: Metrics, host: str, port: int) -> WSGIServer:
    """The worker's own /metrics (webhook attempts), on a listener in a thread, for the scraper only."""
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    print(f"Worker metrics on http://{host}:{port}/metrics")
    return server


def cmd_upload(_settings: Settings | None, args: argparse.Namespace) -> None:
    cli_upload.cmd_upload(args)


def _redacted(url: str) -> str:
    head, at, tail = url.rpartition("@")
    return url if not at else head.split("://")[0] + "://***@" + tail


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="partnerloop", description="Partnerloop service and tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--demo", action="store_true", help="seed the demo retailers first")
    serve.set_defaults(handler=cmd_serve)
    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply pending migrations").set_defaults(handler=cmd_db_upgrade)
    sub.add_parser("demo", help="seed demo data (idempotent)").set_defaults(handler=cmd_demo)
    worker = sub.add_parser("worker", help="run background jobs")
    worker.add_argument("--once", action="store_true", help="run each due job once, then exit")
    worker.add_argument("--poll-seconds", type=float, default=1.0)
    worker.add_argument("--metrics-port", type=int, help="serve this worker's metrics (webhook attempts) on this port")
    worker.add_argument("--metrics-host", default="127.0.0.1", help="address of that listener (default: loopback)")
    worker.set_defaults(handler=cmd_worker)
    upload = sub.add_parser(
        "upload",
        help="upload a file of records (NDJSON, or CSV by its .csv suffix) with a progress bar",
        description="Exit status: 0 when every row was kept, 2 when some rows were refused (listed), 1 on failure.",
    )
    upload.add_argument("kind", choices=cli_upload.KINDS)
    upload.add_argument("file")
    upload.add_argument("--url", default=os.environ.get("PARTNERLOOP_URL", "http://127.0.0.1:8000"))
    upload.add_argument(
        "--token", default=os.environ.get("PARTNERLOOP_TOKEN"), required="PARTNERLOOP_TOKEN" not in os.environ
    )
    upload.add_argument("--show-errors", type=int, default=20, help="how many row errors to print")
    upload.set_defaults(handler=cmd_upload, needs_settings=False)
    cli_ops.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `partnerloop` console script."""
    args = build_parser().parse_args(argv)
    if not getattr(args, "needs_settings", True):
        args.handler(None, args)
        return
    settings = _settings()
    configure(settings.log_level, log_context)
    args.handler(settings, args)

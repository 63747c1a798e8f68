"""The `partnerloop` command: serve, db upgrade, demo, worker, upload."""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy.exc import OperationalError

from api.middleware import request_id_var
from partners import demo, jobs
from partners.db import make_engine, unit_of_work, utcnow
from partners.logs import configure
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


def cmd_demo(settings: Settings, _args: argparse.Namespace) -> None:
    if settings.is_production:
        sys.exit("partnerloop: demo data has known passwords; it is not seeded in production.")
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    with unit_of_work(engine) as session:
        summary = demo.seed(session, progress=lambda line: print("  " + line))
    engine.dispose()
    print(f"Demo data: {len(summary.created)} created, {len(summary.existing)} already there.")
    for line in summary.created + summary.existing:
        print("  " + line)
    print("Demo logins (use them with Authorize in /docs):")
    for line in demo.credentials():
        print("  " + line)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    if "PARTNERLOOP_BASE_URL" not in os.environ and not settings.is_production:
        # The issuer and the docs' redirect URI follow where we actually listen (workers read the env).
        host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host  # noqa: S104
        os.environ["PARTNERLOOP_BASE_URL"] = f"http://{host}:{args.port}"
        settings = settings.model_copy(update={"base_url": os.environ["PARTNERLOOP_BASE_URL"]})
    upgrade(settings.database_url)
    if args.demo:
        cmd_demo(settings, args)
    print(f"Partnerloop on {settings.base_url}: interactive docs at {settings.base_url.rstrip('/')}/docs")
    extra: dict[str, Any] = {}
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.run).parameters:
        # Importing the app takes seconds of CPU; on a busy host a worker would miss uvicorn's
        # default 5 s startup check and be killed and respawned forever.
        extra["timeout_worker_healthcheck"] = WORKER_STARTUP_SECONDS
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        server_header=False,
        proxy_headers=True,
        log_config=None,
        **extra,
    )


def cmd_worker(settings: Settings, args: argparse.Namespace) -> None:
    engine = make_engine(settings.database_url)
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    last_run = {job.name: utcnow() - job.every for job in jobs.JOBS}
    print(f"Worker started: {len(jobs.JOBS)} job(s): {', '.join(j.name for j in jobs.JOBS)}")
    while not stopping:
        for job in jobs.JOBS:
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


def _file_chunks(path: Path, total: int, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """The file in chunks, drawing a progress bar (bytes sent of total) on stderr."""
    sent = 0
    with path.open("rb") as file:
        while chunk := file.read(chunk_size):
            sent += len(chunk)
            share = sent / total if total else 1.0
            bar = "#" * int(share * 30)
            sys.stderr.write(f"\r[{bar:<30}] {share:6.1%} {sent / 1e6:,.1f}/{total / 1e6:,.1f} MB")
            sys.stderr.flush()
            yield chunk
    sys.stderr.write("\n")


def cmd_upload(_settings: Settings | None, args: argparse.Namespace) -> None:
    import httpx

    path = Path(args.file)
    if not path.is_file():
        sys.exit(f"partnerloop: no file {path}")
    content_type = "text/csv" if path.suffix.lower() == ".csv" else "application/x-ndjson"
    response = httpx.post(
        args.url.rstrip("/") + f"/v1/uploads/{args.kind}",
        content=_file_chunks(path, path.stat().st_size),
        headers={"Authorization": f"Bearer {args.token}", "Content-Type": content_type},
        timeout=httpx.Timeout(30.0, read=None),
    )
    if response.status_code >= 400:
        sys.exit(f"partnerloop: upload refused ({response.status_code}): {response.text}")
    job = response.json()
    print(f"Upload {job['id']}: {job['status']}, {job['rows_ok']} rows kept, {job['rows_failed']} failed.")
    for error in job["errors"][: args.show_errors]:
        field = f" [{error['field']}]" if error["field"] else ""
        print(f"  line {error['line']}{field}: {error['message']}")
    if job["rows_failed"] > args.show_errors:
        print(f"  ... all errors kept (up to 1000): GET /v1/uploads/{job['id']}")


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
    worker.set_defaults(handler=cmd_worker)
    upload = sub.add_parser("upload", help="upload a file of records (NDJSON, or CSV by its .csv suffix)")
    upload.add_argument("kind", choices=["customers"])
    upload.add_argument("file")
    upload.add_argument("--url", default=os.environ.get("PARTNERLOOP_URL", "http://127.0.0.1:8000"))
    upload.add_argument(
        "--token", default=os.environ.get("PARTNERLOOP_TOKEN"), required="PARTNERLOOP_TOKEN" not in os.environ
    )
    upload.add_argument("--show-errors", type=int, default=20, help="how many row errors to print")
    upload.set_defaults(handler=cmd_upload, needs_settings=False)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `partnerloop` console script."""
    args = build_parser().parse_args(argv)
    if not getattr(args, "needs_settings", True):
        args.handler(None, args)
        return
    settings = _settings()
    configure(settings.log_level, lambda: {"request_id": request_id_var.get()})
    args.handler(settings, args)

"""`partnerloop upload KIND FILE`: stream a file to the bulk upload API with a progress bar."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

KINDS = ("customers", "purchases", "consent-events")
# What is idempotent by what: the CLI says it when it suggests sending a file again.
_KEYS = {"customers": "external_id", "purchases": "order_id", "consent-events": "event_id"}
BAR_WIDTH = 30


class ProgressBar:
    """Bytes sent of the total and rows (lines) per second, redrawn at most every `every` seconds."""

    def __init__(self, total: int, out: TextIO, every: float = 0.2) -> None:
        self.total, self.out, self.every = total, out, every
        self.sent = self.rows = 0
        self.started = self.drawn = time.monotonic()

    def add(self, chunk: bytes) -> None:
        self.sent += len(chunk)
        self.rows += chunk.count(b"\n")
        if time.monotonic() - self.drawn >= self.every or self.sent >= self.total:
            self.draw()

    def draw(self) -> None:
        self.drawn = time.monotonic()
        elapsed = max(self.drawn - self.started, 1e-6)
        share = self.sent / self.total if self.total else 1.0
        bar = "#" * int(share * BAR_WIDTH)
        self.out.write(
            f"\r[{bar:<{BAR_WIDTH}}] {share:6.1%} {self.sent / 1e6:,.1f}/{self.total / 1e6:,.1f} MB"
            f"  {self.rows:,} rows  {self.rows / elapsed:,.0f} rows/s"
        )
        self.out.flush()


def file_chunks(path: Path, bar: ProgressBar, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """The file in chunks, advancing the progress bar as each one is handed to the connection."""
    with path.open("rb") as file:
        while chunk := file.read(chunk_size):
            bar.add(chunk)
            yield chunk
    bar.draw()
    bar.out.write("\nAll sent; waiting for the server to finish the last rows...\n")
    bar.out.flush()


def content_type(path: Path) -> str:
    """CSV by the .csv suffix, NDJSON otherwise."""
    return "text/csv" if path.suffix.lower() == ".csv" else "application/x-ndjson"


def summary(kind: str, job: dict[str, Any], show_errors: int, elapsed: float) -> list[str]:
    """What to tell the user once the server answered."""
    rate = job["rows_seen"] / elapsed if elapsed > 0 else 0.0
    lines = [
        f"Upload {job['id']} ({kind}): {job['status']}, {job['rows_ok']:,} rows kept, {job['rows_failed']:,} failed"
        f" of {job['rows_seen']:,} in {elapsed:,.1f} s ({rate:,.0f} rows/s)."
    ]
    for error in job["errors"][:show_errors]:
        field = f" [{error['field']}]" if error["field"] else ""
        lines.append(f"  line {error['line']}{field}: {error['message']}")
    if job["rows_failed"] > show_errors:
        kept = min(len(job["errors"]), job["rows_failed"])
        lines.append(
            f"  ... {job['rows_failed'] - show_errors:,} more; the first {kept:,} are in GET /v1/uploads/{job['id']}"
        )
    if job["rows_failed"]:
        lines.append(
            f"Next: fix the lines listed and send them again (alone or in the whole file): rows already kept are "
            f"skipped, as uploads are idempotent by {_KEYS[kind]}."
        )
    elif kind == "customers":
        lines.append("Next: upload their purchases and consent events (partnerloop upload purchases|consent-events).")
    else:
        lines.append("Nothing left to do for this file.")
    return lines


def cmd_upload(args: argparse.Namespace) -> None:
    """Upload one file; exit status 0 when every row was kept, 2 when some were refused."""
    import httpx

    path = Path(args.file)
    if not path.is_file():
        sys.exit(f"partnerloop: no file {path}")
    bar = ProgressBar(path.stat().st_size, sys.stderr)
    started = time.monotonic()
    try:
        response = httpx.post(
            args.url.rstrip("/") + f"/v1/uploads/{args.kind}",
            content=file_chunks(path, bar),
            headers={"Authorization": f"Bearer {args.token}", "Content-Type": content_type(path)},
            timeout=httpx.Timeout(30.0, read=None),
        )
    except httpx.HTTPError as exc:
        sys.exit(f"\npartnerloop: upload failed: {exc}. Rows already kept stay kept; send the file again.")
    if response.status_code >= 400:
        sys.exit(f"partnerloop: upload refused ({response.status_code}): {response.text}")
    job = response.json()
    print("\n".join(summary(args.kind, job, args.show_errors, time.monotonic() - started)))
    if job["rows_failed"]:
        sys.exit(2)

"""`partnerloop serve --workers 2`: a scrape answered by either worker counts the requests of both."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from partners.metrics import MULTIPROCESS_DIR_ENV, sample_value
from tests.fuzz.__main__ import BIN, free_port, server_env

TOKEN = "scraper-token-for-this-test-only-0123456789"
REQUESTS = "partnerloop_http_requests_total"
HEALTH = {"route": "/healthz", "status": "200"}


def wait_until_up(base_url: str, server: subprocess.Popen[bytes], log: Path, seconds: float = 120) -> None:
    """Until /healthz answers; each worker imports the app (seconds of CPU on a busy host)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited ({server.returncode}):\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{base_url}/healthz", headers={"Connection": "close"}).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"the server did not come up in {seconds:.0f} s:\n{log.read_text()[-3000:]}")


def per_process(directory: Path, scratch: Path) -> dict[str, float]:
    """/healthz requests counted by each worker process, read from its own files alone."""
    counts = {}
    for pid in {path.stem.rsplit("_", 1)[1] for path in directory.glob("*.db")}:
        alone = scratch / pid
        alone.mkdir(parents=True)
        for path in directory.glob(f"*_{pid}.db"):
            shutil.copy(path, alone)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
        counts[pid] = sample_value(generate_latest(registry).decode(), REQUESTS, HEALTH)
    return counts


@pytest.mark.skipif(
    bool(os.environ.get("PARTNERLOOP_TEST_DATABASE_URL")),
    reason="serves its own SQLite database whatever the test database: run once, in the SQLite pass",
)
def test_two_workers_report_one_total(tmp_path: Path) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    runs = tmp_path / "tmp"
    runs.mkdir()
    # serve makes the run's metrics directory itself, in TMPDIR, and removes it at exit.
    env = server_env(tmp_path, base_url, f"sqlite:///{tmp_path / 'metrics.db'}") | {
        "PARTNERLOOP_METRICS_TOKEN": TOKEN,
        "TMPDIR": str(runs),
    }
    env.pop(MULTIPROCESS_DIR_ENV, None)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(  # noqa: S603
            [str(BIN / "partnerloop"), "serve", "--port", str(port), "--workers", "2"], env=env, stdout=out, stderr=out
        )
    try:
        wait_until_up(base_url, server, log)
        (shared,) = runs.glob("partnerloop-metrics-*")
        # New connections until both workers have answered some (the kernel picks who accepts).
        sent, split = 0, dict[str, float]()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len([c for c in split.values() if c > 0]) < 2:
            for _ in range(10):
                assert httpx.get(f"{base_url}/healthz", headers={"Connection": "close"}).status_code == 200
                sent += 1
            split = per_process(shared, tmp_path / f"split-{sent}")
        assert len([c for c in split.values() if c > 0]) >= 2, f"one worker answered everything: {split}"
        scraper = {"Authorization": f"Bearer {TOKEN}", "Connection": "close"}
        scrapes = [httpx.get(f"{base_url}/metrics", headers=scraper) for _ in range(4)]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not list(runs.glob("partnerloop-metrics-*")), "the run's metrics directory outlived it"
    # wait_until_up's own /healthz calls count too: they are in the split, as in the total.
    expected = sum(split.values())
    assert expected >= sent
    for scrape in scrapes:
        assert scrape.status_code == 200, scrape.text
        assert sample_value(scrape.text, REQUESTS, HEALTH) == expected

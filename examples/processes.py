"""Running the story's processes on one machine: Partnerloop (API and worker) and the two shops."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Process:
    """One child process with its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Processes:
    """Every process the story started, stopped together."""

    workdir: Path
    running: list[Process] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: Mapping[str, str]) -> Process:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(  # noqa: S603 (our own commands)
                command, env={**env, "PYTHONUNBUFFERED": "1"}, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT
            )
        started = Process(name, proc, log)
        self.running.append(started)
        return started

    def stop_all(self) -> None:
        for process in reversed(self.running):
            process.stop()


def wait_until_up(process: Process, url: str, timeout: float = 60.0) -> None:
    """Wait until `url` answers, failing early (with the log) if the process died."""
    deadline = time.monotonic() + timeout
    while True:
        if process.proc.poll() is not None:
            raise RuntimeError(f"{process.name} exited with {process.proc.returncode}:\n{process.output()}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} did not answer {url} in {timeout:.0f} s:\n{process.output()}")
        time.sleep(0.1)


def partnerloop_env(database_url: str, base_url: str, workdir: Path) -> dict[str, str]:
    """Settings for a local Partnerloop whose worker may call shops on 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTNERLOOP_")}
    env.update(
        PARTNERLOOP_DATABASE_URL=database_url,
        PARTNERLOOP_BASE_URL=base_url,
        PARTNERLOOP_SECRET_KEY=secrets.token_urlsafe(48),
        PARTNERLOOP_ENCRYPTION_KEY=secrets.token_urlsafe(48),
        PARTNERLOOP_IDENTITY_HASH_KEY=secrets.token_urlsafe(48),
        PARTNERLOOP_SECRETS_FILE=str(workdir / "secrets.json"),
        # The shops listen on loopback, which the egress guard refuses unless allowed (never in production).
        PARTNERLOOP_EGRESS_ALLOWLIST='["127.0.0.0/8"]',
        PARTNERLOOP_LOG_LEVEL="WARNING",
    )
    return env


def start_partnerloop(processes: Processes, database_url: str, *, migrated: bool = False) -> str:
    """`partnerloop serve` and `partnerloop worker` on a free port; the API's base URL once both run.

    On a database already `migrated` both start at once; otherwise the worker waits for serve's migration.
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = partnerloop_env(database_url, base_url, processes.workdir)
    script = str(Path(sys.executable).with_name("partnerloop"))
    server = processes.start("partnerloop-serve", [script, "serve", "--port", str(port)], env)
    worker_command = [script, "worker", "--poll-seconds", "0.2"]
    worker = processes.start("partnerloop-worker", worker_command, env) if migrated else None
    wait_until_up(server, f"{base_url}/readyz")
    if worker is None:  # started after serve has migrated the database, so it never races the migration
        worker = processes.start("partnerloop-worker", worker_command, env)
    deadline = time.monotonic() + 60
    while "Worker started" not in worker.output():
        if worker.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start:\n{worker.output()}")
        time.sleep(0.1)
    return base_url


def launch_shop(
    processes: Processes, module: str, partnerloop_url: str, client_id: str, client_secret: str
) -> tuple[str, Process]:
    """Start an example shop under uvicorn on a free port (without waiting for it); its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARTNERLOOP_", "SHOP_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        PARTNERLOOP_URL=partnerloop_url,
        SHOP_CLIENT_ID=client_id,
        SHOP_CLIENT_SECRET=client_secret,
        SHOP_PUBLIC_URL=url,
    )
    command = [sys.executable, "-m", "uvicorn", f"examples.{module}:app", "--factory", "--host", "127.0.0.1"]
    shop = processes.start(module, [*command, "--port", str(port), "--log-level", "warning"], env)
    return url, shop


def start_shops(processes: Processes, partnerloop_url: str, shops: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Start the shops (module name → client id and secret) side by side; their base URLs once all answer."""
    launched = {
        module: launch_shop(processes, module, partnerloop_url, client_id, secret)
        for module, (client_id, secret) in shops.items()
    }
    for url, process in launched.values():
        wait_until_up(process, f"{url}/")
    return {module: url for module, (url, _) in launched.items()}

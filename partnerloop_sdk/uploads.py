"""Bulk uploads: stream a file of customers, purchases or consent events, and watch the job's progress."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import httpx

from partnerloop_sdk.account import iterate
from partnerloop_sdk.errors import PartnerloopError
from partnerloop_sdk.models import UploadJob
from partnerloop_sdk.session import ApiSession

KINDS = ("customers", "purchases", "consent-events")
CHUNK_BYTES = 1024 * 1024
_JOB_KIND = {"customers": "customers", "purchases": "purchases", "consent-events": "consent_events"}


@dataclass(frozen=True)
class UploadProgress:
    """How far an upload is: bytes sent, and the server's job as of its last committed batch."""

    bytes_sent: int
    total_bytes: int
    job: UploadJob | None


ProgressCallback = Callable[[UploadProgress], None]


class _Counter:
    def __init__(self) -> None:
        self.sent = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.sent += n


def _chunks(path: Path, counter: _Counter, chunk_bytes: int) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(chunk_bytes):
            counter.add(len(chunk))
            yield chunk


class Uploads:
    """`customers:write` (customers, purchases) or `consents:write` (consent events)."""

    def __init__(self, api: ApiSession) -> None:
        self._api = api

    def upload(
        self,
        kind: str,
        path: str | os.PathLike[str],
        *,
        content_type: str | None = None,
        on_progress: ProgressCallback | None = None,
        poll_seconds: float = 1.0,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> UploadJob:
        """Stream the file (never loaded whole) and return the finished job, with its per-line errors.

        While it streams, `on_progress` is called every `poll_seconds` with the bytes sent and
        the server's running job. A retry (connection lost, 429, 503) sends the file again,
        which is safe: uploads are idempotent by the records' own ids.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        file = Path(path)
        total = file.stat().st_size
        media = content_type or ("text/csv" if file.suffix.lower() == ".csv" else "application/x-ndjson")
        counter = _Counter()
        # No Idempotency-Key: the records' ids make the upload idempotent, and a keyed request would be buffered whole.
        headers = httpx.Headers({"Content-Type": media, "Content-Length": str(total)})

        def attempt() -> httpx.Response:
            counter.sent = 0
            return self._api.http.post(
                f"/v1/uploads/{kind}", content=_chunks(file, counter, chunk_bytes), headers=headers
            )

        def send() -> httpx.Response:
            return self._api.send(attempt, "POST", headers, ok=(201,), repeatable=True)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="partnerloop-upload") as pool:
            future = pool.submit(send)
            if on_progress is not None:
                self._watch(future, _JOB_KIND[kind], counter, total, on_progress, poll_seconds)
            job = cast(UploadJob, future.result().json())
        if on_progress is not None:
            on_progress(UploadProgress(total, total, job))
        return job

    def _watch(
        self,
        future: Future[httpx.Response],
        job_kind: str,
        counter: _Counter,
        total: int,
        on_progress: ProgressCallback,
        poll_seconds: float,
    ) -> None:
        while True:
            try:
                future.result(timeout=poll_seconds)
                return
            except TimeoutError:
                pass
            except Exception:  # the upload's own error is raised by the caller's future.result()
                return
            on_progress(UploadProgress(counter.sent, total, self._running_job(job_kind)))

    def _running_job(self, job_kind: str) -> UploadJob | None:
        try:
            running = [job for job in self.running() if job["kind"] == job_kind]
        except PartnerloopError:
            return None  # progress is a nicety: never let it break the upload
        return running[-1] if running else None  # ids are time-ordered: the newest is ours

    def get(self, job_id: str) -> UploadJob:
        """A job's status and counts (as of its last committed batch) and its first errors."""
        return cast(UploadJob, self._api.call("GET", f"/v1/uploads/{job_id}").json())

    def running(self) -> Iterator[UploadJob]:
        """The tenant's uploads still streaming, oldest first."""
        return cast(Iterator[UploadJob], iterate(self._api, "/v1/uploads", {"status": "running"}))

    def wait(self, job_id: str, *, on_progress: ProgressCallback | None = None, poll_seconds: float = 1.0) -> UploadJob:
        """Poll a job (started elsewhere, say) until it is `done` or `failed`."""
        while True:
            job = self.get(job_id)
            if on_progress is not None:
                on_progress(UploadProgress(0, 0, job))
            if job["status"] != "running":
                return job
            self._api.retry.sleep(poll_seconds)

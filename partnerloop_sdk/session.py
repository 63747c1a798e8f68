"""Sending one API call: an Idempotency-Key on mutating POSTs, retries where they are safe, typed errors."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from partnerloop_sdk.auth import OAuthHttp
from partnerloop_sdk.errors import PartnerloopError, TransportError, from_response
from partnerloop_sdk.retry import RetryPolicy, may_retry, retry_after, retryable_error, retryable_status

USER_AGENT = "partnerloop-sdk-python/0.1"
Params = Mapping[str, str | int | bool | None]


def new_idempotency_key() -> str:
    """A fresh key for one logical operation: every retry of it sends the same key."""
    return f"sdk_{uuid.uuid4().hex}"


class ApiSession:
    """Calls the API over one httpx client (an OAuth2 one when the calls need a token)."""

    def __init__(self, http: httpx.Client, retry: RetryPolicy) -> None:
        self.http = http
        self.retry = retry

    def close(self) -> None:
        self.http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        ok: Iterable[int] = (200, 201, 204),
    ) -> httpx.Response:
        """Send the call (retrying where safe) and return the answer, or raise `PartnerloopError`."""
        sent = httpx.Headers(headers or {})
        if method.upper() == "POST" and "idempotency-key" not in sent:
            sent["Idempotency-Key"] = idempotency_key or new_idempotency_key()
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        return self.send(
            lambda: self.http.request(method, path, json=json, params=query, headers=sent), method, sent, ok
        )

    def send(
        self,
        attempt: Callable[[], httpx.Response],
        method: str,
        headers: httpx.Headers,
        ok: Iterable[int] = (200, 201, 204),
        repeatable: bool | None = None,
    ) -> httpx.Response:
        """Run `attempt()` (which sends the request once) until it succeeds or may not be repeated.

        `repeatable` overrides the rule of thumb (idempotent methods, keyed POSTs) for calls known
        to be safe to send twice, such as uploads (idempotent by their records' ids).
        """
        accepted = set(ok)
        safe = may_retry(method, headers) if repeatable is None else repeatable
        renewed = False
        number = 0
        while True:
            number += 1
            last = number >= self.retry.max_attempts
            try:
                response: httpx.Response = attempt()
            except httpx.TransportError as exc:
                if last or not (safe or retryable_error(exc, method, headers)):
                    raise TransportError(0, "unreachable", f"{type(exc).__name__}: {exc}") from exc
                self.retry.sleep(self.retry.backoff(number))
                continue
            except PartnerloopError as exc:  # the token endpoint refused while renewing a token
                if last or exc.status not in (429, 503):
                    raise
                self.retry.sleep(min(self.retry.max_delay, exc.retry_after or self.retry.backoff(number)))
                continue
            if response.status_code in accepted or response.status_code == 304:
                return response
            if response.status_code == 401 and not renewed and isinstance(self.http, OAuthHttp):
                # A client-credentials token revoked early (a rotated secret, say): one fresh token, once.
                renewed = True
                if self.http.metadata.get("grant_type") == "client_credentials":
                    self.http.renew()
                    continue
            if not last and safe and retryable_status(response):
                self.retry.sleep(self.retry.delay(number, response))
                continue
            raise from_response(response, retry_after(response))


def _query_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

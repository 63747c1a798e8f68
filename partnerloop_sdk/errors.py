"""One exception for every refusal: problem+json answers and OAuth errors alike."""

from __future__ import annotations

from typing import Any

import httpx


class PartnerloopError(Exception):
    """An answer Partnerloop refused with: branch on `code` (stable), show `detail`, quote `request_id`."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        param: str | None = None,
        request_id: str | None = None,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}" + (f" (param: {param})" if param else ""))
        self.status = status
        self.code = code
        self.detail = detail
        self.param = param
        self.request_id = request_id
        self.title = title
        self.errors = errors or []
        self.retry_after = retry_after


class TransportError(PartnerloopError):
    """Partnerloop could not be reached (after the retries the call allowed)."""


def from_response(response: httpx.Response, retry_after: float | None = None) -> PartnerloopError:
    """The error an unsuccessful answer stands for, whatever its format."""
    request_id = response.headers.get("x-request-id")
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "status" in body and "code" in body:  # RFC 9457 problem+json
        return PartnerloopError(
            response.status_code,
            str(body["code"]),
            str(body.get("detail") or body.get("title") or ""),
            param=body.get("param"),
            request_id=body.get("request_id") or request_id,
            title=body.get("title"),
            errors=body.get("errors") if isinstance(body.get("errors"), list) else None,
            retry_after=retry_after,
        )
    if isinstance(body, dict) and "error" in body:  # RFC 6749 (the /oauth/* endpoints)
        return PartnerloopError(
            response.status_code,
            str(body["error"]),
            str(body.get("error_description") or body["error"]),
            request_id=request_id,
            retry_after=retry_after,
        )
    text = response.text[:200] if response.content else response.reason_phrase
    return PartnerloopError(response.status_code, "http_error", text, request_id=request_id, retry_after=retry_after)

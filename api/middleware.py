"""Pure ASGI middleware: request ids, body size caps and security headers."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PROBLEM_JSON, internal_error_body, problem_body

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


@dataclass
class RequestContext:
    """What every log line of a request carries. Mutable: the tenant is learnt midway, in a thread."""

    request_id: str
    tenant_id: str | None = None


# Request-scoped context for log records (a ContextVar is per task, not shared state). It holds a
# mutable object because sync dependencies run in worker threads on a *copy* of the context: a
# value set there would not come back, an attribute set on the shared object does.
request_context_var: ContextVar[RequestContext | None] = ContextVar("request_context", default=None)


def log_context() -> dict[str, str | None]:
    """The request id and tenant of the request being served, for `partners.logs.JsonFormatter`."""
    context = request_context_var.get()
    if context is None:
        return {}
    return {"request_id": context.request_id, "tenant_id": context.tenant_id}


def note_tenant(tenant_id: str) -> None:
    """Tell the request's log lines which tenant it acts for (once its token is verified)."""
    context = request_context_var.get()
    if context is not None:
        context.tenant_id = tenant_id


access_log = logging.getLogger("partnerloop.access")
error_log = logging.getLogger("partnerloop.api")


class RequestIdMiddleware:
    """Takes a sane `X-Request-ID` or makes one; echoes it, logs one line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else "req_" + secrets.token_hex(12)
        scope.setdefault("state", {})["request_id"] = request_id
        context = RequestContext(request_id)
        token = request_context_var.set(context)
        begun = time.perf_counter()
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Anything that escaped the handlers: log it whole, answer without internals.
            error_log.exception("unhandled error")
            if status == 500 and not started:
                body = internal_error_body(scope["path"], request_id)
                await send_with_id(start_message(500, PROBLEM_JSON, len(body)))
                await send({"type": "http.response.body", "body": body})
        finally:
            access_log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "status": status,
                    "duration_ms": round((time.perf_counter() - begun) * 1000, 2),
                    "tenant_id": context.tenant_id,
                },
            )
            request_context_var.reset(token)


class BodyTooLarge(HTTPException):
    """Raised from `receive` so that whoever reads the body answers 413 through the error handlers."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds {limit} bytes; split it or use the bulk upload routes.")


class BodySizeLimitMiddleware:
    """Refuses bodies over the cap with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(scope, send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(scope, send, limit)


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    detail = f"The request body exceeds {limit} bytes; split it or use the bulk upload routes."
    request_id = scope.get("state", {}).get("request_id")
    body = problem_body(scope["path"], request_id, 413, "payload_too_large", "Payload too large", detail)
    await send(start_message(413, PROBLEM_JSON, len(body)))
    await send({"type": "http.response.body", "body": body})


def start_message(status: int, content_type: str, length: int) -> Message:
    """The `http.response.start` message of a whole, fixed-length answer."""
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", content_type.encode()), (b"content-length", str(length).encode())],
    }


class SecurityHeadersMiddleware:
    """Headers every response carries; HTML pages may not be framed; HSTS in production."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
                    headers["X-Frame-Options"] = "DENY"
                if self.hsts:
                    headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
            await send(message)

        await self.app(scope, receive, send_with_headers)

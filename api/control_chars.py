"""Pure ASGI middleware refusing control characters in the path, the query and JSON or form bodies.

One check in front of every route, so that no handler ever sees a NUL (PostgreSQL cannot store
one: without this, a 500) or another C0 control (`partners.control_chars` says which). The
answer is a 422 problem+json naming the field (`code: invalid_characters`); the OAuth endpoints
answer RFC 6749's `invalid_request` instead. Bulk uploads stream and are checked row by row
(`partners.ingest_rows`), so their bodies pass through here untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PROBLEM_JSON, problem_body
from api.middleware import start_message
from partners import control_chars

CODE = "invalid_characters"
TITLE = "Invalid characters"
OAUTH_PREFIX = "/oauth/"
_BODILESS = {"GET", "HEAD", "OPTIONS"}


class ControlCharacterMiddleware:
    """Answers 422 before routing when the path, query or body holds a refused control character."""

    def __init__(self, app: ASGIApp, *, streamed_prefixes: Sequence[str] = ()) -> None:
        self.app = app
        self.streamed_prefixes = tuple(streamed_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = _in_path(scope) or _in_query(scope)
        if found is not None:
            await _refuse(scope, send, *found)
            return
        kind = _body_kind(scope)
        if kind is None or scope["path"].startswith(self.streamed_prefixes):
            await self.app(scope, receive, send)
            return
        # The body cap sits outside this middleware, so what is buffered here is bounded by it.
        messages = await _read_body(receive)
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        found = _in_json(body) if kind == "json" else _in_form(body)
        if found is not None:
            await _refuse(scope, send, *found)
            return
        await self.app(scope, _replay(messages, receive), send)


def _in_path(scope: Scope) -> tuple[str, str] | None:
    char = control_chars.refused_in_path(scope["path"])
    if char is None:
        return None
    return _path_parameter(scope), char


def _path_parameter(scope: Scope) -> str:
    """The path parameter holding the character, by the OpenAPI template the path fits (the most
    specific, as `api.errors.allowed_methods` picks it); `path` for pages outside the document."""
    app = scope.get("app")
    paths: dict[str, Any] = app.openapi()["paths"] if app is not None and hasattr(app, "openapi") else {}
    fitting: list[tuple[str, dict[str, str]]] = []
    for template in paths:
        found = re.fullmatch(re.sub(r"\\{[^}/]+\\}", "([^/]+)", re.escape(template)), scope["path"])
        if found is not None:
            names = re.findall(r"{([^}/]+)}", template)
            fitting.append((template, dict(zip(names, found.groups(), strict=True))))
    for _template, values in sorted(fitting, key=lambda item: item[0].count("{")):
        for name, value in values.items():
            if control_chars.refused_in_path(value):
                return name
    return "path"


def _in_query(scope: Scope) -> tuple[str, str] | None:
    query: bytes = scope.get("query_string", b"")
    if not query or not control_chars.may_hold_form(query):
        return None
    return _in_pairs(parse_qsl(query.decode("latin-1"), keep_blank_values=True), fallback="query")


def _in_pairs(pairs: list[tuple[str, str]], *, fallback: str) -> tuple[str, str] | None:
    for name, value in pairs:
        char = control_chars.refused_in_text(name)
        if char is not None:
            return fallback, char
        char = control_chars.refused_in_text(value)
        if char is not None:
            return name, char
    return None


def _body_kind(scope: Scope) -> str | None:
    if scope["method"] in _BODILESS:
        return None
    headers = dict(scope["headers"])
    content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    # FastAPI reads a body without a content type as JSON.
    if content_type in (b"", b"application/json") or content_type.endswith(b"+json"):
        return "json"
    if content_type == b"application/x-www-form-urlencoded":
        return "form"
    return None


async def _read_body(receive: Receive) -> list[Message]:
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


def _in_json(body: bytes) -> tuple[str, str] | None:
    if not control_chars.may_hold_json(body):
        return None
    try:
        value: Any = json.loads(body)
    except ValueError:
        return None  # the route answers 400 malformed_json (a raw control character is not JSON)
    found = control_chars.refused_in_json(value)
    if found is None:
        return None
    path, char = found
    return ".".join(path) or "body", char


def _in_form(body: bytes) -> tuple[str, str] | None:
    if not control_chars.may_hold_form(body):
        return None
    return _in_pairs(parse_qsl(body.decode("latin-1"), keep_blank_values=True), fallback="body")


async def _refuse(scope: Scope, send: Send, param: str, char: str) -> None:
    detail = control_chars.message(f"`{param}`", char)
    if scope["path"].startswith(OAUTH_PREFIX):
        # RFC 6749 §5.2 keeps its own error format (and the authorization endpoint, an HTML page).
        if scope["method"] == "GET":
            body, content_type = b"<!doctype html><title>Invalid request</title><p>Invalid request.", "text/html"
        else:
            document = {"error": "invalid_request", "error_description": detail}
            body, content_type = json.dumps(document).encode(), "application/json"
        status = 400
    else:
        request_id = scope.get("state", {}).get("request_id")
        body = problem_body(scope["path"], request_id, 422, CODE, TITLE, detail, param=param)
        status, content_type = 422, PROBLEM_JSON
    await send(start_message(status, content_type, len(body)))
    await send({"type": "http.response.body", "body": body})

"""RFC 9457 problem+json for every error the API returns, in one place."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from partners import errors

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://partnerloop.dev/problems/"

STATUS_OF: dict[type[errors.DomainError], int] = {
    errors.NotFound: 404,
    errors.Invalid: 422,
    errors.Conflict: 409,
    errors.Forbidden: 403,
    errors.RateLimited: 429,
    errors.Unavailable: 503,
}

# The methods our routes use, in the order `Allow` lists them.
ALLOW_CANDIDATES = ("GET", "POST", "PUT", "PATCH", "DELETE")

HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    412: ("precondition_failed", "Precondition failed"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_error", "Invalid request"),
    429: ("rate_limited", "Too many requests"),
}


class ApiProblem(Exception):
    """An HTTP-level refusal (authentication, scopes) rendered as problem+json."""

    def __init__(
        self, status: int, code: str, title: str, detail: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.title, self.detail, self.headers = status, code, title, detail, headers


def problem(
    request: Request | None,
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response; `param` names the offending field."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if request is not None:
        body["instance"] = request.url.path
        body["request_id"] = getattr(request.state, "request_id", None)
    if param is not None:
        body["param"] = param
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def status_of(exc: errors.DomainError) -> int:
    """The HTTP status for a domain error: the nearest class in the table."""
    for klass in type(exc).__mro__:
        if klass in STATUS_OF:
            return STATUS_OF[klass]
    return 400


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.DomainError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, errors.RateLimited) else None
    if isinstance(exc, errors.IdempotencyInProgress):
        headers = {"Retry-After": "1"}
    return problem(request, status_of(exc), exc.code, exc.title, exc.detail, param=exc.param, headers=headers)


def _param_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem(request, exc.status, exc.code, exc.title, exc.detail, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    if any(e.get("type") == "json_invalid" for e in problems):
        return problem(
            request,
            400,
            "malformed_json",
            "Malformed JSON",
            "The request body is not valid JSON; check quoting and commas.",
            param="body",
        )
    fields = [
        {"param": _param_of(tuple(e.get("loc", ()))), "message": str(e.get("msg", "")), "type": e.get("type")}
        for e in problems
    ]
    first = fields[0] if fields else {"param": "body", "message": "invalid"}
    detail = f"{first['param']}: {first['message']}"
    if len(fields) > 1:
        detail += f" (and {len(fields) - 1} more)"
    return problem(
        request, 422, "validation_error", "Invalid request", detail, param=str(first["param"]), errors=fields
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, title = HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
    generic = not isinstance(exc.detail, str) or exc.detail.lower() == title.lower()
    detail = _default_detail(request, code) if generic else str(exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem(request, exc.status_code, code, title, detail, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """The methods served at this URL, as the OpenAPI document lists them for its path (Starlette
    names only the first matching route's); pages outside the document by route matching."""
    documented = _documented_methods(request.app.openapi()["paths"], request.url.path)
    if documented is not None:
        return documented
    return [
        method
        for method in ALLOW_CANDIDATES
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in request.app.routes)
    ]


def _documented_methods(paths: dict[str, dict[str, Any]], path: str) -> list[str] | None:
    # The most specific template wins, as in the document: /v1/staff/invitations, not /v1/staff/{user_id}.
    matching = [t for t in paths if re.fullmatch(re.sub(r"\\{[^}/]+\\}", "[^/]+", re.escape(t)), path)]
    if not matching:
        return None
    template = min(matching, key=lambda t: t.count("{"))
    return [m for m in ALLOW_CANDIDATES if m.lower() in paths[template]]


def _default_detail(request: Request, code: str) -> str:
    if code == "not_found":
        return f"No route matches {request.url.path}; see /docs for the API's routes."
    if code == "method_not_allowed":
        return f"{request.method} is not allowed on {request.url.path}."
    return code.replace("_", " ").capitalize() + "."


def problem_body(
    path: str, request_id: str | None, status: int, code: str, title: str, detail: str, *, param: str | None = None
) -> bytes:
    """A problem+json body for middleware that answers before any route (no Request to hand)."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": path,
        "request_id": request_id,
    }
    if param is not None:
        body["param"] = param
    return json.dumps(body).encode()


def internal_error_body(path: str, request_id: str) -> bytes:
    """The body of a 500: nothing of the internals, the request id to quote."""
    detail = "Something went wrong on our side; retry later, quoting the request_id if it persists."
    return problem_body(path, request_id, 500, "internal_error", "Internal error", detail)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""
    app.add_exception_handler(errors.DomainError, _domain_error)
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)

"""The OpenAPI document, with every error response declared once for all routes (problem+json)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from api.errors import HTTP_CODES, PROBLEM_JSON

PROBLEM_REF = "#/components/schemas/Problem"
SECURITY_SCHEME = "partnerloop"
# The extension api.auth.principal.AnyScope routes carry, turned into security alternatives here.
ANY_OF_SCOPES = "x-partnerloop-any-of-scopes"
# RFC 6749 keeps its own error format here (declared by the routes themselves).
OAUTH_PREFIX = "/oauth/"
BODY_METHODS = {"post", "put", "patch"}
METHODS = ("get", "put", "post", "patch", "delete")

DESCRIPTIONS = {
    400: "The body is not valid JSON (`malformed_json`)",
    401: "No access token, or an invalid, expired or revoked one (`invalid_token`, with `WWW-Authenticate`)",
    403: "The token lacks a scope this route needs, or the caller may not do this",
    404: "No such object for this tenant (another tenant's objects are not found either)",
    409: "The object's state does not allow this now, or an `Idempotency-Key` conflict",
    413: "The body is larger than the cap (`PARTNERLOOP_MAX_BODY_BYTES`)",
    422: "The request breaks the schema or a rule of the domain; `param` names the field",
    429: "Too many requests from this client; retry after `Retry-After` seconds",
}


class FieldProblem(BaseModel):
    param: str = Field(description="Dotted path of the field at fault")
    message: str
    type: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details, with our stable `code`."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})
    type: str = Field(description="A URI naming the kind of problem")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="What went wrong and what to do, for humans")
    code: str = Field(description="Stable and safe to branch on")
    instance: str | None = Field(default=None, description="The request path")
    request_id: str | None = Field(default=None, description="Quote it when asking us about this request")
    param: str | None = Field(default=None, description="The offending field, query parameter or header")
    errors: list[FieldProblem] | None = Field(default=None, description="Every field at fault (validation errors)")


def _has_json_body(operation: dict[str, Any]) -> bool:
    return "application/json" in operation.get("requestBody", {}).get("content", {})


def error_statuses(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses any route of this shape may answer, whatever it does."""
    secured = any(SECURITY_SCHEME in requirement for requirement in operation.get("security", []))
    statuses: set[int] = set()
    if secured:
        statuses |= {401, 403, 429}
    if path.startswith(OAUTH_PREFIX):
        # Token, revocation and introspection calls are limited per address (see api/ratelimit.py).
        return statuses | ({429} if method == "post" else set())
    if path.startswith("/v1/"):
        statuses |= {404, 422}
        if method != "get":
            statuses.add(409)
        if not secured and method == "post":
            statuses.add(429)
    if method in BODY_METHODS and "requestBody" in operation:
        statuses.add(413)
        if _has_json_body(operation):
            statuses.add(400)
    if any(p.get("in") in {"query", "path"} for p in operation.get("parameters", [])):
        statuses.add(422)
    if any(
        p.get("in") == "header" and p.get("name", "").lower() == "if-match" for p in operation.get("parameters", [])
    ):
        statuses.add(412)
    return statuses


def _problem_response(status: int, existing: dict[str, Any] | None) -> dict[str, Any]:
    description = (existing or {}).get("description") or DESCRIPTIONS.get(status) or HTTP_CODES[status][1]
    if description in {"Validation Error", "Successful Response"}:
        description = DESCRIPTIONS.get(status, description)
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge"}}
    if status == 429:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}}
    return response


def declare_scope_alternatives(document: dict[str, Any]) -> dict[str, Any]:
    """Routes opened by any one of several scopes (AnyScope) declare one security alternative each."""
    for item in document.get("paths", {}).values():
        for method in METHODS:
            operation = item.get(method)
            if operation is None or ANY_OF_SCOPES not in operation:
                continue
            operation["security"] = [{SECURITY_SCHEME: [scope]} for scope in operation.pop(ANY_OF_SCOPES)]
    return document


def declare_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Declare on every operation the problem+json errors it may answer; fix FastAPI's 422 to match."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            oauth = path.startswith(OAUTH_PREFIX)
            for status in sorted(error_statuses(method, path, operation)):
                key = str(status)
                if oauth and key in responses:
                    continue  # RFC 6749 errors, as the route declares them
                responses[key] = _problem_response(status, responses.get(key))
            # Any other error a route declares itself (a 409 on a read, a 503) is problem+json too.
            for key, response in list(responses.items()):
                if key[0] in "45" and not oauth and PROBLEM_JSON not in response.get("content", {}):
                    responses[key] = _problem_response(int(key), response)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def install(app: FastAPI) -> None:
    """Serve the document with the error responses declared (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = declare_errors(declare_scope_alternatives(document))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

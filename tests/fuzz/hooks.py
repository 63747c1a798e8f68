"""Schemathesis hooks for the fuzz run: our own checks on top of schemathesis' built-in ones."""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis import Case, CheckContext, Response

PROBLEM_JSON = "application/problem+json"
# RFC 6749 keeps its own error format on the OAuth endpoints (docs/api-conventions.md).
OWN_ERROR_FORMAT = ("/oauth/",)


@schemathesis.check
def problem_json_on_4xx(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Every 4xx outside OAuth is RFC 9457 problem+json with a stable `code` and the right `status`."""
    status = response.status_code
    if not 400 <= status < 500 or case.path.startswith(OWN_ERROR_FORMAT):
        return None
    content_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    assert content_type == PROBLEM_JSON, f"a {status} answered {content_type or 'no content type'}, not {PROBLEM_JSON}"
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"a {status} problem is not JSON") from exc
    assert isinstance(body, dict), f"a {status} problem is not a JSON object"
    assert body.get("status") == status, f"the problem says status {body.get('status')} but the response is {status}"
    missing = [name for name in ("type", "title", "detail", "code") if not isinstance(body.get(name), str)]
    assert not missing, f"the {status} problem lacks {', '.join(missing)}"
    return True


@schemathesis.check
def schema_valid_requests_pass_request_validation(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    """A request the OpenAPI document calls valid may break a rule of the domain (an unknown category,
    a cursor we did not issue: `invalid`), never the request model (`validation_error`): that means
    the document lies about what the route takes."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code not in (400, 422):
        return None
    try:
        code = json.loads(response.content).get("code")
    except (ValueError, AttributeError):
        return None
    assert code not in ("validation_error", "malformed_json"), (
        f"a request valid by the OpenAPI document failed request validation ({code}): {response.content[:500]!r}"
    )
    return True

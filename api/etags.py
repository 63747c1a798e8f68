"""ETags and conditional requests, once for every router that opts in with `ConditionalRoute`.

The ETag of a resource is a strong validator of its representation: a hash of the JSON body in
canonical form (keys sorted, no spaces). It changes exactly when anything shown changes — also the
parts of a composite resource that live in other rows (an offer's placements, its code counts) —
so no row version has to be threaded through. `If-None-Match` on a GET answers 304 with no body;
`require_match` lets a write check `If-Match` against the current representation first (412).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Header, Request, Response
from pydantic import BaseModel

from api.errors import ApiProblem
from api.idempotency import IdempotentRoute

IfMatch = Annotated[
    str | None,
    Header(description="Apply only if the resource still has this ETag (from a GET); else 412", max_length=1000),
]
IfNoneMatch = Annotated[str | None, Header(description='"*": create only, 412 if it exists already', max_length=1000)]


def _tag(canonical: bytes) -> str:
    digest = hashlib.sha256(canonical).digest()[:18]
    return '"' + base64.urlsafe_b64encode(digest).decode() + '"'


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def etag_of_body(body: bytes) -> str:
    """The ETag of a JSON response body."""
    return _tag(_canonical(json.loads(body)))


def etag_of(model: BaseModel) -> str:
    """The ETag the GET of this representation carries."""
    return _tag(_canonical(model.model_dump(mode="json")))


def matches(header: str | None, etag: str) -> bool:
    """Whether an If-None-Match / If-Match list names `etag` (weak comparison; `*` matches any)."""
    if header is None:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def require_match(if_match: str | None, current: BaseModel | None) -> None:
    """412 unless `If-Match` is absent or names the current representation's ETag (None: no resource)."""
    if if_match is None:
        return
    if current is not None and (if_match.strip() == "*" or matches(if_match, etag_of(current))):
        return
    raise ApiProblem(
        412, "precondition_failed", "Precondition failed", "The resource changed since you read it; GET it again."
    )


def require_absent(if_none_match: str | None, exists: bool) -> None:
    """412 when `If-None-Match: *` was sent (create only) and the resource exists."""
    if if_none_match is not None and if_none_match.strip() == "*" and exists:
        raise ApiProblem(412, "precondition_failed", "Precondition failed", "The resource exists already.")


class ConditionalRoute(IdempotentRoute):
    """IdempotentRoute whose successful GETs carry an ETag and answer `If-None-Match` with 304."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            response = await handler(request)
            json_body = "json" in (response.headers.get("content-type") or "") and hasattr(response, "body")
            if request.method != "GET" or response.status_code != 200 or not json_body:
                return response
            etag = etag_of_body(bytes(response.body))
            response.headers["etag"] = etag
            if matches(request.headers.get("if-none-match"), etag):
                return Response(status_code=304, headers={"etag": etag})
            return response

        return handle

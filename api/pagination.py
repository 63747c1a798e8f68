"""Opaque, signed keyset cursors: `limit`, `cursor` in; `{data, next_cursor}` out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from api.deps import SettingsDep
from partners.errors import Invalid

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` back as `cursor` for the next one."""

    data: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class PageRequest:
    limit: int
    after: str | None
    secret: bytes

    def page(self, items: Sequence[T], has_more: bool, last_key: str | None) -> Page[T]:
        """Wrap one page of results, with a cursor when more follow."""
        cursor = encode_cursor(self.secret, last_key) if has_more and last_key else None
        return Page[T](data=list(items), next_cursor=cursor)


def _sign(secret: bytes, payload: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(secret, payload, hashlib.sha256).digest()[:12]).decode().rstrip("=")


def encode_cursor(secret: bytes, after: str) -> str:
    """A cursor that resumes after the key `after`."""
    payload = json.dumps({"a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _sign(secret, payload)


def decode_cursor(secret: bytes, cursor: str) -> str:
    """The key a cursor resumes after; Invalid if it was not made by us."""
    body, _, signature = cursor.partition(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        valid = hmac.compare_digest(signature, _sign(secret, payload))
        after = json.loads(payload)["a"] if valid else None
    except (ValueError, KeyError, TypeError):
        after = None
    if not isinstance(after, str):
        raise Invalid("This cursor is not one we issued; start again without `cursor`.", param="cursor")
    return after


def page_request(
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page (1–100).")] = 50,
    cursor: Annotated[str | None, Query(max_length=512, description="`next_cursor` of the page before.")] = None,
) -> PageRequest:
    """The paging parameters of a list request."""
    secret = settings.secret_key.get_secret_value().encode()
    after = decode_cursor(secret, cursor) if cursor else None
    return PageRequest(limit=limit, after=after, secret=secret)


Paging = Annotated[PageRequest, Depends(page_request)]

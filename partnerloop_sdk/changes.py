"""Change feeds: everything that changed since a cursor, in order, resuming where you left off."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, cast

from partnerloop_sdk.models import ChangePage
from partnerloop_sdk.session import ApiSession

FEEDS = ("offers", "partner-offers", "redemptions", "consent-events")


class CursorStore(Protocol):
    """Where a consumer keeps its position in a feed between runs."""

    def load(self, feed: str) -> str | None: ...

    def save(self, feed: str, cursor: str) -> None: ...


class MemoryCursorStore:
    """Positions kept in memory (tests, one-off scripts)."""

    def __init__(self) -> None:
        self.cursors: dict[str, str] = {}

    def load(self, feed: str) -> str | None:
        return self.cursors.get(feed)

    def save(self, feed: str, cursor: str) -> None:
        self.cursors[feed] = cursor


class FileCursorStore:
    """Positions kept in a small JSON file, replaced atomically so a crash never leaves half a file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def _all(self) -> dict[str, str]:
        try:
            return cast(dict[str, str], json.loads(self.path.read_text()))
        except FileNotFoundError:
            return {}

    def load(self, feed: str) -> str | None:
        return self._all().get(feed)

    def save(self, feed: str, cursor: str) -> None:
        cursors = {**self._all(), feed: cursor}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name)
        with os.fdopen(fd, "w") as file:
            json.dump(cursors, file)
        os.replace(tmp, self.path)


class Changes:
    """`/v1/changes/…`: offers and partner offers (`offers:read`), redemptions (`reports:read`),
    consent events (`consents:write`)."""

    def __init__(self, api: ApiSession) -> None:
        self._api = api

    def page(self, feed: str, cursor: str | None = None, limit: int = 100) -> ChangePage:
        """One page of changes after `cursor` (none: from the beginning)."""
        if feed not in FEEDS:
            raise ValueError(f"feed must be one of {', '.join(FEEDS)}")
        params = {"limit": limit, "cursor": cursor}
        return cast(ChangePage, self._api.call("GET", f"/v1/changes/{feed}", params=params).json())

    def iterate(
        self,
        feed: str,
        store: CursorStore | None = None,
        *,
        cursor: str | None = None,
        limit: int = 100,
        follow: bool = False,
        poll_seconds: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Iterator[dict[str, Any]]:
        """Yield each changed item after the stored cursor (or `cursor`), oldest first.

        The cursor is saved to `store` once every item of a page has been yielded and the loop
        has asked for the next one, so a consumer that stops mid-page reads that page again
        next time: apply items as upserts (or deletions when `removed`). Without `follow` it
        stops when the feed is caught up; with it, it polls every `poll_seconds` for ever.
        """
        position = store.load(feed) if store is not None and cursor is None else cursor
        while True:
            page = self.page(feed, position, limit)
            yield from page["data"]
            position = page["next_cursor"]
            if store is not None:
                store.save(feed, position)
            if page["has_more"]:
                continue
            if not follow:
                return
            sleep(poll_seconds)

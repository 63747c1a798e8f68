"""Control characters in text we are sent: which are refused, and where they sit in a JSON value.

PostgreSQL cannot store U+0000 in a text or jsonb value (SQLite would, silently), and the other
C0 controls have no business in ids, names or free text: they only corrupt logs and pages.
Tab, carriage return and line feed stay allowed in free text.
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls but tab, LF and CR; NUL among them.
_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Every C0 control, for places where even tab and line breaks mean an attack (a URL path).
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f]")
# A cheap look at raw bytes: a control byte, or a JSON `\u00XX` escape that may decode to one
# (`\\u0000` is an escaped backslash, no NUL: only parsing tells, so a hit is a maybe).
_MAYBE_IN_JSON = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]|\\u00[01][0-9a-fA-F]")
# The same for an `application/x-www-form-urlencoded` body: raw, or percent-encoded.
_MAYBE_IN_FORM = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]|%[01][0-9a-fA-F]")


def refused_in_text(text: str) -> str | None:
    """The first refused control character of free text, if any."""
    found = _REFUSED.search(text)
    return found.group() if found else None


def refused_in_path(text: str) -> str | None:
    """The first control character (tab and line breaks included) of a URL path, if any."""
    found = _ANY_CONTROL.search(text)
    return found.group() if found else None


def may_hold_json(raw: bytes) -> bool:
    """Whether a JSON document's bytes may hold a refused character (then walk the parsed value)."""
    return _MAYBE_IN_JSON.search(raw) is not None


def may_hold_form(raw: bytes) -> bool:
    """Whether a urlencoded form's bytes may hold a refused character (then look at its fields)."""
    return _MAYBE_IN_FORM.search(raw) is not None


def codepoint(char: str) -> str:
    """`U+0000` for a character, as messages name it."""
    return f"U+{ord(char):04X}"


def refused_in_json(value: Any) -> tuple[tuple[str, ...], str] | None:
    """The path (keys and list indices) of the first string or key holding a refused character,
    and that character; None when the value is clean."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), value)]
    while stack:
        path, current = stack.pop()
        if isinstance(current, str):
            char = refused_in_text(current)
            if char is not None:
                return path, char
        elif isinstance(current, dict):
            children: list[tuple[tuple[str, ...], Any]] = []
            for key, child in current.items():
                char = refused_in_text(key)
                if char is not None:
                    return (*path, key), char
                children.append(((*path, key), child))
            stack.extend(reversed(children))  # depth first, in document order
        elif isinstance(current, list):
            stack.extend(((*path, str(index)), child) for index, child in reversed(list(enumerate(current))))
    return None


def message(where: str, char: str) -> str:
    """What to tell the sender, naming the field and the character."""
    return (
        f"{where} holds the control character {codepoint(char)}; remove it "
        "(text may hold tabs and line breaks, but no other control characters)."
    )

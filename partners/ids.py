"""Prefixed, time-ordered opaque ids (`ten_01J…`), so a wrong kind of id fails clearly."""

from __future__ import annotations

import os
import re
import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_BODY = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}$")


def new_id(prefix: str) -> str:
    """A new id: 48 bits of milliseconds then 80 random bits, so ids sort by creation time."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


# Every pair of digits (10 bits), so bulk ids are written 10 bits at a time.
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)


def new_ids(prefix: str, count: int) -> list[str]:
    """`count` new ids at once, as `new_id` makes them: for bulk writes, ~8× cheaper per id."""
    head = int(time.time() * 1000) << 80
    random = os.urandom(10 * count)
    p, start = _PAIRS, prefix + "_"
    ids = []
    for at in range(0, 10 * count, 10):
        v = head | int.from_bytes(random[at : at + 10], "big")
        ids.append(
            start + p[v >> 120] + p[v >> 110 & 1023] + p[v >> 100 & 1023] + p[v >> 90 & 1023] + p[v >> 80 & 1023]
            + p[v >> 70 & 1023] + p[v >> 60 & 1023] + p[v >> 50 & 1023] + p[v >> 40 & 1023] + p[v >> 30 & 1023]
            + p[v >> 20 & 1023] + p[v >> 10 & 1023] + p[v & 1023]
        )  # fmt: skip
    return ids


def is_id(value: str, prefix: str) -> bool:
    """Whether `value` is well formed for ids of this kind."""
    head, sep, body = value.partition("_")
    return sep == "_" and head == prefix and bool(_BODY.match(body))

"""Pure per-line parsing of bulk uploads: each line becomes a row or an error naming its line.

Nothing here touches the database; `partners.ingest` writes the rows and records the errors.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from partners import control_chars
from partners.customers import check_external_id
from partners.errors import DomainError

MAX_LINE_BYTES = 64 * 1024
CUSTOMER_FIELDS = ("external_id", "email", "store_email")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


@dataclass(frozen=True)
class RowError:
    line: int
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class CustomerRow:
    line: int
    external_id: str
    email: str | None
    store_email: bool


async def numbered_lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """(line number from 1, line without its end) for every line of a byte stream, blank ones too."""
    tail = b""
    number = 0
    async for chunk in chunks:
        if not chunk:
            continue
        parts = (tail + chunk).split(b"\n")
        tail = parts.pop()
        for part in parts:
            number += 1
            yield number, part.rstrip(b"\r")
    if tail:
        yield number + 1, tail.rstrip(b"\r")


def decode_line(line: int, raw: bytes) -> str | RowError:
    """The line as text, or an error if it is too long or not UTF-8."""
    if len(raw) > MAX_LINE_BYTES:
        return RowError(line, None, f"Line is longer than {MAX_LINE_BYTES} bytes.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return RowError(line, None, "Line is not valid UTF-8.")
    char = control_chars.refused_in_text(text)
    if char is not None:
        return RowError(line, None, control_chars.message(f"Column {text.index(char) + 1} of the line", char))
    return text


def escaped_control(line: int, text: str) -> RowError | None:
    """An error naming the field when a JSON line's escapes (`\\u0000`) decode to a refused character."""
    if not control_chars.may_hold_json(text.encode()):
        return None
    try:
        found = control_chars.refused_in_json(json.loads(text))
    except ValueError:
        return None  # not JSON: the parser reports it
    if found is None:
        return None
    path, char = found
    field = ".".join(path) or None
    return RowError(line, field, control_chars.message(field or "The line", char))


def _customer(line: int, values: dict[str, Any]) -> CustomerRow | RowError:
    unknown = sorted(set(values) - set(CUSTOMER_FIELDS))
    if unknown:
        return RowError(line, unknown[0], f"Unknown field '{unknown[0]}'; expected {', '.join(CUSTOMER_FIELDS)}.")
    external_id = values.get("external_id")
    if not isinstance(external_id, str):
        return RowError(line, "external_id", "external_id is required and must be a string.")
    try:
        check_external_id(external_id)
    except DomainError as exc:
        return RowError(line, "external_id", exc.detail)
    email = values.get("email")
    if email == "":
        email = None
    if email is not None and not isinstance(email, str):
        return RowError(line, "email", "email must be a string.")
    store = values.get("store_email", False)
    if isinstance(store, str):
        lowered = store.strip().lower()
        if lowered not in _TRUE | _FALSE:
            return RowError(line, "store_email", "store_email must be true or false.")
        store = lowered in _TRUE
    if not isinstance(store, bool):
        return RowError(line, "store_email", "store_email must be true or false.")
    return CustomerRow(line, external_id, email, store)


def parse_ndjson_customer(line: int, raw: bytes) -> CustomerRow | RowError:
    """One NDJSON line: an object with external_id, optional email and store_email."""
    values = json_object(line, raw)
    return values if isinstance(values, RowError) else _customer(line, values)


def parse_csv_header(line: int, raw: bytes) -> list[str] | RowError:
    """The header line of a customers CSV upload: column names, external_id among them."""
    return csv_header(line, raw, CUSTOMER_FIELDS[:1], CUSTOMER_FIELDS[1:])


def parse_csv_customer(line: int, raw: bytes, header: list[str]) -> CustomerRow | RowError:
    """One line of a customers CSV upload, read against the header."""
    cells = csv_cells(line, raw, header)
    return cells if isinstance(cells, RowError) else _customer(line, dict(cells))


def json_object(line: int, raw: bytes) -> dict[str, Any] | RowError:
    """One NDJSON line as a JSON object."""
    text = decode_line(line, raw)
    if isinstance(text, RowError):
        return text
    try:
        values = json.loads(text)
    except ValueError as exc:
        return RowError(line, None, f"Not valid JSON: {exc}.")
    if not isinstance(values, dict):
        return RowError(line, None, "Each line must be a JSON object.")
    found = control_chars.refused_in_json(values)
    if found is not None:
        path, char = found
        return RowError(line, ".".join(path), control_chars.message(".".join(path), char))
    return values


def csv_header(line: int, raw: bytes, required: Sequence[str], optional: Sequence[str] = ()) -> list[str] | RowError:
    """A CSV header naming every required column, and no column but the required and optional ones."""
    text = decode_line(line, raw)
    if isinstance(text, RowError):
        return text
    try:
        columns = [name.strip() for name in next(csv.reader([text]), [])]
    except csv.Error as exc:  # a bare carriage return inside the line, say
        return RowError(line, None, f"Not valid CSV: {exc}.")
    missing = [name for name in required if name not in columns]
    if missing:
        return RowError(line, missing[0], f"The first line must be a header naming the columns {', '.join(required)}.")
    known = (*required, *optional)
    unknown = [name for name in columns if name not in known]
    if unknown:
        return RowError(line, unknown[0], f"Unknown column '{unknown[0]}'; expected {', '.join(known)}.")
    if len(set(columns)) != len(columns):
        return RowError(line, None, "A column is named twice in the header.")
    return columns


def csv_cells(line: int, raw: bytes, header: Sequence[str]) -> dict[str, str] | RowError:
    """One CSV line (no newlines inside quoted values) by column name; empty cells left out."""
    text = decode_line(line, raw)
    if isinstance(text, RowError):
        return text
    try:
        cells = next(csv.reader([text]), [])
    except csv.Error as exc:
        return RowError(line, None, f"Not valid CSV: {exc}.")
    if len(cells) != len(header):
        return RowError(line, None, f"Expected {len(header)} columns, found {len(cells)}.")
    return {name: cell for name, cell in zip(header, cells, strict=True) if cell != ""}


def validation_error(line: int, exc: ValidationError, rename: Mapping[str, str] | None = None) -> RowError:
    """The first problem pydantic found in a row, naming its field (dotted path)."""
    first = exc.errors(include_url=False)[0]
    path = ".".join(str(part) for part in first["loc"]) or None
    if path is not None and rename:
        path = rename.get(path, path)
    return RowError(line, path, f"{path}: {first['msg']}." if path else f"{first['msg']}.")


def domain_error(line: int, exc: DomainError) -> RowError:
    """A domain rule's refusal of a row."""
    return RowError(line, exc.param, exc.detail)

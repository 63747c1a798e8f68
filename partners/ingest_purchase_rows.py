"""Reading purchases from upload lines: NDJSON (one order a line) or CSV (one order line a line).

CSV lines of one order are consecutive and repeat the order's `external_id`, `order_id`,
`ordered_at` and `currency`. An order with any bad line is refused as a whole, reported at
its first bad line. A line that cannot be read at all (not UTF-8, wrong column count) may
have belonged to the order before or after it, so those are refused too rather than stored
incomplete: an order id, once stored, cannot be sent again with other lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from partners.customers import check_external_id
from partners.errors import DomainError
from partners.ingest_rows import (
    RowError,
    csv_cells,
    csv_header,
    decode_line,
    domain_error,
    escaped_control,
    validation_error,
)
from partners.purchases import MAX_LINES, Channel, LineInput, PurchaseInput, check_purchase

CSV_REQUIRED = ("external_id", "order_id", "ordered_at", "currency", "category_id", "unit_price_minor", "channel")
CSV_OPTIONAL = ("quantity",)
_LINE_FIELDS = ("category_id", "unit_price_minor", "quantity", "channel")


@dataclass(frozen=True)
class OrderRow:
    line: int  # the order's first line
    external_id: str
    purchase: PurchaseInput


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _LineIn(_Strict):
    category_id: str = Field(max_length=100)
    unit_price_minor: int
    quantity: int = 1
    channel: Channel


class _OrderIn(_Strict):
    external_id: str
    order_id: str = Field(max_length=100)
    ordered_at: AwareDatetime
    currency: str
    lines: list[_LineIn] = Field(max_length=MAX_LINES)


class _CsvLineIn(_LineIn):
    external_id: str
    order_id: str = Field(max_length=100)
    ordered_at: AwareDatetime
    currency: str


def _checked(line_numbers: list[int], external_id: str, purchase: PurchaseInput, now: datetime) -> OrderRow | RowError:
    """Domain rules (ids, taxonomy, amounts, clock skew), reported at the line they concern."""
    try:
        check_external_id(external_id)
        checked = check_purchase(purchase, now)
    except DomainError as exc:
        param = exc.param or ""
        if param.startswith("lines.") and len(line_numbers) > 1:
            # In CSV each order line is a file line: point at it, and name the column.
            _, index, column = param.split(".", 2)
            return RowError(line_numbers[int(index)], column, exc.detail)
        return domain_error(line_numbers[0], exc)
    return OrderRow(line_numbers[0], external_id, checked)


def parse_ndjson_order(line: int, raw: bytes, now: datetime) -> OrderRow | RowError:
    """One NDJSON line: an order, as the single-purchase route takes it, plus the customer's external_id."""
    text = decode_line(line, raw)
    if isinstance(text, RowError):
        return text
    refused = escaped_control(line, text)
    if refused is not None:
        return refused
    try:
        order = _OrderIn.model_validate_json(text)
    except ValidationError as exc:
        return validation_error(line, exc)
    lines = tuple(LineInput(x.category_id, x.unit_price_minor, x.quantity, x.channel) for x in order.lines)
    purchase = PurchaseInput(order.order_id, order.ordered_at, order.currency, lines)
    return _checked([line] * max(1, len(lines)), order.external_id, purchase, now)


def parse_csv_header(line: int, raw: bytes) -> list[str] | RowError:
    """The header of a purchases CSV upload."""
    return csv_header(line, raw, CSV_REQUIRED, CSV_OPTIONAL)


@dataclass
class _Group:
    """Consecutive readable lines with one order id, or one unreadable line (`error`)."""

    order_id: str | None
    lines: list[tuple[int, bytes, dict[str, str]]]
    error: RowError | None = None
    poisoned_by: int | None = None


def _groups(lines: list[tuple[int, bytes]], header: list[str]) -> list[_Group]:
    groups: list[_Group] = []
    for number, raw in lines:
        cells = csv_cells(number, raw, header)
        if isinstance(cells, RowError):
            groups.append(_Group(None, [(number, raw, {})], cells))
            continue
        order_id = cells.get("order_id", "")
        last = groups[-1] if groups else None
        if last is not None and last.error is None and last.order_id == order_id:
            last.lines.append((number, raw, cells))
        else:
            groups.append(_Group(order_id, [(number, raw, cells)]))
    for index, group in enumerate(groups):
        if group.error is not None:
            for neighbour in groups[max(0, index - 1) : index + 2]:
                if neighbour.error is None and neighbour.poisoned_by is None:
                    neighbour.poisoned_by = group.lines[0][0]
    return groups


def _order_of(group: _Group, now: datetime) -> OrderRow | RowError:
    first = group.lines[0][0]
    if group.poisoned_by is not None:
        message = (
            f"Order '{group.order_id}' is not recorded: line {group.poisoned_by} next to it could not be read "
            "and may belong to it. Send the whole order again."
        )
        return RowError(first, None, message)
    if len(group.lines) > MAX_LINES:
        return RowError(group.lines[MAX_LINES][0], None, f"An order has 1–{MAX_LINES} lines.")
    parsed: list[_CsvLineIn] = []
    for number, _, cells in group.lines:
        try:
            parsed.append(_CsvLineIn.model_validate(cells))
        except ValidationError as exc:
            return validation_error(number, exc)
    head = parsed[0]
    for (number, _, _), row in zip(group.lines, parsed, strict=True):
        for name in ("external_id", "ordered_at", "currency"):
            if getattr(row, name) != getattr(head, name):
                return RowError(number, name, f"Lines of order '{head.order_id}' must repeat its {name} unchanged.")
    lines = tuple(LineInput(x.category_id, x.unit_price_minor, x.quantity, x.channel) for x in parsed)
    purchase = PurchaseInput(head.order_id, head.ordered_at, head.currency, lines)
    return _checked([number for number, _, _ in group.lines], head.external_id, purchase, now)


class CsvOrderReader:
    """Reads the orders of a CSV upload batch by batch, carrying an order split between batches."""

    def __init__(self) -> None:
        # An order refused for having too many lines, still running at the end of the last batch.
        self._overflowing: str | None = None

    def read(
        self, lines: list[tuple[int, bytes]], header: list[str], now: datetime, *, final: bool
    ) -> tuple[list[OrderRow | RowError], list[tuple[int, bytes]]]:
        """The orders (or errors) of a batch, and the lines to carry into the next batch.

        Unless `final`, the last order may continue in the next batch: its lines (and an
        unreadable line just before it, which may belong to it) are carried over.
        """
        groups = _groups(lines, header)
        records: list[OrderRow | RowError] = []
        if self._overflowing is not None and groups and groups[0].order_id == self._overflowing:
            first = groups.pop(0)
            message = f"This line continues order '{first.order_id}', which has more than {MAX_LINES} lines."
            records.append(RowError(first.lines[0][0], None, message))
        self._overflowing = None
        carried: list[tuple[int, bytes]] = []
        if not final and groups:
            if len(groups[-1].lines) > MAX_LINES:
                self._overflowing = groups[-1].order_id
            else:
                tail = 2 if len(groups) > 1 and groups[-2].error is not None and groups[-1].error is None else 1
                for group in groups[-tail:]:
                    carried.extend((number, raw) for number, raw, _ in group.lines)
                groups = groups[:-tail]
        records.extend(group.error if group.error is not None else _order_of(group, now) for group in groups)
        return records, carried

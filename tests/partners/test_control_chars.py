"""Which control characters are refused, and where a JSON value holds one."""

from __future__ import annotations

import json

import pytest

from partners import control_chars


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x0e", "\x1f"])
def test_c0_controls_are_refused_in_text(char: str) -> None:
    assert control_chars.refused_in_text(f"a{char}b") == char


@pytest.mark.parametrize("text", ["tab\there", "line\nbreak", "carriage\r\nreturn", "café ☕", "\x7f"])
def test_tabs_line_breaks_and_other_text_pass(text: str) -> None:
    assert control_chars.refused_in_text(text) is None


def test_a_path_may_hold_no_control_at_all() -> None:
    assert control_chars.refused_in_path("/v1/customers/a\tb") == "\t"
    assert control_chars.refused_in_path("/v1/customers/a-b") is None


def test_the_walk_names_the_first_string_or_key_in_document_order() -> None:
    value = {"a": "ok", "b": [{"c": "fine"}, {"d": "x\x00"}], "e": "\x01"}
    assert control_chars.refused_in_json(value) == (("b", "1", "d"), "\x00")
    assert control_chars.refused_in_json({"k\x00": 1}) == (("k\x00",), "\x00")
    assert control_chars.refused_in_json(["\x02"]) == (("0",), "\x02")
    assert control_chars.refused_in_json({"n": 1, "t": True, "z": None}) is None


@pytest.mark.parametrize(
    ("raw", "maybe", "holds"),
    [
        (b'{"a": "\\u0000"}', True, True),
        (b'{"a": "\\\\u0000"}', True, False),  # an escaped backslash, then the text u0000
        (b'{"a": "\\\\\\u0000"}', True, True),  # an escaped backslash, then a NUL
        (b'{"a": "\\u001F"}', True, True),
        (b'{"a": "\\u0009"}', True, False),  # a tab
        (b'{"a": "plain"}', False, False),
    ],
)
def test_the_byte_scan_is_a_maybe_and_parsing_decides(raw: bytes, maybe: bool, holds: bool) -> None:
    assert control_chars.may_hold_json(raw) is maybe
    assert (control_chars.refused_in_json(json.loads(raw)) is not None) is holds


def test_forms_are_scanned_raw_and_percent_encoded() -> None:
    assert control_chars.may_hold_form(b"email=a%00b")
    assert control_chars.may_hold_form(b"email=a\x01b")
    assert not control_chars.may_hold_form(b"email=a%40b&next=%2Fdocs")


def test_the_message_names_the_code_point() -> None:
    assert "U+0000" in control_chars.message("`name`", "\x00")

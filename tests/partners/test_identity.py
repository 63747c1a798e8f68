"""Email normalization (UID2 rules) and the keyed hashes built on it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partners.errors import Invalid
from partners.identity import email_digest, keyed_email_hash, normalize_email, partnership_hash

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


@pytest.mark.parametrize(
    ("raw", "digest"),
    [
        # Unified ID 2.0's published test vectors for normalization then SHA-256.
        ("JaneSaoirse+Work@gmail.com", "ku4mBX7Z3qJTXWyLFB1INzkyR2WZGW4ANSJUiW21iI8="),
        ("user@example.com", "tMmiiTI7IaAcPpQPFQ65uMVCWH8av9jw4cwf/F5HVRQ="),
    ],
)
def test_uid2_vectors(raw: str, digest: str) -> None:
    assert email_digest(normalize_email(raw)) == digest


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("JaneSaoirse+Work@gmail.com", "janesaoirse@gmail.com"),
        ("  Jane.Saoirse@GMAIL.com\n", "janesaoirse@gmail.com"),
        ("j.a.n.e+a+b@gmail.com", "jane@gmail.com"),
        ("Jane.Saoirse+Work@example.com", "jane.saoirse+work@example.com"),
        ("jane.saoirse+work@googlemail.com", "jane.saoirse+work@googlemail.com"),
        ("jane.saoirse+work@mail.gmail.com", "jane.saoirse+work@mail.gmail.com"),
        ("Ünïcode@Exämple.de", "ünïcode@exämple.de"),
    ],
)
def test_normalization(raw: str, normalized: str) -> None:
    assert normalize_email(raw) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "no-at-sign.example.com",
        "@example.com",
        "jane@",
        "jane@@example.com",
        "jane@one@example.com",
        "jane doe@example.com",
        "jane@exa mple.com",
        "jane\t@example.com",
        "jane@localhost",
        "jane@example..com",
        "jane@.example.com",
        "jane@example.com.",
        "jane@-example.com",
        "jane@exam_ple.com",
        "+work@gmail.com",
        "...@gmail.com",
        "a" * 65 + "@example.com",
        "a@" + "b" * 250 + ".com",
    ],
)
def test_malformed_emails_are_refused(raw: str) -> None:
    with pytest.raises(Invalid) as caught:
        normalize_email(raw)
    assert caught.value.param == "email"


def test_longest_allowed_email_is_accepted() -> None:
    email = "a" * 64 + "@" + "b" * 185 + ".com"
    assert len(email) == 254
    assert normalize_email(email) == email


@given(st.emails())
def test_normalization_is_idempotent_on_valid_addresses(raw: str) -> None:
    try:
        once = normalize_email(raw)
    except Invalid:
        return  # hypothesis also generates addresses our stricter rules refuse
    assert normalize_email(once) == once
    assert once == once.strip().lower()


@given(st.text(max_size=80))
def test_normalization_of_any_text_is_refused_or_stable(raw: str) -> None:
    try:
        once = normalize_email(raw)
    except Invalid:
        return
    assert normalize_email(once) == once


def test_keyed_hash_is_stable_url_safe_and_differs_per_key() -> None:
    email = normalize_email("Jane.Saoirse+Work@gmail.com")
    first = keyed_email_hash(KEY, email)
    assert first == keyed_email_hash(KEY, email)
    assert first != keyed_email_hash(OTHER_KEY, email)
    assert first != keyed_email_hash(KEY, "someone@example.com")
    assert len(first) == 43
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_keyed_hash_is_not_the_plain_digest() -> None:
    email = "user@example.com"
    assert keyed_email_hash(KEY, email) != email_digest(email).rstrip("=")


def test_keyed_hash_refuses_unnormalized_input_and_short_keys() -> None:
    with pytest.raises(ValueError, match="normalize_email"):
        keyed_email_hash(KEY, "Jane@Example.com")
    with pytest.raises(ValueError, match="at least"):
        keyed_email_hash(b"short", "jane@example.com")


def test_partnership_hash_differs_per_partnership_and_key() -> None:
    stored = keyed_email_hash(KEY, "jane@example.com")
    in_one = partnership_hash(KEY, "ptn_one", stored)
    assert in_one == partnership_hash(KEY, "ptn_one", stored)
    assert in_one != partnership_hash(KEY, "ptn_two", stored)
    assert in_one != partnership_hash(OTHER_KEY, "ptn_one", stored)
    assert in_one != stored
    assert in_one != partnership_hash(KEY, "ptn_one", keyed_email_hash(KEY, "john@example.com"))


def test_partnership_hash_matches_the_same_customer_from_both_sides() -> None:
    # Both shops' stored hashes come from the one platform key, so the same person meets.
    from_bed_shop = keyed_email_hash(KEY, normalize_email("Jane.Saoirse@gmail.com"))
    from_care_shop = keyed_email_hash(KEY, normalize_email("janesaoirse+pets@gmail.com"))
    assert partnership_hash(KEY, "ptn_x", from_bed_shop) == partnership_hash(KEY, "ptn_x", from_care_shop)


def test_partnership_hash_needs_its_inputs() -> None:
    with pytest.raises(ValueError, match="partnership id"):
        partnership_hash(KEY, "", "abc")
    with pytest.raises(ValueError, match="partnership id"):
        partnership_hash(KEY, "ptn_x", "")

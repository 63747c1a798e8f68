"""Email normalization and keyed hashing, so partners can match customers without sharing them.

Normalization follows the Unified ID 2.0 rules: trim, lower-case, and for gmail.com only,
drop dots in the local part and everything from the first "+". Hashes are keyed (HMAC), so
a leaked hash cannot be reversed by hashing a list of known addresses without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

from partners.errors import Invalid

MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path, less the angle brackets
MAX_LOCAL_LENGTH = 64
MIN_KEY_BYTES = 16
_GMAIL = "gmail.com"  # UID2 applies the gmail rules to gmail.com only, not googlemail.com

# Distinct prefixes keep an email hash from ever equalling a partnership hash, even if
# someone passes the same key to both.
_EMAIL_CONTEXT = b"partnerloop/email-hash/v1\x00"
_PARTNERSHIP_CONTEXT = b"partnerloop/partnership-key/v1\x00"


def normalize_email(raw: str) -> str:
    """The canonical form of an email address; Invalid (param "email") if it is malformed."""
    email = raw.strip().lower()
    # Checked after lower-casing: a few characters grow when lowered, and a second
    # normalization must accept what the first one returned.
    if not email:
        raise Invalid("Email is empty.", param="email")
    if len(email) > MAX_EMAIL_LENGTH:
        raise Invalid(f"Email is longer than {MAX_EMAIL_LENGTH} characters.", param="email")
    if any(char.isspace() or not char.isprintable() for char in email):
        raise Invalid("Email contains spaces or control characters.", param="email")
    local, at, domain = email.partition("@")
    if not at or "@" in domain:
        raise Invalid("Email must contain exactly one '@'.", param="email")
    if not local:
        raise Invalid("Email has nothing before the '@'.", param="email")
    if len(local) > MAX_LOCAL_LENGTH:
        raise Invalid(f"Email's part before '@' is longer than {MAX_LOCAL_LENGTH} characters.", param="email")
    _check_domain(domain)
    if domain == _GMAIL:
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            raise Invalid("Gmail address has no name before '+'.", param="email")
    return f"{local}@{domain}"


def _check_domain(domain: str) -> None:
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels):
        raise Invalid("Email domain must be a dotted name such as example.com.", param="email")
    for label in labels:
        if label.startswith("-") or label.endswith("-") or not label.replace("-", "").isalnum():
            raise Invalid(f"Email domain has an invalid part '{label}'.", param="email")


def email_digest(normalized: str) -> str:
    """Unkeyed SHA-256 in standard base64, as UID2 defines it; for checking normalization only."""
    return base64.b64encode(hashlib.sha256(normalized.encode("utf-8")).digest()).decode("ascii")


def keyed_email_hash(key: bytes, normalized: str) -> str:
    """HMAC-SHA256 of a normalized email under the platform key, base64url without padding."""
    _check_key(key)
    if normalize_email(normalized) != normalized:
        # Hashing an unnormalized address would silently never match; fail loudly instead.
        raise ValueError("keyed_email_hash needs an address from normalize_email()")
    return _b64url(hmac.digest(key, _EMAIL_CONTEXT + normalized.encode("utf-8"), "sha256"))


def partnership_hash(key: bytes, partnership_id: str, stored_hash: str) -> str:
    """A stored keyed hash re-keyed for one partnership, so hashes cannot be joined across them."""
    return partnership_hasher(key, partnership_id)(stored_hash)


def partnership_hasher(key: bytes, partnership_id: str) -> Callable[[str], str]:
    """`partnership_hash` for one partnership, its key derived once (for re-keying many hashes)."""
    _check_key(key)
    if not partnership_id:
        raise ValueError("partnership_hash needs a partnership id and a stored hash")
    partnership_key = hmac.new(key, _PARTNERSHIP_CONTEXT + partnership_id.encode("utf-8"), hashlib.sha256).digest()

    def rekey(stored_hash: str) -> str:
        if not stored_hash:
            raise ValueError("partnership_hash needs a partnership id and a stored hash")
        return _b64url(hmac.digest(partnership_key, stored_hash.encode("utf-8"), "sha256"))

    return rekey


def _check_key(key: bytes) -> None:
    # A short key makes the hashes guessable; this is a configuration error, not user input.
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"hash key must be at least {MIN_KEY_BYTES} bytes")


def _b64url(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

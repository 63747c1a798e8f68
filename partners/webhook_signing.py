"""Standard Webhooks signatures (https://www.standardwebhooks.com), pure functions.

A message is signed as `HMAC-SHA256(secret, f"{webhook_id}.{timestamp}.{body}")`, sent base64-encoded
in `webhook-signature: v1,<signature>`; several signatures are separated by spaces (while a rotated
secret overlaps the new one, both sign). Secrets are `whsec_` followed by the base64 (standard
alphabet, padded) of 32 random bytes, as the specification's reference libraries expect — which is
why they are not made with `partners.crypto.new_secret` (URL-safe alphabet).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 32
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"


class InvalidSignature(ValueError):
    """The headers are missing, too old or too new, or no signature matches."""


def new_signing_secret() -> str:
    """A fresh `whsec_…` secret."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The raw key bytes of a `whsec_…` secret; ValueError if it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with 'whsec_'")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc
    if not 24 <= len(key) <= 64:
        raise ValueError("a webhook secret holds 24 to 64 bytes")
    return key


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of the message."""
    signed = webhook_id.encode() + b"." + str(timestamp).encode() + b"." + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def headers(signing_secrets: Sequence[str], webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret given (current first)."""
    if not signing_secrets:
        raise ValueError("at least one secret signs a message")
    return {
        HEADER_ID: webhook_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: " ".join(sign(secret, webhook_id, timestamp, body) for secret in signing_secrets),
    }


def verify(
    secret: str,
    received: Mapping[str, str],
    body: bytes,
    *,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Check a received message as a partner should; InvalidSignature when it must be refused."""
    lowered = {name.lower(): value for name, value in received.items()}
    webhook_id = lowered.get(HEADER_ID)
    timestamp_text = lowered.get(HEADER_TIMESTAMP)
    signatures = lowered.get(HEADER_SIGNATURE)
    if not (webhook_id and timestamp_text and signatures):
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(timestamp_text)
    except ValueError as exc:
        raise InvalidSignature("webhook-timestamp is not an integer") from exc
    if abs(now - timestamp) > tolerance_seconds:
        raise InvalidSignature("webhook-timestamp is outside the tolerance")
    expected = sign(secret, webhook_id, timestamp, body).encode()
    for candidate in signatures.split(" "):
        if candidate.startswith(SIGNATURE_VERSION + ",") and hmac.compare_digest(candidate.encode(), expected):
            return
    raise InvalidSignature("no signature matches")

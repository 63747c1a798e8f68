"""Secrets at rest: prefixed random tokens stored as hashes, Fernet for what we must read back,
HMAC-signed payloads for cookies and links."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

# One prefix per kind of secret, so that a leaked one is greppable and recognisable.
ACCESS_TOKEN_PREFIX = "plp_at_"
REFRESH_TOKEN_PREFIX = "plp_rt_"
CLIENT_SECRET_PREFIX = "plp_cs_"
AUTH_CODE_PREFIX = "plp_ac_"
INVITATION_PREFIX = "plp_inv_"


def new_secret(prefix: str, nbytes: int = 32) -> str:
    """A fresh random secret carrying its kind's prefix."""
    return prefix + secrets.token_urlsafe(nbytes)


def hash_secret(value: str) -> str:
    """SHA-256 of a high-entropy secret: enough for random tokens, and indexable for look-ups."""
    return hashlib.sha256(value.encode()).hexdigest()


def _fernet(key: str) -> Fernet:
    derived = hashlib.sha256(b"partnerloop-encryption|" + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(key: str, plaintext: str) -> str:
    """Encrypt a secret we will need to read back (authenticated encryption)."""
    return _fernet(key).encrypt(plaintext.encode()).decode()


def decrypt(key: str, ciphertext: str) -> str:
    """Decrypt what `encrypt` made; ValueError if it was tampered with or the key differs."""
    try:
        return _fernet(key).decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("cannot decrypt: wrong key or tampered data") from exc


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def sign(key: str, purpose: str, payload: dict[str, Any], ttl_seconds: int) -> str:
    """A signed, expiring token for `purpose` (a cookie, a link); not encrypted."""
    body = dict(payload, _p=purpose, _exp=int(time.time()) + ttl_seconds)
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(key.encode(), raw, hashlib.sha256).digest()
    return _b64(raw) + "." + _b64(mac)


def unsign(key: str, purpose: str, token: str) -> dict[str, Any] | None:
    """The payload of a token from `sign`, or None if forged, expired or for another purpose."""
    raw_b64, _, mac_b64 = token.partition(".")
    try:
        raw = _unb64(raw_b64)
        mac = _unb64(mac_b64)
        body = json.loads(raw)
    except ValueError:
        return None
    if not hmac.compare_digest(mac, hmac.new(key.encode(), raw, hashlib.sha256).digest()):
        return None
    if not isinstance(body, dict) or body.get("_p") != purpose or body.get("_exp", 0) < time.time():
        return None
    return {k: v for k, v in body.items() if not k.startswith("_")}

"""Verifying Partnerloop's webhook deliveries (Standard Webhooks: webhook-id, -timestamp, -signature)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import cast

from partnerloop_sdk.models import WebhookMessage

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300


class WebhookVerificationError(Exception):
    """The delivery is not from Partnerloop, or is a stale replay: answer 400 and do nothing."""


class WebhookVerifier:
    """Checks a delivery against your endpoint's secret(s).

    Pass several secrets while you roll yours over (the new one and the one it replaces);
    during Partnerloop's own rotation overlap the header carries a signature per secret, and
    one match is enough.
    """

    def __init__(
        self,
        secrets: str | Sequence[str],
        *,
        tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        names = [secrets] if isinstance(secrets, str) else list(secrets)
        if not names:
            raise ValueError("give at least one whsec_ secret")
        self._keys = [_key(secret) for secret in names]
        self._tolerance = tolerance_seconds
        self._clock = clock

    def verify(self, body: bytes, headers: Mapping[str, str]) -> WebhookMessage:
        """The message, if the raw body and headers carry a valid, fresh signature; else raise."""
        lowered = {name.lower(): value for name, value in headers.items()}
        msg_id = lowered.get("webhook-id")
        stamp = lowered.get("webhook-timestamp")
        signatures = lowered.get("webhook-signature")
        if not msg_id or not stamp or not signatures:
            raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
        try:
            sent_at = int(stamp)
        except ValueError as exc:
            raise WebhookVerificationError("webhook-timestamp is not a whole number of seconds") from exc
        now = self._clock()
        if sent_at < now - self._tolerance:
            raise WebhookVerificationError("webhook-timestamp is too old (a replayed delivery?)")
        if sent_at > now + self._tolerance:
            raise WebhookVerificationError("webhook-timestamp is too far in the future")
        signed = f"{msg_id}.{stamp}.".encode() + body
        expected = [hmac.new(key, signed, hashlib.sha256).digest() for key in self._keys]
        if not any(_matches(candidate, expected) for candidate in signatures.split()):
            raise WebhookVerificationError("no signature matches the endpoint's secret")
        try:
            message = json.loads(body)
        except ValueError as exc:
            raise WebhookVerificationError("the body is not JSON") from exc
        if not isinstance(message, dict) or message.get("id") != msg_id:
            raise WebhookVerificationError("the body's id differs from webhook-id")
        return cast(WebhookMessage, message)


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc


def _matches(candidate: str, expected: list[bytes]) -> bool:
    version, _, encoded = candidate.partition(",")
    if version != "v1":
        return False  # other schemes (v1a: asymmetric) are not ours to check
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return False
    return any(hmac.compare_digest(signature, digest) for digest in expected)

"""Signing and verification keys, cached per process and refreshed from the database."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from joserfc.jwk import KeySet, RSAKey
from sqlmodel import Session

from partners import signing_keys
from partners.settings import Settings

RELOAD_AFTER_SECONDS = 5.0


@dataclass
class KeyRing:
    """Per-app cache: decrypted signing keys by kid, and the published key set.

    The key set is reloaded when a token names a kid we do not know yet, so a key
    rotated by another replica is picked up on first sight.
    """

    settings: Settings
    _signing: dict[str, RSAKey] = field(default_factory=dict)
    _published: KeySet | None = None
    _loaded_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def signing_key(self, session: Session) -> RSAKey:
        """The key to sign new access tokens with (rotated when due)."""
        active = signing_keys.active_key(
            session,
            self.settings.encryption_key.get_secret_value(),
            timedelta(days=self.settings.signing_key_rotation_days),
        )
        with self._lock:
            key = self._signing.get(active.kid)
            if key is None:
                key = RSAKey.import_key(active.private_jwk)
                self._signing = {active.kid: key}
            return key

    def verification_keys(self, session: Session, kid: str | None) -> KeySet:
        """Public keys to verify with; reloaded if `kid` is not among them."""
        published = self.cached_verification_keys(kid)
        if published is None:
            published = KeySet.import_key_set({"keys": self.published(session)})
            with self._lock:
                self._published, self._loaded_at = published, time.monotonic()
        return published

    def cached_verification_keys(self, kid: str | None) -> KeySet | None:
        """The keys in memory to verify a token naming `kid`; None when they must be (re)loaded first."""
        with self._lock:
            published, loaded_at = self._published, self._loaded_at
        unknown = kid is not None and published is not None and not _has_kid(published, kid)
        # Reload for an unknown kid at most every few seconds: forged kids must not cost a query each.
        if published is None or (unknown and time.monotonic() - loaded_at > RELOAD_AFTER_SECONDS):
            return None
        return published

    def published(self, session: Session) -> list[dict[str, Any]]:
        """The JWKS document's keys: public parts only."""
        return signing_keys.published_keys(session, timedelta(seconds=self.settings.access_token_ttl_seconds))


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)

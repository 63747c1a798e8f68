"""The rotating key set that signs access tokens; private keys encrypted at rest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc.jwk import RSAKey
from sqlalchemy import Text, update
from sqlmodel import Field, Session, SQLModel, col, select

from partners.crypto import decrypt, encrypt
from partners.db import UTCDateTime, utcnow

ALGORITHM = "RS256"


class SigningKey(SQLModel, table=True):
    __tablename__ = "signing_keys"

    kid: str = Field(primary_key=True, max_length=100)
    public_jwk: str = Field(sa_type=Text)
    private_jwk_encrypted: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    private_jwk: dict[str, Any]


def rotate(session: Session, encryption_key: str) -> SigningKey:
    """Retire the signing key(s) in use and start signing with a new one."""
    key = RSAKey.generate_key(2048, private=True)
    kid = key.thumbprint()
    public = key.as_dict(private=False) | {"kid": kid, "use": "sig", "alg": ALGORITHM}
    private = key.as_dict(private=True) | {"kid": kid, "alg": ALGORITHM}
    now = utcnow()
    session.exec(update(SigningKey).where(col(SigningKey.retired_at).is_(None)).values(retired_at=now))
    stored = SigningKey(
        kid=kid, public_jwk=json.dumps(public), private_jwk_encrypted=encrypt(encryption_key, json.dumps(private))
    )
    session.add(stored)
    session.flush()
    return stored


def active_key(session: Session, encryption_key: str, rotate_after: timedelta) -> ActiveKey:
    """The key to sign with now; makes a new one when there is none or it is due for rotation."""
    current = session.exec(
        select(SigningKey).where(col(SigningKey.retired_at).is_(None)).order_by(col(SigningKey.created_at).desc())
    ).first()
    if current is None or current.created_at <= utcnow() - rotate_after:
        current = rotate(session, encryption_key)
    return ActiveKey(current.kid, json.loads(decrypt(encryption_key, current.private_jwk_encrypted)))


def unreadable_keys(session: Session, encryption_key: str) -> list[str]:
    """Kids of unretired signing keys this encryption key cannot decrypt (the key was changed)."""
    unreadable = []
    for stored in session.exec(select(SigningKey).where(col(SigningKey.retired_at).is_(None))).all():
        try:
            decrypt(encryption_key, stored.private_jwk_encrypted)
        except ValueError:
            unreadable.append(stored.kid)
    return unreadable


def published_keys(session: Session, token_ttl: timedelta) -> list[dict[str, Any]]:
    """Public keys only: the active ones, and retired ones until tokens they signed have expired."""
    keep_since = utcnow() - token_ttl - timedelta(minutes=1)
    rows = session.exec(
        select(SigningKey)
        .where(col(SigningKey.retired_at).is_(None) | (col(SigningKey.retired_at) > keep_since))
        .order_by(col(SigningKey.created_at).desc())
    ).all()
    return [json.loads(row.public_jwk) for row in rows]

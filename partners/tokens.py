"""Token families, authorization codes and refresh tokens; all secrets stored only as hashes.

A family groups every token descended from one authorization (one code, or one client
credentials request). Revoking the family revokes them all: access tokens carry the
family id (`sid`) and are refused once it is revoked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, update
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col, select

from partners.crypto import AUTH_CODE_PREFIX, hash_secret, new_secret
from partners.db import UTCDateTime, utcnow
from partners.ids import new_id

CODE_TTL = timedelta(minutes=2)


class TokenFamily(SQLModel, table=True):
    __tablename__ = "token_families"

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(default_factory=lambda: new_id("fam"), primary_key=True, max_length=40, unique=True)
    client_id: str = Field(max_length=40, index=True)
    user_id: str | None = Field(default=None, max_length=40, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_reason: str | None = Field(default=None, max_length=100)


class AuthorizationCode(SQLModel, table=True):
    __tablename__ = "authorization_codes"

    code_hash: str = Field(primary_key=True, max_length=64)
    tenant_id: str = Field(max_length=40, foreign_key="tenants.id", ondelete="CASCADE", index=True)
    family_id: str = Field(max_length=40)
    client_id: str = Field(max_length=40)
    user_id: str = Field(max_length=40)
    redirect_uri: str = Field(max_length=2000)
    scope: str = Field(max_length=1000)
    code_challenge: str = Field(max_length=128)
    code_challenge_method: str = Field(max_length=10)
    auth_time: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_tokens"

    token_hash: str = Field(primary_key=True, max_length=64)
    tenant_id: str = Field(max_length=40, foreign_key="tenants.id", ondelete="CASCADE", index=True)
    family_id: str = Field(max_length=40, index=True)
    client_id: str = Field(max_length=40)
    user_id: str = Field(max_length=40)
    scope: str = Field(max_length=1000)
    auth_time: datetime = Field(sa_type=UTCDateTime)
    issued_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


def start_family(session: Session, tenant_id: str, client_id: str, user_id: str | None) -> TokenFamily:
    """A new family for one authorization."""
    family = TokenFamily(tenant_id=tenant_id, client_id=client_id, user_id=user_id)
    session.add(family)
    session.flush()
    return family


def revoke_family(session: Session, family_id: str, reason: str) -> None:
    """Revoke every token of a family (no-op if already revoked)."""
    session.exec(
        update(TokenFamily)
        .where(col(TokenFamily.id) == family_id, col(TokenFamily.revoked_at).is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


def revoke_families_of(
    session: Session, tenant_id: str, *, client_id: str | None = None, user_id: str | None = None
) -> None:
    """Revoke every family of a client or of a user of this tenant."""
    query = update(TokenFamily).where(col(TokenFamily.tenant_id) == tenant_id, col(TokenFamily.revoked_at).is_(None))
    if client_id is not None:
        query = query.where(col(TokenFamily.client_id) == client_id)
    if user_id is not None:
        query = query.where(col(TokenFamily.user_id) == user_id)
    session.exec(query.values(revoked_at=utcnow(), revoked_reason="revoked"))


def family_is_active(session: Session, family_id: str) -> bool:
    """Whether tokens of this family may still be used."""
    # Asked on every authenticated request: one column, no ORM object.
    return family_active(session.execute(FAMILY_QUERY, {"family": family_id}).first())


def family_active(row: Sequence[object] | None) -> bool:
    """Whether `FAMILY_QUERY`'s row says the family may still be used (no row: unknown family)."""
    return row is not None and row[0] is None


def _family_query() -> Select[tuple[datetime | None]]:
    table = TokenFamily.__table__  # type: ignore[attr-defined]
    return sa_select(table.c.revoked_at).where(table.c.id == bindparam("family"))


# Built once (compiled once, prepared by psycopg): the revocation check of every authenticated request.
FAMILY_QUERY = _family_query()


@dataclass(frozen=True)
class CodeRequest:
    tenant_id: str
    client_id: str
    user_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    auth_time: datetime


def new_code() -> str:
    """A fresh authorization code."""
    return new_secret(AUTH_CODE_PREFIX)


def save_code(session: Session, code: str, request: CodeRequest) -> None:
    """Store an authorization code (as a hash), starting the token family it will issue into."""
    family = start_family(session, request.tenant_id, request.client_id, request.user_id)
    session.add(
        AuthorizationCode(
            code_hash=hash_secret(code),
            family_id=family.id,
            expires_at=utcnow() + CODE_TTL,
            **request.__dict__,
        )
    )
    session.flush()


def find_code(session: Session, code: str, client_id: str) -> AuthorizationCode | None:
    """The code, if it exists for this client. A second use revokes all it issued and returns None."""
    stored = session.exec(
        select(AuthorizationCode).where(col(AuthorizationCode.code_hash) == hash_secret(code)).with_for_update()
    ).first()
    if stored is None or stored.client_id != client_id:
        return None
    if stored.used_at is not None:
        revoke_family(session, stored.family_id, "authorization code reused")
        return None
    if stored.expires_at <= utcnow():
        return None
    return stored


def mark_code_used(session: Session, code: AuthorizationCode) -> None:
    """A code is good for one token request."""
    code.used_at = utcnow()
    session.add(code)
    session.flush()


def issue_refresh_token(
    session: Session,
    *,
    token: str,
    tenant_id: str,
    family_id: str,
    client_id: str,
    user_id: str,
    scope: str,
    auth_time: datetime,
    ttl: timedelta,
) -> None:
    """Store a new refresh token (as a hash) in a family."""
    session.add(
        RefreshToken(
            token_hash=hash_secret(token),
            tenant_id=tenant_id,
            family_id=family_id,
            client_id=client_id,
            user_id=user_id,
            scope=scope,
            auth_time=auth_time,
            expires_at=utcnow() + ttl,
        )
    )
    session.flush()


def peek_refresh_token(session: Session, token: str) -> RefreshToken | None:
    """The stored refresh token, whatever its state, without side effects (revocation, introspection)."""
    return session.get(RefreshToken, hash_secret(token))


def find_refresh_token(session: Session, token: str) -> RefreshToken | None:
    """A usable refresh token. Presenting one already rotated revokes its whole family."""
    stored = session.exec(
        select(RefreshToken).where(col(RefreshToken.token_hash) == hash_secret(token)).with_for_update()
    ).first()
    if stored is None:
        return None
    if stored.used_at is not None:
        revoke_family(session, stored.family_id, "refresh token reused")
        return None
    if stored.expires_at <= utcnow() or not family_is_active(session, stored.family_id):
        return None
    return stored


def mark_refresh_used(session: Session, token: RefreshToken) -> None:
    """A refresh token is rotated on every use."""
    token.used_at = utcnow()
    session.add(token)
    session.flush()

"""API clients: confidential clients of partner backends and sync jobs, and the docs UI's public client."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

from sqlmodel import Field, Session, SQLModel, col, select

from partners import scopes as scope_names
from partners.crypto import CLIENT_SECRET_PREFIX, hash_secret, new_secret
from partners.db import UTCDateTime, get_owned, keyset_page, owned, utcnow
from partners.errors import Forbidden, Invalid
from partners.ids import new_id

DOCS_CLIENT_ID = "partnerloop-docs"
DOCS_REDIRECT_PATH = "/docs/oauth2-redirect"
_LOOPBACK = ("127.0.0.1", "localhost")


class ClientKind(StrEnum):
    confidential = "confidential"
    public = "public"


class ApiClient(SQLModel, table=True):
    __tablename__ = "api_clients"

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    # Client ids are globally unique: the token endpoint learns the tenant from the client.
    id: str = Field(default_factory=lambda: new_id("cli"), primary_key=True, max_length=40, unique=True)
    name: str = Field(max_length=200)
    scope: str = Field(max_length=1000)
    secret_hash: str = Field(max_length=64)
    created_by: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    rotated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


@dataclass(frozen=True)
class ClientView:
    """What the OAuth server needs to know about a client, built-in or stored."""

    client_id: str
    tenant_id: str | None
    kind: ClientKind
    scope: frozenset[str]
    grant_types: frozenset[str]
    redirect_uris: tuple[str, ...]
    secret_hash: str | None

    def check_secret(self, secret: str) -> bool:
        """Constant-time comparison against the stored hash."""
        return self.secret_hash is not None and hmac.compare_digest(self.secret_hash, hash_secret(secret))


def _loopback_aliases(base_url: str) -> list[str]:
    """A local base URL as a browser may spell it: localhost and 127.0.0.1 are one machine."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK:
        return [base_url]
    port = f":{parts.port}" if parts.port else ""
    return [urlunsplit((parts.scheme, host + port, parts.path, "", "")) for host in _LOOPBACK]


def docs_client(base_url: str) -> ClientView:
    """The built-in public client of the interactive docs: code + PKCE, exact redirect URIs only."""
    base = base_url.rstrip("/")
    return ClientView(
        client_id=DOCS_CLIENT_ID,
        tenant_id=None,
        kind=ClientKind.public,
        scope=frozenset(scope_names.ALL),
        grant_types=frozenset({"authorization_code", "refresh_token"}),
        redirect_uris=tuple(alias + DOCS_REDIRECT_PATH for alias in _loopback_aliases(base)),
        secret_hash=None,
    )


def find_client(session: Session, client_id: str, base_url: str) -> ClientView | None:
    """The active client with this id, or None."""
    if client_id == DOCS_CLIENT_ID:
        return docs_client(base_url)
    stored = session.exec(select(ApiClient).where(col(ApiClient.id) == client_id)).first()
    if stored is None or stored.revoked_at is not None:
        return None
    return ClientView(
        client_id=stored.id,
        tenant_id=stored.tenant_id,
        kind=ClientKind.confidential,
        scope=scope_names.parse(stored.scope),
        grant_types=frozenset({"client_credentials"}),
        redirect_uris=(),
        secret_hash=stored.secret_hash,
    )


def _checked_scope(requested: Sequence[str], grantable: frozenset[str]) -> str:
    unknown = sorted(set(requested) - set(scope_names.ALL))
    if unknown:
        raise Invalid(f"Unknown scope '{unknown[0]}'.", param="scopes")
    beyond = sorted(set(requested) - grantable)
    if beyond:
        raise Invalid(f"You may not grant '{beyond[0]}' to a client.", param="scopes")
    if not requested:
        raise Invalid("Give the client at least one scope.", param="scopes")
    return scope_names.render(set(requested))


@dataclass(frozen=True)
class IssuedClient:
    client: ApiClient
    secret: str


def create_client(
    session: Session, tenant_id: str, name: str, requested: Sequence[str], grantable: frozenset[str], created_by: str
) -> IssuedClient:
    """A confidential client; its secret is returned here once and stored only as a hash."""
    secret = new_secret(CLIENT_SECRET_PREFIX)
    client = ApiClient(
        tenant_id=tenant_id,
        name=name.strip(),
        scope=_checked_scope(requested, grantable),
        secret_hash=hash_secret(secret),
        created_by=created_by,
    )
    session.add(client)
    session.flush()
    return IssuedClient(client, secret)


def get_client(session: Session, tenant_id: str, client_id: str) -> ApiClient:
    """One of the tenant's clients."""
    return get_owned(session, ApiClient, tenant_id, client_id)


def list_clients(session: Session, tenant_id: str, after: str | None, limit: int) -> tuple[Sequence[ApiClient], bool]:
    """The tenant's clients, a page at a time."""
    return keyset_page(session, owned(ApiClient, tenant_id), ApiClient, after, limit)


def rotate_secret(session: Session, tenant_id: str, client_id: str, grantable: frozenset[str]) -> IssuedClient:
    """Replace the client's secret; the old one stops working at once.

    Whoever rotates learns the new secret, so, as when creating a client, they must hold every
    scope it does (`grantable`: the caller's scopes); otherwise rotating is a way to more power.
    """
    client = get_client(session, tenant_id, client_id)
    if client.revoked_at is not None:
        raise Invalid("This client is revoked; create a new one.", param="client_id")
    beyond = sorted(scope_names.parse(client.scope) - grantable)
    if beyond:
        raise Forbidden(
            f"This client holds '{beyond[0]}', which you do not; only someone holding all its scopes may rotate it.",
            param="client_id",
        )
    secret = new_secret(CLIENT_SECRET_PREFIX)
    client.secret_hash = hash_secret(secret)
    client.rotated_at = utcnow()
    session.add(client)
    session.flush()
    return IssuedClient(client, secret)


def revoke_client(session: Session, tenant_id: str, client_id: str) -> ApiClient:
    """Revoke the client for good (its tokens are revoked by the caller through `tokens`)."""
    client = get_client(session, tenant_id, client_id)
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        session.add(client)
        session.flush()
    return client

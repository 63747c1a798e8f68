"""Token revocation (RFC 7009) and introspection (RFC 7662) on authlib's endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from api.auth import access_tokens
from api.auth.adapters import Client
from partners import tokens
from partners.crypto import REFRESH_TOKEN_PREFIX
from partners.db import utcnow

if TYPE_CHECKING:
    from api.auth.server import Server


@dataclass(frozen=True)
class PresentedToken:
    """A token presented to revocation or introspection, as we understand it."""

    tenant_id: str
    family_id: str
    client_id: str
    scope: str
    subject: str
    token_type: str
    expires_at: int
    issued_at: int
    active: bool

    def check_client(self, client: Client) -> bool:
        return client.get_client_id() == self.client_id

    def is_expired(self) -> bool:
        return self.expires_at <= int(utcnow().timestamp())

    def is_revoked(self) -> bool:
        return not self.active


def _present(server: Server, token: str, hint: str | None) -> PresentedToken | None:
    session = server.session
    if not token.startswith(REFRESH_TOKEN_PREFIX):
        claims = access_tokens.decode(session, server.keyring, server.settings.issuer, token)
        if claims is None:
            return None
        return PresentedToken(
            claims.tenant_id,
            claims.family_id,
            claims.client_id,
            " ".join(sorted(claims.scopes)),
            claims.subject,
            "access_token",
            claims.expires_at,
            claims.issued_at,
            True,
        )
    row = tokens.peek_refresh_token(session, token)
    if row is None:
        return None
    return PresentedToken(
        row.tenant_id,
        row.family_id,
        row.client_id,
        row.scope,
        row.user_id,
        "refresh_token",
        int(row.expires_at.timestamp()),
        int(row.issued_at.timestamp()),
        row.used_at is None and tokens.family_is_active(session, row.family_id),
    )


def revocation_endpoint(server: Server) -> RevocationEndpoint:
    class Revocation(RevocationEndpoint):  # type: ignore[misc]
        CLIENT_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"]

        def query_token(self, token_string: str, token_type_hint: str | None) -> PresentedToken | None:
            return _present(server, token_string, token_type_hint)

        def revoke_token(self, token: PresentedToken, request: OAuth2Request) -> None:
            tokens.revoke_family(server.session, token.family_id, "revoked by client")

    return Revocation(server)


def introspection_endpoint(server: Server) -> IntrospectionEndpoint:
    class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
        CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

        def query_token(self, token_string: str, token_type_hint: str | None) -> PresentedToken | None:
            return _present(server, token_string, token_type_hint)

        def check_permission(self, token: PresentedToken, client: Client, request: OAuth2Request) -> bool:
            # A tenant's client may introspect its own tenant's tokens, never another's.
            return client.view.tenant_id == token.tenant_id

        def introspect_token(self, token: PresentedToken) -> dict[str, Any]:
            return {
                "active": True,
                "client_id": token.client_id,
                "token_type": token.token_type,
                "scope": token.scope,
                "sub": token.subject,
                "exp": token.expires_at,
                "iat": token.issued_at,
                "iss": server.settings.issuer,
                "tid": token.tenant_id,
            }

    return Introspection(server)

"""authlib's AuthorizationServer adapted to Starlette requests and our SQLModel tables.

authlib is synchronous: routes read the form first (`await request.form()`), wrap the
request, and run the server in the threadpool with the request's session.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import grants
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlmodel import Session

from api.auth import access_tokens
from api.auth.adapters import AuthorizedUser, Client, Code, Refresh, S256Only, StarletteOAuth2Request, role_scopes
from api.auth.keys import KeyRing
from api.auth.token_endpoints import introspection_endpoint, revocation_endpoint
from partners import scopes as scope_names
from partners import staff, tokens
from partners.clients import find_client
from partners.crypto import REFRESH_TOKEN_PREFIX, new_secret
from partners.db import utcnow
from partners.settings import Settings


class Server(AuthorizationServer):  # type: ignore[misc]
    """One request's authorization server, bound to its database session."""

    def __init__(self, session: Session, settings: Settings, keyring: KeyRing) -> None:
        super().__init__(scopes_supported=[str(s) for s in scope_names.ALL])
        self.session = session
        self.settings = settings
        self.keyring = keyring
        self.register_token_generator("default", self._generate_token)
        self.register_grant(_code_grant(self), [S256Only(required=True)])
        self.register_grant(_refresh_grant(self))
        self.register_grant(_ClientCredentialsGrant)
        self.register_endpoint(revocation_endpoint(self))
        self.register_endpoint(introspection_endpoint(self))

    def query_client(self, client_id: str) -> Client | None:
        view = find_client(self.session, client_id, self.settings.base_url)
        return Client(view) if view is not None else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        # Access tokens are self-contained JWTs; only refresh tokens are stored (hashed).
        user: AuthorizedUser | None = request.user
        if "refresh_token" in token and user is not None:
            tokens.issue_refresh_token(
                self.session,
                token=token["refresh_token"],
                tenant_id=user.tenant_id,
                family_id=user.family_id,
                client_id=request.client.get_client_id(),
                user_id=user.user_id,
                scope=token["scope"],
                auth_time=user.auth_time,
                ttl=self._refresh_ttl(user.auth_time),
            )

    def _refresh_ttl(self, auth_time: datetime) -> timedelta:
        # Rotation does not extend a session forever: it ends a fixed time after the login.
        limit = timedelta(seconds=self.settings.refresh_token_ttl_seconds)
        return min(limit, auth_time + limit - utcnow())

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def create_oauth2_request(self, request: StarletteOAuth2Request) -> StarletteOAuth2Request:
        return request

    def create_json_request(self, request: StarletteOAuth2Request) -> StarletteOAuth2Request:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        header_map = dict(headers)
        if status == 302:
            return RedirectResponse(header_map["Location"], status_code=302)
        header_map.update({"Cache-Control": "no-store", "Pragma": "no-cache"})
        header_map.pop("Content-Type", None)
        return JSONResponse(body, status_code=status, headers=header_map)

    def _generate_token(
        self,
        grant_type: str,
        client: Client,
        user: AuthorizedUser | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        # Never more than the client may hold (authlib leaves this to us for client credentials).
        scope = client.get_allowed_scope(scope)
        if user is not None:
            scope = scope_names.render(set(scope_names.parse(scope) & user.role_scopes))
        tenant_id = user.tenant_id if user else client.view.tenant_id
        assert tenant_id is not None, "a client-credentials client always belongs to a tenant"
        family_id = user.family_id if user else tokens.start_family(self.session, tenant_id, client.client_id, None).id
        ttl = self.settings.access_token_ttl_seconds
        claims = access_tokens.new_claims(
            tenant_id=tenant_id,
            client_id=client.client_id,
            user_id=user.user_id if user else None,
            family_id=family_id,
            scopes=scope_names.parse(scope),
            ttl=ttl,
        )
        key = self.keyring.signing_key(self.session)
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": access_tokens.encode(key, self.settings.issuer, claims),
            "expires_in": ttl,
            "scope": scope or "",
        }
        if include_refresh_token and user is not None:
            token["refresh_token"] = new_secret(REFRESH_TOKEN_PREFIX)
        return token


class _ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


def _authorized(session: Session, user_id: str, family_id: str, auth_time: datetime) -> AuthorizedUser | None:
    user = staff.find_active_user(session, user_id)
    if user is None:
        return None
    return AuthorizedUser(user.id, user.tenant_id, family_id, auth_time, role_scopes(user))


def _code_grant(server: Server) -> type[grants.AuthorizationCodeGrant]:
    session = server.session

    class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

        def generate_authorization_code(self) -> str:
            return tokens.new_code()

        def save_authorization_code(self, code: str, request: StarletteOAuth2Request) -> None:
            user: AuthorizedUser = request.user
            data = request.payload.data
            tokens.save_code(
                session,
                code,
                tokens.CodeRequest(
                    tenant_id=user.tenant_id,
                    client_id=request.client.get_client_id(),
                    user_id=user.user_id,
                    redirect_uri=data.get("redirect_uri", ""),
                    scope=request.scope or "",
                    code_challenge=data["code_challenge"],
                    code_challenge_method=data["code_challenge_method"],
                    auth_time=user.auth_time,
                ),
            )

        def query_authorization_code(self, code: str, client: Client) -> Code | None:
            row = tokens.find_code(session, code, client.get_client_id())
            return Code(row) if row is not None else None

        def delete_authorization_code(self, authorization_code: Code) -> None:
            tokens.mark_code_used(session, authorization_code.row)

        def authenticate_user(self, authorization_code: Code) -> AuthorizedUser | None:
            row = authorization_code.row
            return _authorized(session, row.user_id, row.family_id, row.auth_time)

    return CodeGrant


def _refresh_grant(server: Server) -> type[grants.RefreshTokenGrant]:
    session = server.session

    class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = ["none"]
        INCLUDE_NEW_REFRESH_TOKEN = True

        def authenticate_refresh_token(self, refresh_token: str) -> Refresh | None:
            row = tokens.find_refresh_token(session, refresh_token)
            return Refresh(row) if row is not None else None

        def authenticate_user(self, refresh_token: Refresh) -> AuthorizedUser | None:
            row = refresh_token.row
            return _authorized(session, row.user_id, row.family_id, row.auth_time)

        def revoke_old_credential(self, refresh_token: Refresh) -> None:
            tokens.mark_refresh_used(session, refresh_token.row)

    return RefreshGrant

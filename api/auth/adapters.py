"""authlib's views of our requests, clients, codes and refresh tokens, and PKCE S256-only."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Payload, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge
from starlette.datastructures import FormData, Headers, QueryParams

from partners import scopes as scope_names
from partners import staff, tokens
from partners.clients import ClientKind, ClientView
from partners.db import utcnow


class Payload(OAuth2Payload):  # type: ignore[misc]
    """Query and form parameters of a Starlette request, as authlib reads them."""

    def __init__(self, query: QueryParams, form: FormData | None) -> None:
        self._multi: list[tuple[str, str]] = list(query.multi_items())
        if form is not None:
            self._multi += [(k, v) for k, v in form.multi_items() if isinstance(v, str)]

    @property
    def data(self) -> dict[str, str]:
        return dict(self._multi)

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        values: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in self._multi:
            values[key].append(value)
        return values


class StarletteOAuth2Request(OAuth2Request):  # type: ignore[misc]
    """An authlib request built from an already-read Starlette request."""

    def __init__(self, method: str, url: str, headers: Headers, query: QueryParams, form: FormData | None):
        super().__init__(method=method, uri=url, headers=headers)
        self.payload = Payload(query, form)
        self._args = dict(query)
        self._form = {k: v for k, v in (form or {}).items() if isinstance(v, str)}

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class Client(ClientMixin):  # type: ignore[misc]
    """authlib's view of one of our clients."""

    def __init__(self, view: ClientView) -> None:
        self.view = view
        self.client_id = view.client_id

    def get_client_id(self) -> str:
        return self.view.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.view.redirect_uris[0] if self.view.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        requested = scope_names.parse(scope)
        return scope_names.render(set(self.view.scope & requested if requested else self.view.scope))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string match: no trailing slash, extra query or other scheme gets through.
        return redirect_uri in self.view.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.view.check_secret(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.view.kind is ClientKind.public:
            return method == "none"
        return method in {"client_secret_basic", "client_secret_post"}

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.view.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.view.grant_types


@dataclass(frozen=True)
class AuthorizedUser:
    """A staff member on whose behalf a client acts, within one token family."""

    user_id: str
    tenant_id: str
    family_id: str
    auth_time: datetime
    role_scopes: frozenset[str]

    def get_user_id(self) -> str:
        return self.user_id


class Code:
    """authlib's view of a stored authorization code."""

    def __init__(self, row: tokens.AuthorizationCode) -> None:
        self.row = row

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope


class Refresh:
    """authlib's view of a stored refresh token."""

    def __init__(self, row: tokens.RefreshToken) -> None:
        self.row = row

    def check_client(self, client: Client) -> bool:
        return client.get_client_id() == self.row.client_id

    def get_scope(self) -> str:
        return self.row.scope

    def is_expired(self) -> bool:
        return self.row.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.row.used_at is not None


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256, required of every client; `plain` and a missing method are refused."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: grants.AuthorizationCodeGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is accepted.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: grants.AuthorizationCodeGrant, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)

    def get_authorization_code_challenge(self, authorization_code: Code) -> str:
        return authorization_code.row.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: Code) -> str:
        return authorization_code.row.code_challenge_method


def role_scopes(user: staff.StaffUser) -> frozenset[str]:
    """What a staff member's role allows, now (a role changed since login narrows refreshed tokens)."""
    return frozenset(str(s) for s in scope_names.ROLE_SCOPES[user.role])


def login_time(timestamp: int) -> datetime:
    """A login cookie's epoch seconds as a UTC datetime."""
    return datetime.fromtimestamp(timestamp, UTC)

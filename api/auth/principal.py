"""The caller of a request, resolved once from its bearer token: tenant, client or user, scopes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6750 import InvalidTokenError
from fastapi import Depends, Request, Security
from fastapi.openapi.models import OAuthFlowAuthorizationCode, OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2, SecurityScopes
from sqlmodel import Session

from api import ratelimit
from api.auth import protector
from api.auth.access_tokens import AccessClaims
from api.auth.keys import KeyRing
from api.deps import SessionDep, SettingsDep
from api.errors import ApiProblem
from api.middleware import note_tenant
from api.openapi import ANY_OF_SCOPES
from partners.scopes import DESCRIPTIONS, Scope
from partners.settings import Settings

REALM = 'Bearer realm="partnerloop"'
_SCOPES = {str(scope): text for scope, text in DESCRIPTIONS.items()}

oauth2_scheme = OAuth2(
    flows=OAuthFlows(
        authorizationCode=OAuthFlowAuthorizationCode(
            authorizationUrl="/oauth/authorize", tokenUrl="/oauth/token", refreshUrl="/oauth/token", scopes=_SCOPES
        ),
        clientCredentials=OAuthFlowClientCredentials(tokenUrl="/oauth/token", scopes=_SCOPES),
    ),
    scheme_name="partnerloop",
    description="Staff log in with authorization code + PKCE; shop backends use client credentials.",
    auto_error=False,
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: always a tenant and a client, sometimes a staff user acting through it."""

    tenant_id: str
    client_id: str
    user_id: str | None
    scopes: frozenset[str]
    family_id: str

    @property
    def caller_id(self) -> str:
        """The user if there is one, else the client: what idempotency keys are scoped to."""
        return self.user_id or self.client_id


async def get_keyring(request: Request) -> KeyRing:
    """The app's key cache."""
    keyring: KeyRing = request.app.state.keyring
    return keyring


def _unauthorized(detail: str, *, token_sent: bool = True) -> ApiProblem:
    # RFC 6750 §3.1: a request that carried no token gets the challenge without an error code.
    challenge = f'{REALM}, error="invalid_token"' if token_sent else REALM
    return ApiProblem(401, "invalid_token", "Unauthorized", detail, headers={"WWW-Authenticate": challenge})


def current_principal(
    security_scopes: SecurityScopes,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    keyring: Annotated[KeyRing, Depends(get_keyring)],
    authorization: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    """The caller, with the scopes the route declares checked; 401 or 403 otherwise."""
    # The token is verified once per request (the idempotency guard may have done it already),
    # the scopes each time.
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        principal = verified(request, session, settings, keyring, authorization)
    check_scopes(principal, security_scopes.scopes)
    return principal


def check_scopes(principal: Principal, scopes: Sequence[str]) -> None:
    """403 unless the principal's token carries every scope the route declares."""
    if not set(scopes) <= principal.scopes:
        needed = " ".join(scopes)
        raise insufficient_scope(needed, f"This route needs the scope '{needed}', which the token does not carry.")


def insufficient_scope(needed: str, detail: str) -> ApiProblem:
    """403 with the RFC 6750 challenge naming the scope(s) the token lacks."""
    return ApiProblem(
        403,
        "insufficient_scope",
        "Insufficient scope",
        detail,
        headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{needed}"'},
    )


def verified(
    request: Request, session: Session, settings: Settings, keyring: KeyRing, authorization: str | None
) -> Principal:
    """The request's caller from its bearer token, fully checked (revocation too), counted by the rate
    limiter and remembered on the request; 401 otherwise."""
    claims = claims_or_problem(
        lambda: protector.validate(session, keyring, settings.issuer, request.headers, []), authorization
    )
    principal = remember(request, claims)
    ratelimit.check_caller(request, principal.tenant_id, principal.caller_id)
    return principal


def claims_or_problem(validate: Callable[[], AccessClaims], authorization: str | None) -> AccessClaims:
    """The claims `validate` finds, or the 401 problem for what authlib refused."""
    scheme = (authorization or "").partition(" ")[0].lower()
    try:
        return validate()
    except InvalidTokenError as exc:
        raise _unauthorized(
            "The access token is invalid, expired or revoked; get a new one from /oauth/token."
        ) from exc
    except OAuth2Error as exc:  # no Authorization header, or another scheme than Bearer
        raise _unauthorized(
            "Send an access token as `Authorization: Bearer <token>`; see /docs for how to get one.",
            token_sent=scheme == "bearer",
        ) from exc


def revoked() -> ApiProblem:
    """The 401 for a token whose family was revoked (found after its signature was checked)."""
    return _unauthorized("The access token is invalid, expired or revoked; get a new one from /oauth/token.")


def remember(request: Request, claims: AccessClaims) -> Principal:
    """The principal of verified claims, kept on the request (the token is verified once per request)."""
    principal = Principal(claims.tenant_id, claims.client_id, claims.user_id, claims.scopes, claims.family_id)
    request.state.principal = principal
    note_tenant(principal.tenant_id)
    return principal


@dataclass(frozen=True)
class AnyScope:
    """A dependency for routes that any one of several scopes opens (each shows what it covers).

    FastAPI can only declare "all of these scopes"; `openapi` declares the alternatives instead
    (see api/openapi.py), so the document says what the check enforces.
    """

    scopes: tuple[Scope, ...]

    def __call__(self, principal: Annotated[Principal, Security(current_principal)]) -> Principal:
        if not {str(s) for s in self.scopes} & principal.scopes:
            names = [str(s) for s in self.scopes]
            raise insufficient_scope(
                " ".join(names), f"This route needs one of the scopes {', '.join(names)}; the token carries none."
            )
        return principal

    @property
    def openapi(self) -> dict[str, Any]:
        """The route's `openapi_extra`: one security alternative per scope."""
        return {ANY_OF_SCOPES: [str(s) for s in self.scopes]}


def _requires(*scopes: Scope) -> object:
    return Security(current_principal, scopes=[str(s) for s in scopes])


# One alias per scope, read by routes: `def handler(caller: OffersWrite) -> ...`.
Authenticated = Annotated[Principal, _requires()]
ProfileRead = Annotated[Principal, _requires(Scope.profile_read)]
ProfileWrite = Annotated[Principal, _requires(Scope.profile_write)]
StaffRead = Annotated[Principal, _requires(Scope.staff_read)]
StaffWrite = Annotated[Principal, _requires(Scope.staff_write)]
ClientsWrite = Annotated[Principal, _requires(Scope.clients_write)]
PartnersRead = Annotated[Principal, _requires(Scope.partners_read)]
PartnershipsWrite = Annotated[Principal, _requires(Scope.partnerships_write)]
OffersRead = Annotated[Principal, _requires(Scope.offers_read)]
OffersWrite = Annotated[Principal, _requires(Scope.offers_write)]
CustomersWrite = Annotated[Principal, _requires(Scope.customers_write)]
ConsentsWrite = Annotated[Principal, _requires(Scope.consents_write)]
WebhooksWrite = Annotated[Principal, _requires(Scope.webhooks_write)]
ExchangeRead = Annotated[Principal, _requires(Scope.exchange_read)]
RedemptionsWrite = Annotated[Principal, _requires(Scope.redemptions_write)]
ContactsRead = Annotated[Principal, _requires(Scope.contacts_read)]
ReportsRead = Annotated[Principal, _requires(Scope.reports_read)]
SurveysRead = Annotated[Principal, _requires(Scope.surveys_read)]
SurveysWrite = Annotated[Principal, _requires(Scope.surveys_write)]

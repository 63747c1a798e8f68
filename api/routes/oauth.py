"""The OAuth2 endpoints: authorize, token, revoke, introspect, and the server's metadata and keys."""

from __future__ import annotations

import html
from typing import Annotated, Any
from urllib.parse import quote

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.auth.adapters import AuthorizedUser, StarletteOAuth2Request, login_time, role_scopes
from api.auth.keys import KeyRing
from api.auth.login import read_login
from api.auth.principal import get_keyring
from api.auth.server import Server
from api.deps import SessionDep, SettingsDep
from partners import scopes as scope_names
from partners import staff
from partners.settings import Settings

router = APIRouter(tags=["oauth"])

KeyRingDep = Annotated[KeyRing, Depends(get_keyring)]
FORM = {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}
OAUTH_ERROR = {"description": "RFC 6749 error", "content": {"application/json": {}}}


class _NonAsciiParameter(Exception):
    """An OAuth parameter outside printable ASCII (RFC 6749 Appendix A): authlib cannot even word the error."""

    def __init__(self, name: str) -> None:
        super().__init__(f"The parameter '{name}' must be printable ASCII.")


def _printable_ascii(value: object) -> bool:
    return isinstance(value, str) and all(" " <= ch <= "~" for ch in value)


async def _oauth_request(request: Request) -> StarletteOAuth2Request:
    form = await request.form() if request.method == "POST" else None
    for name, value in [*request.query_params.multi_items(), *(form.multi_items() if form else [])]:
        if not _printable_ascii(value):
            raise _NonAsciiParameter(name if _printable_ascii(name) else "?")
    return StarletteOAuth2Request(request.method, str(request.url), request.headers, request.query_params, form)


def _invalid_request(exc: _NonAsciiParameter) -> JSONResponse:
    return JSONResponse(
        {"error": "invalid_request", "error_description": str(exc)},
        status_code=400,
        headers={"Cache-Control": "no-store"},
    )


def _error_page(status: int, message: str) -> HTMLResponse:
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Authorization error · Partnerloop"
        f"</title></head><body><main><h1>Authorization error</h1><p>{html.escape(message)}</p></main></body></html>"
    )
    return HTMLResponse(body, status_code=status)


def _with_issuer(response: Response, settings: Settings) -> Response:
    """RFC 9207: error redirects carry `iss` too."""
    if isinstance(response, RedirectResponse) and "iss=" not in response.headers["location"]:
        response.headers["location"] = add_params_to_uri(response.headers["location"], {"iss": settings.issuer})
    return response


def _query(name: str, description: str, *, required: bool = True, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "string", **schema},
    }


AUTHORIZE_PARAMETERS = [
    _query("response_type", "Always `code`", enum=["code"]),
    _query("client_id", "The client asking, such as `partnerloop-docs`", minLength=1),
    _query("redirect_uri", "One of the client's registered redirect URIs", minLength=1),
    _query("code_challenge", "BASE64URL(SHA-256(code_verifier)), 43 characters", pattern="^[A-Za-z0-9_-]{43}$"),
    _query("code_challenge_method", "Always `S256`", enum=["S256"]),
    _query("scope", "Space-separated scopes; default: all the staff member's role allows", required=False),
    _query("state", "Returned unchanged to the client", required=False),
]


@router.get(
    "/oauth/authorize",
    summary="Authorization endpoint (code + PKCE S256)",
    response_class=HTMLResponse,
    responses={
        302: {"description": "Back to the client, or to the login page"},
        400: {"description": "Error page", "content": {"text/html": {"schema": {"type": "string"}}}},
    },
    # authlib reads the query itself; the document still says what it must carry (RFC 6749 §4.1.1, RFC 7636).
    openapi_extra={"parameters": AUTHORIZE_PARAMETERS},
)
async def authorize(request: Request, session: SessionDep, settings: SettingsDep, keyring: KeyRingDep) -> Response:
    try:
        oauth_request = await _oauth_request(request)
    except _NonAsciiParameter as exc:
        return _error_page(400, str(exc))
    server = Server(session, settings, keyring)
    try:
        grant = await run_in_threadpool(server.get_consent_grant, oauth_request, None)
    except OAuth2Error as error:
        if error.redirect_uri:
            return _with_issuer(server.handle_error_response(oauth_request, error), settings)
        return _error_page(400, error.description or error.error)
    login = read_login(request, settings)
    user = await run_in_threadpool(staff.find_active_user, session, login.user_id) if login else None
    if login is None or user is None:
        target = request.url.path + "?" + request.url.query
        return RedirectResponse("/login?next=" + quote(target, safe=""), status_code=302)
    requested = scope_names.parse(oauth_request.payload.scope)
    allowed = role_scopes(user)
    # A staff member gets what they asked for within what their role allows.
    oauth_request.scope = scope_names.render(set(requested & allowed) if requested else set(allowed))
    grant_user = AuthorizedUser(user.id, user.tenant_id, "", login_time(login.auth_time), allowed)
    response: Response = await run_in_threadpool(server.create_authorization_response, oauth_request, grant_user, grant)
    return _with_issuer(response, settings)


@router.post(
    "/oauth/token",
    summary="Token endpoint: authorization_code, refresh_token, client_credentials",
    openapi_extra={"requestBody": {"required": True, "content": FORM}},
    responses={400: OAUTH_ERROR, 401: OAUTH_ERROR},
)
async def token(request: Request, session: SessionDep, settings: SettingsDep, keyring: KeyRingDep) -> Response:
    try:
        oauth_request = await _oauth_request(request)
    except _NonAsciiParameter as exc:
        return _invalid_request(exc)
    server = Server(session, settings, keyring)
    response: Response = await run_in_threadpool(server.create_token_response, oauth_request)
    return response


@router.post(
    "/oauth/revoke",
    summary="Revoke a token and every token of its family (RFC 7009)",
    openapi_extra={"requestBody": {"required": True, "content": FORM}},
    responses={400: OAUTH_ERROR, 401: OAUTH_ERROR},
)
async def revoke(request: Request, session: SessionDep, settings: SettingsDep, keyring: KeyRingDep) -> Response:
    try:
        oauth_request = await _oauth_request(request)
    except _NonAsciiParameter as exc:
        return _invalid_request(exc)
    server = Server(session, settings, keyring)
    response: Response = await run_in_threadpool(server.create_endpoint_response, "revocation", oauth_request)
    return response


@router.post(
    "/oauth/introspect",
    summary="Introspect a token of your own tenant (RFC 7662); clients authenticate",
    openapi_extra={"requestBody": {"required": True, "content": FORM}},
    responses={400: OAUTH_ERROR, 401: OAUTH_ERROR},
)
async def introspect(request: Request, session: SessionDep, settings: SettingsDep, keyring: KeyRingDep) -> Response:
    try:
        oauth_request = await _oauth_request(request)
    except _NonAsciiParameter as exc:
        return _invalid_request(exc)
    server = Server(session, settings, keyring)
    response: Response = await run_in_threadpool(server.create_endpoint_response, "introspection", oauth_request)
    return response


@router.get("/.well-known/oauth-authorization-server", summary="Authorization server metadata (RFC 8414)")
def metadata(settings: SettingsDep) -> dict[str, Any]:
    issuer = settings.issuer
    return {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/oauth/authorize",
        "token_endpoint": issuer + "/oauth/token",
        "revocation_endpoint": issuer + "/oauth/revoke",
        "introspection_endpoint": issuer + "/oauth/introspect",
        "jwks_uri": issuer + "/.well-known/jwks.json",
        "scopes_supported": sorted(str(s) for s in scope_names.ALL),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
    }


@router.get("/.well-known/jwks.json", summary="Public keys that sign access tokens")
def jwks(session: SessionDep, keyring: KeyRingDep) -> JSONResponse:
    keyring.signing_key(session)  # there is always a key to publish
    return JSONResponse({"keys": keyring.published(session)}, headers={"Cache-Control": "public, max-age=300"})

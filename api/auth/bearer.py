"""The caller of a hot route, verified in the event loop, its revocation checked by the route's own query.

`current_principal` (a `def` dependency) verifies the token in the threadpool with a query for
its family's revocation. The exchange instead checks the signature, claims, expiry and scopes
here with the keys in memory (CPU only; a token already checked by this process is remembered
until it expires), and sends the revocation check in the same round trip as its first reads
(`Bearer.unchecked_family`): a revoked token still gets its 401 on the very request after the
revocation, and nothing is recorded for it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import SecurityScopes
from joserfc.jwk import KeySet
from starlette.concurrency import run_in_threadpool

from api import ratelimit
from api.auth import access_tokens, protector
from api.auth.keys import KeyRing
from api.auth.principal import Principal, check_scopes, claims_or_problem, get_keyring, oauth2_scheme, remember
from api.deps import EngineDep, SettingsDep
from partners.db import unit_of_work
from partners.scopes import Scope

MAX_VERIFIED = 10_000


class VerifiedTokens:
    """Per process (on the app's state): tokens whose signature and claims were checked, until they
    expire. A signature does not stop being valid, so this is a memo of a pure check, not a copy of
    data: revocation is still asked of the database on every request."""

    def __init__(self, max_tokens: int = MAX_VERIFIED) -> None:
        self._claims: OrderedDict[str, access_tokens.AccessClaims] = OrderedDict()
        self._max = max_tokens

    def get(self, token: str) -> access_tokens.AccessClaims | None:
        claims = self._claims.get(token)
        if claims is None:
            return None
        if claims.expires_at <= time.time():  # as authlib's expiry check
            del self._claims[token]
            return None
        return claims

    def put(self, token: str, claims: access_tokens.AccessClaims) -> None:
        self._claims[token] = claims
        while len(self._claims) > self._max:
            self._claims.popitem(last=False)


def _bearer_token(authorization: str | None) -> str | None:
    # As authlib's ResourceProtector reads the header: "<scheme> <token>", scheme case-insensitive.
    parts = (authorization or "").split(None, 1)
    return parts[1].strip() if len(parts) == 2 and parts[0].lower() == "bearer" else None


@dataclass(frozen=True)
class Bearer:
    """The caller, and the token family whose revocation the route must still check (None: checked)."""

    principal: Principal
    unchecked_family: str | None


async def _keys(keyring: KeyRing, engine: EngineDep, kid: str | None) -> KeySet:
    keys = keyring.cached_verification_keys(kid)
    if keys is not None:
        return keys

    def load() -> KeySet:
        with unit_of_work(engine) as session:
            return keyring.verification_keys(session, kid)

    return await run_in_threadpool(load)


async def bearer_caller(
    security_scopes: SecurityScopes,
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    keyring: Annotated[KeyRing, Depends(get_keyring)],
    authorization: Annotated[str | None, Depends(oauth2_scheme)],
) -> Bearer:
    """The caller with the route's scopes checked (401 or 403 otherwise), revocation left to the route."""
    principal: Principal | None = getattr(request.state, "principal", None)
    unchecked = None
    if principal is None:  # else the idempotency guard verified the token fully
        memo: VerifiedTokens = request.app.state.verified_tokens
        token = _bearer_token(authorization)
        claims = memo.get(token) if token is not None else None
        if claims is None:
            kid = access_tokens.key_id(token or "")
            keys = await _keys(keyring, engine, kid) if kid is not False else KeySet([])
            claims = claims_or_problem(
                lambda: protector.validate_signed(keys, settings.issuer, request.headers, []), authorization
            )
            if token is not None:
                memo.put(token, claims)
        principal = remember(request, claims)
        await ratelimit.check_caller_async(request, principal.tenant_id, principal.caller_id)
        unchecked = principal.family_id
    check_scopes(principal, security_scopes.scopes)
    return Bearer(principal, unchecked)


def _requires(*scopes: Scope) -> object:
    return Security(bearer_caller, scopes=[str(s) for s in scopes])


ExchangeCaller = Annotated[Bearer, _requires(Scope.exchange_read)]

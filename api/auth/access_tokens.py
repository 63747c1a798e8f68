"""RFC 9068 JWT access tokens: `typ: at+jwt`, RS256, tenant, client, family and scopes in the claims."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from sqlmodel import Session

from api.auth.keys import KeyRing
from partners import tokens
from partners.crypto import new_secret
from partners.signing_keys import ALGORITHM

TOKEN_TYPE = "at+jwt"


@dataclass(frozen=True)
class AccessClaims:
    """What a valid access token says about its bearer."""

    tenant_id: str
    client_id: str
    subject: str
    user_id: str | None
    family_id: str
    scopes: frozenset[str]
    expires_at: int
    issued_at: int
    jti: str


def audience(issuer: str) -> str:
    """The resource our access tokens are for: this API."""
    return issuer + "/v1"


def encode(key: RSAKey, issuer: str, claims: AccessClaims) -> str:
    """Sign an access token."""
    payload: dict[str, Any] = {
        "iss": issuer,
        "aud": audience(issuer),
        "sub": claims.subject,
        "client_id": claims.client_id,
        "iat": claims.issued_at,
        "exp": claims.expires_at,
        "jti": claims.jti,
        "scope": " ".join(sorted(claims.scopes)),
        "tid": claims.tenant_id,
        "sid": claims.family_id,
    }
    header = {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": key.kid}
    return jwt.encode(header, payload, key, algorithms=[ALGORITHM])


def new_claims(
    *, tenant_id: str, client_id: str, user_id: str | None, family_id: str, scopes: frozenset[str], ttl: int
) -> AccessClaims:
    """Claims for a token issued now."""
    now = int(time.time())
    return AccessClaims(
        tenant_id=tenant_id,
        client_id=client_id,
        subject=user_id or client_id,
        user_id=user_id,
        family_id=family_id,
        scopes=scopes,
        expires_at=now + ttl,
        issued_at=now,
        jti=new_secret("", 16),
    )


def decode(session: Session, keys: KeyRing, issuer: str, token: str) -> AccessClaims | None:
    """The claims of a valid, unexpired, unrevoked access token of ours, or None."""
    kid = key_id(token)
    if kid is False:
        return None
    claims = decode_signed(keys.verification_keys(session, kid), issuer, token)
    if claims is None or not tokens.family_is_active(session, claims.family_id):
        return None
    return claims


def key_id(token: str) -> str | Literal[False] | None:
    """The `kid` an access token of ours names (None if it names none); False if it is not one of ours."""
    try:
        header = jws.extract_compact(token.encode()).headers()
    except (JoseError, ValueError, UnicodeError):
        return False
    if header.get("typ") != TOKEN_TYPE or header.get("alg") != ALGORITHM:
        return False
    kid = header.get("kid")
    return kid if isinstance(kid, str) else None


def decode_signed(keys: KeySet, issuer: str, token: str) -> AccessClaims | None:
    """The claims of a well-signed, unexpired access token of ours, or None; its family's revocation
    is the caller's to check (`tokens.family_is_active`)."""
    if key_id(token) is False:
        return None
    try:
        decoded = jwt.decode(token, keys, algorithms=[ALGORITHM])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience(issuer)},
            exp={"essential": True},
            sub={"essential": True},
            jti={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError):
        return None
    c = decoded.claims
    required = ("tid", "sid", "client_id", "iat", "scope")
    if not all(isinstance(c.get(name), str | int) for name in required):
        return None
    return AccessClaims(
        tenant_id=c["tid"],
        client_id=c["client_id"],
        subject=c["sub"],
        user_id=c["sub"] if c["sub"] != c["client_id"] else None,
        family_id=c["sid"],
        scopes=frozenset(str(c["scope"]).split()),
        expires_at=int(c["exp"]),
        issued_at=int(c["iat"]),
        jti=c["jti"],
    )

"""authlib's ResourceProtector with a validator for our RFC 9068 access tokens."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from authlib.oauth2.rfc6749 import ResourceProtector
from authlib.oauth2.rfc6750 import BearerTokenValidator
from joserfc.jwk import KeySet
from sqlmodel import Session

from api.auth import access_tokens
from api.auth.keys import KeyRing


class BearerToken:
    """authlib's view of a decoded access token."""

    def __init__(self, claims: access_tokens.AccessClaims) -> None:
        self.claims = claims

    def is_expired(self) -> bool:
        return self.claims.expires_at <= time.time()

    def is_revoked(self) -> bool:
        # `access_tokens.decode` already refused tokens of revoked families.
        return False

    def get_scope(self) -> str:
        return " ".join(sorted(self.claims.scopes))


class JWTBearerValidator(BearerTokenValidator):  # type: ignore[misc]
    def __init__(self, session: Session, keyring: KeyRing, issuer: str) -> None:
        super().__init__(realm="partnerloop")
        self.session, self.keyring, self.issuer = session, keyring, issuer

    def authenticate_token(self, token_string: str) -> BearerToken | None:
        claims = access_tokens.decode(self.session, self.keyring, self.issuer, token_string.strip())
        return BearerToken(claims) if claims is not None else None


class SignedBearerValidator(BearerTokenValidator):  # type: ignore[misc]
    """Signature, claims and expiry only, with keys already in memory: the family's revocation is
    left to the caller, who checks it in its own first round trip (the exchange)."""

    def __init__(self, keys: KeySet, issuer: str) -> None:
        super().__init__(realm="partnerloop")
        self.keys, self.issuer = keys, issuer

    def authenticate_token(self, token_string: str) -> BearerToken | None:
        claims = access_tokens.decode_signed(self.keys, self.issuer, token_string.strip())
        return BearerToken(claims) if claims is not None else None


class _HeadersOnly:
    """The part of a request authlib's protector reads: tokens come in the Authorization header only."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers


def validate(
    session: Session, keyring: KeyRing, issuer: str, headers: Mapping[str, str], scopes: Sequence[str]
) -> access_tokens.AccessClaims:
    """The claims of the request's bearer token, carrying every scope in `scopes`; authlib errors otherwise."""
    return _validate(JWTBearerValidator(session, keyring, issuer), headers, scopes)


def validate_signed(
    keys: KeySet, issuer: str, headers: Mapping[str, str], scopes: Sequence[str]
) -> access_tokens.AccessClaims:
    """As `validate`, but without the family's revocation check (`SignedBearerValidator`)."""
    return _validate(SignedBearerValidator(keys, issuer), headers, scopes)


def _validate(
    validator: BearerTokenValidator, headers: Mapping[str, str], scopes: Sequence[str]
) -> access_tokens.AccessClaims:
    protector = ResourceProtector()
    protector.register_token_validator(validator)
    # authlib reads a list of alternatives; one alternative naming every scope means "all of them".
    required = [" ".join(scopes)] if scopes else None
    token: BearerToken = protector.validate_request(required, _HeadersOnly(headers))
    return token.claims

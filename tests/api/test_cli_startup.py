"""`partnerloop serve` refuses to start, saying why, when the encryption key no longer opens the signing keys."""

import secrets

import pytest
from pydantic import SecretStr
from sqlmodel import Session

from api import cli
from partners import signing_keys
from partners.settings import Settings


def test_a_changed_encryption_key_stops_the_start_with_what_to_do(session: Session, settings: Settings) -> None:
    stored = signing_keys.rotate(session, settings.encryption_key.get_secret_value())
    session.commit()
    cli.check_signing_keys(settings)  # the key they were stored under: nothing to say

    other = settings.model_copy(update={"encryption_key": SecretStr(secrets.token_urlsafe(48))})
    with pytest.raises(SystemExit) as stopped:
        cli.check_signing_keys(other)
    message = str(stopped.value)
    assert stored.kid in message and "Restore the previous encryption key" in message

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlmodel import Session

from partners import idempotency
from partners.db import utcnow
from partners.errors import IdempotencyConflict, IdempotencyInProgress
from partners.retailers import Tenant

TTL = timedelta(hours=24)


def test_claim_complete_replay_and_purge(session: Session, make_tenant: Callable[..., Tenant]) -> None:
    claim = idempotency.Claim(make_tenant().id, "cli_x", "k")
    now = utcnow()
    assert idempotency.claim(session, claim, "h1", now=now, ttl=TTL) is None
    with pytest.raises(IdempotencyInProgress):
        idempotency.claim(session, claim, "h1", now=now, ttl=TTL)
    idempotency.complete(session, claim, idempotency.StoredResponse(201, "application/json", b"{}"))
    stored = idempotency.claim(session, claim, "h1", now=now, ttl=TTL)
    assert stored == idempotency.StoredResponse(201, "application/json", b"{}")
    with pytest.raises(IdempotencyConflict):
        idempotency.claim(session, claim, "h2", now=now, ttl=TTL)
    assert idempotency.purge_expired(session, now + TTL - timedelta(seconds=1)) == 0
    assert idempotency.purge_expired(session, now + TTL) == 1


def test_an_abandoned_claim_can_be_taken_over(session: Session, make_tenant: Callable[..., Tenant]) -> None:
    claim = idempotency.Claim(make_tenant().id, "cli_x", "k")
    then = utcnow() - timedelta(minutes=10)
    idempotency.claim(session, claim, "h1", now=then, ttl=TTL)
    assert idempotency.claim(session, claim, "h1", now=utcnow(), ttl=TTL) is None


def test_a_renewed_claim_is_not_taken_for_abandoned(session: Session, make_tenant: Callable[..., Tenant]) -> None:
    claim = idempotency.Claim(make_tenant().id, "cli_x", "upload")
    now = utcnow()
    # A long upload: claimed 20 minutes ago, its heartbeat renewed the claim a minute ago.
    idempotency.claim(session, claim, "h1", now=now - timedelta(minutes=20), ttl=TTL)
    idempotency.renew(session, claim, now - timedelta(minutes=1))
    with pytest.raises(IdempotencyInProgress):
        idempotency.claim(session, claim, "h1", now=now, ttl=TTL)
    # Once the beats stop (the process died), the claim is free again after ABANDONED_AFTER.
    later = now - timedelta(minutes=1) + idempotency.ABANDONED_AFTER
    assert idempotency.claim(session, claim, "h1", now=later, ttl=TTL) is None

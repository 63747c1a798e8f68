"""Operator commands: `partnerloop tenant create`, `keys rotate|list`, `webhooks replay`, `outbox status`."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from api import cli
from partners import deliveries, signing_keys, staff
from partners.db import utcnow
from partners.deliveries import WebhookDelivery
from partners.outbox import OutboxEvent
from partners.retailers import Tenant
from partners.scopes import Role
from partners.settings import Settings
from partners.staff import StaffUser
from partners.webhooks import DisabledReason, IssuedEndpoint


def run(settings: Settings, *argv: str) -> None:
    """The command as `partnerloop` would run it, on the test database."""
    args = cli.build_parser().parse_args(argv)
    args.handler(settings, args)


def refused(settings: Settings, *argv: str) -> str:
    """The message a refused command exits with."""
    with pytest.raises(SystemExit) as stopped:
        run(settings, *argv)
    assert stopped.value.code not in (0, None)
    return str(stopped.value.code)


# --- tenant create ------------------------------------------------------------------------


def test_tenant_create_makes_the_tenant_and_its_owner_and_says_what_next(
    settings: Settings, session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    run(settings, "tenant", "create", "Snoozy Paws Beds", "--owner-email", "Owner@Snoozy.example")
    out = capsys.readouterr().out
    owner = session.exec(select(StaffUser).where(col(StaffUser.email) == "owner@snoozy.example")).one()
    tenant = session.get(Tenant, owner.tenant_id)
    assert tenant is not None and tenant.name == "Snoozy Paws Beds"
    assert owner.role == Role.owner
    assert f"Created tenant {tenant.id} (Snoozy Paws Beds)" in out and owner.id in out
    password = next(line for line in out.splitlines() if "Owner's password:" in line).split(": ", 1)[1]
    assert staff.authenticate(session, "owner@snoozy.example", password) is not None
    assert "/docs" in out and "POST /v1/clients" in out


def test_tenant_create_can_take_the_password_from_stdin_and_never_prints_it(
    settings: Settings, session: Session, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough passphrase\n"))
    run(settings, "tenant", "create", "Care Shop", "--owner-email", "care@shop.example", "--password-stdin")
    out = capsys.readouterr().out
    assert "a long enough passphrase" not in out and "password" not in out.lower()
    assert staff.authenticate(session, "care@shop.example", "a long enough passphrase") is not None


def test_tenant_create_refuses_a_taken_email_or_a_short_password_and_changes_nothing(
    settings: Settings, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(settings, "tenant", "create", "First", "--owner-email", "taken@shop.example")
    message = refused(settings, "tenant", "create", "Second", "--owner-email", "taken@shop.example")
    assert message.startswith("partnerloop: ") and "email" in message.lower()
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    message = refused(settings, "tenant", "create", "Third", "--owner-email", "third@shop.example", "--password-stdin")
    assert "12" in message
    assert [t.name for t in session.exec(select(Tenant)).all()] == ["First"]


# --- keys ---------------------------------------------------------------------------------


def test_keys_rotate_signs_with_a_new_key_and_keeps_the_old_one_published(
    settings: Settings, session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    old = signing_keys.rotate(session, settings.encryption_key.get_secret_value())
    session.commit()
    run(settings, "keys", "rotate")
    out = capsys.readouterr().out
    session.expire_all()
    keys = {key.kid: key for key in session.exec(select(signing_keys.SigningKey)).all()}
    (new_kid,) = set(keys) - {old.kid}
    assert keys[old.kid].retired_at is not None and keys[new_kid].retired_at is None
    assert f"signed with {new_kid}" in out and f"Retired {old.kid}" in out
    ttl = timedelta(seconds=settings.access_token_ttl_seconds)
    assert {key["kid"] for key in signing_keys.published_keys(session, ttl)} == {old.kid, new_kid}
    # The listing after the rotation: both keys, both still in the JWKS.
    rows = [line.split() for line in out.splitlines() if line.startswith((old.kid, new_kid))]
    assert sorted((row[0], row[-1]) for row in rows) == sorted([(old.kid, "yes"), (new_kid, "yes")])


def test_keys_list_says_when_there_is_no_key_yet(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    run(settings, "keys", "list")
    assert "No signing key yet" in capsys.readouterr().out


def test_a_key_retired_longer_than_the_token_lifetime_leaves_the_jwks(
    settings: Settings, session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    old = signing_keys.rotate(session, settings.encryption_key.get_secret_value())
    signing_keys.rotate(session, settings.encryption_key.get_secret_value())
    long_ago = utcnow() - timedelta(seconds=settings.access_token_ttl_seconds, minutes=2)
    stmt = update(signing_keys.SigningKey).where(col(signing_keys.SigningKey.kid) == old.kid)
    session.exec(stmt.values(retired_at=long_ago))
    session.commit()
    run(settings, "keys", "list")
    (row,) = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(old.kid)]
    assert row[-1] == "no"


# --- webhooks replay ----------------------------------------------------------------------


@pytest.fixture
def delivered(
    session: Session,
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., OutboxEvent],
) -> tuple[Tenant, IssuedEndpoint, OutboxEvent]:
    """A tenant's endpoint that got one event (handed out, so it has one delivery)."""
    tenant = make_tenant()
    endpoint = make_endpoint(tenant)
    event = make_event(tenant)
    deliveries.dispatch(session, now=utcnow())
    session.commit()
    return tenant, endpoint, event


def _deliveries_of(session: Session, event_id: str) -> int:
    session.expire_all()
    return len(session.exec(select(WebhookDelivery).where(col(WebhookDelivery.event_id) == event_id)).all())


def test_replay_one_event(
    settings: Settings,
    session: Session,
    delivered: tuple[Tenant, IssuedEndpoint, OutboxEvent],
    capsys: pytest.CaptureFixture[str],
) -> None:
    tenant, _endpoint, event = delivered
    run(settings, "webhooks", "replay", "--tenant", tenant.id, "--event", event.id)
    out = capsys.readouterr().out
    assert f"Queued event {event.id} to 1 subscribed endpoint(s) of {tenant.id}" in out
    assert "partnerloop worker" in out
    assert _deliveries_of(session, event.id) == 2


def test_replay_an_endpoints_window(
    settings: Settings,
    session: Session,
    delivered: tuple[Tenant, IssuedEndpoint, OutboxEvent],
    capsys: pytest.CaptureFixture[str],
) -> None:
    tenant, endpoint, event = delivered
    since = (utcnow() - timedelta(hours=1)).isoformat()
    run(settings, "webhooks", "replay", "--tenant", tenant.id, "--endpoint", endpoint.endpoint.id, "--since", since)
    out = capsys.readouterr().out
    assert "Queued 1 event(s) since" in out and endpoint.endpoint.url in out
    assert _deliveries_of(session, event.id) == 2


def test_replay_refusals_say_what_to_do(
    settings: Settings, session: Session, delivered: tuple[Tenant, IssuedEndpoint, OutboxEvent]
) -> None:
    tenant, endpoint, event = delivered
    base = ("webhooks", "replay", "--tenant", tenant.id)
    assert "give either --event" in refused(settings, *base)
    assert "add --endpoint" in refused(settings, *base, "--since", "2026-01-01T00:00:00Z")
    assert "No event with id 'evt_nope'" in refused(settings, *base, "--event", "evt_nope")
    assert "Check the id" in refused(settings, "webhooks", "replay", "--tenant", "ten_nope", "--event", event.id)
    future = (utcnow() + timedelta(hours=1)).isoformat()
    window = ("--endpoint", endpoint.endpoint.id, "--since", future)
    assert "`since` must be before" in refused(settings, *base, *window)
    deliveries.disable_endpoint(
        session, tenant.id, endpoint.endpoint.id, DisabledReason.gone, now=utcnow(), notify=False
    )
    session.commit()
    since = ("--endpoint", endpoint.endpoint.id, "--since", "2026-01-01T00:00:00Z")
    assert "PATCH /v1/webhook-endpoints/" in refused(settings, *base, *since)
    assert _deliveries_of(session, event.id) == 1


def test_replay_needs_a_time_with_its_offset(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run(settings, "webhooks", "replay", "--tenant", "t", "--endpoint", "e", "--since", "2026-01-01T00:00")
    assert "has no offset" in capsys.readouterr().err


# --- outbox status ------------------------------------------------------------------------


def test_outbox_status_counts_the_backlog_and_lists_disabled_endpoints(
    settings: Settings,
    session: Session,
    delivered: tuple[Tenant, IssuedEndpoint, OutboxEvent],
    make_event: Callable[..., OutboxEvent],
    capsys: pytest.CaptureFixture[str],
) -> None:
    tenant, endpoint, _event = delivered
    waiting = make_event(tenant)
    stmt = update(OutboxEvent).where(col(OutboxEvent.id) == waiting.id)
    session.exec(stmt.values(created_at=utcnow() - timedelta(minutes=5)))
    session.commit()
    run(settings, "outbox", "status")
    out = capsys.readouterr().out
    assert "events waiting for hand-out: 1 (oldest waiting 5 min)" in out
    assert "deliveries pending:          1 (1 due now" in out
    assert "pending 1, succeeded 0, failed 0, cancelled 0" in out
    assert "endpoints disabled:          0" in out
    assert "is a worker running?" in out

    deliveries.disable_endpoint(
        session, tenant.id, endpoint.endpoint.id, DisabledReason.failing, now=utcnow(), notify=False
    )
    session.commit()
    run(settings, "outbox", "status", "--tenant", tenant.id)
    out = capsys.readouterr().out
    assert f"Outbox of {tenant.id}" in out
    assert "pending 0, succeeded 0, failed 0, cancelled 1" in out
    assert f"{tenant.id} {endpoint.endpoint.id} {endpoint.endpoint.url} (failing, since" in out
    assert "partnerloop webhooks replay --tenant T --endpoint E" in out


def test_outbox_status_of_another_tenant_counts_nothing_of_this_one(
    settings: Settings,
    delivered: tuple[Tenant, IssuedEndpoint, OutboxEvent],
    make_tenant: Callable[..., Tenant],
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = make_tenant()
    run(settings, "outbox", "status", "--tenant", other.id)
    out = capsys.readouterr().out
    assert "deliveries pending:          0" in out and "pending 0, succeeded 0" in out
    assert "Check the id" in refused(settings, "outbox", "status", "--tenant", "ten_nope")

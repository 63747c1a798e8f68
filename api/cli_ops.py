"""Operator commands of `partnerloop`: tenant create, keys rotate|list, webhooks replay, outbox status.

They work on the database directly (`PARTNERLOOP_DATABASE_URL`), as the operator, across
tenants; each prints what it did and what to do next, and exits 1 with the reason otherwise.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from partners import delivery_log, outbox_status, retailers, signing_keys, staff, webhooks
from partners.db import make_engine, unit_of_work, utcnow
from partners.errors import Conflict, DomainError, NotFound
from partners.settings import Settings

Handler = Callable[[Settings, argparse.Namespace], None]
# An event still waiting for hand-out after this long means no worker is running (or keeping up).
STALE_AFTER = timedelta(minutes=1)


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    """One transaction on the configured database; a domain refusal ends the command with its reason."""
    engine = make_engine(settings.database_url)
    try:
        with unit_of_work(engine) as session:
            yield session
    except DomainError as exc:
        sys.exit(f"partnerloop: {exc.detail}{_hint(exc)}")
    finally:
        engine.dispose()


def _hint(exc: DomainError) -> str:
    if isinstance(exc, NotFound) and exc.param == "tenant_id":
        return " Check the id (ten_…, as `partnerloop tenant create` or GET /v1/tenant shows it)."
    if isinstance(exc, NotFound) and exc.param == "event_id":
        return " The event must be one whose recipient is this tenant (see the endpoint's delivery log)."
    if isinstance(exc, NotFound) and exc.param == "endpoint_id":
        return " Check the id and the tenant: GET /v1/webhook-endpoints lists a tenant's endpoints."
    if isinstance(exc, Conflict) and exc.param == "id":
        return ' The tenant enables it with PATCH /v1/webhook-endpoints/{id} {"enabled": true}.'
    return ""


def _when(value: str) -> datetime:
    """An ISO 8601 time with its offset (…Z or +02:00), for --since and --until."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{value}' is not an ISO 8601 time, e.g. 2026-12-01T09:00:00Z") from exc
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"'{value}' has no offset: add Z (UTC) or +HH:MM")
    return parsed


def _ago(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def _stamp(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"


def cmd_tenant_create(settings: Settings, args: argparse.Namespace) -> None:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else secrets.token_urlsafe(18)
    with _session(settings) as session:
        created = staff.sign_up(session, args.name, args.owner_email, password)
        tenant, owner = created.tenant, created.owner
    base = settings.base_url.rstrip("/")
    print(f"Created tenant {tenant.id} ({tenant.name}) with its owner {owner.email} ({owner.id}).")
    if not args.password_stdin:
        print(f"  Owner's password: {password}")
        print("  It is shown only now (only its hash is stored): hand it to the owner over a safe channel.")
    print("Next:")
    print(f"  1. The owner logs in at {base}/docs: Authorize, then sign in with {owner.email}.")
    print("  2. They describe the shop (PUT /v1/profile) and invite colleagues (POST /v1/staff/invitations).")
    print("  3. They create an API client for the shop's backend (POST /v1/clients) and find partners")
    print("     (GET /v1/partner-suggestions).")


def cmd_keys_rotate(settings: Settings, _args: argparse.Namespace) -> None:
    with _session(settings) as session:
        active = select(signing_keys.SigningKey).where(col(signing_keys.SigningKey.retired_at).is_(None))
        retiring = [key.kid for key in session.exec(active).all()]
        new = signing_keys.rotate(session, settings.encryption_key.get_secret_value())
        # published_keys keeps a retired key for the token lifetime plus a minute of clock skew.
        until = utcnow() + timedelta(seconds=settings.access_token_ttl_seconds, minutes=1)
        print(f"Signing key rotated: new tokens are signed with {new.kid}, on every replica from its next token.")
        for kid in retiring:
            print(f"  Retired {kid}: /.well-known/jwks.json keeps it until {_stamp(until)}, once its tokens expired.")
        _print_keys(session, settings)


def cmd_keys_list(settings: Settings, _args: argparse.Namespace) -> None:
    with _session(settings) as session:
        _print_keys(session, settings)


def _print_keys(session: Session, settings: Settings) -> None:
    ttl = timedelta(seconds=settings.access_token_ttl_seconds)
    published = {key["kid"] for key in signing_keys.published_keys(session, ttl)}
    rows = session.exec(select(signing_keys.SigningKey).order_by(col(signing_keys.SigningKey.created_at).desc())).all()
    if not rows:
        print("No signing key yet: the first token request makes one (or run `partnerloop keys rotate`).")
        return
    print(f"{'kid':<45} {'created':<26} {'retired':<26} in JWKS")
    for key in rows:
        shown = "yes" if key.kid in published else "no"
        print(f"{key.kid:<45} {_stamp(key.created_at):<26} {_stamp(key.retired_at):<26} {shown}")


def cmd_webhooks_replay(settings: Settings, args: argparse.Namespace) -> None:
    if (args.event is None) == (args.since is None):
        sys.exit("partnerloop: give either --event EVENT_ID, or --endpoint ENDPOINT_ID with --since TIME.")
    if args.since is not None and args.endpoint is None:
        sys.exit("partnerloop: --since replays to one endpoint: add --endpoint ENDPOINT_ID.")
    now = utcnow()
    with _session(settings) as session:
        retailers.get_tenant(session, args.tenant)
        if args.event is not None:
            count = delivery_log.replay_event(session, args.tenant, args.event, now=now)
            what = f"event {args.event} to {count} subscribed endpoint(s) of {args.tenant}"
        else:
            count = delivery_log.replay_since(session, args.tenant, args.endpoint, args.since, args.until, now=now)
            url = webhooks.get_endpoint(session, args.tenant, args.endpoint).url
            what = f"{count} event(s) since {_stamp(args.since)} to {args.endpoint} ({url})"
    print(f"Queued {what}: same bodies and webhook-id as the first time.")
    if count:
        print("The worker sends them (`partnerloop worker`); follow them with")
        print(f"`partnerloop outbox status --tenant {args.tenant}`.")
    else:
        print("Nothing to send: no enabled endpoint is subscribed, or no event falls in the window.")


def cmd_outbox_status(settings: Settings, args: argparse.Namespace) -> None:
    now = utcnow()
    with _session(settings) as session:
        if args.tenant is not None:
            retailers.get_tenant(session, args.tenant)
        found = outbox_status.report(session, now=now, tenant_id=args.tenant)
    depth = found.depth
    print(f"Outbox of {args.tenant or 'every tenant'} at {_stamp(now)}:")
    oldest = f" (oldest waiting {_ago(depth.oldest_pending_event_age(now))})" if depth.pending_events else ""
    print(f"  events waiting for hand-out: {depth.pending_events}{oldest}")
    overdue = f", longest overdue {_ago(depth.oldest_due_delivery_age(now))}" if depth.due_deliveries else ""
    print(f"  deliveries pending:          {depth.pending_deliveries} ({depth.due_deliveries} due now{overdue})")
    by_status = ", ".join(f"{status} {count}" for status, count in found.deliveries_by_status.items())
    print(f"  deliveries by status:        {by_status}")
    print(f"  endpoints disabled:          {len(found.disabled)}")
    for e in found.disabled:
        reason = e.reason or "by its tenant"
        print(f"    {e.tenant_id} {e.endpoint_id} {e.url} ({reason}, since {_stamp(e.disabled_at)})")
    stale = depth.oldest_pending_event_age(now) > STALE_AFTER.total_seconds() or (
        depth.oldest_due_delivery_age(now) > STALE_AFTER.total_seconds()
    )
    if stale:
        print("Work has waited over a minute: is a worker running? Start one (or more) with `partnerloop worker`.")
    if found.disabled:
        print(
            "A disabled endpoint gets nothing: once its tenant enabled it again, replay what it missed with "
            "`partnerloop webhooks replay --tenant T --endpoint E --since <disabled since>`."
        )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the operator commands to the `partnerloop` parser."""
    tenant = sub.add_parser("tenant", help="tenants (operator)").add_subparsers(dest="tenant_command", required=True)
    create = tenant.add_parser("create", help="create a tenant and its owner account")
    create.add_argument("name", help="the retailer's name")
    create.add_argument("--owner-email", required=True)
    create.add_argument(
        "--password-stdin", action="store_true", help="read the owner's password from stdin (else one is generated)"
    )
    create.set_defaults(handler=cmd_tenant_create)

    keys = sub.add_parser("keys", help="token signing keys").add_subparsers(dest="keys_command", required=True)
    rotate = keys.add_parser("rotate", help="sign with a new key; the old one stays published until its tokens expire")
    rotate.set_defaults(handler=cmd_keys_rotate)
    listing = keys.add_parser("list", help="the signing keys and whether the JWKS publishes them")
    listing.set_defaults(handler=cmd_keys_list)

    hooks = sub.add_parser("webhooks", help="webhook deliveries").add_subparsers(dest="webhooks_command", required=True)
    replay = hooks.add_parser(
        "replay", help="deliver again one event, or everything an endpoint got since a time", description=None
    )
    replay.add_argument("--tenant", required=True, help="the tenant whose endpoints receive")
    replay.add_argument("--event", help="one event id (evt_...): to each subscribed endpoint")
    replay.add_argument("--endpoint", help="one endpoint id (whe_...), with --since")
    replay.add_argument("--since", type=_when, help="ISO 8601 time with offset, e.g. 2026-12-01T09:00:00Z")
    replay.add_argument("--until", type=_when, help="end of the window (default: now)")
    replay.set_defaults(handler=cmd_webhooks_replay)

    outbox = sub.add_parser("outbox", help="the outbox and deliveries")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)
    status = outbox_sub.add_parser("status", help="pending events and deliveries, oldest ages, disabled endpoints")
    status.add_argument("--tenant", help="only this tenant")
    status.set_defaults(handler=cmd_outbox_status)

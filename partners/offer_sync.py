"""The offer sync job of `partnerloop worker`: pull each due offer feed and upsert its offers.

A round leases due feeds (one short transaction; `next_sync_at` moves ahead by the lease, claimed
with `FOR UPDATE SKIP LOCKED` and a compare-and-set, so two workers never sync one feed at once),
fetches them concurrently with no transaction open — an OAuth 2 client-credentials token from the
tenant's token URL, then `GET` of the feed URL, both with authlib's httpx client over the egress
guard — then applies each feed in one transaction: every item is upserted by its external id in
its own savepoint (`offer_actions.upsert`), a refused item is kept on the run with why, and the run
and the feed's next time are written with the offers. Upserting by external id (unique per tenant)
means a repeated or overlapping sync never duplicates an offer. While the partner is down the feed
backs off exponentially (1 min, 2 min, 4 min … at most 6 h, with jitter; `Retry-After` honoured).

The feed document is `{"offers": [item, …]}`, each item the body of
`PUT /v1/offers/by-external-id/{external_id}` plus its `external_id`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import authlib.deprecate  # noqa: F401  (first: it installs an "always" filter that ours must follow)
import httpx
from pydantic import ValidationError
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from partners import offer_actions, offers
from partners.control_chars import message as control_message
from partners.control_chars import refused_in_json, refused_in_text
from partners.crypto import decrypt
from partners.db import unit_of_work, utcnow
from partners.egress import EgressPolicy, EgressRefused, GuardedTransport, Resolver, check_url, policy_from
from partners.errors import DomainError
from partners.offer_feeds import OfferFeed, OfferSyncRun, RunStatus
from partners.offer_input import OfferFeedItem
from partners.partnerships import Actor
from partners.retry_schedule import parse_retry_after
from partners.rounds import until_idle
from partners.settings import Settings, load_settings

with warnings.catch_warnings():
    # authlib nudges towards the httpx2 fork; our stack is httpx (a fixed choice, see pyproject.toml).
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

log = logging.getLogger("partnerloop.offer_sync")
USER_AGENT = "Partnerloop-OfferSync/1"
MAX_FEED_BYTES = 5 * 1024 * 1024
MAX_ITEMS = 1_000
MAX_ITEM_ERRORS = 100
LEASE = timedelta(minutes=5)
BATCH = 10
FIRST_BACKOFF = timedelta(minutes=1)
MAX_BACKOFF = timedelta(hours=6)
JITTER = 0.2
MAX_ROUND_SECONDS = 30.0


@dataclass(frozen=True)
class FeedClaim:
    """A feed leased by one worker, with what it needs to call the partner."""

    tenant_id: str
    feed_id: str
    url: str
    token_url: str
    client_id: str
    client_secret: str
    scope: str | None
    started_at: datetime


@dataclass(frozen=True)
class Fetched:
    """The feed's items, or why they could not be read."""

    items: Sequence[Any] | None
    error: str | None = None
    retry_after: str | None = None


@dataclass
class _Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    failed: int = 0


def backoff(failures: int, *, rng: random.Random | None = None, retry_after: timedelta | None = None) -> timedelta:
    """How long to leave a feed alone after `failures` failed runs in a row (from 1)."""
    base = min(FIRST_BACKOFF * 2 ** min(max(failures, 1) - 1, 20), MAX_BACKOFF)
    delay: timedelta = base * (1 + (rng or random.SystemRandom()).uniform(-JITTER, JITTER))
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_BACKOFF))
    return delay


def claim_due(session: Session, *, now: datetime, limit: int, encryption_key: str) -> list[FeedClaim]:
    """Lease up to `limit` due feeds until `now + LEASE`."""
    query = (
        select(OfferFeed)
        .where(col(OfferFeed.enabled).is_(True), col(OfferFeed.next_sync_at) <= now)
        .order_by(col(OfferFeed.next_sync_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claims = []
    for feed in session.exec(query).all():
        # Compare-and-set on the time we read: on SQLite (no row locks) a second worker loses here.
        lease = (
            update(OfferFeed)
            .where(
                col(OfferFeed.tenant_id) == feed.tenant_id,
                col(OfferFeed.id) == feed.id,
                col(OfferFeed.next_sync_at) == feed.next_sync_at,
            )
            .values(next_sync_at=now + LEASE)
        )
        if session.exec(lease).rowcount != 1:
            continue
        secret = decrypt(encryption_key, feed.client_secret_encrypted)
        claims.append(
            FeedClaim(feed.tenant_id, feed.id, feed.url, feed.token_url, feed.client_id, secret, feed.scope, now)
        )
    return claims


def _oauth_client(claim: FeedClaim, policy: EgressPolicy) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=claim.client_id,
        client_secret=claim.client_secret,
        scope=claim.scope,
        token_endpoint=claim.token_url,
        grant_type="client_credentials",
        transport=GuardedTransport(policy, max_connections=2),
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(policy.total_timeout, connect=policy.connect_timeout),
        headers={"user-agent": USER_AGENT, "accept-encoding": "identity"},
    )


class _TooLarge(Exception):
    pass


async def _read_all(response: httpx.Response, cap: int) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > cap:
            raise _TooLarge
    return bytes(body)


async def fetch(claim: FeedClaim, policy: EgressPolicy) -> Fetched:
    """Get a token and read the feed within the policy's limits; errors come back, never raised."""
    try:
        check_url(claim.token_url, policy)
        check_url(claim.url, policy)
        async with asyncio.timeout(2 * policy.total_timeout), _oauth_client(claim, policy) as http:
            await http.fetch_token(claim.token_url, grant_type="client_credentials")
            async with http.stream("GET", claim.url, headers={"accept": "application/json"}) as response:
                if response.status_code != 200:
                    return Fetched(
                        None, f"the feed answered HTTP {response.status_code}", response.headers.get("retry-after")
                    )
                body = await _read_all(response, MAX_FEED_BYTES)
    except EgressRefused as exc:
        return Fetched(None, f"refused: {exc}")
    except _TooLarge:
        return Fetched(None, f"the feed is larger than {MAX_FEED_BYTES // (1024 * 1024)} MB")
    except (TimeoutError, httpx.TimeoutException):
        return Fetched(None, "timed out")
    except OAuthError as exc:
        return Fetched(None, f"the token endpoint refused our client: {exc.error}"[:500])
    except httpx.HTTPError as exc:
        return Fetched(None, f"{type(exc).__name__}: {exc}"[:500])
    except ValueError:
        return Fetched(None, "the token endpoint did not answer with a token")
    except Exception as exc:  # a partner must never be able to crash the worker
        log.exception("unexpected error reading offer feed %s", claim.feed_id)
        return Fetched(None, f"unexpected error: {type(exc).__name__}")
    return parse(body)


def parse(body: bytes) -> Fetched:
    """The items of a feed document."""
    try:
        document = json.loads(body)
    except ValueError:
        return Fetched(None, "the feed is not JSON")
    items = document.get("offers") if isinstance(document, dict) else None
    if not isinstance(items, list):
        return Fetched(None, 'the feed is not a JSON object with an "offers" list')
    return Fetched(items)


def _item_error(tally: _Tally, index: int, external_id: Any, param: str | None, message: str) -> None:
    tally.failed += 1
    if len(tally.errors) < MAX_ITEM_ERRORS:
        # The partner's id is echoed back, but never with a control character (PostgreSQL refuses NUL).
        ext = external_id if isinstance(external_id, str) and refused_in_text(external_id) is None else None
        tally.errors.append({"index": index, "external_id": ext, "param": param, "error": message[:500]})


def _apply_item(session: Session, claim: FeedClaim, index: int, raw: Any, now: datetime, tally: _Tally) -> None:
    external_id = raw.get("external_id") if isinstance(raw, dict) else None
    # The same rule as the API's bodies (api/control_chars.py): refused per item, before anything is stored.
    controlled = refused_in_json(raw)
    if controlled is not None:
        path, char = controlled
        field = ".".join(path) or None
        _item_error(tally, index, external_id, field, control_message(field or "the item", char))
        return
    try:
        item = OfferFeedItem.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        _item_error(tally, index, external_id, ".".join(str(p) for p in first["loc"]) or None, first["msg"])
        return
    actor = Actor(claim.tenant_id, claim.feed_id)
    try:
        with session.begin_nested():
            before = offers.find_by_external_id(session, claim.tenant_id, item.external_id)
            revision = before.revision if before is not None else None
            offer, created = offer_actions.upsert(
                session, actor, item.external_id, item.content(), item.settings(), item.publish_to, now
            )
    except DomainError as exc:
        _item_error(tally, index, item.external_id, exc.param, exc.detail)
        return
    if created:
        tally.created += 1
    elif offer.revision != revision:
        tally.updated += 1
    else:
        tally.unchanged += 1


def _finish(session: Session, claim: FeedClaim, run: OfferSyncRun, now: datetime, delay: timedelta) -> OfferSyncRun:
    feed = session.get(OfferFeed, (claim.tenant_id, claim.feed_id))
    if feed is None:
        return run  # deleted while we synced: nothing to record
    failed = run.status == RunStatus.failed
    feed.consecutive_failures = feed.consecutive_failures + 1 if failed else 0
    feed.last_run_at = now
    feed.last_error = run.error
    if not failed:
        feed.last_success_at = now
    feed.next_sync_at = now + delay
    feed.updated_at = now
    session.add_all([feed, run])
    session.flush()
    return run


def apply(
    session: Session, claim: FeedClaim, fetched: Fetched, *, now: datetime, rng: random.Random | None = None
) -> OfferSyncRun:
    """Upsert the fetched items (or record the failure) and schedule the feed's next run."""
    run = OfferSyncRun(
        tenant_id=claim.tenant_id,
        feed_id=claim.feed_id,
        status=RunStatus.succeeded,
        started_at=claim.started_at,
        finished_at=now,
    )
    feed = session.get(OfferFeed, (claim.tenant_id, claim.feed_id))
    if feed is None:
        return run
    if fetched.items is None:
        run.status, run.error = RunStatus.failed, (fetched.error or "failed")[:500]
        delay = backoff(feed.consecutive_failures + 1, rng=rng, retry_after=parse_retry_after(fetched.retry_after, now))
        return _finish(session, claim, run, now, delay)
    tally = _Tally()
    for index, raw in enumerate(fetched.items[:MAX_ITEMS]):
        _apply_item(session, claim, index, raw, now, tally)
    if len(fetched.items) > MAX_ITEMS:
        run.error = f"only the first {MAX_ITEMS} of {len(fetched.items)} items were read"
    run.items = min(len(fetched.items), MAX_ITEMS)
    run.created, run.updated, run.unchanged, run.failed = tally.created, tally.updated, tally.unchanged, tally.failed
    run.item_errors = tally.errors
    if tally.failed or run.error:
        run.status = RunStatus.partial
    return _finish(session, claim, run, now, timedelta(seconds=feed.interval_seconds))


def sync_round(engine: Engine, settings: Settings, policy: EgressPolicy, rng: random.Random | None = None) -> int:
    """Lease due feeds, fetch them at once, apply each in its own transaction; how many were synced."""
    with unit_of_work(engine) as session:
        claims = claim_due(
            session, now=utcnow(), limit=BATCH, encryption_key=settings.encryption_key.get_secret_value()
        )
    if not claims:
        return 0

    async def fetch_all() -> list[Fetched]:
        return list(await asyncio.gather(*(fetch(claim, policy) for claim in claims)))

    for claim, fetched in zip(claims, asyncio.run(fetch_all()), strict=True):
        try:
            with unit_of_work(engine) as session:
                apply(session, claim, fetched, now=utcnow(), rng=rng)
        except Exception:
            # Not applied (a bug, the database went away): record the failure if we can, else the
            # lease runs out and another round tries again.
            log.exception("could not apply offer feed %s", claim.feed_id)
            failure = Fetched(None, "internal error while applying the feed")
            with unit_of_work(engine) as session:
                apply(session, claim, failure, now=utcnow(), rng=rng)
    return len(claims)


def sync_due(
    engine: Engine, settings: Settings, *, resolver: Resolver | None = None, max_seconds: float = MAX_ROUND_SECONDS
) -> int:
    """Rounds until no feed is due (or `max_seconds` passed, to let other jobs run)."""
    policy = policy_from(settings, resolver)
    return until_idle(lambda: sync_round(engine, settings, policy), max_seconds)


def sync_offer_feeds(engine: Engine) -> int:
    """The worker's job: sync the offer feeds that are due, with the settings of the environment."""
    return sync_due(engine, load_settings())

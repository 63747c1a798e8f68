"""Offer use cases: each change with the approvals it needs, the live rows it touches and the events
it causes, all in the caller's transaction (domain functions flush; the request commits).

Events go to the outbox; each is owned by the tenant that acted and names in `partner_id` the
partner tenant it is meant for:
`offer.submitted`, `offer.updated`, `offer.paused`, `offer.resumed`, `offer.archived` (by the
offering tenant, for each host) and `offer.approved`, `offer.rejected` (by the host, for the
offering tenant).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from datetime import datetime
from typing import Any

from sqlmodel import Session

from partners import codes, live_offers, offers, outbox, placements
from partners import offer_rules as rules
from partners.db import utcnow
from partners.errors import Invalid
from partners.offer_rules import CodeMode, OfferAction, OfferContent, OfferState
from partners.offers import Offer, OfferSettings
from partners.partnerships import Actor

OFFER_SUBMITTED = "offer.submitted"
OFFER_UPDATED = "offer.updated"
OFFER_APPROVED = "offer.approved"
OFFER_REJECTED = "offer.rejected"
OFFER_PAUSED = "offer.paused"
OFFER_RESUMED = "offer.resumed"
OFFER_ARCHIVED = "offer.archived"

_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
CONTENT_FIELDS = frozenset(f.name for f in fields(OfferContent))
SETTINGS_FIELDS = frozenset(f.name for f in fields(OfferSettings))


def _emit(session: Session, tenant_id: str, event_type: str, partner_id: str, offer_id: str, **extra: Any) -> None:
    outbox.emit(session, tenant_id, event_type, {"partner_id": partner_id, "offer_id": offer_id, **extra})


def _emit_submitted(session: Session, offer: Offer, submitted: Sequence[placements.OfferPlacement]) -> None:
    for row in submitted:
        _emit(
            session,
            offer.tenant_id,
            OFFER_SUBMITTED,
            row.partner_tenant_id,
            offer.id,
            version=offer.latest_version,
            partnership_id=row.partnership_id,
        )


def _emit_to_hosts(session: Session, offer: Offer, event_type: str) -> None:
    for row in placements.for_offer(session, offer.tenant_id, offer.id):
        _emit(session, offer.tenant_id, event_type, row.partner_tenant_id, offer.id, version=offer.latest_version)


def _check_codes(session: Session, offer: Offer | None, tenant_id: str, settings: OfferSettings) -> None:
    shared = rules.check_code_settings(settings.code_mode, settings.shared_code)
    if shared is not None:
        owner = codes.shared_code_owner(session, tenant_id, shared)
        if owner is not None and (offer is None or owner != offer.id):
            raise Invalid(f"Code '{shared}' is already used by another of your offers.", param="codes.shared_code")
    leaving_pool = offer is not None and offer.code_mode == CodeMode.pool and settings.code_mode != CodeMode.pool
    if leaving_pool and offer is not None and codes.pool_codes_exist(session, tenant_id, offer.id):
        raise Invalid("This offer's pool already holds codes; keep the pool mode.", param="codes.mode")


def create(
    session: Session, actor: Actor, content: OfferContent, settings: OfferSettings, external_id: str | None = None
) -> Offer:
    """A new draft offer."""
    if external_id is not None and not _EXTERNAL_ID.match(external_id):
        raise Invalid("external_id is 1–128 characters of letters, digits and . _ : -", param="external_id")
    _check_codes(session, None, actor.tenant_id, settings)
    return offers.create(session, actor.tenant_id, actor.actor_id, content, settings, external_id)


def _apply(
    session: Session, actor: Actor, offer: Offer, content: OfferContent, settings: OfferSettings, now: datetime
) -> Offer:
    _check_codes(session, offer, actor.tenant_id, settings)
    new_version, changed = offers.revise(session, offer, actor.actor_id, content, settings)
    if new_version:
        # Submitted to every open partnership again; the approved version keeps serving meanwhile.
        _emit_submitted(session, offer, placements.resubmit(session, offer, content, now))
    if changed and offer.state != OfferState.draft:
        _emit_to_hosts(session, offer, OFFER_UPDATED)
        live_offers.refresh_offer(session, offer.tenant_id, offer.id)
    return offer


def edit(
    session: Session, actor: Actor, offer_id: str, changes: Mapping[str, Any], now: datetime | None = None
) -> Offer:
    """Change some fields: names of `OfferContent` (targeting as a whole) and of `OfferSettings`.

    A draft changes in place; a published offer whose content changes gets a new version,
    submitted for approval again.
    """
    unknown = set(changes) - CONTENT_FIELDS - SETTINGS_FIELDS
    if unknown:
        raise ValueError(f"not offer fields: {sorted(unknown)}")
    offer = offers.get(session, actor.tenant_id, offer_id, for_update=True)
    content = offers.content_of(offers.latest_version(session, offer))
    content = replace(content, **{k: v for k, v in changes.items() if k in CONTENT_FIELDS})
    settings = replace(offers.settings_of(offer), **{k: v for k, v in changes.items() if k in SETTINGS_FIELDS})
    return _apply(session, actor, offer, content, settings, now or utcnow())


def upsert(
    session: Session,
    actor: Actor,
    external_id: str,
    content: OfferContent,
    settings: OfferSettings,
    publish_to: Sequence[str] = (),
    now: datetime | None = None,
) -> tuple[Offer, bool]:
    """Create or replace the offer with this external id (sync jobs): (offer, whether it was created).

    Sending the same offer again changes nothing; `publish_to` also submits it to those partnerships.
    """
    now = now or utcnow()
    existing = offers.find_by_external_id(session, actor.tenant_id, external_id, for_update=True)
    if existing is None:
        offer, created = create(session, actor, content, settings, external_id), True
    else:
        offer, created = _apply(session, actor, existing, content, settings, now), False
    if publish_to:
        publish(session, actor, offer.id, publish_to, now)
    return offer, created


def publish(
    session: Session, actor: Actor, offer_id: str, partnership_ids: Sequence[str], now: datetime | None = None
) -> Offer:
    """Submit the latest version to these partnerships for the hosts' approval."""
    if not partnership_ids:
        raise Invalid("Name at least one partnership to publish to.", param="partnership_ids")
    offer = offers.get(session, actor.tenant_id, offer_id, for_update=True)
    offers.change_state(session, offer, OfferAction.publish)
    content = offers.content_of(offers.latest_version(session, offer))
    _emit_submitted(session, offer, placements.publish(session, offer, content, partnership_ids, now or utcnow()))
    return offer


_LIFECYCLE_EVENTS = {
    OfferAction.pause: OFFER_PAUSED,
    OfferAction.resume: OFFER_RESUMED,
    OfferAction.archive: OFFER_ARCHIVED,
}


def change_state(
    session: Session, actor: Actor, offer_id: str, action: OfferAction, now: datetime | None = None
) -> Offer:
    """Pause, resume or archive: every host's live rows follow at once."""
    if action not in _LIFECYCLE_EVENTS:
        raise ValueError(f"not a lifecycle action: {action}")
    offer = offers.get(session, actor.tenant_id, offer_id, for_update=True)
    offers.change_state(session, offer, action)
    if action is OfferAction.archive:
        placements.withdraw_pending(session, offer, now or utcnow())
    _emit_to_hosts(session, offer, _LIFECYCLE_EVENTS[action])
    live_offers.refresh_offer(session, offer.tenant_id, offer.id)
    return offer


def decide(
    session: Session,
    host: Actor,
    offer_id: str,
    version: int,
    *,
    approve: bool,
    reason: str | None = None,
    now: datetime | None = None,
) -> placements.OfferPlacement:
    """The host approves or rejects (with a reason) the version of a partner's offer awaiting it."""
    row = placements.decide(
        session, host.tenant_id, offer_id, version, approve=approve, reason=reason, now=now or utcnow()
    )
    event = OFFER_APPROVED if approve else OFFER_REJECTED
    extra = {} if approve else {"reason": row.rejection_reason}
    _emit(
        session,
        host.tenant_id,
        event,
        row.partner_tenant_id,
        offer_id,
        version=version,
        partnership_id=row.partnership_id,
        **extra,
    )
    live_offers.refresh(session, host.tenant_id, offer_id)
    return row


def upload_codes(session: Session, actor: Actor, offer_id: str, raw_codes: Sequence[str]) -> codes.Upload:
    """Add codes to the offer's single-use pool."""
    result = codes.upload(session, actor.tenant_id, offer_id, raw_codes)
    live_offers.refresh_offer(session, actor.tenant_id, offer_id)
    return result


def generate_codes(session: Session, actor: Actor, offer_id: str, count: int, prefix: str = "") -> list[str]:
    """Generate codes into the offer's single-use pool; the codes, for the shop's checkout."""
    made = codes.generate(session, actor.tenant_id, offer_id, count, prefix)
    live_offers.refresh_offer(session, actor.tenant_id, offer_id)
    return made


def use_budget(session: Session, tenant_id: str, offer_id: str, *, redemptions: int = 1, value: int = 0) -> Offer:
    """Count a redemption against the offer's budget; hosts stop serving it once a budget is spent."""
    offer = offers.use_budget(session, tenant_id, offer_id, redemptions=redemptions, value=value)
    live_offers.refresh_offer(session, tenant_id, offer_id)
    return offer

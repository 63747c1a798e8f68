"""Reading the change feeds: each changed item with its current state, or as a tombstone.

The order and completeness come from `partners.changes`; here each entry is joined to what it
names, read now. An item that no longer exists (an erased customer's consent event, a partner
offer whose approval was withdrawn) comes back with no state: the reader deletes its copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col

from partners import changes, offers
from partners.changes import Feed
from partners.consent_ledger import ConsentEvent
from partners.customers import Customer
from partners.db import owned
from partners.live_offers import LiveOffer
from partners.offer_rules import OfferState
from partners.partnership_rules import State
from partners.partnerships import Partnership
from partners.redemptions import Redemption


@dataclass(frozen=True)
class OfferChange:
    seq: int
    offer_id: str
    changed_at: datetime
    offer: offers.Offer | None
    latest: offers.OfferVersion | None

    @property
    def removed(self) -> bool:
        return self.offer is None or self.offer.state == OfferState.archived


@dataclass(frozen=True)
class PartnerOfferChange:
    seq: int
    partnership_id: str
    offer_id: str
    changed_at: datetime
    row: LiveOffer | None  # the approved version the host may show, if any
    status: str  # 'live', or why the host may not show it

    @property
    def showable(self) -> bool:
        return self.status == "live"


@dataclass(frozen=True)
class RedemptionChange:
    seq: int
    redemption_id: str
    changed_at: datetime
    redemption: Redemption | None
    as_host: bool  # the reader hosted the offer (the redemption is the offering shop's)


@dataclass(frozen=True)
class ConsentEventChange:
    seq: int
    id: str
    changed_at: datetime
    event: ConsentEvent | None
    customer_external_id: str | None


def offers_changed(session: Session, tenant_id: str, after: int, limit: int) -> tuple[list[OfferChange], bool, int]:
    """The tenant's own offers changed after `after`: (items, whether more follow, the last number)."""
    entries, more = changes.read(session, tenant_id, Feed.offers, after, limit)
    ids = [e.key for e in entries]
    found = {o.id: o for o in session.exec(owned(offers.Offer, tenant_id).where(col(offers.Offer.id).in_(ids)))}
    items = []
    for e in entries:
        offer = found.get(e.key)
        latest = offers.latest_version(session, offer) if offer is not None else None
        items.append(OfferChange(e.seq, e.key, e.changed_at, offer, latest))
    return items, more, _last(entries, after)


def partner_offers_changed(
    session: Session, tenant_id: str, after: int, limit: int
) -> tuple[list[PartnerOfferChange], bool, int]:
    """Partner offers the tenant hosts whose showability or content changed after `after`."""
    entries, more = changes.read(session, tenant_id, Feed.partner_offers, after, limit)
    items = []
    for e in entries:
        partnership_id, offer_id = changes.split_key(e.key)
        row = session.get(LiveOffer, (tenant_id, partnership_id, offer_id))
        partnership = session.get(Partnership, (tenant_id, partnership_id))
        if row is None:
            status = "withdrawn"  # no approved version (any more)
        elif partnership is None or partnership.state != State.active:
            status = f"partnership_{partnership.state if partnership else 'ended'}"
        else:
            status = row.status
        items.append(PartnerOfferChange(e.seq, partnership_id, offer_id, e.changed_at, row, status))
    return items, more, _last(entries, after)


def redemptions_changed(
    session: Session, tenant_id: str, after: int, limit: int
) -> tuple[list[RedemptionChange], bool, int]:
    """Redemptions of the tenant's offers, or at the tenant as host, recorded or reversed after `after`."""
    entries, more = changes.read(session, tenant_id, Feed.redemptions, after, limit)
    items = []
    for e in entries:
        owner, redemption_id = changes.split_key(e.key)
        found = session.get(Redemption, (owner, redemption_id))
        visible = found is not None and tenant_id in (found.tenant_id, found.host_tenant_id)
        as_host = owner != tenant_id
        items.append(RedemptionChange(e.seq, redemption_id, e.changed_at, found if visible else None, as_host))
    return items, more, _last(entries, after)


def consent_events_changed(
    session: Session, tenant_id: str, after: int, limit: int
) -> tuple[list[ConsentEventChange], bool, int]:
    """The tenant's consent events recorded (or erased: tombstones) after `after`."""
    entries, more = changes.read(session, tenant_id, Feed.consent_events, after, limit)
    ids = [e.key for e in entries]
    events = {ev.id: ev for ev in session.exec(owned(ConsentEvent, tenant_id).where(col(ConsentEvent.id).in_(ids)))}
    customer_ids = {ev.customer_id for ev in events.values()}
    query = owned(Customer, tenant_id).where(col(Customer.id).in_(customer_ids))
    external = {c.id: c.external_id for c in session.exec(query)}
    items = []
    for e in entries:
        event = events.get(e.key)
        customer = external.get(event.customer_id) if event is not None else None
        items.append(ConsentEventChange(e.seq, e.key, e.changed_at, event, customer))
    return items, more, _last(entries, after)


def _last(entries: Sequence[changes.Entry], after: int) -> int:
    return entries[-1].seq if entries else after

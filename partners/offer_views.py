"""Read models of offers: what the owner sees of its own, and what a host sees of partners' offers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from partners import codes, live_offers, offers, partnerships, placements
from partners import offer_rules as rules
from partners.offer_rules import Approval, CodeMode, OfferState
from partners.partnership_rules import State


@dataclass(frozen=True)
class PlacementView:
    placement: placements.OfferPlacement
    approval: Approval
    serving_status: str | None  # the live row's status: 'live' or why not; None before any approval
    live: bool  # serving customers now


@dataclass(frozen=True)
class OwnerView:
    offer: offers.Offer
    latest: offers.OfferVersion
    status: str
    placements: list[PlacementView]
    codes: codes.CodeCounts | None


@dataclass(frozen=True)
class HostView:
    placement: placements.OfferPlacement
    approval: Approval
    offer_state: OfferState
    pending: offers.OfferVersion | None
    serving: offers.OfferVersion | None
    serving_status: str | None
    live: bool


def _live_now(row: live_offers.LiveOffer | None, partnership: partnerships.Partnership, now: datetime) -> bool:
    return (
        row is not None
        and row.status == "live"
        and partnership.state == State.active
        and rules.in_window(row.starts_at, row.ends_at, now)
    )


def _approval(p: placements.OfferPlacement) -> Approval:
    return rules.approval(p.pending_version, p.serving_version, p.rejected_version)


def owner_view(session: Session, tenant_id: str, offer_id: str, now: datetime) -> OwnerView:
    """The tenant's offer with its latest version, per-partnership approvals and code counts."""
    offer = offers.get(session, tenant_id, offer_id)
    latest = offers.latest_version(session, offer)
    rows = live_offers.rows_for_offer(session, tenant_id, offer_id)
    views = []
    for placement in placements.for_offer(session, tenant_id, offer_id):
        partnership = partnerships.get(session, tenant_id, placement.partnership_id)
        row = rows.get(placement.partnership_id)
        views.append(
            PlacementView(
                placement, _approval(placement), row.status if row else None, _live_now(row, partnership, now)
            )
        )
    status = rules.offer_status(
        OfferState(offer.state), [v.approval for v in views], any(v.live for v in views), latest.ends_at, now
    )
    pool = codes.counts(session, tenant_id, offer_id) if offer.code_mode == CodeMode.pool else None
    return OwnerView(offer, latest, status, views, pool)


def summaries(session: Session, rows: Sequence[offers.Offer]) -> list[tuple[offers.Offer, offers.OfferVersion]]:
    """Each offer with its latest version, for lists."""
    return [(offer, offers.latest_version(session, offer)) for offer in rows]


def host_view(session: Session, placement: placements.OfferPlacement, now: datetime) -> HostView:
    """A partner's offer as the host sees it: the version to decide on and the one that serves."""
    offering, offer_id = placement.offering_tenant_id, placement.offer_id
    offer = session.get(offers.Offer, (offering, offer_id))
    state = OfferState(offer.state) if offer is not None else OfferState.archived

    def version(number: int | None) -> offers.OfferVersion | None:
        return None if number is None else offers.get_version(session, offering, offer_id, number)

    row = session.get(live_offers.LiveOffer, (placement.tenant_id, placement.partnership_id, offer_id))
    partnership = partnerships.get(session, placement.tenant_id, placement.partnership_id)
    return HostView(
        placement=placement,
        approval=_approval(placement),
        offer_state=state,
        pending=version(placement.pending_version),
        serving=version(placement.serving_version),
        serving_status=row.status if row else None,
        live=_live_now(row, partnership, now),
    )


def host_offer(session: Session, host_tenant_id: str, offer_id: str, now: datetime) -> HostView:
    """One partner offer published to the host; NotFound if it never was."""
    return host_view(session, placements.get_for_host(session, host_tenant_id, offer_id), now)

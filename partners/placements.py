"""Offers published to partnerships: stored once per side, approved per version by the host.

The offering tenant's row and the host's row share an id and always change together. A row
holds the version awaiting approval (`pending_version`), the approved version that serves
(`serving_version`) and the last rejection, so an edit of a live offer waits for approval
while the approved version keeps serving.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Column, ForeignKeyConstraint, Integer, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Field, Session, SQLModel, col, select

from partners import changes, partnerships, profiles
from partners import offer_rules as rules
from partners import terms as terms_store
from partners.db import UTCDateTime, keyset_page, owned, utcnow
from partners.errors import Conflict, Invalid, NotFound
from partners.ids import new_id
from partners.offer_rules import OfferContent
from partners.offers import Offer
from partners.partnership_rules import OPEN, State
from partners.taxonomy import load_taxonomy

_REVISION = Column("revision", Integer, nullable=False, default=1)


class OfferPlacement(SQLModel, table=True):
    """One side's view of an offer published to one partnership."""

    __tablename__ = "offer_placements"
    __table_args__ = (
        UniqueConstraint("tenant_id", "offer_id", "partnership_id", name="uq_offer_placements_offer"),
        ForeignKeyConstraint(
            ["tenant_id", "partnership_id"], ["partnerships.tenant_id", "partnerships.id"], ondelete="CASCADE"
        ),
    )
    __mapper_args__ = {"version_id_col": _REVISION}

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(primary_key=True, max_length=40)
    revision: int = Field(default=1, sa_column=_REVISION)
    offer_id: str = Field(max_length=40)
    partnership_id: str = Field(max_length=40)
    partner_tenant_id: str = Field(max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    hosting: bool  # True on the host's row, False on the offering tenant's
    pending_version: int | None = None
    serving_version: int | None = None
    rejected_version: int | None = None
    rejection_reason: str | None = Field(default=None, max_length=rules.MAX_REASON)
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def offering_tenant_id(self) -> str:
        return self.partner_tenant_id if self.hosting else self.tenant_id

    @property
    def host_tenant_id(self) -> str:
        return self.tenant_id if self.hosting else self.partner_tenant_id


def check_fits(
    session: Session, reader: partnerships.Partnership, offering_tenant_id: str, content: OfferContent
) -> None:
    """Invalid unless the content fits the partnership's agreed terms and the host's rules.

    `reader` is either side's partnership row; the terms are read from that side's copy.
    """
    host_tenant_id = reader.partner_tenant_id if reader.tenant_id == offering_tenant_id else reader.tenant_id
    host = profiles.find_profile(session, host_tenant_id)
    name = host.display_name if host is not None else "The partner"
    if reader.agreed_version is None:
        raise Invalid(f"The partnership with {name} has no agreed terms yet.", param="partnership_ids")
    agreed = terms_store.get_version(session, reader.tenant_id, reader.id, reader.agreed_version)
    allowed = agreed.offer_categories.get(offering_tenant_id, [])
    blocked = host.blocked_categories if host is not None else []
    rules.check_fits_partnership(content.targeting.categories, allowed, blocked, load_taxonomy(), partner_name=name)
    rules.check_currency(content.currency, host.currencies if host is not None else [], partner_name=name)


def fits(session: Session, reader: partnerships.Partnership, offering_tenant_id: str, content: OfferContent) -> bool:
    """Whether `check_fits` passes."""
    try:
        check_fits(session, reader, offering_tenant_id, content)
    except Invalid:
        return False
    return True


def _partnership(session: Session, tenant_id: str, partnership_id: str) -> partnerships.Partnership:
    try:
        return partnerships.get(session, tenant_id, partnership_id)
    except NotFound as exc:
        raise NotFound(f"No partnership with id '{partnership_id}'.", param="partnership_ids") from exc


def publish(
    session: Session, offer: Offer, content: OfferContent, partnership_ids: Iterable[str], now: datetime
) -> list[OfferPlacement]:
    """Submit the offer's latest version to each partnership; the placements newly awaiting approval."""
    if content.ends_at is not None and content.ends_at <= now:
        raise Invalid("The offer window has already ended; move it before publishing.", param="ends_at")
    submitted = []
    for partnership_id in dict.fromkeys(partnership_ids):
        partnership = _partnership(session, offer.tenant_id, partnership_id)
        if partnership.state != State.active:
            raise Conflict(
                f"Partnership '{partnership_id}' is {partnership.state}; publish only to active partnerships.",
                param="partnership_ids",
            )
        check_fits(session, partnership, offer.tenant_id, content)
        existing = find(session, offer.tenant_id, offer.id, partnership_id)
        if existing is None:
            submitted.append(_create_pair(session, offer, partnership, now))
        elif not _already_there(existing, offer.latest_version):
            submitted.append(_submit(session, existing, offer.latest_version, now))
    return submitted


def _already_there(placement: OfferPlacement, version: int) -> bool:
    """The version already awaits approval, or already serves with nothing newer waiting."""
    waiting, serving = placement.pending_version, placement.serving_version
    return waiting == version or (waiting is None and serving == version)


def _create_pair(
    session: Session, offer: Offer, partnership: partnerships.Partnership, now: datetime
) -> OfferPlacement:
    placement_id = new_id("opl")
    rows = [
        OfferPlacement(
            tenant_id=tenant,
            id=placement_id,
            offer_id=offer.id,
            partnership_id=partnership.id,
            partner_tenant_id=other,
            hosting=hosting,
            pending_version=offer.latest_version,
            submitted_at=now,
        )
        for tenant, other, hosting in (
            (offer.tenant_id, partnership.partner_tenant_id, False),
            (partnership.partner_tenant_id, offer.tenant_id, True),
        )
    ]
    session.add_all(rows)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict("The offer was published to this partnership meanwhile; read it again.", param="id") from exc
    _touch_offer(session, rows[0])
    return rows[0]


def _submit(session: Session, placement: OfferPlacement, version: int, now: datetime) -> OfferPlacement:
    mine, theirs = _locked_pair(session, placement.tenant_id, placement.id)
    for side in (mine, theirs):
        side.pending_version, side.submitted_at, side.updated_at = version, now, now
        session.add(side)
    _flush(session)
    _touch_offer(session, mine)
    return mine


def resubmit(session: Session, offer: Offer, content: OfferContent, now: datetime) -> list[OfferPlacement]:
    """Submit a new version to every open partnership the offer is published to (Invalid if one refuses it)."""
    submitted = []
    for placement in for_offer(session, offer.tenant_id, offer.id):
        partnership = partnerships.get(session, offer.tenant_id, placement.partnership_id)
        if partnership.state not in OPEN:
            continue
        check_fits(session, partnership, offer.tenant_id, content)
        submitted.append(_submit(session, placement, offer.latest_version, now))
    return submitted


def withdraw_pending(session: Session, offer: Offer, now: datetime) -> None:
    """Withdraw every version still awaiting approval (the offer was archived)."""
    for placement in for_offer(session, offer.tenant_id, offer.id):
        if placement.pending_version is None:
            continue
        for side in _locked_pair(session, placement.tenant_id, placement.id):
            side.pending_version, side.updated_at = None, now
            session.add(side)
        _touch_offer(session, placement)
    _flush(session)


def decide(
    session: Session,
    host_tenant_id: str,
    offer_id: str,
    version: int,
    *,
    approve: bool,
    reason: str | None,
    now: datetime,
) -> OfferPlacement:
    """The host approves or rejects the version awaiting its approval; the host's row after."""
    found = get_for_host(session, host_tenant_id, offer_id)
    mine, theirs = _locked_pair(session, host_tenant_id, found.id)
    if mine.pending_version is None:
        raise Conflict("No version of this offer awaits your approval.", param="version")
    if mine.pending_version != version:
        raise Conflict(
            f"Version {mine.pending_version} awaits your approval, not {version}; read it and decide on that one.",
            param="version",
        )
    if partnerships.get(session, host_tenant_id, mine.partnership_id).state not in OPEN:
        raise Conflict("The partnership has ended; its offers can no longer be approved.", param="offer_id")
    if not approve and not (reason or "").strip():
        raise Invalid("Say why you reject the offer.", param="reason")
    for side in (mine, theirs):
        if approve:
            side.serving_version = version
        else:
            side.rejected_version, side.rejection_reason = version, (reason or "").strip()[: rules.MAX_REASON]
        side.pending_version, side.decided_at, side.updated_at = None, now, now
        session.add(side)
    _flush(session)
    _touch_offer(session, mine)
    return mine


def _touch_offer(session: Session, placement: OfferPlacement) -> None:
    # The offering tenant's offer shows its placements: a placement change is a change of the offer.
    changes.touch(session, placement.offering_tenant_id, changes.Feed.offers, placement.offer_id)


def _locked_pair(session: Session, tenant_id: str, placement_id: str) -> tuple[OfferPlacement, OfferPlacement]:
    mine = session.get(OfferPlacement, (tenant_id, placement_id))
    if mine is None:
        raise NotFound(f"No placement with id '{placement_id}'.", param="id")
    # Lock both rows in one order (by tenant id) so concurrent decisions serialise, never deadlock.
    rows = {}
    for side in sorted((tenant_id, mine.partner_tenant_id)):
        query = select(OfferPlacement).where(
            col(OfferPlacement.tenant_id) == side, col(OfferPlacement.id) == placement_id
        )
        rows[side] = session.exec(query.with_for_update().execution_options(populate_existing=True)).one()
    return rows[tenant_id], rows[mine.partner_tenant_id]


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict("The offer's approval changed meanwhile; read it again.", param="version") from exc


def find(session: Session, tenant_id: str, offer_id: str, partnership_id: str) -> OfferPlacement | None:
    """The tenant's side of the offer's placement on one partnership."""
    query = owned(OfferPlacement, tenant_id).where(
        col(OfferPlacement.offer_id) == offer_id, col(OfferPlacement.partnership_id) == partnership_id
    )
    return session.exec(query).first()


def for_offer(session: Session, tenant_id: str, offer_id: str) -> list[OfferPlacement]:
    """The tenant's placement rows of one offer (the offering side's, or a host's), oldest first."""
    query = owned(OfferPlacement, tenant_id).where(col(OfferPlacement.offer_id) == offer_id)
    return list(session.exec(query.order_by(col(OfferPlacement.id))).all())


def on_partnership(session: Session, tenant_id: str, partnership_id: str) -> list[OfferPlacement]:
    """The tenant's placement rows on one partnership (offers it publishes there, or hosts there)."""
    query = owned(OfferPlacement, tenant_id).where(col(OfferPlacement.partnership_id) == partnership_id)
    return list(session.exec(query.order_by(col(OfferPlacement.id))).all())


def hosted(session: Session, host_tenant_id: str) -> list[OfferPlacement]:
    """Every placement the tenant hosts."""
    query = owned(OfferPlacement, host_tenant_id).where(col(OfferPlacement.hosting).is_(True))
    return list(session.exec(query.order_by(col(OfferPlacement.id))).all())


def get_for_host(session: Session, host_tenant_id: str, offer_id: str) -> OfferPlacement:
    """The host's newest placement of a partner's offer; NotFound if it was never published to the host."""
    rows = [p for p in for_offer(session, host_tenant_id, offer_id) if p.hosting]
    if not rows:
        raise NotFound(f"No partner offer with id '{offer_id}'.", param="offer_id")
    return rows[-1]


def list_for_host(
    session: Session, host_tenant_id: str, *, awaiting: bool | None, after: str | None, limit: int
) -> tuple[Sequence[OfferPlacement], bool]:
    """Partner offers published to the host, a page at a time; `awaiting` filters on a pending version."""
    query = owned(OfferPlacement, host_tenant_id).where(col(OfferPlacement.hosting).is_(True))
    if awaiting is True:
        query = query.where(col(OfferPlacement.pending_version).is_not(None))
    elif awaiting is False:
        query = query.where(col(OfferPlacement.pending_version).is_(None))
    return keyset_page(session, query, OfferPlacement, after, limit)

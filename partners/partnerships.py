"""Partnerships between two retailers: stored once per side, changed on both sides in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Index, Integer, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Field, Session, SQLModel, col, select

from partners import changes, outbox
from partners import terms as terms_store
from partners.db import UTCDateTime, get_owned, keyset_page, owned, utcnow
from partners.errors import Conflict, Invalid, NotFound
from partners.ids import new_id
from partners.partnership_rules import OPEN, Action, Refusal, Situation, State, decide
from partners.retailers import Tenant

_OPEN_STATES = ", ".join(f"'{s}'" for s in sorted(OPEN))
_REVISION = Column("revision", Integer, nullable=False, default=1)


class Partnership(SQLModel, table=True):
    """One side's view of a partnership; the other side holds a row with the same id."""

    __tablename__ = "partnerships"
    __table_args__ = (
        # One open partnership per pair: also what makes two crossing proposals collide.
        Index(
            "uq_partnerships_open_pair",
            "tenant_id",
            "partner_tenant_id",
            unique=True,
            sqlite_where=text(f"state IN ({_OPEN_STATES})"),
            postgresql_where=text(f"state IN ({_OPEN_STATES})"),
        ),
    )

    # Optimistic concurrency on top of row locks: SQLite has no FOR UPDATE, so two writers that
    # read the same revision cannot both win there either.
    __mapper_args__ = {"version_id_col": _REVISION}

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(primary_key=True, max_length=40)
    revision: int = Field(default=1, sa_column=_REVISION)
    partner_tenant_id: str = Field(max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    initiated_by_me: bool
    state: State = Field(max_length=20)
    agreed_version: int | None = None
    pending_version: int | None = None
    pending_by_me: bool = False
    paused_by_me: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PartnershipEvent(SQLModel, table=True):
    """Who did what when, kept on both sides."""

    __tablename__ = "partnership_events"

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(primary_key=True, max_length=40)
    partnership_id: str = Field(max_length=40, index=True)
    action: str = Field(max_length=20)
    actor_tenant_id: str = Field(max_length=40)
    actor_id: str = Field(max_length=40)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str = Field(max_length=20)
    terms_version: int | None = None
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


@dataclass(frozen=True)
class Actor:
    tenant_id: str
    actor_id: str  # the staff user or API client acting


# Webhook event types, in the past tense of each action.
EVENT_TYPES = {
    "propose": "partnership.proposed",
    "accept": "partnership.accepted",
    "counter": "partnership.countered",
    "decline": "partnership.declined",
    "propose_terms": "partnership.terms_proposed",
    "pause": "partnership.paused",
    "resume": "partnership.resumed",
    "end": "partnership.ended",
}


def _record(session: Session, sides: Sequence[Partnership], actor: Actor, action: str, before: str | None) -> None:
    event_id = new_id("pev")
    for side in sides:
        version = side.pending_version or side.agreed_version
        outbox.emit(
            session,
            side.tenant_id,
            EVENT_TYPES[action],
            {
                "partnership_id": side.id,
                "state": str(side.state),
                "terms_version": version,
                "by_me": actor.tenant_id == side.tenant_id,
            },
            recipient=side.tenant_id,
        )
        session.add(
            PartnershipEvent(
                tenant_id=side.tenant_id,
                id=event_id,
                partnership_id=side.id,
                action=action,
                actor_tenant_id=actor.tenant_id,
                actor_id=actor.actor_id,
                from_state=before,
                to_state=side.state,
                terms_version=version,
            )
        )


def propose(session: Session, actor: Actor, partner_tenant_id: str, proposal: terms_store.TermsInput) -> Partnership:
    """Propose a partnership with terms (version 1), which the partner may accept, counter or decline."""
    if partner_tenant_id == actor.tenant_id:
        raise Invalid("A retailer cannot partner with itself.", param="partner_tenant_id")
    if session.get(Tenant, partner_tenant_id) is None:
        # Named after the body's field (get_tenant would say `tenant_id`): what the caller can fix.
        raise NotFound(f"No retailer with id '{partner_tenant_id}'.", param="partner_tenant_id")
    terms_store.validate(proposal)
    if open_with(session, actor.tenant_id, partner_tenant_id) is not None:
        raise Conflict("You already have an open partnership with this retailer.", param="partner_tenant_id")
    partnership_id = new_id("ptn")
    mine = Partnership(
        tenant_id=actor.tenant_id,
        id=partnership_id,
        partner_tenant_id=partner_tenant_id,
        initiated_by_me=True,
        state=State.proposed,
        pending_version=1,
        pending_by_me=True,
    )
    theirs = Partnership(
        tenant_id=partner_tenant_id,
        id=partnership_id,
        partner_tenant_id=actor.tenant_id,
        initiated_by_me=False,
        state=State.proposed,
        pending_version=1,
    )
    session.add_all([mine, theirs])
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict("You already have an open partnership with this retailer.", param="partner_tenant_id") from exc
    terms_store.store_version(
        session, (actor.tenant_id, partner_tenant_id), partnership_id, 1, actor.tenant_id, proposal
    )
    _record(session, (mine, theirs), actor, "propose", None)
    session.flush()
    return mine


def open_with(session: Session, tenant_id: str, partner_tenant_id: str) -> Partnership | None:
    """The open (proposed, active or paused) partnership with this partner, if any."""
    query = owned(Partnership, tenant_id).where(
        col(Partnership.partner_tenant_id) == partner_tenant_id, col(Partnership.state).in_(list(OPEN))
    )
    return session.exec(query).first()


def get(session: Session, tenant_id: str, partnership_id: str) -> Partnership:
    """The tenant's side of a partnership."""
    return get_owned(session, Partnership, tenant_id, partnership_id)


def list_for(
    session: Session, tenant_id: str, state: State | None, after: str | None, limit: int
) -> tuple[Sequence[Partnership], bool]:
    """The tenant's partnerships, a page at a time."""
    query = owned(Partnership, tenant_id)
    if state is not None:
        query = query.where(col(Partnership.state) == state)
    return keyset_page(session, query, Partnership, after, limit)


def history(session: Session, tenant_id: str, partnership_id: str) -> list[PartnershipEvent]:
    """Every action on the partnership, oldest first."""
    get(session, tenant_id, partnership_id)
    query = owned(PartnershipEvent, tenant_id).where(col(PartnershipEvent.partnership_id) == partnership_id)
    return list(session.exec(query.order_by(col(PartnershipEvent.id))).all())


def _locked_sides(session: Session, tenant_id: str, partnership_id: str) -> tuple[Partnership, Partnership]:
    mine = get(session, tenant_id, partnership_id)
    # Lock both rows in one order (by tenant id) so two concurrent actions serialise, never deadlock.
    rows = {}
    for side in sorted((tenant_id, mine.partner_tenant_id)):
        query = select(Partnership).where(col(Partnership.tenant_id) == side, col(Partnership.id) == partnership_id)
        rows[side] = session.exec(query.with_for_update().execution_options(populate_existing=True)).one()
    return rows[tenant_id], rows[mine.partner_tenant_id]


def act(
    session: Session,
    actor: Actor,
    partnership_id: str,
    action: Action,
    *,
    new_terms: terms_store.TermsInput | None = None,
    accepting: tuple[int, str] | None = None,
) -> Partnership:
    """Apply one lifecycle action by `actor`'s side; Conflict when the rules refuse it."""
    mine, theirs = _locked_sides(session, actor.tenant_id, partnership_id)
    situation = Situation(
        state=mine.state,
        pending_terms=mine.pending_version is not None,
        pending_is_mine=mine.pending_by_me,
        paused_by_me=mine.paused_by_me,
    )
    try:
        outcome = decide(situation, action)
    except Refusal as refusal:
        raise Conflict(refusal.reason, param="action") from refusal
    if action is Action.accept:
        _check_accepting(session, mine, accepting)
    if outcome.terms in ("replace", "new"):
        if new_terms is None:
            raise Invalid("Send the terms you propose.", param="terms")
        terms_store.validate(new_terms)
    before = mine.state
    version = _apply_terms(session, mine, theirs, outcome.terms, new_terms)
    for side, is_actor in ((mine, True), (theirs, False)):
        side.state = outcome.state
        if action in (Action.pause, Action.resume):
            side.paused_by_me = is_actor and action is Action.pause
        if outcome.terms in ("replace", "new"):
            side.pending_version, side.pending_by_me = version, is_actor
        side.updated_at = utcnow()
        session.add(side)
    try:
        # Flush before recording: on SQLite (no row locks) a concurrent winner shows up here as stale data.
        session.flush()
        _record(session, (mine, theirs), actor, action, before)
    except StaleDataError as exc:
        raise Conflict("The partnership changed while you acted; read it again.", param="partnership_id") from exc
    if mine.state != before:
        # Whether hosted offers may show follows the partnership's state: both hosts' feeds change.
        for side in (mine, theirs):
            changes.touch_prefix(session, side.tenant_id, changes.Feed.partner_offers, f"{partnership_id}/")
    return mine


def _check_accepting(session: Session, mine: Partnership, accepting: tuple[int, str] | None) -> None:
    """Both sides must accept the same version: the acceptor names the version and agreement it read."""
    assert mine.pending_version is not None
    pending = terms_store.get_version(session, mine.tenant_id, mine.id, mine.pending_version)
    if accepting is None or accepting != (pending.version, pending.agreement_sha256):
        raise Conflict(
            f"You are accepting another version than the one pending (version {pending.version}, agreement "
            f"{pending.agreement_sha256[:12]}…); read it again and accept that one.",
            param="terms_version",
        )


def _apply_terms(
    session: Session, mine: Partnership, theirs: Partnership, change: str, new_terms: terms_store.TermsInput | None
) -> int | None:
    tenants = (mine.tenant_id, theirs.tenant_id)
    if change == "agree":
        assert mine.pending_version is not None
        terms_store.mark_accepted(session, tenants, mine.id, mine.pending_version)
        for side in (mine, theirs):
            side.agreed_version, side.pending_version, side.pending_by_me = side.pending_version, None, False
        return mine.agreed_version
    if change == "drop":
        for side in (mine, theirs):
            side.pending_version, side.pending_by_me = None, False
        return None
    if change in ("replace", "new"):
        assert new_terms is not None
        latest = max(v.version for v in terms_store.all_versions(session, mine.tenant_id, mine.id))
        terms_store.store_version(session, tenants, mine.id, latest + 1, mine.tenant_id, new_terms)
        return latest + 1
    return None


def is_active_partner(session: Session, tenant_id: str, partner_tenant_id: str) -> bool:
    """Whether the two retailers have an active partnership now."""
    found = open_with(session, tenant_id, partner_tenant_id)
    return found is not None and found.state is State.active


def active_partner_ids(session: Session, tenant_id: str) -> list[str]:
    """The tenants this one is actively partnered with."""
    query = owned(Partnership, tenant_id).where(col(Partnership.state) == State.active)
    return [p.partner_tenant_id for p in session.exec(query).all()]

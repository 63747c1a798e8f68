"""The consent ledger's storage: append-only events, and the current state folded from them.

`consent_states` always holds `partners.consent_rules.fold` of `consent_events`: writers
(`partners.consent`) re-fold the purposes they touched in the same transaction. Readers
here answer "does this customer consent to X for partner Y now?" from the stored state.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, ForeignKeyConstraint, Index, Select, UniqueConstraint, and_, exists, func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Field, Session, SQLModel, col, select

from partners.consent_rules import ALL_PARTNERS, EventFacts, KeyState, Purpose, Status, consenting, fold
from partners.customers import Customer
from partners.db import UTCDateTime, keyset_page, owned, utcnow
from partners.ids import is_id, new_id
from partners.notices import IsActivePartner

_REFOLD_CHUNK = 500  # customers per read when re-folding many (keeps IN lists well inside SQLite's limit)
_CUSTOMER_FK = (["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"])


class ConsentEvent(SQLModel, table=True):
    """One purpose of one consent event, as the tenant reported it; never changed."""

    __tablename__ = "consent_events"
    __table_args__ = (
        ForeignKeyConstraint(*_CUSTOMER_FK, ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "notice_id"], ["consent_notices.tenant_id", "consent_notices.id"]),
        UniqueConstraint("tenant_id", "event_id", "purpose", name="uq_consent_events_event_id"),
        UniqueConstraint("tenant_id", "customer_id", "seq", "purpose", name="uq_consent_events_seq"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40)
    id: str = Field(default_factory=lambda: new_id("cev"), primary_key=True, max_length=40)
    customer_id: str = Field(max_length=40)
    event_id: str = Field(max_length=100)
    seq: int  # arrival order among the customer's events
    purpose: str = Field(max_length=40)
    partner: str = Field(max_length=40)  # a partner tenant id, or "all"
    action: str = Field(max_length=20)
    method: str = Field(max_length=40)
    source: str = Field(max_length=40)
    notice_id: str | None = Field(default=None, max_length=40)
    confirms: str | None = Field(default=None, max_length=100)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    origin_ip: str | None = Field(default=None, max_length=45)
    origin_user_agent: str | None = Field(default=None, max_length=500)
    origin_page: str | None = Field(default=None, max_length=2000)


class ConsentState(SQLModel, table=True):
    """The current state of one purpose and scope for one customer: the fold of its events."""

    __tablename__ = "consent_states"
    __table_args__ = (
        ForeignKeyConstraint(*_CUSTOMER_FK, ondelete="CASCADE"),
        Index("ix_consent_states_scope", "tenant_id", "purpose", "partner", "status"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40)
    customer_id: str = Field(primary_key=True, max_length=40)
    purpose: str = Field(primary_key=True, max_length=40)
    partner: str = Field(primary_key=True, max_length=40)
    status: str = Field(max_length=20)
    notice_id: str | None = Field(default=None, max_length=40)
    decided_by: str = Field(max_length=40)
    decided_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def facts(event: ConsentEvent) -> EventFacts:
    """What the fold needs of a stored event."""
    return EventFacts(
        event.id,
        event.event_id,
        event.seq,
        event.occurred_at,
        event.purpose,
        event.partner,
        event.action,
        event.method,
        event.notice_id,
        event.confirms,
    )


def refresh_states(session: Session, tenant_id: str, customer_id: str, purposes: set[str]) -> None:
    """Re-fold one customer's events of these purposes into their state rows."""
    refresh_many(session, tenant_id, {customer_id: purposes})


def refresh_many(session: Session, tenant_id: str, purposes_of: Mapping[str, set[str]]) -> None:
    """Re-fold each customer's events of its purposes into their state rows: two reads per 500
    customers, not two per customer (bulk ingest re-folds a batch's customers once, at its end)."""
    customers = sorted(purposes_of)
    for start in range(0, len(customers), _REFOLD_CHUNK):
        chunk = customers[start : start + _REFOLD_CHUNK]
        every = set().union(*(purposes_of[c] for c in chunk))
        events: defaultdict[str, list[ConsentEvent]] = defaultdict(list)
        for event in session.exec(
            owned(ConsentEvent, tenant_id).where(
                col(ConsentEvent.customer_id).in_(chunk), col(ConsentEvent.purpose).in_(every)
            )
        ):
            if event.purpose in purposes_of[event.customer_id]:
                events[event.customer_id].append(event)
        stored: defaultdict[str, dict[tuple[str, str], ConsentState]] = defaultdict(dict)
        for row in session.exec(
            owned(ConsentState, tenant_id).where(
                col(ConsentState.customer_id).in_(chunk), col(ConsentState.purpose).in_(every)
            )
        ):
            if row.purpose in purposes_of[row.customer_id]:
                stored[row.customer_id][(row.purpose, row.partner)] = row
        for customer_id in chunk:
            _store_states(session, tenant_id, customer_id, events[customer_id], stored[customer_id])
    session.flush()


def _store_states(
    session: Session,
    tenant_id: str,
    customer_id: str,
    events: Sequence[ConsentEvent],
    stored: dict[tuple[str, str], ConsentState],
) -> None:
    folded = fold(facts(event) for event in events)
    for (purpose, partner), state in folded.items():
        row = stored.pop((purpose, partner), None) or ConsentState(
            tenant_id=tenant_id,
            customer_id=customer_id,
            purpose=purpose,
            partner=partner,
            status=state.status,
            decided_by=state.decided_by,
            decided_at=state.decided_at,
        )
        if (row.status, row.notice_id, row.decided_by) != (state.status, state.notice_id, state.decided_by) or (
            row.decided_at != state.decided_at
        ):
            row.status, row.notice_id, row.decided_by = str(state.status), state.notice_id, state.decided_by
            row.decided_at = state.decided_at
            row.updated_at = utcnow()
        session.add(row)
    for orphan in stored.values():
        session.delete(orphan)


def state_rows(
    session: Session, tenant_id: str, customer_id: str, purposes: set[str] | None = None
) -> Sequence[ConsentState]:
    query = owned(ConsentState, tenant_id).where(col(ConsentState.customer_id) == customer_id)
    if purposes is not None:
        query = query.where(col(ConsentState.purpose).in_(purposes))
    return session.exec(query.order_by(col(ConsentState.purpose), col(ConsentState.partner))).all()


def current_state(session: Session, tenant_id: str, customer_id: str) -> Sequence[ConsentState]:
    """The customer's stored current state, by purpose and partner."""
    return state_rows(session, tenant_id, customer_id)


def as_key_states(rows: Sequence[ConsentState]) -> dict[tuple[str, str], KeyState]:
    """Stored state in the shape the fold returns, to compare or to evaluate."""
    return {
        (row.purpose, row.partner): KeyState(Status(row.status), row.notice_id, row.decided_by, row.decided_at)
        for row in rows
    }


def has_consent(
    session: Session,
    tenant_id: str,
    customer_id: str,
    purpose: Purpose,
    partner_id: str,
    *,
    is_active_partner: IsActivePartner,
) -> bool:
    """Whether the customer consents, now, to this purpose for this partner."""
    if partner_id == tenant_id or not is_id(partner_id, "ten"):
        return False
    states = as_key_states(state_rows(session, tenant_id, customer_id, {str(purpose)}))
    if not states:
        return False
    return consenting(states, purpose, partner_id, partner_active=is_active_partner(session, tenant_id, partner_id))


def _consenting(state: type[ConsentState], purpose: Purpose, partner_id: str) -> ColumnElement[bool]:
    """State rows that make a customer consent to `purpose` for this partner (a named state wins over "all")."""
    specific = aliased(ConsentState)
    has_specific = exists().where(
        col(specific.tenant_id) == col(state.tenant_id),
        col(specific.customer_id) == col(state.customer_id),
        col(specific.purpose) == col(state.purpose),
        col(specific.partner) == partner_id,
    )
    return and_(
        col(state.purpose) == purpose,
        col(state.status) == Status.granted,
        or_(col(state.partner) == partner_id, and_(col(state.partner) == ALL_PARTNERS, ~has_specific)),
    )


def count_consenting(
    session: Session, tenant_id: str, purpose: Purpose, partner_id: str, *, is_active_partner: IsActivePartner
) -> int:
    """How many of the tenant's customers consent, now, to this purpose for this partner."""
    if partner_id == tenant_id or not is_active_partner(session, tenant_id, partner_id):
        return 0
    query = select(func.count()).where(
        col(ConsentState.tenant_id) == tenant_id, _consenting(ConsentState, purpose, partner_id)
    )
    return int(session.exec(query).one())


def consenting_customer_ids(tenant_id: str, purpose: Purpose, partner_id: str) -> Select[str]:
    """A query of the tenant's customer ids that consent now to `purpose` for this partner.

    "All partners" consents count, so the caller checks that the partner is active.
    """
    return sa_select(col(ConsentState.customer_id)).where(
        col(ConsentState.tenant_id) == tenant_id, _consenting(ConsentState, purpose, partner_id)
    )


def consenting_email_hashes(session: Session, tenant_id: str, purpose: Purpose, partner_id: str) -> list[str]:
    """The stored keyed email hashes of the customers who consent to `purpose` for this partner."""
    query = (
        select(Customer.email_hash)
        .join(
            ConsentState,
            and_(
                col(ConsentState.tenant_id) == col(Customer.tenant_id),
                col(ConsentState.customer_id) == col(Customer.id),
            ),
        )
        .where(
            col(Customer.tenant_id) == tenant_id,
            col(Customer.email_hash).is_not(None),
            _consenting(ConsentState, purpose, partner_id),
        )
    )
    return [h for h in session.exec(query).all() if h is not None]


def history(
    session: Session, tenant_id: str, customer_id: str, after: str | None, limit: int
) -> tuple[Sequence[ConsentEvent], bool]:
    """The customer's consent events as recorded, a page at a time."""
    query = owned(ConsentEvent, tenant_id).where(col(ConsentEvent.customer_id) == customer_id)
    return keyset_page(session, query, ConsentEvent, after, limit)


def all_events(session: Session, tenant_id: str, customer_id: str) -> Sequence[ConsentEvent]:
    """Every consent event of the customer, in arrival order."""
    query = owned(ConsentEvent, tenant_id).where(col(ConsentEvent.customer_id) == customer_id)
    return session.exec(query.order_by(col(ConsentEvent.seq), col(ConsentEvent.purpose))).all()

"""Recording consent: grants, double opt-in confirmations and withdrawals, checked and appended.

Every write about one customer's consent takes the customer's row lock, numbers its event
(`seq`, the arrival order), appends it, and re-folds the affected purposes into the stored
state in the same transaction (`partners.consent_ledger`). Withdrawals also queue
`consent.withdrawn` for every partner that received anything about the customer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from partners import changes, customer_traces, disclosures, outbox
from partners.consent_ledger import ConsentEvent, current_state, refresh_states
from partners.consent_rules import ALL_PARTNERS, METHODS_FOR, NAMED_PARTNER_ONLY, Action, Method, Purpose, Source
from partners.customers import Customer, check_time, get_customer
from partners.db import owned, utcnow
from partners.errors import Conflict, Invalid, NotFound
from partners.ids import is_id, new_id
from partners.notices import ConsentNotice, IsActivePartner, get_notice

_EVENT_ID = re.compile(r"^[\x21-\x7e]{1,100}$")


@dataclass(frozen=True)
class RequestOrigin:
    """Where the customer's request came from, as evidence."""

    ip: str | None = None
    user_agent: str | None = None
    page_url: str | None = None


@dataclass(frozen=True)
class ConsentInput:
    event_id: str
    action: Action
    method: Method
    source: Source
    occurred_at: datetime
    purposes: tuple[Purpose, ...] = ()
    partner: str | None = None
    notice_id: str | None = None
    confirms: str | None = None
    origin: RequestOrigin = field(default_factory=RequestOrigin)


@dataclass(frozen=True)
class Recorded:
    customer: Customer
    events: Sequence[ConsentEvent]
    replayed: bool


def record_event(
    session: Session,
    tenant_id: str,
    external_id: str,
    event: ConsentInput,
    *,
    is_active_partner: IsActivePartner,
    now: datetime | None = None,
    refold: bool = True,
) -> Recorded:
    """Append a consent event for a known customer; the same event id again is a no-op.

    With `refold=False` the customer's state rows are left for the caller to re-fold
    (`consent_ledger.refresh_many`) before anything reads them: bulk ingest does it once a batch."""
    now = now or utcnow()
    return _record(session, tenant_id, external_id, event, is_active_partner, now, timed=True, refold=refold)


def _record(
    session: Session,
    tenant_id: str,
    external_id: str,
    event: ConsentInput,
    is_active_partner: IsActivePartner | None,
    now: datetime,
    *,
    timed: bool,
    refold: bool = True,
) -> Recorded:
    if not _EVENT_ID.match(event.event_id):
        raise Invalid("event_id must be 1–100 printable characters without spaces.", param="event_id")
    occurred_at = check_time(event.occurred_at, now, "occurred_at")
    if event.method not in METHODS_FOR[event.action]:
        allowed = ", ".join(sorted(METHODS_FOR[event.action]))
        raise Invalid(f"A {event.action} event's method is one of: {allowed}.", param="method")
    customer = get_customer(session, tenant_id, external_id, for_update=True)
    earlier = _events_with_id(session, tenant_id, event.event_id)
    if earlier:
        return Recorded(customer, _replay(earlier, customer, event, occurred_at if timed else None), True)
    if event.action == Action.granted and is_active_partner is not None:
        rows = _grant(session, tenant_id, customer, event, occurred_at, is_active_partner)
    elif event.action == Action.withdrawn:
        rows = _withdrawal(session, tenant_id, customer, event, occurred_at)
    elif event.action == Action.confirmed:
        rows = _confirmation(session, tenant_id, customer, event, occurred_at)
    else:
        raise ValueError("grants need an is_active_partner check")
    _append(session, tenant_id, customer, rows, refold=refold)
    if event.action == Action.withdrawn:
        _tell_recipients(session, tenant_id, customer, rows)
    return Recorded(customer, rows, False)


def _events_with_id(session: Session, tenant_id: str, event_id: str) -> Sequence[ConsentEvent]:
    query = owned(ConsentEvent, tenant_id).where(col(ConsentEvent.event_id) == event_id)
    return session.exec(query.order_by(col(ConsentEvent.purpose))).all()


def _replay(
    earlier: Sequence[ConsentEvent], customer: Customer, event: ConsentInput, occurred_at: datetime | None
) -> Sequence[ConsentEvent]:
    """The stored rows when `event` repeats them; None for `occurred_at` means "whenever it was"."""
    first = earlier[0]
    same = (
        first.customer_id == customer.id
        and (first.action, first.method, first.source) == (event.action, event.method, event.source)
        and occurred_at in (None, first.occurred_at)
        and first.confirms == event.confirms
        and (
            # A confirmation's purposes, partner and notice are the grant's.
            event.action == Action.confirmed
            or (
                (first.partner, first.notice_id) == (event.partner, event.notice_id)
                and {e.purpose for e in earlier} == set(event.purposes)
            )
        )
    )
    if not same:
        raise Conflict(
            f"Event '{event.event_id}' was recorded already with other contents; event ids are unique.",
            param="event_id",
        )
    return earlier


def _purposes(event: ConsentInput) -> tuple[Purpose, ...]:
    if not event.purposes or len(set(event.purposes)) != len(event.purposes):
        raise Invalid("purposes must list each purpose once.", param="purposes")
    return event.purposes


def _new_rows(
    tenant_id: str,
    customer: Customer,
    event: ConsentInput,
    occurred_at: datetime,
    purposes: Sequence[str],
    partner: str,
    notice_id: str | None,
) -> list[ConsentEvent]:
    return [
        ConsentEvent(
            tenant_id=tenant_id,
            customer_id=customer.id,
            event_id=event.event_id,
            seq=0,
            purpose=str(purpose),
            partner=partner,
            action=str(event.action),
            method=str(event.method),
            source=str(event.source),
            notice_id=notice_id,
            confirms=event.confirms,
            occurred_at=occurred_at,
            origin_ip=event.origin.ip,
            origin_user_agent=event.origin.user_agent,
            origin_page=event.origin.page_url,
        )
        for purpose in sorted(purposes)
    ]


def _grant(
    session: Session,
    tenant_id: str,
    customer: Customer,
    event: ConsentInput,
    occurred_at: datetime,
    is_active_partner: IsActivePartner,
) -> list[ConsentEvent]:
    purposes = _purposes(event)
    partner = event.partner
    if partner is None:
        raise Invalid('A grant names one partner, or "all" for all active partners.', param="partner")
    if partner == ALL_PARTNERS:
        named_only = sorted(set(purposes) & NAMED_PARTNER_ONLY)
        if named_only:
            raise Invalid(f"{named_only[0]} is granted to one named partner at a time, not to all.", param="partner")
    elif partner == tenant_id or not is_active_partner(session, tenant_id, partner):
        raise Invalid(f"'{partner}' is not an active partner of yours.", param="partner")
    if event.confirms is not None:
        raise Invalid("Only confirmations name the grant they confirm.", param="confirms")
    notice = _notice(session, tenant_id, event.notice_id, required=True)
    assert notice is not None
    for purpose in purposes:
        if not notice.covers(purpose, partner):
            raise Invalid(
                f"Notice {notice.id} (version {notice.version}) does not ask for {purpose} with this partner.",
                param="notice_id",
            )
    if occurred_at < notice.published_at:
        raise Invalid(f"Notice {notice.id} was not yet published at occurred_at.", param="occurred_at")
    return _new_rows(tenant_id, customer, event, occurred_at, purposes, partner, notice.id)


def _withdrawal(
    session: Session, tenant_id: str, customer: Customer, event: ConsentInput, occurred_at: datetime
) -> list[ConsentEvent]:
    purposes = _purposes(event)
    partner = event.partner
    # Withdrawing is never refused for want of a partnership: former partners can be named too.
    if partner is None or not (partner == ALL_PARTNERS or is_id(partner, "ten")):
        raise Invalid('A withdrawal names one partner (ten_…), or "all".', param="partner")
    if event.confirms is not None:
        raise Invalid("Only confirmations name the grant they confirm.", param="confirms")
    notice = _notice(session, tenant_id, event.notice_id, required=False)
    return _new_rows(tenant_id, customer, event, occurred_at, purposes, partner, notice.id if notice else None)


def _confirmation(
    session: Session, tenant_id: str, customer: Customer, event: ConsentInput, occurred_at: datetime
) -> list[ConsentEvent]:
    if event.confirms is None:
        raise Invalid("A confirmation names the event_id of the double opt-in grant it confirms.", param="confirms")
    if event.purposes or event.partner is not None or event.notice_id is not None:
        raise Invalid("A confirmation takes its purposes, partner and notice from the grant.", param="confirms")
    grants = session.exec(
        owned(ConsentEvent, tenant_id).where(
            col(ConsentEvent.customer_id) == customer.id,
            col(ConsentEvent.event_id) == event.confirms,
            col(ConsentEvent.action) == Action.granted,
        )
    ).all()
    if not grants:
        raise NotFound(f"This customer has no grant with event_id '{event.confirms}'.", param="confirms")
    if grants[0].method != Method.double_opt_in:
        raise Invalid(f"Event '{event.confirms}' was not a double opt-in grant.", param="confirms")
    if occurred_at < grants[0].occurred_at:
        raise Invalid("A confirmation cannot come before the grant it confirms.", param="occurred_at")
    purposes = [grant.purpose for grant in grants]
    return _new_rows(tenant_id, customer, event, occurred_at, purposes, grants[0].partner, grants[0].notice_id)


def _notice(session: Session, tenant_id: str, notice_id: str | None, *, required: bool) -> ConsentNotice | None:
    if notice_id is None:
        if required:
            raise Invalid("A grant cites the notice version (ntc_…) the customer was shown.", param="notice_id")
        return None
    try:
        return get_notice(session, tenant_id, notice_id)
    except NotFound as exc:
        raise NotFound(f"No notice with id '{notice_id}'.", param="notice_id") from exc


def _append(session: Session, tenant_id: str, customer: Customer, rows: list[ConsentEvent], *, refold: bool) -> None:
    """Number the rows after the customer's last event, store them, and re-fold their purposes."""
    last = session.exec(
        select(func.max(ConsentEvent.seq)).where(
            col(ConsentEvent.tenant_id) == tenant_id, col(ConsentEvent.customer_id) == customer.id
        )
    ).one()
    for row in rows:
        row.seq = (last or 0) + 1
    try:
        with session.begin_nested():
            session.add_all(rows)
            session.flush()
    except IntegrityError as exc:
        # The same event id arrived at the same moment for another customer.
        raise Conflict(f"Event '{rows[0].event_id}' was recorded at the same time; retry.", param="event_id") from exc
    for row in rows:
        changes.touch(session, tenant_id, changes.Feed.consent_events, row.id)
    if refold:
        refresh_states(session, tenant_id, customer.id, {row.purpose for row in rows})


def _tell_recipients(session: Session, tenant_id: str, customer: Customer, rows: Sequence[ConsentEvent]) -> None:
    scope = rows[0].partner
    told = [p for p in disclosures.recipients(session, tenant_id, customer.id) if scope in (ALL_PARTNERS, p)]
    if not told:
        return
    # Each partner gets what it holds itself (its impressions, codes, redemptions), never an id
    # of ours that every partner would share.
    traces = customer_traces.collect(session, tenant_id, customer.id)
    for partner_id in told:
        payload = {
            "partner_id": partner_id,
            **customer_traces.references(traces, partner_id).as_payload(),
            "purposes": sorted(row.purpose for row in rows),
            "scope": scope,
            "withdrawn_at": rows[0].occurred_at.isoformat(),
        }
        outbox.emit(session, tenant_id, outbox.CONSENT_WITHDRAWN, payload)


def withdraw(
    session: Session,
    tenant_id: str,
    external_id: str,
    *,
    method: Method,
    source: Source,
    purposes: Sequence[Purpose] = tuple(Purpose),
    partner: str = ALL_PARTNERS,
    origin: RequestOrigin | None = None,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    now: datetime | None = None,
) -> Recorded:
    """Withdraw purposes for one partner or all, effective at once (one call, nothing else needed)."""
    now = now or utcnow()
    event = ConsentInput(
        event_id=event_id or new_id("wdr"),
        action=Action.withdrawn,
        method=method,
        source=source,
        occurred_at=occurred_at or now,
        purposes=tuple(purposes),
        partner=partner,
        origin=origin or RequestOrigin(),
    )
    # Withdrawing never depends on a partnership: former partners can be named too. Without a
    # time of its own, a retry under the same event id is the same withdrawal.
    return _record(session, tenant_id, external_id, event, None, now, timed=occurred_at is not None)


def withdraw_all_partner_purposes(
    session: Session, tenant_id: str, customer: Customer, *, method: Method, source: Source, origin: RequestOrigin
) -> Recorded | None:
    """Withdraw every purpose still granted or pending, for all partners (Global Privacy Control)."""
    live = sorted({row.purpose for row in current_state(session, tenant_id, customer.id) if row.status != "withdrawn"})
    if not live:
        return None
    purposes = tuple(Purpose(purpose) for purpose in live)
    return withdraw(
        session, tenant_id, customer.external_id, method=method, source=source, purposes=purposes, origin=origin
    )

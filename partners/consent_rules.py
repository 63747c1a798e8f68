"""The consent model as pure functions: the vocabulary, and the current state as a fold of events.

State is kept per purpose and scope, the scope being one partner or "all" (all active
partners). Events apply in the order they happened (`occurred_at`), ties broken by the
order they reached us (`seq`), whatever order they arrive in:

- a grant makes the consent valid; a double opt-in grant makes it pending, and only its
  confirmation makes it valid (a pending grant never lowers a valid one);
- a withdrawal ends it, and ends every pending grant before it, so confirming one of those
  afterwards changes nothing: the customer grants again;
- the state for one named partner folds that partner's events together with the "all"
  events, so "all" then "withdraw X" leaves X out, and "X" then "withdraw all" ends X too.

Consent to partner X never covers partner Y; "all" covers a partner only while it is active.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

ALL_PARTNERS = "all"


class Purpose(StrEnum):
    partner_offers = "partner_offers"
    partner_contact_sharing = "partner_contact_sharing"
    overlap_analysis = "overlap_analysis"


# Sharing contact details needs the customer to know exactly who receives them.
NAMED_PARTNER_ONLY = frozenset({Purpose.partner_contact_sharing})


class Action(StrEnum):
    granted = "granted"
    withdrawn = "withdrawn"
    confirmed = "confirmed"


class Status(StrEnum):
    granted = "granted"
    pending = "pending"  # a double opt-in grant waiting for its confirmation
    withdrawn = "withdrawn"


class Method(StrEnum):
    checkbox = "checkbox"
    toggle = "toggle"
    double_opt_in = "double_opt_in"
    email_confirmation = "email_confirmation"
    preference_link = "preference_link"
    unsubscribe_link = "unsubscribe_link"
    global_privacy_control = "global_privacy_control"
    customer_service = "customer_service"


METHODS_FOR: Mapping[Action, frozenset[Method]] = {
    Action.granted: frozenset({Method.checkbox, Method.toggle, Method.double_opt_in}),
    Action.confirmed: frozenset({Method.email_confirmation}),
    Action.withdrawn: frozenset(Method) - {Method.double_opt_in, Method.email_confirmation},
}


class Source(StrEnum):
    checkout = "checkout"
    account_page = "account_page"
    newsletter_signup = "newsletter_signup"
    preference_page = "preference_page"
    email = "email"
    customer_service = "customer_service"
    point_of_sale = "point_of_sale"
    imported = "import"
    other = "other"


@dataclass(frozen=True)
class EventFacts:
    """What the fold needs of one stored consent event (one purpose)."""

    id: str
    event_id: str  # the tenant's id, which confirmations refer to
    seq: int
    occurred_at: datetime
    purpose: str
    partner: str
    action: str
    method: str
    notice_id: str | None = None
    confirms: str | None = None

    @property
    def needs_confirmation(self) -> bool:
        return self.action == Action.granted and self.method == Method.double_opt_in


@dataclass(frozen=True)
class KeyState:
    status: Status
    notice_id: str | None  # the notice of the grant in force or awaiting confirmation
    decided_by: str  # the event that set this status
    decided_at: datetime


def _run(stream: Iterable[EventFacts]) -> KeyState | None:
    state: KeyState | None = None
    pending: dict[str, EventFacts] = {}
    for event in stream:
        if event.action == Action.withdrawn:
            state = KeyState(Status.withdrawn, event.notice_id, event.id, event.occurred_at)
            pending.clear()
        elif event.action == Action.granted and not event.needs_confirmation:
            state = KeyState(Status.granted, event.notice_id, event.id, event.occurred_at)
            pending.clear()
        elif event.action == Action.granted:
            if state is None or state.status is not Status.granted:
                pending[event.event_id] = event
                state = KeyState(Status.pending, event.notice_id, event.id, event.occurred_at)
        elif event.action == Action.confirmed and state is not None and state.status is Status.pending:
            grant = pending.get(event.confirms or "")
            if grant is not None:
                state = KeyState(Status.granted, grant.notice_id, event.id, event.occurred_at)
                pending.clear()
    return state


def order_key(event: EventFacts) -> tuple[datetime, int]:
    """Later by time wins; at the same time, the one that reached us later wins."""
    return event.occurred_at, event.seq


def fold(events: Iterable[EventFacts]) -> dict[tuple[str, str], KeyState]:
    """The current state, by (purpose, partner or "all"), of one customer's events."""
    ordered = sorted(events, key=order_key)
    result: dict[tuple[str, str], KeyState] = {}
    for purpose in {event.purpose for event in ordered}:
        stream = [event for event in ordered if event.purpose == purpose]
        for partner in {event.partner for event in stream}:
            relevant = (partner, ALL_PARTNERS)
            state = _run(event for event in stream if event.partner in relevant)
            if state is not None:
                result[(purpose, partner)] = state
    return result


def fold_purpose(events: Sequence[EventFacts], purpose: str) -> dict[str, KeyState]:
    """The state of one purpose, by partner or "all"."""
    return {partner: state for (p, partner), state in fold(events).items() if p == purpose}


def consenting(
    states: Mapping[tuple[str, str], KeyState], purpose: str, partner_id: str, *, partner_active: bool
) -> bool:
    """Whether the customer consents to `purpose` for this partner now."""
    if not partner_active or partner_id == ALL_PARTNERS:
        return False
    named, every = states.get((purpose, partner_id)), states.get((purpose, ALL_PARTNERS))
    return granted_for_partner(named.status if named else None, every.status if every else None)


def granted_for_partner(named: str | None, every: str | None) -> bool:
    """Given the stored status for one active partner by name and for "all": the named one wins."""
    status = named if named is not None else every
    return status == Status.granted

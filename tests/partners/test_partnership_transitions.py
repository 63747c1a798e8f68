"""The lifecycle table of test_partnership_rules.py, replayed through `partnerships.act()` and the database.

Every reachable situation is arranged with real actions, by a partnership either side
proposed; then every action is taken by one side. Allowed ones must change both sides'
rows as the outcome says (state, pending version and whose it is, who paused) and add one
history event to each; refused ones raise Conflict naming `action` and change nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import Session

from partners import partnerships, terms
from partners.errors import Conflict
from partners.partnership_rules import Action, State
from partners.retailers import Tenant
from tests.factories_partners import terms_input
from tests.partners.test_partnership_rules import ALLOWED

AGREEMENT = terms.agreement_digest(terms_input().agreement_text)
# (state, whose terms are pending as the actor sees it, paused by the actor?) that real actions can reach.
REACHABLE = [
    (State.proposed, "me", False),
    (State.proposed, "them", False),
    *((State.active, pending, False) for pending in (None, "me", "them")),
    *((State.paused, pending, by_me) for pending in (None, "me", "them") for by_me in (False, True)),
    (State.declined, None, False),
    (State.ended, None, False),
]
CASES = [
    (*situation, action, proposer)
    for situation, action, proposer in itertools.product(REACHABLE, Action, ("actor", "other"))
]
_ROW_FIELDS = ("state", "agreed_version", "pending_version", "pending_by_me", "paused_by_me", "revision")


@dataclass
class Pair:
    session: Session
    actor: Tenant
    other: Tenant
    partnership_id: str = ""

    def act(self, by: Tenant, action: Action) -> partnerships.Partnership:
        side = partnerships.get(self.session, by.id, self.partnership_id)
        return partnerships.act(
            self.session,
            partnerships.Actor(by.id, "usr_walker"),
            self.partnership_id,
            action,
            new_terms=terms_input(cap_per_7_days=3),
            accepting=(side.pending_version, AGREEMENT) if side.pending_version is not None else None,
        )

    def row(self, tenant: Tenant) -> dict[str, Any]:
        self.session.expire_all()
        side = partnerships.get(self.session, tenant.id, self.partnership_id)
        return {name: getattr(side, name) for name in _ROW_FIELDS}

    def events(self, tenant: Tenant) -> list[tuple[str, str]]:
        return [
            (e.action, e.actor_tenant_id) for e in partnerships.history(self.session, tenant.id, self.partnership_id)
        ]


def arrange(pair: Pair, proposer: str, state: State, pending: str | None, paused_by_me: bool) -> None:
    """Reach the situation (as the actor sees it) with the actions a retailer would take."""
    me, them = pair.actor, pair.other
    first, second = (me, them) if proposer == "actor" else (them, me)
    pair.partnership_id = partnerships.propose(
        pair.session, partnerships.Actor(first.id, "usr_p"), second.id, terms_input()
    ).id
    if state is State.proposed:
        if (pending == "me") != (first is me):
            pair.act(second, Action.counter)
        return
    if state is State.declined:
        pair.act(second, Action.decline)
        return
    pair.act(second, Action.accept)
    if state is State.ended:
        pair.act(first, Action.end)
        return
    if pending is not None:
        pair.act(me if pending == "me" else them, Action.propose_terms)
    if state is State.paused:
        pair.act(me if paused_by_me else them, Action.pause)


def expected_rows(
    before: dict[str, Any], after_state: State, change: str, action: Action, actor_side: bool, latest: int
) -> dict[str, Any]:
    """One side's row after an allowed action, as the lifecycle documents it."""
    row = {**before, "state": after_state}
    if change == "agree":
        row.update(agreed_version=before["pending_version"], pending_version=None, pending_by_me=False)
    elif change == "drop":
        row.update(pending_version=None, pending_by_me=False)
    elif change in ("replace", "new"):
        row.update(pending_version=latest + 1, pending_by_me=actor_side)
    if action is Action.pause:
        row["paused_by_me"] = actor_side
    elif action is Action.resume:
        row["paused_by_me"] = False
    row.pop("revision")
    return row


@pytest.mark.parametrize(
    ("state", "pending", "paused_by_me", "action", "proposer"),
    CASES,
    ids=[f"{s}-{p or 'none'}-{'pausedbyme' if b else 'x'}-{a}-proposedby{who}" for s, p, b, a, who in CASES],
)
def test_act_persists_each_transition_on_both_sides(
    session: Session,
    make_tenant: Callable[..., Tenant],
    state: State,
    pending: str | None,
    paused_by_me: bool,
    action: Action,
    proposer: str,
) -> None:
    pair = Pair(session, make_tenant(), make_tenant())
    arrange(pair, proposer, state, pending, paused_by_me)
    session.commit()
    mine, theirs = pair.row(pair.actor), pair.row(pair.other)
    assert (mine["state"], mine["paused_by_me"]) == (state, paused_by_me), "arranged the wrong situation"
    assert (mine["pending_version"] is not None, mine["pending_by_me"]) == (pending is not None, pending == "me")
    events_before = pair.events(pair.actor)
    latest = max(v.version for v in terms.all_versions(session, pair.actor.id, pair.partnership_id))
    outcome = ALLOWED.get((state, pending, paused_by_me, action))

    if outcome is None:
        with pytest.raises(Conflict) as refused:
            pair.act(pair.actor, action)
        session.rollback()
        assert refused.value.param == "action" and str(refused.value)
        assert (pair.row(pair.actor), pair.row(pair.other)) == (mine, theirs)
        assert pair.events(pair.actor) == pair.events(pair.other) == events_before
        return

    returned = pair.act(pair.actor, action)
    session.commit()
    assert returned.tenant_id == pair.actor.id and returned.state is outcome.state
    for tenant, before, actor_side in ((pair.actor, mine, True), (pair.other, theirs, False)):
        after = pair.row(tenant)
        assert after["revision"] == before["revision"] + 1
        after.pop("revision")
        assert after == expected_rows(before, outcome.state, outcome.terms, action, actor_side, latest), tenant
        assert pair.events(tenant) == [*events_before, (str(action), pair.actor.id)]


def test_every_situation_of_the_rules_is_replayed() -> None:
    # The allowed transitions the pure table lists from reachable situations are all walked here.
    walked = {(s, p, b, a) for s, p, b, a, _ in CASES}
    assert set(ALLOWED) <= walked
    assert len(CASES) == len(REACHABLE) * len(Action) * 2

"""Every action in every situation, by each side: allowed exactly where the lifecycle says."""

import itertools

import pytest

from partners.partnership_rules import Action, Outcome, Refusal, Situation, State, decide

# (state, who proposed the pending terms, paused by me?, action) -> outcome. Everything else is refused.
# "them" means the terms await my answer; "me" means they await the partner's.
ALLOWED: dict[tuple[State, str | None, bool, Action], Outcome] = {}


def allow(
    state: State, pending: str | None, action: Action, to: State, terms: str, paused: tuple[bool, ...] = (False,)
) -> None:
    for paused_by_me in paused:
        ALLOWED[(state, pending, paused_by_me, action)] = Outcome(to, terms)


BOTH = (False, True)
allow(State.proposed, "them", Action.accept, State.active, "agree")
allow(State.proposed, "them", Action.counter, State.proposed, "replace")
allow(State.proposed, "them", Action.decline, State.declined, "drop")
allow(State.proposed, "me", Action.end, State.ended, "drop")
for pending in (None, "me", "them"):
    allow(State.active, pending, Action.pause, State.paused, "keep")
    allow(State.active, pending, Action.end, State.ended, "drop")
    allow(State.paused, pending, Action.end, State.ended, "drop", BOTH)
    allow(State.paused, pending, Action.resume, State.active, "keep", (True,))
allow(State.active, None, Action.propose_terms, State.active, "new")
allow(State.paused, None, Action.propose_terms, State.paused, "new", BOTH)
for state, paused in ((State.active, (False,)), (State.paused, BOTH)):
    allow(state, "them", Action.accept, state, "agree", paused)
    allow(state, "them", Action.counter, state, "replace", paused)
    allow(state, "them", Action.decline, state, "drop", paused)


CASES = list(itertools.product(State, (None, "me", "them"), (False, True), Action))


@pytest.mark.parametrize(("state", "pending", "paused_by_me", "action"), CASES)
def test_every_transition(state: State, pending: str | None, paused_by_me: bool, action: Action) -> None:
    if paused_by_me and state is not State.paused:
        return  # only a paused partnership has a side that paused it
    situation = Situation(state, pending is not None, pending == "me", paused_by_me)
    expected = ALLOWED.get((state, pending, paused_by_me, action))
    if expected is None:
        with pytest.raises(Refusal) as refused:
            decide(situation, action)
        assert refused.value.reason
    else:
        assert decide(situation, action) == expected


def test_the_table_covers_every_allowed_action_of_the_rules() -> None:
    allowed = 0
    for state, pending, paused_by_me, action in CASES:
        if paused_by_me and state is not State.paused:
            continue
        try:
            decide(Situation(state, pending is not None, pending == "me", paused_by_me), action)
        except Refusal:
            continue
        allowed += 1
    assert allowed == len(ALLOWED)


def test_terminal_states_refuse_everything_with_a_clear_reason() -> None:
    for state in (State.declined, State.ended):
        for action in Action:
            with pytest.raises(Refusal, match=f"is {state}"):
                decide(Situation(state, False, False, False), action)

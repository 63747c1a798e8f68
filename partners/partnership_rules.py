"""The partnership lifecycle as a pure function: who may do what, in which state.

States: proposed → active ⇄ paused → ended; proposed → declined. Terms are versioned:
one side proposes a version, the other accepts, counters or declines it. While a
partnership is active or paused, either side may propose a new version of the terms;
the agreed version keeps applying until the other side accepts the new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    proposed = "proposed"
    active = "active"
    paused = "paused"
    declined = "declined"
    ended = "ended"


class Action(StrEnum):
    accept = "accept"
    counter = "counter"
    decline = "decline"
    propose_terms = "propose_terms"
    pause = "pause"
    resume = "resume"
    end = "end"


TERMINAL = frozenset({State.declined, State.ended})
# States in which a pair of retailers counts as partnered (one such partnership per pair).
OPEN = frozenset({State.proposed, State.active, State.paused})


@dataclass(frozen=True)
class Situation:
    """What the rules need to know, seen from the acting side."""

    state: State
    pending_terms: bool  # a version of the terms awaits acceptance
    pending_is_mine: bool  # ...and the acting side proposed it
    paused_by_me: bool


@dataclass(frozen=True)
class Outcome:
    state: State
    # What happens to the pending version of the terms.
    terms: str  # "agree", "replace", "drop", "new", "keep"


class Refusal(Exception):
    """The action is not allowed now; `reason` says why, for the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decide(situation: Situation, action: Action) -> Outcome:
    """The outcome of `action`, or Refusal."""
    state = situation.state
    if state in TERMINAL:
        raise Refusal(f"This partnership is {state}; propose a new one instead.")
    awaiting_me = situation.pending_terms and not situation.pending_is_mine
    if action in (Action.accept, Action.counter, Action.decline):
        if not awaiting_me:
            raise Refusal(
                "No terms await your answer; you cannot answer your own proposal."
                if situation.pending_terms
                else "No terms await your answer."
            )
        if action is Action.accept:
            return Outcome(State.active if state is State.proposed else state, "agree")
        if action is Action.counter:
            return Outcome(state, "replace")
        # Declining a first proposal declines the partnership; declining new terms keeps the old.
        return Outcome(State.declined if state is State.proposed else state, "drop")
    if action is Action.propose_terms:
        if state is State.proposed:
            raise Refusal("The partnership is still being proposed; counter the terms instead.")
        if situation.pending_terms:
            raise Refusal("A new version of the terms is already awaiting an answer.")
        return Outcome(state, "new")
    if action is Action.pause:
        if state is not State.active:
            raise Refusal(f"Only an active partnership can be paused; this one is {state}.")
        return Outcome(State.paused, "keep")
    if action is Action.resume:
        if state is not State.paused:
            raise Refusal(f"Only a paused partnership can be resumed; this one is {state}.")
        if not situation.paused_by_me:
            raise Refusal("Only the side that paused the partnership can resume it.")
        return Outcome(State.active, "keep")
    # Action.end: either side ends a running partnership; a proposal is withdrawn by its author.
    if state is State.proposed and not situation.pending_is_mine:
        raise Refusal("Decline the proposal instead of ending it.")
    return Outcome(State.ended, "drop")

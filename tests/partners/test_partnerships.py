"""Partnerships stored per side: both sides change together, and racing actions have one winner."""

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from partners import partnerships, terms
from partners.db import unit_of_work
from partners.errors import Conflict, Invalid, NotFound
from partners.partnership_rules import Action, State
from partners.retailers import Tenant
from tests.factories_partners import terms_input


def _actor(tenant: Tenant) -> partnerships.Actor:
    return partnerships.Actor(tenant.id, "usr_someone")


def _accepting(version: int = 1) -> tuple[int, str]:
    return version, terms.agreement_digest(terms_input().agreement_text)


def test_a_proposal_is_stored_on_both_sides(session: Session, make_tenant: Callable[..., Tenant]) -> None:
    beds, care = make_tenant(), make_tenant()
    mine = partnerships.propose(session, _actor(beds), care.id, terms_input())
    theirs = partnerships.get(session, care.id, mine.id)
    assert (mine.state, theirs.state) == (State.proposed, State.proposed)
    assert mine.initiated_by_me and not theirs.initiated_by_me
    assert mine.pending_by_me and not theirs.pending_by_me
    version = terms.get_version(session, care.id, mine.id, 1)
    assert version.offer_categories == {beds.id: ["cat_pet_supplies"], care.id: ["cat_pet_supplies"]}
    assert version.commission_bps == 1000


def test_accept_activates_both_sides_and_records_history(session: Session, make_tenant: Callable[..., Tenant]) -> None:
    beds, care = make_tenant(), make_tenant()
    created = partnerships.propose(session, _actor(beds), care.id, terms_input())
    partnerships.act(session, _actor(care), created.id, Action.accept, accepting=_accepting())
    for tenant in (beds, care):
        side = partnerships.get(session, tenant.id, created.id)
        assert side.state is State.active
        assert side.agreed_version == 1
        assert side.pending_version is None
    assert partnerships.is_active_partner(session, beds.id, care.id)
    assert partnerships.active_partner_ids(session, care.id) == [beds.id]
    actions = [(e.action, e.actor_tenant_id) for e in partnerships.history(session, care.id, created.id)]
    assert actions == [("propose", beds.id), ("accept", care.id)]


def test_accepting_another_version_than_the_pending_one_is_refused(
    session: Session, make_tenant: Callable[..., Tenant]
) -> None:
    beds, care = make_tenant(), make_tenant()
    created = partnerships.propose(session, _actor(beds), care.id, terms_input())
    with pytest.raises(Conflict, match="another version"):
        partnerships.act(session, _actor(care), created.id, Action.accept, accepting=(1, "0" * 64))
    assert partnerships.get(session, care.id, created.id).state is State.proposed


def test_new_terms_need_the_other_side_and_old_ones_stay_readable(
    session: Session, make_partnership: Callable[..., partnerships.Partnership]
) -> None:
    p = make_partnership()
    partner = p.partner_tenant_id
    new = terms_input(commission_percent=12.5, agreement_text="Version two of the agreement.")
    partnerships.act(session, partnerships.Actor(partner, "usr_x"), p.id, Action.propose_terms, new_terms=new)
    mine = partnerships.get(session, p.tenant_id, p.id)
    assert (mine.agreed_version, mine.pending_version, mine.state) == (1, 2, State.active)
    digest = terms.agreement_digest("Version two of the agreement.")
    partnerships.act(session, partnerships.Actor(p.tenant_id, "usr_y"), p.id, Action.accept, accepting=(2, digest))
    mine = partnerships.get(session, p.tenant_id, p.id)
    assert (mine.agreed_version, mine.pending_version) == (2, None)
    assert terms.get_version(session, p.tenant_id, p.id, 1).commission_bps == 1000
    assert terms.get_version(session, p.tenant_id, p.id, 2).commission_bps == 1250


def test_bad_proposals_change_nothing(session: Session, make_tenant: Callable[..., Tenant]) -> None:
    beds, care = make_tenant(), make_tenant()
    with pytest.raises(Invalid) as itself:
        partnerships.propose(session, _actor(beds), beds.id, terms_input())
    assert itself.value.param == "partner_tenant_id"
    with pytest.raises(NotFound) as unknown:
        partnerships.propose(session, _actor(beds), "ten_unknown", terms_input())
    assert unknown.value.param == "partner_tenant_id"
    for field, value in (
        ("commission_percent", 101.0),
        ("cap_per_7_days", -1),
        ("cap_per_30_days", 1),  # below the 7-day cap of 2
        ("attribution_window_days", 0),
        ("reciprocity_target", 0.0),
        ("my_offer_categories", ["cat_nope"]),
        ("partner_offer_categories", []),
        ("agreement_text", "  "),
    ):
        with pytest.raises(Invalid) as refused:
            partnerships.propose(session, _actor(beds), care.id, terms_input(**{field: value}))
        assert refused.value.param == field
    assert partnerships.open_with(session, beds.id, care.id) is None


def test_one_open_partnership_per_pair_either_way(session: Session, make_tenant: Callable[..., Tenant]) -> None:
    beds, care = make_tenant(), make_tenant()
    first = partnerships.propose(session, _actor(beds), care.id, terms_input())
    with pytest.raises(Conflict):
        partnerships.propose(session, _actor(beds), care.id, terms_input())
    with pytest.raises(Conflict):
        partnerships.propose(session, _actor(care), beds.id, terms_input())
    partnerships.act(session, _actor(beds), first.id, Action.end)
    again = partnerships.propose(session, _actor(care), beds.id, terms_input())
    assert again.id != first.id


def test_acting_on_an_ended_partnership_is_refused(
    session: Session, make_partnership: Callable[..., partnerships.Partnership]
) -> None:
    p = make_partnership()
    actor = partnerships.Actor(p.tenant_id, "usr_x")
    partnerships.act(session, actor, p.id, Action.end)
    for action in (Action.pause, Action.resume, Action.end, Action.accept):
        with pytest.raises(Conflict, match="ended"):
            partnerships.act(session, actor, p.id, action)


def test_another_tenant_cannot_see_or_act(
    session: Session, make_partnership: Callable[..., partnerships.Partnership], make_tenant: Callable[..., Tenant]
) -> None:
    p = make_partnership()
    stranger = make_tenant()
    with pytest.raises(NotFound):
        partnerships.get(session, stranger.id, p.id)
    with pytest.raises(NotFound):
        partnerships.act(session, _actor(stranger), p.id, Action.end)


def test_concurrent_accept_and_decline_have_exactly_one_winner(
    engine: Engine, session: Session, make_tenant: Callable[..., Tenant]
) -> None:
    beds, care = make_tenant(), make_tenant()
    created = partnerships.propose(session, _actor(beds), care.id, terms_input())
    session.commit()
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def attempt(action: Action) -> None:
        barrier.wait()
        try:
            with unit_of_work(engine) as s:
                accepting = _accepting() if action is Action.accept else None
                partnerships.act(s, _actor(care), created.id, action, accepting=accepting)
            outcomes[action] = "won"
        except Conflict:
            outcomes[action] = "refused"

    threads = [threading.Thread(target=attempt, args=(a,)) for a in (Action.accept, Action.decline)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["refused", "won"]
    session.expire_all()
    final = partnerships.get(session, beds.id, created.id).state
    winner = next(a for a, o in outcomes.items() if o == "won")
    assert final is (State.active if winner == Action.accept else State.declined)
    assert partnerships.get(session, care.id, created.id).state is final


def test_each_action_is_an_event_for_both_sides(session: Session, make_tenant: Callable[..., Tenant]) -> None:
    from partners.outbox import pending

    beds, care = make_tenant(), make_tenant()
    created = partnerships.propose(session, _actor(beds), care.id, terms_input())
    partnerships.act(session, _actor(care), created.id, Action.accept, accepting=_accepting())
    for tenant, by_me in ((beds, [True, False]), (care, [False, True])):
        events = pending(session, tenant.id)
        assert [e.type for e in events] == ["partnership.proposed", "partnership.accepted"]
        assert [e.payload["by_me"] for e in events] == by_me
        assert events[-1].payload == {
            "partnership_id": created.id,
            "state": "active",
            "terms_version": 1,
            "by_me": by_me[-1],
        }

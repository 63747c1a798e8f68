"""Overlap releases per pair: replayed between refreshes, frozen once the budget is spent, one per race."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from partners import partnerships
from partners.customers import Customer
from partners.db import unit_of_work
from partners.notices import ConsentNotice
from partners.overlap import MAX_RELEASES, REFRESH
from partners.overlap_releases import OverlapAnswer, OverlapRelease, overlap_for
from partners.partnership_rules import Action
from partners.partnerships import Actor, Partnership
from partners.retailers import Tenant
from tests.api.test_overlap_api import _audience
from tests.factories_partners import CARE_CATEGORIES

KEY = b"o" * 32
T0 = datetime(2026, 12, 2, 9, tzinfo=UTC)


@pytest.fixture
def pair(
    session: Session,
    make_profile: Callable[..., Tenant],
    make_partnership: Callable[..., Partnership],
    make_customer: Callable[..., Customer],
    make_notice: Callable[..., ConsentNotice],
) -> tuple[Tenant, Tenant, Partnership]:
    beds = make_profile(display_name="Beds", overlap_opt_in=True)
    care = make_profile(display_name="Care", categories=CARE_CATEGORIES, overlap_opt_in=True)
    ptn = make_partnership(proposer=beds, partner=care)
    _audience(session, make_customer, make_notice(beds), beds, range(0, 120))
    _audience(session, make_customer, make_notice(care), care, range(20, 160))
    return beds, care, ptn


def _releases(session: Session, *tenants: str) -> int:
    first, second = sorted(tenants)
    query = select(func.count()).select_from(OverlapRelease)
    query = query.where(col(OverlapRelease.first_tenant_id) == first, col(OverlapRelease.second_tenant_id) == second)
    return session.exec(query).one()


def test_an_estimate_is_replayed_until_the_refresh_then_measured_again(
    session: Session, pair: tuple[Tenant, Tenant, Partnership]
) -> None:
    beds, care, ptn = pair
    rng = random.Random(11)
    first = overlap_for(session, beds.id, ptn.id, KEY, T0, rng)
    assert first.as_of == T0 and first.releases_left == MAX_RELEASES - 1
    assert first.next_release_at == T0 + REFRESH
    # Either side, any time before the refresh: the same release.
    assert overlap_for(session, beds.id, ptn.id, KEY, T0 + REFRESH / 2, rng) == first
    theirs = overlap_for(session, care.id, ptn.id, KEY, T0 + REFRESH / 2, rng)
    assert theirs.estimate.overlap == first.estimate.overlap
    assert theirs.estimate.share_of_mine == first.estimate.share_of_theirs
    assert _releases(session, beds.id, care.id) == 1
    second = overlap_for(session, care.id, ptn.id, KEY, T0 + REFRESH, rng)
    assert second.as_of == T0 + REFRESH and second.releases_left == MAX_RELEASES - 2
    assert _releases(session, beds.id, care.id) == 2


def test_once_the_budget_is_spent_the_last_estimate_stays_for_good(
    session: Session, pair: tuple[Tenant, Tenant, Partnership]
) -> None:
    beds, _, ptn = pair
    rng = random.Random(12)
    answers = [overlap_for(session, beds.id, ptn.id, KEY, T0 + REFRESH * i, rng) for i in range(MAX_RELEASES + 3)]
    last: OverlapAnswer = answers[MAX_RELEASES - 1]
    assert last.releases_left == 0 and last.next_release_at is None
    assert answers[MAX_RELEASES:] == [last] * 3
    assert _releases(session, *sorted((beds.id, ptn.partner_tenant_id))) == MAX_RELEASES


def test_ending_and_proposing_again_does_not_renew_the_budget(
    session: Session,
    pair: tuple[Tenant, Tenant, Partnership],
    make_partnership: Callable[..., Partnership],
) -> None:
    beds, care, ptn = pair
    first = overlap_for(session, beds.id, ptn.id, KEY, T0, random.Random(13))
    partnerships.act(session, Actor(beds.id, "stf_test"), ptn.id, Action.end)
    session.commit()
    again = make_partnership(proposer=care, partner=beds)
    replayed = overlap_for(session, care.id, again.id, KEY, T0 + REFRESH / 3, random.Random(14))
    assert replayed.as_of == first.as_of and replayed.estimate.overlap == first.estimate.overlap
    assert _releases(session, beds.id, care.id) == 1


def test_two_reads_that_find_a_release_due_store_one_and_agree(
    engine: Engine, session: Session, pair: tuple[Tenant, Tenant, Partnership]
) -> None:
    beds, care, ptn = pair
    answers: dict[str, OverlapAnswer] = {}
    errors: list[BaseException] = []

    def second_reader() -> None:
        try:
            with unit_of_work(engine) as other:
                answers["care"] = overlap_for(other, care.id, ptn.id, KEY, T0)
        except BaseException as exc:
            errors.append(exc)

    # The first reader has inserted the release but not committed when the second one, which
    # cannot see it yet, draws and inserts the same key: it must wait, then read the winner's.
    with unit_of_work(engine) as first:
        answers["beds"] = overlap_for(first, beds.id, ptn.id, KEY, T0)
        thread = threading.Thread(target=second_reader)
        thread.start()
        time.sleep(0.5)
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert errors == []
    assert answers["beds"].estimate.overlap == answers["care"].estimate.overlap
    assert answers["beds"].estimate.share_of_mine == answers["care"].estimate.share_of_theirs
    assert _releases(session, beds.id, care.id) == 1

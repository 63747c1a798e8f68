"""The exchange on psycopg's async driver (PostgreSQL only): the same answer as the sync path, each
host's offers kept only while their fingerprint holds, and one single-use code per customer even
when many answers run at once."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from partners import churn_signals, exchange, exchange_async, holdouts, offer_actions, serving_cache
from partners.codes import OfferCode
from partners.consent_rules import Action
from partners.customers import Customer
from partners.db import utcnow
from partners.db_async import open_pool
from partners.impressions import ExchangeAnswer
from partners.offer_rules import OfferAction
from tests.factories_exchange import Story, buy, consent_to
from tests.factories_offers import actor

pytestmark = pytest.mark.skipif(
    not os.environ.get("PARTNERLOOP_TEST_DATABASE_URL"), reason="the async path runs on PostgreSQL only"
)
KEY = b"a" * 32


def _request(external_id: str = "dog-owner-1", **options: Any) -> exchange.ExchangeRequest:
    return exchange.ExchangeRequest(external_id, exchange.Placement.email, region="GB", **options)


async def _answers(
    engine: Engine, host: str, requests: list[exchange.ExchangeRequest], cache: serving_cache.ServingCache
) -> list[exchange.ExchangeResult]:
    pool = await open_pool(engine, min_size=1, max_size=8)
    try:

        async def one(request: exchange.ExchangeRequest) -> exchange.ExchangeResult:
            async with pool.connection() as conn:
                answered = await exchange_async.answer(conn, host, request, now=utcnow(), code_key=KEY, cache=cache)
                return answered.result

        return list(await asyncio.gather(*(one(r) for r in requests)))
    finally:
        await pool.close()


def _run(engine: Engine, host: str, requests: list[exchange.ExchangeRequest], cache: Any = None) -> Any:
    return asyncio.run(_answers(engine, host, requests, cache or serving_cache.ServingCache()))


def test_the_same_answer_as_the_sync_path(
    engine: Engine, session: Session, exchange_story: Callable[..., Story]
) -> None:
    story = exchange_story(shared_code="SNOOZE10")
    [fast] = _run(engine, story.setup.host.id, [_request(dry_run=True)])
    slow = exchange.answer(session, story.setup.host.id, _request(dry_run=True), now=utcnow(), code_key=KEY)
    assert [(s.offer, s.code, s.rank, s.score, s.partner_name) for s in fast.offers] == [
        (s.offer, s.code, s.rank, s.score, s.partner_name) for s in slow.offers
    ]
    assert fast.decisions == slow.decisions and fast.offers


def test_kept_rows_are_used_while_the_fingerprint_holds_and_replaced_after_a_change(
    engine: Engine, session: Session, exchange_story: Callable[..., Story]
) -> None:
    story = exchange_story()
    cache = serving_cache.ServingCache()
    host = story.setup.host.id
    _run(engine, host, [_request(dry_run=True)], cache)
    kept = cache.kept(host)
    assert kept is not None and kept.fingerprint and len(kept.rows) == 1
    _run(engine, host, [_request(dry_run=True)], cache)
    assert cache.kept(host) is kept, "unchanged data: the same kept rows"
    offer_actions.change_state(session, actor(story.setup.offering), story.offer.id, OfferAction.pause)
    session.commit()
    [paused] = _run(engine, host, [_request(dry_run=True)], cache)
    assert paused.offers == []
    replaced = cache.kept(host)
    assert replaced is not None and replaced.fingerprint != kept.fingerprint and replaced.rows == ()


def test_a_withdrawal_stops_offers_at_once_while_the_rows_are_kept(
    engine: Engine, session: Session, exchange_story: Callable[..., Story]
) -> None:
    story = exchange_story()
    cache = serving_cache.ServingCache()
    assert _run(engine, story.setup.host.id, [_request(dry_run=True)], cache)[0].offers
    consent_to(session, story.setup.host.id, "dog-owner-1", story.setup.offering.id, Action.withdrawn)
    session.commit()
    [after] = _run(engine, story.setup.host.id, [_request(dry_run=True)], cache)
    assert after.offers == [] and after.decisions["no_consent"] == 1


def test_concurrent_answers_never_give_one_code_to_two_customers(
    engine: Engine, session: Session, exchange_story: Callable[..., Story], make_customer: Callable[..., Customer]
) -> None:
    story = exchange_story(pool=6)
    host = story.setup.host.id
    customers = [f"dog-owner-{i}" for i in range(2, 9)]
    for external_id in customers:
        make_customer(tenant=story.setup.host, external_id=external_id)
        buy(session, host, external_id, "cat_dog_beds", 9000)
        consent_to(session, host, external_id, story.setup.offering.id, Action.granted, story.notice_id)
    session.commit()
    asking = ["dog-owner-1", *customers]
    results = _run(engine, host, [_request(external_id) for external_id in asking])
    given = [s.code for r in results for s in r.offers]
    assert len(given) == 6 and len(set(given)) == 6, "six codes, each to one customer"
    assert sum(r.decisions.get("no_code", 0) for r in results) == 2
    held = session.exec(select(OfferCode).where(OfferCode.offer_id == story.offer.id)).all()
    assert len({c.reserved_for for c in held if c.reserved_for}) == 6
    # A customer asking again keeps its code.
    lucky = next(i for i, r in enumerate(results) if r.offers)
    again = _run(engine, host, [_request(asking[lucky])])[0].offers
    assert [s.code for s in again] == [s.code for s in results[lucky].offers]


def test_win_back_on_the_async_path_reaches_customers_at_risk_only(
    engine: Engine, session: Session, exchange_story: Callable[..., Story]
) -> None:
    story = exchange_story()
    host = story.setup.host.id
    win_back = exchange.ExchangeRequest("dog-owner-1", exchange.Placement.win_back, region="GB")
    [active] = _run(engine, host, [win_back])
    assert active.offers == [] and active.decisions == {"placement_not_at_risk": 1}
    recorded = session.exec(select(ExchangeAnswer).where(ExchangeAnswer.id == active.answer_id)).one()
    assert recorded.decisions == {"placement_not_at_risk": 1}
    churn_signals.reassess_tenant(session, host, utcnow() + timedelta(days=160))  # 170 days silent: at risk
    session.commit()
    [at_risk] = _run(engine, host, [win_back])
    assert [s.offer.offer_id for s in at_risk.offers] == [story.offer.id]


def test_a_held_out_customer_is_refused_on_the_async_path_and_both_groups_are_recorded(
    engine: Engine, session: Session, exchange_story: Callable[..., Story], make_customer: Callable[..., Customer]
) -> None:
    story = exchange_story(shared_code="SNOOZE10")
    host = story.setup.host.id
    running = holdouts.set_for_partnership(session, host, story.setup.partnership_id, holdouts.MAX_SHARE_BPS, utcnow())
    assert running is not None
    groups: dict[bool, str] = {}
    for i in range(2, 60):  # the draw is a keyed hash of the customer's id: find one of each group
        if len(groups) == 2:
            break
        external_id = f"dog-owner-{i}"
        customer = make_customer(tenant=story.setup.host, external_id=external_id)
        out = holdouts.is_held_out(KEY, host, running.id, customer.id, running.share_bps)
        if out not in groups:
            buy(session, host, external_id, "cat_dog_beds", 9000)
            consent_to(session, host, external_id, story.setup.offering.id, Action.granted, story.notice_id)
            groups[out] = external_id
    session.commit()
    [dry] = _run(engine, host, [_request(groups[True], dry_run=True)])
    assert dry.offers == [] and dry.decisions["holdout"] == 1
    assert session.exec(select(holdouts.HoldoutAssignment)).all() == [], "a dry run records no group"
    held, shown = _run(engine, host, [_request(groups[True]), _request(groups[False])])
    assert held.offers == [] and held.decisions["holdout"] == 1
    assert len(shown.offers) == 1 and "holdout" not in shown.decisions
    by_id = {c.id: c.external_id for c in session.exec(select(Customer).where(Customer.tenant_id == host))}
    recorded = {by_id[a.customer_id]: a.held_out for a in session.exec(select(holdouts.HoldoutAssignment))}
    assert recorded == {groups[True]: True, groups[False]: False}

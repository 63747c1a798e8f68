"""Factories for redemptions: a partner offer shown to a consenting customer, with its impression and code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import Session

from partners import exchange
from partners.db import utcnow
from partners.ids import new_id
from partners.redemptions import Redemption
from partners.retailers import Tenant
from tests.factories_exchange import Story

CODE_KEY = b"r" * 32


@dataclass
class ShownOffer:
    story: Story
    impression_id: str
    code: str | None

    @property
    def host(self) -> Tenant:
        return self.story.setup.host

    @property
    def offering(self) -> Tenant:
        return self.story.setup.offering

    @property
    def partnership_id(self) -> str:
        return self.story.setup.partnership_id


@pytest.fixture
def show_offer(session: Session) -> Callable[..., ShownOffer]:
    """Ask the exchange for the story's host about `customer`; the one offer it shows."""

    def show(story: Story, customer: str = "dog-owner-1") -> ShownOffer:
        request = exchange.ExchangeRequest(customer, exchange.Placement.order_confirmation)
        result = exchange.answer(session, story.setup.host.id, request, now=utcnow(), code_key=CODE_KEY)
        session.commit()
        [shown] = result.offers
        assert shown.impression_id is not None
        return ShownOffer(story, shown.impression_id, shown.code)

    return show


@pytest.fixture
def shown_offer(
    exchange_story: Callable[..., Story], show_offer: Callable[..., ShownOffer]
) -> Callable[..., ShownOffer]:
    """The bed shop's offer shown by the care shop to its consenting dog owner (single-use codes by default)."""

    def make(pool: int = 5, **content: Any) -> ShownOffer:
        return show_offer(exchange_story(pool=pool, **content))

    return make


@pytest.fixture
def make_redemption(session: Session) -> Callable[..., Redemption]:
    """A bare redemption row owned by `tenant` (for isolation checks; no impression behind it)."""

    def make(tenant: Tenant) -> Redemption:
        redemption = Redemption(
            tenant_id=tenant.id,
            id=new_id("red"),
            order_id=new_id("ord"),
            impression_id=new_id("imp"),
            partnership_id=new_id("prt"),
            host_tenant_id=tenant.id,
            offer_id=new_id("off"),
            code=None,
            order_value=1000,
            currency="GBP",
            commission_bps=1000,
            commission=100,
            redeemed_at=utcnow(),
        )
        session.add(redemption)
        session.commit()
        return redemption

    return make

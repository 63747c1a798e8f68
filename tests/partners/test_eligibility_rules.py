"""Each eligibility rule of the exchange, turned off alone: the offer shown a moment before is no longer shown."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlmodel import Session

from partners import codes, exchange, impressions, offer_actions, privacy, serving
from partners.consent_rules import Action
from partners.db import utcnow
from partners.ids import new_id
from partners.offer_rules import Budget, OfferAction, Targeting
from partners.partnership_rules import Action as PartnershipAction
from partners.settings import Settings
from partners.terms import agreement_digest
from tests.factories_exchange import Story, consent_to
from tests.factories_offers import actor
from tests.factories_partners import CARE_CATEGORIES, profile_input, terms_input

KEY = b"e" * 32
ENDS_IN = timedelta(days=30)


@dataclass(frozen=True)
class Ask:
    """How the host asks after the rule was turned off (most rules change data, some the request)."""

    now: datetime | None = None
    region: str = "GB"


Breaker = Callable[[Session, Story, Settings], Ask | None]


def pause_partnership(session: Session, story: Story, _: Settings) -> None:
    serving.act_on_partnership(session, actor(story.setup.host), story.setup.partnership_id, PartnershipAction.pause)


def end_partnership(session: Session, story: Story, _: Settings) -> None:
    serving.act_on_partnership(session, actor(story.setup.offering), story.setup.partnership_id, PartnershipAction.end)


def terms_stop_allowing_the_category(session: Session, story: Story, _: Settings) -> None:
    # The host proposes terms that allow the bed shop's offers only in cat litter; the bed shop agrees.
    terms = terms_input(my_offer_categories=["cat_flea_tick"], partner_offer_categories=["cat_cat_litter"])
    host, offering, pid = actor(story.setup.host), actor(story.setup.offering), story.setup.partnership_id
    serving.act_on_partnership(session, host, pid, PartnershipAction.propose_terms, new_terms=terms)
    accepting = (2, agreement_digest(terms.agreement_text))
    serving.act_on_partnership(session, offering, pid, PartnershipAction.accept, accepting=accepting)


def host_blocks_the_category(session: Session, story: Story, _: Settings) -> None:
    rules = profile_input(display_name="Pawsome Care", categories=CARE_CATEGORIES, blocked_categories=["cat_dog_beds"])
    serving.save_profile(session, story.setup.host.id, rules)


def pause_offer(session: Session, story: Story, _: Settings) -> None:
    offer_actions.change_state(session, actor(story.setup.offering), story.offer.id, OfferAction.pause)


def archive_offer(session: Session, story: Story, _: Settings) -> None:
    offer_actions.change_state(session, actor(story.setup.offering), story.offer.id, OfferAction.archive)


def window_over(session: Session, story: Story, _: Settings) -> Ask:
    return Ask(now=utcnow() + ENDS_IN + timedelta(hours=1))


def budget_spent(session: Session, story: Story, _: Settings) -> None:
    offer_actions.edit(session, actor(story.setup.offering), story.offer.id, {"budget": Budget(redemptions=1)})
    offer_actions.use_budget(session, story.setup.offering.id, story.offer.id, redemptions=1)


def codes_run_out(session: Session, story: Story, _: Settings) -> None:
    for other in ("someone-else-1", "someone-else-2"):
        assert codes.reserve_code(session, story.setup.offering.id, story.offer.id, other) is not None


def consent_withdrawn(session: Session, story: Story, _: Settings) -> None:
    consent_to(session, story.setup.host.id, "dog-owner-1", story.setup.offering.id, Action.withdrawn)


def customer_erased(session: Session, story: Story, settings: Settings) -> None:
    key = settings.identity_hash_key.get_secret_value().encode()
    privacy.erase_customer(session, story.setup.host.id, "dog-owner-1", hash_key=key)


def frequency_cap_reached(session: Session, story: Story, _: Settings) -> None:
    # Two partner offers shown this week (the terms cap is 2 per 7 days, over all the host's partners).
    setup = story.setup
    impressions.record(
        session,
        host_tenant_id=setup.host.id,
        answer_id=new_id("exa"),
        customer_id=story.customer.id,
        placement="email",
        shown=[
            impressions.Shown(new_id("imp"), setup.partnership_id, setup.offering.id, story.offer.id, 1, None, 1, 1.0)
            for _ in range(2)
        ],
        decisions={},
        now=utcnow(),
    )


def outside_targeted_regions(session: Session, story: Story, _: Settings) -> Ask:
    return Ask(region="FR")


BREAKERS: dict[str, Breaker] = {
    "partnership paused": pause_partnership,
    "partnership ended": end_partnership,
    "terms no longer allow the category": terms_stop_allowing_the_category,
    "host brand safety blocks the category": host_blocks_the_category,
    "offer paused": pause_offer,
    "offer archived": archive_offer,
    "offer window over": window_over,
    "budget spent": budget_spent,
    "no single-use code left": codes_run_out,
    "consent withdrawn": consent_withdrawn,
    "customer erased (suppressed)": customer_erased,
    "frequency cap reached": frequency_cap_reached,
    "targeting: region": outside_targeted_regions,
}


def ask(session: Session, story: Story, how: Ask, dry_run: bool = False) -> exchange.ExchangeResult:
    request = exchange.ExchangeRequest(
        "dog-owner-1", exchange.Placement.order_confirmation, region=how.region, dry_run=dry_run
    )
    result = exchange.answer(session, story.setup.host.id, request, now=how.now or utcnow(), code_key=KEY)
    session.commit()
    return result


@pytest.fixture
def eligible_story(exchange_story: Callable[..., Story]) -> Story:
    """Every rule holds: a live pool offer for GB dog owners, a consenting dog owner in GB."""
    targeting = Targeting(categories=("cat_designer_dog_beds",), regions=("GB",))
    return exchange_story(pool=2, targeting=targeting, ends_at=utcnow() + ENDS_IN)


def test_with_every_rule_holding_the_offer_is_shown(session: Session, eligible_story: Story) -> None:
    result = ask(session, eligible_story, Ask())
    assert [s.offer.offer_id for s in result.offers] == [eligible_story.offer.id]
    assert result.offers[0].code is not None


@pytest.mark.parametrize("rule", list(BREAKERS))
def test_turning_one_rule_off_stops_the_offer(
    rule: str, session: Session, eligible_story: Story, settings: Settings
) -> None:
    assert ask(session, eligible_story, Ask(), dry_run=True).offers, "shown while every rule holds"
    how = BREAKERS[rule](session, eligible_story, settings) or Ask()
    session.commit()
    result = ask(session, eligible_story, how)
    assert result.offers == [], f"still shown after: {rule}"

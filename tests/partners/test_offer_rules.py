"""Offer rules as pure functions: valid offers, lifecycle moves, what may serve."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from partners import offer_rules as rules
from partners.errors import Conflict, Invalid
from partners.offer_rules import (
    Approval,
    Budget,
    CodeMode,
    OfferAction,
    OfferKind,
    OfferState,
    ServingFacts,
    Targeting,
)
from partners.taxonomy import load_taxonomy
from tests.factories_offers import offer_content

T0 = datetime(2026, 5, 1, 9, tzinfo=UTC)
TREE = load_taxonomy()


def test_a_valid_offer_passes() -> None:
    assert rules.validate_content(offer_content(), TREE) is None  # type: ignore[func-returns-value]


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"percent_off": 0.0}, "percent_off"),
        ({"percent_off": -5.0}, "percent_off"),
        ({"percent_off": 100.5}, "percent_off"),
        ({"percent_off": 12.345}, "percent_off"),
        ({"percent_off": float("nan")}, "percent_off"),
        ({"percent_off": None}, "percent_off"),
        ({"kind": OfferKind.amount_off, "percent_off": None}, "amount_off"),
        ({"kind": OfferKind.amount_off, "percent_off": None, "amount_off": 0}, "amount_off"),
        ({"kind": OfferKind.amount_off, "percent_off": None, "amount_off": -100}, "amount_off"),
        ({"kind": OfferKind.free_shipping}, "percent_off"),
        ({"kind": OfferKind.free_shipping, "percent_off": None, "amount_off": 500}, "amount_off"),
        ({"minimum_order": -1}, "minimum_order"),
        ({"ends_at": T0 - timedelta(days=1), "starts_at": T0}, "ends_at"),
        ({"ends_at": T0, "starts_at": T0}, "ends_at"),
        ({"starts_at": datetime(2026, 5, 1, 9)}, "starts_at"),  # naive on purpose
        ({"ends_at": datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))}, "ends_at"),
        ({"starts_at": datetime(1970, 1, 1, tzinfo=UTC)}, "starts_at"),
        ({"kind": OfferKind.early_access, "percent_off": None}, "public_sale_starts_at"),
        ({"public_sale_starts_at": T0}, "public_sale_starts_at"),
        ({"kind": OfferKind.referral_bonus, "percent_off": None, "amount_off": 500}, "friend_amount_off"),
        ({"friend_amount_off": 500}, "friend_amount_off"),
        ({"currency": "gbp"}, "currency"),
        ({"landing_url": "javascript:alert(1)"}, "landing_url"),
        ({"title": "   "}, "title"),
        ({"targeting": Targeting(categories=())}, "targeting.categories"),
        ({"targeting": Targeting(categories=("cat_nope",))}, "targeting.categories"),
        ({"targeting": Targeting(categories=("cat_dog_beds",), price_min=5000, price_max=1000)}, "targeting.price_max"),
        ({"targeting": Targeting(categories=("cat_dog_beds",), regions=("GBR",))}, "targeting.regions"),
        ({"targeting": Targeting(categories=("cat_dog_beds",), min_lifetime_value=-1)}, "targeting.min_lifetime_value"),
    ],
)
def test_bad_offers_are_refused_naming_the_field(overrides: dict[str, Any], param: str) -> None:
    with pytest.raises(Invalid) as refused:
        rules.validate_content(offer_content(**overrides), TREE)
    assert refused.value.param == param


@pytest.mark.parametrize(
    "overrides",
    [
        {"percent_off": 100.0},
        {"percent_off": 12.5},
        {"kind": OfferKind.amount_off, "percent_off": None, "amount_off": 1500, "minimum_order": 5000},
        {"kind": OfferKind.free_gift, "percent_off": None},
        {"kind": OfferKind.free_shipping, "percent_off": None, "ends_at": None},
        {"kind": OfferKind.referral_bonus, "percent_off": None, "amount_off": 1000, "friend_amount_off": 500},
        {
            "kind": OfferKind.early_access,
            "percent_off": None,
            "starts_at": T0,
            "public_sale_starts_at": T0 + timedelta(days=2),
        },
        {
            "kind": OfferKind.early_access,
            "percent_off": 10.0,
            "starts_at": T0,
            "public_sale_starts_at": T0 + timedelta(days=2),
        },
    ],
)
def test_every_kind_has_a_valid_form(overrides: dict[str, Any]) -> None:
    assert rules.validate_content(offer_content(**overrides), TREE) is None  # type: ignore[func-returns-value]


def test_early_access_must_open_to_the_public_after_the_window_starts() -> None:
    content = offer_content(kind=OfferKind.early_access, percent_off=None, starts_at=T0, public_sale_starts_at=T0)
    with pytest.raises(Invalid, match="after the offer window starts"):
        rules.validate_content(content, TREE)


@pytest.mark.parametrize(
    ("budget", "param"), [(Budget(redemptions=0), "budget.redemptions"), (Budget(value=-1), "budget.value")]
)
def test_budgets_are_positive(budget: Budget, param: str) -> None:
    with pytest.raises(Invalid) as refused:
        rules.validate_budget(budget)
    assert refused.value.param == param
    rules.validate_budget(Budget())
    rules.validate_budget(Budget(redemptions=10, value=50_000))


def test_budget_left_and_spent() -> None:
    assert rules.budget_left(Budget(), 5, 500) == (None, None)
    assert rules.budget_left(Budget(10, 1000), 4, 1200) == (6, 0)
    assert rules.has_budget((6, None)) is True
    assert rules.has_budget((6, 0)) is False


def test_an_allowed_category_allows_everything_below_it() -> None:
    rules.check_fits_partnership(["cat_designer_dog_beds"], ["cat_dog_supplies"], [], TREE, partner_name="P")
    with pytest.raises(Invalid, match="does not allow offers in 'Pet Supplies > Cat Supplies > Cat Beds'"):
        rules.check_fits_partnership(["cat_cat_beds"], ["cat_dog_supplies"], [], TREE, partner_name="P")


@pytest.mark.parametrize(
    ("category", "blocked"),
    [("cat_designer_dog_beds", "cat_dog_beds"), ("cat_dog_supplies", "cat_dog_beds"), ("cat_dog_beds", "cat_dog_beds")],
)
def test_a_blocked_category_refuses_offers_above_and_below_it(category: str, blocked: str) -> None:
    with pytest.raises(Invalid) as refused:
        rules.check_fits_partnership([category], ["cat_pet_supplies"], [blocked], TREE, partner_name="Pawsome")
    assert refused.value.param == "targeting.categories"
    assert "Pawsome does not accept offers" in refused.value.detail


def test_the_host_must_trade_in_the_offer_currency() -> None:
    rules.check_currency("GBP", ["EUR", "GBP"], partner_name="P")
    with pytest.raises(Invalid) as refused:
        rules.check_currency("USD", ["GBP"], partner_name="P")
    assert refused.value.param == "currency"


@pytest.mark.parametrize(
    ("state", "action", "after"),
    [
        (OfferState.draft, OfferAction.publish, OfferState.published),
        (OfferState.published, OfferAction.publish, OfferState.published),
        (OfferState.paused, OfferAction.publish, OfferState.paused),
        (OfferState.published, OfferAction.pause, OfferState.paused),
        (OfferState.paused, OfferAction.resume, OfferState.published),
        (OfferState.draft, OfferAction.archive, OfferState.archived),
        (OfferState.paused, OfferAction.archive, OfferState.archived),
        (OfferState.published, OfferAction.edit, OfferState.published),
    ],
)
def test_allowed_moves(state: OfferState, action: OfferAction, after: OfferState) -> None:
    assert rules.move(state, action) is after


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (OfferState.draft, OfferAction.pause),
        (OfferState.paused, OfferAction.pause),
        (OfferState.published, OfferAction.resume),
        *[(OfferState.archived, action) for action in OfferAction],
    ],
)
def test_refused_moves(state: OfferState, action: OfferAction) -> None:
    with pytest.raises(Conflict) as refused:
        rules.move(state, action)
    assert refused.value.param == "action"


def test_approval_of_a_publication() -> None:
    assert rules.approval(1, None, None) is Approval.awaiting_approval
    assert rules.approval(2, 1, None) is Approval.awaiting_approval
    assert rules.approval(None, 1, 2) is Approval.approved
    assert rules.approval(None, None, 1) is Approval.rejected


def _facts(**overrides: Any) -> ServingFacts:
    values: dict[str, Any] = {
        "offer_state": OfferState.published,
        "serving_version": 1,
        "partnership_active": True,
        "budget_left": True,
        "fits_partnership": True,
        "codes_ready": True,
    }
    values.update(overrides)
    return ServingFacts(**values)


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({}, "live"),
        ({"offer_state": OfferState.paused}, "paused"),
        ({"offer_state": OfferState.archived}, "archived"),
        ({"serving_version": None}, "not_approved"),
        ({"partnership_active": False}, "partnership_inactive"),
        ({"fits_partnership": False}, "not_allowed"),
        ({"budget_left": False}, "budget_spent"),
        ({"codes_ready": False}, "no_codes"),
    ],
)
def test_serving_status(overrides: dict[str, Any], status: str) -> None:
    assert rules.serving_status(_facts(**overrides)) == status


def test_the_window_is_half_open() -> None:
    assert rules.in_window(T0, T0 + timedelta(days=1), T0)
    assert not rules.in_window(T0, T0 + timedelta(days=1), T0 + timedelta(days=1))
    assert not rules.in_window(T0, None, T0 - timedelta(seconds=1))
    assert rules.in_window(T0, None, T0 + timedelta(days=999))


def test_offer_status_summarizes_for_the_owner() -> None:
    later, ended = T0 + timedelta(days=1), T0 - timedelta(days=1)
    published = OfferState.published
    assert rules.offer_status(OfferState.draft, [], False, later, T0) == "draft"
    assert rules.offer_status(OfferState.paused, [Approval.approved], False, later, T0) == "paused"
    assert rules.offer_status(published, [Approval.awaiting_approval], False, later, T0) == "submitted"
    assert rules.offer_status(published, [Approval.rejected, Approval.approved], False, later, T0) == "approved"
    assert rules.offer_status(published, [Approval.rejected], False, later, T0) == "rejected"
    assert rules.offer_status(published, [Approval.approved], True, later, T0) == "live"
    assert rules.offer_status(published, [Approval.approved], False, ended, T0) == "expired"


def test_codes_are_normalized_and_checked() -> None:
    assert rules.normalize_code("  summer-25 ") == "SUMMER-25"
    for bad in ("ab", "-LEADING", "WITH SPACE", "x" * 41):
        with pytest.raises(Invalid):
            rules.normalize_code(bad)
    assert rules.check_code_settings(CodeMode.shared, "beds10") == "BEDS10"
    assert rules.check_code_settings(CodeMode.pool, None) is None
    with pytest.raises(Invalid, match=r"needs codes\.shared_code"):
        rules.check_code_settings(CodeMode.shared, None)
    with pytest.raises(Invalid, match="only for the shared mode"):
        rules.check_code_settings(CodeMode.pool, "BEDS10")


def test_content_is_a_value() -> None:
    content = offer_content()
    assert replace(content, title=content.title) == content

"""Offer rules as pure functions: what a valid offer is, which lifecycle moves are allowed, what may serve.

Stored offer states: draft → published ⇄ paused → archived (archive is final). Approval is per
(offer version, partnership) and lives in `partners.placements`; "live" and "expired" are derived
from the clock and the data, never stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urlsplit

from partners.churn_risk import LEVELS
from partners.errors import Conflict, Invalid
from partners.retention_rules import LtvBand
from partners.taxonomy import Taxonomy

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_REGION = re.compile(r"^[A-Z]{2}$")
_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,39}$")
MAX_MONEY_MINOR = 10**12
MAX_CATEGORIES = 50
MAX_REASON = 500
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
RISK_LEVELS = tuple(str(level) for level in LEVELS)
LTV_BANDS = tuple(str(band) for band in LtvBand)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


class OfferKind(StrEnum):
    percent_off = "percent_off"
    amount_off = "amount_off"
    free_shipping = "free_shipping"
    free_gift = "free_gift"
    early_access = "early_access"  # access to a sale before its public start
    referral_bonus = "referral_bonus"  # a bonus for the customer and one for a friend


class CustomerType(StrEnum):
    any = "any"
    new = "new"  # customers of the host with no order before
    returning = "returning"


class CodeMode(StrEnum):
    none = "none"  # the landing URL carries the offer
    shared = "shared"  # one code for every customer
    pool = "pool"  # single-use codes, one per customer


class OfferState(StrEnum):
    draft = "draft"
    published = "published"
    paused = "paused"
    archived = "archived"


class OfferAction(StrEnum):
    edit = "edit"
    publish = "publish"
    pause = "pause"
    resume = "resume"
    archive = "archive"


class Approval(StrEnum):
    """Where one partnership's approval stands, as both sides see it."""

    awaiting_approval = "awaiting_approval"
    approved = "approved"
    rejected = "rejected"


@dataclass(frozen=True)
class Targeting:
    categories: tuple[str, ...]
    price_min: int | None = None  # the customer's typical unit price band, minor units
    price_max: int | None = None
    customer_type: CustomerType = CustomerType.any
    min_lifetime_value: int | None = None  # minor units
    regions: tuple[str, ...] = ()  # ISO 3166-1 alpha-2; empty means every region of the host
    risk_levels: tuple[str, ...] = ()  # churn-risk levels at the host (partners.churn_risk); empty: any
    lifetime_value_bands: tuple[str, ...] = ()  # low, middle, top at the host (partners.retention_rules); empty: any


@dataclass(frozen=True)
class OfferContent:
    """Everything of an offer the host approves: a change to any of it is a new version once published."""

    title: str
    description: str
    landing_url: str
    kind: OfferKind
    currency: str
    starts_at: datetime
    targeting: Targeting
    ends_at: datetime | None = None
    percent_off: float | None = None
    amount_off: int | None = None  # minor units; for referral_bonus the customer's bonus
    friend_amount_off: int | None = None  # referral_bonus only: the friend's bonus
    minimum_order: int | None = None
    public_sale_starts_at: datetime | None = None  # early_access only


@dataclass(frozen=True)
class Budget:
    """Total budget across partnerships; None is unlimited."""

    redemptions: int | None = None
    value: int | None = None  # minor units of the offer's currency


def _money(value: int | None, param: str, *, positive: bool) -> None:
    if value is None:
        return
    low = 1 if positive else 0
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_MONEY_MINOR:
        word = "a positive" if positive else "a non-negative"
        raise Invalid(f"{param} must be {word} whole number of minor units (cents).", param=param)


def _aware(value: datetime | None, param: str) -> None:
    if value is None:
        return
    if value.tzinfo is None or value.utcoffset() is None:
        raise Invalid(f"{param} needs a UTC offset (ISO 8601, e.g. 2026-05-01T09:00:00Z).", param=param)
    if not EARLIEST <= value < LATEST:
        raise Invalid(f"{param} must fall between the years 2000 and 2999.", param=param)


def _check_value(content: OfferContent) -> None:
    kind = content.kind
    if kind is OfferKind.percent_off or content.percent_off is not None:
        if kind not in (OfferKind.percent_off, OfferKind.early_access):
            raise Invalid("percent_off is only for percent_off and early_access offers.", param="percent_off")
        percent = content.percent_off
        if kind is OfferKind.percent_off and percent is None:
            raise Invalid("A percent_off offer needs percent_off.", param="percent_off")
        if percent is not None and not (0 < percent <= 100 and abs(percent * 100 - round(percent * 100)) < 1e-6):
            raise Invalid("percent_off must be above 0 and at most 100, with up to 2 decimals.", param="percent_off")
    if kind in (OfferKind.amount_off, OfferKind.referral_bonus) and content.amount_off is None:
        raise Invalid(f"A {kind} offer needs amount_off (minor units).", param="amount_off")
    if kind not in (OfferKind.amount_off, OfferKind.referral_bonus) and content.amount_off is not None:
        raise Invalid("amount_off is only for amount_off and referral_bonus offers.", param="amount_off")
    _money(content.amount_off, "amount_off", positive=True)
    if kind is OfferKind.referral_bonus and content.friend_amount_off is None:
        raise Invalid("A referral bonus needs friend_amount_off: what the friend gets.", param="friend_amount_off")
    if kind is not OfferKind.referral_bonus and content.friend_amount_off is not None:
        raise Invalid("friend_amount_off is only for referral_bonus offers.", param="friend_amount_off")
    _money(content.friend_amount_off, "friend_amount_off", positive=True)
    _money(content.minimum_order, "minimum_order", positive=False)


def _check_window(content: OfferContent) -> None:
    for param in ("starts_at", "ends_at", "public_sale_starts_at"):
        _aware(getattr(content, param), param)
    if content.ends_at is not None and content.ends_at <= content.starts_at:
        raise Invalid("The offer window must end after it starts.", param="ends_at")
    if content.kind is OfferKind.early_access:
        sale = content.public_sale_starts_at
        if sale is None or sale <= content.starts_at:
            raise Invalid(
                "Early access needs public_sale_starts_at, after the offer window starts.",
                param="public_sale_starts_at",
            )
    elif content.public_sale_starts_at is not None:
        raise Invalid("public_sale_starts_at is only for early_access offers.", param="public_sale_starts_at")


def _check_targeting(targeting: Targeting, tree: Taxonomy) -> None:
    if not targeting.categories:
        raise Invalid("Name at least one category the offer is in.", param="targeting.categories")
    if len(targeting.categories) > MAX_CATEGORIES:
        raise Invalid(f"At most {MAX_CATEGORIES} categories.", param="targeting.categories")
    tree.validate_ids(targeting.categories, param="targeting.categories")
    _money(targeting.price_min, "targeting.price_min", positive=False)
    _money(targeting.price_max, "targeting.price_max", positive=True)
    low, high = targeting.price_min, targeting.price_max
    if low is not None and high is not None and high < low:
        raise Invalid("The price band must not end below where it starts.", param="targeting.price_max")
    _money(targeting.min_lifetime_value, "targeting.min_lifetime_value", positive=False)
    for region in targeting.regions:
        if not _REGION.match(region):
            raise Invalid(f"'{region}' is not an ISO 3166-1 alpha-2 country code.", param="targeting.regions")
    for name, allowed in (("risk_levels", RISK_LEVELS), ("lifetime_value_bands", LTV_BANDS)):
        for value in getattr(targeting, name):
            if value not in allowed:
                raise Invalid(f"'{str(value)[:40]}' is not one of {', '.join(allowed)}.", param=f"targeting.{name}")


def validate_content(content: OfferContent, tree: Taxonomy) -> None:
    """Invalid, naming the field, for an offer that makes no sense on its own."""
    if not content.title.strip():
        raise Invalid("Give the offer a title.", param="title")
    parts = urlsplit(content.landing_url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise Invalid("landing_url must be an http(s) URL.", param="landing_url")
    if not _CURRENCY.match(content.currency):
        raise Invalid(f"'{content.currency}' is not an ISO 4217 currency code.", param="currency")
    _check_value(content)
    _check_window(content)
    _check_targeting(content.targeting, tree)


def validate_budget(budget: Budget) -> None:
    """Budgets, when set, are positive."""
    if budget.redemptions is not None and (budget.redemptions < 1 or budget.redemptions > MAX_MONEY_MINOR):
        raise Invalid("A redemption budget must be a positive number of redemptions.", param="budget.redemptions")
    _money(budget.value, "budget.value", positive=True)


def normalize_code(code: str, *, param: str = "codes") -> str:
    """A code as stored and compared: trimmed, upper case; 3–40 of A–Z, 0–9, '-' and '_'."""
    normal = code.strip().upper()
    if not _CODE.match(normal):
        raise Invalid(f"'{code[:60]}' is not a valid code: 3–40 letters, digits, '-' or '_'.", param=param)
    return normal


def check_code_settings(mode: CodeMode, shared_code: str | None) -> str | None:
    """The normalized shared code: required in shared mode, refused in any other."""
    if mode is CodeMode.shared:
        if not shared_code:
            raise Invalid("A shared-code offer needs codes.shared_code.", param="codes.shared_code")
        return normalize_code(shared_code, param="codes.shared_code")
    if shared_code:
        raise Invalid(f"codes.shared_code is only for the shared mode, not {mode}.", param="codes.shared_code")
    return None


def budget_left(budget: Budget, used_redemptions: int, used_value: int) -> tuple[int | None, int | None]:
    """What remains of each budget (None: unlimited), never below 0."""
    redemptions = None if budget.redemptions is None else max(budget.redemptions - used_redemptions, 0)
    value = None if budget.value is None else max(budget.value - used_value, 0)
    return redemptions, value


def has_budget(left: tuple[int | None, int | None]) -> bool:
    """Whether neither budget is spent."""
    return all(part is None or part > 0 for part in left)


def check_fits_partnership(
    categories: Iterable[str],
    allowed: Sequence[str],
    blocked: Sequence[str],
    tree: Taxonomy,
    *,
    partner_name: str,
) -> None:
    """Invalid unless every category is allowed by the terms and none touches one the host blocks.

    A category allows (or blocks) everything below it; an offer in a broad category that contains a
    blocked one is refused too, since it may promote what lies below.
    """
    for category in categories:
        if not any(tree.covers(ancestor, category) for ancestor in allowed):
            raise Invalid(
                f"The partnership with {partner_name} does not allow offers in '{tree.label(category)}'.",
                param="targeting.categories",
            )
        for rule in blocked:
            if tree.covers(rule, category) or tree.covers(category, rule):
                raise Invalid(
                    f"{partner_name} does not accept offers in '{tree.label(rule)}'.", param="targeting.categories"
                )


def check_currency(currency: str, host_currencies: Sequence[str], *, partner_name: str) -> None:
    """Invalid unless the host trades in the offer's currency."""
    if currency not in host_currencies:
        trades = ", ".join(host_currencies) or "no currency yet"
        raise Invalid(f"{partner_name} trades in {trades}, not {currency}.", param="currency")


_MOVES: dict[OfferAction, dict[OfferState, OfferState]] = {
    OfferAction.edit: {s: s for s in (OfferState.draft, OfferState.published, OfferState.paused)},
    OfferAction.publish: {
        OfferState.draft: OfferState.published,
        OfferState.published: OfferState.published,
        OfferState.paused: OfferState.paused,
    },
    OfferAction.pause: {OfferState.published: OfferState.paused},
    OfferAction.resume: {OfferState.paused: OfferState.published},
    OfferAction.archive: dict.fromkeys(
        (OfferState.draft, OfferState.published, OfferState.paused), OfferState.archived
    ),
}


def move(state: OfferState, action: OfferAction) -> OfferState:
    """The state after `action`, or Conflict saying why it is not allowed now."""
    after = _MOVES[action].get(state)
    if after is not None:
        return after
    if state is OfferState.archived:
        raise Conflict("This offer is archived; create a new one instead.", param="action")
    needs = {OfferAction.pause: "a published", OfferAction.resume: "a paused"}[action]
    raise Conflict(f"Only {needs} offer can {action}; this one is {state}.", param="action")


def approval(pending_version: int | None, serving_version: int | None, rejected_version: int | None) -> Approval:
    """A publication's approval: awaiting while a version waits, else approved if one serves."""
    if pending_version is not None:
        return Approval.awaiting_approval
    if serving_version is not None:
        return Approval.approved
    if rejected_version is not None:
        return Approval.rejected
    return Approval.awaiting_approval


def in_window(starts_at: datetime, ends_at: datetime | None, now: datetime) -> bool:
    """Whether `now` falls in [starts_at, ends_at)."""
    return starts_at <= now and (ends_at is None or now < ends_at)


@dataclass(frozen=True)
class ServingFacts:
    """What decides whether an approved version may serve through one partnership (the clock aside)."""

    offer_state: OfferState
    serving_version: int | None
    partnership_active: bool
    budget_left: bool
    fits_partnership: bool  # categories and currency still fit the agreed terms and the host's rules
    codes_ready: bool  # a pool offer has at least one unreserved code


def serving_status(facts: ServingFacts) -> str:
    """'live', or the first reason it is not: stored with the denormalized live row."""
    if facts.offer_state is OfferState.archived:
        return "archived"
    if facts.offer_state is not OfferState.published:
        return "paused"
    checks = (
        (facts.serving_version is not None, "not_approved"),
        (facts.partnership_active, "partnership_inactive"),
        (facts.fits_partnership, "not_allowed"),
        (facts.budget_left, "budget_spent"),
        (facts.codes_ready, "no_codes"),
    )
    for passed, reason in checks:
        if not passed:
            return reason
    return "live"


def offer_status(
    state: OfferState,
    approvals: Sequence[Approval],
    live_anywhere: bool,
    latest_ends_at: datetime | None,
    now: datetime,
) -> str:
    """The owner's one-word summary: draft, submitted, approved, rejected, live, paused, expired, archived."""
    if state in (OfferState.draft, OfferState.archived, OfferState.paused):
        return str(state)
    if live_anywhere:
        return "live"
    if latest_ends_at is not None and latest_ends_at <= now:
        return "expired"
    if Approval.approved in approvals:
        return "approved"
    if Approval.awaiting_approval in approvals:
        return "submitted"
    return "rejected" if approvals else "draft"

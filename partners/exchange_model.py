"""What the exchange is asked and what it answers: plain values shared by its rules and its I/O paths."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from enum import StrEnum

from partners.live_offers import LiveOfferRow

MAX_OFFERS = 10


class Placement(StrEnum):
    order_confirmation = "order_confirmation"
    email = "email"
    account_page = "account_page"
    win_back = "win_back"  # the host's re-engagement email: customers at risk or lapsed only
    appreciation = "appreciation"  # gifts and early access for the host's best customers by lifetime value
    survey_thank_you = "survey_thank_you"  # the page after a customer answered one of the host's surveys


@dataclass(frozen=True)
class ExchangeRequest:
    customer_external_id: str
    placement: Placement
    limit: int = 3
    cart_categories: tuple[str, ...] = ()
    region: str | None = None
    one_per_partner: bool = True
    dry_run: bool = False


@dataclass(frozen=True)
class OfferShown:
    impression_id: str | None
    offer: LiveOfferRow
    partner_name: str
    code: str | None
    rank: int
    score: float


@dataclass
class ExchangeResult:
    """The answer, and the count of each decision by reason (`shown`, `no_consent`, …)."""

    answer_id: str | None
    offers: list[OfferShown] = field(default_factory=list)
    decisions: dict[str, int] = field(default_factory=dict)

    def refuse(self, reason: str, count: int = 1) -> None:
        self.decisions[reason] = self.decisions.get(reason, 0) + count


def customer_ref(key: bytes, host_tenant_id: str, customer_id: str) -> str:
    """A pseudonym for the host's customer that the offering side may hold on a reserved code."""
    return hmac.new(key, f"{host_tenant_id}|{customer_id}".encode(), hashlib.sha256).hexdigest()[:32]

"""Reach forecast: how many of a host's customers an offer could be shown to now, before it goes live.

For the offering tenant's offer (its latest version) and one of its partnerships, counts the host's
customers who pass the exchange's customer rules today:
- a valid `partner_offers` consent covering the offering partner (withdrawn, pending and erased
  customers never count; erased ones are gone, only keyed hashes of them remain);
- the offer's targeting: new or returning customer, minimum lifetime value, and an interest the
  offer's categories speak to (the exchange shows nothing that scores 0 on interest);
- the host's frequency caps of the agreed terms not yet reached (rolling 7 and 30 days).
Nobody is eligible when the partnership is not active, the offer is archived, an early-access sale
is already public, or the terms or either side's brand-safety rules do not allow its categories.
Region targeting is not applied: a customer's region is known only when the host calls.

Only an aggregate leaves: below `MINIMUM` it is "fewer than 50", above it is rounded down to a
multiple of `ROUNDING`, as for audience overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, Table, and_, case, exists, func, or_, select
from sqlmodel import Session

from partners import consent_ledger, interests, offers, overlap, partnerships, placements, ranking
from partners.consent_rules import Purpose
from partners.impressions import Impression
from partners.interest_store import CustomerInterest, CustomerProfile
from partners.interests import ProfileState
from partners.offer_rules import CustomerType, OfferContent, OfferKind, OfferState
from partners.partnership_rules import State
from partners.taxonomy import load_taxonomy
from partners.terms import PartnershipTerms

MINIMUM = overlap.MINIMUM
ROUNDING = overlap.ROUNDING
_BATCH = 1_000


@dataclass(frozen=True)
class Forecast:
    offer_id: str
    version: int
    partnership_id: str
    eligible: int | None  # None when suppressed
    suppressed: bool
    blocked: str | None  # why nobody can be shown the offer, if so
    not_applied: tuple[str, ...]  # targeting the forecast cannot apply
    as_of: datetime
    minimum: int = MINIMUM

    @property
    def display(self) -> str:
        """How to say it to a person."""
        return f"fewer than {self.minimum}" if self.suppressed else f"about {self.eligible}"


def publishable(count: int) -> tuple[int | None, bool]:
    """(shown count, suppressed): nothing below the minimum, else rounded down."""
    if count < MINIMUM:
        return None, True
    return count - count % ROUNDING, False


def _blocked(
    session: Session, partnership: partnerships.Partnership, offer: offers.Offer, content: OfferContent, now: datetime
) -> str | None:
    if partnership.state != State.active:
        return "partnership_inactive"
    if offer.state == OfferState.archived:
        return "offer_archived"
    starts = content.public_sale_starts_at
    if content.kind == OfferKind.early_access and starts is not None and now >= starts:
        return "sale_public"
    if not placements.fits(session, partnership, offer.tenant_id, content):
        return "not_allowed"
    return None


def forecast(session: Session, tenant_id: str, offer_id: str, partnership_id: str, *, now: datetime) -> Forecast:
    """The tenant's offer at the host of one of its partnerships (NotFound for anyone else's)."""
    offer = offers.get(session, tenant_id, offer_id)
    partnership = partnerships.get(session, tenant_id, partnership_id)
    version = offers.latest_version(session, offer)
    content = offers.content_of(version)
    blocked = _blocked(session, partnership, offer, content, now)
    count = 0
    if blocked is None:
        count = eligible_customers(session, partnership, content, now)
    shown, suppressed = publishable(count)
    return Forecast(
        offer_id=offer.id,
        version=version.version,
        partnership_id=partnership_id,
        eligible=shown,
        suppressed=suppressed,
        blocked=blocked,
        not_applied=("regions",) if content.targeting.regions else (),
        as_of=now,
    )


def _capped(host: str, terms: PartnershipTerms, now: datetime) -> Select[tuple[str]]:
    """Customers who reached the host's caps (the exchange counts every partner's offers)."""
    shown: Table = Impression.__table__  # type: ignore[attr-defined]
    last_week = func.sum(case((shown.c.created_at > now - timedelta(days=7), 1), else_=0))
    return (
        select(shown.c.customer_id)
        # Erased customers' impressions have no customer: a NULL here would empty the NOT IN.
        .where(
            shown.c.tenant_id == host, shown.c.customer_id.is_not(None), shown.c.created_at > now - timedelta(days=30)
        )
        .group_by(shown.c.customer_id)
        .having(or_(func.count() >= terms.cap_per_30_days, last_week >= terms.cap_per_7_days))
    )


def eligible_customers(
    session: Session, partnership: partnerships.Partnership, content: OfferContent, now: datetime
) -> int:
    """The exact count (never shown as is: see `publishable`). `partnership` is the offering side's row."""
    terms = session.get(PartnershipTerms, (partnership.tenant_id, partnership.id, partnership.agreed_version))
    if terms is None or terms.cap_per_7_days == 0 or terms.cap_per_30_days == 0:
        return 0
    host, offering = partnership.partner_tenant_id, partnership.tenant_id
    consenting = consent_ledger.consenting_customer_ids(host, Purpose.partner_offers, offering).subquery()
    profile: Table = CustomerProfile.__table__  # type: ignore[attr-defined]
    interest: Table = CustomerInterest.__table__  # type: ignore[attr-defined]
    targeting = content.targeting
    orders = func.coalesce(profile.c.order_count, 0)
    related = sorted(ranking.related_categories(load_taxonomy(), targeting.categories))
    query = (
        select(
            consenting.c.customer_id,
            profile.c.decay_ref,
            profile.c.order_count,
            profile.c.first_order_at,
            profile.c.last_order_at,
            profile.c.spend,
        )
        .select_from(consenting)
        .outerjoin(profile, and_(profile.c.tenant_id == host, profile.c.customer_id == consenting.c.customer_id))
        .where(
            exists().where(
                interest.c.tenant_id == host,
                interest.c.customer_id == consenting.c.customer_id,
                interest.c.category_id.in_(related),
                interest.c.weight > 0,
            ),
            consenting.c.customer_id.not_in(_capped(host, terms, now)),
        )
    )
    if targeting.customer_type == CustomerType.new:
        query = query.where(orders <= 1)
    elif targeting.customer_type == CustomerType.returning:
        query = query.where(orders >= 2)
    if targeting.min_lifetime_value is None:
        counted = select(func.count()).select_from(query.subquery())
        return int(session.execute(counted).scalar_one())
    # Lifetime value is a model over the profile, not a column: computed here for the rest.
    count = 0
    for rows in session.execute(query.where(profile.c.currency == content.currency)).partitions(_BATCH):
        for row in rows:
            value = interests.lifetime_value(_state(row), now)
            count += value.total_minor >= targeting.min_lifetime_value
    return count


def _state(row: Sequence[Any]) -> ProfileState:
    """Enough of a profile for `interests.lifetime_value`."""
    return ProfileState(
        decay_ref=row[1],
        order_count=row[2],
        first_order_at=row[3],
        last_order_at=row[4],
        spend={code: interests.CurrencySpend(int(v[0]), int(v[1])) for code, v in row[5].items()},
        format_weights={},
        interests={},
    )

"""The holdout report: repeat purchases and spend at the host, shown versus held out, and the lift.

Each customer counts from the moment an offer under the holdout was first eligible for them
(both groups alike: intent to treat), over the `window_days` that follow; customers whose
window has not ended yet are left out and counted apart. Only the host's own orders count,
in one currency. See docs/retention.md for how to read it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, and_, select
from sqlmodel import Session

from partners import holdouts, lift, profiles
from partners.errors import Invalid
from partners.holdouts import HoldoutAssignment
from partners.offer_rules import EARLIEST, LATEST
from partners.purchases import Purchase

MAX_WINDOW_DAYS = 365
_ASSIGNED: Table = HoldoutAssignment.__table__  # type: ignore[attr-defined]
_PURCHASES: Table = Purchase.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class HoldoutReport:
    holdout: holdouts.Holdout
    start: datetime
    end: datetime
    window_days: int
    currency: str
    shown: lift.Group
    held_out: lift.Group
    still_in_window: int  # eligible in the range, but their window has not ended yet
    lift: lift.Lift

    @property
    def held_out_share(self) -> float | None:
        total = self.shown.customers + self.held_out.customers
        return self.held_out.customers / total if total else None


def _group(customers: list[str], spend: dict[str, int], repeaters: set[str]) -> lift.Group:
    return lift.Group(len(customers), sum(1 for c in customers if c in repeaters), [spend.get(c, 0) for c in customers])


def report(
    session: Session,
    host_tenant_id: str,
    holdout_id: str,
    *,
    start: datetime,
    end: datetime,
    window_days: int,
    currency: str | None,
    now: datetime,
) -> HoldoutReport:
    """Compare the groups of customers first eligible in [start, end); orders in `currency` count
    (default: the host's first trading currency)."""
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise Invalid(f"window_days must be 1–{MAX_WINDOW_DAYS}.", param="window_days")
    for param, value in (("from", start), ("to", end)):
        if value.tzinfo is None:
            raise Invalid(f"{param} needs a timezone (ISO 8601 with an offset).", param=param)
        if not EARLIEST <= value < LATEST:
            raise Invalid(f"{param} must fall between the years 2000 and 2999.", param=param)
    if end <= start:
        raise Invalid("from must be before to.", param="from")
    holdout = holdouts.get(session, host_tenant_id, holdout_id)
    if currency is None:
        profile = profiles.find_profile(session, host_tenant_id)
        if profile is None or not profile.currencies:
            raise Invalid("Name the currency whose orders count (your profile lists none).", param="currency")
        currency = profile.currencies[0]
    window = timedelta(days=window_days)
    a, p = _ASSIGNED, _PURCHASES
    assigned = session.execute(
        select(a.c.customer_id, a.c.held_out, a.c.first_eligible_at).where(
            a.c.tenant_id == host_tenant_id,
            a.c.holdout_id == holdout_id,
            a.c.first_eligible_at >= start,
            a.c.first_eligible_at < end,
        )
    ).all()
    groups: dict[bool, list[str]] = {True: [], False: []}
    since: dict[str, datetime] = {}
    waiting = 0
    for customer_id, held, first in assigned:
        if first + window > now:
            waiting += 1
            continue
        groups[bool(held)].append(str(customer_id))
        since[str(customer_id)] = first
    # The host's orders after each customer's first eligibility; the window's end is applied here.
    orders = session.execute(
        select(p.c.customer_id, p.c.ordered_at, p.c.total_minor)
        .select_from(
            a.join(
                p,
                and_(
                    p.c.tenant_id == a.c.tenant_id,
                    p.c.customer_id == a.c.customer_id,
                    p.c.ordered_at > a.c.first_eligible_at,
                ),
            )
        )
        .where(
            a.c.tenant_id == host_tenant_id,
            a.c.holdout_id == holdout_id,
            a.c.first_eligible_at >= start,
            a.c.first_eligible_at < end,
            p.c.currency == currency,
            p.c.ordered_at <= end + window,
        )
    ).all()
    spend: dict[str, int] = defaultdict(int)
    repeaters: set[str] = set()
    for customer_id, ordered_at, total in orders:
        first = since.get(str(customer_id))
        if first is not None and ordered_at <= first + window:
            repeaters.add(str(customer_id))
            spend[str(customer_id)] += int(total)
    shown, held = _group(groups[False], spend, repeaters), _group(groups[True], spend, repeaters)
    return HoldoutReport(holdout, start, end, window_days, currency, shown, held, waiting, lift.lift(shown, held))

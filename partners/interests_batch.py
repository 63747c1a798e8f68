"""Interest profiles kept up by batches of orders: each touched customer is recomputed once.

The single-order path (`interest_store.record_order`) loads, folds and stores one profile per
order through the ORM. Bulk ingest instead loads the profiles and interests of every
customer in the batch with two queries, folds each customer's new orders into its state
(`interests.apply_order`, so the result is the same as order-by-order), and writes them
back with two set-based upserts. The caller holds the customers' row locks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlmodel import Session

from partners import bulk, retention_baselines
from partners.db import utcnow
from partners.interest_store import CustomerInterest, CustomerProfile, stored_state, stored_values
from partners.interests import OrderFacts, ProfileState, apply_order

_PROFILES = CustomerProfile.__table__  # type: ignore[attr-defined]
_INTERESTS = CustomerInterest.__table__  # type: ignore[attr-defined]


def load_states(session: Session, tenant_id: str, customer_ids: Sequence[str]) -> dict[str, ProfileState]:
    """The stored profiles of these customers, by customer id (those without orders left out)."""
    profiles = bulk.fetch(session, _PROFILES, tenant_id, "customer_id", customer_ids)
    interests: dict[str, list[Any]] = defaultdict(list)
    # Only customers with a profile have interests: a first load skips the second lookup.
    for row in bulk.fetch(session, _INTERESTS, tenant_id, "customer_id", [row.customer_id for row in profiles]):
        interests[row.customer_id].append(row)
    return {row.customer_id: stored_state(row, interests[row.customer_id]) for row in profiles}


def record_orders(session: Session, tenant_id: str, orders: Mapping[str, Sequence[OrderFacts]]) -> None:
    """Fold new orders, by customer id, into the stored profiles: one read and one write per batch."""
    if not orders:
        return
    states = load_states(session, tenant_id, list(orders))
    now = utcnow()
    typical = retention_baselines.typical_days(session, tenant_id)
    # First profiles are plain inserts (no stored row can conflict: we hold the customers' locks
    # and saw none); only customers with a profile already need the slower upsert.
    profiles: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    interests: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    for customer_id, new_orders in orders.items():
        state = states.get(customer_id)
        first = state is None
        for order in new_orders:
            state = apply_order(state, order)
        assert state is not None  # every customer here has at least one new order
        profile, rows = stored_values(tenant_id, customer_id, state, now, typical)
        profiles[first].append(profile)
        interests[first].extend(rows)
    bulk.insert(session, _PROFILES, profiles[True])
    bulk.insert(session, _INTERESTS, interests[True])
    bulk.upsert(session, _PROFILES, profiles[False], ["tenant_id", "customer_id"])
    bulk.upsert(session, _INTERESTS, interests[False], ["tenant_id", "customer_id", "category_id"])

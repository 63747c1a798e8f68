"""The exchange: which partner offers may this customer see now, at this placement (the sync path).

An offer is shown only if every rule holds (each refusal is counted by reason):
the partnership is active and its terms allow the offer's categories, the offer is
approved, live, in its window and within budget, and no brand-safety rule of either
side forbids it (all kept true by `live_offers`, refreshed when data changes); the customer
belongs at the placement (win-back, appreciation: `retention_rules`); then the named rules of
`exchange_rules.ELIGIBILITY` (consent covering the partner, targeting, agreed terms, retention
targeting, holdouts), the host's frequency caps and relevance (`ranking`).

This module runs on a SQLAlchemy session (SQLite, tests, scripts, and the API on SQLite);
`exchange_async` runs the same reads, rules and writes on psycopg for the API on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from partners import codes, exchange_reads, exchange_record, exchange_rules, holdouts, live_offers
from partners.db import execute_together
from partners.exchange_model import MAX_OFFERS as MAX_OFFERS
from partners.exchange_model import ExchangeRequest as ExchangeRequest
from partners.exchange_model import ExchangeResult as ExchangeResult
from partners.exchange_model import OfferShown as OfferShown
from partners.exchange_model import Placement as Placement
from partners.exchange_model import customer_ref as customer_ref
from partners.ids import new_id
from partners.live_offers import LiveOfferRow


def answer(
    session: Session, host_tenant_id: str, request: ExchangeRequest, *, now: datetime, code_key: bytes
) -> ExchangeResult:
    """The partner offers to show the customer now, best first; recorded unless a dry run."""
    dialect = session.get_bind().dialect.name
    result = ExchangeResult(answer_id=None if request.dry_run else new_id("exa"))
    values = exchange_reads.params(host_tenant_id, request.customer_external_id, now)
    rows = session.execute(exchange_reads.CUSTOMER_QUERY, values).all()
    found = exchange_reads.customer_of(rows, request.cart_categories, now)
    if found is None:
        # An unknown customer gets the same empty answer as one with nothing to show.
        result.refuse("unknown_customer")
        execute_together(session, exchange_record.writes(dialect, host_tenant_id, request, None, result, None, now))
        return result
    customer, counts = found
    running = holdouts.running_of(session.execute(holdouts.RUNNING_QUERY, values).all())
    asked = exchange_rules.Asked(customer, request, now, exchange_rules.Holdouts(running, host_tenant_id, code_key))
    not_here = exchange_rules.placement_refusal(asked)
    if not_here is not None:
        result.refuse(not_here)
        execute_together(
            session, exchange_record.writes(dialect, host_tenant_id, request, customer.id, result, None, now)
        )
        return result
    servings = exchange_reads.servings_of(session.execute(exchange_reads.SERVING_QUERY, values).all())
    chosen = exchange_rules.choose(servings, asked, counts, result)
    found_codes = [_code_for(session, serving, host_tenant_id, customer.id, request, code_key) for serving, _ in chosen]
    outcome = exchange_rules.show(chosen, found_codes, request, result)
    refresh_dry_pools(session, outcome.dry_pools)
    groups = asked.held.groups
    writes = exchange_record.writes(dialect, host_tenant_id, request, customer.id, result, outcome, now, groups)
    # One round trip on PostgreSQL for the answer, both sides' impressions, disclosures and counters.
    execute_together(session, writes)
    return result


def refresh_dry_pools(session: Session, offers: Sequence[LiveOfferRow]) -> None:
    """Rewrite the live rows of pool offers found dry, so no host serves them until codes are added."""
    for offer in offers:
        live_offers.refresh_offer(session, offer.offering_tenant_id, offer.offer_id)


def _code_for(
    session: Session,
    serving: exchange_rules.Serving,
    host: str,
    customer_id: str,
    request: ExchangeRequest,
    key: bytes,
) -> str | None:
    offer = serving.offer
    if offer.code_mode == "shared":
        return offer.shared_code
    if not exchange_rules.needs_pool_code(serving, request):
        return None
    return codes.reserve_code(session, offer.offering_tenant_id, offer.offer_id, customer_ref(key, host, customer_id))

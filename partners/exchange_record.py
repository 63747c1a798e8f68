"""What a recorded exchange answer writes, as one list of statements for one round trip."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from partners import counters, disclosures, holdouts, impressions
from partners.db import Write
from partners.exchange_model import ExchangeRequest, ExchangeResult
from partners.exchange_rules import Outcome


def writes(
    dialect: str,
    host_tenant_id: str,
    request: ExchangeRequest,
    customer_id: str | None,
    result: ExchangeResult,
    outcome: Outcome | None,
    now: datetime,
    holdout_groups: Mapping[str, bool] | None = None,
) -> list[Write]:
    """The answer, both sides' impressions, the disclosures, the customer's holdout groups and the
    ranking counters (none in a dry run).

    Independent inserts and upserts with distinct parameter names (`db.execute_together` runs them in
    one round trip on PostgreSQL); the counter rows, shared with concurrent answers, are taken in key
    order and come last."""
    if request.dry_run or result.answer_id is None:
        return []
    shown = outcome.shown if outcome is not None else []
    statements = impressions.record_statements(
        host_tenant_id=host_tenant_id,
        answer_id=result.answer_id,
        customer_id=customer_id,
        placement=request.placement,
        shown=shown,
        decisions=result.decisions,
        now=now,
    )
    if outcome is not None and outcome.disclosed and customer_id is not None:
        statements.append(disclosures.disclosures_write(dialect, host_tenant_id, customer_id, outcome.disclosed, now))
    if holdout_groups and customer_id is not None:
        grouped = holdouts.assignments_statement(dialect, host_tenant_id, customer_id, holdout_groups, now)
        if grouped is not None:
            statements.append(grouped)
    counted = [(s.partnership_id, s.offering_tenant_id, s.offer_id) for s in shown]
    statements.extend(counters.impression_writes(dialect, host_tenant_id, counted, now))
    return statements

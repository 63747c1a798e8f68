"""The exchange on PostgreSQL through psycopg's async driver: the API's hot path.

The same statements, rules and writes as the sync path (`exchange`), in at most three round
trips, each a psycopg pipeline of prepared statements:

1. the customer, the host's running holdouts, and what changes per answer for the host's serving
   offers (their fingerprint, the ranking counters, the customer's consents, the token family's
   revocation), outside a
   transaction (READ COMMITTED gives each statement its own snapshot either way); the offers
   themselves come from the per-process `serving_cache` when the fingerprint confirms it (one
   more round trip when it does not);
2. BEGIN and the single-use code claims of the chosen pool offers (only when there are any);
3. the answer, impressions, disclosures and counters, then COMMIT: a code is durable before the
   answer that shows it leaves.

A dry run stops after the first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, AsyncCursor, AsyncPipeline
from psycopg.pq import TransactionStatus
from sqlalchemy.sql.expression import Executable

from partners import codes, exchange_reads, exchange_record, exchange_rules, holdouts, serving_cache
from partners.db import Write, together
from partners.exchange_model import ExchangeRequest, ExchangeResult, customer_ref
from partners.ids import new_id
from partners.live_offers import LiveOfferRow
from partners.pg_prepared import prepared


class RevokedToken(Exception):
    """The caller's token family was revoked (or is unknown): nothing was read for it or written."""


@dataclass
class Answered:
    result: ExchangeResult
    # Pool offers found dry: their live rows need `exchange.refresh_dry_pools` (a sync session).
    dry_pools: list[LiveOfferRow] = field(default_factory=list)


async def _run(conn: AsyncConnection[Any], statement: Executable, values: Mapping[str, Any]) -> AsyncCursor[Any]:
    """Queue a statement on the connection's pipeline (psycopg prepares it on first use)."""
    query = prepared(statement)
    return await conn.execute(query.sql, query.params(values), prepare=True)


async def _rows(statement: Executable, cursor: AsyncCursor[Any]) -> list[tuple[Any, ...]]:
    query = prepared(statement)
    return [query.row(raw) for raw in await cursor.fetchall()]


async def answer(
    conn: AsyncConnection[Any],
    host_tenant_id: str,
    request: ExchangeRequest,
    *,
    now: datetime,
    code_key: bytes,
    cache: serving_cache.ServingCache,
    family_id: str | None = None,
) -> Answered:
    """The partner offers to show the customer now, best first; recorded unless a dry run.

    `conn` is in autocommit mode (transactions are explicit). With `family_id`, the token family's
    revocation is checked in the same round trip as the reads: RevokedToken if it may not be used."""
    result = ExchangeResult(answer_id=None if request.dry_run else new_id("exa"))
    values = exchange_reads.params(host_tenant_id, request.customer_external_id, now)
    async with conn.pipeline() as pipeline:
        customer_cursor = await _run(conn, exchange_reads.CUSTOMER_QUERY, values)
        holdouts_cursor = await _run(conn, holdouts.RUNNING_QUERY, values)
        state_cursor = await _run(conn, serving_cache.STATE_QUERY, {**values, "family": family_id or ""})
        await pipeline.sync()
        customer_rows = await _rows(exchange_reads.CUSTOMER_QUERY, customer_cursor)
        running = holdouts.running_of(await _rows(holdouts.RUNNING_QUERY, holdouts_cursor))
        [state_row] = await _rows(serving_cache.STATE_QUERY, state_cursor)
    state = serving_cache.snapshot_of(state_row)
    if family_id is not None and not state.family_ok:
        raise RevokedToken
    found = exchange_reads.customer_of(customer_rows, request.cart_categories, now)
    if found is None:
        # An unknown customer gets the same empty answer as one with nothing to show.
        result.refuse("unknown_customer")
        await _record_alone(
            conn, exchange_record.writes("postgresql", host_tenant_id, request, None, result, None, now)
        )
        return Answered(result)
    customer, counts = found
    asked = exchange_rules.Asked(customer, request, now, exchange_rules.Holdouts(running, host_tenant_id, code_key))
    not_here = exchange_rules.placement_refusal(asked)
    if not_here is not None:
        result.refuse(not_here)
        writes = exchange_record.writes("postgresql", host_tenant_id, request, customer.id, result, None, now)
        await _record_alone(conn, writes)
        return Answered(result)
    servings = await _servings(conn, cache, host_tenant_id, state, values, now)
    chosen = exchange_rules.choose(servings, asked, counts, result)
    if request.dry_run:
        exchange_rules.show(chosen, [_fixed_code(serving) for serving, _ in chosen], request, result)
        return Answered(result)
    try:
        async with conn.pipeline() as pipeline:
            await conn.execute("BEGIN")
            ref = customer_ref(code_key, host_tenant_id, customer.id)
            found_codes = await _codes(conn, pipeline, [serving for serving, _ in chosen], request, ref, now)
            outcome = exchange_rules.show(chosen, found_codes, request, result)
            groups = asked.held.groups
            writes = exchange_record.writes(
                "postgresql", host_tenant_id, request, customer.id, result, outcome, now, groups
            )
            await _record(conn, writes)
    except BaseException:
        await _rollback(conn)
        raise
    return Answered(result, outcome.dry_pools)


async def _servings(
    conn: AsyncConnection[Any],
    cache: serving_cache.ServingCache,
    host_tenant_id: str,
    state: serving_cache.Snapshot,
    values: Mapping[str, Any],
    now: datetime,
) -> list[exchange_rules.Serving]:
    """The host's offers serving now: the kept copy if the database's fingerprint confirms it, else
    read again (one more round trip, on the first answer for a host and after each change)."""
    entry = cache.get(host_tenant_id, state.fingerprint)
    if entry is None:
        rows = await _rows(serving_cache.STATIC_QUERY, await _run(conn, serving_cache.STATIC_QUERY, values))
        entry = serving_cache.host_servings(rows, rows[0][-1] if rows else state.fingerprint)
        cache.put(host_tenant_id, entry)
        if entry.fingerprint != state.fingerprint:
            # Changed between the two reads: the counts do not pair with these rows; read it all at once.
            full = await _rows(exchange_reads.SERVING_QUERY, await _run(conn, exchange_reads.SERVING_QUERY, values))
            return exchange_reads.servings_of(full)
    return serving_cache.servings(entry, state, now)


def _fixed_code(serving: exchange_rules.Serving) -> str | None:
    """The code known without a claim: the shared code, or none (no codes, or a pool in a dry run)."""
    offer = serving.offer
    return offer.shared_code if offer.code_mode == "shared" else None


async def _codes(
    conn: AsyncConnection[Any],
    pipeline: AsyncPipeline,
    chosen: Sequence[exchange_rules.Serving],
    request: ExchangeRequest,
    ref: str,
    now: datetime,
) -> list[str | None]:
    """Each chosen offer's code: single-use ones held by or claimed for the customer, all in one round
    trip (`codes.reserve_code`'s statement: FOR UPDATE SKIP LOCKED, never one code to two customers)."""
    found = [_fixed_code(serving) for serving in chosen]
    pools = [i for i, serving in enumerate(chosen) if exchange_rules.needs_pool_code(serving, request)]
    if not pools:
        return found
    cursors = []
    for i in pools:
        offer = chosen[i].offer
        claim = {"tenant": offer.offering_tenant_id, "offer": offer.offer_id, "ref": ref, "now": now}
        cursors.append(await _run(conn, codes.HELD_OR_CLAIMED, claim))
    await pipeline.sync()
    for i, cursor in zip(pools, cursors, strict=True):
        row = await cursor.fetchone()
        found[i] = str(row[0]) if row is not None and row[0] is not None else None
    for i in pools:
        if found[i] is None:
            # As `codes.reserve_code`: an offer turned to a shared code since its live row was read.
            found[i] = await _shared_code_now(conn, pipeline, chosen[i].offer)
    return found


async def _shared_code_now(conn: AsyncConnection[Any], pipeline: AsyncPipeline, offer: LiveOfferRow) -> str | None:
    cursor = await _run(conn, codes.SHARED_CODE_QUERY, {"tenant": offer.offering_tenant_id, "offer": offer.offer_id})
    await pipeline.sync()
    row = await cursor.fetchone()
    return str(row[1]) if row is not None and row[0] == "shared" and row[1] is not None else None


async def _record_alone(conn: AsyncConnection[Any], writes: Sequence[Write]) -> None:
    """Record an answer that showed nothing (no codes to claim) in its own transaction."""
    if not writes:
        return
    try:
        async with conn.pipeline():
            await conn.execute("BEGIN")
            await _record(conn, writes)
    except BaseException:
        await _rollback(conn)
        raise


async def _record(conn: AsyncConnection[Any], writes: Sequence[Write]) -> None:
    """The writes as one statement (data-modifying CTEs, as `db.execute_together`), then COMMIT: queued on
    the caller's pipeline after its BEGIN, sent when the pipeline closes."""
    if writes:
        statement, values = together(writes)
        await _run(conn, statement, values)
    await conn.execute("COMMIT")


async def _rollback(conn: AsyncConnection[Any]) -> None:
    if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
        await conn.execute("ROLLBACK")

"""One exchange answer's cost in process, without HTTP, on the seeded bench database (run by hand).

    .venv/bin/python bench/seed_exchange.py          # once
    .venv/bin/python bench/exchange_answer.py --answers 400

Calls `partners.exchange_async.answer` (the API's hot path) for random (host, customer) pairs of
the seeded database on one psycopg connection set up as the API's pool sets its connections up,
dry and recorded, and prints the wall time per answer (p50, p90, p99) beside the CPU time this
process spent per answer; the rest is PostgreSQL and the round trips. `--no-pipeline` sends the
same statements one by one instead of in psycopg pipelines, to compare the two.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import text

from partners import exchange_async, serving_cache
from partners.db import make_engine, utcnow
from partners.db_async import HOT_PATH_OPTIONS, conninfo
from partners.exchange_model import ExchangeRequest, Placement

CODE_KEY = b"bench-code-key-" + b"k" * 17


class _Sequential:
    """Stands in for a psycopg pipeline: statements run as they are sent, `sync` has nothing to do."""

    async def sync(self) -> None:
        return None


@asynccontextmanager
async def _no_pipeline() -> AsyncIterator[_Sequential]:
    yield _Sequential()


async def run(url: str, pairs: list[tuple[str, str]], *, dry: bool, pipeline: bool) -> list[tuple[float, float]]:
    """(wall, cpu) seconds of each answer, after one warm-up pass over the first hosts."""
    conn = await AsyncConnection.connect(url, autocommit=True, prepare_threshold=0, options=HOT_PATH_OPTIONS)
    if not pipeline:
        conn.pipeline = _no_pipeline  # type: ignore[method-assign,assignment]
    cache = serving_cache.ServingCache()
    timings = []
    for index, (host, customer) in enumerate([*pairs[:50], *pairs]):
        request = ExchangeRequest(customer_external_id=customer, placement=Placement.order_confirmation, dry_run=dry)
        wall, cpu = time.perf_counter(), time.process_time()
        await exchange_async.answer(conn, host, request, now=utcnow(), code_key=CODE_KEY, cache=cache)
        if index >= 50:
            timings.append((time.perf_counter() - wall, time.process_time() - cpu))
    await conn.close()
    return timings


def ms(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/bench_exchange")
    parser.add_argument("--answers", type=int, default=400)
    parser.add_argument("--no-pipeline", action="store_true")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    engine = make_engine(args.database_url)
    with engine.connect() as connection:
        rows: Any = connection.execute(
            text(
                "SELECT c.tenant_id, c.external_id FROM customers c "
                "WHERE c.tenant_id IN (SELECT DISTINCT tenant_id FROM live_offers LIMIT 50) "
                "ORDER BY md5(c.external_id || :seed) LIMIT :n"
            ),
            {"seed": str(args.seed), "n": args.answers},
        ).all()
    pairs = [(str(t), str(e)) for t, e in rows]
    random.Random(args.seed).shuffle(pairs)  # noqa: S311 (a workload, not a secret)
    url = conninfo(engine)
    engine.dispose()
    print(f"{len(pairs)} answers each; {'no pipeline' if args.no_pipeline else 'psycopg pipelines'}")
    print(f"{'answer':<9} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'cpu ms':>7}")
    for dry in (True, False):
        timings = asyncio.run(run(url, pairs, dry=dry, pipeline=not args.no_pipeline))
        walls, cpus = [w for w, _ in timings], [c for _, c in timings]
        print(
            f"{'dry' if dry else 'recorded':<9} {ms(walls, 0.5):>7.2f} {ms(walls, 0.9):>7.2f} {ms(walls, 0.99):>7.2f} "
            f"{sum(cpus) / len(cpus) * 1000:>7.2f}"
        )


if __name__ == "__main__":
    main()

"""What numbering changes at commit costs, and how fast a feed reads (run by hand, not in tests).

    .venv/bin/python bench/change_feeds.py --database-url postgresql://postgres@127.0.0.1:5432/bench_changes

Writers: transactions that each touch one item and commit (nothing else), for `--seconds`, with
1 writer, then `--threads` writers on one tenant (they serialize on its counter), then the same
number on distinct tenants. Reader: pages of 100 through a feed of `--items` items.
"""

from __future__ import annotations

import argparse
import threading
import time

from sqlalchemy import Engine, make_url, text
from sqlmodel import Session

from partners import changes
from partners.changes import Feed
from partners.db import make_engine, unit_of_work
from partners.ids import new_id
from partners.migrate import upgrade
from partners.retailers import Tenant


def ensure_database(url: str) -> None:
    parsed = make_url(url)
    admin = make_engine(
        parsed.set(database="postgres").render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def make_tenants(engine: Engine, count: int) -> list[str]:
    ids = [new_id("ten") for _ in range(count)]
    with unit_of_work(engine) as session:
        session.add_all(Tenant(id=tenant_id, name=f"bench {tenant_id}") for tenant_id in ids)
    return ids


def writers(engine: Engine, tenants: list[str], seconds: float, touch: bool = True) -> float:
    """Commits per second of `len(tenants)` threads, thread i touching tenant i's feed.

    Without `touch`, each transaction writes one row instead (the baseline cost of a commit).
    """
    counts = [0] * len(tenants)
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        while time.monotonic() < stop:
            with unit_of_work(engine) as session:
                if touch:
                    changes.touch(session, tenants[i], Feed.offers, new_id("off"))
                else:
                    session.execute(text("UPDATE tenants SET name = name WHERE id = :id"), {"id": tenants[i]})
            counts[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(tenants))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / seconds


def reader(engine: Engine, tenant_id: str) -> tuple[int, float]:
    """Items read and seconds taken paging the whole feed 100 at a time."""
    started, after, total = time.monotonic(), 0, 0
    while True:
        with Session(engine) as session:
            entries, more = changes.read(session, tenant_id, Feed.offers, after, 100)
        total += len(entries)
        if entries:
            after = entries[-1].seq
        if not more:
            return total, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    ensure_database(args.database_url)
    upgrade(args.database_url)
    engine = make_engine(args.database_url)
    one = make_tenants(engine, 1)
    print(f"baseline, 1 writer updating one row: {writers(engine, one, args.seconds, touch=False):,.0f} commits/s")
    print(f"1 writer, 1 tenant: {writers(engine, one, args.seconds):,.0f} commits/s")
    same = one * args.threads
    print(f"{args.threads} writers, 1 tenant: {writers(engine, same, args.seconds):,.0f} commits/s")
    many = make_tenants(engine, args.threads)
    print(f"{args.threads} writers, {args.threads} tenants: {writers(engine, many, args.seconds):,.0f} commits/s")
    items, took = reader(engine, one[0])
    print(f"read {items:,} items in pages of 100: {items / took:,.0f} items/s")
    engine.dispose()


if __name__ == "__main__":
    main()

"""Seed PostgreSQL for the exchange benchmark (run by hand, not in tests).

    .venv/bin/python bench/seed_exchange.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/bench_exchange

Defaults: 1,000 tenants, 1,000,000 customers with interest profiles and `partner_offers`
consents, 8 active partnerships per tenant, 10,000 live approved offers (each published to
4 partnerships, so 40,000 live rows, 40 per host), a third of them with single-use code pools.

How, so that the data is what the domain code itself produces:

1. A *cell* of `--cell` tenants is built through the domain functions (profiles, consent
   notices, partnerships proposed and accepted with terms, offers created, published and
   approved by each host, code pools generated, customers registered with purchases that
   derive their interest profiles, consent events folded into consent states).
2. The cell is cloned with COPY until there are `--tenants` tenants (every id renamed), and
   its template customers are cloned with COPY until each tenant has its share of
   `--customers` (ids, external ids and consent event ids renamed; purchases are not
   cloned: the exchange reads the derived profiles, not the orders).
3. Checks with the domain code: `live_offers.refresh_host` on sampled hosts and
   `consent_ledger.refresh_states` on sampled customers must leave the COPYed rows as they
   are, and `exchange.answer` (dry run) must show offers to most sampled customers.

The database is dropped and created again unless `--keep` says to reuse a seeded one.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Engine, make_url, text
from sqlmodel import Session

from partners import consent, consent_ledger, customers, exchange, live_offers, offer_actions, partnerships, profiles
from partners import purchases as purchase_store
from partners.consent_rules import ALL_PARTNERS, Action, Method, Purpose, Source
from partners.db import make_engine, unit_of_work, utcnow
from partners.migrate import upgrade
from partners.notices import NoticeInput, create_notice
from partners.offer_rules import Budget, CodeMode, CustomerType, OfferContent, OfferKind, Targeting
from partners.offers import OfferSettings
from partners.partnership_rules import Action as PartnershipAction
from partners.retailers import create_tenant
from partners.taxonomy import load_taxonomy
from partners.terms import TermsInput, agreement_digest

ROOT_CATEGORY = "cat_pet_supplies"
CODE_KEY = b"bench-exchange-code-key-32-bytes"
HASH_KEY = b"bench-exchange-identity-hash-key"
AGREEMENT = "We share only aggregate counts and keyed hashes; single-use codes name no customer."
# Tables the cell's rows are cloned into, parents before children (customer-level tables apart).
CELL_TABLES = (
    "tenants",
    "retailer_profiles",
    "consent_notices",
    "partnerships",
    "partnership_terms",
    "partnership_events",
    "offers",
    "offer_versions",
    "offer_placements",
    "offer_codes",
    "live_offers",
)
CUSTOMER_TABLES = ("customers", "customer_profiles", "customer_interests", "consent_events", "consent_states")
_ID = re.compile(r"\b([a-z]{3})_[0-9a-hjkmnp-tv-z]{26}\b")
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
MAX_EVENTS_PER_CUSTOMER = 16


def log(message: str) -> None:
    print(message, flush=True)


@dataclass
class Timings:
    phases: list[tuple[str, float, str]] = field(default_factory=list)

    def run(self, name: str, step: Callable[[], str]) -> None:
        log(f"== {name}")
        started = time.perf_counter()
        detail = step()
        elapsed = time.perf_counter() - started
        self.phases.append((name, elapsed, detail))
        log(f"   {name}: {elapsed:,.1f} s  {detail}")


def ensure_database(url: str, *, recreate: bool) -> None:
    parsed = make_url(url)
    admin = make_engine(
        parsed.set(database="postgres").render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        if recreate:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
        ).first()
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- 1. the cell, through the domain --------------------------------------------------------


@dataclass
class Cell:
    tenant_ids: list[str]
    offers: int = 0
    pool_offers: int = 0
    placements: int = 0
    customers: int = 0


def _leaves() -> list[str]:
    tree = load_taxonomy()
    return [c.id for c in tree.descendants(ROOT_CATEGORY) if tree.is_leaf(c.id)]


def _actor(tenant_id: str) -> partnerships.Actor:
    return partnerships.Actor(tenant_id, "usr_bench")


def _offer_content(rng: random.Random, leaves: Sequence[str], number: int, now: datetime) -> OfferContent:
    tree = load_taxonomy()
    categories = tuple(rng.sample(leaves, rng.choice((1, 1, 2))))
    percent = rng.random() < 0.7
    band = rng.random() < 0.3
    low = rng.choice((1000, 2000, 4000))
    return OfferContent(
        title=f"{f'{5 * rng.randint(1, 6)}% off' if percent else '£10 off'} {tree.label(categories[0])}"[:200],
        description=f"Bench offer {number}.",
        landing_url=f"https://partner.example/offers/{number}",
        kind=OfferKind.percent_off if percent else OfferKind.amount_off,
        currency="GBP",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=365),
        percent_off=float(5 * rng.randint(1, 6)) if percent else None,
        amount_off=None if percent else 1000,
        minimum_order=None if percent else 3000,
        targeting=Targeting(
            categories=categories,
            price_min=low if band else None,
            price_max=low * 5 if band else None,
            customer_type=CustomerType.returning if rng.random() < 0.1 else CustomerType.any,
            regions=("GB",) if rng.random() < 0.1 else (),
        ),
    )


def build_cell(engine: Engine, args: argparse.Namespace, rng: random.Random) -> Cell:
    """`args.cell` tenants with partnerships, live offers and template customers, through the domain."""
    now = utcnow()
    leaves = _leaves()
    size, half = args.cell, args.partners // 2
    per_tenant = args.offers // args.tenants
    with unit_of_work(engine) as session:
        ids = []
        for i in range(size):
            tenant = create_tenant(session, f"Bench shop {i}")
            shop_leaves = rng.sample(leaves, 3)
            profiles.save_profile(
                session,
                tenant.id,
                profiles.ProfileInput(
                    display_name=f"Bench shop {i}",
                    website=f"https://shop{i}.example",
                    description="A benchmark retailer.",
                    categories={c: round(1 / 3, 3) for c in shop_leaves},
                    regions=["GB"],
                    currencies=["GBP"],
                    price_positioning="mid",  # type: ignore[arg-type]
                    audience_notes="",
                    blocked_categories=[],
                    discoverable=True,
                    overlap_opt_in=False,
                ),
            )
            ids.append(tenant.id)
    cell = Cell(ids)
    terms = TermsInput(
        my_offer_categories=[ROOT_CATEGORY],
        partner_offer_categories=[ROOT_CATEGORY],
        cap_per_7_days=10,
        cap_per_30_days=30,
        commission_percent=10.0,
        attribution_window_days=30,
        reciprocity_target=1.0,
        contact_sharing=False,
        agreement_text=AGREEMENT,
    )
    links: dict[str, list[str]] = {t: [] for t in ids}  # tenant -> partnership ids (either side)
    partners_of: dict[str, list[str]] = {t: [] for t in ids}
    with unit_of_work(engine) as session:
        for i, proposer in enumerate(ids):
            for step in range(1, half + 1):
                partner = ids[(i + step) % size]
                created = partnerships.propose(session, _actor(proposer), partner, terms)
                accepting = (1, agreement_digest(AGREEMENT))
                partnerships.act(session, _actor(partner), created.id, PartnershipAction.accept, accepting=accepting)
                for a, b in ((proposer, partner), (partner, proposer)):
                    links[a].append(created.id)
                    partners_of[a].append(b)
    log(f"   cell: {size} tenants, {sum(len(v) for v in links.values()) // 2} partnerships")
    number = 0
    for tenant_id in ids:
        with unit_of_work(engine) as session:
            for _ in range(per_tenant):
                number += 1
                roll = rng.random()
                mode = CodeMode.pool if roll < args.pool_share else CodeMode.shared if roll < 0.6 else CodeMode.none
                settings = OfferSettings(
                    budget=Budget(),
                    code_mode=mode,
                    shared_code=f"SHARE{number:05d}" if mode is CodeMode.shared else None,
                )
                offer = offer_actions.create(
                    session, _actor(tenant_id), _offer_content(rng, leaves, number, now), settings
                )
                if mode is CodeMode.pool:
                    offer_actions.generate_codes(session, _actor(tenant_id), offer.id, args.pool_size)
                    cell.pool_offers += 1
                chosen = rng.sample(range(len(links[tenant_id])), args.placements)
                offer_actions.publish(session, _actor(tenant_id), offer.id, [links[tenant_id][c] for c in chosen])
                for c in chosen:
                    offer_actions.decide(session, _actor(partners_of[tenant_id][c]), offer.id, 1, approve=True)
                cell.offers += 1
                cell.placements += len(chosen)
        log(f"   cell: {cell.offers} offers live at {cell.placements} hosts' so far")
    for n, tenant_id in enumerate(ids):
        with unit_of_work(engine) as session:
            notice = create_notice(
                session,
                tenant_id,
                NoticeInput(
                    "checkout",
                    "en",
                    "May we show you offers from our partner shops? You can withdraw at any time.",
                    (Purpose.partner_offers,),
                    None,
                    datetime(2024, 1, 1, tzinfo=UTC),
                ),
                is_active_partner=partnerships.is_active_partner,
            )
            for c in range(args.template_customers):
                _template_customer(session, rng, leaves, tenant_id, f"c{n}-{c}", notice.id, partners_of[tenant_id])
                cell.customers += 1
    log(f"   cell: {cell.customers} template customers with purchases and consents")
    return cell


def _template_customer(
    session: Session,
    rng: random.Random,
    leaves: Sequence[str],
    tenant_id: str,
    external_id: str,
    notice_id: str,
    partner_ids: Sequence[str],
) -> None:
    customers.upsert_customer(
        session, tenant_id, external_id, email=None, store_email=False, hash_key=HASH_KEY, encryption_key=""
    )
    favourites = rng.sample(leaves, rng.randint(2, 4))
    for order in range(rng.randint(1, 5)):
        lines = tuple(
            purchase_store.LineInput(category, rng.randint(5, 120) * 100, 1, "physical")  # type: ignore[arg-type]
            for category in rng.sample(favourites, rng.randint(1, min(2, len(favourites))))
        )
        purchase_store.record_purchase(
            session,
            tenant_id,
            external_id,
            purchase_store.PurchaseInput(
                order_id=f"{external_id}-o{order}",
                ordered_at=utcnow() - timedelta(days=rng.randint(1, 400), minutes=rng.randint(0, 1000)),
                currency="GBP",
                lines=lines,
            ),
        )
    roll = rng.random()
    # 70 % grant for all active partners, 10 % for one named partner, 10 % grant then withdraw, 10 % never.
    if roll >= 0.9:
        return
    partner = rng.choice(partner_ids) if 0.7 <= roll < 0.8 else ALL_PARTNERS
    events = [(Action.granted, partner)]
    if roll >= 0.8:
        events.append((Action.withdrawn, ALL_PARTNERS))
    for seq, (action, who) in enumerate(events):
        consent.record_event(
            session,
            tenant_id,
            external_id,
            consent.ConsentInput(
                event_id=f"{external_id}-e{seq}",
                action=action,
                method=Method.checkbox if action is Action.granted else Method.preference_link,
                source=Source.checkout,
                occurred_at=utcnow() - timedelta(days=30 - seq),
                purposes=(Purpose.partner_offers,),
                partner=who,
                notice_id=notice_id if action is Action.granted else None,
            ),
            is_active_partner=partnerships.is_active_partner,
        )


# --- 2. cloning with COPY -------------------------------------------------------------------
#
# Each cell row becomes one line of COPY text once, with a `{…}` slot wherever an id (or a
# renamed external id) goes; a clone is then one `str.format` per row.

_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


def counter_id(prefix: str, base_ms: int, index: int) -> str:
    """A well-formed id (`ids.is_id`) made from a counter: 48 bits of time, then 80 bits of index."""
    value = (base_ms << 80) | index
    parts = []
    for _ in range(13):
        parts.append(_PAIRS[value & 1023])
        value >>= 10
    return f"{prefix}_{''.join(reversed(parts))}"


def _copy_text(value: Any, is_json: bool) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if is_json:
        value = json.dumps(value)
    elif isinstance(value, bool):
        value = "t" if value else "f"
    elif isinstance(value, datetime):
        value = value.isoformat()
    value = str(value)
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _braced(value: str) -> str:
    return value.replace("{", "{{").replace("}", "}}")


def _columns(conn: psycopg.Connection[Any], table: str) -> tuple[list[str], set[str]]:
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [r[0] for r in rows], {r[0] for r in rows if r[1] in ("json", "jsonb")}


def _select_rows(conn: psycopg.Connection[Any], table: str, columns: Sequence[str], where: str, params: Any) -> list:
    names = ", ".join(f'"{c}"' for c in columns)
    return conn.execute(f"SELECT {names} FROM {table} WHERE {where}", params).fetchall()  # noqa: S608


class _Slots:
    """Turns the text of a value into a format string: known ids become `{0[i]}` slots."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.index = {value: i for i, value in enumerate(ids)}

    def __call__(self, text_value: str, extra: dict[str, str] | None = None) -> str:
        def slot(match: re.Match[str]) -> str:
            found = match.group(0)
            if extra and found in extra:
                return extra[found]
            position = self.index.get(found)
            return "{0[%d]}" % position if position is not None else found  # noqa: UP031

        return _ID.sub(slot, _braced(text_value))


@dataclass
class Clones:
    ids: list[str]  # every id of the cell, in slot order
    replica_ids: list[list[str]]  # the same ids in each replica (replica 0: the cell itself)


def clone_cell(conn: psycopg.Connection[Any], cell: Cell, replicas: int, base_ms: int) -> tuple[str, Clones]:
    """Copy every cell row `replicas - 1` times under new ids."""
    loaded: dict[str, tuple[list[str], list[list[str]]]] = {}
    ids: set[str] = set()
    for table in CELL_TABLES:
        columns, json_columns = _columns(conn, table)
        key = "id" if table == "tenants" else "tenant_id"
        rows = _select_rows(conn, table, columns, f"{key} = ANY(%s)", (cell.tenant_ids,))
        texts = [[_copy_text(v, c in json_columns) for v, c in zip(row, columns, strict=True)] for row in rows]
        loaded[table] = (columns, texts)
        for row_text in texts:
            for value in row_text:
                ids.update(m.group(0) for m in _ID.finditer(value))
    ordered = sorted(ids)
    slots = _Slots(ordered)
    counter = 0
    replica_ids = [ordered]
    for _ in range(1, replicas):
        made = []
        for old in ordered:
            counter += 1
            made.append(counter_id(old[:3], base_ms, counter))
        replica_ids.append(made)
    total = 0
    for table in CELL_TABLES:
        columns, texts = loaded[table]
        named = {"tenants": "name", "retailer_profiles": "display_name"}.get(table)
        formats = []
        for row_text in texts:
            parts = [slots(v) for v in row_text]
            if named:
                parts[columns.index(named)] += ".{1}"
            formats.append("\t".join(parts) + "\n")
        names = ", ".join(f'"{c}"' for c in columns)
        with conn.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for r in range(1, replicas):
                new_ids = replica_ids[r]
                copy.write("".join(f.format(new_ids, r) for f in formats))
        total += len(texts) * (replicas - 1)
        log(f"   {table}: {len(texts)} cell rows, {len(texts) * (replicas - 1):,} cloned")
    conn.commit()
    return f"{total:,} rows", Clones(ordered, replica_ids)


def clone_customers(conn: psycopg.Connection[Any], cell: Cell, clones: Clones, per_tenant: int, base_ms: int) -> str:
    """Give every tenant `per_tenant` customers: copies of its cell tenant's template customers."""
    slots = _Slots(clones.ids)
    # formats[table][template customer id] = its rows as format strings:
    # {0[i]} a cell id, {1} the new customer id, {2} the copy's suffix, {3[k]} its k-th consent event id.
    formats: dict[str, dict[str, list[str]]] = {t: {} for t in CUSTOMER_TABLES}
    events: dict[str, dict[str, int]] = {}
    owners: dict[str, str] = {}
    columns_of: dict[str, list[str]] = {}
    raw: dict[str, list[tuple[Any, ...]]] = {}
    for table in CUSTOMER_TABLES:
        columns, json_columns = _columns(conn, table)
        columns_of[table] = columns
        rows = _select_rows(conn, table, columns, "tenant_id = ANY(%s)", (cell.tenant_ids,))
        raw[table] = [
            tuple(_copy_text(v, c in json_columns) for v, c in zip(row, columns, strict=True)) for row in rows
        ]
    for row in raw["customers"]:
        values = dict(zip(columns_of["customers"], row, strict=True))
        owners[values["id"]] = values["tenant_id"]
    for row in raw["consent_events"]:
        values = dict(zip(columns_of["consent_events"], row, strict=True))
        mine = events.setdefault(values["customer_id"], {})
        mine[values["id"]] = len(mine)
        assert len(mine) <= MAX_EVENTS_PER_CUSTOMER
    suffixed = {"external_id", "event_id", "confirms"}
    for table in CUSTOMER_TABLES:
        columns = columns_of[table]
        key = "id" if table == "customers" else "customer_id"
        for row in raw[table]:
            values = dict(zip(columns, row, strict=True))
            customer_id = values[key]
            extra = {customer_id: "{1}"}
            extra.update({e: "{3[%d]}" % k for e, k in events.get(customer_id, {}).items()})  # noqa: UP031
            parts = []
            for column, value in values.items():
                part = slots(value, extra)
                if column in suffixed and value != "\\N":
                    part += ".{2}"
                parts.append(part)
            formats[table].setdefault(customer_id, []).append("\t".join(parts) + "\n")
    by_tenant: dict[str, list[str]] = {t: sorted(c for c, o in owners.items() if o == t) for t in cell.tenant_ids}
    total = 0
    started = time.perf_counter()
    for table in CUSTOMER_TABLES:
        names = ", ".join(f'"{c}"' for c in columns_of[table])
        count = 0
        with conn.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            index = 0
            for r, new_ids in enumerate(clones.replica_ids):
                batch = []
                for tenant_id in cell.tenant_ids:
                    originals = by_tenant[tenant_id]
                    for n in range(per_tenant):
                        index += 1
                        source = originals[n % len(originals)]
                        if r == 0 and n < len(originals):
                            continue  # the template customer itself
                        lines = formats[table].get(source)
                        if not lines:
                            continue
                        customer = counter_id("cus", base_ms, index)
                        event_ids = [
                            counter_id("cev", base_ms, index * MAX_EVENTS_PER_CUSTOMER + k)
                            for k in range(len(events.get(source, ())))
                        ]
                        suffix = f"{r}.{n}"
                        batch.extend(line.format(new_ids, customer, suffix, event_ids) for line in lines)
                copy.write("".join(batch))
                count += len(batch)
                if r % 20 == 19:
                    log(f"   {table}: {count:,} rows ({time.perf_counter() - started:,.0f} s)")
        conn.commit()
        total += count
        log(f"   {table}: {count:,} rows cloned")
    return f"{total:,} rows"


# --- 3. checks with the domain code ---------------------------------------------------------


def sample_customers(engine: Engine, count: int, seed: int) -> list[tuple[str, str, str]]:
    """(tenant id, customer id, external id) of random customers, picked in SQL."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT tenant_id, id, external_id FROM customers TABLESAMPLE BERNOULLI (1) REPEATABLE (:s) "
                "ORDER BY random() LIMIT :n"
            ),
            {"s": seed, "n": count},
        ).all()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def check(engine: Engine, args: argparse.Namespace) -> str:
    sample = sample_customers(engine, args.check_customers, args.seed)
    hosts = sorted({t for t, _, _ in sample})[: args.check_hosts]
    drift = 0
    with Session(engine) as session:
        # The live rows as the domain would write them now: refresh must change nothing.
        for host in hosts:
            before = {(r.partnership_id, r.offer_id): r for r in live_offers.live_for_host(session, host, utcnow())}
            live_offers.refresh_host(session, host)
            after = {(r.partnership_id, r.offer_id): r for r in live_offers.live_for_host(session, host, utcnow())}
            drift += before != after
        states_drift = 0
        for tenant_id, customer_id, _ in sample[: args.check_hosts]:
            purposes = {str(Purpose.partner_offers)}
            before_states = consent_ledger.as_key_states(
                consent_ledger.state_rows(session, tenant_id, customer_id, purposes)
            )
            consent_ledger.refresh_states(session, tenant_id, customer_id, purposes)
            after_states = consent_ledger.as_key_states(
                consent_ledger.state_rows(session, tenant_id, customer_id, purposes)
            )
            states_drift += before_states != after_states
        session.rollback()
    if drift or states_drift:
        sys.exit(f"seed: {drift} hosts' live offers and {states_drift} consent states differ from the domain's")
    shown, offers = 0, 0
    with Session(engine) as session:
        for tenant_id, _, external_id in sample:
            request = exchange.ExchangeRequest(external_id, exchange.Placement.order_confirmation, region="GB")
            result = exchange.answer(session, tenant_id, replace_dry(request), now=utcnow(), code_key=CODE_KEY)
            shown += bool(result.offers)
            offers += len(result.offers)
        # One recorded answer reserves codes and writes impressions; rolled back.
        tenant_id, _, external_id = sample[0]
        recorded = exchange.answer(
            session,
            tenant_id,
            exchange.ExchangeRequest(external_id, exchange.Placement.order_confirmation, region="GB"),
            now=utcnow(),
            code_key=CODE_KEY,
        )
        session.rollback()
    share = shown / len(sample)
    if share < 0.3:
        sys.exit(f"seed: only {share:.0%} of sampled customers were shown an offer")
    return (
        f"{len(hosts)} hosts' live rows and {min(len(sample), args.check_hosts)} customers' consent states "
        f"unchanged by the domain's refresh; dry-run exchange showed offers to {share:.0%} of {len(sample)} "
        f"sampled customers ({offers / len(sample):.2f} offers each); a recorded answer showed "
        f"{len(recorded.offers)} offers, codes {[o.code for o in recorded.offers]}"
    )


def replace_dry(request: exchange.ExchangeRequest) -> exchange.ExchangeRequest:
    return exchange.ExchangeRequest(
        request.customer_external_id, request.placement, request.limit, region=request.region, dry_run=True
    )


def counts(engine: Engine) -> str:
    tables = ("tenants", "partnerships", "offers", "live_offers", "offer_codes", *CUSTOMER_TABLES)
    with engine.connect() as connection:
        found = {t: connection.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}  # noqa: S608
        live = connection.execute(text("SELECT count(*) FROM live_offers WHERE status = 'live'")).scalar_one()
        size = connection.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar_one()
    return ", ".join(f"{t} {n:,}" for t, n in found.items()) + f"; live rows with status live {live:,}; size {size}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/bench_exchange")
    parser.add_argument("--tenants", type=int, default=1_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--offers", type=int, default=10_000, help="live offers in all")
    parser.add_argument("--cell", type=int, default=10, help="tenants built through the domain, then cloned")
    parser.add_argument("--partners", type=int, default=8, help="active partnerships per tenant (even)")
    parser.add_argument("--placements", type=int, default=4, help="partnerships each offer is approved at")
    parser.add_argument("--template-customers", type=int, default=50, help="per cell tenant, through the domain")
    parser.add_argument("--pool-share", type=float, default=1 / 3, help="share of offers with single-use codes")
    parser.add_argument("--pool-size", type=int, default=400, help="codes per pool")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--check-customers", type=int, default=300)
    parser.add_argument("--check-hosts", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="only run the checks on an already seeded database")
    args = parser.parse_args()
    if args.tenants % args.cell or args.customers % args.tenants or args.offers % args.tenants:
        sys.exit("seed: tenants must be a multiple of --cell; customers and offers multiples of tenants")
    if args.partners >= args.cell or args.partners % 2 or args.placements > args.partners:
        sys.exit("seed: need placements <= partners < cell, partners even")
    rng = random.Random(args.seed)  # noqa: S311 (reproducible data, not secrets)
    timings = Timings()
    engine = make_engine(args.database_url)
    if not args.keep:
        timings.run("create database and schema", lambda: _create(args.database_url))
        cell_holder: list[Cell] = []

        def cell_step() -> str:
            cell_holder.append(build_cell(engine, args, rng))
            c = cell_holder[0]
            pools = f"{c.offers} offers ({c.pool_offers} with pools)"
            return f"{len(c.tenant_ids)} tenants, {pools}, {c.customers} customers"

        timings.run("domain-built cell", cell_step)
        cell = cell_holder[0]
        base_ms = int(time.time() * 1000)
        with psycopg.connect(libpq_url(args.database_url)) as conn:
            conn.execute("SET synchronous_commit = off")
            clones: list[Clones] = []

            def clone_step() -> str:
                detail, made = clone_cell(conn, cell, args.tenants // args.cell, base_ms)
                clones.append(made)
                return detail

            timings.run("clone the cell (COPY)", clone_step)
            per_tenant = args.customers // args.tenants
            timings.run(
                "clone customers (COPY)", lambda: clone_customers(conn, cell, clones[0], per_tenant, base_ms + 1)
            )
            conn.autocommit = True
            timings.run("VACUUM ANALYZE", lambda: conn.execute("VACUUM ANALYZE") and "")
    timings.run("checks with the domain code", lambda: check(engine, args))
    timings.run("counts", lambda: counts(engine))
    engine.dispose()
    log("\nSummary")
    for name, elapsed, detail in timings.phases:
        log(f"  {name:<30} {elapsed:8.1f} s  {detail}")
    log(f"  {'total':<30} {sum(p[1] for p in timings.phases):8.1f} s")


def _create(url: str) -> str:
    ensure_database(url, recreate=True)
    upgrade(url)
    return "migrated to head"


if __name__ == "__main__":
    main()

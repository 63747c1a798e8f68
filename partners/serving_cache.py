"""Each host's serving offers kept per process, and checked against the database on every answer.

The offers a host may serve change when data changes (approvals, pauses, budgets, codes, terms,
a partner's name), not per request, yet they are most of what an answer reads. So a process
keeps, per host, the last rows it read (`STATIC_QUERY`) with their *fingerprint*: an md5 over
every served row's key and `refreshed_at` (every write of a live row sets it), the agreed terms'
caps and target, and the partner's display name, computed by PostgreSQL in the same statement.

Every answer reads the current fingerprint in its first round trip (`STATE_QUERY`, with what does
change per request: the ranking counters, the customer's consents and the token family's
revocation). A different fingerprint means the rows are read again before anything is decided, so
a paused offer, new terms or an ended partnership is seen by the very next answer; the cache is
never the truth, only a copy the database confirms. The clock window is applied per request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, Table, and_, bindparam, exists, func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from partners import counters, live_offers, tokens
from partners.consent_ledger import ConsentState
from partners.consent_rules import ALL_PARTNERS, Purpose, granted_for_partner
from partners.customers import Customer as CustomerRow
from partners.exchange_rules import Caps, Counts, Serving
from partners.live_offers import LiveOfferRow
from partners.partnership_rules import State
from partners.partnerships import Partnership
from partners.profiles import RetailerProfile
from partners.terms import PartnershipTerms

MAX_HOSTS = 4096
_COUNTED = ("offer_impressions", "offer_redemptions", "given", "received")
_ROW_FIELDS = [f.name for f in fields(LiveOfferRow) if f.name not in _COUNTED]


@dataclass(frozen=True, slots=True)
class _Row:
    offer: LiveOfferRow  # its counter fields are 0: the counts come with every answer
    caps: Caps | None
    partner_name: str


@dataclass(frozen=True, slots=True)
class HostServings:
    """A host's live rows on active partnerships (every window), in `(offer_id, partnership_id)` order."""

    fingerprint: str | None
    rows: tuple[_Row, ...]


class ServingCache:
    """Per process (on the app's state): the last `HostServings` read for each host, least recent out."""

    def __init__(self, max_hosts: int = MAX_HOSTS) -> None:
        self._hosts: OrderedDict[str, HostServings] = OrderedDict()
        self._max = max_hosts

    def get(self, host_tenant_id: str, fingerprint: str | None) -> HostServings | None:
        """The kept rows if they are still what the database serves (same fingerprint), else None."""
        entry = self._hosts.get(host_tenant_id)
        if entry is None or entry.fingerprint != fingerprint:
            return None
        self._hosts.move_to_end(host_tenant_id)
        return entry

    def kept(self, host_tenant_id: str) -> HostServings | None:
        """What is kept for the host, whatever the database serves now (for tests and diagnostics)."""
        return self._hosts.get(host_tenant_id)

    def put(self, host_tenant_id: str, entry: HostServings) -> None:
        self._hosts[host_tenant_id] = entry
        self._hosts.move_to_end(host_tenant_id)
        while len(self._hosts) > self._max:
            self._hosts.popitem(last=False)


@dataclass(frozen=True)
class _Tables:
    live: Table
    partnership: Table
    terms: Table
    profile: Table


def _tables() -> _Tables:
    return _Tables(
        live_offers.LiveOffer.__table__,  # type: ignore[attr-defined]
        Partnership.__table__,  # type: ignore[attr-defined]
        PartnershipTerms.__table__,  # type: ignore[attr-defined]
        RetailerProfile.__table__,  # type: ignore[attr-defined]
    )


def _served(t: _Tables) -> tuple[FromClause, ColumnElement[bool]]:
    """The host's live rows on its active partnerships, with the agreed terms: FROM and WHERE."""
    joined = t.live.join(
        t.partnership,
        and_(
            t.partnership.c.tenant_id == t.live.c.tenant_id,
            t.partnership.c.id == t.live.c.partnership_id,
            t.partnership.c.state == State.active,
        ),
    ).outerjoin(
        t.terms,
        and_(
            t.terms.c.tenant_id == t.partnership.c.tenant_id,
            t.terms.c.partnership_id == t.partnership.c.id,
            t.terms.c.version == t.partnership.c.agreed_version,
        ),
    )
    return joined, and_(t.live.c.tenant_id == bindparam("host"), t.live.c.status == "live")


def _partner_name(t: _Tables) -> Any:
    # A lookup by primary key per row (a join let the planner hash all partners' profiles).
    return (
        select(t.profile.c.display_name).where(t.profile.c.tenant_id == t.live.c.offering_tenant_id).scalar_subquery()
    )


def _fingerprint(t: _Tables) -> Any:
    row = func.concat_ws(
        "|",
        t.live.c.partnership_id,
        t.live.c.offer_id,
        t.live.c.refreshed_at,
        t.terms.c.cap_per_7_days,
        t.terms.c.cap_per_30_days,
        t.terms.c.reciprocity_target,
        _partner_name(t),
    )
    return func.md5(func.string_agg(row, aggregate_order_by(literal_column("','"), *_order(t))))


def _order(t: _Tables) -> tuple[Any, ...]:
    return (t.live.c.offer_id, t.live.c.partnership_id)


def _static_query() -> Select[tuple[object, ...]]:
    t = _tables()
    joined, where = _served(t)
    inner = _tables()  # the same rows again, for the fingerprint of exactly this snapshot
    inner_from, inner_where = _served(inner)
    fingerprint = select(_fingerprint(inner)).select_from(inner_from).where(inner_where).scalar_subquery()
    return (
        select(
            *(t.live.c[name] for name in _ROW_FIELDS),
            t.terms.c.cap_per_7_days,
            t.terms.c.cap_per_30_days,
            t.terms.c.reciprocity_target,
            _partner_name(t),
            fingerprint.correlate(None),
        )
        .select_from(joined)
        .where(where)
        .order_by(*_order(t))
    )


def _state_query() -> Select[tuple[object, ...]]:
    t = _tables()
    joined, where = _served(t)
    offer_count = counters.OfferCounter.__table__.alias("offer_count")  # type: ignore[attr-defined]
    mine = counters.PartnershipImpressions.__table__.alias("given_count")  # type: ignore[attr-defined]
    theirs = counters.PartnershipImpressions.__table__.alias("received_count")  # type: ignore[attr-defined]
    joined = (
        joined.outerjoin(
            offer_count,
            and_(offer_count.c.tenant_id == t.live.c.offering_tenant_id, offer_count.c.offer_id == t.live.c.offer_id),
        )
        .outerjoin(
            mine,
            and_(
                mine.c.tenant_id == t.live.c.tenant_id,
                mine.c.partnership_id == t.live.c.partnership_id,
                mine.c.month == counters.ALL_TIME,
            ),
        )
        .outerjoin(
            theirs,
            and_(
                theirs.c.tenant_id == t.live.c.offering_tenant_id,
                theirs.c.partnership_id == t.live.c.partnership_id,
                theirs.c.month == counters.ALL_TIME,
            ),
        )
    )

    def in_order(column: Any) -> Any:
        return func.array_agg(aggregate_order_by(func.coalesce(column, 0), *_order(t)))

    customer: Table = CustomerRow.__table__  # type: ignore[attr-defined]
    consent: Table = ConsentState.__table__  # type: ignore[attr-defined]
    customer_id = (
        select(customer.c.id)
        .where(customer.c.tenant_id == bindparam("host"), customer.c.external_id == bindparam("external_id"))
        .scalar_subquery()
    )
    mine_consent = and_(
        consent.c.tenant_id == bindparam("host"),
        consent.c.customer_id == customer_id,
        consent.c.purpose == str(Purpose.partner_offers),
    )
    family: Table = tokens.TokenFamily.__table__  # type: ignore[attr-defined]
    family_ok = exists().where(family.c.id == bindparam("family"), family.c.revoked_at.is_(None))
    return (
        select(
            _fingerprint(t),
            in_order(offer_count.c.impressions),
            in_order(offer_count.c.redemptions),
            in_order(mine.c.given),
            in_order(theirs.c.given),
            # Both in partner order, so they pair up.
            select(func.array_agg(aggregate_order_by(consent.c.partner, consent.c.partner)))
            .where(mine_consent)
            .scalar_subquery(),
            select(func.array_agg(aggregate_order_by(consent.c.status, consent.c.partner)))
            .where(mine_consent)
            .scalar_subquery(),
            family_ok,
        )
        .select_from(joined)
        .where(where)
    )


# Built once (compiled once, prepared by psycopg). PostgreSQL only: the async path's statements.
STATIC_QUERY = _static_query()
STATE_QUERY = _state_query()
_STATIC_FIELDS = len(_ROW_FIELDS)


def host_servings(rows: Sequence[Sequence[Any]], fingerprint: str | None) -> HostServings:
    """`STATIC_QUERY`'s rows as a cache entry (`fingerprint`: the state's, when there are no rows)."""
    kept = []
    for row in rows:
        cap_7, cap_30, target, name, fingerprint = row[_STATIC_FIELDS:]
        caps = Caps(int(cap_7), int(cap_30), float(target)) if cap_7 is not None else None
        kept.append(_Row(LiveOfferRow(*row[:_STATIC_FIELDS]), caps, name or ""))
    return HostServings(fingerprint, tuple(kept))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """`STATE_QUERY`'s one row: what changes per answer."""

    fingerprint: str | None
    counts: tuple[Sequence[int], Sequence[int], Sequence[int], Sequence[int]]
    consents: dict[str, str]
    family_ok: bool


def snapshot_of(row: Sequence[Any]) -> Snapshot:
    fingerprint, impressions, redemptions, given, received, partners, statuses, family_ok = row
    consents = dict(zip(partners or (), statuses or (), strict=True))
    return Snapshot(
        fingerprint, (impressions or (), redemptions or (), given or (), received or ()), consents, bool(family_ok)
    )


def servings(entry: HostServings, state: Snapshot, now: datetime) -> list[Serving]:
    """The host's offers serving at `now`, with the customer's consent and this answer's counts."""
    impressions, redemptions, given, received = state.counts
    every = state.consents.get(ALL_PARTNERS)
    found = []
    for i, row in enumerate(entry.rows):
        offer = row.offer
        if offer.starts_at > now or (offer.ends_at is not None and offer.ends_at <= now):
            continue
        consented = granted_for_partner(state.consents.get(offer.offering_tenant_id), every)
        counts = Counts(impressions[i], redemptions[i], given[i], received[i])
        found.append(Serving(offer, row.caps, row.partner_name, consented, counts))
    return found

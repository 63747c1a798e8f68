"""Audience overlap releases, kept per pair of retailers: at most one per `REFRESH`, `MAX_RELEASES` in all."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Field, Session, SQLModel, col, select

from partners import partnerships, profiles
from partners.consent_ledger import consenting_email_hashes
from partners.consent_rules import Purpose
from partners.db import UTCDateTime, upsert_insert
from partners.errors import Conflict
from partners.overlap import MAX_RELEASES, REFRESH, OverlapEstimate, Release, release, shown_to, true_overlap
from partners.partnership_rules import State


class OverlapRelease(SQLModel, table=True):
    """One noised measurement of a pair; both tenants read it (the pair is stored sorted)."""

    __tablename__ = "overlap_releases"

    first_tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    second_tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    number: int = Field(primary_key=True)  # 1 … MAX_RELEASES
    overlap: int
    first_size: int
    second_size: int
    released_at: datetime = Field(sa_type=UTCDateTime)


@dataclass(frozen=True)
class OverlapAnswer:
    """The estimate one side is shown, with when it was measured and what is left of the budget."""

    estimate: OverlapEstimate
    as_of: datetime
    releases_left: int
    next_release_at: datetime | None  # None once the budget is spent


def _latest(session: Session, pair: tuple[str, str]) -> OverlapRelease | None:
    query = (
        select(OverlapRelease)
        .where(col(OverlapRelease.first_tenant_id) == pair[0], col(OverlapRelease.second_tenant_id) == pair[1])
        .order_by(col(OverlapRelease.number).desc())
        .limit(1)
    )
    return session.exec(query).first()


def _due(latest: OverlapRelease | None, now: datetime) -> bool:
    if latest is None:
        return True
    return latest.number < MAX_RELEASES and now - latest.released_at >= REFRESH


def overlap_for(
    session: Session,
    tenant_id: str,
    partnership_id: str,
    key: bytes,
    now: datetime,
    rng: random.Random | None = None,
) -> OverlapAnswer:
    """The estimate for an active partnership whose two sides both opted in: the pair's latest
    release, or a new one when it is due (`rng`: tests only; releases draw from the OS)."""
    mine = partnerships.get(session, tenant_id, partnership_id)
    if mine.state is not State.active:
        raise Conflict("Overlap is estimated for active partnerships only.", param="partnership_id")
    partner = mine.partner_tenant_id
    for side in (tenant_id, partner):
        profile = profiles.find_profile(session, side)
        if profile is None or not profile.overlap_opt_in:
            raise Conflict(
                "Both retailers must opt in to overlap estimates (overlap_opt_in in the profile).",
                param="overlap_opt_in",
            )
    # Per pair, not per partnership: ending and re-proposing must not buy fresh draws.
    pair = (min(tenant_id, partner), max(tenant_id, partner))
    latest = _latest(session, pair)
    if _due(latest, now):
        # Only customers who consented to overlap analysis with exactly this partner (or all partners) count.
        ours = consenting_email_hashes(session, tenant_id, Purpose.overlap_analysis, partner)
        theirs = consenting_email_hashes(session, partner, Purpose.overlap_analysis, tenant_id)
        mine_size, theirs_size, shared = true_overlap(key, partnership_id, ours, theirs)
        sizes = (mine_size, theirs_size) if pair[0] == tenant_id else (theirs_size, mine_size)
        measured = release(*sizes, shared, rng or random.SystemRandom())
        number = 1 if latest is None else latest.number + 1
        row = {
            "first_tenant_id": pair[0],
            "second_tenant_id": pair[1],
            "number": number,
            "overlap": measured.overlap,
            "first_size": measured.first_size,
            "second_size": measured.second_size,
            "released_at": now,
        }
        # Two reads may find a release due at once (either side, or two requests of one): the
        # first insert wins, the other does nothing and both answer what is stored.
        session.execute(_insert(session).values(row).on_conflict_do_nothing())
        latest = _latest(session, pair)
    assert latest is not None, "a release was inserted or already there"
    return _answer(latest, mine_first=pair[0] == tenant_id)


def _answer(stored: OverlapRelease, *, mine_first: bool) -> OverlapAnswer:
    measured = Release(stored.overlap, stored.first_size, stored.second_size)
    mine, theirs = (stored.first_size, stored.second_size) if mine_first else (stored.second_size, stored.first_size)
    left = MAX_RELEASES - stored.number
    return OverlapAnswer(
        estimate=shown_to(measured, mine=mine, theirs=theirs),
        as_of=stored.released_at,
        releases_left=left,
        next_release_at=stored.released_at + REFRESH if left > 0 else None,
    )


def _insert(session: Session) -> Any:
    table = OverlapRelease.__table__  # type: ignore[attr-defined]
    return upsert_insert(table, session.get_bind().dialect.name)

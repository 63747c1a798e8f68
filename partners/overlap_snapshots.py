"""Audience overlap between two partners, computed at most once a day and kept on both sides."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel

from partners import partnerships, profiles
from partners.consent_ledger import consenting_email_hashes
from partners.consent_rules import Purpose
from partners.db import UTCDateTime, utcnow
from partners.errors import Conflict
from partners.overlap import MINIMUM, OverlapEstimate, estimate
from partners.partnership_rules import State


class OverlapSnapshot(SQLModel, table=True):
    __tablename__ = "overlap_snapshots"

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    partnership_id: str = Field(primary_key=True, max_length=40)
    day: str = Field(primary_key=True, max_length=10)
    overlap: int | None = None
    share_of_mine: float | None = None
    share_of_theirs: float | None = None
    suppressed: bool
    computed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def _as_estimate(row: OverlapSnapshot) -> OverlapEstimate:
    return OverlapEstimate(row.overlap, row.share_of_mine, row.share_of_theirs, row.suppressed, MINIMUM)


def overlap_for(session: Session, tenant_id: str, partnership_id: str, key: bytes, today: date) -> OverlapEstimate:
    """Today's estimate for an active partnership whose two sides both opted in."""
    mine = partnerships.get(session, tenant_id, partnership_id)
    if mine.state is not State.active:
        raise Conflict("Overlap is estimated for active partnerships only.", param="partnership_id")
    for side in (tenant_id, mine.partner_tenant_id):
        profile = profiles.find_profile(session, side)
        if profile is None or not profile.overlap_opt_in:
            raise Conflict(
                "Both retailers must opt in to overlap estimates (overlap_opt_in in the profile).",
                param="overlap_opt_in",
            )
    snapshot_key = (tenant_id, partnership_id, today.isoformat())
    stored = session.get(OverlapSnapshot, snapshot_key)
    if stored is not None:
        return _as_estimate(stored)
    partner = mine.partner_tenant_id
    # Only customers who consented to overlap analysis with exactly this partner (or all partners) count.
    ours = consenting_email_hashes(session, tenant_id, Purpose.overlap_analysis, partner)
    theirs = consenting_email_hashes(session, partner, Purpose.overlap_analysis, tenant_id)
    result = estimate(key, (tenant_id, partner), partnership_id, ours, theirs)
    rows = [
        {
            "tenant_id": side,
            "partnership_id": partnership_id,
            "day": today.isoformat(),
            "overlap": result.overlap,
            "share_of_mine": share_mine,
            "share_of_theirs": share_theirs,
            "suppressed": result.suppressed,
            "computed_at": utcnow(),
        }
        for side, share_mine, share_theirs in (
            (tenant_id, result.share_of_mine, result.share_of_theirs),
            (partner, result.share_of_theirs, result.share_of_mine),
        )
    ]
    # Two first reads of the day may race (either side, or two requests of one): the first
    # insert wins, the other does nothing and both answer what is stored.
    session.execute(_insert(session).values(rows).on_conflict_do_nothing())
    stored = session.get(OverlapSnapshot, snapshot_key, populate_existing=True)
    assert stored is not None, "the snapshot was inserted or already there"
    return _as_estimate(stored)


def _insert(session: Session) -> Any:
    table = OverlapSnapshot.__table__  # type: ignore[attr-defined]
    return (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(table)

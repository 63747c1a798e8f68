"""Audience overlap between two partners, computed at most once a day and kept on both sides."""

from __future__ import annotations

import random
from datetime import date, datetime

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
    stored = session.get(OverlapSnapshot, (tenant_id, partnership_id, today.isoformat()))
    if stored is not None:
        return _as_estimate(stored)
    partner = mine.partner_tenant_id
    # Only customers who consented to overlap analysis with exactly this partner (or all partners) count.
    ours = consenting_email_hashes(session, tenant_id, Purpose.overlap_analysis, partner)
    theirs = consenting_email_hashes(session, partner, Purpose.overlap_analysis, tenant_id)
    result = estimate(key, partnership_id, ours, theirs, random.SystemRandom())
    for side, share_mine, share_theirs in (
        (tenant_id, result.share_of_mine, result.share_of_theirs),
        (partner, result.share_of_theirs, result.share_of_mine),
    ):
        session.add(
            OverlapSnapshot(
                tenant_id=side,
                partnership_id=partnership_id,
                day=today.isoformat(),
                overlap=result.overlap,
                share_of_mine=share_mine,
                share_of_theirs=share_theirs,
                suppressed=result.suppressed,
            )
        )
    session.flush()
    return result

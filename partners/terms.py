"""Partnership terms: versioned, identical on both sides, validated before anyone can accept them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, ForeignKeyConstraint, Text
from sqlmodel import Field, Session, SQLModel, col, select

from partners.db import UTCDateTime, utcnow
from partners.errors import Invalid, NotFound
from partners.taxonomy import load_taxonomy

MAX_CAP_7_DAYS = 50
MAX_CAP_30_DAYS = 200
MAX_ATTRIBUTION_DAYS = 90


class PartnershipTerms(SQLModel, table=True):
    """One version of the terms, stored once per side (each tenant reads its own copy)."""

    __tablename__ = "partnership_terms"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "partnership_id"], ["partnerships.tenant_id", "partnerships.id"], ondelete="CASCADE"
        ),
    )

    tenant_id: str = Field(primary_key=True, max_length=40)
    partnership_id: str = Field(primary_key=True, max_length=40)
    version: int = Field(primary_key=True)
    proposed_by: str = Field(max_length=40)
    # Categories each side's offers may be in, keyed by the offering tenant's id.
    offer_categories: dict[str, list[str]] = Field(sa_type=JSON)
    cap_per_7_days: int
    cap_per_30_days: int
    commission_bps: int
    attribution_window_days: int
    reciprocity_target: float
    contact_sharing: bool
    agreement_text: str = Field(sa_type=Text)
    agreement_sha256: str = Field(max_length=64)
    proposed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


@dataclass(frozen=True)
class TermsInput:
    """Terms as one side writes them: 'mine' and 'partner's' are from the writer's point of view."""

    my_offer_categories: list[str]
    partner_offer_categories: list[str]
    cap_per_7_days: int
    cap_per_30_days: int
    commission_percent: float
    attribution_window_days: int
    reciprocity_target: float
    contact_sharing: bool
    agreement_text: str


def agreement_digest(text: str) -> str:
    """The version of a data-sharing agreement text that both sides accept."""
    return hashlib.sha256(text.encode()).hexdigest()


def validate(terms: TermsInput) -> None:
    """Invalid, naming the field, for terms out of range."""
    tree = load_taxonomy()
    for param, categories in (
        ("my_offer_categories", terms.my_offer_categories),
        ("partner_offer_categories", terms.partner_offer_categories),
    ):
        if not categories:
            raise Invalid("Allow at least one category (a top-level one allows all below it).", param=param)
        tree.validate_ids(categories, param=param)
    if not 0 <= terms.cap_per_7_days <= MAX_CAP_7_DAYS:
        raise Invalid(f"The 7-day cap must be between 0 and {MAX_CAP_7_DAYS}.", param="cap_per_7_days")
    if not terms.cap_per_7_days <= terms.cap_per_30_days <= MAX_CAP_30_DAYS:
        raise Invalid(
            f"The 30-day cap must be at least the 7-day cap and at most {MAX_CAP_30_DAYS}.", param="cap_per_30_days"
        )
    if not 0 <= terms.commission_percent <= 100:
        raise Invalid("Commission is a percentage between 0 and 100.", param="commission_percent")
    if not 1 <= terms.attribution_window_days <= MAX_ATTRIBUTION_DAYS:
        raise Invalid(f"The attribution window is 1 to {MAX_ATTRIBUTION_DAYS} days.", param="attribution_window_days")
    if not 0.1 <= terms.reciprocity_target <= 10:
        raise Invalid("The reciprocity target is a ratio between 0.1 and 10.", param="reciprocity_target")
    if not terms.agreement_text.strip():
        raise Invalid("Both sides must accept a data-sharing agreement text.", param="agreement_text")


def store_version(
    session: Session, tenants: tuple[str, str], partnership_id: str, version: int, author: str, terms: TermsInput
) -> None:
    """Write version `version` of the terms on both sides; `author` is the proposing tenant."""
    other = tenants[1] if author == tenants[0] else tenants[0]
    for side in tenants:
        session.add(
            PartnershipTerms(
                tenant_id=side,
                partnership_id=partnership_id,
                version=version,
                proposed_by=author,
                offer_categories={
                    author: sorted(set(terms.my_offer_categories)),
                    other: sorted(set(terms.partner_offer_categories)),
                },
                cap_per_7_days=terms.cap_per_7_days,
                cap_per_30_days=terms.cap_per_30_days,
                commission_bps=round(terms.commission_percent * 100),
                attribution_window_days=terms.attribution_window_days,
                reciprocity_target=terms.reciprocity_target,
                contact_sharing=terms.contact_sharing,
                agreement_text=terms.agreement_text,
                agreement_sha256=agreement_digest(terms.agreement_text),
            )
        )
    session.flush()


def mark_accepted(session: Session, tenants: tuple[str, str], partnership_id: str, version: int) -> None:
    """Record on both sides when a version was accepted."""
    now = utcnow()
    for side in tenants:
        row = session.get(PartnershipTerms, (side, partnership_id, version))
        if row is not None:
            row.accepted_at = now
            session.add(row)


def get_version(session: Session, tenant_id: str, partnership_id: str, version: int) -> PartnershipTerms:
    """One version of the terms, from the tenant's own copy."""
    row = session.get(PartnershipTerms, (tenant_id, partnership_id, version))
    if row is None:
        raise NotFound(f"No version {version} of these terms.", param="version")
    return row


def all_versions(session: Session, tenant_id: str, partnership_id: str) -> list[PartnershipTerms]:
    """Every version, oldest first (old versions stay readable)."""
    query = (
        select(PartnershipTerms)
        .where(col(PartnershipTerms.tenant_id) == tenant_id, col(PartnershipTerms.partnership_id) == partnership_id)
        .order_by(col(PartnershipTerms.version))
    )
    return list(session.exec(query).all())

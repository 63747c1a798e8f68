"""Offers owned by the offering tenant, with versioned content.

A draft is edited in place; once published, a change of content is a new version that each
hosting partner approves again (see `partners.placements`), while the approved one keeps serving.
Budgets and code settings belong to the offer, not to a version: hosts do not approve them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKeyConstraint, Integer, UniqueConstraint, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Field, Session, SQLModel, col

from partners import changes
from partners import offer_rules as rules
from partners.db import UTCDateTime, get_owned, keyset_page, owned, utcnow
from partners.errors import Conflict, Invalid, NotFound
from partners.ids import new_id
from partners.offer_rules import Budget, CodeMode, OfferAction, OfferContent, OfferState, Targeting
from partners.taxonomy import load_taxonomy

_REVISION = Column("revision", Integer, nullable=False, default=1)


class Offer(SQLModel, table=True):
    __tablename__ = "offers"
    __table_args__ = (UniqueConstraint("tenant_id", "external_id", name="uq_offers_external_id"),)
    # Optimistic concurrency on top of row locks (SQLite has no FOR UPDATE).
    __mapper_args__ = {"version_id_col": _REVISION}

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(default_factory=lambda: new_id("off"), primary_key=True, max_length=40)
    revision: int = Field(default=1, sa_column=_REVISION)
    external_id: str | None = Field(default=None, max_length=128)
    state: str = Field(default=OfferState.draft, max_length=20)
    latest_version: int = 1
    code_mode: str = Field(default=CodeMode.none, max_length=10)
    shared_code: str | None = Field(default=None, max_length=40)
    budget_redemptions: int | None = Field(default=None, sa_type=BigInteger)
    budget_value: int | None = Field(default=None, sa_type=BigInteger)
    used_redemptions: int = Field(default=0, sa_type=BigInteger)
    used_value: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OfferVersion(SQLModel, table=True):
    """One version of an offer's content; never changed once the offer is published."""

    __tablename__ = "offer_versions"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "offer_id"], ["offers.tenant_id", "offers.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "id", name="uq_offer_versions_id"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40)
    offer_id: str = Field(primary_key=True, max_length=40)
    version: int = Field(primary_key=True)
    id: str = Field(default_factory=lambda: new_id("ofv"), max_length=40)
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    landing_url: str = Field(max_length=2000)
    kind: str = Field(max_length=20)
    currency: str = Field(max_length=3)
    percent_off_bps: int | None = None
    amount_off: int | None = Field(default=None, sa_type=BigInteger)
    friend_amount_off: int | None = Field(default=None, sa_type=BigInteger)
    minimum_order: int | None = Field(default=None, sa_type=BigInteger)
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    public_sale_starts_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    categories: list[str] = Field(default_factory=list, sa_type=JSON)
    price_min: int | None = Field(default=None, sa_type=BigInteger)
    price_max: int | None = Field(default=None, sa_type=BigInteger)
    customer_type: str = Field(default="any", max_length=10)
    min_lifetime_value: int | None = Field(default=None, sa_type=BigInteger)
    regions: list[str] = Field(default_factory=list, sa_type=JSON)
    risk_levels: list[str] = Field(default_factory=list, sa_type=JSON)
    lifetime_value_bands: list[str] = Field(default_factory=list, sa_type=JSON)
    created_by: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


@dataclass(frozen=True)
class OfferSettings:
    """What the offering tenant alone decides, without the hosts' approval."""

    budget: Budget = field(default_factory=Budget)
    code_mode: CodeMode = CodeMode.none
    shared_code: str | None = None


def content_of(row: OfferVersion) -> OfferContent:
    """The content stored in a version row."""
    return OfferContent(
        title=row.title,
        description=row.description,
        landing_url=row.landing_url,
        kind=rules.OfferKind(row.kind),
        currency=row.currency,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        percent_off=None if row.percent_off_bps is None else row.percent_off_bps / 100,
        amount_off=row.amount_off,
        friend_amount_off=row.friend_amount_off,
        minimum_order=row.minimum_order,
        public_sale_starts_at=row.public_sale_starts_at,
        targeting=Targeting(
            categories=tuple(row.categories),
            price_min=row.price_min,
            price_max=row.price_max,
            customer_type=rules.CustomerType(row.customer_type),
            min_lifetime_value=row.min_lifetime_value,
            regions=tuple(row.regions),
            risk_levels=tuple(row.risk_levels or ()),
            lifetime_value_bands=tuple(row.lifetime_value_bands or ()),
        ),
    )


def _version_values(content: OfferContent) -> dict[str, Any]:
    targeting = content.targeting
    return {
        "title": content.title.strip(),
        "description": content.description,
        "landing_url": content.landing_url,
        "kind": str(content.kind),
        "currency": content.currency,
        "percent_off_bps": None if content.percent_off is None else round(content.percent_off * 100),
        "amount_off": content.amount_off,
        "friend_amount_off": content.friend_amount_off,
        "minimum_order": content.minimum_order,
        "starts_at": content.starts_at,
        "ends_at": content.ends_at,
        "public_sale_starts_at": content.public_sale_starts_at,
        "categories": sorted(set(targeting.categories)),
        "price_min": targeting.price_min,
        "price_max": targeting.price_max,
        "customer_type": str(targeting.customer_type),
        "min_lifetime_value": targeting.min_lifetime_value,
        "regions": sorted(set(targeting.regions)),
        "risk_levels": sorted(set(targeting.risk_levels)),
        "lifetime_value_bands": sorted(set(targeting.lifetime_value_bands)),
    }


def _checked(content: OfferContent, settings: OfferSettings) -> tuple[dict[str, Any], str | None]:
    rules.validate_content(content, load_taxonomy())
    rules.validate_budget(settings.budget)
    return _version_values(content), rules.check_code_settings(settings.code_mode, settings.shared_code)


def flush(session: Session) -> None:
    """Flush, turning a lost race with another writer into a Conflict."""
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict("The offer changed while you edited it; read it again.", param="id") from exc


def create(
    session: Session,
    tenant_id: str,
    actor_id: str,
    content: OfferContent,
    settings: OfferSettings,
    external_id: str | None = None,
) -> Offer:
    """A new draft offer (version 1)."""
    values, shared_code = _checked(content, settings)
    offer = Offer(tenant_id=tenant_id, external_id=external_id)
    _set_settings(offer, settings, shared_code)
    session.add(offer)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"An offer with external id '{external_id}' already exists.", param="external_id") from exc
    session.add(OfferVersion(tenant_id=tenant_id, offer_id=offer.id, version=1, created_by=actor_id, **values))
    session.flush()
    changes.touch(session, tenant_id, changes.Feed.offers, offer.id)
    return offer


def _set_settings(offer: Offer, settings: OfferSettings, shared_code: str | None) -> bool:
    values = {
        "budget_redemptions": settings.budget.redemptions,
        "budget_value": settings.budget.value,
        "code_mode": str(settings.code_mode),
        "shared_code": shared_code,
    }
    changed = any(getattr(offer, name) != value for name, value in values.items())
    for name, value in values.items():
        setattr(offer, name, value)
    return changed


def settings_of(offer: Offer) -> OfferSettings:
    """The offer's budget and code settings."""
    return OfferSettings(
        Budget(offer.budget_redemptions, offer.budget_value), CodeMode(offer.code_mode), offer.shared_code
    )


def revise(
    session: Session, offer: Offer, actor_id: str, content: OfferContent, settings: OfferSettings
) -> tuple[bool, bool]:
    """Apply new content and settings: (whether a new version was made, whether anything changed).

    A draft changes in place. A published offer gets version n+1 when its content changed; the
    caller then submits it to the offer's partnerships.
    """
    state = OfferState(offer.state)
    rules.move(state, OfferAction.edit)
    values, shared_code = _checked(content, settings)
    if settings.code_mode != offer.code_mode and state is not OfferState.draft:
        raise Invalid("The code mode cannot change once an offer is published.", param="codes.mode")
    latest = latest_version(session, offer)
    content_changed = _version_values(content_of(latest)) != values
    if content_changed and state is not OfferState.draft and content.currency != latest.currency:
        raise Invalid("The currency cannot change once an offer is published; create a new offer.", param="currency")
    new_version = content_changed and state is not OfferState.draft
    if new_version:
        offer.latest_version += 1
        session.add(
            OfferVersion(
                tenant_id=offer.tenant_id,
                offer_id=offer.id,
                version=offer.latest_version,
                created_by=actor_id,
                **values,
            )
        )
    elif content_changed:
        for name, value in values.items():
            setattr(latest, name, value)
        session.add(latest)
    settings_changed = _set_settings(offer, settings, shared_code)
    if content_changed or settings_changed:
        offer.updated_at = utcnow()
        session.add(offer)
        flush(session)
        changes.touch(session, offer.tenant_id, changes.Feed.offers, offer.id)
    return new_version, content_changed or settings_changed


def change_state(session: Session, offer: Offer, action: OfferAction) -> OfferState:
    """Move the offer along its lifecycle (Conflict when not allowed now)."""
    after = rules.move(OfferState(offer.state), action)
    if after != offer.state:
        offer.state = after
        offer.updated_at = utcnow()
        session.add(offer)
        flush(session)
        changes.touch(session, offer.tenant_id, changes.Feed.offers, offer.id)
    return after


def get(session: Session, tenant_id: str, offer_id: str, *, for_update: bool = False) -> Offer:
    """The tenant's offer (NotFound for another tenant's), optionally locked."""
    if not for_update:
        return get_owned(session, Offer, tenant_id, offer_id)
    query = owned(Offer, tenant_id).where(col(Offer.id) == offer_id).with_for_update()
    found = session.exec(query.execution_options(populate_existing=True)).first()
    if found is None:
        raise NotFound(f"No offer with id '{offer_id}'.", param="id")
    return found


def find_by_external_id(
    session: Session, tenant_id: str, external_id: str, *, for_update: bool = False
) -> Offer | None:
    """The tenant's offer with this external id, if any."""
    query = owned(Offer, tenant_id).where(col(Offer.external_id) == external_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.exec(query).first()


def list_for(
    session: Session,
    tenant_id: str,
    *,
    state: OfferState | None = None,
    external_id: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> tuple[Sequence[Offer], bool]:
    """The tenant's offers, a page at a time, optionally filtered."""
    query = owned(Offer, tenant_id)
    if state is not None:
        query = query.where(col(Offer.state) == state)
    if external_id is not None:
        query = query.where(col(Offer.external_id) == external_id)
    return keyset_page(session, query, Offer, after, limit)


def get_version(session: Session, tenant_id: str, offer_id: str, version: int) -> OfferVersion:
    """One version of the tenant's offer."""
    row = session.get(OfferVersion, (tenant_id, offer_id, version))
    if row is None:
        raise NotFound(f"No version {version} of offer '{offer_id}'.", param="version")
    return row


def latest_version(session: Session, offer: Offer) -> OfferVersion:
    """The newest version of the offer's content."""
    return get_version(session, offer.tenant_id, offer.id, offer.latest_version)


def budget_left(offer: Offer) -> tuple[int | None, int | None]:
    """Redemptions and value left of the budget (None: unlimited)."""
    return rules.budget_left(settings_of(offer).budget, offer.used_redemptions, offer.used_value)


def use_budget(session: Session, tenant_id: str, offer_id: str, *, redemptions: int, value: int) -> Offer:
    """Count a redemption against the budget, atomically (concurrent redemptions never lose counts)."""
    if redemptions < 0 or value < 0:
        raise Invalid("Budget use cannot be negative.", param="value")
    table = Offer.__table__  # type: ignore[attr-defined]
    statement = (
        update(table)
        .where(table.c.tenant_id == tenant_id, table.c.id == offer_id)
        .values(
            used_redemptions=table.c.used_redemptions + redemptions,
            used_value=table.c.used_value + value,
            revision=table.c.revision + 1,
        )
    )
    if session.execute(statement).rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"No offer with id '{offer_id}'.", param="offer_id")
    changes.touch(session, tenant_id, changes.Feed.offers, offer_id)
    return get(session, tenant_id, offer_id, for_update=True)

"""Privacy notices: what the customer was shown when they consented, kept as immutable versions.

A notice has a key (such as `checkout-partner-offers`) and a language; publishing it again
makes the next version. A version names its purposes and either a list of partners or
"all active partners". Consent grants cite the exact version (`ntc_…`) the customer saw.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, Text, UniqueConstraint, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from partners.consent_rules import ALL_PARTNERS, NAMED_PARTNER_ONLY, Purpose
from partners.customers import check_time
from partners.db import UTCDateTime, get_owned, keyset_page, owned, utcnow
from partners.errors import Conflict, Invalid
from partners.ids import new_id

MAX_TEXT = 20_000
MAX_PARTNERS = 200
_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")  # BCP 47, loosely

IsActivePartner = Callable[[Session, str, str], bool]


class ConsentNotice(SQLModel, table=True):
    __tablename__ = "consent_notices"
    __table_args__ = (UniqueConstraint("tenant_id", "key", "language", "version", name="uq_consent_notices_version"),)

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(default_factory=lambda: new_id("ntc"), primary_key=True, max_length=40)
    key: str = Field(max_length=100)
    language: str = Field(max_length=35)
    version: int
    text: str = Field(sa_type=Text)
    purposes: list[str] = Field(default_factory=list, sa_type=JSON)
    # Named partner tenant ids, or ["all"] for all active partners.
    partners: list[str] = Field(default_factory=list, sa_type=JSON)
    published_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def all_partners(self) -> bool:
        return self.partners == [ALL_PARTNERS]

    def covers(self, purpose: str, partner: str) -> bool:
        """Whether a consent for this purpose and partner (or "all") may cite this notice."""
        if purpose not in self.purposes:
            return False
        if purpose in NAMED_PARTNER_ONLY:
            return partner in self.partners
        return self.all_partners or partner in self.partners


@dataclass(frozen=True)
class NoticeInput:
    key: str
    language: str
    text: str
    purposes: tuple[Purpose, ...]
    partners: tuple[str, ...] | None  # None: all active partners
    published_at: datetime | None = None


def _check(notice: NoticeInput, now: datetime) -> None:
    if not _KEY.match(notice.key):
        raise Invalid("key must be 1–100 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit.", param="key")
    if not _LANGUAGE.match(notice.language):
        raise Invalid("language must be a language tag such as en or de-CH.", param="language")
    if not notice.text.strip() or len(notice.text) > MAX_TEXT:
        raise Invalid(f"text must hold the notice as shown, 1–{MAX_TEXT} characters.", param="text")
    if not notice.purposes or len(set(notice.purposes)) != len(notice.purposes):
        raise Invalid("purposes must list each purpose the notice asks for, once.", param="purposes")
    if notice.partners is not None and not 1 <= len(notice.partners) <= MAX_PARTNERS:
        raise Invalid(f'Name 1–{MAX_PARTNERS} partners, or "all" for all active partners.', param="partners")
    if notice.published_at is not None:
        check_time(notice.published_at, now, "published_at")


def create_notice(
    session: Session,
    tenant_id: str,
    notice: NoticeInput,
    *,
    is_active_partner: IsActivePartner,
    now: datetime | None = None,
) -> ConsentNotice:
    """Publish the next version of a notice; named partners must be active partners."""
    now = now or utcnow()
    _check(notice, now)
    if notice.partners is None and set(notice.purposes) == {Purpose.partner_contact_sharing}:
        raise Invalid(
            "Contact sharing needs named partners: the customer must see who receives them.", param="partners"
        )
    for index, partner in enumerate(notice.partners or ()):
        if partner == tenant_id or not is_active_partner(session, tenant_id, partner):
            raise Invalid(f"'{partner}' is not an active partner of yours.", param=f"partners.{index}")
    latest = session.exec(
        select(func.max(ConsentNotice.version)).where(
            col(ConsentNotice.tenant_id) == tenant_id,
            col(ConsentNotice.key) == notice.key,
            col(ConsentNotice.language) == notice.language,
        )
    ).one()
    row = ConsentNotice(
        tenant_id=tenant_id,
        key=notice.key,
        language=notice.language,
        version=(latest or 0) + 1,
        text=notice.text,
        purposes=[str(p) for p in notice.purposes],
        partners=sorted(dict.fromkeys(notice.partners)) if notice.partners is not None else [ALL_PARTNERS],
        published_at=(notice.published_at or now),
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise Conflict("Another version of this notice was published at the same time; retry.", param="key") from exc
    return row


def get_notice(session: Session, tenant_id: str, notice_id: str) -> ConsentNotice:
    """One of the tenant's notice versions."""
    return get_owned(session, ConsentNotice, tenant_id, notice_id)


def list_notices(
    session: Session, tenant_id: str, after: str | None, limit: int, key: str | None = None
) -> tuple[Sequence[ConsentNotice], bool]:
    """The tenant's notice versions, oldest first, optionally of one key."""
    query = owned(ConsentNotice, tenant_id)
    if key is not None:
        query = query.where(col(ConsentNotice.key) == key)
    return keyset_page(session, query, ConsentNotice, after, limit)


def notices_by_id(session: Session, tenant_id: str, notice_ids: Sequence[str]) -> dict[str, ConsentNotice]:
    """Several notice versions at once."""
    if not notice_ids:
        return {}
    query = owned(ConsentNotice, tenant_id).where(col(ConsentNotice.id).in_(notice_ids))
    return {notice.id: notice for notice in session.exec(query)}

"""Retailer staff accounts: sign-up of an organization and its owner, invitations, passwords."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from partners.crypto import INVITATION_PREFIX, hash_secret, new_secret
from partners.db import UTCDateTime, get_owned, keyset_page, owned, utcnow
from partners.errors import Conflict, Forbidden, Invalid, NotFound
from partners.ids import new_id
from partners.retailers import Tenant, create_tenant
from partners.scopes import Role

INVITATION_TTL = timedelta(days=7)
MIN_PASSWORD_LENGTH = 12

# argon2id with the library's defaults (RFC 9106 low-memory profile).
_hasher = PasswordHasher()
# Verifying against this keeps the time of a login for an unknown email like a known one.
_DUMMY_HASH = _hasher.hash("partnerloop-timing-equaliser")


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_users"
    # Emails are unique across the platform: a person logs in without naming their organization.
    __table_args__ = (UniqueConstraint("email", name="uq_staff_users_email"),)

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(default_factory=lambda: new_id("usr"), primary_key=True, max_length=40, unique=True)
    email: str = Field(max_length=254)
    role: Role = Field(max_length=20)
    password_hash: str = Field(max_length=200)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StaffInvitation(SQLModel, table=True):
    __tablename__ = "staff_invitations"

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(default_factory=lambda: new_id("inv"), primary_key=True, max_length=40)
    email: str = Field(max_length=254)
    role: Role = Field(max_length=20)
    token_hash: str = Field(max_length=64, unique=True)
    invited_by: str = Field(max_length=40)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def normalize_login_email(email: str) -> str:
    """Staff emails compare case-insensitively and without surrounding spaces."""
    cleaned = email.strip().lower()
    local, at, domain = cleaned.partition("@")
    if not at or not local or "." not in domain or " " in cleaned or len(cleaned) > 254:
        raise Invalid(f"'{email}' is not an email address.", param="email")
    return cleaned


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"The password needs at least {MIN_PASSWORD_LENGTH} characters.", param="password")


def _ensure_email_free(session: Session, email: str) -> None:
    if session.exec(select(StaffUser.id).where(col(StaffUser.email) == email)).first() is not None:
        raise _email_taken()


def _email_taken() -> Conflict:
    return Conflict("An account with this email exists already; log in instead.", param="email")


def _flush_new_account(session: Session) -> None:
    # Two requests for one email can both pass the check above; the unique constraint decides.
    try:
        session.flush()
    except IntegrityError as exc:
        raise _email_taken() from exc


@dataclass(frozen=True)
class SignUp:
    tenant: Tenant
    owner: StaffUser


def sign_up(session: Session, organization: str, email: str, password: str) -> SignUp:
    """A new organization (the tenant) with its owner account."""
    email = normalize_login_email(email)
    _check_password(password)
    _ensure_email_free(session, email)
    tenant = create_tenant(session, organization)
    owner = StaffUser(tenant_id=tenant.id, email=email, role=Role.owner, password_hash=_hasher.hash(password))
    session.add(owner)
    _flush_new_account(session)
    return SignUp(tenant, owner)


def authenticate(session: Session, email: str, password: str) -> StaffUser | None:
    """The active account with these credentials, or None; costs the same whether the email exists."""
    try:
        email = normalize_login_email(email)
    except Invalid:
        email = ""
    user = session.exec(select(StaffUser).where(col(StaffUser.email) == email)).first() if email else None
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        session.add(user)
    return user


def get_user(session: Session, tenant_id: str, user_id: str) -> StaffUser:
    """One staff account of the tenant."""
    return get_owned(session, StaffUser, tenant_id, user_id)


def find_active_user(session: Session, user_id: str) -> StaffUser | None:
    """The active account with this id, whatever its tenant (for tokens that name it)."""
    user = session.exec(select(StaffUser).where(col(StaffUser.id) == user_id)).first()
    return user if user is not None and user.active else None


def list_staff(session: Session, tenant_id: str, after: str | None, limit: int) -> tuple[Sequence[StaffUser], bool]:
    """The tenant's staff, a page at a time."""
    return keyset_page(session, owned(StaffUser, tenant_id), StaffUser, after, limit)


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: StaffInvitation
    token: str


def invite(session: Session, tenant_id: str, invited_by: str, email: str, role: Role) -> IssuedInvitation:
    """An invitation for `email` to join as `role`; the token is shown once."""
    email = normalize_login_email(email)
    if role is Role.owner:
        raise Invalid("An organization has one owner; invite as admin, marketer or viewer.", param="role")
    _ensure_email_free(session, email)
    token = new_secret(INVITATION_PREFIX)
    invitation = StaffInvitation(
        tenant_id=tenant_id,
        email=email,
        role=role,
        token_hash=hash_secret(token),
        invited_by=invited_by,
        expires_at=utcnow() + INVITATION_TTL,
    )
    session.add(invitation)
    session.flush()
    return IssuedInvitation(invitation, token)


def accept_invitation(session: Session, token: str, password: str) -> StaffUser:
    """Turn a valid invitation into an account with this password."""
    invitation = session.exec(
        select(StaffInvitation).where(col(StaffInvitation.token_hash) == hash_secret(token)).with_for_update()
    ).first()
    if invitation is None or invitation.accepted_at is not None or invitation.expires_at <= utcnow():
        raise NotFound("This invitation does not exist, was used, or has expired; ask for a new one.", param="token")
    _check_password(password)
    _ensure_email_free(session, invitation.email)
    invitation.accepted_at = utcnow()
    user = StaffUser(
        tenant_id=invitation.tenant_id,
        email=invitation.email,
        role=invitation.role,
        password_hash=_hasher.hash(password),
    )
    session.add_all([invitation, user])
    _flush_new_account(session)
    return user


def change_role(
    session: Session, tenant_id: str, actor_id: str, user_id: str, role: Role, active: bool | None
) -> StaffUser:
    """Change a staff member's role or deactivate them; the owner stays owner."""
    user = get_user(session, tenant_id, user_id)
    if user.role is Role.owner or user.id == actor_id:
        raise Forbidden("The owner's account and your own role cannot be changed here.", param="user_id")
    if role is Role.owner:
        raise Invalid("An organization has one owner.", param="role")
    user.role = role
    if active is not None:
        user.active = active
    session.add(user)
    session.flush()
    return user

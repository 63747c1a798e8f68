"""Failed-login throttling, kept in the database so every API replica sees the same counts."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Field, Session, SQLModel, col, select

from partners.db import UTCDateTime, utcnow
from partners.errors import RateLimited

WINDOW = timedelta(minutes=15)
# Failures allowed per window: per account (guessing one password) and per address (spraying many).
PER_EMAIL = 5
PER_ADDRESS = 30


class LoginFailure(SQLModel, table=True):
    __tablename__ = "login_failures"

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(max_length=300, index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


def _subjects(email: str, address: str) -> list[tuple[str, int]]:
    return [(f"email:{email.strip().lower()}", PER_EMAIL), (f"addr:{address}", PER_ADDRESS)]


def check(session: Session, email: str, address: str) -> None:
    """RateLimited while this account or address has failed too often recently."""
    since = utcnow() - WINDOW
    for subject, allowed in _subjects(email, address):
        count, oldest = session.exec(
            select(func.count(), func.min(LoginFailure.at)).where(
                col(LoginFailure.subject) == subject, col(LoginFailure.at) > since
            )
        ).one()
        if count >= allowed and oldest is not None:
            retry_after = max(1, int((oldest + WINDOW - utcnow()).total_seconds()))
            raise RateLimited("Too many failed logins; wait before trying again.", retry_after=retry_after)


def record_failure(session: Session, email: str, address: str) -> None:
    """Count one failed login against the account and the address."""
    session.add_all([LoginFailure(subject=subject) for subject, _ in _subjects(email, address)])
    session.flush()


def clear(session: Session, email: str) -> None:
    """A successful login forgets the account's failures."""
    session.exec(delete(LoginFailure).where(col(LoginFailure.subject) == _subjects(email, "")[0][0]))


def purge(session: Session, now: datetime) -> int:
    """Drop failures older than the window."""
    result = session.exec(delete(LoginFailure).where(col(LoginFailure.at) <= now - WINDOW))
    return int(result.rowcount or 0)

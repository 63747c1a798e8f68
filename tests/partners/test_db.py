from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlmodel import Session, select

from partners.db import keyset_page
from partners.retailers import Tenant


def test_times_come_back_aware_in_utc(session: Session, make_tenant: Callable[..., Tenant]) -> None:
    tenant = make_tenant()
    tenant.created_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    session.add(tenant)
    session.commit()
    session.expire_all()
    stored = session.get(Tenant, tenant.id)
    assert stored is not None
    assert stored.created_at == datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert stored.created_at.tzinfo is not None


def test_naive_times_are_refused(session: Session) -> None:
    session.add(Tenant(name="naive", created_at=datetime(2026, 1, 1)))
    with pytest.raises(Exception, match="naive"):
        session.commit()
    session.rollback()


def test_keyset_pages_cover_every_row_once(session: Session, make_tenant: Callable[..., Tenant]) -> None:
    ids = [make_tenant().id for _ in range(7)]
    seen: list[str] = []
    after = None
    while True:
        rows, more = keyset_page(session, select(Tenant), Tenant, after, 3)
        seen += [r.id for r in rows]
        if not more:
            break
        after = rows[-1].id
    assert seen == sorted(ids)

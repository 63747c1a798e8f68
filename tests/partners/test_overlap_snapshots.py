"""The day's overlap snapshot: two first reads racing store one answer and both return it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from partners.customers import Customer
from partners.db import unit_of_work
from partners.notices import ConsentNotice
from partners.overlap import OverlapEstimate
from partners.overlap_snapshots import OverlapSnapshot, overlap_for
from partners.partnerships import Partnership
from partners.retailers import Tenant
from tests.api.test_overlap_api import _audience
from tests.factories_partners import CARE_CATEGORIES

KEY = b"o" * 32
DAY = date(2026, 12, 2)


def test_two_first_reads_of_the_day_store_one_snapshot_and_agree(
    engine: Engine,
    session: Session,
    make_profile: Callable[..., Tenant],
    make_partnership: Callable[..., Partnership],
    make_customer: Callable[..., Customer],
    make_notice: Callable[..., ConsentNotice],
) -> None:
    beds = make_profile(display_name="Beds", overlap_opt_in=True)
    care = make_profile(display_name="Care", categories=CARE_CATEGORIES, overlap_opt_in=True)
    ptn = make_partnership(proposer=beds, partner=care)
    _audience(session, make_customer, make_notice(beds), beds, range(0, 120))
    _audience(session, make_customer, make_notice(care), care, range(20, 160))
    answers: dict[str, OverlapEstimate] = {}
    errors: list[BaseException] = []

    def second_reader() -> None:
        try:
            with unit_of_work(engine) as other:
                answers["care"] = overlap_for(other, care.id, ptn.id, KEY, DAY)
        except BaseException as exc:
            errors.append(exc)

    # The first reader has inserted today's rows but not committed when the second one, which
    # cannot see them yet, computes and inserts the same keys: it must wait, then read the winner's.
    with unit_of_work(engine) as first:
        answers["beds"] = overlap_for(first, beds.id, ptn.id, KEY, DAY)
        thread = threading.Thread(target=second_reader)
        thread.start()
        time.sleep(0.5)
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert errors == []
    assert answers["beds"].overlap == answers["care"].overlap is not None
    assert answers["beds"].share_of_mine == answers["care"].share_of_theirs
    stored = session.exec(
        select(func.count()).select_from(OverlapSnapshot).where(col(OverlapSnapshot.partnership_id) == ptn.id)
    ).one()
    assert stored == 2, "one row per side"

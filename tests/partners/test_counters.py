"""Migration 0012 fills the counters from what was recorded before them."""

from collections.abc import Callable

from alembic import command
from sqlalchemy import Engine
from sqlmodel import Session

from partners import counters, redemptions
from partners.db import utcnow
from partners.migrate import alembic_config
from tests.factories_redemptions import ShownOffer


def test_the_migration_counts_history(
    session: Session, engine: Engine, database_url: str, shown_offer: Callable[..., ShownOffer]
) -> None:
    shown = shown_offer()
    data = redemptions.RedemptionInput("order-1", 5_000, "GBP", code=shown.code)
    redemptions.record(session, shown.offering.id, data, now=utcnow())
    session.commit()
    offer_id = shown.story.offer.id
    before = (
        counters.offer_counts(session, shown.offering.id, offer_id),
        counters.given_by_month(session, shown.host.id, shown.partnership_id),
    )
    assert before == ((1, 1), {counters.month_of(utcnow()): 1})
    session.close()
    engine.dispose()  # let the migration take its locks

    config = alembic_config(database_url)
    command.downgrade(config, "0010")
    command.upgrade(config, "head")

    with Session(engine) as fresh:
        after = (
            counters.offer_counts(fresh, shown.offering.id, offer_id),
            counters.given_by_month(fresh, shown.host.id, shown.partnership_id),
        )
        assert after == before
        assert fresh.get(counters.PartnershipImpressions, (shown.host.id, shown.partnership_id, counters.ALL_TIME))

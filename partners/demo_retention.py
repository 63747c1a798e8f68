"""The demo's retention story: a dog owner of Snoozy Paws Beds who stopped buying, and a defection survey.

They bought a bed, then a cover, then a blanket, about seven weeks apart, and nothing for five
months since: at risk. They consented to partner offers, so Snoozy Paws' win-back email can carry
Pawsome Care's offer. Snoozy Paws has the "why did you stop buying" survey ready to send them.
Seeded once: if the lapsed dog owner exists, nothing is changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from partners import churn_signals, customers, notices, partnerships, purchases, surveys
from partners.consent import ConsentInput, record_event
from partners.consent_rules import ALL_PARTNERS, Action, Method, Purpose, Source
from partners.demo_story import Keys

LAPSED = "dog-owner-lapsed"
# Days ago of each order: a 50-day rhythm, silent for 150 days (about three expected gaps).
ORDER_DAYS_AGO = (250, 200, 150)


@dataclass
class RetentionSummary:
    created: bool = False
    customer: str = LAPSED
    survey_id: str | None = None


def seed_retention(
    session: Session,
    tenants: Mapping[str, str],
    keys: Keys,
    now: datetime,
    progress: Callable[[str], None] = lambda _m: None,
) -> RetentionSummary:
    """Register the lapsed dog owner with their orders and consent, the defection survey, and assess risk."""
    beds = tenants["pet-beds"]
    summary = RetentionSummary()
    if customers.find_customer(session, beds, LAPSED) is not None:
        found = session.exec(
            select(surveys.Survey).where(
                col(surveys.Survey.tenant_id) == beds, col(surveys.Survey.purpose) == "defection"
            )
        ).first()
        summary.survey_id = found.id if found else None
        return summary
    customers.upsert_customer(
        session,
        beds,
        LAPSED,
        email="lapsed.dog.owner@example.com",
        store_email=False,
        hash_key=keys.hash_key,
        encryption_key=keys.encryption_key,
    )
    lines = (("cat_orthopedic_dog_beds", 12900), ("cat_dog_beds", 3900), ("cat_dog_beds", 2900))
    for n, ((category, price), days) in enumerate(zip(lines, ORDER_DAYS_AGO, strict=True), start=1):
        line = purchases.LineInput(category, price, 1, purchases.Channel.physical)
        order = purchases.PurchaseInput(f"demo-lapsed-{n}", now - timedelta(days=days), "GBP", (line,))
        purchases.record_purchase(session, beds, LAPSED, order, now=now)
    notice = session.exec(
        select(notices.ConsentNotice).where(
            col(notices.ConsentNotice.tenant_id) == beds, col(notices.ConsentNotice.key) == "partner-offers"
        )
    ).first()
    grant = ConsentInput(
        event_id="demo-grant-lapsed",
        action=Action.granted,
        method=Method.checkbox,
        source=Source.checkout,
        occurred_at=now - timedelta(days=100),  # once the partner-offers notice was out
        purposes=(Purpose.partner_offers,),
        partner=ALL_PARTNERS,
        notice_id=notice.id if notice else None,
    )
    record_event(session, beds, LAPSED, grant, is_active_partner=partnerships.is_active_partner, now=now)
    purpose, definition = surveys.template("defection")
    survey, _ = surveys.create(session, beds, purpose, definition, template_name="defection", thank_you_offer=True)
    churn_signals.reassess_tenant(session, beds, now)
    progress(f"Snoozy Paws Beds has a lapsed dog owner ({LAPSED}, at risk) and a defection survey ({survey.id})")
    summary.created, summary.survey_id = True, survey.id
    return summary

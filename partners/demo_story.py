"""The demo's story so far, so the exchange answers from the first minute of a demo install.

Pawsome Care (pet care) partnered with Snoozy Paws Beds (pet beds); Pawsome Care's flea & tick
offer is approved and live at Snoozy Paws; Snoozy Paws has dog owners who bought beds, two
thirds of whom consented to partner offers at checkout. Seeded once: if the partnership exists,
nothing is changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from partners import customers, notices, offer_actions, partnerships, purchases, serving
from partners.consent import ConsentInput, record_event
from partners.consent_rules import ALL_PARTNERS, Action, Method, Purpose, Source
from partners.offer_rules import CodeMode, OfferContent, OfferKind, Targeting
from partners.offers import OfferSettings
from partners.partnership_rules import Action as PartnershipAction
from partners.terms import TermsInput, agreement_digest

CUSTOMERS = 24
SHARED_CODE = "SNOOZY15"
_TERMS = TermsInput(
    my_offer_categories=["cat_pet_supplies"],
    partner_offer_categories=["cat_dog_beds", "cat_cat_beds"],
    cap_per_7_days=2,
    cap_per_30_days=5,
    commission_percent=10.0,
    attribution_window_days=30,
    reciprocity_target=1.0,
    contact_sharing=False,
    agreement_text="Snoozy Paws Beds and Pawsome Care promote each other to consenting customers; 10% commission.",
)


@dataclass(frozen=True)
class Keys:
    hash_key: bytes
    encryption_key: str


@dataclass
class StorySummary:
    created: bool = False
    partnership_id: str | None = None
    offer_id: str | None = None
    consenting: list[str] = field(default_factory=list)
    not_consenting: list[str] = field(default_factory=list)


def seed_story(
    session: Session,
    tenants: Mapping[str, str],
    keys: Keys,
    now: datetime,
    progress: Callable[[str], None] = lambda _m: None,
) -> StorySummary:
    """Partner the pet-care and pet-bed shops, put an offer live, and register consenting dog owners."""
    beds, care = tenants["pet-beds"], tenants["pet-care"]
    summary = StorySummary()
    existing = partnerships.open_with(session, care, beds)
    if existing is not None:
        summary.partnership_id = existing.id
        return summary
    partnership_id = _partner_up(session, care, beds)
    progress("Pawsome Care and Snoozy Paws Beds are partners (terms agreed, 10% commission)")
    summary.offer_id = _offer_live(session, care, beds, partnership_id, now)
    progress(f"Pawsome Care's offer is approved and live at Snoozy Paws Beds (code {SHARED_CODE})")
    _dog_owners(session, beds, keys, now, summary)
    progress(f"Snoozy Paws Beds has {CUSTOMERS} dog owners with orders, {len(summary.consenting)} consenting")
    summary.created, summary.partnership_id = True, partnership_id
    return summary


def _partner_up(session: Session, care: str, beds: str) -> str:
    created = partnerships.propose(session, partnerships.Actor(care, "demo"), beds, _TERMS)
    accepting = (1, agreement_digest(_TERMS.agreement_text))
    serving.act_on_partnership(
        session, partnerships.Actor(beds, "demo"), created.id, PartnershipAction.accept, accepting=accepting
    )
    return created.id


def _offer_live(session: Session, care: str, beds: str, partnership_id: str, now: datetime) -> str:
    content = OfferContent(
        title="15% off flea & tick protection",
        description="Keep your dog's new bed pest-free: 15% off Pawsome Care's flea & tick range.",
        landing_url="https://pawsomecare.example/snoozy",
        kind=OfferKind.percent_off,
        percent_off=15.0,
        currency="GBP",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=90),
        # Categories double as the audience's interests: dog-bed buyers and flea & tick buyers.
        targeting=Targeting(categories=("cat_flea_tick", "cat_dog_beds")),
    )
    settings = OfferSettings(code_mode=CodeMode.shared, shared_code=SHARED_CODE)
    offer = offer_actions.create(session, partnerships.Actor(care, "demo"), content, settings, "demo-flea-tick-15")
    offer_actions.publish(session, partnerships.Actor(care, "demo"), offer.id, [partnership_id], now=now)
    offer_actions.decide(session, partnerships.Actor(beds, "demo"), offer.id, 1, approve=True, now=now)
    return offer.id


def _dog_owners(session: Session, beds: str, keys: Keys, now: datetime, summary: StorySummary) -> None:
    notice = notices.create_notice(
        session,
        beds,
        notices.NoticeInput(
            key="partner-offers",
            language="en",
            text="We may show you offers from our partner shops. You can withdraw at any time.",
            purposes=(Purpose.partner_offers,),
            partners=None,
            published_at=now - timedelta(days=120),
        ),
        is_active_partner=partnerships.is_active_partner,
        now=now,
    )
    for i in range(1, CUSTOMERS + 1):
        external_id = f"dog-owner-{i:02}"
        customers.upsert_customer(
            session,
            beds,
            external_id,
            email=f"dog.owner{i}@example.com",
            store_email=False,
            hash_key=keys.hash_key,
            encryption_key=keys.encryption_key,
        )
        ordered_at = now - timedelta(days=3 * i)
        bed = purchases.LineInput("cat_orthopedic_dog_beds", 8900 + 100 * i, 1, purchases.Channel.physical)
        order = purchases.PurchaseInput(f"demo-order-{i:02}", ordered_at, "GBP", (bed,))
        purchases.record_purchase(session, beds, external_id, order, now=now)
        if i % 3 == 0:
            summary.not_consenting.append(external_id)
            continue
        grant = ConsentInput(
            event_id=f"demo-grant-{i:02}",
            action=Action.granted,
            method=Method.checkbox,
            source=Source.checkout,
            occurred_at=ordered_at,
            purposes=(Purpose.partner_offers,),
            partner=ALL_PARTNERS,
            notice_id=notice.id,
        )
        record_event(session, beds, external_id, grant, is_active_partner=partnerships.is_active_partner, now=now)
        summary.consenting.append(external_id)

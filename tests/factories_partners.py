"""Factories for profiles and partnerships."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import Session

from partners import partnerships, profiles
from partners.partnership_rules import Action
from partners.retailers import Tenant
from partners.terms import TermsInput, agreement_digest

BED_CATEGORIES = {"cat_designer_dog_beds": 0.6, "cat_cat_beds": 0.4}
CARE_CATEGORIES = {"cat_flea_tick": 0.5, "cat_pet_dental_care": 0.5}


def profile_input(**overrides: Any) -> profiles.ProfileInput:
    values: dict[str, Any] = {
        "display_name": "A shop",
        "website": "https://shop.example",
        "description": "",
        "categories": BED_CATEGORIES,
        "regions": ["GB"],
        "currencies": ["GBP"],
        "price_positioning": "premium",
        "audience_notes": "",
        "blocked_categories": [],
        "discoverable": True,
        "overlap_opt_in": False,
    }
    values.update(overrides)
    return profiles.ProfileInput(**values)


def terms_input(**overrides: Any) -> TermsInput:
    values: dict[str, Any] = {
        "my_offer_categories": ["cat_pet_supplies"],
        "partner_offer_categories": ["cat_pet_supplies"],
        "cap_per_7_days": 2,
        "cap_per_30_days": 5,
        "commission_percent": 10.0,
        "attribution_window_days": 30,
        "reciprocity_target": 1.0,
        "contact_sharing": False,
        "agreement_text": "We share only aggregate counts and keyed hashes.",
    }
    values.update(overrides)
    return TermsInput(**values)


def terms_body(**overrides: Any) -> dict[str, Any]:
    """Terms as the API takes them."""
    return dict(terms_input(**overrides).__dict__)


@pytest.fixture
def make_profile(session: Session, make_tenant: Callable[..., Tenant]) -> Callable[..., Tenant]:
    """A tenant with a saved profile (overrides as in `profile_input`)."""

    def make(tenant: Tenant | None = None, **overrides: Any) -> Tenant:
        tenant = tenant or make_tenant(overrides.get("display_name"))
        profiles.save_profile(session, tenant.id, profile_input(**overrides))
        session.commit()
        return tenant

    return make


@pytest.fixture
def make_partnership(session: Session, make_tenant: Callable[..., Tenant]) -> Callable[..., partnerships.Partnership]:
    """A partnership seen from the proposer's side, active unless `active=False`."""

    def make(
        proposer: Tenant | None = None, partner: Tenant | None = None, active: bool = True
    ) -> partnerships.Partnership:
        proposer, partner = proposer or make_tenant(), partner or make_tenant()
        created = partnerships.propose(session, partnerships.Actor(proposer.id, "usr_test"), partner.id, terms_input())
        if active:
            digest = agreement_digest(terms_input().agreement_text)
            partnerships.act(
                session, partnerships.Actor(partner.id, "usr_test"), created.id, Action.accept, accepting=(1, digest)
            )
        session.commit()
        return partnerships.get(session, proposer.id, created.id)

    return make

"""Changes outside offers that decide what hosts may serve: each keeps the live rows in step.

`live_offers` holds, per host, what may be served now; it is rewritten when something it depends
on changes. Offer changes do it in `offer_actions`; these do it for new partnership terms (the
categories each side's offers may be in) and for a host's profile (brand safety, currencies).
"""

from __future__ import annotations

from sqlmodel import Session

from partners import live_offers, partnerships, profiles
from partners.partnership_rules import Action
from partners.partnerships import Actor, Partnership
from partners.profiles import ProfileInput, RetailerProfile
from partners.terms import TermsInput


def act_on_partnership(
    session: Session,
    actor: Actor,
    partnership_id: str,
    action: Action,
    *,
    new_terms: TermsInput | None = None,
    accepting: tuple[int, str] | None = None,
) -> Partnership:
    """`partnerships.act`; when new terms were agreed, both sides' live rows follow them at once."""
    before = partnerships.get(session, actor.tenant_id, partnership_id).agreed_version
    changed = partnerships.act(session, actor, partnership_id, action, new_terms=new_terms, accepting=accepting)
    if changed.agreed_version != before:
        live_offers.refresh_partnership(session, actor.tenant_id, partnership_id)
    return changed


def save_profile(session: Session, tenant_id: str, data: ProfileInput) -> RetailerProfile:
    """`profiles.save_profile`; the partner offers the tenant hosts are checked against its new rules."""
    saved = profiles.save_profile(session, tenant_id, data)
    live_offers.refresh_host(session, tenant_id)
    return saved

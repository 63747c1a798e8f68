"""Changes that alter what hosts may serve, each followed by the refresh of the live offers it touches.

Live offers depend on partnerships and profiles, so those modules cannot refresh them
themselves; whoever changes an agreement or a host's rules goes through here, and the
served offers follow in the same transaction.
"""

from __future__ import annotations

from sqlmodel import Session

from partners import live_offers, partnerships, profiles
from partners import terms as terms_store
from partners.partnership_rules import Action


def act_on_partnership(
    session: Session,
    actor: partnerships.Actor,
    partnership_id: str,
    action: Action,
    *,
    new_terms: terms_store.TermsInput | None = None,
    accepting: tuple[int, str] | None = None,
) -> partnerships.Partnership:
    """Apply a lifecycle action, then rewrite the live offers of the partnership (new terms, new state)."""
    changed = partnerships.act(session, actor, partnership_id, action, new_terms=new_terms, accepting=accepting)
    live_offers.refresh_partnership(session, actor.tenant_id, partnership_id)
    return changed


def save_profile(session: Session, tenant_id: str, data: profiles.ProfileInput) -> profiles.RetailerProfile:
    """Save the retailer's profile, then rewrite what it hosts (its blocked categories and currencies apply)."""
    saved = profiles.save_profile(session, tenant_id, data)
    live_offers.refresh_host(session, tenant_id)
    return saved

"""Demo data: the retailers of our story, created once (running it again changes nothing)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from partners import profiles, staff
from partners.scopes import Role

# Known only to demo installs: the CLI refuses to seed demo data in production.
DEMO_PASSWORD = "partnerloop-demo"  # noqa: S105


@dataclass(frozen=True)
class DemoRetailer:
    key: str
    owner_email: str
    marketer_email: str
    profile: profiles.ProfileInput


def _profile(
    name: str, website: str, categories: dict[str, float], positioning: str, blocked: list[str]
) -> profiles.ProfileInput:
    return profiles.ProfileInput(
        display_name=name,
        website=website,
        description=f"{name}, a demo retailer.",
        categories=categories,
        regions=["GB", "IE"],
        currencies=["EUR", "GBP"],
        price_positioning=positioning,  # type: ignore[arg-type]
        audience_notes="Dog and cat owners who buy premium.",
        blocked_categories=blocked,
        discoverable=True,
        overlap_opt_in=True,
    )


RETAILERS = (
    DemoRetailer(
        "pet-beds",
        "owner@snoozypaws.example",
        "marketing@snoozypaws.example",
        _profile(
            "Snoozy Paws Beds",
            "https://snoozypaws.example",
            {"cat_designer_dog_beds": 0.5, "cat_orthopedic_dog_beds": 0.3, "cat_cat_beds": 0.2},
            "premium",
            ["cat_dry_dog_food"],
        ),
    ),
    DemoRetailer(
        "pet-care",
        "owner@pawsomecare.example",
        "marketing@pawsomecare.example",
        _profile(
            "Pawsome Care",
            "https://pawsomecare.example",
            {"cat_flea_tick": 0.4, "cat_pet_dental_care": 0.3, "cat_joint_mobility_care": 0.3},
            "premium",
            [],
        ),
    ),
    DemoRetailer(
        "rival-beds",
        "owner@dreamydogbeds.example",
        "marketing@dreamydogbeds.example",
        _profile(
            "Dreamy Dog Beds",
            "https://dreamydogbeds.example",
            {"cat_designer_dog_beds": 0.6, "cat_dog_blankets_mats": 0.4},
            "premium",
            [],
        ),
    ),
)


@dataclass
class DemoSummary:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    tenants: dict[str, str] = field(default_factory=dict)


def seed(session: Session, progress: Callable[[str], None] = lambda _m: None) -> DemoSummary:
    """Create whatever part of the demo is missing."""
    summary = DemoSummary()
    for retailer in RETAILERS:
        owner = session.exec(select(staff.StaffUser).where(col(staff.StaffUser.email) == retailer.owner_email)).first()
        if owner is not None:
            summary.existing.append(f"{retailer.profile.display_name} ({owner.tenant_id})")
            summary.tenants[retailer.key] = owner.tenant_id
            continue
        created = staff.sign_up(session, retailer.profile.display_name, retailer.owner_email, DEMO_PASSWORD)
        tenant_id = created.tenant.id
        issued = staff.invite(session, tenant_id, created.owner.id, retailer.marketer_email, Role.marketer)
        staff.accept_invitation(session, issued.token, DEMO_PASSWORD)
        profiles.save_profile(session, tenant_id, retailer.profile)
        summary.created.append(f"{retailer.profile.display_name} ({tenant_id})")
        summary.tenants[retailer.key] = tenant_id
        progress(f"created retailer {retailer.profile.display_name}: owner and marketer accounts, profile")
    return summary


def credentials() -> list[str]:
    """The demo logins, for the CLI to print."""
    lines = []
    for retailer in RETAILERS:
        for email in (retailer.owner_email, retailer.marketer_email):
            lines.append(f"{retailer.profile.display_name:<18} {email:<32} password: {DEMO_PASSWORD}")
    return lines

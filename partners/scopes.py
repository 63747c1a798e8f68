"""OAuth scopes, one per function, and what each staff role may be granted."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    profile_read = "profile:read"
    profile_write = "profile:write"
    partners_read = "partners:read"
    partnerships_write = "partnerships:write"
    offers_read = "offers:read"
    offers_write = "offers:write"
    customers_write = "customers:write"
    consents_write = "consents:write"
    exchange_read = "exchange:read"
    redemptions_write = "redemptions:write"
    contacts_read = "contacts:read"
    reports_read = "reports:read"
    surveys_read = "surveys:read"
    surveys_write = "surveys:write"
    webhooks_write = "webhooks:write"
    staff_read = "staff:read"
    staff_write = "staff:write"
    clients_write = "clients:write"


DESCRIPTIONS: dict[Scope, str] = {
    Scope.profile_read: "Read the retailer's profile",
    Scope.profile_write: "Change the retailer's profile",
    Scope.partners_read: "Discover partners and read partnerships",
    Scope.partnerships_write: "Propose, accept and manage partnerships",
    Scope.offers_read: "Read offers",
    Scope.offers_write: "Create, change and approve offers",
    Scope.customers_write: "Register customers and purchases",
    Scope.consents_write: "Record customers' consent events",
    Scope.exchange_read: "Ask which partner offers to show a customer",
    Scope.redemptions_write: "Report redemptions",
    Scope.contacts_read: "Receive contact details partners share with the customer's consent",
    Scope.reports_read: "Read reports and the ledger",
    Scope.surveys_read: "Read survey answers and their aggregates",
    Scope.surveys_write: "Create surveys and issue survey links to customers",
    Scope.webhooks_write: "Manage webhook endpoints",
    Scope.staff_read: "List staff accounts",
    Scope.staff_write: "Invite and manage staff",
    Scope.clients_write: "Create, rotate and revoke API clients",
}

ALL = frozenset(Scope)
# Only owners invite staff and change roles.
_ADMIN = ALL - {Scope.staff_write}
_MARKETER = frozenset(
    {
        Scope.profile_read,
        Scope.profile_write,
        Scope.partners_read,
        Scope.partnerships_write,
        Scope.offers_read,
        Scope.offers_write,
        Scope.reports_read,
        Scope.surveys_read,
        Scope.surveys_write,
        Scope.staff_read,
    }
)
_VIEWER = frozenset(
    {
        Scope.profile_read,
        Scope.partners_read,
        Scope.offers_read,
        Scope.reports_read,
        Scope.surveys_read,
        Scope.staff_read,
    }
)


class Role(StrEnum):
    owner = "owner"
    admin = "admin"
    marketer = "marketer"
    viewer = "viewer"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.owner: ALL,
    Role.admin: _ADMIN,
    Role.marketer: _MARKETER,
    Role.viewer: _VIEWER,
}


def parse(scope: str | None) -> frozenset[str]:
    """The set of scope names in a space-separated string."""
    return frozenset((scope or "").split())


def render(scopes: frozenset[str] | set[str]) -> str:
    """Scopes as the space-separated string OAuth uses, in a stable order."""
    return " ".join(sorted(scopes))

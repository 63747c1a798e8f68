"""The shapes of Partnerloop's answers, as typed dicts (the JSON as sent; times are ISO 8601 strings).

They list the fields an integration usually reads; every answer may carry more (see /docs).
"""

from __future__ import annotations

from typing import Any, TypedDict


class Page(TypedDict):
    data: list[dict[str, Any]]
    next_cursor: str | None


class Tenant(TypedDict):
    id: str
    name: str
    created_at: str


class StaffUser(TypedDict):
    id: str
    email: str
    role: str
    active: bool
    created_at: str


class SignUp(TypedDict):
    tenant: Tenant
    owner: StaffUser


class ApiClient(TypedDict):
    id: str
    name: str
    scopes: list[str]
    created_at: str
    rotated_at: str | None
    revoked_at: str | None


class ApiClientWithSecret(ApiClient):
    client_secret: str


class Terms(TypedDict):
    version: int
    proposed_by: str
    my_offer_categories: list[str]
    partner_offer_categories: list[str]
    cap_per_7_days: int
    cap_per_30_days: int
    commission_percent: float
    attribution_window_days: int
    reciprocity_target: float
    contact_sharing: bool
    agreement_text: str
    agreement_sha256: str
    proposed_at: str
    accepted_at: str | None


class Partnership(TypedDict):
    id: str
    partner_tenant_id: str
    initiated_by_me: bool
    state: str
    agreed_terms_version: int | None
    pending_terms_version: int | None
    awaiting_my_answer: bool
    created_at: str
    updated_at: str


class PartnershipDetail(Partnership):
    agreed_terms: Terms | None
    pending_terms: Terms | None
    partner: dict[str, Any] | None


class Placement(TypedDict):
    partnership_id: str
    partner_tenant_id: str
    approval: str
    pending_version: int | None
    serving_version: int | None
    rejected_version: int | None
    rejection_reason: str | None
    serving_status: str | None
    live: bool


class Offer(TypedDict):
    id: str
    external_id: str | None
    state: str
    status: str
    latest_version: int
    content: dict[str, Any]
    budget: dict[str, Any]
    codes: dict[str, Any]
    placements: list[Placement]
    created_at: str
    updated_at: str


class PartnerOffer(TypedDict):
    offer_id: str
    partnership_id: str
    partner_tenant_id: str
    approval: str
    offer_state: str
    pending_version: int | None
    serving_version: int | None
    pending: dict[str, Any] | None
    serving: dict[str, Any] | None
    serving_status: str | None
    live: bool


class ShownPartner(TypedDict):
    tenant_id: str
    display_name: str


class ShownOffer(TypedDict):
    impression_id: str | None
    offer_id: str
    version: int
    partner: ShownPartner
    rank: int
    score: float
    kind: str
    title: str
    description: str
    landing_url: str
    currency: str
    percent_off: float | None
    amount_off: int | None
    friend_amount_off: int | None
    minimum_order: int | None
    code: str | None
    ends_at: str | None
    public_sale_starts_at: str | None


class ExchangeAnswer(TypedDict):
    answer_id: str | None
    offers: list[ShownOffer]


class Redemption(TypedDict):
    id: str
    order_id: str
    impression_id: str
    partnership_id: str
    host_tenant_id: str
    offer_id: str
    code: str | None
    order_value: int
    currency: str
    commission_bps: int
    commission: int
    redeemed_at: str
    reversed_at: str | None
    reversal_reason: str | None


class Customer(TypedDict):
    id: str
    external_id: str
    has_email: bool
    email: str | None
    created_at: str
    updated_at: str


class ConsentResult(TypedDict):
    replayed: bool
    events: list[dict[str, Any]]
    consents: list[dict[str, Any]]


class Notice(TypedDict):
    id: str
    key: str
    language: str
    version: int
    text: str
    purposes: list[str]
    partners: list[str] | str
    published_at: str
    created_at: str


class RowError(TypedDict):
    line: int
    field: str | None
    message: str


class UploadJob(TypedDict):
    id: str
    kind: str
    status: str
    rows_seen: int
    rows_ok: int
    rows_failed: int
    errors: list[RowError]
    errors_truncated: bool
    created_at: str
    finished_at: str | None


class WebhookEndpoint(TypedDict):
    id: str
    url: str
    description: str
    events: list[str]
    enabled: bool
    disabled_at: str | None
    disabled_reason: str | None
    failing_since: str | None
    previous_secret_expires_at: str | None
    created_at: str
    updated_at: str


class WebhookEndpointWithSecret(WebhookEndpoint):
    secret: str


class ChangePage(TypedDict):
    data: list[dict[str, Any]]
    next_cursor: str
    has_more: bool


class WebhookMessage(TypedDict):
    id: str
    type: str
    version: int
    timestamp: str
    source_tenant_id: str
    data: dict[str, Any]

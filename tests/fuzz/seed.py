"""The fuzzed tenant and its neighbours: made with the domain (tenants, clients), then through the API."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from sqlalchemy import Engine

from partners import clients
from partners import scopes as scope_names
from partners.clients import DOCS_CLIENT_ID, DOCS_REDIRECT_PATH
from partners.db import unit_of_work
from partners.retailers import create_tenant
from partners.scopes import Role
from partners.staff import StaffUser, _hasher

BEDS_PROFILE: dict[str, Any] = {
    "display_name": "Fuzzy Beds",
    "website": "https://beds.example",
    "categories": {"cat_designer_dog_beds": 0.6, "cat_cat_beds": 0.4},
    "regions": ["GB"],
    "currencies": ["GBP"],
    "price_positioning": "premium",
    "discoverable": True,
    "overlap_opt_in": True,
}
CARE_PROFILE: dict[str, Any] = {
    **BEDS_PROFILE,
    "display_name": "Fuzzy Care",
    "website": "https://care.example",
    "categories": {"cat_flea_tick": 0.5, "cat_pet_dental_care": 0.5},
}
TERMS: dict[str, Any] = {
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


@dataclass
class Credentials:
    tenant_id: str
    client_id: str
    client_secret: str


@dataclass
class Seeded:
    """What the fuzzer authenticates with, and real ids to aim path parameters at."""

    fuzzed: Credentials
    partner: Credentials
    ids: dict[str, list[str]] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> Seeded:
        raw = json.loads(path.read_text())
        return cls(Credentials(**raw["fuzzed"]), Credentials(**raw["partner"]), raw["ids"])


def tenants(engine: Engine) -> tuple[Credentials, Credentials]:
    """Two retailers, each with an API client holding every scope."""
    made = []
    with unit_of_work(engine) as session:
        for name in ("Fuzzed Retailer", "Partner Retailer"):
            tenant = create_tenant(session, name)
            issued = clients.create_client(session, tenant.id, "fuzz", sorted(scope_names.ALL), scope_names.ALL, "fuzz")
            made.append(Credentials(tenant.id, issued.client.id, issued.secret))
    return made[0], made[1]


def token(http: httpx.Client, creds: Credentials) -> str:
    """An access token from the token endpoint (client credentials, every scope)."""
    response = http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(creds.client_id, creds.client_secret)
    )
    response.raise_for_status()
    value: str = response.json()["access_token"]
    return value


def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise RuntimeError(f"seeding failed: {response.request.method} {response.request.url}: {response.text}")
    body: dict[str, Any] = response.json() if response.content else {}
    return body


def through_api(http: httpx.Client, fuzzed: Credentials, partner: Credentials) -> dict[str, list[str]]:
    """A partnership, customers, consents, a notice, offers (one live at the partner), a webhook endpoint."""
    mine = {"Authorization": f"Bearer {token(http, fuzzed)}"}
    theirs = {"Authorization": f"Bearer {token(http, partner)}"}
    _ok(http.put("/v1/profile", json=BEDS_PROFILE, headers=mine))
    _ok(http.put("/v1/profile", json=CARE_PROFILE, headers=theirs))
    proposed = _ok(
        http.post("/v1/partnerships", json={"partner_tenant_id": partner.tenant_id, "terms": TERMS}, headers=mine)
    )
    partnership_id = proposed["id"]
    terms = _ok(http.get(f"/v1/partnerships/{partnership_id}/terms", headers=theirs))["data"][-1]
    _ok(
        http.post(
            f"/v1/partnerships/{partnership_id}/accept",
            json={"terms_version": terms["version"], "agreement_sha256": terms["agreement_sha256"]},
            headers=theirs,
        )
    )
    now = datetime.now(UTC)
    offer = {
        "title": "20% off designer dog beds",
        "landing_url": "https://beds.example/partner",
        "kind": "percent_off",
        "percent_off": 20,
        "currency": "GBP",
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat(),
        "targeting": {"categories": ["cat_designer_dog_beds"]},
    }
    my_offer = _ok(http.post("/v1/offers", json=offer, headers=mine))["id"]
    their_offer = _ok(http.post("/v1/offers", json={**offer, "title": "Flea care"}, headers=theirs))["id"]
    _ok(http.post(f"/v1/offers/{their_offer}/publish", json={"partnership_ids": [partnership_id]}, headers=theirs))
    # Our offer goes live at the partner, is shown to a consenting customer there and redeemed.
    _ok(http.post(f"/v1/offers/{my_offer}/publish", json={"partnership_ids": [partnership_id]}, headers=mine))
    _ok(http.post(f"/v1/partner-offers/{my_offer}/approve", json={"version": 1}, headers=theirs))
    notice = {
        "key": "checkout",
        "language": "en",
        "text": "We would like to show you offers from our partner shops. You can withdraw at any time.",
        "purposes": ["partner_offers"],
        "partners": "all",
        "published_at": (now - timedelta(days=1)).isoformat(),
    }
    their_notice = _ok(http.post("/v1/consent-notices", json=notice, headers=theirs))["id"]
    _ok(http.put("/v1/customers/shopper", json={}, headers=theirs))
    purchase = {
        "order_id": "seed-order",
        "ordered_at": (now - timedelta(days=10)).isoformat(),
        "currency": "GBP",
        "lines": [{"category_id": "cat_dog_beds", "unit_price_minor": 9000, "channel": "physical"}],
    }
    _ok(http.post("/v1/customers/shopper/purchases", json=purchase, headers=theirs))
    _ok(
        http.post(
            "/v1/customers/shopper/consent-events",
            json={
                "event_id": "seed-grant",
                "action": "granted",
                "purposes": ["partner_offers"],
                "partner": fuzzed.tenant_id,
                "notice_id": their_notice,
                "method": "checkbox",
                "source": "checkout",
                "occurred_at": (now - timedelta(seconds=5)).isoformat(),
            },
            headers=theirs,
        )
    )
    shown = _ok(
        http.post("/v1/exchange", json={"customer_external_id": "shopper", "placement": "email"}, headers=theirs)
    )["offers"]
    assert shown, "seeding: the exchange showed no offer to the consenting customer"
    redemption = _ok(
        http.post(
            "/v1/redemptions",
            json={
                "order_id": "order-1",
                "order_value": 12000,
                "currency": "GBP",
                "impression_id": shown[0]["impression_id"],
            },
            headers=mine,
        )
    )["id"]
    customers = []
    for n in range(3):
        external_id = f"customer-{n}"
        _ok(http.put(f"/v1/customers/{external_id}", json={"email": f"c{n}@mail.example"}, headers=mine))
        customers.append(external_id)
    my_notice = _ok(http.post("/v1/consent-notices", json=notice, headers=mine))["id"]
    hook = {"url": "https://hooks.example/in", "events": ["offer.*"]}
    endpoint = _ok(http.post("/v1/webhook-endpoints", json=hook, headers=mine))["id"]
    # A client the fuzzer may revoke (it authenticates as the owner, through the docs client).
    client = _ok(http.post("/v1/clients", json={"name": "spare", "scopes": ["offers:read"]}, headers=mine))["id"]
    upload = _ok(
        http.post(
            "/v1/uploads/customers",
            content=b'{"external_id": "uploaded-1"}\n',
            headers={**mine, "Content-Type": "application/x-ndjson"},
        )
    )["id"]
    survey = _ok(http.post("/v1/surveys", json={"template": "experience"}, headers=mine))["id"]
    holdout = _ok(http.put(f"/v1/partnerships/{partnership_id}/holdout", json={"share_percent": 10}, headers=mine))[
        "running"
    ]["id"]
    return {
        "survey_id": [survey],
        "holdout_id": [holdout],
        "partnership_id": [partnership_id],
        "offer_id": [my_offer, their_offer],
        "external_id": customers,
        "notice_id": [my_notice],
        "endpoint_id": [endpoint],
        "redemption_id": [redemption],
        "client_id": [client],
        "job_id": [upload],
        "category_id": ["cat_designer_dog_beds", "cat_pet_supplies"],
    }


def staff(engine: Engine, tenant_id: str, email: str, password: str) -> str:
    """An owner of the fuzzed tenant (every scope), who logs in through the real login page, and a
    marketer the fuzzer may change or deactivate (never the owner it acts as): the marketer's id."""
    with unit_of_work(engine) as session:
        owner = StaffUser(tenant_id=tenant_id, email=email, role=Role.owner, password_hash=_hasher.hash(password))
        marketer = StaffUser(tenant_id=tenant_id, email="marketer." + email, role=Role.marketer, password_hash="!")
        session.add_all([owner, marketer])
        session.flush()
        return marketer.id


def staff_token(http: httpx.Client, email: str, password: str) -> str:
    """Log in and run authorization code + PKCE with the docs client, as a browser in /docs would."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    redirect_uri = str(http.base_url).rstrip("/") + DOCS_REDIRECT_PATH
    authorize = "/oauth/authorize?" + urlencode(
        {
            "response_type": "code",
            "client_id": DOCS_CLIENT_ID,
            "redirect_uri": redirect_uri,
            "state": "fuzz",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "scope": " ".join(sorted(scope_names.ALL)),
        }
    )
    page = http.get("/login", params={"next": authorize})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf, "the login page has no CSRF token"
    logged_in = http.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf.group(1), "next": authorize},
        follow_redirects=False,
    )
    assert logged_in.status_code == 303, logged_in.text
    redirected = http.get(authorize, follow_redirects=False)
    assert redirected.status_code == 302, redirected.text
    code = parse_qs(urlsplit(redirected.headers["location"]).query)["code"][0]
    response = http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": DOCS_CLIENT_ID,
            "code_verifier": verifier,
        },
    )
    response.raise_for_status()
    value: str = response.json()["access_token"]
    return value

"""The whole story on one machine, over real HTTP, through the SDK and the example shops only.

    .venv/bin/python -m examples.story            # runs it, then keeps everything up until Ctrl-C
    .venv/bin/python -m examples.story --exit     # runs it and stops

It starts Partnerloop (`partnerloop serve` and `partnerloop worker`, on a fresh SQLite database
in a temporary folder, or PARTNERLOOP_DATABASE_URL) and the two example shops, signs both
retailers up, creates their API clients, agrees the partnership, publishes and approves the
offer, has a consenting and a non-consenting customer order at the bed shop, redeems the code
at the care shop (twice: the second is refused), and waits for the webhooks.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from examples.processes import Processes, start_partnerloop, start_shops
from partnerloop_sdk import Partnerloop, log_in, sign_up

SCOPES = [
    "profile:read", "profile:write", "partners:read", "partnerships:write", "offers:read", "offers:write",
    "customers:write", "consents:write", "exchange:read", "redemptions:write", "reports:read", "webhooks:write",
]  # fmt: skip
PASSWORD = "example-shop-password"  # noqa: S105 (a local demo's own accounts)
TERMS = {
    "my_offer_categories": ["cat_pet_supplies"],
    "partner_offer_categories": ["cat_dog_beds", "cat_cat_beds"],
    "cap_per_7_days": 3,
    "cap_per_30_days": 10,
    "commission_percent": 10.0,
    "attribution_window_days": 30,
    "agreement_text": "Pawsome Care and Snoozy Paws Beds show each other's offers to consenting customers only.",
}
_CODE = re.compile(r'class="code">([^<]+)<')
_OFFER = re.compile(r'data-offer-id="([^"]+)"')


def _profile(name: str, website: str, categories: dict[str, float], blocked: list[str]) -> dict[str, Any]:
    return {
        "display_name": name,
        "website": website,
        "description": f"{name}, an example shop.",
        "categories": categories,
        "regions": ["GB", "IE"],
        "currencies": ["GBP", "EUR"],
        "price_positioning": "premium",
        "blocked_categories": blocked,
    }


BEDS_PROFILE = _profile(
    "Snoozy Paws Beds", "https://snoozypaws.example", {"cat_designer_dog_beds": 0.6, "cat_orthopedic_dog_beds": 0.4},
    ["cat_dry_dog_food"],
)  # fmt: skip
CARE_PROFILE = _profile(
    "Pawsome Care", "https://pawsomecare.example", {"cat_flea_tick": 0.5, "cat_pet_dental_care": 0.5}, []
)


@dataclass(frozen=True)
class Retailer:
    """A retailer signed up through the API, with an API client for its shop's backend."""

    name: str
    tenant_id: str
    client_id: str
    client_secret: str


def set_up_retailer(base_url: str, profile: dict[str, Any], email: str) -> Retailer:
    """Sign up, log in as the owner, describe the shop, and create the backend's API client."""
    signed = sign_up(base_url, profile["display_name"], email, PASSWORD)
    token = log_in(base_url, email, PASSWORD)  # no scope asked: all the owner may grant its client
    with Partnerloop.with_staff_token(base_url, token) as staff:
        staff.profile.put(profile)
        created = staff.clients.create(f"{profile['display_name']} shop backend", SCOPES)
    return Retailer(profile["display_name"], signed["tenant"]["id"], created["id"], created["client_secret"])


@dataclass
class StoryResult:
    """What happened, for a person to read and a test to check."""

    partnership_id: str = ""
    offer_id: str = ""
    consenting_offers: list[str] = field(default_factory=list)
    consenting_code: str | None = None
    other_offers: list[str] = field(default_factory=list)
    first_redemption: httpx.Response | None = None
    second_redemption: httpx.Response | None = None
    beds_webhooks: dict[str, Any] = field(default_factory=dict)
    care_webhooks: dict[str, Any] = field(default_factory=dict)


def _order_at_bed_shop(shop: httpx.Client, customer: str, consents: bool) -> str:
    form = {"customer_id": customer, "order_id": f"BED-{customer}", "partner_offers": "yes" if consents else ""}
    page = shop.post("/orders", data=form, follow_redirects=True)
    page.raise_for_status()
    return page.text


def run_story(
    partnerloop_url: str, beds: Retailer, care: Retailer, beds_url: str, care_url: str, say: Callable[[str], None]
) -> StoryResult:
    """Partnership, offer, approval, two customers at the bed shop, the redemption at the care shop, webhooks."""
    result = StoryResult()
    with (
        Partnerloop.with_client_credentials(partnerloop_url, care.client_id, care.client_secret) as care_api,
        Partnerloop.with_client_credentials(partnerloop_url, beds.client_id, beds.client_secret) as beds_api,
        httpx.Client(base_url=beds_url, timeout=30) as beds_shop,
        httpx.Client(base_url=care_url, timeout=30) as care_shop,
    ):
        proposal = care_api.partnerships.propose(beds.tenant_id, TERMS)
        result.partnership_id = proposal["id"]
        beds_api.partnerships.accept_pending(proposal["id"])
        say(f"{care.name} proposed a partnership, {beds.name} accepted its terms ({proposal['id']})")

        published = care_shop.post("/admin/publish-offer").raise_for_status().json()
        result.offer_id = published["offer_id"]
        say(f"{care.name}'s shop published its offer {published['offer_id']} ({published['status']})")
        pending = next(iter(beds_api.partner_offers.list(awaiting_approval=True)))
        beds_api.partner_offers.approve(pending["offer_id"], pending["pending_version"] or 1)
        say(f"{beds.name} approved version {pending['pending_version']} of it")

        page = _order_at_bed_shop(beds_shop, "anna", consents=True)
        result.consenting_offers = _OFFER.findall(page)
        codes = _CODE.findall(page)
        result.consenting_code = codes[0] if codes else None
        say(f"anna (consented) ordered a bed: her confirmation page shows {result.consenting_offers} {codes}")
        result.other_offers = _OFFER.findall(_order_at_bed_shop(beds_shop, "ben", consents=False))
        say(f"ben (did not consent) ordered a bed: his confirmation page shows {result.other_offers}")

        code = result.consenting_code or ""
        result.first_redemption = care_shop.post("/orders", data={"order_id": "CARE-1", "code": code, "amount": 4000})
        result.second_redemption = care_shop.post("/orders", data={"order_id": "CARE-2", "code": code, "amount": 4000})
        say(
            f"anna used {code} at {care.name}: {result.first_redemption.status_code}; "
            f"someone tried it again: {result.second_redemption.status_code}"
        )
        result.beds_webhooks = _wait_for_webhooks(beds_shop, {"offer.submitted", "redemption.recorded"})
        result.care_webhooks = _wait_for_webhooks(care_shop, {"offer.approved", "redemption.recorded"})
    for name, got in ((beds.name, result.beds_webhooks), (care.name, result.care_webhooks)):
        say(f"{name} received (signatures verified): {', '.join(m['type'] for m in got['messages'])}")
    return result


def _wait_for_webhooks(shop: httpx.Client, expected: set[str], timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got: dict[str, Any] = shop.get("/webhooks.json").raise_for_status().json()
        if expected <= {m["type"] for m in got["messages"]} or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Run the story, print what happens, keep it all running until Ctrl-C (unless --exit)."""
    parser = argparse.ArgumentParser(prog="python -m examples.story", description=__doc__.split("\n\n")[0])
    parser.add_argument("--exit", action="store_true", help="stop everything once the story has run")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="partnerloop-story-"))
    database_url = os.environ.get("PARTNERLOOP_DATABASE_URL") or f"sqlite:///{workdir / 'partnerloop.db'}"
    processes = Processes(workdir)
    # A TERM (or an INT where a background job ignores it) stops the children too, via `finally`.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        partnerloop_url = start_partnerloop(processes, database_url)
        print(f"Partnerloop: {partnerloop_url}/docs (logs in {workdir})")
        suffix = secrets.token_hex(3)
        beds = set_up_retailer(partnerloop_url, BEDS_PROFILE, f"owner-{suffix}@snoozypaws.example")
        care = set_up_retailer(partnerloop_url, CARE_PROFILE, f"owner-{suffix}@pawsomecare.example")
        print(f"Signed up {beds.name} ({beds.tenant_id}) and {care.name} ({care.tenant_id}), with API clients")
        urls = start_shops(
            processes,
            partnerloop_url,
            {"pet_beds": (beds.client_id, beds.client_secret), "pet_care": (care.client_id, care.client_secret)},
        )
        beds_url, care_url = urls["pet_beds"], urls["pet_care"]
        print(f"Shops: {beds.name} at {beds_url}/  {care.name} at {care_url}/")
        run_story(partnerloop_url, beds, care, beds_url, care_url, say=lambda line: print("  " + line))
        print(f"See the webhooks at {beds_url}/webhooks and {care_url}/webhooks")
        if not args.exit:
            print("Everything keeps running; press Ctrl-C to stop.")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        processes.stop_all()


if __name__ == "__main__":
    main(sys.argv[1:])

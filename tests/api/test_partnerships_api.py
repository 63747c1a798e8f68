"""Two retailers agree a partnership over HTTP, each seeing only its side and the other's public profile."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from partners.retailers import Tenant
from tests.factories_partners import CARE_CATEGORIES, terms_body

SCOPES = ["partners:read", "partnerships:write"]


class Shop:
    def __init__(self, client: TestClient, tenant: Tenant, token: str) -> None:
        self.client, self.tenant, self.headers = client, tenant, {"Authorization": f"Bearer {token}"}

    def post(self, path: str, json: Any = None) -> Any:
        return self.client.post(path, json=json, headers=self.headers)

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.headers)


@pytest.fixture
def shops(client: TestClient, make_profile: Callable[..., Tenant], token_for: Callable[..., str]) -> tuple[Shop, Shop]:
    beds = make_profile(display_name="Beds")
    care = make_profile(display_name="Care", categories=CARE_CATEGORIES)
    return Shop(client, beds, token_for(SCOPES, tenant=beds)), Shop(client, care, token_for(SCOPES, tenant=care))


def _propose(beds: Shop, care: Shop, **terms: Any) -> Any:
    return beds.post("/v1/partnerships", {"partner_tenant_id": care.tenant.id, "terms": terms_body(**terms)})


def test_propose_accept_and_both_sides_see_it(shops: tuple[Shop, Shop]) -> None:
    beds, care = shops
    proposed = _propose(beds, care, my_offer_categories=["cat_dog_beds"], partner_offer_categories=["cat_pet_health"])
    assert proposed.status_code == 201, proposed.text
    ptn = proposed.json()
    assert ptn["id"].startswith("ptn_")
    assert ptn["state"] == "proposed" and ptn["awaiting_my_answer"] is False

    inbox = care.get("/v1/partnerships", state="proposed").json()["data"]
    assert [p["id"] for p in inbox] == [ptn["id"]]
    assert inbox[0]["awaiting_my_answer"] is True
    seen = care.get(f"/v1/partnerships/{ptn['id']}").json()
    pending = seen["pending_terms"]
    # Terms read from each side's point of view.
    assert pending["my_offer_categories"] == ["cat_pet_health"]
    assert pending["partner_offer_categories"] == ["cat_dog_beds"]
    assert seen["partner"]["display_name"] == "Beds"
    assert "overlap_opt_in" not in seen["partner"]

    own = beds.post(
        f"/v1/partnerships/{ptn['id']}/accept",
        {"terms_version": 1, "agreement_sha256": pending["agreement_sha256"]},
    )
    assert own.status_code == 409, "a retailer cannot accept its own proposal"
    accepted = care.post(
        f"/v1/partnerships/{ptn['id']}/accept",
        {"terms_version": 1, "agreement_sha256": pending["agreement_sha256"]},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"] == "active"
    mine = beds.get(f"/v1/partnerships/{ptn['id']}").json()
    assert mine["state"] == "active"
    assert mine["agreed_terms"]["version"] == 1
    assert mine["agreed_terms"]["commission_percent"] == 10.0
    history = care.get(f"/v1/partnerships/{ptn['id']}/history").json()["data"]
    assert [(h["action"], h["by_me"]) for h in history] == [("propose", False), ("accept", True)]
    assert history[0]["actor_id"] is None, "the other side's staff stay private"


def test_counter_then_accept_the_countered_version(shops: tuple[Shop, Shop]) -> None:
    beds, care = shops
    ptn = _propose(beds, care).json()["id"]
    countered = care.post(f"/v1/partnerships/{ptn}/counter", {"terms": terms_body(commission_percent=5.0)})
    assert countered.json()["pending_terms"]["version"] == 2
    sha = countered.json()["pending_terms"]["agreement_sha256"]
    assert care.post(f"/v1/partnerships/{ptn}/accept", {"terms_version": 2, "agreement_sha256": sha}).status_code == 409
    done = beds.post(f"/v1/partnerships/{ptn}/accept", {"terms_version": 2, "agreement_sha256": sha})
    assert done.json()["agreed_terms"]["commission_percent"] == 5.0
    versions = beds.get(f"/v1/partnerships/{ptn}/terms").json()["data"]
    assert [v["version"] for v in versions] == [1, 2]


def test_pause_resume_end_and_nothing_after(shops: tuple[Shop, Shop]) -> None:
    beds, care = shops
    ptn = _propose(beds, care).json()
    sha = care.get(f"/v1/partnerships/{ptn['id']}").json()["pending_terms"]["agreement_sha256"]
    care.post(f"/v1/partnerships/{ptn['id']}/accept", {"terms_version": 1, "agreement_sha256": sha})
    assert beds.post(f"/v1/partnerships/{ptn['id']}/pause").json()["state"] == "paused"
    refused = care.post(f"/v1/partnerships/{ptn['id']}/resume")
    assert refused.status_code == 409
    assert refused.json()["param"] == "action"
    assert beds.post(f"/v1/partnerships/{ptn['id']}/resume").json()["state"] == "active"
    assert care.post(f"/v1/partnerships/{ptn['id']}/end").json()["state"] == "ended"
    after = beds.post(f"/v1/partnerships/{ptn['id']}/pause")
    assert after.status_code == 409
    assert "ended" in after.json()["detail"]


@pytest.mark.parametrize(
    ("terms", "param"),
    [
        ({"commission_percent": 150.0}, "commission_percent"),
        ({"cap_per_7_days": -1}, "cap_per_7_days"),
        ({"my_offer_categories": ["cat_unknown"]}, "my_offer_categories"),
        ({"attribution_window_days": 400}, "attribution_window_days"),
    ],
)
def test_terms_out_of_range_are_refused(shops: tuple[Shop, Shop], terms: dict[str, Any], param: str) -> None:
    beds, care = shops
    response = _propose(beds, care, **terms)
    assert response.status_code == 422
    assert response.json()["param"] == param
    assert beds.get("/v1/partnerships").json()["data"] == []


def test_partnering_with_oneself_or_twice_is_refused(shops: tuple[Shop, Shop]) -> None:
    beds, care = shops
    itself = beds.post("/v1/partnerships", {"partner_tenant_id": beds.tenant.id, "terms": terms_body()})
    assert itself.status_code == 422
    assert itself.json()["param"] == "partner_tenant_id"
    unknown = beds.post("/v1/partnerships", {"partner_tenant_id": "ten_nobody", "terms": terms_body()})
    assert unknown.status_code == 404
    assert unknown.json()["param"] == "partner_tenant_id"
    assert _propose(beds, care).status_code == 201
    twice = _propose(care, beds)
    assert twice.status_code == 409
    assert twice.json()["param"] == "partner_tenant_id"


def test_a_stranger_sees_nothing(
    shops: tuple[Shop, Shop], client: TestClient, make_tenant: Callable[..., Tenant], token_for: Callable[..., str]
) -> None:
    beds, care = shops
    ptn = _propose(beds, care).json()["id"]
    stranger_tenant = make_tenant()
    stranger = Shop(client, stranger_tenant, token_for(SCOPES, tenant=stranger_tenant))
    assert stranger.get(f"/v1/partnerships/{ptn}").status_code == 404
    assert stranger.get(f"/v1/partnerships/{ptn}/history").status_code == 404
    assert stranger.post(f"/v1/partnerships/{ptn}/end").status_code == 404
    assert stranger.get("/v1/partnerships").json()["data"] == []

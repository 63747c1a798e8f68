"""Partner discovery with the demo retailers: the pet-care shop first, the rival bed shop left out."""

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlmodel import Session

from partners import demo
from tests.factories_partners import CARE_CATEGORIES


def _token_of(tenant_id: str, session: Session, token_for: Callable[..., str]) -> str:
    from partners.retailers import get_tenant

    return token_for(["partners:read"], tenant=get_tenant(session, tenant_id))


def test_the_pet_bed_shop_is_pointed_to_the_pet_care_shop(
    client: TestClient, session: Session, token_for: Callable[..., str]
) -> None:
    tenants = demo.seed(session).tenants
    session.commit()
    token = _token_of(tenants["pet-beds"], session, token_for)
    found = client.get("/v1/partner-suggestions", headers={"Authorization": f"Bearer {token}"}).json()["data"]
    assert found[0]["partner"]["tenant_id"] == tenants["pet-care"]
    assert found[0]["partner"]["display_name"] == "Pawsome Care"
    assert "Pet Supplies" in found[0]["explanation"]
    assert "no overlapping" in found[0]["explanation"]
    assert tenants["rival-beds"] not in [s["partner"]["tenant_id"] for s in found]

    with_rivals = client.get(
        "/v1/partner-suggestions",
        params={"include_competitors": "true"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()["data"]
    rival = next(s for s in with_rivals if s["partner"]["tenant_id"] == tenants["rival-beds"])
    assert rival["competitor"] is True
    assert "Designer Dog Beds" in rival["explanation"]
    assert rival["score"] < found[0]["score"]


def test_filters_and_hidden_profiles(
    client: TestClient, make_profile: Callable[..., object], token_for: Callable[..., str], session: Session
) -> None:
    me = make_profile(display_name="Beds")
    make_profile(display_name="Care GB", categories=CARE_CATEGORIES)
    make_profile(display_name="Care hidden", categories=CARE_CATEGORIES, discoverable=False)
    make_profile(display_name="Care US", categories=CARE_CATEGORIES, regions=["US"], currencies=["USD"])
    token = token_for(["partners:read"], tenant=me)
    headers = {"Authorization": f"Bearer {token}"}
    names = [
        s["partner"]["display_name"] for s in client.get("/v1/partner-suggestions", headers=headers).json()["data"]
    ]
    assert names == ["Care GB"]
    in_us = client.get("/v1/partner-suggestions", params={"region": "US"}, headers=headers).json()["data"]
    assert in_us == []
    bad = client.get("/v1/partner-suggestions", params={"region": "usa"}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["param"] == "region"


def test_discovery_needs_a_profile_first(client: TestClient, token_for: Callable[..., str]) -> None:
    response = client.get("/v1/partner-suggestions", headers={"Authorization": f"Bearer {token_for()}"})
    assert response.status_code == 404
    assert "PUT /v1/profile" in response.json()["detail"]


def test_demo_seeding_is_idempotent(session: Session) -> None:
    first = demo.seed(session)
    second = demo.seed(session)
    assert len(first.created) == 3
    assert second.created == []
    assert second.tenants == first.tenants

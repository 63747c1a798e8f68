"""The retailer profile and the taxonomy over HTTP."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories_partners import BED_CATEGORIES


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _profile(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "display_name": "Snoozy Paws Beds",
        "website": "https://snoozypaws.example",
        "categories": BED_CATEGORIES,
        "regions": ["GB", "IE"],
        "currencies": ["GBP"],
        "price_positioning": "premium",
        "blocked_categories": ["cat_dry_dog_food"],
    }
    body.update(overrides)
    return body


def test_a_retailer_describes_itself_and_reads_it_back(client: TestClient, token_for: Callable[..., str]) -> None:
    token = token_for()
    assert client.get("/v1/profile", headers=_auth(token)).status_code == 404
    saved = client.put("/v1/profile", json=_profile(), headers=_auth(token))
    assert saved.status_code == 200, saved.text
    read = client.get("/v1/profile", headers=_auth(token)).json()
    assert read["categories"] == BED_CATEGORIES
    assert read["regions"] == ["GB", "IE"]
    assert read["discoverable"] is True
    changed = client.put("/v1/profile", json=_profile(price_positioning="mid"), headers=_auth(token)).json()
    assert changed["price_positioning"] == "mid"


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"categories": {"cat_nope": 1.0}}, "categories"),
        ({"categories": {}}, "categories"),
        ({"categories": {"cat_dog_beds": 0.8, "cat_cat_beds": 0.5}}, "categories"),
        ({"regions": ["UK1"]}, "regions"),
        ({"currencies": ["pounds"]}, "currencies"),
        ({"price_positioning": "luxury"}, "price_positioning"),
        ({"blocked_categories": ["cat_designer_dog_beds"]}, "blocked_categories"),
        ({"website": "ftp://x"}, "website"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_profiles_are_refused_and_change_nothing(
    client: TestClient, token_for: Callable[..., str], overrides: dict[str, Any], param: str
) -> None:
    token = token_for()
    client.put("/v1/profile", json=_profile(), headers=_auth(token))
    response = client.put("/v1/profile", json=_profile(**overrides), headers=_auth(token))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["param"] == param
    assert client.get("/v1/profile", headers=_auth(token)).json()["categories"] == BED_CATEGORIES


def test_profile_writes_need_their_scope(client: TestClient, token_for: Callable[..., str]) -> None:
    token = token_for(["profile:read"])
    response = client.put("/v1/profile", json=_profile(), headers=_auth(token))
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"


def test_the_taxonomy_can_be_browsed_and_searched(client: TestClient, token_for: Callable[..., str]) -> None:
    token = token_for(["profile:read"])
    roots = client.get("/v1/taxonomy", headers=_auth(token)).json()
    assert "Pet Supplies" in [c["name"] for c in roots["data"]]
    assert roots["version"]
    node = client.get("/v1/taxonomy/cat_dog_supplies", headers=_auth(token)).json()
    assert node["path"] == "Pet Supplies > Dog Supplies"
    assert "cat_dog_beds" in [c["id"] for c in node["children"]]
    found = client.get("/v1/taxonomy/search", params={"q": "flea"}, headers=_auth(token)).json()
    assert found["data"][0]["id"] == "cat_flea_tick"
    missing = client.get("/v1/taxonomy/cat_nope", headers=_auth(token))
    assert missing.status_code == 404
    assert missing.json()["param"] == "category_id"

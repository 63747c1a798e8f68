"""/docs is served with Swagger UI's files from us: no CDN, no third-party script beside staff tokens."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_the_docs_page_loads_only_our_own_files(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources, "the docs page names no script or stylesheet"
    assert all(source.startswith("/docs/assets/") for source in sources), sources
    assert "cdn." not in page.text and "https://" not in page.text
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200, source
        assert len(asset.content) > 1000, source
    assert "usePkceWithAuthorizationCodeGrant" in page.text and "partnerloop-docs" in page.text


def test_the_oauth2_redirect_page_is_served(client: TestClient) -> None:
    page = client.get("/docs/oauth2-redirect")
    assert page.status_code == 200
    assert "swaggerUIRedirectOauth2" in page.text
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"


def test_a_missing_asset_is_a_plain_404(client: TestClient) -> None:
    assert client.get("/docs/assets/../../etc/passwd").status_code == 404
    assert client.get("/docs/assets/nope.js").status_code == 404

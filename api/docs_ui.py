"""The interactive docs (/docs), with Swagger UI's files served by us rather than from a CDN.

A page that holds a staff member's access token should not run a third party's script, and the
docs must work where the service cannot reach the internet (air-gapped installs, CI). The files
come from the `swagger-ui-py` package, which ships Swagger UI's distribution.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
REDIRECT_PATH = "/docs/oauth2-redirect"
ASSETS_PATH = "/docs/assets"


def swagger_ui_files() -> Path:
    """Swagger UI's distribution, as installed with swagger-ui-py (found without importing it)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: reinstall partnerloop (pip install -e .)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def install(app: FastAPI) -> None:
    """Serve /docs, its OAuth2 redirect page and Swagger UI's files (create the app with docs_url=None)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=swagger_ui_files()), name="swagger-ui")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
            oauth2_redirect_url=REDIRECT_PATH,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(REDIRECT_PATH, include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

"""/docs in a real browser: a marketer authorizes through our login page (authorization code +
PKCE), creates an offer with "Try it out" and reads it back, as a person would.

Headless Chromium from Debian (`apt-get install chromium chromium-driver`) driven by Playwright's
Python package as a driver only (never `playwright install`). Without Chromium the test is skipped
with the reason, unless PARTNERLOOP_REQUIRE_BROWSER=1 (set by .ci/run), which makes it a failure.
Screenshots of every open page are saved on failure (PARTNERLOOP_SCREENSHOTS, else the test's tmp dir).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from partners.db import make_engine, unit_of_work
from partners.migrate import upgrade
from partners.scopes import Role
from tests.factories_offers import offer_body
from tests.fuzz.__main__ import BIN, free_port, server_env

CHROMIUM = Path(os.environ.get("PARTNERLOOP_CHROMIUM", "/usr/bin/chromium"))
REQUIRED = os.environ.get("PARTNERLOOP_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MARKETER_EMAIL = "marketer@snoozy.example"
MARKETER_PASSWORD = "a marketer's long passphrase"  # a throwaway database's login
# Generous: a step takes well under a second on an idle machine, but CI machines can be busy.
STEP_TIMEOUT_MS = 30_000

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("PARTNERLOOP_TEST_DATABASE_URL")),
    reason="serves its own SQLite database whatever the test database: run once, in the SQLite pass",
)


def _browser_or_skip() -> Any:
    """Playwright's sync API, or a skip (a failure under PARTNERLOOP_REQUIRE_BROWSER=1) saying what is missing."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium chromium-driver)")
    api: Any = None
    try:
        from playwright import sync_api as api
    except ImportError:
        missing.append("the playwright package (pip install -e '.[dev]')")
    if missing:
        reason = "the docs UI browser test needs " + " and ".join(missing)
        if REQUIRED:
            pytest.fail(reason + "; PARTNERLOOP_REQUIRE_BROWSER=1 makes a missing browser a failure")
        pytest.skip(reason)
    return api


@dataclass
class Server:
    url: str
    tenant_id: str


def _seed(database_url: str) -> str:
    """A retailer (its owner) and a marketer who accepted an invitation: the retailer's id."""
    from partners import staff

    upgrade(database_url)
    engine = make_engine(database_url)
    with unit_of_work(engine) as session:
        created = staff.sign_up(session, "Snoozy Paws Beds", "owner@snoozy.example", secrets.token_urlsafe(24))
        invited = staff.invite(session, created.tenant.id, created.owner.id, MARKETER_EMAIL, Role.marketer)
        staff.accept_invitation(session, invited.token, MARKETER_PASSWORD)
        tenant_id = created.tenant.id
    engine.dispose()
    return tenant_id


@pytest.fixture
def sync_api() -> Any:
    """Playwright, checked before the server is started (a skip costs nothing)."""
    return _browser_or_skip()


@pytest.fixture
def server(sync_api: Any, tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = server_env(tmp_path, url, f"sqlite:///{tmp_path / 'docs.db'}")
    tenant_id = _seed(env["PARTNERLOOP_DATABASE_URL"])
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            [str(BIN / "partnerloop"), "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the server did not come up:\n{log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield Server(url, tenant_id)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _operation_id(url: str, method: str, path: str) -> str:
    """Swagger UI's element id of an operation: `operations-{tag}-{operationId}`."""
    spec = httpx.get(f"{url}/openapi.json").json()["paths"][path][method]
    return f"operations-{spec['tags'][0]}-{spec['operationId']}"


def _response_of(block: Any, status: int) -> dict[str, Any]:
    """The live response Swagger UI shows under an executed operation, as JSON."""
    live = block.locator(".live-responses-table .response")
    live.locator(".response-col_status", has_text=str(status)).wait_for(timeout=STEP_TIMEOUT_MS)
    shown = live.locator(".response-col_description pre").first.inner_text()
    answer: dict[str, Any] = json.loads(shown)
    return answer


def _screenshots(context: Any, directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    saved = []
    for number, page in enumerate(context.pages):
        path = directory / f"docs-browser-{number}.png"
        page.screenshot(path=str(path))
        saved.append(str(path))
    return saved


def test_a_marketer_authorizes_creates_an_offer_and_reads_it_back(
    sync_api: Any, server: Server, tmp_path: Path
) -> None:
    started = time.perf_counter()
    steps: list[str] = []

    def step(name: str) -> None:
        steps.append(f"{name} {time.perf_counter() - started:.1f}s")

    create_id = _operation_id(server.url, "post", "/v1/offers")
    read_id = _operation_id(server.url, "get", "/v1/offers/{offer_id}")
    body = offer_body(title="Try-it-out cushions, 15% off", percent_off=15)
    with sync_api.sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh user-data dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
        )
        context.set_default_timeout(STEP_TIMEOUT_MS)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            step("browser up")
            page.goto(f"{server.url}/docs")
            page.locator("button.authorize").first.click()
            step("docs shown")

            # The authorization code flow's part of the dialog: client id preset, PKCE on; pick the scopes.
            flow = page.locator(".auth-container", has_text="Flow: authorizationCode")
            for scope in ("offers:read", "offers:write"):
                flow.locator(f"label[for*='{scope}']").first.click()
            with context.expect_page() as opened:
                flow.locator("button.authorize").click()
            login = opened.value
            login.wait_for_load_state()
            assert "/login" in login.url, login.url
            login.fill("input[name=email]", MARKETER_EMAIL)
            login.fill("input[name=password]", MARKETER_PASSWORD)
            login.locator("button[type=submit], input[type=submit]").first.click()
            # Swagger UI exchanged the code for a token (at /oauth/token, with the PKCE verifier).
            flow.get_by_role("button", name="Remove authorization").wait_for()  # "Logout"
            assert login.is_closed(), "the redirect page handed the code back but did not close"
            page.locator(".modal-ux button.close-modal").first.click()
            step("authorized")

            create = page.locator(f"#{create_id}")
            create.locator(".opblock-summary").click()
            create.locator("button.try-out__btn").click()
            create.locator("textarea.body-param__text").fill(json.dumps(body))
            create.locator("button.execute").click()
            created = _response_of(create, 201)
            step("created")
            assert created["id"].startswith("off_"), created
            assert (created["status"], created["content"]["title"]) == ("draft", body["title"]), created

            read = page.locator(f"#{read_id}")
            read.locator(".opblock-summary").click()
            read.locator("button.try-out__btn").click()
            read.locator("tr[data-param-name='offer_id'] input").fill(created["id"])
            read.locator("button.execute").click()
            shown = _response_of(read, 200)
            step("read back")
            assert (shown["id"], shown["content"]["title"]) == (created["id"], body["title"]), shown
            assert shown["content"]["percent_off"] == 15
        except Exception as exc:
            saved = _screenshots(context, Path(os.environ.get("PARTNERLOOP_SCREENSHOTS", tmp_path)))
            dialog = page.locator(".modal-ux").all_inner_texts() if context.pages else []
            raise AssertionError(
                f"{exc}\nsteps: {', '.join(steps)}\ndialog: {dialog}\nscreenshots: {', '.join(saved)}"
            ) from exc
        finally:
            context.close()
    print(f"docs browser test: {time.perf_counter() - started:.1f} s in the browser ({', '.join(steps)})")

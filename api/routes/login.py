"""The staff login page (server-rendered, CSRF-protected, throttled) and logout."""

from __future__ import annotations

import html
import time
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.auth.login import LOGIN_COOKIE, LoginSession, csrf_ok, issue_csrf, write_login
from api.deps import SessionDep, SettingsDep
from partners import login_throttle, staff
from partners.errors import RateLimited
from partners.settings import Settings

router = APIRouter(include_in_schema=False)

GENERIC_FAILURE = "Those credentials did not work. Check the email and password and try again."


def _safe_next(target: str | None) -> str:
    # Only our own authorization endpoint or the docs: never an open redirect.
    if target and (target.startswith("/oauth/authorize?") or target == "/docs"):
        return target
    return "/docs"


def _page(settings: Settings, *, next_url: str, email: str = "", error: str = "", status: int = 200) -> HTMLResponse:
    response = HTMLResponse("", status_code=status, headers={"Cache-Control": "no-store"})
    csrf = issue_csrf(response, settings)
    template = files("api").joinpath("templates/login.html").read_text()
    body = (
        template.replace("{csrf_token}", html.escape(csrf))
        .replace("{next}", html.escape(next_url))
        .replace("{email}", html.escape(email))
        .replace("{error}", f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "")
    )
    response.body = response.render(body)
    response.headers["content-length"] = str(len(response.body))
    return response


@router.get("/login")
def login_page(settings: SettingsDep, next: str | None = None) -> HTMLResponse:
    return _page(settings, next_url=_safe_next(next))


@router.post("/login")
async def login(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    form = await request.form()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    next_url = _safe_next(str(form.get("next", "")))
    if not csrf_ok(request, settings, str(form.get("csrf_token", ""))):
        return _page(settings, next_url=next_url, email=email, error="The form expired; please try again.", status=403)
    address = request.client.host if request.client else "unknown"
    try:
        await run_in_threadpool(login_throttle.check, session, email, address)
    except RateLimited as exc:
        page = _page(settings, next_url=next_url, email=email, error=exc.detail, status=429)
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    user = await run_in_threadpool(staff.authenticate, session, email, password)
    if user is None:
        await run_in_threadpool(login_throttle.record_failure, session, email, address)
        return _page(settings, next_url=next_url, email=email, error=GENERIC_FAILURE, status=401)
    await run_in_threadpool(login_throttle.clear, session, email)
    response = RedirectResponse(next_url, status_code=303)
    write_login(response, settings, LoginSession(user.id, user.tenant_id, int(time.time())))
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response

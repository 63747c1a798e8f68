"""The customer's own preference page, opened from a signed link: see and withdraw consents.

No login: the signed, expiring link identifies the customer. Forms carry a CSRF token bound
to a SameSite=Strict cookie, the page may not be framed, and `Sec-GPC: 1` counts as
withdrawing every partner purpose.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.deps import SessionDep, SettingsDep
from api.preference_links import CSRF_COOKIE, CSRF_TTL, LinkHolder, csrf_ok, new_csrf, read_link
from partners import consent, consent_ledger, customers, retailers
from partners.consent_ledger import ConsentState
from partners.consent_rules import ALL_PARTNERS, Method, Purpose, Source
from partners.customers import Customer
from partners.errors import DomainError, NotFound
from partners.settings import Settings

router = APIRouter(include_in_schema=False)

CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
GPC_NOTE = (
    "Your browser sent a Global Privacy Control signal. We treat it as withdrawing your consent "
    "to every partner purpose."
)
DONE_NOTE = "Done: your choice is recorded and applies immediately."

_PURPOSE_TEXT = {
    Purpose.partner_offers: "Offers from partner shops",
    Purpose.partner_contact_sharing: "Sharing your contact details with a partner shop",
    Purpose.overlap_analysis: "Being counted, anonymously, when the shops measure how many customers they share",
}


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        body,
        status_code=status,
        headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP, "X-Robots-Tag": "noindex"},
    )


def _message(title: str, text: str, status: int) -> HTMLResponse:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">'
        f"<title>{html.escape(title)}</title></head><body><main><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(text)}</p></main></body></html>"
    )
    return _html(body, status)


def _expired() -> HTMLResponse:
    return _message("This link is not valid any more", "Ask the shop for a new link to your choices.", 404)


@dataclass(frozen=True)
class PageData:
    shop: str
    customer: Customer
    states: list[ConsentState]
    partner_names: dict[str, str]


def _load(session: Session, holder: LinkHolder) -> PageData | None:
    try:
        customer = customers.get_customer_by_id(session, holder.tenant_id, holder.customer_id)
    except NotFound:
        return None  # erased since the link was sent
    states = list(consent_ledger.current_state(session, holder.tenant_id, customer.id))
    names: dict[str, str] = {}
    for partner in {s.partner for s in states} - {ALL_PARTNERS}:
        try:
            names[partner] = retailers.get_tenant(session, partner).name
        except NotFound:
            names[partner] = "a former partner shop"
    return PageData(retailers.get_tenant(session, holder.tenant_id).name, customer, states, names)


def _origin(request: Request) -> consent.RequestOrigin:
    return consent.RequestOrigin(
        ip=request.client.host if request.client else None,
        user_agent=(request.headers.get("user-agent") or "")[:500] or None,
    )


def _honour_gpc(session: Session, holder: LinkHolder, request: Request) -> bool:
    """Withdraw every partner purpose still in force; False when the customer is gone."""
    try:
        customer = customers.get_customer_by_id(session, holder.tenant_id, holder.customer_id)
    except NotFound:
        return False
    consent.withdraw_all_partner_purposes(
        session,
        holder.tenant_id,
        customer,
        method=Method.global_privacy_control,
        source=Source.preference_page,
        origin=_origin(request),
    )
    return True


def _row(data: PageData, state: ConsentState, csrf: str, action: str) -> str:
    purpose = html.escape(_PURPOSE_TEXT.get(Purpose(state.purpose), state.purpose))
    if state.partner == ALL_PARTNERS:
        scope = f"All of {data.shop}'s partner shops"
    else:
        scope = data.partner_names[state.partner]
    day = state.decided_at.date().isoformat()
    status = {"granted": f"Given on {day}", "pending": "Waiting for you to confirm by email"}.get(
        state.status, f"Withdrawn on {day}"
    )
    button = ""
    if state.status != "withdrawn":
        button = _form(action, csrf, state.purpose, state.partner, "Withdraw")
    return (
        f'<li><div><strong>{purpose}</strong><span class="scope">{html.escape(scope)}</span>'
        f'<span class="status">{html.escape(status)}</span></div>{button}</li>'
    )


def _form(action: str, csrf: str, purpose: str, partner: str, label: str) -> str:
    return (
        f'<form method="post" action="{html.escape(action)}">'
        f'<input type="hidden" name="csrf_token" value="{html.escape(csrf)}">'
        f'<input type="hidden" name="purpose" value="{html.escape(purpose)}">'
        f'<input type="hidden" name="partner" value="{html.escape(partner)}">'
        f'<button type="submit">{html.escape(label)}</button></form>'
    )


def _render(settings: Settings, data: PageData, token: str, notes: list[str]) -> HTMLResponse:
    nonce, csrf = new_csrf(settings, data.customer.id)
    action = f"/preferences/{token}"
    if data.states:
        rows = "<ul>" + "".join(_row(data, s, csrf, action) for s in data.states) + "</ul>"
    else:
        rows = "<p>You have not agreed to anything about partner shops.</p>"
    live = any(s.status != "withdrawn" for s in data.states)
    everything = _form(action, csrf, "all", ALL_PARTNERS, "Withdraw everything") if live else ""
    template = files("api").joinpath("templates/preferences.html").read_text()
    body = (
        template.replace("{shop}", html.escape(data.shop))
        .replace("{notes}", "".join(f'<p class="note" role="status">{html.escape(n)}</p>' for n in notes))
        .replace("{rows}", rows)
        .replace("{all_button}", f'<div class="all">{everything}</div>' if everything else "")
    )
    response = _html(body)
    response.set_cookie(
        CSRF_COOKIE,
        nonce,
        max_age=CSRF_TTL,
        httponly=True,
        samesite="strict",
        secure=settings.is_production,
        path="/preferences",
    )
    return response


GpcHeader = Annotated[str | None, Header(alias="Sec-GPC")]


@router.get("/preferences/{token}")
def preference_page(
    token: str, request: Request, session: SessionDep, settings: SettingsDep, sec_gpc: GpcHeader = None
) -> Response:
    holder = read_link(settings, token)
    if holder is None:
        return _expired()
    notes = [DONE_NOTE] if request.query_params.get("done") == "1" else []
    if sec_gpc == "1" and _honour_gpc(session, holder, request):
        notes.append(GPC_NOTE)
    data = _load(session, holder)
    if data is None:
        return _message("Nothing held about you", "This shop holds no data about you any more.", 404)
    return _render(settings, data, token, notes)


@router.post("/preferences/{token}")
async def withdraw_from_page(
    token: str, request: Request, session: SessionDep, settings: SettingsDep, sec_gpc: GpcHeader = None
) -> Response:
    holder = read_link(settings, token)
    if holder is None:
        return _expired()
    form = await request.form()
    if not csrf_ok(settings, holder.customer_id, str(form.get("csrf_token", "")), request.cookies.get(CSRF_COOKIE)):
        return _message("This page expired", "Open your link again and repeat your choice.", 403)
    purpose, partner = str(form.get("purpose", "")), str(form.get("partner", ""))
    if purpose != "all" and purpose not in set(Purpose):
        return _message("Unknown choice", "Open your link again and repeat your choice.", 400)
    purposes = tuple(Purpose) if purpose == "all" else (Purpose(purpose),)

    def withdraw() -> None:
        customer = customers.get_customer_by_id(session, holder.tenant_id, holder.customer_id)
        origin = _origin(request)
        consent.withdraw(
            session,
            holder.tenant_id,
            customer.external_id,
            method=Method.preference_link,
            source=Source.preference_page,
            purposes=purposes,
            partner=partner,
            origin=origin,
        )
        if sec_gpc == "1":
            _honour_gpc(session, holder, request)

    try:
        await run_in_threadpool(withdraw)
    except NotFound:
        session.rollback()
        return _message("Nothing held about you", "This shop holds no data about you any more.", 404)
    except DomainError:
        session.rollback()
        return _message("Unknown choice", "Open your link again and repeat your choice.", 400)
    return RedirectResponse(f"/preferences/{token}?done=1", status_code=303)

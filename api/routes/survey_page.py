"""The customer's survey page, opened from a signed link: answer once, in the shop's name.

Plain HTML forms (fieldsets, legends, labels; no JavaScript), a CSRF token bound to a
SameSite=Strict cookie, no framing. A bad, expired or answered link gets a clear page and
nothing is stored. After answering, the page may show one partner thank-you offer, chosen by
the exchange like any placement (consent, targeting and caps apply).
"""

from __future__ import annotations

import html
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.deps import SessionDep, SettingsDep
from api.preference_links import CSRF_TTL, csrf_ok, new_csrf
from api.routes.preferences import CSP
from api.survey_links import CSRF_COOKIE, CSRF_PURPOSE, read_link
from partners import exchange, retailers, survey_answers
from partners.db import utcnow
from partners.errors import Invalid
from partners.exchange import OfferShown
from partners.settings import Settings
from partners.survey_answers import AlreadyAnswered, OpenLink
from partners.survey_rules import Question, QuestionKind

router = APIRouter(include_in_schema=False)
FIELD_PREFIX = "q."


def _page(title: str, shop: str, body: str, status: int = 200) -> HTMLResponse:
    template = files("api").joinpath("templates/survey.html").read_text()
    text = template.replace("{title}", html.escape(title)).replace("{shop}", html.escape(shop)).replace("{body}", body)
    headers = {"Cache-Control": "no-store", "Content-Security-Policy": CSP, "X-Robots-Tag": "noindex"}
    return HTMLResponse(text, status_code=status, headers=headers)


def _message(title: str, text: str, status: int, shop: str = "Survey") -> HTMLResponse:
    return _page(title, shop, f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>", status)


def _invalid_link() -> HTMLResponse:
    return _message(
        "This survey link is not valid any more",
        "It may have expired, or it was changed on the way. Nothing was recorded. Ask the shop for a new link.",
        404,
    )


def _answered(shop: str) -> HTMLResponse:
    return _message(
        "You have answered this survey already", "Thank you! Your first answer is the one we keep.", 409, shop
    )


def _choices(question: Question, name: str, kind: str) -> str:
    return "".join(
        f'<label class="choice"><input type="{kind}" name="{name}" value="{html.escape(c.id)}"> '
        f"{html.escape(c.label)}</label>"
        for c in question.choices
    )


def _scale(question: Question, name: str, hint_id: str) -> str:
    boxes = "".join(
        f'<label><input type="radio" name="{name}" value="{n}" aria-describedby="{hint_id}">{n}</label>'
        for n in range(0, 11)
    )
    low, high = question.low_label or "0", question.high_label or "10"
    hint = f'<p class="hint" id="{hint_id}">0 = {html.escape(low)}, 10 = {html.escape(high)}</p>'
    return hint + f'<div class="scale">{boxes}</div>'


def _question(index: int, question: Question) -> str:
    name = html.escape(FIELD_PREFIX + question.id)
    mark = " (required)" if question.required else ""
    legend = f"<legend>{index}. {html.escape(question.text)}{mark}</legend>"
    if question.kind is QuestionKind.text:
        field_id = f"q-{html.escape(question.id)}"
        return (
            f'<div class="question"><label for="{field_id}">{index}. {html.escape(question.text)}{mark}</label>'
            f'<textarea id="{field_id}" name="{name}" maxlength="500"></textarea></div>'
        )
    if question.kind is QuestionKind.scale:
        inner = _scale(question, name, f"hint-{html.escape(question.id)}")
    else:
        kind = "radio" if question.kind is QuestionKind.single_choice else "checkbox"
        inner = _choices(question, name, kind)
        if kind == "checkbox":
            inner = '<p class="hint">Choose all that apply.</p>' + inner
    return f"<fieldset>{legend}{inner}</fieldset>"


def _shop_name(session: Session, tenant_id: str) -> str:
    return retailers.get_tenant(session, tenant_id).name


def _form(settings: Settings, opened: OpenLink, shop: str, token: str, error: str | None, status: int) -> Response:
    nonce, csrf = new_csrf(settings, opened.customer.id, CSRF_PURPOSE)
    d = opened.definition
    alert = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    questions = "".join(_question(i, q) for i, q in enumerate(d.questions, start=1))
    body = (
        f"<h1>{html.escape(d.title)}</h1><p>{html.escape(shop)} asks: {html.escape(d.intro)}</p>{alert}"
        f'<form method="post" action="/surveys/{html.escape(token)}">'
        f'<input type="hidden" name="csrf_token" value="{html.escape(csrf)}">{questions}'
        '<button type="submit">Send my answers</button></form>'
        f'<p class="hint">Your answers go to {html.escape(shop)} only.</p>'
    )
    response = _page(d.title, shop, body, status)
    response.set_cookie(
        CSRF_COOKIE,
        nonce,
        max_age=CSRF_TTL,
        httponly=True,
        samesite="strict",
        secure=settings.is_production,
        path="/surveys",
    )
    return response


def _offer(shown: OfferShown) -> str:
    o = shown.offer
    code = f'<p>Your code: <span class="code">{html.escape(shown.code)}</span></p>' if shown.code else ""
    return (
        f'<section class="offer" aria-labelledby="offer-title"><h2 id="offer-title">A thank-you from '
        f"{html.escape(shown.partner_name)}</h2><p><strong>{html.escape(o.title)}</strong></p>"
        f"<p>{html.escape(o.description)}</p>{code}"
        f'<p><a href="{html.escape(o.landing_url)}" rel="noopener">'
        f"See the offer at {html.escape(shown.partner_name)}</a></p>"
        "</section>"
    )


def _thanks(shop: str, offer: OfferShown | None) -> HTMLResponse:
    body = f"<h1>Thank you!</h1><p>Your answers are with {html.escape(shop)}.</p>"
    return _page("Thank you", shop, body + (_offer(offer) if offer else ""))


@router.get("/surveys/{token}")
def survey_page(token: str, session: SessionDep, settings: SettingsDep) -> Response:
    holder = read_link(settings, token)
    opened = survey_answers.open_link(session, holder.tenant_id, holder.link_id, utcnow()) if holder else None
    if opened is None:
        return _invalid_link()
    shop = _shop_name(session, opened.link.tenant_id)
    if opened.link.answered_at is not None:
        return _answered(shop)
    return _form(settings, opened, shop, token, None, 200)


def _thank_you_offer(session: Session, settings: Settings, opened: OpenLink) -> OfferShown | None:
    if not opened.survey.thank_you_offer:
        return None
    request = exchange.ExchangeRequest(opened.customer.external_id, exchange.Placement.survey_thank_you, limit=1)
    key = settings.secret_key.get_secret_value().encode()
    result = exchange.answer(session, opened.link.tenant_id, request, now=utcnow(), code_key=key)
    return result.offers[0] if result.offers else None


@router.post("/surveys/{token}")
async def answer_survey(token: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    holder = read_link(settings, token)
    if holder is None:
        return _invalid_link()
    form = await request.form()
    csrf = str(form.get("csrf_token", ""))
    sent: dict[str, list[str]] = {}
    for name, value in form.multi_items():
        if name.startswith(FIELD_PREFIX) and isinstance(value, str):
            sent.setdefault(name[len(FIELD_PREFIX) :], []).append(value)

    def record() -> Response:
        opened = survey_answers.open_link(session, holder.tenant_id, holder.link_id, utcnow())
        if opened is None:
            return _invalid_link()
        shop = _shop_name(session, holder.tenant_id)
        if not csrf_ok(settings, opened.customer.id, csrf, request.cookies.get(CSRF_COOKIE), CSRF_PURPOSE):
            return _message("This page expired", "Open your link again and send your answers again.", 403, shop)
        try:
            survey_answers.record_response(session, opened, sent, utcnow())
        except AlreadyAnswered:
            session.rollback()
            return _answered(shop)
        except Invalid as exc:
            session.rollback()
            return _form(settings, opened, shop, token, exc.detail, 400)
        return _thanks(shop, _thank_you_offer(session, settings, opened))

    return await run_in_threadpool(record)

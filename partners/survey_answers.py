"""Per-customer survey links, the answers given through them (once per link), and their aggregates.

A link is issued for one customer and one survey version and expires; its signed token (made at
the edge, `api/survey_links.py`) carries only the tenant and the link id. An answer is stored at
most once per link: the response row is unique on the link. Answers to a defection survey are
also attached to the customer (`CustomerDefection`), and every answer queues `survey.answered`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import JSON, ForeignKeyConstraint, Index, UniqueConstraint, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col

from partners import outbox, surveys
from partners import survey_rules as rules
from partners.customers import Customer, get_customer
from partners.db import UTCDateTime, keyset_page, owned, utcnow
from partners.errors import Conflict, Invalid, NotFound
from partners.ids import new_id
from partners.survey_rules import Answer, Definition, Purpose

SURVEY_ANSWERED = "survey.answered"
DEFAULT_TTL_DAYS = 30
MAX_TTL_DAYS = 90
_CUSTOMER_FK = (["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"])
_VERSION_FK = (
    ["tenant_id", "survey_id", "version"],
    ["survey_versions.tenant_id", "survey_versions.survey_id", "survey_versions.version"],
)


class AlreadyAnswered(Conflict):
    code = "survey_already_answered"
    title = "Already answered"


class SurveyLink(SQLModel, table=True):
    __tablename__ = "survey_links"
    __table_args__ = (
        ForeignKeyConstraint(*_CUSTOMER_FK, ondelete="CASCADE"),
        ForeignKeyConstraint(*_VERSION_FK, ondelete="CASCADE"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40)
    id: str = Field(default_factory=lambda: new_id("sln"), primary_key=True, max_length=40)
    survey_id: str = Field(max_length=40)
    version: int
    customer_id: str = Field(max_length=40)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SurveyResponse(SQLModel, table=True):
    __tablename__ = "survey_responses"
    __table_args__ = (
        UniqueConstraint("tenant_id", "link_id", name="uq_survey_responses_link"),
        ForeignKeyConstraint(
            ["tenant_id", "link_id"], ["survey_links.tenant_id", "survey_links.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(*_CUSTOMER_FK, ondelete="CASCADE"),
        Index("ix_survey_responses_version", "tenant_id", "survey_id", "version"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40)
    id: str = Field(default_factory=lambda: new_id("svr"), primary_key=True, max_length=40)
    link_id: str = Field(max_length=40)
    survey_id: str = Field(max_length=40)
    version: int
    customer_id: str = Field(max_length=40)
    answered_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SurveyAnswer(SQLModel, table=True):
    """One value of one answer: a chosen choice, a score or a text (several rows for multiple choice)."""

    __tablename__ = "survey_answers"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "response_id"], ["survey_responses.tenant_id", "survey_responses.id"], ondelete="CASCADE"
        ),
    )

    tenant_id: str = Field(primary_key=True, max_length=40)
    response_id: str = Field(primary_key=True, max_length=40)
    question_id: str = Field(primary_key=True, max_length=40)
    position: int = Field(primary_key=True)
    choice_id: str | None = Field(default=None, max_length=40)
    score: int | None = None
    text: str | None = Field(default=None, max_length=rules.MAX_TEXT)


class CustomerDefection(SQLModel, table=True):
    """Why a customer said they stopped buying: their latest defection-survey answer."""

    __tablename__ = "customer_defections"
    __table_args__ = (ForeignKeyConstraint(*_CUSTOMER_FK, ondelete="CASCADE"),)

    tenant_id: str = Field(primary_key=True, max_length=40)
    customer_id: str = Field(primary_key=True, max_length=40)
    reasons: list[str] = Field(default_factory=list, sa_type=JSON)
    comment: str | None = Field(default=None, max_length=rules.MAX_TEXT)
    response_id: str = Field(max_length=40)
    answered_at: datetime = Field(sa_type=UTCDateTime)


def issue_link(
    session: Session, tenant_id: str, survey_id: str, external_id: str, ttl_days: int, now: datetime
) -> SurveyLink:
    """A link for one customer to the survey's latest version, valid for `ttl_days`."""
    if not 1 <= ttl_days <= MAX_TTL_DAYS:
        raise Invalid(f"ttl_days must be 1–{MAX_TTL_DAYS}.", param="ttl_days")
    survey = surveys.get(session, tenant_id, survey_id)
    customer = get_customer(session, tenant_id, external_id)
    link = SurveyLink(
        tenant_id=tenant_id,
        survey_id=survey.id,
        version=survey.latest_version,
        customer_id=customer.id,
        expires_at=now + timedelta(days=ttl_days),
    )
    session.add(link)
    session.flush()
    return link


@dataclass(frozen=True)
class OpenLink:
    link: SurveyLink
    survey: surveys.Survey
    definition: Definition
    customer: Customer


def open_link(session: Session, tenant_id: str, link_id: str, now: datetime) -> OpenLink | None:
    """What a link shows, or None when it is unknown, expired, or its customer was erased."""
    link = session.get(SurveyLink, (tenant_id, link_id))
    if link is None or link.expires_at <= now:
        return None
    customer = session.get(Customer, (tenant_id, link.customer_id))
    if customer is None:
        return None
    survey = surveys.get(session, tenant_id, link.survey_id)
    version = surveys.get_version(session, tenant_id, link.survey_id, link.version)
    return OpenLink(link, survey, surveys.definition_of(version), customer)


def record_response(
    session: Session, opened: OpenLink, sent: Mapping[str, Sequence[str]], now: datetime
) -> SurveyResponse:
    """Store the answers given through a link, once; AlreadyAnswered the second time."""
    link = opened.link
    if link.answered_at is not None:
        raise AlreadyAnswered("This survey was answered already through this link.", param="link")
    answers = rules.check_answers(opened.definition, sent)
    response = SurveyResponse(
        tenant_id=link.tenant_id,
        link_id=link.id,
        survey_id=link.survey_id,
        version=link.version,
        customer_id=link.customer_id,
        answered_at=now,
    )
    try:
        with session.begin_nested():
            session.add(response)
            session.flush()
    except IntegrityError as exc:
        raise AlreadyAnswered("This survey was answered already through this link.", param="link") from exc
    session.add_all(_answer_rows(response, answers))
    link.answered_at = now
    session.add(link)
    session.flush()
    if opened.survey.purpose == Purpose.defection:
        _attach_defection(session, opened, response, answers)
    outbox.emit(
        session,
        link.tenant_id,
        SURVEY_ANSWERED,
        {
            "survey_id": link.survey_id,
            "version": link.version,
            "purpose": opened.survey.purpose,
            "response_id": response.id,
            "customer_id": link.customer_id,
            "customer_external_id": opened.customer.external_id,
            "answered_at": now.isoformat(),
        },
    )
    return response


def _answer_rows(response: SurveyResponse, answers: Sequence[Answer]) -> list[SurveyAnswer]:
    rows = []
    for answer in answers:
        tenant, response_id, question = response.tenant_id, response.id, answer.question_id
        if answer.choices:
            rows += [
                SurveyAnswer(tenant_id=tenant, response_id=response_id, question_id=question, position=i, choice_id=c)
                for i, c in enumerate(answer.choices)
            ]
        else:
            rows.append(
                SurveyAnswer(
                    tenant_id=tenant,
                    response_id=response_id,
                    question_id=question,
                    position=0,
                    score=answer.score,
                    text=answer.text,
                )
            )
    return rows


def _attach_defection(session: Session, opened: OpenLink, response: SurveyResponse, answers: Sequence[Answer]) -> None:
    reasons = [choice for answer in answers for choice in answer.choices]
    comment = " ".join(answer.text for answer in answers if answer.text) or None
    key = (response.tenant_id, response.customer_id)
    row = session.get(CustomerDefection, key) or CustomerDefection(
        tenant_id=key[0], customer_id=key[1], response_id=response.id, answered_at=response.answered_at
    )
    row.reasons, row.comment = reasons, comment
    row.response_id, row.answered_at = response.id, response.answered_at
    session.add(row)
    session.flush()


def defection_of(session: Session, tenant_id: str, customer_id: str) -> CustomerDefection | None:
    """The customer's latest answer to a defection survey, if any."""
    return session.get(CustomerDefection, (tenant_id, customer_id))


@dataclass(frozen=True)
class Aggregates:
    survey_id: str
    version: int
    responses: int
    questions: list[rules.QuestionSummary]


def aggregates(session: Session, tenant_id: str, survey_id: str, version: int | None) -> Aggregates:
    """Counts per choice, score distributions and NPS for one version (the latest by default)."""
    survey = surveys.get(session, tenant_id, survey_id)
    number = version if version is not None else survey.latest_version
    definition = surveys.definition_of(surveys.get_version(session, tenant_id, survey_id, number))
    a, r = SurveyAnswer, SurveyResponse
    of_version = (
        col(r.tenant_id) == tenant_id,
        col(r.survey_id) == survey_id,
        col(r.version) == number,
        col(a.tenant_id) == col(r.tenant_id),
        col(a.response_id) == col(r.id),
    )
    counts = session.execute(
        select(col(a.question_id), col(a.choice_id), col(a.score), func.count())
        .where(*of_version)
        .group_by(col(a.question_id), col(a.choice_id), col(a.score))
    ).all()
    answered = session.execute(
        select(col(a.question_id), func.count(func.distinct(col(a.response_id))))
        .where(*of_version)
        .group_by(col(a.question_id))
    ).all()
    responses = session.execute(
        select(func.count()).where(
            col(r.tenant_id) == tenant_id, col(r.survey_id) == survey_id, col(r.version) == number
        )
    ).scalar_one()
    summary = rules.summarize(
        definition,
        [(str(q), c, s, int(n)) for q, c, s, n in counts],
        {str(q): int(n) for q, n in answered},
    )
    return Aggregates(survey_id, number, int(responses), summary)


@dataclass(frozen=True)
class ResponseView:
    response: SurveyResponse
    external_id: str
    answers: list[SurveyAnswer]


def list_responses(
    session: Session, tenant_id: str, survey_id: str, after: str | None, limit: int
) -> tuple[list[ResponseView], bool]:
    """The survey's responses with their answers, oldest first, a page at a time."""
    surveys.get(session, tenant_id, survey_id)
    query = owned(SurveyResponse, tenant_id).where(col(SurveyResponse.survey_id) == survey_id)
    rows, more = keyset_page(session, query, SurveyResponse, after, limit)
    ids = [row.id for row in rows]
    by_response: dict[str, list[SurveyAnswer]] = {i: [] for i in ids}
    customers: dict[str, str] = {}
    if ids:
        answers = owned(SurveyAnswer, tenant_id).where(col(SurveyAnswer.response_id).in_(ids))
        for answer in session.exec(answers.order_by(col(SurveyAnswer.question_id), col(SurveyAnswer.position))):
            by_response[answer.response_id].append(answer)
        wanted = owned(Customer, tenant_id).where(col(Customer.id).in_({row.customer_id for row in rows}))
        customers = {c.id: c.external_id for c in session.exec(wanted)}
    views = [ResponseView(row, customers.get(row.customer_id, ""), by_response[row.id]) for row in rows]
    return views, more


def get_link(session: Session, tenant_id: str, link_id: str) -> SurveyLink:
    """One of the tenant's links."""
    found = session.get(SurveyLink, (tenant_id, link_id))
    if found is None:
        raise NotFound(f"No survey link with id '{link_id}'.", param="link_id")
    return found

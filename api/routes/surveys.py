"""Surveys: create them (from a template or your own questions), version them, send links, read answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.auth.principal import SurveysRead, SurveysWrite
from api.deps import SessionDep, SettingsDep
from api.idempotency import IdempotentRoute
from api.pagination import Page, Paging
from api.survey_links import link_url
from partners import survey_answers, surveys
from partners import survey_rules as rules
from partners.db import utcnow
from partners.errors import Invalid
from partners.survey_rules import Choice, Definition, Purpose, Question, QuestionKind

router = APIRouter(prefix="/v1", tags=["surveys"], route_class=IdempotentRoute)


class ChoiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(max_length=40, description="Stable id: a–z, 0–9, '_'")
    label: str = Field(max_length=rules.MAX_LABEL)


class QuestionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(max_length=40, description="Stable id: a–z, 0–9, '_'")
    kind: QuestionKind
    text: str = Field(max_length=rules.MAX_LABEL)
    choices: list[ChoiceIn] = Field(default_factory=list, max_length=rules.MAX_CHOICES)
    required: StrictBool = False
    low_label: str | None = Field(default=None, max_length=60, description="scale: what 0 means")
    high_label: str | None = Field(default=None, max_length=60, description="scale: what 10 means")


class DefinitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(max_length=rules.MAX_LABEL)
    intro: str = Field(default="", max_length=1000)
    questions: list[QuestionIn] = Field(max_length=20, description="1–5 questions")

    def domain(self) -> Definition:
        return Definition(
            self.title,
            self.intro,
            tuple(
                Question(
                    q.id,
                    q.kind,
                    q.text,
                    tuple(Choice(c.id, c.label) for c in q.choices),
                    q.required,
                    q.low_label,
                    q.high_label,
                )
                for q in self.questions
            ),
        )


class SurveyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: str | None = Field(default=None, max_length=40, description="`experience` or `defection`")
    purpose: Purpose | None = Field(default=None, description="With your own questions: default `custom`")
    definition: DefinitionIn | None = Field(default=None, description="Your own questions, instead of a template")
    thank_you_offer: StrictBool = Field(default=False, description="Show one partner offer after answering")


class SurveyPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    thank_you_offer: StrictBool


class ChoiceOut(BaseModel):
    id: str
    label: str


class QuestionOut(BaseModel):
    id: str
    kind: QuestionKind
    text: str
    choices: list[ChoiceOut]
    required: bool
    low_label: str | None
    high_label: str | None


class SurveyOut(BaseModel):
    id: str
    purpose: Purpose
    template: str | None
    version: int = Field(description="The latest version: new links ask it")
    title: str
    intro: str
    questions: list[QuestionOut]
    thank_you_offer: bool
    created_at: datetime
    updated_at: datetime


def _out(survey: surveys.Survey, version: surveys.SurveyVersion) -> SurveyOut:
    d = surveys.definition_of(version)
    return SurveyOut(
        id=survey.id,
        purpose=Purpose(survey.purpose),
        template=survey.template,
        version=version.version,
        title=d.title,
        intro=d.intro,
        questions=[
            QuestionOut(
                id=q.id,
                kind=q.kind,
                text=q.text,
                choices=[ChoiceOut(id=c.id, label=c.label) for c in q.choices],
                required=q.required,
                low_label=q.low_label,
                high_label=q.high_label,
            )
            for q in d.questions
        ],
        thank_you_offer=survey.thank_you_offer,
        created_at=survey.created_at,
        updated_at=survey.updated_at,
    )


@router.post("/surveys", status_code=201, summary="Create a survey from a built-in template or your own questions")
def create_survey(body: SurveyIn, caller: SurveysWrite, session: SessionDep) -> SurveyOut:
    if (body.template is None) == (body.definition is None):
        raise Invalid("Give either a template or a definition with your own questions.", param="template")
    if body.template is not None:
        if body.purpose is not None:
            raise Invalid("A template sets its own purpose.", param="purpose")
        purpose, definition = surveys.template(body.template)
    else:
        assert body.definition is not None
        purpose, definition = body.purpose or Purpose.custom, body.definition.domain()
    survey, version = surveys.create(
        session,
        caller.tenant_id,
        purpose,
        definition,
        template_name=body.template,
        thank_you_offer=body.thank_you_offer,
    )
    return _out(survey, version)


@router.get("/surveys", summary="Your surveys, oldest first")
def list_surveys(caller: SurveysRead, session: SessionDep, paging: Paging) -> Page[SurveyOut]:
    rows, more = surveys.list_surveys(session, caller.tenant_id, paging.after, paging.limit)
    found = [_out(s, surveys.get_version(session, caller.tenant_id, s.id, s.latest_version)) for s in rows]
    return paging.page(found, more, rows[-1].id if rows else None)


@router.get("/surveys/{survey_id}", summary="One survey, its latest version or another")
def get_survey(
    survey_id: str,
    caller: SurveysRead,
    session: SessionDep,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> SurveyOut:
    survey = surveys.get(session, caller.tenant_id, survey_id)
    number = version or survey.latest_version
    return _out(survey, surveys.get_version(session, caller.tenant_id, survey_id, number))


@router.post("/surveys/{survey_id}/versions", status_code=201, summary="Reword the survey: a new version for new links")
def add_version(survey_id: str, body: DefinitionIn, caller: SurveysWrite, session: SessionDep) -> SurveyOut:
    version = surveys.add_version(session, caller.tenant_id, survey_id, body.domain())
    return _out(surveys.get(session, caller.tenant_id, survey_id), version)


@router.patch("/surveys/{survey_id}", summary="Turn the partner thank-you offer on or off")
def patch_survey(survey_id: str, body: SurveyPatchIn, caller: SurveysWrite, session: SessionDep) -> SurveyOut:
    survey = surveys.set_thank_you_offer(session, caller.tenant_id, survey_id, body.thank_you_offer)
    return _out(survey, surveys.get_version(session, caller.tenant_id, survey_id, survey.latest_version))


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_external_id: str = Field(min_length=1, max_length=128)
    ttl_days: int = Field(default=survey_answers.DEFAULT_TTL_DAYS, ge=1, le=survey_answers.MAX_TTL_DAYS)


class LinkOut(BaseModel):
    id: str
    survey_id: str
    version: int
    url: str = Field(description="Send it to the customer: it opens the survey without a login, until it expires")
    expires_at: datetime


@router.post("/surveys/{survey_id}/links", status_code=201, summary="A signed, expiring survey link for one customer")
def issue_link(
    survey_id: str, body: LinkIn, caller: SurveysWrite, session: SessionDep, settings: SettingsDep
) -> LinkOut:
    now = utcnow()
    link = survey_answers.issue_link(
        session, caller.tenant_id, survey_id, body.customer_external_id, body.ttl_days, now
    )
    return LinkOut(
        id=link.id,
        survey_id=link.survey_id,
        version=link.version,
        url=link_url(settings, caller.tenant_id, link.id, link.expires_at, now),
        expires_at=link.expires_at,
    )


class NetPromoterOut(BaseModel):
    promoters: int
    passives: int
    detractors: int
    score: float = Field(description="% promoters (9–10) − % detractors (0–6), −100 to 100")


class QuestionSummaryOut(BaseModel):
    question_id: str
    kind: QuestionKind
    answered: int
    choices: dict[str, int] = Field(description="Choice questions: responses per choice id")
    scores: dict[str, int] = Field(description="Scale questions: responses per score 0–10")
    mean_score: float | None
    net_promoter: NetPromoterOut | None


class AggregatesOut(BaseModel):
    survey_id: str
    version: int
    responses: int
    questions: list[QuestionSummaryOut]


@router.get("/surveys/{survey_id}/aggregates", summary="Counts per choice, score distributions, net promoter score")
def get_aggregates(
    survey_id: str,
    caller: SurveysRead,
    session: SessionDep,
    version: Annotated[int | None, Query(ge=1, le=1_000_000, description="Default: the latest")] = None,
) -> AggregatesOut:
    found = survey_answers.aggregates(session, caller.tenant_id, survey_id, version)
    return AggregatesOut(
        survey_id=found.survey_id,
        version=found.version,
        responses=found.responses,
        questions=[
            QuestionSummaryOut(
                question_id=q.question_id,
                kind=q.kind,
                answered=q.answered,
                choices=q.choices,
                scores={str(s): n for s, n in q.scores.items()},
                mean_score=q.mean_score,
                net_promoter=NetPromoterOut(**vars(q.net_promoter)) if q.net_promoter else None,
            )
            for q in found.questions
        ],
    )


class AnswerOut(BaseModel):
    question_id: str
    choices: list[str]
    score: int | None
    text: str | None


class ResponseOut(BaseModel):
    id: str
    survey_id: str
    version: int
    customer_id: str
    customer_external_id: str
    answered_at: datetime
    answers: list[AnswerOut]


def _answers(rows: list[survey_answers.SurveyAnswer]) -> list[AnswerOut]:
    grouped: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = grouped.setdefault(row.question_id, {"choices": [], "score": None, "text": None})
        if row.choice_id is not None:
            entry["choices"].append(row.choice_id)
        entry["score"] = row.score if row.score is not None else entry["score"]
        entry["text"] = row.text if row.text is not None else entry["text"]
    return [AnswerOut(question_id=q, **v) for q, v in grouped.items()]


@router.get("/surveys/{survey_id}/responses", summary="Each answer given, with the customer, oldest first")
def list_responses(survey_id: str, caller: SurveysRead, session: SessionDep, paging: Paging) -> Page[ResponseOut]:
    views, more = survey_answers.list_responses(session, caller.tenant_id, survey_id, paging.after, paging.limit)
    found = [
        ResponseOut(
            id=v.response.id,
            survey_id=v.response.survey_id,
            version=v.response.version,
            customer_id=v.response.customer_id,
            customer_external_id=v.external_id,
            answered_at=v.response.answered_at,
            answers=_answers(v.answers),
        )
        for v in views
    ]
    return paging.page(found, more, views[-1].response.id if views else None)

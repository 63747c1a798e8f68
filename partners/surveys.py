"""A retailer's surveys and their versions (questions never change once a version exists).

Links and answers always name the version they were for, so a survey can be reworded without
mixing answers to different questions. See docs/retention.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKeyConstraint
from sqlmodel import Field, Session, SQLModel, col

from partners import survey_rules as rules
from partners.db import UTCDateTime, get_owned, keyset_page, owned, utcnow
from partners.errors import Invalid, NotFound
from partners.ids import new_id
from partners.survey_rules import Choice, Definition, Purpose, Question, QuestionKind


class Survey(SQLModel, table=True):
    __tablename__ = "surveys"

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(default_factory=lambda: new_id("svy"), primary_key=True, max_length=40)
    purpose: str = Field(max_length=20)
    template: str | None = Field(default=None, max_length=40)
    latest_version: int = 1
    # After answering, the page asks the exchange for one partner offer (consent rules apply).
    thank_you_offer: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SurveyVersion(SQLModel, table=True):
    __tablename__ = "survey_versions"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "survey_id"], ["surveys.tenant_id", "surveys.id"], ondelete="CASCADE"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40)
    survey_id: str = Field(primary_key=True, max_length=40)
    version: int = Field(primary_key=True)
    title: str = Field(max_length=rules.MAX_LABEL)
    intro: str = Field(default="", max_length=1000)
    questions: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def questions_json(questions: Sequence[Question]) -> list[dict[str, Any]]:
    """Questions as stored."""
    return [
        {
            "id": q.id,
            "kind": str(q.kind),
            "text": q.text,
            "choices": [{"id": c.id, "label": c.label} for c in q.choices],
            "required": q.required,
            "low_label": q.low_label,
            "high_label": q.high_label,
        }
        for q in questions
    ]


def definition_of(version: SurveyVersion) -> Definition:
    """The stored version as the rules see it."""
    questions = tuple(
        Question(
            id=q["id"],
            kind=QuestionKind(q["kind"]),
            text=q["text"],
            choices=tuple(Choice(c["id"], c["label"]) for c in q.get("choices", [])),
            required=bool(q.get("required", False)),
            low_label=q.get("low_label"),
            high_label=q.get("high_label"),
        )
        for q in version.questions
    )
    return Definition(version.title, version.intro, questions)


def template(name: str) -> tuple[Purpose, Definition]:
    """A built-in template by name; Invalid naming the known ones otherwise."""
    if name not in rules.TEMPLATES:
        known = ", ".join(sorted(rules.TEMPLATES))
        raise Invalid(f"No template '{name[:40]}'; the built-in templates are {known}.", param="template")
    return rules.TEMPLATES[name]


def create(
    session: Session,
    tenant_id: str,
    purpose: Purpose,
    definition: Definition,
    *,
    template_name: str | None = None,
    thank_you_offer: bool = False,
) -> tuple[Survey, SurveyVersion]:
    """A new survey with its first version."""
    rules.check_definition(definition)
    survey = Survey(tenant_id=tenant_id, purpose=str(purpose), template=template_name, thank_you_offer=thank_you_offer)
    session.add(survey)
    session.flush()
    return survey, _add_version(session, survey, 1, definition)


def _add_version(session: Session, survey: Survey, number: int, definition: Definition) -> SurveyVersion:
    version = SurveyVersion(
        tenant_id=survey.tenant_id,
        survey_id=survey.id,
        version=number,
        title=definition.title,
        intro=definition.intro,
        questions=questions_json(definition.questions),
    )
    session.add(version)
    session.flush()
    return version


def add_version(session: Session, tenant_id: str, survey_id: str, definition: Definition) -> SurveyVersion:
    """A new version of the questions; new links ask it, answers to older links keep theirs."""
    rules.check_definition(definition)
    survey = get(session, tenant_id, survey_id, for_update=True)
    survey.latest_version += 1
    survey.updated_at = utcnow()
    session.add(survey)
    return _add_version(session, survey, survey.latest_version, definition)


def set_thank_you_offer(session: Session, tenant_id: str, survey_id: str, enabled: bool) -> Survey:
    """Turn the partner thank-you offer after answering on or off."""
    survey = get(session, tenant_id, survey_id, for_update=True)
    survey.thank_you_offer, survey.updated_at = enabled, utcnow()
    session.add(survey)
    session.flush()
    return survey


def get(session: Session, tenant_id: str, survey_id: str, *, for_update: bool = False) -> Survey:
    """The tenant's survey; NotFound otherwise."""
    if for_update:
        query = owned(Survey, tenant_id).where(col(Survey.id) == survey_id).with_for_update()
        found = session.exec(query).first()
        if found is None:
            raise NotFound(f"No survey with id '{survey_id}'.", param="survey_id")
        return found
    return get_owned(session, Survey, tenant_id, survey_id)


def get_version(session: Session, tenant_id: str, survey_id: str, version: int) -> SurveyVersion:
    """One version of the tenant's survey."""
    found = session.get(SurveyVersion, (tenant_id, survey_id, version))
    if found is None:
        raise NotFound(f"Survey '{survey_id}' has no version {version}.", param="version")
    return found


def list_surveys(session: Session, tenant_id: str, after: str | None, limit: int) -> tuple[Sequence[Survey], bool]:
    """The tenant's surveys, oldest first, a page at a time."""
    return keyset_page(session, owned(Survey, tenant_id), Survey, after, limit)

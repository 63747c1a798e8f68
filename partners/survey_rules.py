"""Survey rules as pure functions: what a valid survey is, what a valid answer is, and the aggregates.

A survey version has 1–5 questions: single choice, multiple choice, a 0–10 scale, or short
text. Answers arrive as form fields (question id → the values sent); each is checked against
its question before anything is stored. The two built-in templates live here too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from partners.errors import Invalid

MAX_QUESTIONS = 5
MAX_CHOICES = 12
MAX_TEXT = 500
MAX_LABEL = 200
SCALE_MIN, SCALE_MAX = 0, 10
_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class QuestionKind(StrEnum):
    single_choice = "single_choice"
    multiple_choice = "multiple_choice"
    scale = "scale"  # 0–10
    text = "text"  # short text, up to MAX_TEXT characters


class Purpose(StrEnum):
    experience = "experience"
    defection = "defection"  # answers are attached to the customer
    custom = "custom"


@dataclass(frozen=True)
class Choice:
    id: str
    label: str


@dataclass(frozen=True)
class Question:
    id: str
    kind: QuestionKind
    text: str
    choices: tuple[Choice, ...] = ()
    required: bool = False
    low_label: str | None = None  # scale only: what 0 means
    high_label: str | None = None  # and 10


@dataclass(frozen=True)
class Definition:
    title: str
    intro: str
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class Answer:
    question_id: str
    choices: tuple[str, ...] = ()
    score: int | None = None
    text: str | None = None


def _check_id(value: str, param: str) -> None:
    if not _ID.match(value):
        raise Invalid(
            f"'{value[:50]}' is not a valid id: 1–40 of a–z, 0–9 and '_', starting with a letter.", param=param
        )


def _check_label(value: str, param: str, limit: int = MAX_LABEL) -> None:
    if not value.strip():
        raise Invalid("This text must not be empty.", param=param)
    if len(value) > limit:
        raise Invalid(f"At most {limit} characters.", param=param)


def _check_question(question: Question, where: str) -> None:
    _check_id(question.id, f"{where}.id")
    _check_label(question.text, f"{where}.text")
    choosing = question.kind in (QuestionKind.single_choice, QuestionKind.multiple_choice)
    if choosing:
        if not 2 <= len(question.choices) <= MAX_CHOICES:
            raise Invalid(f"A choice question has 2–{MAX_CHOICES} choices.", param=f"{where}.choices")
        seen: set[str] = set()
        for index, choice in enumerate(question.choices):
            _check_id(choice.id, f"{where}.choices.{index}.id")
            _check_label(choice.label, f"{where}.choices.{index}.label")
            if choice.id in seen:
                raise Invalid(f"Choice id '{choice.id}' appears twice.", param=f"{where}.choices.{index}.id")
            seen.add(choice.id)
    elif question.choices:
        raise Invalid(f"A {question.kind} question has no choices.", param=f"{where}.choices")
    for name in ("low_label", "high_label"):
        label = getattr(question, name)
        if label is None:
            continue
        if question.kind is not QuestionKind.scale:
            raise Invalid(f"{name} is only for scale questions.", param=f"{where}.{name}")
        _check_label(label, f"{where}.{name}", 60)


def check_definition(definition: Definition) -> Definition:
    """Invalid, naming the field, for a survey that cannot be shown."""
    _check_label(definition.title, "title")
    if len(definition.intro) > 1000:
        raise Invalid("At most 1000 characters.", param="intro")
    if not 1 <= len(definition.questions) <= MAX_QUESTIONS:
        raise Invalid(f"A survey has 1–{MAX_QUESTIONS} questions, to keep it short.", param="questions")
    seen: set[str] = set()
    for index, question in enumerate(definition.questions):
        _check_question(question, f"questions.{index}")
        if question.id in seen:
            raise Invalid(f"Question id '{question.id}' appears twice.", param=f"questions.{index}.id")
        seen.add(question.id)
    return definition


def _one_answer(question: Question, values: Sequence[str]) -> Answer | None:
    param = f"answers.{question.id}"
    values = [v for v in values if v.strip()] if question.kind is not QuestionKind.text else list(values)
    if question.kind is QuestionKind.text:
        text = " ".join(v.strip() for v in values).strip()
        if len(text) > MAX_TEXT:
            raise Invalid(f"Please keep your answer under {MAX_TEXT} characters.", param=param)
        return Answer(question.id, text=text) if text else None
    if not values:
        return None
    if question.kind is QuestionKind.scale:
        if len(values) != 1 or not re.fullmatch(r"\d{1,2}", values[0].strip()):
            raise Invalid("Choose one number from 0 to 10.", param=param)
        score = int(values[0])
        if not SCALE_MIN <= score <= SCALE_MAX:
            raise Invalid("Choose one number from 0 to 10.", param=param)
        return Answer(question.id, score=score)
    known = {choice.id for choice in question.choices}
    picked = list(dict.fromkeys(v.strip() for v in values))
    if any(v not in known for v in picked):
        raise Invalid("That is not one of the choices.", param=param)
    if question.kind is QuestionKind.single_choice and len(picked) > 1:
        raise Invalid("Choose one answer.", param=param)
    return Answer(question.id, choices=tuple(picked))


def check_answers(definition: Definition, sent: Mapping[str, Sequence[str]]) -> tuple[Answer, ...]:
    """The answers to store, in question order; Invalid for unknown questions, bad values, missing required ones."""
    by_id = {question.id: question for question in definition.questions}
    for question_id in sent:
        if question_id not in by_id:
            raise Invalid("This survey has no such question.", param=f"answers.{question_id[:50]}")
    answers = []
    for question in definition.questions:
        answer = _one_answer(question, sent.get(question.id, ()))
        if answer is None:
            if question.required:
                raise Invalid("Please answer this question.", param=f"answers.{question.id}")
            continue
        answers.append(answer)
    if not answers:
        raise Invalid("Answer at least one question.", param="answers")
    return tuple(answers)


# --- aggregates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetPromoter:
    promoters: int  # 9–10
    passives: int  # 7–8
    detractors: int  # 0–6
    score: float  # % promoters − % detractors, −100 to 100


@dataclass
class QuestionSummary:
    question_id: str
    kind: QuestionKind
    answered: int = 0
    choices: dict[str, int] = field(default_factory=dict)
    scores: dict[int, int] = field(default_factory=dict)
    mean_score: float | None = None
    net_promoter: NetPromoter | None = None


def net_promoter(scores: Mapping[int, int]) -> NetPromoter | None:
    """Net promoter score from a 0–10 distribution (None without answers)."""
    total = sum(scores.values())
    if total == 0:
        return None
    promoters = sum(n for s, n in scores.items() if s >= 9)
    detractors = sum(n for s, n in scores.items() if s <= 6)
    passives = total - promoters - detractors
    return NetPromoter(promoters, passives, detractors, round(100.0 * (promoters - detractors) / total, 1))


def summarize(
    definition: Definition,
    counts: Iterable[tuple[str, str | None, int | None, int]],
    answered: Mapping[str, int],
) -> list[QuestionSummary]:
    """Per question: how many answered, counts per choice, the score distribution, mean and NPS.

    `counts` are (question id, choice id, score, how many) rows; `answered` is, per question,
    the number of responses that answered it (a multiple-choice answer counts once).
    """
    summaries = {
        q.id: QuestionSummary(
            q.id,
            q.kind,
            answered=answered.get(q.id, 0),
            choices={c.id: 0 for c in q.choices},
            scores=dict.fromkeys(range(SCALE_MIN, SCALE_MAX + 1), 0) if q.kind is QuestionKind.scale else {},
        )
        for q in definition.questions
    }
    for question_id, choice, score, count in counts:
        summary = summaries.get(question_id)
        if summary is None:
            continue
        if choice is not None and choice in summary.choices:
            summary.choices[choice] += count
        elif score is not None and score in summary.scores:
            summary.scores[score] += count
    for summary in summaries.values():
        scored = sum(summary.scores.values())
        if summary.kind is QuestionKind.scale and scored:
            summary.mean_score = round(sum(s * n for s, n in summary.scores.items()) / scored, 2)
            summary.net_promoter = net_promoter(summary.scores)
    return list(summaries.values())


# --- the built-in templates ------------------------------------------------------------------


def _choices(*pairs: tuple[str, str]) -> tuple[Choice, ...]:
    return tuple(Choice(i, label) for i, label in pairs)


TEMPLATES: dict[str, tuple[Purpose, Definition]] = {
    "experience": (
        Purpose.experience,
        Definition(
            title="How was your order?",
            intro="Four quick questions help us do better. It takes under a minute.",
            questions=(
                Question(
                    "found_us",
                    QuestionKind.single_choice,
                    "How did you find us?",
                    _choices(
                        ("search", "A search engine"),
                        ("social", "Social media"),
                        ("friend", "A friend or family member"),
                        ("partner_shop", "Another shop recommended us"),
                        ("other", "Somewhere else"),
                    ),
                ),
                Question(
                    "experience",
                    QuestionKind.scale,
                    "How was your shopping experience?",
                    low_label="Very poor",
                    high_label="Excellent",
                ),
                Question(
                    "checkout",
                    QuestionKind.single_choice,
                    "Was checkout easy or confusing?",
                    _choices(("easy", "Easy"), ("okay", "It was okay"), ("confusing", "Confusing")),
                ),
                Question(
                    "recommend",
                    QuestionKind.scale,
                    "How likely are you to recommend us to a friend?",
                    low_label="Not at all likely",
                    high_label="Extremely likely",
                ),
                Question("anything_else", QuestionKind.text, "Anything we could do better?"),
            ),
        ),
    ),
    "defection": (
        Purpose.defection,
        Definition(
            title="We miss you",
            intro="You have not ordered for a while. Would you tell us why? Your answer goes straight to us.",
            questions=(
                Question(
                    "reason",
                    QuestionKind.multiple_choice,
                    "Why did you stop buying from us?",
                    _choices(
                        ("price", "Prices were too high or unfair"),
                        ("complaint", "A complaint was not resolved"),
                        ("competitor", "I took another shop's offer"),
                        ("not_cared_for", "I felt you didn't care about me"),
                        ("other", "Something else"),
                    ),
                    required=True,
                ),
                Question("details", QuestionKind.text, "Anything you would like to add?"),
            ),
        ),
    ),
}

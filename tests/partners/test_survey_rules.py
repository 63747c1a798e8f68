"""Survey rules: valid definitions, valid answers, aggregates and net promoter score."""

from __future__ import annotations

from dataclasses import replace

import pytest

from partners import survey_rules as rules
from partners.errors import Invalid
from partners.survey_rules import Choice, Definition, Question, QuestionKind

EXPERIENCE = rules.TEMPLATES["experience"][1]
DEFECTION = rules.TEMPLATES["defection"][1]


def test_the_built_in_templates_are_valid_and_short() -> None:
    for _purpose, definition in rules.TEMPLATES.values():
        assert rules.check_definition(definition) is definition
        assert len(definition.questions) <= rules.MAX_QUESTIONS
    reasons = {c.id for c in DEFECTION.questions[0].choices}
    assert reasons == {"price", "complaint", "competitor", "not_cared_for", "other"}


def question(n: int) -> Question:
    return Question(f"q{n}", QuestionKind.scale, f"Question {n}?")


@pytest.mark.parametrize(
    ("definition", "param"),
    [
        (Definition("Six", "", tuple(question(n) for n in range(6))), "questions"),
        (Definition("None", "", ()), "questions"),
        (Definition("Empty", "", (Question("a", QuestionKind.single_choice, "Pick?"),)), "questions.0.choices"),
        (
            Definition(
                "Blank", "", (Question("a", QuestionKind.single_choice, "Pick?", (Choice("x", " "), Choice("y", "Y"))),)
            ),
            "questions.0.choices.0.label",
        ),
        (
            Definition(
                "Twice",
                "",
                (Question("a", QuestionKind.multiple_choice, "Pick?", (Choice("x", "X"), Choice("x", "Y"))),),
            ),
            "questions.0.choices.1.id",
        ),
        (Definition("Dup", "", (question(1), question(1))), "questions.1.id"),
        (Definition("Bad id", "", (Question("Bad Id", QuestionKind.text, "Say?"),)), "questions.0.id"),
        (Definition(" ", "", (question(1),)), "title"),
        (
            Definition("Labels", "", (Question("t", QuestionKind.text, "Say?", low_label="no"),)),
            "questions.0.low_label",
        ),
    ],
)
def test_bad_definitions_are_refused_naming_the_field(definition: Definition, param: str) -> None:
    with pytest.raises(Invalid) as refused:
        rules.check_definition(definition)
    assert refused.value.param == param


def test_answers_are_checked_and_kept_in_question_order() -> None:
    answers = rules.check_answers(
        EXPERIENCE,
        {"recommend": ["9"], "found_us": ["search"], "anything_else": ["  Faster delivery "], "checkout": [""]},
    )
    assert [a.question_id for a in answers] == ["found_us", "recommend", "anything_else"]
    assert answers[1].score == 9 and answers[0].choices == ("search",) and answers[2].text == "Faster delivery"
    several = rules.check_answers(DEFECTION, {"reason": ["price", "competitor", "price"]})
    assert several[0].choices == ("price", "competitor")


@pytest.mark.parametrize(
    ("sent", "param"),
    [
        ({"colour": ["red"]}, "answers.colour"),
        ({"recommend": ["11"]}, "answers.recommend"),
        ({"recommend": ["-1"]}, "answers.recommend"),
        ({"recommend": ["ten"]}, "answers.recommend"),
        ({"recommend": ["3", "4"]}, "answers.recommend"),
        ({"found_us": ["search", "social"]}, "answers.found_us"),
        ({"found_us": ["billboard"]}, "answers.found_us"),
        ({"anything_else": ["x" * 501]}, "answers.anything_else"),
        ({}, "answers"),
    ],
)
def test_bad_answers_are_refused(sent: dict[str, list[str]], param: str) -> None:
    with pytest.raises(Invalid) as refused:
        rules.check_answers(EXPERIENCE, sent)
    assert refused.value.param == param


def test_a_required_question_must_be_answered() -> None:
    with pytest.raises(Invalid) as refused:
        rules.check_answers(DEFECTION, {"details": ["just because"]})
    assert refused.value.param == "answers.reason"


def test_net_promoter_score_is_promoters_minus_detractors() -> None:
    nps = rules.net_promoter({10: 5, 9: 1, 8: 2, 7: 0, 6: 1, 0: 1})
    assert nps is not None and (nps.promoters, nps.passives, nps.detractors) == (6, 2, 2)
    assert nps.score == 40.0
    assert rules.net_promoter({}) is None


def test_summaries_count_choices_and_scores_per_question() -> None:
    counts = [
        ("found_us", "search", None, 3),
        ("found_us", "friend", None, 1),
        ("recommend", None, 10, 2),
        ("recommend", None, 4, 2),
    ]
    found = {s.question_id: s for s in rules.summarize(EXPERIENCE, counts, {"found_us": 4, "recommend": 4})}
    assert found["found_us"].choices == {"search": 3, "social": 0, "friend": 1, "partner_shop": 0, "other": 0}
    assert found["recommend"].scores[10] == 2 and sum(found["recommend"].scores.values()) == 4
    assert found["recommend"].mean_score == 7.0 and found["recommend"].net_promoter is not None
    assert found["recommend"].net_promoter.score == 0.0
    assert found["checkout"].answered == 0 and found["checkout"].net_promoter is None
    assert replace(found["found_us"]).answered == 4

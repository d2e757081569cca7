"""One problem-type table: every spelling means the same type to data loading, rewards, judges and metrics."""

from __future__ import annotations

import pytest

from lit_videor2.data.schema import RecordError, parse_record
from lit_videor2.judges import RuleBasedJudge
from lit_videor2.metrics.functional import answer_matches
from lit_videor2.problem_types import (
    PROBLEM_TYPE_ALIASES,
    PROBLEM_TYPES,
    UnknownProblemTypeError,
    canonical_problem_type,
    is_multiple_choice,
)
from lit_videor2.rewards.accuracy import accuracy_score

# The union of the spellings the three former copies accepted (data/schema.py, rewards/accuracy.py, judges/base.py).
ALIASES = [
    ("multiple choice", "multiple choice"),
    ("Multiple Choice", "multiple choice"),
    ("multiple_choice", "multiple choice"),
    ("multiple-choice", "multiple choice"),
    ("MCQ", "multiple choice"),
    ("mc", "multiple choice"),
    ("numerical", "numerical"),
    ("numeric", "numerical"),
    ("regression", "regression"),
    ("ocr", "OCR"),
    ("OCR", "OCR"),
    ("free-form", "free-form"),
    ("free_form", "free-form"),
    ("free form", "free-form"),
    ("freeform", "free-form"),
    ("open", "free-form"),
    ("open-ended", "free-form"),
    (" Open-Ended ", "free-form"),
]

RECORD = {
    "id": "q1",
    "video": "clips/x.mp4",
    "conversations": [
        {"from": "human", "value": "<video>\nWhich shape appears first?\nA. a red circle\nB. a blue square"},
        {"from": "gpt", "value": "<think>At 00:03 a red circle.</think>\n<answer>A</answer>"},
    ],
}


def test_table_covers_every_canonical_name():
    assert set(PROBLEM_TYPE_ALIASES.values()) == set(PROBLEM_TYPES)
    assert all(canonical_problem_type(t) == t for t in PROBLEM_TYPES)


@pytest.mark.parametrize("alias, canonical", ALIASES)
def test_alias_means_the_same_type_everywhere(alias, canonical):
    assert canonical_problem_type(alias) == canonical
    assert parse_record({**RECORD, "problem_type": alias}, "f.json", "d").problem_type == canonical
    assert is_multiple_choice(None, alias) == (canonical == "multiple choice")
    # The reward scores an alias exactly as its canonical name.
    for completion, truth in [
        ("<answer>B</answer>", "B"),
        ("<answer>12.5</answer>", "12.50"),
        ("<answer>red</answer>", "red"),
    ]:
        assert accuracy_score(completion, truth, alias) == accuracy_score(completion, truth, canonical)
    # The judge and TAC's comparison read the alias as its canonical name.
    judge = RuleBasedJudge()
    completion = "<think>So the answer is 12.</think><answer>12.4</answer>"
    assert judge.consistency([completion], problem_types=[alias]) == judge.consistency(
        [completion], problem_types=[canonical]
    )
    assert answer_matches("12.4", "12", alias) == answer_matches("12.4", "12", canonical)


@pytest.mark.parametrize("empty", [None, "", "  "])
def test_missing_problem_type_is_none(empty):
    assert canonical_problem_type(empty) is None
    assert not is_multiple_choice(None, empty)


def test_unknown_problem_type_is_a_clear_error_everywhere():
    with pytest.raises(UnknownProblemTypeError, match=r"unknown problem_type 'essay'.*multiple choice"):
        canonical_problem_type("essay")
    with pytest.raises(RecordError, match=r"f\.json.*unknown problem_type 'essay'"):
        parse_record({**RECORD, "problem_type": "essay"}, "f.json", "d")
    with pytest.raises(ValueError, match="problem_type"):
        accuracy_score("<answer>B</answer>", "B", "essay")

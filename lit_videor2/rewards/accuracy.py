"""Accuracy reward by question type (``docs/method.md#rewards``).

==================== ================================================================================
type                 score
==================== ================================================================================
multiple choice      1 if the option letters are equal
numerical            1 if equal after rounding to 2 decimals; 0 if only one side has a decimal point
regression           clip(1 − |y − ŷ| / |y|, 0, 1)
OCR                  clip(1 − WER, 0, 1), case-sensitive (torchmetrics ``word_error_rate``)
free-form            mean of ROUGE-1/2/L F1 with Porter stemming (torchmetrics ``rouge_score``)
==================== ================================================================================

Kept from the reference: the decimal-point rule and 2-decimal rounding, case-sensitive WER, ROUGE with stemming
(a one-word answer therefore tops out at 2/3: it has no bigram), an answer without an ``<answer>`` block scores as
the empty string.

Deliberate fixes (``docs/method.md#departures-from-the-reference-code``):

* the question type comes from the record's ``problem_type``; only when it is missing is it inferred from the
  ground truth, and never by "starts with a–e, so multiple choice" (``"apple"``, ``"A long answer"`` are not
  multiple choice; ``"(B)"`` is);
* option letters are read robustly on both sides (``B``, ``b``, ``B.``, ``(B)``, ``B) text``, ``Answer: B``);
  an answer that repeats an option's text counts as that option's letter;
* a ground truth without ``<answer>`` tags is used as it is (the reference turned it into ``""``);
* regression: an exact answer scores exactly 1, also when the truth is 0 (the reference gives 0);
* numbers: thousands separators (``1,000``) are not decimal points (the reference treated any comma as one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from torchmetrics.functional.text import rouge_score, word_error_rate

from lit_videor2.problem_types import (
    FREE_FORM,
    MULTIPLE_CHOICE,
    NUMERICAL,
    OCR,
    REGRESSION,
    canonical_problem_type,
)
from lit_videor2.rewards.base import Reward
from lit_videor2.text import (
    extract_answer,
    parse_number,
    parse_option_letter,
    resolve_option_letter,
    strip_answer_tags,
)

__all__ = ["AccuracyReward", "accuracy_score", "canonical_problem_type", "infer_problem_type"]

_NUMBER_FULL_RE = re.compile(r"[-+]?\d{1,3}(?:,\d{3})*(?:\.\d+)?|[-+]?\d+(?:\.\d+)?")
_OCR_RE = re.compile(r"[A-Za-z0-9\s\-:]+")


def infer_problem_type(answer: str, options: Sequence[str] = ()) -> str:
    """Question type inferred from the ground truth (used only when the record has no ``problem_type``).

    Options present or a ground truth that *is* an option letter (``B``, ``(B)``, ``B. text``) -> multiple choice;
    a bare number -> numerical (regression with more than 3 decimals, as the reference); up to 5 plain words ->
    OCR (as the reference); anything else -> free-form.
    """
    ans = strip_answer_tags(answer)
    if options or parse_option_letter(ans) is not None:
        return MULTIPLE_CHOICE
    if _NUMBER_FULL_RE.fullmatch(ans):
        return REGRESSION if "." in ans and len(ans.split(".")[-1]) > 3 else NUMERICAL
    if len(ans.split()) <= 5 and _OCR_RE.fullmatch(ans):
        return OCR
    return FREE_FORM


def _multiple_choice(pred: str, truth: str, options: Sequence[str]) -> float:
    truth_letter = resolve_option_letter(truth, options)
    return float(truth_letter is not None and resolve_option_letter(pred, options) == truth_letter)


def _numerical(pred: str, truth: str) -> float:
    y, y_hat = parse_number(truth), parse_number(pred)
    if y is None or y_hat is None or (_has_decimal_point(truth) != _has_decimal_point(pred)):
        return 0.0
    return float(round(y, 2) == round(y_hat, 2))


def _has_decimal_point(text: str) -> bool:
    return bool(re.search(r"\d?\.\d", text))


def _regression(pred: str, truth: str) -> float:
    y, y_hat = parse_number(truth), parse_number(pred)
    if y is None or y_hat is None:
        return 0.0
    if y_hat == y:
        return 1.0
    if y == 0:
        return 0.0
    return min(1.0, max(0.0, 1.0 - abs(y - y_hat) / abs(y)))


def _ocr(pred: str, truth: str) -> float:
    if not truth.split():
        return float(not pred.split())
    return min(1.0, max(0.0, 1.0 - float(word_error_rate(pred, truth))))


def _free_form(pred: str, truth: str) -> float:
    if not pred.strip() or not truth.strip():
        return 0.0
    scores = rouge_score(pred, truth, use_stemmer=True, rouge_keys=("rouge1", "rouge2", "rougeL"))
    mean = sum(float(scores[f"{k}_fmeasure"]) for k in ("rouge1", "rouge2", "rougeL")) / 3
    return min(1.0, max(0.0, mean))


def accuracy_score(completion: str, answer: str, problem_type: str | None = None, options: Sequence[str] = ()) -> float:
    """Accuracy of one completion against the ground truth ``answer`` (with or without ``<answer>`` tags).

    ``problem_type`` is one of ``multiple choice``, ``numerical``, ``regression``, ``OCR``, ``free-form`` (aliases
    accepted); None infers it from ``answer`` (:func:`infer_problem_type`).
    """
    truth = strip_answer_tags(answer)
    pred = extract_answer(completion or "") or ""
    kind = canonical_problem_type(problem_type) or infer_problem_type(truth, options)
    if kind == MULTIPLE_CHOICE:
        return _multiple_choice(pred, truth, options)
    if kind == NUMERICAL:
        return _numerical(pred, truth)
    if kind == REGRESSION:
        return _regression(pred, truth)
    if kind == OCR:
        return _ocr(pred, truth)
    return _free_form(pred, truth)


class AccuracyReward(Reward):
    """Accuracy of the ``<answer>`` block against the ``answer`` column (see :func:`accuracy_score`).

    Uses the ``problem_type`` and ``options`` columns when present; a sample whose ``answer`` is None scores None
    (does not apply).
    """

    name = "accuracy"

    def __call__(
        self,
        completions: list[str],
        answer: Sequence[str | None] | None = None,
        problem_type: Sequence[str | None] | None = None,
        options: Sequence[Sequence[str] | None] | None = None,
        **columns: Any,
    ) -> list[float | None]:
        if answer is None:
            raise KeyError("AccuracyReward needs the 'answer' column; columns given: " + ", ".join(sorted(columns)))
        n = len(completions)
        types = problem_type if problem_type is not None else [None] * n
        opts = options if options is not None else [()] * n
        return [
            None if a is None else accuracy_score(c, a, t, o or ())
            for c, a, t, o in zip(completions, answer, types, opts)
        ]

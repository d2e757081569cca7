"""Offline, deterministic judge built on :mod:`lit_videor2.text` (the default everywhere).

* concluded answer: the last explicit conclusion of the reasoning (``"so the answer is C"``, ``"B is correct"``),
  else the last option text it quotes (multiple choice); the text after the last conclusion phrase otherwise.
* final answer: the option letter of the ``<answer>`` block (multiple choice), else its bare text.
* grounding score: a *lexical proxy* for the reference's LLM rubric, not a replacement for it. Five cue families
  (timestamps, seeing verbs, spatial relations, visual attributes such as colours and counts, temporal order)
  each add 1 point when present and 2 points when present three times or more; 0–10. Missing think -> 0.
* consistency: multiple choice -> the concluded letter equals the answer letter; numeric answers -> the concluded
  number equals the answer after rounding to 2 decimals; free text -> the normalised answer appears in the
  conclusion (or, with no conclusion phrase, anywhere in the reasoning). Missing think or answer -> False.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lit_videor2.judges.base import Judge, Options, _rows
from lit_videor2.problem_types import NUMERICAL, REGRESSION, is_multiple_choice, lookup_problem_type
from lit_videor2.text import (
    concluded_option,
    concluded_value,
    extract_answer,
    extract_think,
    find_timestamps,
    normalize_text,
    parse_number,
    resolve_option_letter,
)

__all__ = ["RuleBasedJudge", "grounding_cue_score"]

_CUES = {
    "seeing": r"\b(?:see|seen|saw|shows?|showing|shown|appears?|visible|displayed|on[- ]screen|frame|scene|footage|"
    r"camera|watch|observe[ds]?|depicted|close-up|zoom(?:s|ed)?)\b",
    "spatial": r"\b(?:left|right|top|bottom|above|below|behind|in front of|next to|beside|foreground|background|"
    r"center|centre|corner|near|toward|towards|between)\b",
    "attribute": r"\b(?:red|green|blue|yellow|white|black|orange|purple|pink|brown|gr[ae]y|large|small|tall|short|"
    r"round|square|wearing|holding|\d+)\b",
    "order": r"\b(?:first|then|after|before|later|finally|next|afterwards|meanwhile|while|begins?|ends?)\b",
}


def grounding_cue_score(reasoning: str | None) -> float:
    """Lexical visual-grounding proxy in [0, 10] (see the module docstring)."""
    if not reasoning or not reasoning.strip():
        return 0.0
    counts = [len(find_timestamps(reasoning))]
    counts += [len(re.findall(p, reasoning, flags=re.IGNORECASE)) for p in _CUES.values()]
    return float(sum(0 if c == 0 else (1 if c < 3 else 2) for c in counts))


def _final_answer(completion: str, options: Sequence[str] | None, problem_type: str | None) -> str | None:
    answer = extract_answer(completion or "")
    if not answer:
        return None
    if is_multiple_choice(options, problem_type):
        return resolve_option_letter(answer, options or ())
    return answer


def _concluded(completion: str, options: Sequence[str] | None, problem_type: str | None) -> str | None:
    think = extract_think(completion or "")
    if not think:
        return None
    if is_multiple_choice(options, problem_type):
        return concluded_option(think, options or ())
    return concluded_value(think)


def _numbers_agree(concluded: str | None, think: str, answer: str) -> bool:
    y = parse_number(answer)
    y_hat = parse_number(concluded) if concluded else None
    if y_hat is None:
        y_hat = parse_number(think)  # no conclusion phrase: the last number of the reasoning
    return y is not None and y_hat is not None and round(y, 2) == round(y_hat, 2)


class RuleBasedJudge(Judge):
    """Deterministic judge from text rules; needs no model and no network."""

    def concluded_answers(self, completions, options: Options = None, problem_types=None) -> list[str | None]:
        n = len(completions)
        return [_concluded(c, o, t) for c, o, t in zip(completions, _rows(options, n), _rows(problem_types, n))]

    def final_answers(self, completions, options: Options = None, problem_types=None) -> list[str | None]:
        n = len(completions)
        return [_final_answer(c, o, t) for c, o, t in zip(completions, _rows(options, n), _rows(problem_types, n))]

    def grounding_scores(self, completions, questions=None) -> list[float]:
        return [grounding_cue_score(extract_think(c or "")) for c in completions]

    def consistency(self, completions, questions=None, options: Options = None, problem_types=None) -> list[bool]:
        n = len(completions)
        return [self._consistent(c, o, t) for c, o, t in zip(completions, _rows(options, n), _rows(problem_types, n))]

    @staticmethod
    def _consistent(completion: str, options: Sequence[str] | None, problem_type: str | None) -> bool:
        think, answer = extract_think(completion or ""), extract_answer(completion or "")
        if not think or not answer:
            return False
        if is_multiple_choice(options, problem_type) or (not problem_type and resolve_option_letter(answer)):
            letter = resolve_option_letter(answer, options or ())
            return letter is not None and concluded_option(think, options or ()) == letter
        concluded = concluded_value(think)
        kind = lookup_problem_type(problem_type)
        if kind in (NUMERICAL, REGRESSION) or (not kind and re.fullmatch(r"[-+\d.,\s]+", answer)):
            return _numbers_agree(concluded, think, answer)
        target = normalize_text(answer)
        return bool(target) and target in normalize_text(concluded if concluded else think)

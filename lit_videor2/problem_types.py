"""Problem-type names and their aliases: the one table that data loading, rewards, judges and metrics read.

A record's ``problem_type`` decides how its answer is scored (see ``docs/method.md#rewards``). Sources spell the
types differently (``mcq``, ``multiple_choice``, ``open-ended``, ``numeric`` …); :func:`canonical_problem_type`
maps every spelling in :data:`PROBLEM_TYPE_ALIASES` to one of :data:`PROBLEM_TYPES` (case and surrounding
spaces ignored) and rejects anything else with a message listing the accepted names.

This module is a leaf: it imports nothing from the project.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "FREE_FORM",
    "MULTIPLE_CHOICE",
    "NUMERICAL",
    "OCR",
    "PROBLEM_TYPES",
    "PROBLEM_TYPE_ALIASES",
    "REGRESSION",
    "UnknownProblemTypeError",
    "canonical_problem_type",
    "is_multiple_choice",
    "lookup_problem_type",
]

MULTIPLE_CHOICE = "multiple choice"
NUMERICAL = "numerical"
REGRESSION = "regression"
OCR = "OCR"
FREE_FORM = "free-form"

#: Canonical problem-type names (Video-R1 spelling).
PROBLEM_TYPES: tuple[str, ...] = (MULTIPLE_CHOICE, NUMERICAL, REGRESSION, OCR, FREE_FORM)

#: Every accepted spelling (lower case) -> its canonical name.
PROBLEM_TYPE_ALIASES: dict[str, str] = {
    "multiple choice": MULTIPLE_CHOICE,
    "multiple_choice": MULTIPLE_CHOICE,
    "multiple-choice": MULTIPLE_CHOICE,
    "mcq": MULTIPLE_CHOICE,
    "mc": MULTIPLE_CHOICE,
    "numerical": NUMERICAL,
    "numeric": NUMERICAL,
    "regression": REGRESSION,
    "ocr": OCR,
    "free-form": FREE_FORM,
    "free_form": FREE_FORM,
    "free form": FREE_FORM,
    "freeform": FREE_FORM,
    "open": FREE_FORM,
    "open-ended": FREE_FORM,
    "open_ended": FREE_FORM,
    "open ended": FREE_FORM,
}


class UnknownProblemTypeError(ValueError):
    """A ``problem_type`` that is none of the accepted spellings."""


def lookup_problem_type(value: object) -> str | None:
    """The canonical name of ``value``, or None when it is empty, None or not an accepted spelling."""
    if value is None:
        return None
    return PROBLEM_TYPE_ALIASES.get(" ".join(str(value).split()).lower())


def canonical_problem_type(value: object) -> str | None:
    """The canonical name (one of :data:`PROBLEM_TYPES`) of ``value``; None for None or an empty string.

    Raises :class:`UnknownProblemTypeError` for any other value that is not in :data:`PROBLEM_TYPE_ALIASES`.
    """
    if value is None or str(value).strip() == "":
        return None
    found = lookup_problem_type(value)
    if found is None:
        raise UnknownProblemTypeError(
            f"unknown problem_type {value!r}; expected one of {list(PROBLEM_TYPES)} "
            f"(aliases: {sorted(PROBLEM_TYPE_ALIASES)})"
        )
    return found


def is_multiple_choice(options: Sequence[str] | None, problem_type: str | None) -> bool:
    """Whether a sample is multiple choice: it has options, or its ``problem_type`` names multiple choice."""
    return bool(options) or lookup_problem_type(problem_type) == MULTIPLE_CHOICE

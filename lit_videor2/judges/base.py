"""The judge interface: the four judgments the method needs, batched.

=========================== ===================================================================== ===============
judgment                    meaning                                                               fallback
=========================== ===================================================================== ===============
:meth:`concluded_answers`   the answer the ``<think>`` block concludes (letter for multiple        None
                            choice, bare value otherwise; the last conclusion wins)
:meth:`final_answers`       the answer the ``<answer>`` block gives, parsed the same way           None
:meth:`grounding_scores`    0–10: how much the reasoning makes concrete claims about what is       0.0
                            visible in the video (VAS); missing/empty think -> 0
:meth:`consistency`         do the reasoning and the final answer reach the same conclusion?       False
=========================== ===================================================================== ===============

A judge that cannot produce a judgment (no think block, unparseable model output after one retry, endpoint down)
returns the fallback. Backends: :class:`~lit_videor2.judges.rule_based.RuleBasedJudge` (offline, deterministic,
the default), :class:`~lit_videor2.judges.hf.HFJudge` (local causal LM),
:class:`~lit_videor2.judges.openai_compat.OpenAIJudge` (any OpenAI-compatible endpoint, e.g. ``vllm serve``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from lit_videor2.problem_types import is_multiple_choice

__all__ = ["Judge", "is_multiple_choice"]

Options = Sequence[Sequence[str] | None] | None
"""One option list (or None) per completion."""


def _rows(values: Sequence | None, n: int) -> list:
    """``values`` as a list of length ``n`` (None -> n Nones); a length mismatch is an error."""
    if values is None:
        return [None] * n
    if len(values) != n:
        raise ValueError(f"expected one value per completion ({n}), got {len(values)}")
    return list(values)


class Judge(ABC):
    """Base class of judges; every method takes a batch of full completions and returns one value each."""

    @abstractmethod
    def concluded_answers(
        self, completions: Sequence[str], options: Options = None, problem_types: Sequence[str | None] | None = None
    ) -> list[str | None]:
        """The answer each reasoning (``<think>``) concludes: an upper-case letter for multiple choice."""

    @abstractmethod
    def final_answers(
        self, completions: Sequence[str], options: Options = None, problem_types: Sequence[str | None] | None = None
    ) -> list[str | None]:
        """The answer each ``<answer>`` block gives: an upper-case letter for multiple choice."""

    @abstractmethod
    def grounding_scores(self, completions: Sequence[str], questions: Sequence[str] | None = None) -> list[float]:
        """Visual-grounding score of each reasoning, in [0, 10]."""

    @abstractmethod
    def consistency(
        self,
        completions: Sequence[str],
        questions: Sequence[str] | None = None,
        options: Options = None,
        problem_types: Sequence[str | None] | None = None,
    ) -> list[bool]:
        """Whether each reasoning and its final answer agree."""

"""Consistency gate of the temporal alignment reward: 1.0 when the reasoning and the final answer agree.

The gate asks a :class:`~lit_videor2.judges.Judge` for its consistency verdict. The default
:class:`~lit_videor2.judges.RuleBasedJudge` checks that the answer the reasoning concludes equals the final answer;
an :class:`~lit_videor2.judges.OpenAIJudge` or :class:`~lit_videor2.judges.HFJudge` makes it the reference's LLM
auditor (a failed or timed-out call gives 0, as in the reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lit_videor2.judges import Judge, RuleBasedJudge
from lit_videor2.rewards.base import Reward

__all__ = ["ConsistencyGate"]


class ConsistencyGate(Reward):
    """Gate in {0.0, 1.0} per completion; usable on its own as a reward (``"consistency"``).

    Args:
        judge: judge giving the verdict; None uses the rule-based judge.
    """

    name = "consistency"

    def __init__(self, judge: Judge | None = None) -> None:
        self.judge = judge if judge is not None else RuleBasedJudge()

    def __call__(
        self,
        completions: list[str],
        question: Sequence[str] | None = None,
        options: Sequence[Sequence[str] | None] | None = None,
        problem_type: Sequence[str | None] | None = None,
        **columns: Any,
    ) -> list[float | None]:
        verdicts = self.judge.consistency(completions, questions=question, options=options, problem_types=problem_type)
        return [1.0 if v else 0.0 for v in verdicts]

"""Thin torchmetrics classes over :mod:`lit_videor2.metrics.functional` (tensor states, summed across ranks)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from lit_videor2.judges import Judge, RuleBasedJudge
from lit_videor2.metrics.functional import (
    _tac_compute,
    _tac_update,
    _vas_compute,
    _vas_update,
    _visual_reliance_compute,
    _visual_reliance_update,
    tac_correctness,
)

__all__ = ["ThinkAnswerConsistency", "VideoAttentionScore", "VisualReliance"]


class ThinkAnswerConsistency(Metric):
    """TAC: ``conditional_consistency`` TP/(TP+FN), ``agreement`` (TP+TN)/N, ``answer_accuracy``, ``think_accuracy``.

    ``update(completions, answers, problem_types=None, options=None)``; the judge (rule-based by default) extracts
    the answer the reasoning concludes and the final answer. State: the four counts (summed across ranks).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, judge: Judge | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.judge = judge if judge is not None else RuleBasedJudge()
        self.add_state("counts", default=torch.zeros(4, dtype=torch.float64), dist_reduce_fx="sum")

    def update(
        self,
        completions: Sequence[str],
        answers: Sequence[str],
        problem_types: Sequence[str | None] | None = None,
        options: Sequence[Sequence[str] | None] | None = None,
    ) -> None:
        a, t = tac_correctness(completions, answers, problem_types, options, self.judge)
        self.counts += _tac_update(a, t).to(self.counts.device)

    def compute(self) -> dict[str, Tensor]:
        return _tac_compute(self.counts)


class VideoAttentionScore(Metric):
    """VAS: the judge's 0–10 visual-grounding score of the reasoning, averaged and shown ×10 (0–100).

    ``update(completions, questions=None)``. The default rule-based judge gives a lexical proxy; use an
    :class:`~lit_videor2.judges.OpenAIJudge` for the paper's LLM-judged VAS.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, judge: Judge | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.judge = judge if judge is not None else RuleBasedJudge()
        self.add_state("state", default=torch.zeros(2, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, completions: Sequence[str], questions: Sequence[str] | None = None) -> None:
        scores = torch.tensor(self.judge.grounding_scores(completions, questions), dtype=torch.float64)
        self.state += _vas_update(scores).to(self.state.device)

    def compute(self) -> Tensor:
        return _vas_compute(self.state)


class VisualReliance(Metric):
    """Model-internal visual reliance (paper Figure 1): mean final-layer attention mass from generated tokens to
    video tokens, over all heads (in [0, 1]).

    ``update(attentions [B, H, Q, K], generated_mask [B, Q], video_mask [B, K])`` — get the attentions with
    :func:`~lit_videor2.metrics.functional.final_layer_attention`, which materialises only the final layer.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, per_video_token: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.per_video_token = per_video_token
        self.add_state("state", default=torch.zeros(2, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, attentions: Tensor, generated_mask: Tensor, video_mask: Tensor) -> None:
        self.state += _visual_reliance_update(attentions, generated_mask, video_mask, self.per_video_token).to(
            self.state.device
        )

    def compute(self) -> Tensor:
        return _visual_reliance_compute(self.state)

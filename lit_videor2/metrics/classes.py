"""Thin torchmetrics classes over :mod:`lit_videor2.metrics.functional` (tensor states, summed across ranks)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from lit_videor2.judges import Judge, RuleBasedJudge
from lit_videor2.metrics.functional import (
    _CLAIM_SUMS,
    _claims_compute,
    _claims_update,
    _tac_compute,
    _tac_update,
    _vas_compute,
    _vas_update,
    _visual_reliance_compute,
    _visual_reliance_update,
    claim_summaries,
    tac_correctness,
)

__all__ = ["ClaimTruth", "PredictionMetrics", "ThinkAnswerConsistency", "VideoAttentionScore", "VisualReliance"]


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


class ClaimTruth(Metric):
    """Claim truth: of all timestamped claims in the reasoning, the share true against ``temporal_grounding``
    (``claims_true``), plus ``claims_complete``, ``claims_contradicted``, ``claims_timed``, ``with_claim`` and
    ``stated_<attribute>`` (all 0–100; see :func:`~lit_videor2.metrics.functional.claim_truth`).

    ``update(completions, groundings, durations=None, frame_times=None)``; completions without ground truth are left
    out. State: sums (summed across ranks).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("state", default=torch.zeros(len(_CLAIM_SUMS), dtype=torch.float64), dist_reduce_fx="sum")

    def update(
        self,
        completions: Sequence[str],
        groundings: Sequence[Mapping | None],
        durations: Sequence[float | None] | None = None,
        frame_times: Sequence[Sequence[float] | None] | None = None,
    ) -> None:
        summaries = claim_summaries(completions, groundings, durations, frame_times)
        self.state += _claims_update(summaries).to(self.state.device)

    def compute(self) -> dict[str, Tensor]:
        return _claims_compute(self.state)


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


class PredictionMetrics(Metric):
    """The results-table metrics of judged prediction rows, shared by validation and ``lit_videor2 test``.

    ``update(rows)`` takes rows filled by :func:`lit_videor2.evaluation.judge_rows` (fields ``correct``,
    ``format``, ``tac_a``, ``tac_t``, ``vas``, ``tar``); :meth:`compute` returns, as float64 tensors:

    =================== =====================================================================================
    ``n``               rows
    ``accuracy``        mean ``correct`` × 100 (the accuracy reward, options included)
    ``format``          mean ``format`` × 100 over rows that have it (NaN when none do)
    ``tac_consistency`` TAC conditional consistency TP / (TP + FN) × 100 (positive = the answer is right,
                        TP = the reasoning's conclusion is right too)
    ``tac_agreement``   (TP + TN) / N × 100
    ``think_accuracy``  (TP + FP) / N × 100: the share whose reasoning concludes the right answer
    ``vas``             mean judge grounding score × 10 (0–100)
    ``tar``             mean TAR over rows that have one (NaN when none do)
    ``claims_true``     of all timestamped claims of rows with ``temporal_grounding``, the share true × 100
                        (row field ``claims``, a :func:`~lit_videor2.claims.claim_summary`); likewise
                        ``claims_complete``, ``claims_contradicted``, ``claims_timed``, ``with_claim`` (share
                        of those rows carrying a claim) and ``stated_<attribute>`` (see :class:`ClaimTruth`)
    =================== =====================================================================================

    Undefined ratios are NaN. States are sums (reduced across ranks on :meth:`compute`); the TAC counts are those
    of :class:`ThinkAnswerConsistency`. Build with ``sync_on_compute=False`` to compute on one rank only.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    _SUMS = ("n", "correct", "format", "format_n", "vas", "tar", "tar_n")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("counts", default=torch.zeros(4, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("sums", default=torch.zeros(len(self._SUMS), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("claims", default=torch.zeros(len(_CLAIM_SUMS), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, rows: Sequence[Mapping]) -> None:
        rows = list(rows)
        if not rows:
            return
        a = torch.tensor([bool(r["tac_a"]) for r in rows], dtype=torch.bool)
        t = torch.tensor([bool(r["tac_t"]) for r in rows], dtype=torch.bool)
        formats = [float(r["format"]) for r in rows if r.get("format") is not None]
        tars = [float(r["tar"]) for r in rows if r.get("tar") is not None]
        sums = [
            len(rows),
            sum(float(r["correct"]) for r in rows),
            sum(formats),
            len(formats),
            sum(float(r["vas"]) for r in rows),
            sum(tars),
            len(tars),
        ]
        self.counts += _tac_update(a, t).to(self.counts.device)
        self.sums += torch.tensor(sums, dtype=torch.float64, device=self.sums.device)
        self.claims += _claims_update([r.get("claims") for r in rows]).to(self.claims.device)

    def compute(self) -> dict[str, Tensor]:
        s = dict(zip(self._SUMS, self.sums.unbind()))
        tac = _tac_compute(self.counts)

        def mean(total: Tensor, count: Tensor, scale: float) -> Tensor:
            return scale * total / count if float(count) > 0 else torch.tensor(math.nan, dtype=torch.float64)

        return {
            "n": s["n"],
            "accuracy": mean(s["correct"], s["n"], 100.0),
            "format": mean(s["format"], s["format_n"], 100.0),
            "tac_consistency": 100.0 * tac["conditional_consistency"],
            "tac_agreement": 100.0 * tac["agreement"],
            "think_accuracy": 100.0 * tac["think_accuracy"],
            "vas": mean(s["vas"], s["n"], 10.0),
            "tar": mean(s["tar"], s["tar_n"], 1.0),
            **_claims_compute(self.claims),
        }

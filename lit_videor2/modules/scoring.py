"""Per-sample scores of generated completions, used by validation in every stage.

One implementation shared with the rewards and metrics (nanochat habit): format and accuracy are the reward
functions themselves; TAC's two parts (the final answer correct, ``a``; the answer the reasoning concludes
correct, ``t``) and their aggregates come from :mod:`lit_videor2.metrics.functional` with the rule-based judge,
exactly as the ``ThinkAnswerConsistency`` metric and the evaluation tables compute them; TAR is the ungated
temporal alignment precision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def score_completions(
    completions: list[str], columns: dict[str, list[Any]], *, temporal: bool = False
) -> dict[str, list[float]]:
    """Scores per completion: ``format``, ``accuracy``, TAC's ``answer_correct`` / ``think_correct``; ``tar`` when
    asked."""
    from lit_videor2.metrics.functional import tac_correctness
    from lit_videor2.rewards import accuracy_score, format_score
    from lit_videor2.text import extract_think

    answers, types, options = columns["answer"], columns["problem_type"], columns["options"]
    a, t = tac_correctness(completions, answers, types, [o or None for o in options])
    out: dict[str, list[float]] = {
        "format": [format_score(text) for text in completions],
        "accuracy": [accuracy_score(text, y, p) for text, y, p in zip(completions, answers, types)],
        "answer_correct": a.double().tolist(),
        "think_correct": t.double().tolist(),
    }
    if temporal:
        from lit_videor2.rewards import temporal_alignment_score
        from lit_videor2.text import extract_timestamp_claims

        out["tar"] = [
            temporal_alignment_score(extract_timestamp_claims(extract_think(c)), g or {})
            for c, g in zip(completions, columns["temporal_grounding"])
        ]
    return out


def aggregate_scores(
    scores: dict[str, list[float]], *, device: torch.device, reduce: Callable | None = None
) -> dict[str, torch.Tensor]:
    """Means over samples (summed over ranks with ``reduce(t, reduce_op='sum')``), plus TAC aggregates.

    ``tac_consistency`` = TP / (TP + FN): among samples with a correct answer, the share whose reasoning also
    concludes it; ``tac_agreement`` = (TP + TN) / N: reasoning and answer equally right or wrong;
    ``think_accuracy``: the share whose reasoning concludes the right answer. Undefined ratios are NaN.
    """
    from lit_videor2.metrics.functional import _tac_compute, _tac_update

    a, t = (torch.tensor(scores[k], device=device) >= 1.0 for k in ("answer_correct", "think_correct"))
    sums = {
        k: torch.tensor(v, dtype=torch.float64, device=device).sum() for k, v in scores.items() if "correct" not in k
    }
    sums["_n"] = torch.tensor(float(len(scores["accuracy"])), dtype=torch.float64, device=device)
    sums["_tac"] = _tac_update(a, t)  # [TP, FN, FP, TN]
    if reduce is not None:
        sums = {k: reduce(v, reduce_op="sum") for k, v in sums.items()}
    n = sums["_n"].clamp(min=1)
    out = {k: (v / n).float() for k, v in sums.items() if not k.startswith("_")}
    tac = _tac_compute(sums["_tac"])
    out["tac_consistency"] = tac["conditional_consistency"].float()
    out["tac_agreement"] = tac["agreement"].float()
    out["think_accuracy"] = tac["think_accuracy"].float()
    return out

"""Per-sample scores of generated completions, used by validation in every stage.

One implementation shared with the rewards (nanochat habit): format and accuracy are the reward functions
themselves; TAC's two parts are accuracy of the final answer (``a``) and of the answer the reasoning
concludes (``t``), read by the rule-based judge; TAR is the ungated temporal alignment precision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def score_completions(
    completions: list[str], columns: dict[str, list[Any]], *, temporal: bool = False
) -> dict[str, list[float]]:
    """Scores per completion: ``format``, ``accuracy``, ``think_accuracy``; ``tar`` when asked and grounded."""
    from lit_videor2.rewards import accuracy_score, format_score
    from lit_videor2.text import concluded_option, concluded_value, extract_think

    out: dict[str, list[float]] = {"format": [], "accuracy": [], "think_accuracy": []}
    for i, text in enumerate(completions):
        answer, ptype, options = columns["answer"][i], columns["problem_type"][i], columns["options"][i] or []
        out["format"].append(format_score(text))
        out["accuracy"].append(accuracy_score(text, answer, ptype))
        think = extract_think(text)
        concluded = concluded_option(think, options) if options else concluded_value(think)
        out["think_accuracy"].append(
            accuracy_score(f"<answer>{concluded}</answer>", answer, ptype) if concluded else 0.0
        )
    if temporal:
        from lit_videor2.rewards import temporal_alignment_score
        from lit_videor2.text import extract_timestamp_claims

        out["tar"] = [
            temporal_alignment_score(extract_timestamp_claims(extract_think(t)), g or {})
            for t, g in zip(completions, columns["temporal_grounding"])
        ]
    return out


def aggregate_scores(
    scores: dict[str, list[float]], *, device: torch.device, reduce: Callable | None = None
) -> dict[str, torch.Tensor]:
    """Means over samples (summed over ranks with ``reduce(t, reduce_op='sum')``), plus TAC aggregates.

    ``tac_consistency`` = TP / (TP + FN): among samples with a correct answer, the share whose reasoning also
    concludes it; ``tac_agreement`` = (TP + TN) / N: reasoning and answer equally right or wrong.
    """
    a = torch.tensor(scores["accuracy"], dtype=torch.float64, device=device) >= 1.0
    t = torch.tensor(scores["think_accuracy"], dtype=torch.float64, device=device) >= 1.0
    sums = {k: torch.tensor(v, dtype=torch.float64, device=device).sum() for k, v in scores.items()}
    sums["_n"] = torch.tensor(float(len(scores["accuracy"])), dtype=torch.float64, device=device)
    sums["_tp"] = (a & t).sum().double()
    sums["_fn"] = (a & ~t).sum().double()
    sums["_agree"] = (a == t).sum().double()
    if reduce is not None:
        sums = {k: reduce(v, reduce_op="sum") for k, v in sums.items()}
    n = sums["_n"].clamp(min=1)
    out = {k: (v / n).float() for k, v in sums.items() if not k.startswith("_")}
    out["tac_consistency"] = (sums["_tp"] / (sums["_tp"] + sums["_fn"]).clamp(min=1)).float()
    out["tac_agreement"] = (sums["_agree"] / n).float()
    return out

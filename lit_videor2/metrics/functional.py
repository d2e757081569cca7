"""Functional diagnostics: Think–Answer Consistency (TAC), Video Attention Score (VAS) and visual reliance.

torchmetrics style: each ``_x_update`` returns per-batch *sums* (tensors), ``_x_compute`` reduces them, so the
Metric classes (:mod:`lit_videor2.metrics.classes`) only add tensor states and sync them by summation.

* TAC (``docs/method.md#tac-thinkanswer-consistency``): per sample ``a`` = the answer-derived prediction is
  correct (``answer_correct``), ``t`` = the think-derived one is (``think_correct``).
  ``conditional_consistency`` = TP / (TP + FN) (of the samples answered correctly, the share whose reasoning also
  reaches the correct answer; the published table fits this one), ``agreement`` = (TP + TN) / N, plus
  ``answer_accuracy`` and ``think_accuracy``. Predictions come from a judge (rule-based by default).
* VAS: the judge's 0–10 grounding score, mean ×10 (0–100).
* Visual reliance (the paper's Figure 1): for each generated token, the attention mass on the video tokens in the
  final transformer layer, averaged over all heads and then over generated tokens (in [0, 1]). No judge needed.
  ``per_video_token=True`` divides by the number of video tokens instead (mean attention per video token).

* Claim truth (``docs/method.md#claim-truth``): the share of *all* timestamped claims of the reasoning that are true
  against the record's ``temporal_grounding`` (:func:`lit_videor2.claims.claim_verdicts`: a ground truth
  within the time window that the claim agrees with and contradicts in nothing); ``claims_complete`` also asks the
  claim to state every closed attribute its ground truth states; ``with_claim`` is the share of completions that
  carry a timestamped claim; ``stated_<attribute>`` the share of claims stating each closed attribute, so that a
  model dropping a hard attribute shows. Rule-based, no judge or embedder.

Undefined ratios (no sample, no correct answer) are NaN.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

from lit_videor2.claims import ATTRIBUTES, claim_summary, claim_verdicts
from lit_videor2.judges import Judge, RuleBasedJudge
from lit_videor2.problem_types import REGRESSION, is_multiple_choice, lookup_problem_type
from lit_videor2.text import parse_number, resolve_option_letter, strip_answer_tags

__all__ = [
    "CLAIM_METRICS",
    "answer_matches",
    "claim_summaries",
    "claim_truth",
    "final_layer_attention",
    "tac_correctness",
    "think_answer_consistency",
    "video_attention_score",
    "visual_reliance",
]


def _div(num: Tensor, den: Tensor) -> Tensor:
    return num / den if float(den) > 0 else torch.tensor(math.nan, dtype=torch.float64)


# ------------------------------------------------------------------------------------------------ TAC


def answer_matches(
    pred: str | None,
    truth: str,
    problem_type: str | None = None,
    options: Sequence[str] | None = None,
    rel_tol: float = 0.05,
) -> bool:
    """Whether an extracted prediction matches the ground truth, as the reference TAC scripts compare.

    Multiple choice: letter equality. Numbers: equal after rounding to 2 decimals; for ``regression`` (numeric
    spatial questions) a relative error ≤ ``rel_tol`` also counts. Other text: equal ignoring case and spaces.
    """
    if pred is None:
        return False
    truth = strip_answer_tags(truth)
    if is_multiple_choice(options, problem_type):
        letter = resolve_option_letter(truth, options or ())
        return letter is not None and resolve_option_letter(pred, options or ()) == letter
    y, y_hat = parse_number(truth), parse_number(pred)
    if y is not None and y_hat is not None:
        if round(y, 2) == round(y_hat, 2):
            return True
        return lookup_problem_type(problem_type) == REGRESSION and abs(y_hat - y) <= rel_tol * abs(y)
    return " ".join(str(pred).lower().split()) == " ".join(truth.lower().split())


def tac_correctness(
    completions: Sequence[str],
    answers: Sequence[str],
    problem_types: Sequence[str | None] | None = None,
    options: Sequence[Sequence[str] | None] | None = None,
    judge: Judge | None = None,
) -> tuple[Tensor, Tensor]:
    """``(answer_correct, think_correct)`` bool tensors ``[B]`` from the judge's extractions."""
    judge = judge if judge is not None else RuleBasedJudge()
    n = len(completions)
    types = list(problem_types) if problem_types is not None else [None] * n
    opts = list(options) if options is not None else [None] * n
    finals = judge.final_answers(completions, opts, types)
    concluded = judge.concluded_answers(completions, opts, types)
    a = [answer_matches(p, y, t, o) for p, y, t, o in zip(finals, answers, types, opts)]
    t_ = [answer_matches(p, y, t, o) for p, y, t, o in zip(concluded, answers, types, opts)]
    return torch.tensor(a, dtype=torch.bool), torch.tensor(t_, dtype=torch.bool)


def _tac_update(answer_correct: Tensor, think_correct: Tensor) -> Tensor:
    """Counts ``[TP, FN, FP, TN]`` (positive = answer correct; TP = reasoning correct too)."""
    a, t = answer_correct.bool().flatten(), think_correct.bool().flatten()
    return torch.stack([(a & t).sum(), (a & ~t).sum(), (~a & t).sum(), (~a & ~t).sum()]).to(torch.float64)


def _tac_compute(counts: Tensor) -> dict[str, Tensor]:
    tp, fn, fp, tn = counts.unbind()
    n = counts.sum()
    return {
        "conditional_consistency": _div(tp, tp + fn),
        "agreement": _div(tp + tn, n),
        "answer_accuracy": _div(tp + fn, n),
        "think_accuracy": _div(tp + fp, n),
    }


def think_answer_consistency(
    completions: Sequence[str],
    answers: Sequence[str],
    problem_types: Sequence[str | None] | None = None,
    options: Sequence[Sequence[str] | None] | None = None,
    judge: Judge | None = None,
) -> dict[str, Tensor]:
    """TAC of one batch: conditional consistency, agreement, answer and think accuracy."""
    return _tac_compute(_tac_update(*tac_correctness(completions, answers, problem_types, options, judge)))


# ------------------------------------------------------------------------------------------------ VAS


def _vas_update(scores: Tensor) -> Tensor:
    """``[sum of 0–10 scores, count]``."""
    scores = scores.to(torch.float64).flatten()
    return torch.stack([scores.sum(), torch.tensor(float(scores.numel()), dtype=torch.float64)])


def _vas_compute(state: Tensor) -> Tensor:
    return _div(state[0] * 10.0, state[1])


def video_attention_score(
    completions: Sequence[str], questions: Sequence[str] | None = None, judge: Judge | None = None
) -> Tensor:
    """VAS of one batch: mean judge grounding score ×10 (0–100)."""
    judge = judge if judge is not None else RuleBasedJudge()
    return _vas_compute(_vas_update(torch.tensor(judge.grounding_scores(completions, questions))))


# --------------------------------------------------------------------------------------------- claim truth

#: The claim-truth metrics (percentages 0–100) that :func:`_claims_compute` returns.
CLAIM_METRICS = (
    "claims_true",
    "claims_complete",
    "claims_contradicted",
    "claims_timed",
    "with_claim",
    *(f"stated_{a}" for a in ATTRIBUTES),
)
_CLAIM_SUMS = ("completions", "with_claim", "n", "true", "complete", "contradicted", "timed", *ATTRIBUTES)


def claim_summaries(
    completions: Sequence[str],
    groundings: Sequence[dict | None],
    durations: Sequence[float | None] | None = None,
    frame_times: Sequence[Sequence[float] | None] | None = None,
) -> list[dict | None]:
    """Per completion :func:`~lit_videor2.claims.claim_summary` (None where the record has no
    ``temporal_grounding``)."""
    n = len(completions)
    durations = list(durations) if durations is not None else [None] * n
    frame_times = list(frame_times) if frame_times is not None else [None] * n
    return [
        claim_summary(claim_verdicts(c, g, duration=d, frame_times=t)) if g else None
        for c, g, d, t in zip(completions, groundings, durations, frame_times)
    ]


def _claims_update(summaries: Sequence[dict | None]) -> Tensor:
    """Sums over completions with ground truth: ``completions``, ``with_claim``, claims ``n``, ``true``,
    ``complete``, ``contradicted``, ``timed``, then claims stating each of :data:`ATTRIBUTES`."""
    out = torch.zeros(len(_CLAIM_SUMS), dtype=torch.float64)
    for s in summaries:
        if s is None:
            continue
        row = [1, int(s["n"] > 0), s["n"], s["true"], s["complete"], s["contradicted"], s.get("timed", 0)]
        row += [s["stated"].get(a, 0) for a in ATTRIBUTES]
        out += torch.tensor(row, dtype=torch.float64)
    return out


def _claims_compute(state: Tensor) -> dict[str, Tensor]:
    s = dict(zip(_CLAIM_SUMS, state.unbind()))
    out = {
        "claims_true": 100.0 * _div(s["true"], s["n"]),
        "claims_complete": 100.0 * _div(s["complete"], s["n"]),
        "claims_contradicted": 100.0 * _div(s["contradicted"], s["n"]),
        "claims_timed": 100.0 * _div(s["timed"], s["n"]),
        "with_claim": 100.0 * _div(s["with_claim"], s["completions"]),
    }
    out.update({f"stated_{a}": 100.0 * _div(s[a], s["n"]) for a in ATTRIBUTES})
    return out


def claim_truth(
    completions: Sequence[str],
    groundings: Sequence[dict | None],
    durations: Sequence[float | None] | None = None,
    frame_times: Sequence[Sequence[float] | None] | None = None,
) -> dict[str, Tensor]:
    """Claim truth of one batch (:data:`CLAIM_METRICS`, 0–100) over the completions whose record has
    ``temporal_grounding``; the time window of each follows its ``durations`` (or ``frame_times``)."""
    return _claims_compute(_claims_update(claim_summaries(completions, groundings, durations, frame_times)))


# ------------------------------------------------------------------------------------- visual reliance


def _visual_reliance_update(
    attentions: Tensor, query_mask: Tensor, video_mask: Tensor, per_video_token: bool = False
) -> Tensor:
    """``[sum over generated tokens of head-mean attention mass on video tokens, number of generated tokens]``.

    attentions ``[B, H, Q, K]`` (final layer), query_mask ``[B, Q]`` (generated tokens), video_mask ``[B, K]``.
    """
    video = video_mask.to(attentions.dtype)[:, None, None, :]  # [B, 1, 1, K]
    mass = (attentions * video).sum(-1).mean(1).to(torch.float64)  # [B, Q]
    if per_video_token:
        mass = mass / video_mask.sum(-1, keepdim=True).clamp(min=1).to(torch.float64)
    q = query_mask.bool()
    return torch.stack([mass[q].sum(), q.sum().to(torch.float64)])


def _visual_reliance_compute(state: Tensor) -> Tensor:
    return _div(state[0], state[1])


_CAPTURE = "lit_videor2_capture_final_layer"


def _capture_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Eager attention that keeps its weights on ``module`` (registered as a transformers attention function)."""
    # query [B, H, Q, D]; key, value [B, Hkv, K, D]
    n_rep = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(n_rep, dim=1), value.repeat_interleave(n_rep, dim=1)
    scaling = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = (query @ key.transpose(-1, -2)) * scaling  # [B, H, Q, K]
    q_len, k_len = scores.shape[-2:]
    if attention_mask is None:
        keep = torch.ones(q_len, k_len, dtype=torch.bool, device=scores.device).tril(k_len - q_len)
        scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
    elif attention_mask.dtype == torch.bool:
        scores = scores.masked_fill(~attention_mask[..., :k_len], torch.finfo(scores.dtype).min)
    else:
        scores = scores + attention_mask[..., :k_len]
    weights = torch.softmax(scores.float(), dim=-1).to(query.dtype)
    module._lit_videor2_attention = weights
    return (weights @ value).transpose(1, 2).contiguous(), weights  # [B, Q, H, D], [B, H, Q, K]


def _final_attention_module(model: torch.nn.Module) -> torch.nn.Module:
    """``self_attn`` of the last decoder layer of the language model (vision towers excluded)."""
    found = [
        m
        for name, m in model.named_modules()
        if name.endswith("self_attn") and not any(v in name for v in ("visual", "vision"))
    ]
    if not found:
        raise ValueError(f"no decoder 'self_attn' module found in {type(model).__name__}")
    return found[-1]


@contextmanager
def _capture_final_layer(model: torch.nn.Module):
    from transformers import AttentionInterface

    AttentionInterface.register(_CAPTURE, _capture_attention)
    module = _final_attention_module(model)
    original = module.config
    config = copy.copy(original)
    config._attn_implementation = _CAPTURE
    module.config = config
    try:
        yield module
    finally:
        module.config = original
        module.__dict__.pop("_lit_videor2_attention", None)


@torch.no_grad()
def final_layer_attention(model: torch.nn.Module, **inputs) -> Tensor:
    """Attention weights ``[B, H, L, L]`` of the final decoder layer only, from one forward pass.

    The final layer's attention is computed eagerly (and its weights kept); every other layer runs with the
    model's own attention implementation, and no other layer's weights are materialised.

    ``inputs`` go to the model as they are. For Qwen2-VL / Qwen2.5-VL pass explicit ``position_ids`` (e.g.
    :func:`lit_videor2.models.vision.batch_positions`, the original Qwen rule the checkpoints were trained with):
    without them, transformers 5.x computes its own positions, which depart from that rule after a video
    (``docs/departures.md``). This module stays a leaf and does not compute them itself.
    """
    with _capture_final_layer(model) as module:
        model(**inputs, use_cache=False)
        return module._lit_videor2_attention


def visual_reliance(
    model: torch.nn.Module,
    input_ids: Tensor,
    generated_mask: Tensor,
    video_token_id: int | None = None,
    per_video_token: bool = False,
    **inputs,
) -> Tensor:
    """Mean final-layer attention mass from generated tokens (``generated_mask [B, L]``) to video tokens."""
    video_token_id = video_token_id if video_token_id is not None else model.config.video_token_id
    attn = final_layer_attention(model, input_ids=input_ids, **inputs)
    state = _visual_reliance_update(attn, generated_mask, input_ids == video_token_id, per_video_token)
    return _visual_reliance_compute(state)

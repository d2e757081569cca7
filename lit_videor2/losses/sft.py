"""SFT loss math: next-token cross-entropy on the assistant (label) tokens of a batch, and its aggregation.

Pure functions of the model and the batch (no Lightning): :class:`~lit_videor2.modules.sft.SFTModule` is the thin
wrapper that logs, accumulates and steps.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lit_videor2.models.policy import explain_video_token_mismatch
from lit_videor2.models.vision import batch_positions

__all__ = ["assistant_token_loss", "label_token_losses", "loss_terms", "model_inputs"]


def model_inputs(batch: dict[str, Any], model: torch.nn.Module | None = None) -> dict[str, Any]:
    """Forward inputs of the full (prompt + target) sequences of an SFT batch.

    With ``model``, explicit 3-D ``position_ids`` ``(3, B, L)`` are added
    (:func:`~lit_videor2.models.vision.batch_positions`: the original Qwen rule for Qwen2/2.5-VL), so the model
    never computes its own.
    """
    keys = (
        "input_ids",
        "attention_mask",
        "mm_token_type_ids",
        "pixel_values_videos",
        "video_grid_thw",
        "second_per_grid_ts",
    )
    out = {k: batch[k] for k in keys if k in batch}
    if model is not None:
        positions = batch_positions(model, batch)
        if positions is not None:
            out["position_ids"] = positions
    return out


def label_token_losses(model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample sums of the next-token cross-entropy over label tokens ``[B]``, and label-token counts ``[B]``.

    Logits are computed only from the first target position on (``logits_to_keep``), not for the prompt; positions
    are explicit (:func:`model_inputs` with the model).
    """
    labels = batch["labels"]  # [B, L]
    keep = labels.shape[1] - int(batch["prompt_lengths"].min()) + 1
    try:
        out = model(**model_inputs(batch, model), logits_to_keep=keep, use_cache=False)
    except ValueError as err:
        raise explain_video_token_mismatch(err) from err
    logits = out.logits[:, :-1]  # [B, keep-1, V] predicts positions L-keep+1 .. L-1
    targets = labels[:, labels.shape[1] - keep + 1 :]  # [B, keep-1]
    per_token = F.cross_entropy(
        logits.float().transpose(1, 2), targets, ignore_index=-100, reduction="none"
    )  # [B, keep-1], 0 where ignored
    return per_token.sum(dim=1), (targets != -100).sum(dim=1)


def assistant_token_loss(model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
    """Mean next-token cross-entropy over the batch's label tokens, and the number of label tokens."""
    sums, counts = label_token_losses(model, batch)  # [B], [B]
    n = int(counts.sum())
    return sums.sum() / max(n, 1), n


def loss_terms(sums: torch.Tensor, counts: torch.Tensor, aggregation: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A micro-batch's loss sum and its units, whose ratio over all micro-batches and ranks is the loss.

    Args:
        sums: ``[B]`` per-sample sums of label-token losses.
        counts: ``[B]`` label tokens per sample.
        aggregation: ``token`` (units: tokens) or ``sample`` (per-sample token means; units: samples with labels).

    Returns:
        ``(loss_sum, units)`` scalars.
    """
    if aggregation == "token":
        return sums.sum(), counts.sum().to(sums.dtype)
    has = counts > 0
    return (sums / counts.clamp(min=1)).sum(), has.sum().to(sums.dtype)

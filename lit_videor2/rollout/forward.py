"""Teacher-forced forwards of an SFT batch: the model inputs (explicit 3-D positions) and the per-sample label-token
losses. The loss math is :mod:`lit_videor2.losses.sft`; this module runs the model (as
:mod:`~lit_videor2.rollout.logprobs` does for GRPO's log-probs), so the loss room needs no model helper.
"""

from __future__ import annotations

from typing import Any

import torch

from lit_videor2.losses.sft import next_token_losses
from lit_videor2.models.policy import explain_video_token_mismatch
from lit_videor2.models.vision import batch_positions

__all__ = ["assistant_token_loss", "label_token_losses", "model_inputs"]


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
    return next_token_losses(out.logits, labels)


def assistant_token_loss(model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
    """Mean next-token cross-entropy over the batch's label tokens, and the number of label tokens."""
    sums, counts = label_token_losses(model, batch)  # [B], [B]
    n = int(counts.sum())
    return sums.sum() / max(n, 1), n

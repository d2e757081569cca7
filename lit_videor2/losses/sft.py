"""SFT loss math: next-token cross-entropy on the assistant (label) tokens of a batch, and its aggregation.

Pure functions of tensors (no model, no Lightning): the forward that produces the logits is
:func:`lit_videor2.rollout.forward.label_token_losses`; :class:`~lit_videor2.modules.sft.SFTModule` is the thin
wrapper that logs, accumulates and steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["loss_terms", "next_token_losses"]


def next_token_losses(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample sums of the next-token cross-entropy over label tokens ``[B]``, and label-token counts ``[B]``.

    Args:
        logits: ``[B, keep, V]`` logits of the last ``keep`` positions of the sequences (``logits_to_keep``).
        labels: ``[B, L]`` token ids to predict, ``-100`` where ignored (the prompt, padding).
    """
    keep = logits.shape[1]
    logits = logits[:, :-1]  # [B, keep-1, V] predicts positions L-keep+1 .. L-1
    targets = labels[:, labels.shape[1] - keep + 1 :]  # [B, keep-1]
    per_token = F.cross_entropy(
        logits.float().transpose(1, 2), targets, ignore_index=-100, reduction="none"
    )  # [B, keep-1], 0 where ignored
    return per_token.sum(dim=1), (targets != -100).sum(dim=1)


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

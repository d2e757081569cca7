"""The clipped GRPO objective with a k3 KL penalty, and its token-aggregation variants.

Per token (``[N, T]``): ``rho = exp(logp - old_logp)``,
``loss = -min(rho * A, clip(rho, 1 - eps_low, 1 + eps_high) * A) + beta * k3`` with
``k3 = exp(ref - logp) - (ref - logp) - 1`` (Schulman's unbiased, always non-negative KL estimator).
The reference recipe (Video-R2, via TRL) uses ``loss_type="bnpo"``, beta 0.04, eps 0.2 and one update per
generation, i.e. ``old_logps=None`` here.

Where this departs from TRL's ``GRPOTrainer._compute_loss`` (same per-token maths, same aggregation formulas):

- Pure function: no division by gradient-accumulation steps for ``grpo``/``bnpo``/``dr_grpo``; the caller scales
  the loss (TRL folds ``current_gradient_accumulation_steps`` into the loss).
- ``dapo``: TRL divides the local token sum by ``num_items_in_batch / num_processes``, where
  ``num_items_in_batch`` is the valid-token count gathered over all ranks (and all micro-batches of the
  generation batch). Here, by default, the count is all-reduced over ``torch.distributed`` from this call's
  masks, so the normaliser is the same quantity for one micro-batch per step; pass ``num_items_in_batch`` to
  count several micro-batches (gradient accumulation) exactly like TRL. See :func:`_aggregate_dapo`.
- ``dr_grpo`` needs ``max_completion_length`` explicitly (TRL takes it from its config). Defaulting to the
  padded width T would make the normaliser depend on the longest completion in the batch, which is precisely the
  length bias Dr.GRPO removes, so a missing value is an error rather than a silent T.
- Stats: the KL is reported whenever ``ref_logps`` is given (also at ``beta == 0``, for monitoring), ``None``
  when it is not. TRL's ``delta`` (two-sided upper clip of rho) and sequence-level importance sampling are not
  implemented.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.distributed as dist


class GRPOLossStats(NamedTuple):
    """Detached diagnostics of one :func:`grpo_loss` call; every field is a masked mean over valid tokens."""

    kl: torch.Tensor | None
    """Mean k3 KL to the reference; ``None`` when no ``ref_logps`` were given."""
    clip_frac_low: torch.Tensor
    """Share of tokens clipped from below: ``rho < 1 - epsilon_low`` and ``A < 0``."""
    clip_frac_high: torch.Tensor
    """Share of tokens clipped from above: ``rho > 1 + epsilon_high`` and ``A > 0``."""
    clip_frac: torch.Tensor
    """Share of tokens clipped on either side (``clip_frac_low + clip_frac_high``; the two are disjoint)."""
    ratio_mean: torch.Tensor
    """Mean importance ratio ``rho``; exactly 1 on-policy."""


def _aggregate_grpo(per_token: torch.Tensor, mask: torch.Tensor, **_) -> torch.Tensor:
    """Mean over each sequence's valid tokens, then over sequences (DeepSeekMath GRPO; long answers weigh less)."""
    per_seq = (per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # [N]
    return per_seq.mean()


def _aggregate_bnpo(per_token: torch.Tensor, mask: torch.Tensor, **_) -> torch.Tensor:
    """Sum over all valid tokens of this call / their number (TRL "bnpo"; the Video-R2 reference)."""
    return (per_token * mask).sum() / mask.sum().clamp(min=1.0)


def _aggregate_dr_grpo(
    per_token: torch.Tensor, mask: torch.Tensor, *, max_completion_length: int | None, **_
) -> torch.Tensor:
    """Sum over valid tokens / (N * max_completion_length): a constant normaliser (Dr.GRPO)."""
    if max_completion_length is None or max_completion_length < 1:
        raise ValueError(
            f"loss_type='dr_grpo' needs max_completion_length (the generation token limit, a positive int), "
            f"got {max_completion_length!r}."
        )
    return (per_token * mask).sum() / (per_token.shape[0] * max_completion_length)


def _aggregate_dapo(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    *,
    num_items_in_batch: torch.Tensor | float | None,
    **_,
) -> torch.Tensor:
    """Token mean over the global batch, across ranks (DAPO), written so that DDP's gradient *averaging* yields it.

    ``loss_r = local_sum_r * W / total`` where ``total`` is the valid-token count over all W ranks (all-reduced
    here unless ``num_items_in_batch`` gives it). DDP averages gradients, ``(1/W) * sum_r grad(loss_r)``, which
    equals ``grad(sum_r local_sum_r / total)``: the gradient of the token mean of the concatenated batch. Likewise
    the mean of the per-rank losses is the global token-mean loss. This is TRL's
    ``sum / (num_items_in_batch / num_processes)``. Every rank must make the call (the count is a collective).
    Without an initialised process group it is ``bnpo`` (or ``sum / num_items_in_batch`` if that is given).
    """
    distributed = dist.is_available() and dist.is_initialized()
    world_size = dist.get_world_size() if distributed else 1
    if num_items_in_batch is None:
        total = mask.sum().detach().to(torch.float32)
        if distributed:
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
    else:
        total = torch.as_tensor(num_items_in_batch, dtype=torch.float32, device=per_token.device)
    return (per_token * mask).sum() * world_size / total.clamp(min=1.0).to(per_token.dtype)


_AGGREGATORS: dict[str, Callable[..., torch.Tensor]] = {
    "grpo": _aggregate_grpo,
    "bnpo": _aggregate_bnpo,
    "dr_grpo": _aggregate_dr_grpo,
    "dapo": _aggregate_dapo,
}
LOSS_TYPES = tuple(_AGGREGATORS)


def _check_shapes(logps, old_logps, ref_logps, advantages, mask) -> None:
    if logps.dim() != 2:
        raise ValueError(f"logps must be [N, T], got shape {tuple(logps.shape)}.")
    for name, tensor in (("old_logps", old_logps), ("ref_logps", ref_logps), ("mask", mask)):
        if tensor is not None and tensor.shape != logps.shape:
            raise ValueError(f"{name} must have the shape of logps {tuple(logps.shape)}, got {tuple(tensor.shape)}.")
    if advantages.shape != logps.shape[:1]:
        raise ValueError(f"advantages must be [N]={tuple(logps.shape[:1])}, got {tuple(advantages.shape)}.")


def _masked_mean(x: torch.Tensor, mask: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / count


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor | None,
    ref_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    loss_type: str = "bnpo",
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    beta: float = 0.04,
    max_completion_length: int | None = None,
    num_items_in_batch: torch.Tensor | float | None = None,
) -> tuple[torch.Tensor, GRPOLossStats]:
    """Clipped GRPO surrogate plus ``beta`` times the k3 KL, aggregated over tokens by ``loss_type``.

    Args:
        logps: ``[N, T]`` completion-token log-probs under the current policy (with gradient).
        old_logps: ``[N, T]`` log-probs under the policy that generated the completions; ``None`` means on-policy
            (one update per generation): ``rho = exp(logps - logps.detach())``, 1 in value with the gradient of
            ``logps``.
        ref_logps: ``[N, T]`` log-probs under the reference policy; ``None`` is allowed only with ``beta == 0``.
        advantages: ``[N]`` one advantage per completion (see :func:`group_advantages`).
        mask: ``[N, T]`` 1/True on completion tokens that count (padding and masked-out completions 0).
        loss_type: ``"grpo"`` | ``"bnpo"`` | ``"dr_grpo"`` | ``"dapo"``; see the ``_aggregate_*`` functions.
        epsilon_low, epsilon_high: clip range ``[1 - epsilon_low, 1 + epsilon_high]`` of ``rho``.
        beta: KL coefficient.
        max_completion_length: the generation token limit; required by ``"dr_grpo"``, ignored otherwise.
        num_items_in_batch: ``"dapo"`` only: valid tokens over all ranks and all micro-batches of the optimiser
            step. ``None``: all-reduce this call's token count (one micro-batch per step).

    Returns:
        ``(loss, stats)``: a scalar loss and detached :class:`GRPOLossStats`.
    """
    aggregate = _AGGREGATORS.get(loss_type)
    if aggregate is None:
        raise ValueError(f"Unknown loss_type {loss_type!r}; valid: {', '.join(map(repr, LOSS_TYPES))}.")
    if ref_logps is None and beta != 0.0:
        raise ValueError(f"ref_logps=None needs beta == 0 (no reference model to measure the KL), got beta={beta}.")
    _check_shapes(logps, old_logps, ref_logps, advantages, mask)

    mask = mask.to(logps.dtype)  # [N, T]
    adv = advantages.to(logps.dtype)[:, None]  # [N, 1]
    old = logps.detach() if old_logps is None else old_logps
    ratio = torch.exp(logps - old)  # [N, T]
    clipped = torch.clamp(ratio, 1.0 - epsilon_low, 1.0 + epsilon_high)
    per_token = -torch.min(ratio * adv, clipped * adv)  # [N, T]

    kl = None
    if ref_logps is not None:
        delta = ref_logps - logps
        kl = torch.exp(delta) - delta - 1.0  # [N, T]
        if beta != 0.0:
            per_token = per_token + beta * kl

    loss = aggregate(
        per_token, mask, max_completion_length=max_completion_length, num_items_in_batch=num_items_in_batch
    )

    with torch.no_grad():
        count = mask.sum().clamp(min=1.0)
        ratio = ratio.detach()
        low = ((ratio < 1.0 - epsilon_low) & (adv < 0)).to(mask.dtype)
        high = ((ratio > 1.0 + epsilon_high) & (adv > 0)).to(mask.dtype)
        stats = GRPOLossStats(
            kl=None if kl is None else _masked_mean(kl.detach(), mask, count),
            clip_frac_low=_masked_mean(low, mask, count),
            clip_frac_high=_masked_mean(high, mask, count),
            clip_frac=_masked_mean(low + high, mask, count),
            ratio_mean=_masked_mean(ratio, mask, count),
        )
    return loss, stats

"""Group-relative advantages and the truncated-completion mask.

Rows of one prompt are adjacent: ``rewards[g * G:(g + 1) * G]`` are the G completions of prompt ``g``.
"""

from __future__ import annotations

from typing import Literal

import torch

AdvantageScale = Literal["group", "batch", "none"]
_SCALES = ("group", "batch", "none")


def group_advantages(
    rewards: torch.Tensor,
    group_size: int,
    *,
    scale: AdvantageScale = "group",
    eps: float = 1e-4,
) -> torch.Tensor:
    """Advantages of G completions per prompt relative to their group.

    Args:
        rewards: ``[B*G]`` total reward per completion, the G completions of a prompt adjacent.
        group_size: G, completions per prompt.
        scale: ``"group"``: ``(r - group mean) / (group std + eps)`` (the reference, DeepSeekMath, TRL default);
            ``"batch"``: ``(r - group mean) / (batch std + eps)`` with the std over all ``B*G`` rewards;
            ``"none"``: ``r - group mean`` (Dr.GRPO: no std scaling).
        eps: added to the std before dividing.

    Returns:
        ``[B*G]`` advantages, float, on the device of ``rewards``.

    Stds are unbiased (``torch.std``'s default), as in the reference and TRL. A group whose rewards are all equal
    gets exactly zero advantage (not a rounding residue of ``r - mean``), and ``group_size == 1`` gives zeros (a
    lone completion has nothing to be compared with; its std is undefined), so no NaN comes out of either case.

    A NaN reward (a completion to which no reward applied: every component returned ``None``) stays out of its
    group's mean and std (and the batch std) and gets advantage 0; a group with fewer than two finite rewards gets
    zeros. Infinite rewards are an error (the rewards refuse them before this).
    """
    if scale not in _SCALES:
        raise ValueError(f"Unknown advantage scale {scale!r}; valid: {', '.join(map(repr, _SCALES))}.")
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}.")
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D [B*G], got shape {tuple(rewards.shape)}.")
    numel = rewards.numel()
    if numel % group_size != 0:
        raise ValueError(
            f"rewards has {numel} elements, not divisible by group_size={group_size}: "
            f"a partial group (B*G must be a multiple of G; {numel} % {group_size} = {numel % group_size})."
        )
    rewards = rewards if rewards.is_floating_point() else rewards.float()
    if torch.isinf(rewards).any():
        raise ValueError(f"rewards contain inf at rows {torch.isinf(rewards).nonzero().flatten().tolist()}.")
    if group_size == 1 or numel == 0:
        return torch.zeros_like(rewards)

    grouped = rewards.view(-1, group_size)  # [B, G]
    valid = ~grouped.isnan()  # [B, G]
    count = valid.sum(dim=1, keepdim=True)  # [B, 1]
    filled = grouped.nan_to_num(0.0)  # [B, G]
    mean = filled.sum(dim=1, keepdim=True) / count.clamp(min=1)  # [B, 1]
    centered = (filled - mean) * valid  # [B, G], 0 on NaN rewards
    spread = (centered.abs().amax(dim=1, keepdim=True) == 0) | (count < 2)  # [B, 1] all equal, or nothing to compare
    first = grouped.gather(1, valid.int().argmax(dim=1, keepdim=True))  # [B, 1] a finite reward of the group
    all_equal = ((grouped == first) | ~valid).all(dim=1, keepdim=True) | spread  # [B, 1]
    centered = centered.masked_fill(all_equal, 0.0)
    if scale == "group":
        var = (centered**2).sum(dim=1, keepdim=True) / (count - 1).clamp(min=1)  # [B, 1] unbiased
        centered = centered / (var.sqrt() + eps)
    elif scale == "batch":
        finite = rewards[~rewards.isnan()]
        std = finite.std() if finite.numel() > 1 else rewards.new_zeros(())
        centered = centered / (std + eps)
    return centered.reshape(-1)  # [B*G]


def mask_truncated(mask: torch.Tensor, is_truncated: torch.Tensor) -> torch.Tensor:
    """Zero the completion mask of completions that hit the token limit (DAPO's "overlong filtering").

    Args:
        mask: ``[N, T]`` completion mask (bool or float).
        is_truncated: ``[N]`` bool, True where the completion ended without EOS.

    Returns:
        ``[N, T]`` mask of the same dtype with the rows of truncated completions all zero / False, so they add
        nothing to the loss (and, for ``"bnpo"``/``"dapo"``, nothing to the token count either).
    """
    if is_truncated.shape != mask.shape[:1]:
        raise ValueError(
            f"is_truncated must have shape [N]={tuple(mask.shape[:1])} to match mask {tuple(mask.shape)}, "
            f"got {tuple(is_truncated.shape)}."
        )
    keep = ~is_truncated.to(device=mask.device, dtype=torch.bool)  # [N]
    if mask.dtype == torch.bool:
        return mask & keep[:, None]
    return mask * keep[:, None].to(mask.dtype)

"""Optimizer parameter groups and learning-rate schedules configurable from YAML."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR


def param_groups(model: nn.Module) -> list[dict]:
    """Trainable parameters split as the reference (HF Trainer) does: no weight decay on biases and norms."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def default_optimizer(params: Iterable) -> torch.optim.Optimizer:
    """AdamW as the SFT reference (lr 1e-5, weight decay 0.1)."""
    return torch.optim.AdamW(params, lr=1e-5, weight_decay=0.1)


class WarmupCosine:
    """Linear warm-up then cosine decay, stepped every optimizer step (the reference schedule).

    Given in YAML as ``scheduler: {class_path: lit_videor2.modules.optim.WarmupCosine, init_args: {warmup_ratio: 0.03}}``;
    the module calls it with the optimizer and the run's total optimizer steps.
    """

    def __init__(self, warmup_ratio: float = 0.03, warmup_steps: int | None = None, min_lr_ratio: float = 0.0) -> None:
        """
        Args:
            warmup_ratio: Share of the total steps spent warming up (ignored when ``warmup_steps`` is set).
            warmup_steps: Explicit number of warm-up steps.
            min_lr_ratio: Final learning rate as a share of the peak.
        """
        self.warmup_ratio = warmup_ratio
        self.warmup_steps = warmup_steps
        self.min_lr_ratio = min_lr_ratio

    def __call__(self, optimizer: torch.optim.Optimizer, total_steps: int) -> LambdaLR:
        total = max(1, int(total_steps))
        warm = self.warmup_steps if self.warmup_steps is not None else int(math.ceil(self.warmup_ratio * total))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / (warm + 1)
            progress = min(1.0, (step - warm) / max(1, total - warm))
            return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

        return LambdaLR(optimizer, factor)


class Constant(WarmupCosine):
    """Linear warm-up then a constant learning rate."""

    def __call__(self, optimizer: torch.optim.Optimizer, total_steps: int) -> LambdaLR:
        warm = (
            self.warmup_steps
            if self.warmup_steps is not None
            else int(math.ceil(self.warmup_ratio * max(1, total_steps)))
        )
        return LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / (warm + 1)))

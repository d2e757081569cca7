"""Policy loading: the only place the project calls a model's ``from_pretrained``.

:func:`load_policy` turns a :class:`~lit_videor2.models.policy.PolicySpec` (which checkpoint, dtype, attention
implementation, what to freeze, LoRA) into a model, with the spec's activation checkpointing applied
(:mod:`lit_videor2.distributed.activation_checkpointing`). It lives here, above the model anatomy of
:mod:`lit_videor2.models`, because activation checkpointing is a part of distributed execution: the anatomy room
imports nothing from this one.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from lit_videor2.distributed.activation_checkpointing import enable_activation_checkpointing
from lit_videor2.models.hub import check_model_path
from lit_videor2.models.policy import (
    PolicySpec,
    add_lora,
    apply_freezing,
    inner_model,
    resolve_attn_implementation,
)

log = logging.getLogger(__name__)


def load_policy(spec: PolicySpec) -> nn.Module:
    """Load the model of ``spec`` with its freezing and LoRA applied."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    check_model_path(spec.path)
    config = AutoConfig.from_pretrained(spec.path)
    if not hasattr(config, "vision_config"):
        raise ValueError(
            f"{spec.path}: config of type {config.model_type!r} has no vision tower; lit_videor2 needs a video LM (Qwen2-VL, Qwen2.5-VL, Qwen3-VL)"
        )
    model = AutoModelForImageTextToText.from_pretrained(
        spec.path,
        dtype=getattr(torch, spec.dtype),
        attn_implementation=resolve_attn_implementation(spec.attn_implementation),
    )
    apply_freezing(model, spec)
    if spec.gradient_checkpointing:
        # The project's own per-layer wrapper, not ``gradient_checkpointing_enable``: transformers drops the KV
        # cache in checkpointed training forwards, which prompt sharing needs (see activation_checkpointing.py).
        enable_activation_checkpointing(model)
        model.config.use_cache = False
    if spec.lora is not None:
        model = add_lora(model, spec.lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info(
        "loaded %s (%s): %d parameters, %d trainable", spec.path, type(inner_model(model)).__name__, total, trainable
    )
    return model

"""Activation checkpointing per decoder layer, and the KV caches that let prompt sharing run under it.

Why the project checkpoints layers itself
-----------------------------------------
transformers' ``gradient_checkpointing_enable`` wraps every ``GradientCheckpointingLayer``; in a training forward
with gradient it sets ``cache=None`` (layers that write the cache would write it a second time when backward
replays them). Prompt sharing needs exactly that cache: the prompt runs once per group with gradient and the G
completions attend to its keys and values. So :func:`enable_activation_checkpointing` wraps each decoder layer's
``forward`` (not ``__call__``, so FSDP2's per-layer hooks stay outside the checkpoint and run once) in
``torch.utils.checkpoint.checkpoint(use_reentrant=False)``, and lets through the two *functional* caches below:

* :class:`RecordingLayer` (the prompt pass): ``update`` stores the layer's keys/values the first time and returns
  them unchanged; the backward replay finds the slot filled and stores nothing, so recomputation is idempotent.
* :class:`PrefixLayer` (the completion pass): ``update`` returns ``prefix ⊕ new`` and never mutates its state,
  so the replay sees the same prefix. The prefix is the recorded prompt KV repeated G times
  (``repeat_interleave``, differentiable): backward sums the G copies' gradients into the single prompt pass.

Non-reentrant checkpointing records the autograd graph normally (only the saved activations are dropped and
recomputed), so tensors reaching a layer through the cache object rather than its arguments get their gradient.
A mutating cache (``DynamicCache``) holding tokens in a checkpointed training forward raises (it would lose its
prompt, or grow twice); an empty one is dropped, as transformers does.
"""

from __future__ import annotations

import types
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers.cache_utils import Cache, DynamicLayer

from lit_videor2.models.policy import decoder_layers, vision_tower

_FLAG = "_lit_activation_checkpointing"


class RecordingLayer(DynamicLayer):
    """Prompt pass: keeps the first keys/values it sees and returns every input unchanged (idempotent replay)."""

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
        if not self.is_initialized:
            self.device = key_states.device
            self.keys, self.values = key_states, value_states  # [B, kv_heads, L, head_dim]
            self.is_initialized = True
        return key_states, value_states


class PrefixLayer(DynamicLayer):
    """Completion pass: returns ``prefix ⊕ new`` keys/values along the sequence, never storing ``new``."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        super().__init__()
        self.device = keys.device
        self.keys, self.values = keys, values  # [N, kv_heads, L, head_dim]
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
        return torch.cat([self.keys, key_states], dim=-2), torch.cat([self.values, value_states], dim=-2)


class FunctionalCache(Cache):
    """A cache whose layers are all :class:`RecordingLayer` or all :class:`PrefixLayer` (no in-place growth)."""

    @classmethod
    def recording(cls, num_layers: int) -> FunctionalCache:
        """An empty cache that records the keys/values of one forward (``num_layers`` decoder layers)."""
        return cls(layers=[RecordingLayer() for _ in range(num_layers)])

    def expanded(self, repeats: int) -> FunctionalCache:
        """A read-only prefix cache holding every recorded row ``repeats`` times (rows of one prompt adjacent)."""
        missing = [i for i, layer in enumerate(self.layers) if not layer.is_initialized]
        if missing:
            raise ValueError(f"FunctionalCache.expanded: layers {missing} recorded nothing (no forward ran on them).")
        return FunctionalCache(
            layers=[
                PrefixLayer(
                    layer.keys.repeat_interleave(repeats, dim=0), layer.values.repeat_interleave(repeats, dim=0)
                )
                for layer in self.layers
            ]
        )


def _checkpointed_forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """``forward`` of a checkpointed layer: recompute in backward when training with gradient."""
    forward = type(self).forward
    if not (self.training and torch.is_grad_enabled()):
        return forward(self, *args, **kwargs)
    cache = kwargs.get("cache")
    if cache is not None and not isinstance(cache, FunctionalCache):
        if cache.get_seq_length() > 0:
            raise ValueError(
                f"{type(cache).__name__} holding {cache.get_seq_length()} tokens in a checkpointed training forward of "
                f"{type(self).__name__}: backward would replay the layer and update the cache twice. Use "
                "lit_videor2.distributed.activation_checkpointing.FunctionalCache (what sequence_logprobs does)."
            )
        kwargs = {**kwargs, "cache": None, "use_cache": False}
    return checkpoint(forward, self, *args, use_reentrant=False, **kwargs)


def checkpoint_modules(modules: Iterable[nn.Module]) -> int:
    """Wrap each module's ``forward`` in non-reentrant activation checkpointing (idempotent); returns how many.

    The wrapper is bound per instance (``types.MethodType``), so ``copy.deepcopy`` rebinds it to the copy, and it
    calls the class's ``forward``, so FSDP2's ``fully_shard`` (applied before or after) keeps its hooks outside.
    """
    count = 0
    for module in modules:
        if not getattr(module, _FLAG, False):
            module.forward = types.MethodType(_checkpointed_forward, module)
            setattr(module, _FLAG, True)
            count += 1
    return count


def enable_activation_checkpointing(model: nn.Module) -> int:
    """Checkpoint every LLM decoder layer of a Qwen-VL model, and the vision blocks when the tower is trainable.

    Returns the number of modules wrapped. Prompt sharing keeps working (see the module docstring).
    """
    modules: list[nn.Module] = list(decoder_layers(model))
    visual = vision_tower(model)
    if any(p.requires_grad for p in visual.parameters()):
        modules += list(getattr(visual, "blocks", []))
    return checkpoint_modules(modules)


def is_activation_checkpointing(model: nn.Module) -> bool:
    """Whether the model's decoder layers run under :func:`enable_activation_checkpointing`."""
    return any(getattr(layer, _FLAG, False) for layer in decoder_layers(model))

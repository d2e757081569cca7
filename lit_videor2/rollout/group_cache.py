"""The group decode cache: the prompt's keys and values held once per prompt, shared by its G completions.

A GRPO rollout decodes G completions of one prompt. Their keys and values over the prompt are identical, so
:class:`GroupDecodeCache` keeps them once per prompt (``[B, Hkv, Lp, D]``) and preallocates only the completion
slots per row (``[N, Hkv, T, D]``, N = B·G, T = ``max_new_tokens - 1``). Nothing is concatenated or reallocated
per token and every step has the same shapes.

Attention of a decode step (one query per row) is split in two and merged exactly (the log-sum-exp merge of
cascade / "shared-prefix" attention):

* over the prompt: the G rows' queries of a prompt become G·(heads per KV head) queries of that prompt's one copy
  of the keys, so the prompt's keys and values are read once per group instead of once per row;
* over the completion: each row against its own slots, the slots not yet written masked out;
* ``softmax`` over the union = the two partial results weighted by ``exp(lse_part - lse_all)``.

It runs as an attention function registered with transformers (:data:`GROUP_DECODE_ATTENTION`, through
``AttentionInterface``); :func:`group_decode_attention_active` selects it on the language model's config for the
decode steps only (the prompt prefill and every training pass keep the model's own attention).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.cache_utils import Cache, CacheLayerMixin

#: Name of the group decode attention in transformers' ``AttentionInterface``.
GROUP_DECODE_ATTENTION = "lit_videor2_group_decode"


class _GroupDecodeLayer(CacheLayerMixin):
    """One decoder layer's keys and values: the prompt's once per prompt, the completion slots per row."""

    is_compileable = True
    is_sliding = False

    def __init__(self, cache: GroupDecodeCache, prompt_keys: torch.Tensor, prompt_values: torch.Tensor) -> None:
        super().__init__()
        self.owner = cache
        self.prompt_keys, self.prompt_values = prompt_keys, prompt_values  # [B, Hkv, Lp, D]
        b, heads, _, dim = prompt_keys.shape
        shape = (b * cache.group_size, heads, cache.completion_slots, dim)  # [N, Hkv, T, D]
        self.keys = prompt_keys.new_zeros(shape)
        self.values = prompt_values.new_zeros(shape[:-1] + prompt_values.shape[-1:])
        self.device = prompt_keys.device
        self.is_initialized = True

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """Prompt keys and values, completion keys and values."""
        return self.prompt_keys, self.prompt_values, self.keys, self.values

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:  # pragma: no cover
        raise RuntimeError("the group decode cache is built whole from a prefilled cache.")

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write a step's ``[N, Hkv, 1, D]`` key and value in the completion slot of the step; return the
        completion slots (the attention function reads the prompt part from the layer)."""
        self.keys.index_copy_(2, self.owner.slot, key_states)
        self.values.index_copy_(2, self.owner.slot, value_states)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.prompt_keys.shape[-2] + self.owner.steps

    def get_max_length(self) -> int:
        return self.prompt_keys.shape[-2] + self.owner.completion_slots

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.get_max_length(), 0


class GroupDecodeCache(Cache):
    """KV cache of a group decode: the prompts' keys and values once per prompt, ``completion_slots`` preallocated
    slots per completion row (rows of one prompt adjacent).

    Built from the cache a prefill forward returns (:meth:`from_prefill`). Each decode step writes its keys and
    values at :attr:`slot` and the decode loop then calls :meth:`advance`. :attr:`prompt_mask` (``[B, 1, 1, Lp]``)
    and :attr:`completion_mask` (``[N, 1, 1, T]``) are additive masks (0 visible, the dtype's minimum hidden): the
    prompt's padding, and the completion slots written so far (including the current step's).
    """

    def __init__(
        self,
        prefill: Cache,
        attention_mask: torch.Tensor,
        group_size: int,
        completion_slots: int,
        *,
        prompt_multiple: int = 1,
    ) -> None:
        """
        Args:
            prefill: a prefilled cache of B rows of ``Lp`` tokens (a ``DynamicCache``); emptied (its tensors are
                taken over, not copied).
            attention_mask: ``[B, Lp]`` prompt mask (0 on left padding).
            group_size: G, completion rows per prompt.
            completion_slots: slots per row for the completion tokens (``max_new_tokens - 1``: the last token is
                never fed back).
            prompt_multiple: pad the prompt part (masked) to a multiple of this many tokens, so that prompts of
                nearby lengths give the same shapes (a compiled step then compiles once for them).
        """
        self.group_size, self.completion_slots = group_size, max(completion_slots, 1)
        first = prefill.layers[0].keys
        self.slot = torch.zeros(1, dtype=torch.long, device=first.device)  # the completion slot the next step writes
        self.steps = 0
        pad = -attention_mask.shape[1] % prompt_multiple  # masked slots after the prompt
        layers = []
        for layer in prefill.layers:
            if getattr(layer, "is_sliding", False) or layer.keys is None:
                raise ValueError(
                    "the group decode cache holds full-attention layers only: pass decode_cache='dynamic'."
                )
            keys, values = (
                torch.nn.functional.pad(t, (0, 0, 0, pad)) if pad else t for t in (layer.keys, layer.values)
            )
            layers.append(_GroupDecodeLayer(self, keys, values))
            layer.keys = layer.values = None
        super().__init__(layers=layers)
        dtype, minimum = first.dtype, torch.finfo(first.dtype).min
        visible = torch.nn.functional.pad(attention_mask.bool(), (0, pad))[:, None, None, :]  # [B, 1, 1, Lp + pad]
        self.prompt_mask = torch.zeros(visible.shape, dtype=dtype, device=first.device).masked_fill(~visible, minimum)
        n = attention_mask.shape[0] * group_size
        self.completion_mask = torch.full((n, 1, 1, self.completion_slots), minimum, dtype=dtype, device=first.device)
        # Fixed addresses for a compiled step (as transformers' StaticLayer marks its own): CUDA graphs then read
        # these tensors in place instead of copying them into the graph's buffers at every replay.
        for t in (self.slot, self.prompt_mask, self.completion_mask, *(x for layer in layers for x in layer.tensors())):
            torch._dynamo.mark_static_address(t)

    def open_slot(self) -> None:
        """Make the slot the coming step writes visible (in place: the masks keep their storage)."""
        self.completion_mask[..., self.steps] = 0

    def advance(self) -> None:
        """After a step: the next step writes the next slot (in place)."""
        self.slot.add_(1)
        self.steps += 1

    def nbytes(self) -> int:
        """Bytes of keys and values held (prompt part and completion slots)."""
        return sum(t.numel() * t.element_size() for layer in self.layers for t in layer.tensors())


#: Use the fused CPU flash kernel where it applies (False: always the float32 matmul path, as on other devices).
FUSED_CPU_ATTENTION = True


def _attention_with_lse(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention and its log-sum-exp: ``[B, H, M, D]`` queries over ``[B, H, L, D]`` keys with an
    additive ``[B, 1, 1, L]`` mask -> output ``[B, H, M, D]`` (float32) and ``lse`` ``[B, H, M]`` (float32).

    CPU: the fused flash kernel (``aten::_scaled_dot_product_flash_attention_for_cpu``, the kernel sdpa runs);
    elsewhere: the same computed in float32 with matmuls."""
    same = query.dtype == key.dtype == value.dtype
    fused = FUSED_CPU_ATTENTION and query.device.type == "cpu"
    if fused and same and query.dtype in (torch.float32, torch.bfloat16, torch.float16):
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            query, key, value, 0.0, False, attn_mask=mask.to(query.dtype), scale=scale
        )
        return out.float(), lse
    scores = torch.matmul(query.float(), key.float().transpose(-1, -2)) * scale + mask.float()  # [B, H, M, L]
    lse = scores.logsumexp(dim=-1)  # [B, H, M]
    return torch.matmul((scores - lse[..., None]).exp(), value.float()), lse


def group_decode_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention of one decode step on a :class:`GroupDecodeCache` (passed as ``group_decode_cache``).

    ``query`` ``[N, H, 1, D]``; ``key``/``value``: the completion slots ``[N, Hkv, T, D]`` the cache's ``update``
    returned. Returns ``[N, 1, H, D]`` (the layout of transformers' attention functions)."""
    cache: GroupDecodeCache | None = kwargs.get("group_decode_cache")
    if cache is None or query.shape[2] != 1:
        raise RuntimeError(
            f"{GROUP_DECODE_ATTENTION} runs decode steps on a GroupDecodeCache only (one query per row, the cache "
            "given as group_decode_cache); the model's own attention runs everything else."
        )
    layer = cache.layers[module.layer_idx]
    n, heads, _, dim = query.shape
    b, kv_heads, _, _ = layer.prompt_keys.shape
    g, rep = n // b, heads // kv_heads
    scale = dim**-0.5 if scaling is None else scaling
    q = query.reshape(n, kv_heads, rep, dim)  # [N, Hkv, rep, D]: the query heads of each KV head
    # Over the prompt: a prompt's G rows x rep heads are queries of its one copy of the keys.
    q_prompt = q.view(b, g, kv_heads, rep, dim).transpose(1, 2).reshape(b, kv_heads, g * rep, dim)
    out_p, lse_p = _attention_with_lse(q_prompt, layer.prompt_keys, layer.prompt_values, cache.prompt_mask, scale)
    out_p = out_p.view(b, kv_heads, g, rep, -1).transpose(1, 2).reshape(n, kv_heads, rep, -1)  # [N, Hkv, rep, D]
    lse_p = lse_p.view(b, kv_heads, g, rep).transpose(1, 2).reshape(n, kv_heads, rep)
    # Over the completion slots written so far (this step's included).
    out_c, lse_c = _attention_with_lse(q, key, value, cache.completion_mask, scale)
    lse = torch.logaddexp(lse_p, lse_c)  # [N, Hkv, rep]
    out = out_p * (lse_p - lse).exp()[..., None] + out_c * (lse_c - lse).exp()[..., None]  # [N, Hkv, rep, D]
    return out.reshape(n, 1, heads, -1).to(query.dtype), None


AttentionInterface.register(GROUP_DECODE_ATTENTION, group_decode_attention)


@contextmanager
def group_decode_attention_active(text_config: Any) -> Iterator[None]:
    """Within the block, the language model's attention layers run :func:`group_decode_attention` (their config
    names it); the previous implementation is restored after, whatever happens."""
    saved = text_config._attn_implementation
    text_config._attn_implementation = GROUP_DECODE_ATTENTION
    try:
        yield
    finally:
        text_config._attn_implementation = saved


def group_cache_bytes(config: Any, prompts: int, prompt_length: int, rows: int, slots: int, dtype: torch.dtype) -> int:
    """Bytes of a :class:`GroupDecodeCache`: ``prompts`` x ``prompt_length`` prompt tokens and ``rows`` x ``slots``
    completion slots, keys and values of every decoder layer (sizes from the model config's ``text_config``)."""
    text = config.get_text_config(decoder=True)
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    element = torch.empty((), dtype=dtype).element_size()
    return 2 * text.num_hidden_layers * kv_heads * head_dim * element * (prompts * prompt_length + rows * slots)


__all__ = [
    "GROUP_DECODE_ATTENTION",
    "GroupDecodeCache",
    "group_cache_bytes",
    "group_decode_attention",
    "group_decode_attention_active",
]

"""Decoding pieces of the rollout engine: the one list of stop tokens, the logits processors, the completion mask
and the decode loop on a prefilled cache with explicit positions.

The decode loop writes into a cache allocated once (:func:`preallocated_cache`, a transformers ``StaticCache`` of
prompt + ``max_new_tokens`` slots for the G rows): nothing is concatenated per token, neither the cache nor the
attention mask, and every step has the same shapes, so the step can be compiled (``compile_step``; CUDA graphs on
CUDA). A ``DynamicCache``, which grows by concatenation each token, is still accepted (``decode_cache="dynamic"``).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import nn
from transformers.cache_utils import Cache, StaticCache, StaticLayer
from transformers.generation.logits_process import (
    LogitsProcessorList,
    MinNewTokensLengthLogitsProcessor,
    SuppressTokensLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from lit_videor2.models.policy import language_model
from lit_videor2.models.vision import vision_special_token_ids
from lit_videor2.rollout.group_cache import GroupDecodeCache, group_decode_attention_active

#: Tokens that end a completion, where the tokenizer has them (Qwen chat models end a turn with ``<|im_end|>``;
#: ``<|endoftext|>`` ends a document). The checkpoint's ``generation_config`` is not consulted.
STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")


def stop_token_ids(tokenizer: Any) -> list[int]:
    """The one list of stop ids (training, validation, ``test``, ``ask`` and tests): :data:`STOP_TOKENS` the
    tokenizer knows, plus its eos token; sorted, de-duplicated."""
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor: its tokenizer
    unk = getattr(tokenizer, "unk_token_id", None)
    ids = {tokenizer.convert_tokens_to_ids(t) for t in STOP_TOKENS} | {tokenizer.eos_token_id}
    return sorted(i for i in ids if isinstance(i, int) and i >= 0 and i != unk)


def special_token_kwargs(model: nn.Module, tokenizer: Any) -> dict[str, Any]:
    """The token ids every generation path uses (GRPO rollouts, validation, ``test``, ``ask``):
    ``eos_token_ids`` (:func:`stop_token_ids`), ``pad_token_id`` (the tokenizer's, else the first stop id) and
    ``suppress_token_ids`` (every vision special token of the config and the tokenizer) for ``generate_group``."""
    stop = stop_token_ids(tokenizer)
    pad = getattr(getattr(tokenizer, "tokenizer", tokenizer), "pad_token_id", None)
    return {
        "eos_token_ids": stop,
        "pad_token_id": stop[0] if pad is None else pad,
        "suppress_token_ids": vision_special_token_ids(model.config, tokenizer),
    }


def build_logits_processors(
    *,
    do_sample: bool,
    temperature: float,
    top_k: int,
    top_p: float,
    suppress_token_ids: Sequence[int],
    eos_token_ids: Sequence[int],
    min_new_tokens: int,
    device: torch.device,
) -> LogitsProcessorList:
    """transformers' processors in ``generate``'s order: suppression and min-length first, then the warpers."""
    processors = LogitsProcessorList()
    if suppress_token_ids:
        processors.append(SuppressTokensLogitsProcessor(list(suppress_token_ids), device=device))
    if min_new_tokens > 0:
        processors.append(MinNewTokensLengthLogitsProcessor(0, min_new_tokens, list(eos_token_ids), device=device))
    if do_sample:
        if temperature != 1.0:
            processors.append(TemperatureLogitsWarper(temperature))
        if top_k and top_k > 0:
            processors.append(TopKLogitsWarper(top_k))
        if top_p < 1.0:
            processors.append(TopPLogitsWarper(top_p))
    return processors


def completion_mask_from_eos(tokens: torch.Tensor, eos_token_ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Completion mask and truncation flags of generated tokens.

    Args:
        tokens: ``[N, T]`` generated ids.
        eos_token_ids: ids that end a completion.

    Returns:
        ``mask`` ``[N, T]`` long, 1 up to and including the first EOS (all 1 without EOS), and ``is_truncated``
        ``[N]`` bool (no EOS in the row).
    """
    is_eos = torch.isin(tokens, torch.as_tensor(list(eos_token_ids), device=tokens.device))  # [N, T]
    has_eos = is_eos.any(dim=1)  # [N]
    first = torch.where(has_eos, is_eos.int().argmax(dim=1), tokens.shape[1])  # [N]
    idx = torch.arange(tokens.shape[1], device=tokens.device)  # [T]
    mask = (idx[None, :] <= first[:, None]).long()  # [N, T]
    return mask, ~has_eos


def _next_token(scores: torch.Tensor, do_sample: bool, generator: torch.Generator | None) -> torch.Tensor:
    """``[N, V]`` processed scores -> ``[N]`` sampled (or argmax) token ids."""
    if not do_sample:
        return scores.argmax(dim=-1)
    probs = torch.softmax(scores, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


#: Decode-cache kinds of :func:`decode_loop` and :func:`~lit_videor2.rollout.generate_group`.
DecodeCache = Literal["shared", "static", "dynamic"]

#: With a compiled decode step the cache length is rounded up to a multiple of this, so prompts of nearby lengths
#: share one compiled graph (and, on CUDA, one captured graph) instead of compiling once per prompt length.
COMPILE_LENGTH_MULTIPLE = 256


def static_cache_length(prompt_length: int, max_new_tokens: int, *, compiled: bool = False) -> int:
    """Slots of the preallocated decode cache: the prompt and every new token but the last (whose key and value
    are never needed); rounded up to :data:`COMPILE_LENGTH_MULTIPLE` when the decode step is compiled."""
    length = prompt_length + max_new_tokens - 1
    if compiled:
        length = -(-length // COMPILE_LENGTH_MULTIPLE) * COMPILE_LENGTH_MULTIPLE
    return length


def static_cache_bytes(config: Any, rows: int, length: int, dtype: torch.dtype) -> int:
    """Bytes of a preallocated decode cache (keys and values of every decoder layer) for ``rows`` rows of
    ``length`` slots, from a model config (``text_config``: layers, key-value heads, head size)."""
    text = config.get_text_config(decoder=True)
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    element = torch.empty((), dtype=dtype).element_size()
    return 2 * text.num_hidden_layers * rows * kv_heads * length * head_dim * element


def preallocated_cache(model: nn.Module, prefill: Cache, group_size: int, max_cache_len: int) -> StaticCache:
    """A transformers ``StaticCache`` of ``max_cache_len`` slots for ``B * group_size`` rows, holding the prompt.

    The prompt's keys and values (``prefill``: B rows of ``Lp`` tokens, e.g. the ``DynamicCache`` a prefill
    forward returns) are written once per row, rows of one prompt adjacent; decode steps then write one slot each in
    place (``index_copy_`` at the cache's own offset), so nothing is concatenated or reallocated per token and every
    step has the same shapes. ``prefill`` is emptied (its tensors released) as it is copied.

    Raises:
        ValueError: the model's decoder has layers that are not plain full-attention layers (sliding windows,
            linear attention), which this cache does not hold; use ``decode_cache="dynamic"``.
    """
    cache = StaticCache(config=model.config, max_cache_len=max_cache_len)
    if len(cache.layers) != len(prefill.layers) or any(type(layer) is not StaticLayer for layer in cache.layers):
        kinds = sorted({type(layer).__name__ for layer in cache.layers})
        raise ValueError(
            f"the preallocated decode cache holds full-attention layers only; {type(model).__name__} has {kinds} "
            f"({len(prefill.layers)} prefilled layers): pass decode_cache='dynamic'."
        )
    for i, layer in enumerate(prefill.layers):
        keys, values = layer.keys, layer.values  # [B, H, Lp, D]
        layer.keys = layer.values = None
        if keys.shape[-2] > max_cache_len:
            raise ValueError(f"decode cache of {max_cache_len} slots cannot hold a {keys.shape[-2]}-token prompt.")
        cache.update(keys.repeat_interleave(group_size, dim=0), values.repeat_interleave(group_size, dim=0), i)
        del keys, values
    return cache


def _forward_step(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    position_ids: torch.Tensor,
    cache: Cache,
    **kwargs: Any,
) -> torch.Tensor:
    """One decode forward: ``[N, 1]`` ids at ``(3, N, 1)`` positions -> ``[N, V]`` next-token logits."""
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        cache=cache,
        use_cache=True,
        **kwargs,
    )
    return out.logits[:, -1]


@functools.cache
def _compiled_forward_step(mode: str) -> Callable[..., torch.Tensor]:
    """:func:`_forward_step` under ``torch.compile`` (one wrapper per mode; dynamo keeps one graph per model and
    cache shape). ``dynamic=False``: the step's shapes are fixed, which CUDA-graph capture needs."""
    return torch.compile(_forward_step, mode=mode, dynamic=False)


def compile_mode(device: torch.device) -> str:
    """``torch.compile`` mode of the compiled decode step: ``reduce-overhead`` on CUDA (captures CUDA graphs, which
    a small-batch decode needs to approach the memory-bandwidth floor), the default mode elsewhere."""
    return "reduce-overhead" if device.type == "cuda" else "default"


#: Attention implementations that take a 4-D additive mask (the static decode keeps one, opened slot by slot).
_ADDITIVE_MASK_ATTENTION = ("sdpa", "eager")


class _DecodeStep:
    """The forward of one decode step on a cache; keeps the attention mask across steps.

    Static cache (``S`` slots, the prompt's ``Lp`` written): the mask is made once. With sdpa or eager attention it
    is an additive ``[N, 1, 1, S]`` mask (0 where a row may attend, the dtype's minimum elsewhere: prompt padding
    and slots not written yet), and each step opens the one slot it writes, in place; the model then builds no
    mask per step and sdpa converts none. Other attention implementations get the ``[N, S]`` padding mask (prompt
    padding 0, then ones) and mask the unwritten slots by causality at the cache's offset. Dynamic cache: the cache
    grows by concatenation in every layer and the mask by one column per step (the path before the static cache;
    kept for comparison and for architectures the static cache does not hold).
    """

    def __init__(self, model: nn.Module, cache: Cache, attention_mask: torch.Tensor, compiled: bool) -> None:
        self.model, self.cache, self.mask = model, cache, attention_mask
        self.group = isinstance(cache, GroupDecodeCache)
        self.static = isinstance(cache, StaticCache) or self.group
        if compiled and not self.static:
            raise ValueError(
                "a compiled decode step needs a preallocated decode cache (decode_cache='shared' or 'static')."
            )
        if self.group:
            self.mask = None  # the cache holds its own masks (group_decode_attention reads them)
        self.slot: int | None = None  # the static cache slot the next step writes (additive mask only)
        if self.static and not self.group:
            slots = cache.layers[0].max_cache_len
            if attention_mask.shape[1] != slots:
                raise ValueError(
                    f"static decode cache: the attention mask covers {attention_mask.shape[1]} slots, the cache "
                    f"{slots}; give the prompt mask padded with ones to the cache length."
                )
            if getattr(model.config, "_attn_implementation", None) in _ADDITIVE_MASK_ATTENTION:
                self.slot = int(cache.get_seq_length())  # the prompt's length: the first slot a step writes
                dtype = cache.layers[0].keys.dtype
                visible = attention_mask.bool() & (torch.arange(slots, device=attention_mask.device) < self.slot)
                self.mask = torch.zeros(visible.shape, dtype=dtype, device=visible.device)  # [N, S]
                self.mask = self.mask.masked_fill(~visible, torch.finfo(dtype).min)[:, None, None, :]  # [N, 1, 1, S]
        self.compiled = compiled
        self.forward = _compiled_forward_step(compile_mode(attention_mask.device)) if compiled else _forward_step

    def __call__(self, ids: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """``[N]`` tokens at ``(3, N, 1)`` positions -> ``[N, V]`` logits of the next token."""
        extra = {}
        if self.group:
            self.cache.open_slot()
            extra = {"group_decode_cache": self.cache}
        elif not self.static:
            self.mask = torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=1)  # [N, Lp + t + 1]
        elif self.slot is not None:
            self.mask[..., self.slot] = 0  # the slot this step writes, in place
            self.slot += 1
        if self.compiled and ids.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's outputs are consumed
        logits = self.forward(self.model, ids[:, None], self.mask, position, self.cache, **extra)
        if self.group:
            self.cache.advance()
        return logits.clone() if self.compiled else logits  # a CUDA graph's output is overwritten by its next replay


def decode_loop(
    model: nn.Module,
    logits: torch.Tensor,
    cache: Any,
    attention_mask: torch.Tensor,
    last_position: torch.Tensor,
    *,
    max_new_tokens: int,
    processors: LogitsProcessorList,
    do_sample: bool,
    eos_token_ids: Sequence[int],
    pad_token_id: int,
    generator: torch.Generator | None = None,
    synced: bool = False,
    compile_step: bool = False,
) -> torch.Tensor:
    """Sample up to ``max_new_tokens`` tokens per row on a filled KV cache.

    Args:
        logits: ``[N, V]`` next-token logits after the prompt (the first completion token is drawn from them).
        cache: the KV cache of the prompts, already holding N rows, written in place: a transformers
            ``StaticCache`` (:func:`preallocated_cache`; nothing is reallocated per token) or a ``DynamicCache``
            (grows by concatenation every token).
        attention_mask: ``[N, Lp]`` prompt mask for a dynamic cache; ``[N, S]`` for a static cache of ``S`` slots
            (the prompt mask, then ones).
        last_position: ``(3, N, 1)`` mRoPE position of the last prompt token.
        synced: lockstep over the ``torch.distributed`` group (FSDP): stop only when *every* rank's rows are
            finished (agreed by an all-reduce each step); a finished rank keeps stepping on pad tokens, so all ranks
            run the same forwards (transformers' ``synced_gpus``). Ignored without an initialised process group.
        compile_step: run each decode forward through ``torch.compile`` (static cache only; ``reduce-overhead``
            mode on CUDA, which captures CUDA graphs).

    Returns:
        ``[N, T]`` tokens, ``T <= max_new_tokens`` (stops early when every row has emitted an EOS, on every rank
        when ``synced``: then ``T`` is the same on all ranks); rows are filled with ``pad_token_id`` after their EOS.
    """
    n = logits.shape[0]
    eos = torch.as_tensor(list(eos_token_ids), device=logits.device)
    tokens = logits.new_full((n, max_new_tokens), pad_token_id, dtype=torch.long)  # [N, max_new_tokens]
    finished = torch.zeros(n, dtype=torch.bool, device=logits.device)  # [N]
    synced = synced and dist.is_available() and dist.is_initialized()
    forward = _DecodeStep(model, cache, attention_mask, compile_step)
    # With the group cache, the language model attends through it for these steps only.
    attention = (
        group_decode_attention_active(language_model(model).config) if forward.group else contextlib.nullcontext()
    )
    with attention:
        for step in range(max_new_tokens):
            scores = processors(tokens[:, :step], logits.float())  # [N, V]
            nxt = _next_token(scores, do_sample, generator).masked_fill(finished, pad_token_id)  # [N]
            tokens[:, step] = nxt
            finished |= torch.isin(nxt, eos)
            if step + 1 == max_new_tokens or _all_finished(finished, synced):
                break
            logits = forward(nxt, last_position + step + 1)  # [N, V]; positions (3, N, 1)
    return tokens[:, : step + 1]


def _all_finished(finished: torch.Tensor, synced: bool) -> bool:
    """Whether every row is finished; with ``synced``, on every rank of the default process group."""
    if not synced:
        return bool(finished.all())
    pending = (~finished).sum().to(torch.float32).reshape(1)  # [1] rows still running on this rank
    dist.all_reduce(pending, op=dist.ReduceOp.SUM)
    return float(pending) == 0.0


__all__ = [
    "STOP_TOKENS",
    "DecodeCache",
    "build_logits_processors",
    "completion_mask_from_eos",
    "decode_loop",
    "preallocated_cache",
    "static_cache_bytes",
    "static_cache_length",
    "stop_token_ids",
]

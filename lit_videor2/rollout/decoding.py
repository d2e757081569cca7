"""Decoding pieces of the rollout engine: the one list of stop tokens, the logits processors, the completion mask
and the decode loop on a prefilled cache with explicit positions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from transformers.generation.logits_process import (
    LogitsProcessorList,
    MinNewTokensLengthLogitsProcessor,
    SuppressTokensLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from lit_videor2.models.vision import vision_special_token_ids

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
) -> torch.Tensor:
    """Sample up to ``max_new_tokens`` tokens per row on a filled KV cache.

    Args:
        logits: ``[N, V]`` next-token logits after the prompt (the first completion token is drawn from them).
        cache: the KV cache of the prompts, already holding N rows; extended in place.
        attention_mask: ``[N, Lp]`` prompt mask.
        last_position: ``(3, N, 1)`` mRoPE position of the last prompt token.
        synced: lockstep over the ``torch.distributed`` group (FSDP): stop only when *every* rank's rows are
            finished (agreed by an all-reduce each step); a finished rank keeps stepping on pad tokens, so all ranks
            run the same forwards (transformers' ``synced_gpus``). Ignored without an initialised process group.

    Returns:
        ``[N, T]`` tokens, ``T <= max_new_tokens`` (stops early when every row has emitted an EOS, on every rank
        when ``synced``: then ``T`` is the same on all ranks); rows are filled with ``pad_token_id`` after their EOS.
    """
    n = logits.shape[0]
    eos = torch.as_tensor(list(eos_token_ids), device=logits.device)
    tokens = logits.new_empty((n, 0), dtype=torch.long)  # [N, t]
    finished = torch.zeros(n, dtype=torch.bool, device=logits.device)  # [N]
    synced = synced and dist.is_available() and dist.is_initialized()
    for step in range(max_new_tokens):
        scores = processors(tokens, logits.float())  # [N, V]
        nxt = _next_token(scores, do_sample, generator).masked_fill(finished, pad_token_id)  # [N]
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)
        finished |= torch.isin(nxt, eos)
        if step + 1 == max_new_tokens or _all_finished(finished, synced):
            break
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((n, 1))], dim=1)  # [N, Lp + t + 1]
        position = last_position + step + 1  # (3, N, 1)
        out = model(
            input_ids=nxt[:, None], attention_mask=attention_mask, position_ids=position, cache=cache, use_cache=True
        )
        logits = out.logits[:, -1]  # [N, V]
    return tokens


def _all_finished(finished: torch.Tensor, synced: bool) -> bool:
    """Whether every row is finished; with ``synced``, on every rank of the default process group."""
    if not synced:
        return bool(finished.all())
    pending = (~finished).sum().to(torch.float32).reshape(1)  # [1] rows still running on this rank
    dist.all_reduce(pending, op=dist.ReduceOp.SUM)
    return float(pending) == 0.0


__all__ = ["STOP_TOKENS", "build_logits_processors", "completion_mask_from_eos", "decode_loop", "stop_token_ids"]

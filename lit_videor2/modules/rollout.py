"""GRPO rollouts with group sharing: G completions per video prompt, and their teacher-forced log-probs.

Design (B prompts, G completions each, N = B·G rows with the rows of one prompt adjacent)
----------------------------------------------------------------------------------------
Generation (:func:`generate_group`, ``share_prefix=True``):

1. The video of each prompt is encoded **once** (``model.model.get_video_features``), not G times.
2. The 3-D mRoPE positions of each prompt are computed **once** (``get_rope_index`` with ``second_per_grid_ts``
   and the attention mask); completion positions continue them by one per token on all three axes.
3. The prompt is prefilled **once per prompt** (B rows, not N), then the KV cache is expanded in place to N rows
   (``Cache.batch_repeat_interleave(G)``), and the last-prompt-token logits are repeated G times.
4. A small decode loop samples G completions on the shared cache with explicit position ids, using transformers'
   own logits processors (temperature, top-k, top-p, suppression of every vision special token, min new tokens).

The :class:`Rollout` keeps the per-prompt inputs, the (no-grad) visual features and the positions, so that the
log-prob passes (:func:`sequence_logprobs`) use exactly the same frame times and position ids as generation:

* ``reuse_vision=True``: the stored features go back in through ``mm_encoder_outputs``; the vision tower does not
  run again. Only valid while the vision tower is frozen (checked).
* ``share_prompt=True``: the prompt forward runs once per prompt *with* gradient, its KV cache is expanded to N
  rows and the completions are run on top of it. Backward flows through the expanded cache into the single prompt
  pass, so the LLM gradients equal those of N full forwards (within float rounding).

``share_prefix=False`` / ``share_prompt=False`` / ``reuse_vision=False`` give the baseline other frameworks use
(each prompt row repeated G times with its own copy of the pixels, plain ``model.generate``, full forwards).

Where this departs from TRL / Video-R1
--------------------------------------
* TRL's ``GRPOTrainer`` (and Video-R1's trainer, built on it) repeat every prompt G times with its pixels
  (``RepeatSampler``): the vision tower and the prompt prefill run G times per prompt in generation and again in
  every log-prob pass. Here they run once per prompt (measured: ``docs/performance.md#grpo-step-group-sharing``).
  TRL 1.16 also drops the video from its loss forward (``docs/method.md#departures-from-the-reference-code``);
  here every pass sees the video.
* Generation uses its own decode loop rather than ``model.generate``: positions are explicit (no reliance on the
  model's hidden ``rope_deltas`` state, which silently gives positions off by the video span when stale), no
  checkpoint ``generation_config`` defaults (e.g. Qwen2.5-VL's ``repetition_penalty=1.05, top_k=1``) leak in,
  and the whole prompt is prefilled (the first completion token comes from its last logits) instead of "prompt
  minus one token + ``generate`` on top". Greedy output equals ``model.generate`` (tested).
* Vision special tokens (``<|vision_start|>``, ``<|vision_end|>``, ``<|vision_pad|>``, ``<|image_pad|>``,
  ``<|video_pad|>``) are suppressed by default: a generated ``<|video_pad|>`` breaks the log-prob forward.
* After EOS a row is filled with the pad token; those tokens keep attention mask 1 in every pass (they can only
  influence later, masked positions) and get completion mask 0.

Assumptions: one video per prompt (as :class:`~lit_videor2.data.collate.VideoCollator` produces); Qwen2-VL, Qwen3-VL /
Qwen2.5-VL style models (``model.model.get_video_features`` / ``get_rope_index``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from transformers import GenerationConfig
from transformers.generation.logits_process import (
    LogitsProcessorList,
    MinNewTokensLengthLogitsProcessor,
    SuppressTokensLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from transformers.modeling_outputs import BaseModelOutputWithPooling

from lit_videor2.losses.logprobs import hidden_logprobs
from lit_videor2.models.checkpointing import FunctionalCache, is_activation_checkpointing
from lit_videor2.models.policy import inner_model, language_model
from lit_videor2.models.vision import (
    continue_positions,
    encode_videos,
    original_rope_index,
    repeat_videos,
    rope_positions,
    video_encoder_outputs,
    vision_special_token_ids,
    vision_tower_trainable,
)

# ----------------------------------------------------------------------------------------------------------------
# Containers
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptBatch:
    """Left-padded video prompts, one video per prompt (B rows)."""

    input_ids: torch.Tensor
    """``[B, Lp]`` prompt token ids, left-padded."""
    attention_mask: torch.Tensor
    """``[B, Lp]`` 1 on real tokens, 0 on left padding."""
    mm_token_type_ids: torch.Tensor
    """``[B, Lp]`` 0 text, 1 image, 2 video."""
    pixel_values_videos: torch.Tensor
    """``[P, D]`` flattened patches of the B videos, in row order."""
    video_grid_thw: torch.Tensor
    """``[B, 3]`` patch grid of each video."""
    second_per_grid_ts: torch.Tensor | None = None
    """``[B]`` seconds per temporal patch (Qwen2.5-VL's absolute time); None where the architecture has none."""

    @classmethod
    def from_collated(cls, batch: Mapping[str, Any]) -> PromptBatch:
        """From a :class:`~lit_videor2.data.collate.VideoCollator` batch (``prompt_*`` keys + vision keys)."""
        missing = [k for k in ("prompt_input_ids", "prompt_mm_token_type_ids", "pixel_values_videos") if k not in batch]
        if missing:
            raise KeyError(f"PromptBatch.from_collated: batch lacks {missing}; it has {sorted(batch)}.")
        return cls(
            input_ids=batch["prompt_input_ids"],
            attention_mask=batch["prompt_attention_mask"],
            mm_token_type_ids=batch["prompt_mm_token_type_ids"],
            pixel_values_videos=batch["pixel_values_videos"],
            video_grid_thw=batch["video_grid_thw"],
            second_per_grid_ts=batch.get("second_per_grid_ts"),
        )

    @property
    def batch_size(self) -> int:
        return self.input_ids.shape[0]

    @property
    def length(self) -> int:
        return self.input_ids.shape[1]

    def to(self, device: torch.device | str) -> PromptBatch:
        """A copy on ``device``."""
        return PromptBatch(**{k: None if v is None else v.to(device) for k, v in self.__dict__.items()})

    def repeat_interleave(self, repeats: int) -> PromptBatch:
        """Every prompt row ``repeats`` times with its own copy of the video: ``[B·repeats, Lp]`` etc."""
        pixels, grid = repeat_videos(self.pixel_values_videos, self.video_grid_thw, repeats)
        seconds = self.second_per_grid_ts
        return PromptBatch(
            input_ids=self.input_ids.repeat_interleave(repeats, dim=0),
            attention_mask=self.attention_mask.repeat_interleave(repeats, dim=0),
            mm_token_type_ids=self.mm_token_type_ids.repeat_interleave(repeats, dim=0),
            pixel_values_videos=pixels,
            video_grid_thw=grid,
            second_per_grid_ts=None if seconds is None else seconds.repeat_interleave(repeats, dim=0),
        )


@dataclass(frozen=True)
class Rollout:
    """G completions for each of B prompts (N = B·G rows, the rows of one prompt adjacent)."""

    prompt: PromptBatch
    """The B prompts, kept per prompt (not repeated)."""
    group_size: int
    """G, completions per prompt."""
    completion_ids: torch.Tensor
    """``[N, T]`` generated tokens; the pad token after EOS."""
    completion_mask: torch.Tensor
    """``[N, T]`` long, 1 up to and including the first EOS (all 1 for a truncated completion)."""
    is_truncated: torch.Tensor
    """``[N]`` bool, True where the completion hit the token limit without EOS."""
    position_ids: torch.Tensor
    """``(3, N, Lp + T)`` mRoPE positions of prompt + completion, as used in generation (0 on left padding)."""
    video_features: BaseModelOutputWithPooling | None = None
    """The vision tower's output for the B videos (no grad), computed once per prompt: ``pooler_output`` B tensors
    ``[n_video_tokens_b, hidden]`` (+ Qwen3-VL's ``deepstack_features``); None without sharing."""

    @property
    def num_prompts(self) -> int:
        return self.prompt.batch_size

    @property
    def num_completions(self) -> int:
        return self.completion_ids.shape[0]

    @property
    def prompt_length(self) -> int:
        return self.prompt.length

    @property
    def completion_length(self) -> int:
        return self.completion_ids.shape[1]

    @property
    def completion_lengths(self) -> torch.Tensor:
        """``[N]`` number of valid completion tokens (EOS included)."""
        return self.completion_mask.sum(dim=1)

    @property
    def prompt_position_ids(self) -> torch.Tensor:
        """``(3, B, Lp)`` positions of the prompts."""
        return self.position_ids[:, :: self.group_size, : self.prompt_length]

    def input_ids(self) -> torch.Tensor:
        """``[N, Lp + T]`` prompt (repeated per completion) followed by the completion."""
        prompt = self.prompt.input_ids.repeat_interleave(self.group_size, dim=0)
        return torch.cat([prompt, self.completion_ids], dim=1)

    def attention_mask(self) -> torch.Tensor:
        """``[N, Lp + T]`` the prompt mask (repeated), then 1 on every completion position (see module docstring)."""
        prompt = self.prompt.attention_mask.repeat_interleave(self.group_size, dim=0)
        return torch.cat([prompt, torch.ones_like(self.completion_ids, dtype=prompt.dtype)], dim=1)


# ----------------------------------------------------------------------------------------------------------------
# Generation
# ----------------------------------------------------------------------------------------------------------------


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


def _prompt_positions(model: nn.Module, prompt: PromptBatch) -> torch.Tensor:
    """``(3, B, Lp)`` positions of the prompts (the original Qwen rule for Qwen2/2.5-VL)."""
    if prompt.video_grid_thw.shape[0] != prompt.batch_size:
        raise ValueError(
            f"rollouts expect one video per prompt: {prompt.batch_size} prompts but "
            f"{prompt.video_grid_thw.shape[0]} video grids."
        )
    positions, _ = rope_positions(  # (3, B, Lp); the [B, 1] rope deltas are not needed: positions are explicit
        model,
        prompt.input_ids,
        prompt.attention_mask,
        prompt.mm_token_type_ids,
        prompt.video_grid_thw,
        prompt.second_per_grid_ts,
    )
    return positions


def _generate_shared(
    model: nn.Module,
    prompt: PromptBatch,
    group_size: int,
    *,
    max_new_tokens: int,
    processors: LogitsProcessorList,
    do_sample: bool,
    eos_token_ids: Sequence[int],
    pad_token_id: int,
    generator: torch.Generator | None,
    synced: bool = False,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]:
    """Encode each video once, prefill each prompt once, expand the cache to G rows, decode.

    Returns: tokens ``[N, T]``, video features (B tensors), positions ``(3, B, Lp)``.
    """
    features = encode_videos(model, prompt.pixel_values_videos, prompt.video_grid_thw)
    positions = _prompt_positions(model, prompt)  # (3, B, Lp)
    out = model(
        input_ids=prompt.input_ids,
        attention_mask=prompt.attention_mask,
        position_ids=positions,
        mm_encoder_outputs=video_encoder_outputs(features),
        use_cache=True,
        logits_to_keep=1,
    )
    cache = out.cache
    cache.batch_repeat_interleave(group_size)  # B -> N rows, in place
    tokens = decode_loop(
        model,
        out.logits[:, -1].repeat_interleave(group_size, dim=0),  # [N, V]
        cache,
        prompt.attention_mask.repeat_interleave(group_size, dim=0),  # [N, Lp]
        positions[..., -1:].repeat_interleave(group_size, dim=1),  # (3, N, 1)
        max_new_tokens=max_new_tokens,
        processors=processors,
        do_sample=do_sample,
        eos_token_ids=eos_token_ids,
        pad_token_id=pad_token_id,
        generator=generator,
        synced=synced,
    )
    return tokens, features, positions


def _generate_per_completion(
    model: nn.Module, prompt: PromptBatch, group_size: int, config: GenerationConfig, *, synced: bool = False
) -> torch.Tensor:
    """The baseline: every prompt row repeated G times with its own video copy, plain ``model.generate``."""
    rows = prompt.repeat_interleave(group_size)
    kwargs: dict[str, Any] = (
        {"second_per_grid_ts": rows.second_per_grid_ts} if rows.second_per_grid_ts is not None else {}
    )
    with original_rope_index(model):  # generate computes its own positions: make them the original rule's
        out = model.generate(
            input_ids=rows.input_ids,
            attention_mask=rows.attention_mask,
            mm_token_type_ids=rows.mm_token_type_ids,
            pixel_values_videos=rows.pixel_values_videos,
            video_grid_thw=rows.video_grid_thw,
            generation_config=config,
            synced_gpus=synced and dist.is_available() and dist.is_initialized(),
            **kwargs,
        )
    return out[:, rows.length :]  # [N, T]


def _generation_config(
    *,
    max_new_tokens: int,
    min_new_tokens: int,
    do_sample: bool,
    temperature: float,
    top_k: int,
    top_p: float,
    eos_token_ids: Sequence[int],
    suppress_token_ids: Sequence[int],
    pad_token_id: int,
) -> GenerationConfig:
    """An explicit config for ``model.generate`` (every sampling knob set, so no checkpoint default leaks in)."""
    sampling = {"temperature": temperature, "top_k": top_k, "top_p": top_p} if do_sample else {}
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        min_new_tokens=min_new_tokens,
        do_sample=do_sample,
        eos_token_id=list(eos_token_ids),
        pad_token_id=pad_token_id,
        suppress_tokens=list(suppress_token_ids) or None,
        repetition_penalty=1.0,
        **sampling,
    )


@torch.no_grad()
def generate_group(
    model: nn.Module,
    batch: PromptBatch | Mapping[str, Any],
    *,
    group_size: int,
    max_new_tokens: int,
    eos_token_ids: Sequence[int],
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    do_sample: bool = True,
    suppress_token_ids: Sequence[int] | None = None,
    pad_token_id: int | None = None,
    min_new_tokens: int = 0,
    share_prefix: bool = True,
    generator: torch.Generator | None = None,
    synced: bool = False,
) -> Rollout:
    """Sample ``group_size`` completions for every prompt of ``batch``.

    Args:
        model: a Qwen2-VL / Qwen2.5-VL ``...ForConditionalGeneration``.
        batch: a :class:`PromptBatch` or a collated prompt batch (``mode='prompt'``).
        group_size: G, completions per prompt.
        max_new_tokens: token limit of a completion.
        eos_token_ids: ids that end a completion (:func:`stop_token_ids`).
        temperature, top_k, top_p: sampling settings (``top_k=0`` and ``top_p=1.0`` disable those warpers).
        do_sample: False for greedy decoding (G copies of one completion).
        suppress_token_ids: ids never generated; ``None`` means every vision special token of the config
            (:func:`~lit_videor2.models.vision.vision_special_token_ids`), ``()`` suppresses nothing.
        pad_token_id: filler after EOS; default the generation config's pad id, else the first EOS id.
        min_new_tokens: EOS is forbidden before this many tokens (``= max_new_tokens`` for fixed-length benches).
        share_prefix: encode each video and prefill each prompt once per group (True), or repeat every prompt row
            G times with its own video and call ``model.generate`` (False, the baseline of other frameworks).
        generator: RNG of the sampling (``share_prefix=True`` only; ``generate`` uses the global RNG).
        synced: keep every rank of the process group decoding in lockstep until all ranks are finished (needed
            under FSDP, whose forwards are collectives; ``synced_gpus`` for ``generate``). Pass
            ``trainer.world_size > 1``.

    Returns:
        A :class:`Rollout` with N = B·G completions, rows of one prompt adjacent.
    """
    model = inner_model(model)  # a peft wrapper: LoRA layers are injected in place, the base model runs them
    prompt = batch if isinstance(batch, PromptBatch) else PromptBatch.from_collated(batch)
    if group_size < 1 or max_new_tokens < 1:
        raise ValueError(f"group_size ({group_size}) and max_new_tokens ({max_new_tokens}) must be >= 1.")
    if not eos_token_ids:
        raise ValueError("eos_token_ids is empty: give <|im_end|> and the tokenizer eos (stop_token_ids).")
    suppress = vision_special_token_ids(model.config) if suppress_token_ids is None else list(suppress_token_ids)
    if pad_token_id is None:
        pad_token_id = getattr(model.generation_config, "pad_token_id", None)
        pad_token_id = eos_token_ids[0] if pad_token_id is None else pad_token_id
    settings = dict(do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p)
    if share_prefix:
        processors = build_logits_processors(
            **settings,
            suppress_token_ids=suppress,
            eos_token_ids=eos_token_ids,
            min_new_tokens=min_new_tokens,
            device=prompt.input_ids.device,
        )
        tokens, features, positions = _generate_shared(
            model,
            prompt,
            group_size,
            max_new_tokens=max_new_tokens,
            processors=processors,
            do_sample=do_sample,
            eos_token_ids=eos_token_ids,
            pad_token_id=pad_token_id,
            generator=generator,
            synced=synced,
        )
    else:
        config = _generation_config(
            **settings,
            max_new_tokens=max_new_tokens,
            min_new_tokens=min_new_tokens,
            eos_token_ids=eos_token_ids,
            suppress_token_ids=suppress,
            pad_token_id=pad_token_id,
        )
        tokens = _generate_per_completion(model, prompt, group_size, config, synced=synced)
        features = None
        positions = _prompt_positions(model, prompt)
    return _assemble(prompt, group_size, tokens, positions, features, eos_token_ids, pad_token_id)


def _assemble(
    prompt: PromptBatch,
    group_size: int,
    tokens: torch.Tensor,
    positions: torch.Tensor,
    features: tuple[torch.Tensor, ...] | None,
    eos_token_ids: Sequence[int],
    pad_token_id: int,
) -> Rollout:
    """Masks, truncation flags and prompt + completion positions ``(3, N, Lp + T)``."""
    mask, truncated = completion_mask_from_eos(tokens, eos_token_ids)  # [N, T], [N]
    tokens = tokens.masked_fill(mask == 0, pad_token_id)
    prompt_pos = positions.repeat_interleave(group_size, dim=1)  # (3, N, Lp)
    completion_pos = continue_positions(prompt_pos[..., -1:], tokens.shape[1])  # (3, N, T)
    return Rollout(
        prompt=prompt,
        group_size=group_size,
        completion_ids=tokens,
        completion_mask=mask,
        is_truncated=truncated,
        position_ids=torch.cat([prompt_pos, completion_pos], dim=-1),
        video_features=features,
    )


# ----------------------------------------------------------------------------------------------------------------
# Teacher-forced log-probs
# ----------------------------------------------------------------------------------------------------------------


def _video_kwargs(model: nn.Module, rollout: Rollout, *, reuse_vision: bool, repeats: int) -> dict[str, Any]:
    """Vision inputs of a forward over ``B * repeats`` rows: the stored features, or pixels (re-encoded)."""
    prompt = rollout.prompt
    if not reuse_vision:
        pixels, grid = repeat_videos(prompt.pixel_values_videos, prompt.video_grid_thw, repeats)
        return {"pixel_values_videos": pixels, "video_grid_thw": grid}
    if rollout.video_features is None:
        raise ValueError(
            "sequence_logprobs(reuse_vision=True) needs the rollout's video features; this rollout has none "
            "(generated with share_prefix=False). Pass reuse_vision=False or generate with share_prefix=True."
        )
    if torch.is_grad_enabled() and vision_tower_trainable(model):
        raise ValueError(
            "sequence_logprobs(reuse_vision=True) with a trainable vision tower would give it no gradient: freeze "
            "model.model.visual (the Video-R2 recipe does) or pass reuse_vision=False."
        )
    return {"mm_encoder_outputs": video_encoder_outputs(rollout.video_features, repeats)}


class _LogprobHead(nn.Module):
    """Stands in for the LM head during a log-prob forward: hidden states -> ``[N, T]`` log-probs of ``labels``,
    through :func:`~lit_videor2.losses.logprobs.hidden_logprobs` (chunked, recomputed per chunk in backward), so
    the ``[N, T, V]`` logits never exist. ``labels=None`` (a pass whose outputs are only its KV) returns nothing."""

    def __init__(self, head: nn.Module, labels: torch.Tensor | None, temperature: float, chunk_size: int) -> None:
        super().__init__()
        self.head = head
        self.labels, self.temperature, self.chunk_size = labels, temperature, chunk_size

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # [N, T, H] -> [N, T]
        if self.labels is None:
            return hidden.new_zeros(hidden.shape[:2])
        if getattr(self.head, "bias", None) is not None:
            raise ValueError("sequence_logprobs: an LM head with a bias is not supported (Qwen-VL heads have none).")
        return hidden_logprobs(
            hidden, self.head.weight, self.labels, temperature=self.temperature, chunk_size=self.chunk_size
        )


@contextmanager
def _logprob_head(model: nn.Module, labels: torch.Tensor | None, temperature: float, chunk_size: int):
    """Swap ``model.lm_head`` for a :class:`_LogprobHead` for one forward.

    The swap keeps the head's computation inside the model's own forward, so FSDP2's root hooks (which gather the
    head weight) cover it, and the output's ``logits`` field holds ``[N, T]`` log-probs.
    """
    head = model.lm_head
    model.lm_head = _LogprobHead(head, labels, temperature, chunk_size)
    try:
        yield
    finally:
        model.lm_head = head


def _full_logprobs(
    model: nn.Module, rollout: Rollout, video: dict[str, Any], temperature: float, chunk_size: int
) -> torch.Tensor:
    """One forward over prompt + completion for all N rows -> ``[N, T]`` log-probs of the completion."""
    lp, t = rollout.prompt_length, rollout.completion_length
    keep = torch.arange(lp - 1, lp + t - 1, device=rollout.completion_ids.device)  # positions predicting tokens 0..T-1
    with _logprob_head(model, rollout.completion_ids, temperature, chunk_size):
        out = model(
            input_ids=rollout.input_ids(),  # [N, Lp + T]
            attention_mask=rollout.attention_mask(),
            position_ids=rollout.position_ids,
            use_cache=False,
            logits_to_keep=keep,
            **video,
        )
    return out.logits  # [N, T]


def _activation_checkpointing(model: nn.Module) -> bool:
    """Whether activation checkpointing is on: the project's per-layer wrapper, or transformers' own."""
    flag = getattr(type(model), "is_activation_checkpointing", None)
    name = "is_activation_checkpointing" if flag is not None else "is_gradient_checkpointing"
    return is_activation_checkpointing(model) or bool(getattr(model, name, False))


def _shared_prompt_logprobs(
    model: nn.Module, rollout: Rollout, video: dict[str, Any], temperature: float, chunk_size: int
) -> torch.Tensor:
    """The prompt (all but its last token) once per prompt with gradient, its KV expanded to G rows, then
    ``[last prompt token, completion tokens 0..T-2]`` on top for the N rows -> ``[N, T]`` log-probs.

    Every call runs exactly these two forwards whatever the completion length (under FSDP2 all ranks must run
    the same forwards). The caches are functional (:mod:`lit_videor2.models.checkpointing`), so the path is the
    same with activation checkpointing on or off; the last prompt token is recomputed G times (one token per row)
    so that the completion pass alone produces every log-prob.
    """
    if (
        torch.is_grad_enabled()
        and model.training
        and _activation_checkpointing(model)
        and not (is_activation_checkpointing(model))
    ):
        raise ValueError(
            "sequence_logprobs(share_prompt=True) needs the KV cache, which transformers' gradient checkpointing "
            "drops in training mode: enable checkpointing with "
            "lit_videor2.models.checkpointing.enable_activation_checkpointing (what PolicySpec does) instead."
        )
    g, lp, t = rollout.group_size, rollout.prompt_length, rollout.completion_length
    prompt = rollout.prompt
    cache = FunctionalCache.recording(len(language_model(model).layers))
    no_positions = torch.zeros(0, dtype=torch.long, device=prompt.input_ids.device)
    with _logprob_head(model, None, temperature, chunk_size):
        model(
            input_ids=prompt.input_ids[:, :-1],  # [B, Lp - 1]
            attention_mask=prompt.attention_mask[:, :-1],
            position_ids=rollout.prompt_position_ids[..., :-1],  # (3, B, Lp - 1)
            cache=cache,
            use_cache=True,
            logits_to_keep=no_positions,
            **video,
        )
    last = prompt.input_ids[:, -1:].repeat_interleave(g, dim=0)  # [N, 1], a text token (the generation prompt's)
    with _logprob_head(model, rollout.completion_ids, temperature, chunk_size):
        out = model(
            input_ids=torch.cat([last, rollout.completion_ids[:, :-1]], dim=1),  # [N, T]
            attention_mask=rollout.attention_mask()[:, : lp + t - 1],  # [N, Lp + T - 1]
            position_ids=rollout.position_ids[..., lp - 1 : lp + t - 1],  # (3, N, T)
            cache=cache.expanded(g),  # differentiable: backward sums the G copies into the prompt pass
            use_cache=True,
            logits_to_keep=0,
        )
    return out.logits  # [N, T]


def sequence_logprobs(
    model: nn.Module,
    rollout: Rollout,
    *,
    reuse_vision: bool = True,
    share_prompt: bool = True,
    temperature: float = 1.0,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Teacher-forced per-token log-probs of the rollout's completions under ``model``.

    Uses the rollout's positions (hence the same frame times as generation). Run under ``torch.no_grad()`` for the
    reference / old-policy passes; with grad for the policy pass.

    Args:
        model: the policy or the reference model (same architecture as the generating model).
        rollout: from :func:`generate_group`.
        reuse_vision: feed the rollout's stored visual features (no vision-tower pass; the tower must be frozen).
            False re-encodes the pixels (once per prompt with ``share_prompt``, once per completion without).
        share_prompt: run the prompt once per prompt and the completions on its expanded KV cache (gradients
            flow into the prompt pass); False runs N full prompt + completion forwards (the baseline).
        temperature: the sampling temperature; log-probs are taken under ``softmax(logits / temperature)``.
        chunk_size: positions per chunk through the LM head; the ``[N, T, V]`` logits are never materialised
            (extra memory ``O(chunk_size × V)`` forward and backward).

    Works with activation checkpointing (:func:`~lit_videor2.models.checkpointing.enable_activation_checkpointing`)
    on or off, on both paths; the policy, old-policy and reference passes take the same path.

    Returns:
        ``[N, T]`` float32 log-probs; positions after EOS hold values too, mask them with ``completion_mask``.
    """
    model = inner_model(model)
    repeats = 1 if share_prompt else rollout.group_size
    video = _video_kwargs(model, rollout, reuse_vision=reuse_vision, repeats=repeats)
    path = _shared_prompt_logprobs if share_prompt else _full_logprobs
    return path(model, rollout, video, temperature, chunk_size)

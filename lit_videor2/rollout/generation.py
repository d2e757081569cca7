"""Group-shared generation (:func:`generate_group`): G completions per video prompt, the video encoded and the
prompt prefilled once per prompt (see :mod:`lit_videor2.rollout` for the design)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from transformers import GenerationConfig
from transformers.generation.logits_process import LogitsProcessorList

from lit_videor2.distributed.sharding import gathered_for_generation
from lit_videor2.models.policy import inner_model
from lit_videor2.models.vision import (
    continue_positions,
    encode_videos,
    original_rope_index,
    rope_positions,
    video_encoder_outputs,
    vision_special_token_ids,
)
from lit_videor2.rollout.containers import PromptBatch, Rollout
from lit_videor2.rollout.decoding import build_logits_processors, completion_mask_from_eos, decode_loop


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
    gather_for_generation: bool = True,
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
        gather_for_generation: under FSDP2, all-gather the full weights once for the whole call and reshard after
            (:func:`~lit_videor2.distributed.sharding.gathered_for_generation`); False: every decode step's forward
            all-gathers each decoder layer again. No effect on an unsharded model.

    Returns:
        A :class:`Rollout` with N = B·G completions, rows of one prompt adjacent.
    """
    sharded = model  # a peft wrapper is the FSDP root: gather through it
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
    with gathered_for_generation(sharded, gather_for_generation):  # every forward of the call, one gather
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


__all__ = ["generate_group"]

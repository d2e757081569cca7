"""Vision helpers for Qwen-VL policies: encode videos once, 3-D mRoPE positions, repeat per completion.

These wrap public transformers (5.x) calls:

* ``model.model.get_video_features(pixel_values_videos, video_grid_thw)`` returns one feature tensor per video
  (``pooler_output``, a tuple); the model forward takes them back through ``mm_encoder_outputs={"video": ...}``
  and then does not run the vision tower.
* 3-D mRoPE positions: :func:`rope_positions`, by the original Qwen rule for Qwen2-VL / Qwen2.5-VL
  (:mod:`lit_videor2.models.rope`) and ``model.model.get_rope_index`` for Qwen3-VL.

The project's prompt batches hold exactly one video per prompt (see :mod:`lit_videor2.data.collate`), so video
``i`` belongs to prompt row ``i``; the helpers rely on that and check it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPooling

from lit_videor2.models.policy import inner_model
from lit_videor2.models.rope import mrope_positions, token_types

#: Vision special tokens that must never be generated (a generated ``<|video_pad|>`` breaks the log-prob forward).
VISION_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
_CONFIG_VISION_IDS = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")


def vision_special_token_ids(config: Any, tokenizer: Any | None = None) -> list[int]:
    """Ids of every vision special token, from the model config and (for ``<|vision_pad|>``) the tokenizer.

    Args:
        config: the model config (``image_token_id``, ``video_token_id``, ``vision_start/end_token_id``).
        tokenizer: optional; adds the ids of :data:`VISION_SPECIAL_TOKENS` it knows (``<|vision_pad|>`` has no
            config attribute).

    Returns:
        Sorted, de-duplicated ids.
    """
    ids = {getattr(config, name, None) for name in _CONFIG_VISION_IDS}
    if tokenizer is not None:
        unk = getattr(tokenizer, "unk_token_id", None)
        for token in VISION_SPECIAL_TOKENS:
            i = tokenizer.convert_tokens_to_ids(token)
            if isinstance(i, int) and i >= 0 and i != unk:
                ids.add(i)
    return sorted(i for i in ids if isinstance(i, int) and i >= 0)


def video_token_counts(model: nn.Module, video_grid_thw: torch.Tensor) -> list[int]:
    """Number of LLM video tokens of each video: ``t * h * w / merge_size**2`` -> list of length ``num_videos``."""
    merge = int(model.config.vision_config.spatial_merge_size)
    return (video_grid_thw.prod(-1) // merge**2).tolist()


def encode_videos(
    model: nn.Module, pixel_values_videos: torch.Tensor, video_grid_thw: torch.Tensor
) -> BaseModelOutputWithPooling:
    """Run the vision tower (and merger) once over all videos of a batch.

    Args:
        pixel_values_videos: ``[P, C * tp * p * p]`` flattened patches of all videos (processor output).
        video_grid_thw: ``[V, 3]`` patch grid of each video.

    Returns:
        The model's own encoder output: ``pooler_output`` a tuple of ``V`` tensors ``[n_tokens_v, hidden]`` (the
        LLM-space features of each video) and, for Qwen3-VL, ``deepstack_features`` (per level, a tuple of ``V``
        tensors injected into the first decoder layers).
    """
    out = model.model.get_video_features(pixel_values_videos, video_grid_thw, return_dict=True)
    out.pooler_output = tuple(out.pooler_output)
    return out


def _repeat(per_video: Sequence[torch.Tensor], repeats: int) -> tuple[torch.Tensor, ...]:
    return tuple(f for f in per_video for _ in range(repeats))


def video_encoder_outputs(
    features: BaseModelOutputWithPooling, repeats: int = 1
) -> dict[str, BaseModelOutputWithPooling]:
    """``mm_encoder_outputs`` for the model forward from :func:`encode_videos`' output, each video ``repeats`` times.

    Rows of one prompt are adjacent (``repeat_interleave`` order), matching the row order of the token batch.
    Qwen3-VL's deepstack features are repeated the same way.
    """
    fields = {"pooler_output": _repeat(features.pooler_output, repeats)}
    deepstack = getattr(features, "deepstack_features", None)
    if deepstack is not None:
        fields["deepstack_features"] = [_repeat(level, repeats) for level in deepstack]
    return {"video": type(features)(**fields)}


def repeat_videos(
    pixel_values_videos: torch.Tensor, video_grid_thw: torch.Tensor, repeats: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Give each completion its own copy of its prompt's video (the per-completion baseline of other frameworks).

    Returns:
        ``pixel_values_videos`` ``[P * repeats, D]`` and ``video_grid_thw`` ``[V * repeats, 3]`` with the copies
        of one video adjacent.
    """
    sizes = video_grid_thw.prod(-1).tolist()  # patches per video
    chunks = torch.split(pixel_values_videos, sizes)
    pixels = torch.cat([c for c in chunks for _ in range(repeats)])
    return pixels, video_grid_thw.repeat_interleave(repeats, dim=0)


#: Architectures whose positions follow the original Qwen rule (:mod:`lit_videor2.models.rope`), not the model's own.
ORIGINAL_ROPE_RULE = ("qwen2_vl", "qwen2_5_vl")


def rope_positions(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    mm_token_type_ids: torch.Tensor,
    video_grid_thw: torch.Tensor | None,
    second_per_grid_ts: torch.Tensor | None = None,
    image_grid_thw: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """3-D mRoPE positions of (padded) sequences, the one place every forward that sees a video gets them from.

    Qwen2-VL and Qwen2.5-VL: the original Qwen rule (:func:`~lit_videor2.models.rope.mrope_positions`; transformers
    5.24's and 5.25's own ``get_rope_index`` depart from it). Other architectures (Qwen3-VL: a timestamp token per frame): the
    model's own ``model.model.get_rope_index``.

    Args:
        model: a ``...ForConditionalGeneration`` (or its peft wrapper).
        input_ids, attention_mask, mm_token_type_ids: ``[B, L]``.
        video_grid_thw: ``[V, 3]`` grids of the batch's videos in order of appearance (None: no video).
        second_per_grid_ts: ``[V]`` seconds per temporal grid (Qwen2.5-VL); ``None`` for architectures without it.
        image_grid_thw: ``[I, 3]`` grids of the batch's images (None: no image).

    Returns:
        ``position_ids`` ``(3, B, L)`` (0 on padding) and ``rope_deltas`` ``[B, 1]``.
    """
    config = inner_model(model).config
    if config.model_type in ORIGINAL_ROPE_RULE:
        vision = config.vision_config
        return mrope_positions(
            mm_token_type_ids,
            spatial_merge_size=int(vision.spatial_merge_size),
            image_grid_thw=image_grid_thw,
            video_grid_thw=video_grid_thw,
            second_per_grid_ts=second_per_grid_ts,
            tokens_per_second=getattr(vision, "tokens_per_second", None) if config.model_type == "qwen2_5_vl" else None,
            attention_mask=attention_mask,
        )
    kwargs: dict[str, Any] = {"video_grid_thw": video_grid_thw, "attention_mask": attention_mask}
    if image_grid_thw is not None:
        kwargs["image_grid_thw"] = image_grid_thw
    if second_per_grid_ts is not None:
        kwargs["second_per_grid_ts"] = second_per_grid_ts
    return inner_model(model).model.get_rope_index(input_ids, mm_token_type_ids, **kwargs)


@contextmanager
def original_rope_index(model: nn.Module) -> Iterator[None]:
    """Within the block, the model's own ``get_rope_index`` follows :func:`rope_positions` (Qwen2/2.5-VL only).

    For the code paths that let transformers compute positions (``model.generate``: the per-completion baseline
    rollout, and tests comparing against it). The instance attribute shadows the class method and is removed on
    exit. Other architectures are left untouched.
    """
    inner = inner_model(model)
    if inner.config.model_type not in ORIGINAL_ROPE_RULE:
        yield
        return

    def get_rope_index(
        input_ids: torch.Tensor,
        mm_token_type_ids: torch.Tensor,
        image_grid_thw: torch.Tensor | None = None,
        video_grid_thw: torch.Tensor | None = None,
        second_per_grid_ts: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **_: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        return rope_positions(
            inner, input_ids, mask, mm_token_type_ids, video_grid_thw, second_per_grid_ts, image_grid_thw
        )

    core = inner.model
    core.get_rope_index = get_rope_index
    try:
        yield
    finally:
        del core.get_rope_index


def batch_positions(model: nn.Module, batch: Mapping[str, Any], *, prefix: str = "") -> torch.Tensor | None:
    """``(3, B, L)`` positions of a collated batch's sequences (``prefix="prompt_"``: its prompts), or None.

    None when the batch holds no image or video (text-only rows need no 3-D positions). Uses the batch's
    ``{prefix}input_ids``, ``{prefix}attention_mask``, ``{prefix}mm_token_type_ids`` and the vision keys.
    """
    if batch.get("video_grid_thw") is None and batch.get("image_grid_thw") is None:
        return None
    ids = batch[f"{prefix}input_ids"]
    types = batch.get(f"{prefix}mm_token_type_ids")
    if types is None:
        config = inner_model(model).config
        types = token_types(ids, image_token_id=config.image_token_id, video_token_id=config.video_token_id)
    mask = batch.get(f"{prefix}attention_mask")
    positions, _ = rope_positions(
        model,
        ids,
        torch.ones_like(ids) if mask is None else mask,
        types,
        batch.get("video_grid_thw"),
        batch.get("second_per_grid_ts"),
        image_grid_thw=batch.get("image_grid_thw"),
    )
    return positions


def continue_positions(last: torch.Tensor, length: int) -> torch.Tensor:
    """Positions of ``length`` text tokens that follow a sequence whose last position is ``last`` ``(3, N, 1)``.

    After the video, text positions step by one on all three axes: ``last + 1 + arange(length)`` -> ``(3, N, length)``.
    """
    steps = torch.arange(1, length + 1, device=last.device, dtype=last.dtype)  # [length]
    return last + steps.view(1, 1, -1)


def vision_tower_trainable(model: nn.Module) -> bool:
    """Whether any parameter of the vision tower (``model.model.visual``, merger included) requires grad."""
    return any(p.requires_grad for p in model.model.visual.parameters())

"""The rollout containers: :class:`PromptBatch` (B left-padded video prompts) and :class:`Rollout` (G completions
per prompt, with the positions and visual features every later pass reuses)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from lit_videor2.models.vision import repeat_videos


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


__all__ = ["PromptBatch", "Rollout"]

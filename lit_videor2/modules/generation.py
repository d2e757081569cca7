"""Generation helpers shared by validation, evaluation and inference."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lit_videor2.models.vision import vision_special_token_ids

VISION_INPUT_KEYS = ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts")


def stop_token_ids(tokenizer: Any) -> list[int]:
    """``<|im_end|>`` and the tokenizer's eos (deduplicated)."""
    ids = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.eos_token_id]
    return sorted({i for i in ids if isinstance(i, int) and i >= 0})


def prompt_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """Model inputs of the prompt part of a collated batch (left-padded, for generation)."""
    out = {"input_ids": batch["prompt_input_ids"], "attention_mask": batch["prompt_attention_mask"]}
    if "prompt_mm_token_type_ids" in batch:
        out["mm_token_type_ids"] = batch["prompt_mm_token_type_ids"]
    out.update({k: batch[k] for k in VISION_INPUT_KEYS if k in batch})
    return out


@torch.no_grad()
def generate_completions(
    model: nn.Module,
    tokenizer: Any,
    batch: dict[str, Any],
    *,
    max_new_tokens: int = 256,
    do_sample: bool = False,
    **gen_kwargs: Any,
) -> tuple[list[str], torch.Tensor]:
    """Generate one completion per prompt of a collated batch; returns decoded texts and token ids ``[B, T]``."""
    inputs = prompt_inputs(batch)
    stop = stop_token_ids(tokenizer)
    out = model.generate(
        **inputs,
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        eos_token_id=stop,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop[0],
        suppress_tokens=vision_special_token_ids(getattr(model, "config", None), tokenizer),
        **gen_kwargs,
    )
    completion_ids = out[:, inputs["input_ids"].shape[1] :]
    texts = tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
    return texts, completion_ids

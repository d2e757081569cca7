"""The policy's anatomy and spec: what to load, where its parts are, what to freeze, LoRA, and the processor check.

A :class:`PolicySpec` says which checkpoint to load (local folder or hub id), in which dtype and attention
implementation, what to freeze and whether to add LoRA adapters (peft).
:func:`~lit_videor2.distributed.loading.load_policy` turns it into a model;
:func:`~lit_videor2.distributed.sharding.shard_policy` applies FSDP2 and
:func:`~lit_videor2.distributed.sharding.gathered_for_generation` gathers its weights for a generation call.
:func:`inner_model`, :func:`vision_tower`, :func:`language_model` and :func:`decoder_layers` name its parts.
Qwen2.5-VL is first-class; Qwen2-VL and Qwen3-VL load through the same path (``AutoModelForImageTextToText``)
and share the module layout ``model.visual`` / ``model.language_model``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from lit_videor2.errors import UserError

DType = Literal["float32", "bfloat16", "float16"]
LLM_LINEAR_NAMES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class LoraSpec:
    """LoRA adapters on the language model's linear layers (reference: r 64, alpha 64, dropout 0.05)."""

    r: int = 64
    """Adapter rank."""
    alpha: int = 64
    """Scaling numerator (``lora_alpha``)."""
    dropout: float = 0.05
    """Dropout on the adapter input."""
    target_modules: list[str] = field(default_factory=lambda: list(LLM_LINEAR_NAMES))
    """Names of the language-model linear layers to adapt (vision layers are never targeted)."""


@dataclass
class PolicySpec:
    """Which model to train and how."""

    path: str
    """Local Hugging Face folder or hub id (e.g. ``Qwen/Qwen2.5-VL-7B-Instruct``)."""
    dtype: DType = "float32"
    """Parameter dtype at load. Keep float32 with ``precision: bf16-mixed``; use bfloat16 with ``bf16-true``."""
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    """``auto``: flash-attention 2 when installed and on CUDA, else sdpa."""
    gradient_checkpointing: bool = False
    """Recompute decoder activations in the backward pass (activation checkpointing, per decoder layer,
    non-reentrant; prompt sharing stays on: :mod:`lit_videor2.distributed.activation_checkpointing`)."""
    freeze_vision: bool = True
    """Freeze the vision tower and its merger (the reference does, in both stages)."""
    freeze_llm: bool = False
    """Freeze the language model's decoder layers (with LoRA the base weights are frozen anyway)."""
    freeze_embeddings: bool = False
    """Freeze the input token embeddings."""
    freeze_lm_head: bool = False
    """Freeze the output projection."""
    lora: LoraSpec | None = None
    """LoRA adapters (None: full fine-tuning of whatever is not frozen)."""
    gather_for_generation: bool = True
    """Under FSDP2: all-gather the full weights once per generation call (GRPO rollout, validation and ``test``
    batch) and keep them for the whole decode loop (fast; peak memory: every parameter unsharded in its compute
    dtype, plus the KV cache). False: every decode step's forward all-gathers every decoder layer and the root
    (embeddings, LM head) again, as in training (one unit's weights at a time; tens of ms per token at 7B on
    NVLink). No effect without FSDP2. See
    ``docs/performance.md#generation-under-fsdp2``."""


def resolve_attn_implementation(choice: str) -> str:
    if choice != "auto":
        return choice
    if importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available():
        return "flash_attention_2"
    return "sdpa"


def inner_model(model: nn.Module) -> nn.Module:
    """The ``*ForConditionalGeneration`` model, under a peft wrapper if there is one."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base


def vision_tower(model: nn.Module) -> nn.Module:
    return inner_model(model).model.visual


def language_model(model: nn.Module) -> nn.Module:
    return inner_model(model).model.language_model


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    return list(language_model(model).layers)


def apply_freezing(model: nn.Module, spec: PolicySpec) -> None:
    """Set ``requires_grad`` per the spec (before LoRA is added)."""
    lm = language_model(model)
    parts = {
        "vision": (spec.freeze_vision, vision_tower(model)),
        "llm": (spec.freeze_llm, lm.layers),
        "embeddings": (spec.freeze_embeddings, lm.embed_tokens),
        "lm_head": (spec.freeze_lm_head, inner_model(model).lm_head),
    }
    for _, (frozen, module) in parts.items():
        for p in module.parameters():
            p.requires_grad_(not frozen)
    if spec.freeze_llm:
        for p in lm.norm.parameters():
            p.requires_grad_(False)


def add_lora(model: nn.Module, lora: LoraSpec) -> nn.Module:
    """Wrap with peft LoRA on the language model's linear layers only (a regex keeps vision layers out)."""
    from peft import LoraConfig, get_peft_model

    names = "|".join(lora.target_modules)
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        bias="none",
        target_modules=rf".*language_model.*\.({names})",
    )
    return get_peft_model(model, config)


def _processor_class_problem(model_type: str, processor: Any) -> str | None:
    """Why ``processor``'s class is not the one transformers pairs with ``model_type`` (None when it is, or unknown).

    Qwen2-VL's and Qwen2.5-VL's processors share every size and token, but only Qwen2.5-VL's returns
    ``second_per_grid_ts`` (the seconds per temporal grid of each video): with the other, a Qwen2.5-VL model
    silently loses absolute time in its positions.
    """
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    expected = PROCESSOR_MAPPING_NAMES.get(model_type)
    name = type(processor).__name__
    if not isinstance(expected, str) or name == expected or not name.endswith("Processor"):
        return None
    why = " (it drops second_per_grid_ts, the video's absolute time)" if model_type == "qwen2_5_vl" else ""
    return f"processor class {name}, but {model_type} models need {expected}{why}"


class ProcessorMismatchError(UserError, ValueError):
    """The processor (``data.processor`` or the policy folder's) does not belong to the model."""


def check_processor_matches(model: nn.Module, processor: Any, *, processor_path: str = "the processor") -> None:
    """Raise :class:`ProcessorMismatchError` (a ValueError) naming the mismatch when ``processor`` does not belong to ``model``.

    Checked: the processor class (the one transformers pairs with the model type: a Qwen2-VL processor with a
    Qwen2.5-VL model would drop ``second_per_grid_ts``), the video placeholder token id, the vision patch / merge /
    temporal patch sizes, and that every token id the tokenizer can produce has an embedding row.
    """
    config = inner_model(model).config
    vision = config.vision_config
    vp = getattr(processor, "video_processor", None)
    problems = []
    wrong_class = _processor_class_problem(config.model_type, processor)
    if wrong_class:
        problems.append(wrong_class)
    video_id = getattr(processor, "video_token_id", None)
    if video_id is not None and video_id != getattr(config, "video_token_id", video_id):
        problems.append(f"video token id {video_id} (processor) vs {config.video_token_id} (model)")
    for proc_attr, cfg_attr in (
        ("patch_size", "patch_size"),
        ("merge_size", "spatial_merge_size"),
        ("temporal_patch_size", "temporal_patch_size"),
    ):
        a, b = getattr(vp, proc_attr, None), getattr(vision, cfg_attr, None)
        if a is not None and b is not None and a != b:
            problems.append(f"{proc_attr} {a} (processor) vs {cfg_attr} {b} (model)")
    tokenizer = getattr(processor, "tokenizer", None)
    rows = inner_model(model).get_input_embeddings().num_embeddings
    if tokenizer is not None and len(tokenizer) > rows:
        problems.append(f"tokenizer has {len(tokenizer)} tokens but the model embeds only {rows}")
    if problems:
        raise ProcessorMismatchError(
            f"{processor_path} does not match the model ({type(inner_model(model)).__name__}): "
            + "; ".join(problems)
            + ". Load the processor from the model's own folder (leave data.processor unset, or set it to the policy path)."
        )


VIDEO_TOKEN_MISMATCH_HINT = (
    "The prompt's <|video_pad|> tokens do not match the visual features. Usual causes: the processor belongs to "
    "another model (patch or merge size), a prompt was cut inside the video span (raise data.max_prompt_length "
    "instead of truncating), or a completion contains a vision token (generation must suppress them)."
)


def explain_video_token_mismatch(err: Exception) -> Exception:
    """Re-word transformers' 'features and tokens do not match' error with what to fix; other errors unchanged."""
    text = str(err).lower()
    if "do not match" in text and ("video" in text or "image" in text):
        return ValueError(f"{VIDEO_TOKEN_MISMATCH_HINT} (transformers: {err})")
    return err

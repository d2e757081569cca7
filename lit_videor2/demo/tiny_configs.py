"""Sizes, configs and processors of the tiny Qwen-VL models (see :mod:`lit_videor2.demo.tiny` for the differences
from the public checkpoints).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from transformers import (
    Qwen2_5_VLConfig,
    Qwen2_5_VLProcessor,
    Qwen2VLConfig,
    Qwen2VLImageProcessor,
    Qwen2VLProcessor,
    Qwen2VLVideoProcessor,
    Qwen3VLConfig,
    Qwen3VLProcessor,
    Qwen3VLVideoProcessor,
)

from lit_videor2.demo.tiny_templates import QWEN2_VL_CHAT_TEMPLATE, QWEN3_VL_CHAT_TEMPLATE

Arch = Literal["qwen2_5_vl", "qwen2_vl", "qwen3_vl"]
ARCHS: tuple[str, ...] = ("qwen2_5_vl", "qwen2_vl", "qwen3_vl")


@dataclass
class TinySizes:
    """Sizes of a tiny model. Defaults give roughly 0.3-0.4 M parameters."""

    hidden_size: int = 64
    """Width of the language model."""
    layers: int = 2
    """Number of language-model decoder layers."""
    intermediate_size: int | None = None
    """MLP width of the language model; None means ``2 * hidden_size``."""
    num_heads: int = 4
    """Attention heads of the language model (head_dim = hidden_size / num_heads)."""
    num_kv_heads: int = 2
    """Key/value heads of the language model (grouped-query attention, as in the public models)."""
    vision_hidden_size: int = 32
    """Width of the vision tower."""
    vision_depth: int = 2
    """Number of vision-tower blocks."""
    vision_heads: int = 2
    """Attention heads of the vision tower."""
    vision_intermediate_size: int = 64
    """MLP width of the vision tower (Qwen2-VL uses ``mlp_ratio = this / vision_hidden_size``)."""
    vocab_size: int = 1024
    """Upper bound on the trained BPE vocabulary (bytes + merges) before the 28 added Qwen/tag tokens; the
    built-in corpus yields ~765 (merges need a pair seen twice). The model's vocabulary is padded to 64."""

    def __post_init__(self) -> None:
        if self.intermediate_size is None:
            self.intermediate_size = 2 * self.hidden_size
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be divisible by num_heads={self.num_heads} "
                "with an even head_dim (mRoPE splits head_dim / 2 frequencies into sections)."
            )
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads={self.num_heads} must be a multiple of num_kv_heads={self.num_kv_heads}.")
        if self.vision_hidden_size % self.vision_heads:
            raise ValueError(
                f"vision_hidden_size={self.vision_hidden_size} must be divisible by vision_heads={self.vision_heads}."
            )
        if self.layers < 1 or self.vision_depth < 1:
            raise ValueError(f"layers={self.layers} and vision_depth={self.vision_depth} must be >= 1.")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


def default_tiny_kwargs() -> dict[str, int | None]:
    """The default sizes as a plain dict (keyword arguments of :func:`build_tiny_model`)."""
    return asdict(TinySizes())


def _mrope_section(head_dim: int, arch: str) -> list[int]:
    """The public mRoPE sections scaled to ``head_dim`` (they sum to head_dim / 2)."""
    half = head_dim // 2
    if arch == "qwen3_vl":  # public [24, 20, 20] of 64, interleaved
        h = max(1, half * 20 // 64)
        return [half - 2 * h, h, h]
    t = max(1, half // 4)  # public [16, 24, 24] of 64
    h = (half - t) // 2
    return [t, h, half - t - h]


def token_ids(tok) -> dict[str, int]:
    """The vision/bos/eos/pad token ids of ``tok`` under the config keys that hold them."""
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_end|>")}
    return {
        "image_token_id": tok.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tok.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tok.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tok.convert_tokens_to_ids("<|vision_end|>"),
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }


def make_config(arch: str, s: TinySizes, ids: dict[str, int], vocab_size: int):
    """The transformers config of a tiny ``arch`` model of sizes ``s`` (ids from :func:`token_ids`)."""
    text = {
        "vocab_size": vocab_size,
        "hidden_size": s.hidden_size,
        "intermediate_size": s.intermediate_size,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.num_heads,
        "num_key_value_heads": s.num_kv_heads,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-6,
        "max_position_embeddings": 32768,
        "bos_token_id": ids["bos_token_id"],
        "eos_token_id": ids["eos_token_id"],
        "pad_token_id": ids["pad_token_id"],
        "tie_word_embeddings": False,
    }
    top = {k: ids[k] for k in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")}
    top["tie_word_embeddings"] = False
    rope = {"rope_type": "default", "mrope_section": _mrope_section(s.head_dim, arch)}
    if arch == "qwen2_5_vl":
        text.update(
            rope_parameters={**rope, "rope_theta": 1e6},
            use_sliding_window=False,
            sliding_window=32768,
            max_window_layers=s.layers,
        )
        vision = {
            "depth": s.vision_depth,
            "hidden_size": s.vision_hidden_size,
            "intermediate_size": s.vision_intermediate_size,
            "num_heads": s.vision_heads,
            "hidden_act": "silu",
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "tokens_per_second": 2,
            "window_size": 112,
            "fullatt_block_indexes": [s.vision_depth - 1],
            "out_hidden_size": s.hidden_size,
        }
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **top)
    if arch == "qwen2_vl":
        text.update(
            rope_parameters={**rope, "rope_theta": 1e6},
            use_sliding_window=False,
            sliding_window=32768,
            max_window_layers=s.layers,
        )
        vision = {
            "depth": s.vision_depth,
            "embed_dim": s.vision_hidden_size,
            "hidden_size": s.hidden_size,
            "mlp_ratio": max(1, s.vision_intermediate_size // s.vision_hidden_size),
            "num_heads": s.vision_heads,
            "hidden_act": "quick_gelu",
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        }
        return Qwen2VLConfig(text_config=text, vision_config=vision, **top)
    if arch == "qwen3_vl":
        text.update(
            head_dim=s.head_dim,
            rope_parameters={**rope, "mrope_interleaved": True, "rope_theta": 5e6},
        )
        vision = {
            "depth": s.vision_depth,
            "hidden_size": s.vision_hidden_size,
            "intermediate_size": s.vision_intermediate_size,
            "num_heads": s.vision_heads,
            "hidden_act": "gelu_pytorch_tanh",
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": s.hidden_size,
            "num_position_embeddings": 576,
            "deepstack_visual_indexes": [0],
        }
        return Qwen3VLConfig(text_config=text, vision_config=vision, **top)
    raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")


def make_processor(arch: str, tok):
    """The public processor classes with the settings of the public ``preprocessor_config.json`` files."""
    if arch in ("qwen2_5_vl", "qwen2_vl"):
        image = Qwen2VLImageProcessor(
            size={"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 16384}, patch_size=14, temporal_patch_size=2
        )
        video = Qwen2VLVideoProcessor(patch_size=14, temporal_patch_size=2, merge_size=2)
        cls = Qwen2_5_VLProcessor if arch == "qwen2_5_vl" else Qwen2VLProcessor
        return cls(image_processor=image, tokenizer=tok, video_processor=video, chat_template=QWEN2_VL_CHAT_TEMPLATE)
    half = [0.5, 0.5, 0.5]
    image = Qwen2VLImageProcessor(
        size={"shortest_edge": 65536, "longest_edge": 16777216},
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=half,
        image_std=half,
    )
    video = Qwen3VLVideoProcessor(
        size={"shortest_edge": 4096, "longest_edge": 25165824},
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=half,
        image_std=half,
    )
    return Qwen3VLProcessor(
        image_processor=image, tokenizer=tok, video_processor=video, chat_template=QWEN3_VL_CHAT_TEMPLATE
    )


__all__ = ["ARCHS", "Arch", "TinySizes", "default_tiny_kwargs", "make_config", "make_processor", "token_ids"]

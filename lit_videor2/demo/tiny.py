"""Tiny, randomly initialised Qwen-VL checkpoints built offline, for tests and the CPU demo.

:func:`build_tiny_model` writes an ordinary Hugging Face folder — ``config.json``, ``model.safetensors``,
``generation_config.json``, ``tokenizer.json`` + ``tokenizer_config.json``, ``chat_template.jinja`` and the
processor config — holding a model of the *real* class (``Qwen2_5_VLForConditionalGeneration``,
``Qwen2VLForConditionalGeneration``, ``Qwen3VLForConditionalGeneration``) with the real processor classes.
``AutoProcessor.from_pretrained(DIR)``, ``<ModelClass>.from_pretrained(DIR)`` and
``AutoModelForImageTextToText.from_pretrained(DIR)`` load it exactly as they load a public checkpoint, so
the rest of the project never needs a special path for it.

What is the same as a public checkpoint
---------------------------------------
* Model, config, tokenizer and processor classes; the vision tower's patch, temporal patch and merge sizes;
  the image/video processor settings (normalisation, pixel bounds) of the public ``preprocessor_config.json``.
* The Qwen special tokens, in the public order (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``, …,
  ``<|vision_start|>``, ``<|vision_end|>``, ``<|vision_pad|>``, ``<|image_pad|>``, ``<|video_pad|>``, then the
  non-special ``<tool_call>`` … ``<|file_sep|>``, ``<tool_response>``, ``</tool_response>``, ``<think>``,
  ``</think>``), right after the BPE vocabulary. The config's ``image_token_id`` / ``video_token_id`` /
  ``vision_start_token_id`` / ``vision_end_token_id`` and the text config's ``bos``/``eos``/``pad`` ids point at
  them. ``eos_token = <|im_end|>``, ``pad_token = <|endoftext|>``, no BOS, as in the public tokenizers.
* The public chat templates (Qwen2-VL and Qwen2.5-VL share one, with the default system prompt
  "You are a helpful assistant."; Qwen3-VL's has no default system prompt).

What differs (on purpose)
-------------------------
* Sizes: text hidden 64, 2 layers, 4 heads / 2 KV heads (head_dim 16), a 1-2 layer vision tower of width 32.
  The mRoPE sections are the public ones scaled to head_dim 16 (sum = head_dim / 2).
* Vocabulary: a byte-level BPE (the Qwen2 pre-tokenizer regex, NFC, byte-level decoder — exactly what
  ``Qwen2Tokenizer`` rebuilds on load) trained with ``tokenizers`` on a built-in corpus of Video-R2 style
  text (:data:`~lit_videor2.data.records.REASONING_INSTRUCTION`, timestamped claims about coloured shapes,
  options A-E, generic English). So the token *ids* differ from the 151k Qwen vocabulary; code must read ids
  from the tokenizer/config, never hard-code 151655 and friends.
* ``<think>``, ``</think>``, ``<answer>``, ``</answer>`` are single added tokens (non-special, like Qwen3's
  ``<think>``), so ``decode(..., skip_special_tokens=True)`` keeps them and the format reward sees them.
* ``generation_config.json`` carries only the bos/eos/pad ids (eos = [<|im_end|>, <|endoftext|>]); the public
  checkpoints' sampling defaults (e.g. Qwen2.5-VL's ``repetition_penalty=1.05, top_k=1``) are not copied:
  rollout code must pass its sampling settings explicitly anyway.

Per architecture
----------------
``qwen2_5_vl``
    Vision: window attention (``window_size=112``), full attention on the last block, SwiGLU MLP,
    ``tokens_per_second=2``; patch 14, merge 2, temporal patch 2. Text mRoPE sections ``[2, 3, 3]`` (public
    ``[16, 24, 24]``). The processor returns ``second_per_grid_ts = temporal_patch_size / sampled_fps``, where
    ``sampled_fps = len(frames_indices) / total_num_frames * fps`` of the :class:`VideoMetadata` — so ``fps``
    and ``total_num_frames`` describe the *source* video and ``frames_indices`` the sampled source frames.
``qwen2_vl``
    Vision: ``embed_dim`` / ``mlp_ratio`` naming, ``hidden_size`` = the LLM width, quick-GELU MLP; patch 14.
    No absolute time: the processor returns no ``second_per_grid_ts`` and the temporal mRoPE index steps by
    one per temporal patch whatever the fps.
``qwen3_vl``
    Vision: patch **16** (merged-patch factor 32), learned position embeddings (interpolated; 576 = 24², public
    2304 = 48²), DeepStack
    (``deepstack_visual_indexes=[0]`` feeds the first LLM layer); normalisation mean/std 0.5. Text has an
    explicit ``head_dim``, interleaved mRoPE (sections ``[4, 2, 2]``, public ``[24, 20, 20]``),
    ``rope_theta=5e6``. Time is given as text: the processor writes, per temporal patch (frame pair),
    ``<{t:.1f} seconds><|vision_start|>`` + ``<|video_pad|>`` × (tokens per frame) + ``<|vision_end|>``, with
    ``t`` = the mean of ``frames_indices[2k] / fps`` and ``frames_indices[2k+1] / fps``. Around the blocks,
    transformers 5.24 keeps the template's own ``<|vision_start|>`` … ``<|vision_end|>`` pair (it replaces only the
    ``<|video_pad|>``), 5.25 replaces the whole triple: nothing in the project depends on which (positions come from
    ``mm_token_type_ids``, the processor cache stores the placeholder text the processor makes, and its key holds
    the transformers version). No ``second_per_grid_ts``.

The processor call that works (all three archs, transformers 5.24 and 5.25)
--------------------------------------------------------------------------
::

    from transformers.video_utils import VideoMetadata

    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    pixels = H * W if arch != "qwen3_vl" else T * H * W   # see "size" below
    inputs = processor(
        text=[text],
        videos=[frames],                      # uint8 tensor (T, 3, H, W), frames already sampled
        video_metadata=[VideoMetadata(total_num_frames=n_src, fps=src_fps, frames_indices=indices)],
        do_sample_frames=False,               # keep exactly these frames
        size={"shortest_edge": pixels, "longest_edge": pixels},  # keep H x W (defaults upscale small frames)
        cap_pixels_per_frame=False,           # explicit: silences the 5.24 "cap will become default" warning
        return_tensors="pt",
    )
    # keys: input_ids, attention_mask, mm_token_type_ids, pixel_values_videos, video_grid_thw
    #       (+ second_per_grid_ts for qwen2_5_vl); pass them all to the model forward.

* The same keys may go inside ``videos_kwargs={...}`` instead (checked).
* ``VideoMetadata`` describes the *source* video: ``fps`` = its native fps, ``total_num_frames`` = its frame count,
  ``frames_indices`` = the source indices of the frames passed. Qwen2.5-VL derives
  ``second_per_grid_ts = temporal_patch_size / (len(frames_indices) / total_num_frames * fps)``, i.e. the
  *average* sampling rate over the whole source: sample uniformly over the whole video (or pass
  ``total_num_frames``/``fps`` of the span actually sampled), else the times are wrong without any error.
  Qwen3-VL writes ``frames_indices[i] / fps`` into the prompt.
* ``size``: for Qwen2/2.5-VL ``shortest_edge``/``longest_edge`` bound the pixels of *one frame*; for Qwen3-VL
  they bound the *whole clip* (``T*H*W``; passing ``H*W`` silently shrinks 64x64 frames to 32x32). ``H`` and
  ``W`` must be multiples of ``patch_size * merge_size`` (28 for qwen2/2.5, 32 for qwen3) to stay unchanged.
* The number of ``<|video_pad|>`` tokens equals ``video_grid_thw.prod() // merge_size**2``;
  ``mm_token_type_ids`` (0 text, 1 image, 2 video) comes from the processor and the model needs it.

Pitfalls found
--------------
* Qwen3-VL's saved video processor has ``do_sample_frames=True`` (as the public one): with frames already
  sampled and metadata describing the source, it re-samples indices out of range (``IndexError``). Always pass
  ``do_sample_frames=False``.
* Without ``video_metadata`` nothing fails: Qwen2.5-VL assumes 24 fps (``second_per_grid_ts = 0.083``),
  Qwen3-VL writes timestamps for 24 fps (a warning only).
* Qwen3-VL timestamps use ``f"{t:.1f}"``: 0.25 s prints as ``<0.2 seconds>``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import asdict
from pathlib import Path

import torch
import transformers
from transformers import GenerationConfig

from lit_videor2.demo.tiny_configs import ARCHS, Arch, TinySizes, make_config, make_processor, token_ids
from lit_videor2.demo.tiny_tokenizer import build_tiny_tokenizer

log = logging.getLogger(__name__)


_MODEL_CLASSES = {
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
}
_MODEL_MAX_LENGTH = {"qwen2_5_vl": 131072, "qwen2_vl": 32768, "qwen3_vl": 262144}


def model_class(arch: Arch):
    """The transformers model class of ``arch``."""
    if arch not in _MODEL_CLASSES:
        raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")
    return getattr(transformers, _MODEL_CLASSES[arch])


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Parameter counts: total, vision tower (incl. merger), language model (incl. embeddings and head)."""
    total = sum(p.numel() for p in model.parameters())
    vision = sum(p.numel() for p in model.model.visual.parameters())
    return {"total": total, "vision": vision, "language": total - vision}


def build_tiny_model(
    arch: Arch,
    out: str | Path,
    *,
    seed: int = 0,
    hidden_size: int = 64,
    layers: int = 2,
    intermediate_size: int | None = None,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    vision_hidden_size: int = 32,
    vision_depth: int = 2,
    vision_heads: int = 2,
    vision_intermediate_size: int = 64,
    vocab_size: int = 1024,
) -> Path:
    """Write a tiny, randomly initialised (seeded) Hugging Face checkpoint of ``arch`` to ``out``; return ``out``.

    Args:
        arch: ``qwen2_5_vl``, ``qwen2_vl`` or ``qwen3_vl``.
        out: output folder (created; existing files with the same names are overwritten).
        seed: seed of the weight initialisation; the same seed gives bitwise identical weights.
        hidden_size, layers, ...: see :class:`TinySizes`.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")
    sizes = TinySizes(
        hidden_size=hidden_size,
        layers=layers,
        intermediate_size=intermediate_size,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        vision_hidden_size=vision_hidden_size,
        vision_depth=vision_depth,
        vision_heads=vision_heads,
        vision_intermediate_size=vision_intermediate_size,
        vocab_size=vocab_size,
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    tok = build_tiny_tokenizer(sizes.vocab_size, model_max_length=_MODEL_MAX_LENGTH[arch])
    ids = token_ids(tok)
    padded_vocab = int(math.ceil(len(tok) / 64) * 64)  # the public vocabularies are padded too (151936 > 151665)
    config = make_config(arch, sizes, ids, padded_vocab)

    # Weight init is a function of the seed only: fork the RNG so the caller's global state is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(arch)(config)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["bos_token_id"],
        eos_token_id=[ids["eos_token_id"], ids["pad_token_id"]],
        pad_token_id=ids["pad_token_id"],
    )
    model.save_pretrained(out)
    make_processor(arch, tok).save_pretrained(out)

    counts = count_parameters(model)
    (out / "tiny_model.json").write_text(
        json.dumps({"arch": arch, "seed": seed, "sizes": asdict(sizes), "parameters": counts}, indent=2) + "\n"
    )
    log.info("tiny %s model written to %s: %s parameters (vision %s)", arch, out, counts["total"], counts["vision"])
    return out


def tiny_model_main(argv: list[str] | None = None) -> Path:
    """``lit_videor2 tiny-model --arch ARCH --out DIR [--seed S --hidden-size H --layers L]``."""
    p = argparse.ArgumentParser(prog="lit_videor2 tiny-model", description=build_tiny_model.__doc__.split("\n")[0])
    p.add_argument("--arch", required=True, choices=ARCHS)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    a = p.parse_args(argv)
    path = build_tiny_model(a.arch, a.out, seed=a.seed, hidden_size=a.hidden_size, layers=a.layers)
    counts = json.loads((path / "tiny_model.json").read_text())["parameters"]
    print(f"wrote tiny {a.arch} to {path} ({counts['total']:,} parameters, vision {counts['vision']:,})")
    return path


__all__ = ["build_tiny_model", "count_parameters", "model_class", "tiny_model_main"]

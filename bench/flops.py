"""FLOPs per GRPO step at Qwen2.5-VL-7B dimensions, counted by ``torch.utils.flop_counter.FlopCounterMode`` on the
project's own code path: (a) group sharing, (b) per-completion (the TRL / Video-R1 layout), and the analytic floor.

The model is a randomly initialised ``Qwen2_5_VLForConditionalGeneration`` with the public 7B config's sizes
(text: hidden 3584, 28 layers, 28 heads / 4 KV heads, intermediate 18944, vocabulary 152064; vision: depth 32,
hidden 1280, 16 heads, intermediate 3420, window 112, full attention on blocks 7/15/23/31) and the tiny checkpoint's
tokenizer ids (token ids only index rows; they cost no FLOPs). It runs for real, every layer (no extrapolation), in
bfloat16 — on a GPU that takes a minute or two; ``--layers`` / ``--vision-depth`` shrink it for a CPU smoke run.

One step = ``generate_group`` (G completions of exactly T tokens) + the reference pass (no grad) + the policy pass
with backward (``grpo_loss``, bnpo, β 0.04), activation checkpointing on (the project's per-layer wrapper), vision
frozen. The optimizer step is left out (O(parameters), < 0.01 % here).

Floor (what no implementation can avoid with this model): the video encoded once per prompt, the prompt run once
per pass, only the G·T completion tokens paid G times. Counted from its parts with the same counter:
``V`` (one vision encode), ``P`` (one prompt forward on the features, 1 row) and ``C`` (G·T completion tokens on
the prompt's KV, LM head included): generation ``V + P + C``, reference ``P + C``, policy ``4 (P + C)`` (forward,
checkpoint recompute, backward = 2 forwards). So floor = ``V + 6 (P + C)``.

Usage: ``python bench/flops.py [--device cuda] [--lengths 64 256 1024]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from grpo_step import make_frames, make_prompt  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from lit_videor2.distributed.activation_checkpointing import (  # noqa: E402
    FunctionalCache,
    enable_activation_checkpointing,
)
from lit_videor2.losses import group_advantages, grpo_loss  # noqa: E402
from lit_videor2.models.vision import encode_videos, video_encoder_outputs  # noqa: E402
from lit_videor2.rollout import generate_group, sequence_logprobs, stop_token_ids  # noqa: E402

TEXT_7B = dict(
    hidden_size=3584,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    intermediate_size=18944,
    vocab_size=152064,
)
VISION_7B = dict(
    depth=32,
    hidden_size=1280,
    num_heads=16,
    intermediate_size=3420,
    out_hidden_size=3584,
    window_size=112,
    fullatt_block_indexes=[7, 15, 23, 31],
)


def build_7b(tiny_dir: Path, layers: int, vision_depth: int, device: str, dtype: torch.dtype):
    """A random Qwen2.5-VL at 7B sizes (``layers`` / ``vision_depth`` of them) with the tiny checkpoint's token ids."""
    from transformers import AutoConfig, Qwen2_5_VLForConditionalGeneration

    config = AutoConfig.from_pretrained(tiny_dir)
    text = config.text_config
    for k, v in {**TEXT_7B, "num_hidden_layers": layers}.items():
        setattr(text, k, v)
    text.head_dim = text.hidden_size // text.num_attention_heads
    text.layer_types = ["full_attention"] * layers
    text.rope_parameters = {**(text.rope_parameters or {}), "mrope_section": [16, 24, 24]}
    vision = config.vision_config
    fullatt = [i for i in VISION_7B["fullatt_block_indexes"] if i < vision_depth] or [vision_depth - 1]
    for k, v in {**VISION_7B, "depth": vision_depth, "fullatt_block_indexes": fullatt}.items():
        setattr(vision, k, v)
    with torch.device(device):
        # eager: FlopCounterMode's sdpa formula rejects grouped-query (4 KV heads) shapes; eager counts the same matmuls
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype, attn_implementation="eager")
    model.model.visual.requires_grad_(False)
    enable_activation_checkpointing(model)
    return model.train()


def count(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def step_flops(model, prompt, group_size: int, tokens: int, share: bool, eos: list[int]) -> int:
    """FLOPs of one GRPO step (generation, reference pass, policy pass + backward) on the real code path."""

    def step():
        rollout = generate_group(
            model,
            prompt,
            group_size=group_size,
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            temperature=0.9,
            top_k=50,
            eos_token_ids=eos,
            share_prefix=share,
        )
        assert rollout.completion_ids.shape == (group_size, tokens)
        with torch.no_grad():  # the reference has the policy's architecture: same FLOPs
            ref = sequence_logprobs(model, rollout, reuse_vision=share, share_prompt=share, temperature=0.9)
        logps = sequence_logprobs(model, rollout, reuse_vision=share, share_prompt=share, temperature=0.9)
        adv = group_advantages(torch.rand(rollout.num_completions, device=logps.device), group_size)
        loss, _ = grpo_loss(logps, None, ref, adv, rollout.completion_mask, loss_type="bnpo", beta=0.04)
        loss.backward()
        model.zero_grad(set_to_none=True)

    return count(step)


def floor_parts(model, prompt, group_size: int, tokens: int) -> tuple[int, int, int]:
    """``V`` (vision encode), ``P`` (prompt forward, 1 row) and ``C`` (G·T completion tokens on its KV) FLOPs."""
    with torch.no_grad():
        v = count(lambda: encode_videos(model, prompt.pixel_values_videos, prompt.video_grid_thw))
        features = encode_videos(model, prompt.pixel_values_videos, prompt.video_grid_thw)
        positions = torch.arange(prompt.length, device=prompt.input_ids.device).expand(3, 1, -1)
        cache = FunctionalCache.recording(len(model.model.language_model.layers))
        empty = torch.zeros(0, dtype=torch.long, device=prompt.input_ids.device)

        def prompt_pass():
            model(
                input_ids=prompt.input_ids,
                attention_mask=prompt.attention_mask,
                position_ids=positions,
                mm_encoder_outputs=video_encoder_outputs(features),
                cache=cache,
                use_cache=True,
                logits_to_keep=empty,
            )

        p = count(prompt_pass)
        ids = torch.zeros(group_size, tokens, dtype=torch.long, device=prompt.input_ids.device)
        mask = torch.ones(group_size, prompt.length + tokens, dtype=torch.long, device=ids.device)
        pos = torch.arange(prompt.length, prompt.length + tokens, device=ids.device).expand(3, group_size, -1)
        c = count(
            lambda: model(
                input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache.expanded(group_size), use_cache=True
            )
        )
    return v, p, c


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--layers", type=int, default=TEXT_7B["num_hidden_layers"])
    p.add_argument("--vision-depth", type=int, default=VISION_7B["depth"])
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--lengths", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument("--frames", type=int, default=32, help="32 frames of 224x224 = 1,024 visual tokens")
    p.add_argument("--size", type=int, default=224)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    from lit_videor2.demo.tiny import build_tiny_model
    from lit_videor2.models.hub import load_processor

    dtype = torch.bfloat16 if args.device != "cpu" else torch.float32
    with tempfile.TemporaryDirectory() as tmp:
        tiny = build_tiny_model("qwen2_5_vl", Path(tmp) / "tiny", seed=0)
        processor = load_processor(str(tiny))
        prompt = make_prompt(processor, make_frames(args.frames, args.size), 2.0).to(args.device)
        prompt = type(prompt)(**{**prompt.__dict__, "pixel_values_videos": prompt.pixel_values_videos.to(dtype)})
        model = build_7b(tiny, args.layers, args.vision_depth, args.device, dtype)
        eos = stop_token_ids(processor.tokenizer)
    n_visual = int(prompt.video_grid_thw.prod(-1).item()) // 4
    print(
        f"Qwen2.5-VL-7B sizes ({args.layers} LLM layers, vision depth {args.vision_depth}), {args.device} {dtype}, "
        f"random weights; prompt {prompt.length} tokens ({n_visual} visual), G={args.group_size}, beta 0.04, "
        "activation checkpointing on"
    )
    rows = []
    for t in args.lengths:
        a = step_flops(model, prompt, args.group_size, t, True, eos)
        v, pp, c = floor_parts(model, prompt, args.group_size, t)
        floor = v + 6 * (pp + c)
        print(
            f"  T={t}: (a) {a / 1e12:.1f} TFLOP, floor {floor / 1e12:.1f} (V {v / 1e12:.2f}, P {pp / 1e12:.2f}, C {c / 1e12:.2f})",
            flush=True,
        )
        try:
            b = step_flops(model, prompt, args.group_size, t, False, eos)
        except torch.OutOfMemoryError:  # per-completion rows need G times the memory
            model.zero_grad(set_to_none=True)
            b = float("nan")
        print(f"  T={t}: (b) {b / 1e12:.1f} TFLOP", flush=True)
        rows.append((t, a, b, floor))
    print(f"\n{'T':>6} {'(a) sharing':>14} {'(b) per-compl.':>15} {'floor':>10} {'(a)/floor':>10} {'(b)/(a)':>8}")
    for t, a, b, floor in rows:
        print(
            f"{t:>6} {a / 1e12:>11.1f} TF {b / 1e12:>12.1f} TF {floor / 1e12:>7.1f} TF {a / floor:>10.3f} {b / a:>8.2f}"
        )


if __name__ == "__main__":
    main()

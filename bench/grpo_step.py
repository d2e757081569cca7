"""Seconds per GRPO step on a video prompt, side by side: group sharing vs per-completion encoding vs TRL.

One step = generation of G completions + reference log-prob forward + policy log-prob forward and backward
(``lit_videor2.losses.grpo_loss``, bnpo, beta 0.04) + an AdamW step, on a tiny randomly initialised Qwen2.5-VL
(vision tower frozen, the Video-R2 recipe). Completions are exactly ``--new-tokens`` long (EOS forbidden before).

(a) lit_videor2, group sharing: video encoded once per prompt, prompt prefilled once per group (KV cache expanded to
    G rows), features reused and the prompt part computed once in both log-prob passes.
(b) lit_videor2, sharing off: every prompt row repeated G times with its own video copy, ``model.generate`` and
    full forwards, as TRL / Video-R1 do.
(c) TRL's ``GRPOTrainer`` on the same model and lengths (optional, ``pip install trl``). TRL 1.16 generates from a
    video but drops it from its loss forward, so the frames are fed as *images* instead: every other frame of the
    same clip, 16 images of 224x224 = the same 1,024 visual tokens and the same 4,096 vision patches per prompt.

Usage: ``python bench/grpo_step.py [--steps 5] [--threads 2] [--no-trl] [--checkpointing] [--hidden 256 --layers 4]``. Other jobs on the same CPU cores slow
everything down: steps of (a) and (b) are interleaved and medians are reported.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from lit_videor2.data.collate import VideoCollator  # noqa: E402
from lit_videor2.data.dataset import VideoSample  # noqa: E402
from lit_videor2.data.frames import Frames  # noqa: E402
from lit_videor2.data.records import VideoRecord  # noqa: E402
from lit_videor2.losses import group_advantages, grpo_loss  # noqa: E402
from lit_videor2.rollout import PromptBatch, generate_group, sequence_logprobs, stop_token_ids  # noqa: E402

QUESTION = "Which shape appears first? A. red circle B. blue square C. green triangle D. yellow star"


def make_frames(num_frames: int, size: int, seed: int = 0) -> torch.Tensor:
    """Random ``uint8 [T, 3, size, size]`` frames (content does not matter for timing)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (num_frames, 3, size, size), dtype=torch.uint8, generator=g)


def make_prompt(processor, frames: torch.Tensor, fps: float) -> PromptBatch:
    """One video prompt through the project's collator (chat template, processor, 3-D positions inputs)."""
    n = frames.shape[0]
    record = VideoRecord(id="bench", video="bench.mp4", question=QUESTION, answer="A")
    sample = VideoSample(record, Frames(frames, list(range(n)), fps, n, "bench"))
    return PromptBatch.from_collated(VideoCollator(processor, "prompt")([sample]))


def load_policy_and_reference(model_dir: Path, checkpointing: bool = False):
    from transformers import Qwen2_5_VLForConditionalGeneration

    from lit_videor2.models.checkpointing import enable_activation_checkpointing

    policy = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir).train()
    policy.model.visual.requires_grad_(False)
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    if checkpointing:  # the project's per-layer wrapper (what PolicySpec(gradient_checkpointing=True) applies)
        enable_activation_checkpointing(policy)
    return policy, reference


def lit_step(policy, reference, optimizer, prompt: PromptBatch, args, eos: list[int], share: bool) -> dict[str, float]:
    """One GRPO step; returns seconds per phase."""
    t0 = time.perf_counter()
    rollout = generate_group(
        policy,
        prompt,
        group_size=args.group_size,
        max_new_tokens=args.new_tokens,
        min_new_tokens=args.new_tokens,
        temperature=0.9,
        top_k=50,
        eos_token_ids=eos,
        share_prefix=share,
    )
    t1 = time.perf_counter()
    with torch.no_grad():
        ref = sequence_logprobs(reference, rollout, reuse_vision=share, share_prompt=share, temperature=0.9)
    t2 = time.perf_counter()
    rewards = torch.rand(rollout.num_completions)
    advantages = group_advantages(rewards, args.group_size)
    logps = sequence_logprobs(policy, rollout, reuse_vision=share, share_prompt=share, temperature=0.9)
    loss, _ = grpo_loss(logps, None, ref, advantages, rollout.completion_mask, loss_type="bnpo", beta=0.04)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    t3 = time.perf_counter()
    assert rollout.completion_ids.shape == (args.group_size, args.new_tokens)
    return {"generate": t1 - t0, "reference": t2 - t1, "policy": t3 - t2, "step": t3 - t0}


def run_lit(model_dir: Path, processor, args) -> dict[str, dict[str, float]]:
    """Medians per phase for (a) and (b), their steps interleaved so that CPU noise hits both alike."""
    prompt = make_prompt(processor, make_frames(args.frames, args.size), args.fps)
    n_video = int(prompt.video_grid_thw.prod(-1).item()) // 4
    print(f"prompt: {prompt.length} tokens, {n_video} video tokens, grid {prompt.video_grid_thw.tolist()[0]}")
    policy, reference = load_policy_and_reference(model_dir, args.checkpointing)
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-6)
    eos = stop_token_ids(processor.tokenizer)
    times: dict[str, list[dict[str, float]]] = {"a": [], "b": []}
    for i in range(args.warmup + args.steps):
        for key, share in (("a", True), ("b", False)):
            t = lit_step(policy, reference, optimizer, prompt, args, eos, share)
            print(f"  step {i} ({key}): " + ", ".join(f"{k} {v:.3f}" for k, v in t.items()), flush=True)
            if i >= args.warmup:
                times[key].append(t)
    return {k: {p: statistics.median(t[p] for t in v) for p in v[0]} for k, v in times.items()}


# ----------------------------------------------------------------------------------------------------------------
# TRL
# ----------------------------------------------------------------------------------------------------------------


def _trl_dataset(frames: torch.Tensor, n: int):
    from datasets import Dataset
    from PIL import Image

    images = [Image.fromarray(f.permute(1, 2, 0).numpy()) for f in frames[::2]]
    row = {"prompt": [{"role": "user", "content": QUESTION}], "images": images}
    return Dataset.from_list([row] * n)


class _StepTimer:
    """A ``TrainerCallback`` recording wall-clock seconds of every optimizer step."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        timer = self

        class Callback(TrainerCallback):
            def on_step_begin(self, *a, **k):
                timer.start = time.perf_counter()

            def on_step_end(self, *a, **k):
                timer.steps.append(time.perf_counter() - timer.start)
                print(f"  step {len(timer.steps) - 1} (c): step {timer.steps[-1]:.3f}", flush=True)

        self.steps: list[float] = []
        self.start = 0.0
        self.callback = Callback()


def run_trl(model_dir: Path, processor, args) -> tuple[float | None, str]:
    """Median seconds per TRL ``GRPOTrainer`` step, or ``(None, reason)``."""
    try:
        import trl
        from trl import GRPOConfig, GRPOTrainer
    except ImportError as e:
        return None, f"not run (trl not importable: {e}; `pip install trl`)"
    from transformers import Qwen2_5_VLForConditionalGeneration

    frames = make_frames(args.frames, args.size)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir)
    model.model.visual.requires_grad_(False)
    size = {"shortest_edge": args.size * args.size, "longest_edge": args.size * args.size}
    processor.image_processor.size = size  # keep 224x224 (the default minimum pixels would upscale)
    timer = _StepTimer()
    with tempfile.TemporaryDirectory() as out:
        config = GRPOConfig(
            output_dir=out,
            per_device_train_batch_size=args.group_size,
            num_generations=args.group_size,
            max_completion_length=args.new_tokens,
            generation_kwargs={"min_new_tokens": args.new_tokens},
            temperature=0.9,
            top_k=50,
            beta=0.04,
            loss_type="bnpo",
            learning_rate=1e-6,
            max_steps=args.warmup + args.steps,
            logging_steps=1,
            report_to="none",
            save_strategy="no",
            use_cpu=True,
            bf16=False,
            gradient_checkpointing=args.checkpointing,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=lambda completions, **kw: [float(len(c[0]["content"]) % 7) for c in completions],
            args=config,
            train_dataset=_trl_dataset(frames, args.warmup + args.steps + 1),
            processing_class=processor,
            callbacks=[timer.callback],
        )
        trainer.train()
    steps = timer.steps[args.warmup :]
    return statistics.median(steps), f"trl {trl.__version__}, frames fed as {args.frames // 2} images"


# ----------------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=5, help="measured steps per configuration (medians)")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured steps first")
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--size", type=int, default=224, help="frame height = width (a multiple of 28)")
    p.add_argument("--fps", type=float, default=2.0)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model-dir", type=Path, default=None, help="existing tiny qwen2_5_vl folder (default: build one)")
    p.add_argument("--no-trl", action="store_true")
    p.add_argument("--checkpointing", action="store_true", help="activation checkpointing on (lit_videor2 and TRL)")
    p.add_argument("--hidden", type=int, default=64, help="LLM width of the tiny model (>= 256: language-dominant)")
    p.add_argument("--layers", type=int, default=2, help="LLM decoder layers of the tiny model")
    return p


def _print_table(lit: dict[str, dict[str, float]], trl_step: float | None, trl_note: str) -> None:
    print(f"\n{'path':<44} {'generate':>9} {'reference':>10} {'policy':>8} {'step':>8}")
    names = {"a": "(a) lit_videor2, group sharing", "b": "(b) lit_videor2, sharing off (per completion)"}
    for key, name in names.items():
        t = lit[key]
        print(f"{name:<44} {t['generate']:>9.3f} {t['reference']:>10.3f} {t['policy']:>8.3f} {t['step']:>8.3f}")
    if trl_step is not None:
        print(f"{'(c) TRL GRPOTrainer':<44} {'':>9} {'':>10} {'':>8} {trl_step:>8.3f}   ({trl_note})")
    else:
        print(f"TRL: {trl_note}")
    print(f"\npolicy update (a)/(b) = {lit['a']['policy'] / lit['b']['policy']:.3f}")
    a, b = lit["a"]["step"], lit["b"]["step"]
    print(f"\n(a)/(b) = {a / b:.3f}  ->  group sharing is {b / a:.2f}x faster than per-completion encoding")
    if trl_step is not None:
        print(f"(a)/(c) = {a / trl_step:.3f}  ->  group sharing is {trl_step / a:.2f}x faster than TRL")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from lit_videor2.demo.tiny import build_tiny_model
    from lit_videor2.models.hub import load_processor

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir or build_tiny_model(
            "qwen2_5_vl", Path(tmp) / "tiny", seed=0, hidden_size=args.hidden, layers=args.layers
        )
        processor = load_processor(str(model_dir))
        print(f"torch {torch.__version__}, {args.threads} threads; tiny qwen2_5_vl at {model_dir}")
        print(f"G={args.group_size}, {args.new_tokens} new tokens, {args.frames} frames {args.size}x{args.size}")
        print(
            f"LLM hidden {args.hidden}, {args.layers} layers; activation checkpointing {'on' if args.checkpointing else 'off'}"
        )
        lit = run_lit(model_dir, processor, args)
        trl_step, trl_note = (None, "not run (--no-trl)") if args.no_trl else run_trl(model_dir, processor, args)
    print(f"\nseconds per GRPO step, median of {args.steps} (after {args.warmup} warm-up)")
    _print_table(lit, trl_step, trl_note)


if __name__ == "__main__":
    main()

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

Usage: ``python bench/grpo_step.py [--steps 5] [--threads 2] [--no-trl] [--checkpointing off|on|both]
[--model demo=64x2 --model language=256x4]``. By default both tiny models (the vision-dominated demo one, LLM hidden
64 and 2 layers, and a language-dominant one, hidden 256 and 4 layers) are run with checkpointing off and then on,
and a summary prints the two settings side by side with the ratios (a)/(b) and (a)/TRL. Other jobs on the same CPU
cores slow everything down: steps are interleaved A B A B (a TRL step, then one step each of (a) and (b), run from
TRL's step-end callback, outside TRL's timed interval) and medians are reported.
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
    sample = VideoSample(record, Frames(frames, [i / fps for i in range(n)], n / fps, "bench"))
    return PromptBatch.from_collated(VideoCollator(processor, "prompt")([sample]))


def load_policy_and_reference(model_dir: Path, checkpointing: bool = False):
    from transformers import Qwen2_5_VLForConditionalGeneration

    from lit_videor2.distributed.activation_checkpointing import enable_activation_checkpointing

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


class LitArms:
    """Arms (a) and (b) on one model and checkpointing setting; ``round`` runs one step of each, in turn."""

    def __init__(self, model_dir: Path, processor, prompt: PromptBatch, args, checkpointing: bool) -> None:
        self.policy, self.reference = load_policy_and_reference(model_dir, checkpointing)
        self.optimizer = torch.optim.AdamW([p for p in self.policy.parameters() if p.requires_grad], lr=1e-6)
        self.eos = stop_token_ids(processor.tokenizer)
        self.prompt, self.args, self.rounds = prompt, args, 0
        self.times: dict[str, list[dict[str, float]]] = {"a": [], "b": []}

    def round(self) -> None:
        """One step of (a) then (b); recorded once the warm-up rounds are done."""
        for key, share in (("a", True), ("b", False)):
            t = lit_step(self.policy, self.reference, self.optimizer, self.prompt, self.args, self.eos, share)
            print(f"  step {self.rounds} ({key}): " + ", ".join(f"{k} {v:.3f}" for k, v in t.items()), flush=True)
            if self.rounds >= self.args.warmup:
                self.times[key].append(t)
        self.rounds += 1

    def medians(self) -> dict[str, dict[str, float]]:
        """Median seconds per phase of each arm."""
        return {k: {p: statistics.median(t[p] for t in v) for p in v[0]} for k, v in self.times.items()}


def run_lit(arms: LitArms, rounds: int) -> None:
    """Run ``rounds`` more rounds of (a) and (b), their steps interleaved so that CPU noise hits both alike."""
    while arms.rounds < rounds:
        arms.round()


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

    def __init__(self, between=None) -> None:
        from transformers import TrainerCallback

        timer = self

        class Callback(TrainerCallback):
            def on_step_begin(self, *a, **k):
                timer.start = time.perf_counter()

            def on_step_end(self, *a, **k):
                timer.steps.append(time.perf_counter() - timer.start)
                print(f"  step {len(timer.steps) - 1} (c): step {timer.steps[-1]:.3f}", flush=True)
                if between is not None:  # the lit_videor2 arms' round, after the TRL step (A B A B)
                    between()

        self.steps: list[float] = []
        self.start = 0.0
        self.callback = Callback()


def run_trl(model_dir: Path, processor, args, checkpointing: bool, between=None) -> tuple[float | None, str]:
    """Median seconds per TRL ``GRPOTrainer`` step, or ``(None, reason)``; ``between()`` runs after each step."""
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
    timer = _StepTimer(between)
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
            gradient_checkpointing=checkpointing,
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


def _model_spec(text: str) -> tuple[str, int, int]:
    """``NAME=HIDDENxLAYERS`` (e.g. ``language=256x4``) -> ``(name, hidden, layers)``."""
    try:
        name, size = text.split("=")
        hidden, layers = size.lower().split("x")
        return name, int(hidden), int(layers)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--model {text!r}: expected NAME=HIDDENxLAYERS, e.g. language=256x4"
        ) from None


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
    p.add_argument("--model-dir", type=Path, default=None, help="existing tiny qwen2_5_vl folder (default: build them)")
    p.add_argument("--no-trl", action="store_true")
    p.add_argument(
        "--checkpointing",
        choices=("off", "on", "both"),
        default="both",
        help="activation checkpointing (lit_videor2 and TRL); both: off then on, printed side by side",
    )
    p.add_argument(
        "--model",
        dest="models",
        action="append",
        type=_model_spec,
        help="tiny model NAME=HIDDENxLAYERS of the LLM, repeatable "
        "(default: demo=64x2 and language=256x4, the language-dominant one)",
    )
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


def _print_summary(rows: list[tuple[str, str, dict[str, dict[str, float]], float | None]]) -> None:
    """Checkpointing off and on side by side: seconds per step and the ratios (a)/(b), (a)/TRL."""
    head = f"{'model':<24} {'ckpt':>4} {'(a) s':>7} {'(b) s':>7} {'TRL s':>7} {'policy (a)/(b)':>15} {'(a)/(b)':>8} {'(a)/TRL':>8}"
    print("\n" + head + "\n" + "-" * len(head))
    for model, ckpt, lit, trl_step in rows:
        a, b = lit["a"]["step"], lit["b"]["step"]
        policy = lit["a"]["policy"] / lit["b"]["policy"]
        trl_s = f"{trl_step:>7.3f}" if trl_step is not None else f"{'-':>7}"
        trl_r = f"{a / trl_step:>8.3f}" if trl_step is not None else f"{'-':>8}"
        print(f"{model:<24} {ckpt:>4} {a:>7.3f} {b:>7.3f} {trl_s} {policy:>15.3f} {a / b:>8.3f} {trl_r}")


def run_model(model_dir: Path, args) -> list[tuple[str, dict[str, dict[str, float]], float | None, str]]:
    """Every checkpointing setting on one model folder: lit_videor2 (a), (b) and TRL steps interleaved."""
    from lit_videor2.models.hub import load_processor

    processor = load_processor(str(model_dir))
    prompt = make_prompt(processor, make_frames(args.frames, args.size), args.fps)  # before TRL resizes images
    n_video = int(prompt.video_grid_thw.prod(-1).item()) // 4
    print(f"prompt: {prompt.length} tokens, {n_video} video tokens, grid {prompt.video_grid_thw.tolist()[0]}")
    settings = {"off": [False], "on": [True], "both": [False, True]}[args.checkpointing]
    rounds = args.warmup + args.steps
    out = []
    for checkpointing in settings:
        ckpt = "on" if checkpointing else "off"
        print(f"-- activation checkpointing {ckpt}", flush=True)
        arms = LitArms(model_dir, processor, prompt, args, checkpointing)
        if args.no_trl:
            trl_step, trl_note = None, "not run (--no-trl)"
        else:  # A B A B: a TRL step, then one step each of (a) and (b)
            trl_step, trl_note = run_trl(model_dir, processor, args, checkpointing, between=arms.round)
        run_lit(arms, rounds)  # the rounds still missing (all of them without TRL, or if TRL stopped early)
        out.append((ckpt, arms.medians(), trl_step, trl_note))
        del arms
    return out


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from lit_videor2.demo.tiny import build_tiny_model

    models = args.models or [("demo", 64, 2), ("language", 256, 4)]
    if args.model_dir is not None:
        models = [(args.model_dir.name, 0, 0)]
    print(f"torch {torch.__version__}, {args.threads} threads; tiny qwen2_5_vl models {models}")
    print(f"G={args.group_size}, {args.new_tokens} new tokens, {args.frames} frames {args.size}x{args.size}")
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, hidden, layers in models:
            model_dir = args.model_dir or build_tiny_model(
                "qwen2_5_vl", Path(tmp) / name, seed=0, hidden_size=hidden, layers=layers
            )
            label = name if args.model_dir else f"{name} ({hidden}, {layers} layers)"
            print(f"\n== {label}: {model_dir}", flush=True)
            for ckpt, lit, trl_step, trl_note in run_model(model_dir, args):
                print(
                    f"\n{label}, checkpointing {ckpt}: seconds per GRPO step, median of {args.steps} (after {args.warmup} warm-up)"
                )
                _print_table(lit, trl_step, trl_note)
                summary.append((label, ckpt, lit, trl_step))
    print(f"\nside by side (median s/step, {args.threads} threads; (a) sharing, (b) per completion, TRL GRPOTrainer)")
    _print_summary(summary)


if __name__ == "__main__":
    main()

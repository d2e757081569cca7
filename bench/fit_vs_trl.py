"""Seconds per whole ``lit_videor2 fit`` GRPO step vs TRL's ``GRPOTrainer`` step, on one model folder, A B A B.

Unlike ``bench/grpo_step.py`` (the project's step *function*), this times the whole trainer step of both
frameworks: data loading (decode + resize + processor), rollout, rewards (accuracy + format + gated TAR with the
shipped MiniLM embedder), reference pass, policy update, optimizer step and logging.

Setup (built once under ``--work``):

* a tiny randomly initialised Qwen2.5-VL (``lit_videor2.demo.tiny``), language-dominant by default (LLM hidden 256,
  4 layers), the vision tower frozen;
* a synthetic temporal dataset (``lit_videor2.demo.synthetic``) of 16 s clips at 10 fps, sampled by the data module
  at 2 fps, 32 frames of 224x224 (``min_pixels = max_pixels = 224 * 224``, the small clips are upscaled): video grid
  16 x 16 x 16, **1,024 visual tokens** per prompt after the 2x2 merge (checked);
* TRL gets the same prompts (system prompt, question + instruction), the same record columns and the same reward
  composition, and the same clip as 16 images of 224x224 (every other sampled frame: the same 1,024 visual tokens,
  as TRL 1.16 drops video from its loss forward). Its images are decoded once into the dataset beforehand, so TRL
  pays no video decoding; ``lit_videor2 fit`` decodes every clip in its step (no frame cache).

Both run G 8 (one prompt per step), exactly ``--new-tokens`` new tokens (EOS forbidden before; the fit worker wraps
``generate_group`` with ``min_new_tokens = max_new_tokens``, TRL gets ``generation_kwargs.min_new_tokens``),
temperature 0.9, top-k 50, beta 0.04, bnpo, AdamW lr 1e-6, activation checkpointing on (``policy.
gradient_checkpointing: true``; TRL ``gradient_checkpointing=True``), no validation, no checkpoint saving, float32
on CPU, one thread per process, 0 data-loader workers.

Seconds per step, two ways: (1) (wall time of a ``--long`` step run - wall time of a ``--short`` step run) /
(long - short), each run a fresh subprocess, so start-up (imports, model and embedder loading, first-step warm-up)
cancels; (2) the median gap between consecutive step ends inside the long run (lit_videor2: ``on_train_batch_end``;
TRL: ``on_step_end``), which includes loading the next batch. One unmeasured 1-step run of each goes first. Rounds
alternate A B A B: lit_videor2 (short, long), then TRL (short, long). lit_videor2's logged ``train/gen_s`` /
``train/update_s`` medians and TRL's own ``on_step_begin`` -> ``on_step_end`` median are printed too.

``--old-decode`` adds a third arm, ``lit_videor2 fit`` with the rollout decoding on the concatenating KV cache
(``decode_cache="dynamic"``, the path before the preallocated group cache); without TRL installed, the script runs
the two ``lit_videor2`` arms only.

Usage: ``python bench/fit_vs_trl.py [--work DIR] [--rounds 2] [--short 2] [--long 6] [--hidden 256 --layers 4]
[--old-decode]``.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SIZE = 224
FRAMES = 32
FPS = 2.0
LR = 1e-6
TEMPERATURE = 0.9
TOP_K = 50
BETA = 0.04

FIT_CONFIG = """\
seed_everything: 0
trainer:
  accelerator: cpu
  devices: 1
  max_steps: {steps}
  precision: 32-true
  log_every_n_steps: 1
  limit_val_batches: 0
  num_sanity_val_steps: 0
  enable_checkpointing: false
  enable_model_summary: false
  enable_progress_bar: false
  default_root_dir: {root}
  logger:
    class_path: lightning.pytorch.loggers.CSVLogger
    init_args: {{save_dir: {root}, name: logs}}
model:
  class_path: lit_videor2.modules.grpo.GRPOModule
  init_args:
    policy: {{path: {model}, dtype: float32, attn_implementation: sdpa, gradient_checkpointing: true}}
    rewards:
      rewards:
        accuracy: {{class_path: lit_videor2.rewards.AccuracyReward}}
        format: {{class_path: lit_videor2.rewards.FormatReward}}
        temporal: {{class_path: lit_videor2.rewards.TemporalAlignmentReward}}
      weights: {{accuracy: 1.0, format: 1.0, temporal: 1.0}}
    rollout: {{group_size: {group}, max_new_tokens: {new_tokens}, temperature: {temperature}, top_k: {top_k}}}
    beta: {beta}
    loss_type: bnpo
    optimizer:
      class_path: torch.optim.AdamW
      init_args: {{lr: {lr}, weight_decay: 0.0}}
    log_completions_every: 0
data:
  train_file: {data}/train.json
  mode: prompt
  batch_size: 1
  num_workers: 0
  sampling: {{fps: {fps}, min_frames: {frames}, max_frames: {frames}, min_pixels: {pixels}, max_pixels: {pixels}}}
"""


# ----------------------------------------------------------------------------------------------------------------
# Preparation (once)
# ----------------------------------------------------------------------------------------------------------------


def _datamodule(data_dir: Path, model_dir: Path):
    from lit_videor2.data.datamodule import VideoDataModule
    from lit_videor2.data.sampling import FrameSampling

    sampling = FrameSampling(
        fps=FPS, min_frames=FRAMES, max_frames=FRAMES, min_pixels=SIZE * SIZE, max_pixels=SIZE * SIZE
    )
    dm = VideoDataModule(
        processor=str(model_dir),
        train_file=str(data_dir / "train.json"),
        mode="prompt",
        num_workers=0,
        sampling=sampling,
    )
    dm.setup("fit")
    return dm


def prepare(work: Path, args, trl: bool = True) -> None:
    """Tiny model, synthetic clips, TRL's image dataset (``trl``) and the fit config under ``work`` (skipped when
    present)."""
    from lit_videor2.demo.synthetic import generate_dataset
    from lit_videor2.demo.tiny import build_tiny_model

    model_dir, data_dir = work / "model", work / "data"
    if not (model_dir / "config.json").is_file():
        build_tiny_model("qwen2_5_vl", model_dir, seed=0, hidden_size=args.hidden, layers=args.layers)
    if not (data_dir / "train.json").is_file():  # 16 s at 10 fps -> 32 frames at 2 fps
        generate_dataset(data_dir, num_train=args.clips, num_val=1, duration_range=(16.0, 16.0), fps=10, size=(64, 64))
    if trl and not (work / "trl_data" / "dataset_info.json").is_file():
        _prepare_trl_dataset(work, model_dir, data_dir)


def _prepare_trl_dataset(work: Path, model_dir: Path, data_dir: Path) -> None:
    """Each clip as the data module samples it, every other frame as a PIL image; checks 1,024 visual tokens."""
    from datasets import Dataset
    from PIL import Image

    from lit_videor2.data.collate import build_messages
    from lit_videor2.data.dataset import sample_columns

    dm = _datamodule(data_dir, model_dir)
    ds = dm.datasets["train"]
    batch = dm.collator("prompt")([ds[0]])
    grid = batch["video_grid_thw"][0].tolist()
    n_video = math.prod(grid) // 4
    print(
        f"lit_videor2 prompt: video grid {grid} -> {n_video} visual tokens, {batch['prompt_input_ids'].shape[1]} tokens"
    )
    if n_video != 1024:
        raise SystemExit(f"expected 1,024 visual tokens per prompt, got {n_video} (grid {grid})")
    rows = []
    for i in range(len(ds)):
        sample = ds[i]
        frames = sample.frames.frames  # uint8 [32, 3, 224, 224]
        images = [Image.fromarray(f.permute(1, 2, 0).numpy()) for f in frames[::2]]
        messages = build_messages(sample.record, dm.system_prompt, dm.instruction)
        prompt = [{"role": m["role"], "content": m["content"][-1]["text"]} for m in messages]
        rows.append({"prompt": prompt, "images": images, "columns": json.dumps(sample_columns(sample))})
    Dataset.from_list(rows).save_to_disk(str(work / "trl_data"))


# ----------------------------------------------------------------------------------------------------------------
# Workers (one subprocess per run)
# ----------------------------------------------------------------------------------------------------------------


def _fixed_length(generate, decode_cache: str | None = None):
    """``generate_group`` with EOS forbidden before ``max_new_tokens`` (every completion exactly that long), and
    ``decode_cache`` when given."""

    @functools.wraps(generate)
    def wrapped(*a, **kw):
        kw["min_new_tokens"] = kw["max_new_tokens"]
        if decode_cache is not None:
            kw["decode_cache"] = decode_cache
        return generate(*a, **kw)

    return wrapped


def fit_worker(work: Path, steps: int, args, kind: str = "fit") -> None:
    """``lit_videor2 fit`` for ``steps`` GRPO steps on the prepared folder (``fit-dynamic``: the rollout decodes on
    the concatenating cache, the path before issue 30)."""
    import lit_videor2.modules.grpo as grpo
    from lit_videor2.cli import main

    grpo.generate_group = _fixed_length(grpo.generate_group, "dynamic" if kind == "fit-dynamic" else None)
    ends: list[float] = []  # end of every training step: consecutive gaps = whole steps, data loading included
    grpo.GRPOModule.on_train_batch_end = lambda self, *a, **k: ends.append(time.perf_counter())
    root = work / f"fit-{steps}-{time.time_ns()}"
    config = FIT_CONFIG.format(
        steps=steps,
        root=root,
        model=work / "model",
        data=work / "data",
        group=args.group_size,
        new_tokens=args.new_tokens,
        temperature=TEMPERATURE,
        top_k=TOP_K,
        beta=BETA,
        lr=LR,
        fps=FPS,
        frames=FRAMES,
        pixels=SIZE * SIZE,
    )
    root.mkdir(parents=True)
    (root / "grpo.yaml").write_text(config)
    main(["fit", "--config", str(root / "grpo.yaml")])
    metrics = next(root.glob("logs/version_*/metrics.csv"))
    with open(metrics) as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/gen_s")]
    keys = ("train/gen_s", "train/update_s", "train/completion_len_mean")
    logged = {k: [float(r[k]) for r in rows] for k in keys}
    logged["interval_s"] = [b - a for a, b in zip(ends, ends[1:])]
    (work / f"{kind}-{steps}.json").write_text(json.dumps(logged))


def _trl_rewards(work: Path):
    """The fit config's reward composition as a TRL reward function (record columns decoded from JSON)."""
    from lit_videor2.data.dataset import stack_columns
    from lit_videor2.rewards import AccuracyReward, FormatReward, RewardComposition, TemporalAlignmentReward

    rewards = RewardComposition(
        {"accuracy": AccuracyReward(), "format": FormatReward(), "temporal": TemporalAlignmentReward()}
    )

    def video_r2_rewards(completions, columns, **kw):
        texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
        out = rewards(texts, **stack_columns([json.loads(c) for c in columns]))
        return [None if math.isnan(v) else v for v in out.total]

    return video_r2_rewards


def trl_worker(work: Path, steps: int, args) -> None:
    """TRL ``GRPOTrainer`` for ``steps`` steps on the same model folder (images), checkpointing on."""
    from datasets import load_from_disk
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    step_s: list[float] = []
    ends: list[float] = []  # end of every step: consecutive gaps = whole steps, data loading included

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            ends.append(time.perf_counter())
            step_s.append(ends[-1] - self.t0)

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(work / "model")
    model.model.visual.requires_grad_(False)  # frozen, as PolicySpec(freeze_vision=True)
    processor = AutoProcessor.from_pretrained(work / "model")
    processor.image_processor.size = {"shortest_edge": SIZE * SIZE, "longest_edge": SIZE * SIZE}  # keep 224x224
    with tempfile.TemporaryDirectory() as out:
        config = GRPOConfig(
            output_dir=out,
            per_device_train_batch_size=args.group_size,
            num_generations=args.group_size,
            max_completion_length=args.new_tokens,
            generation_kwargs={"min_new_tokens": args.new_tokens},
            temperature=TEMPERATURE,
            top_k=TOP_K,
            beta=BETA,
            loss_type="bnpo",
            learning_rate=LR,
            max_steps=steps,
            logging_steps=1,
            report_to="none",
            save_strategy="no",
            use_cpu=True,
            bf16=False,
            gradient_checkpointing=True,
            dataloader_num_workers=0,
            disable_tqdm=True,
            seed=0,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=_trl_rewards(work),
            args=config,
            train_dataset=load_from_disk(str(work / "trl_data")),
            processing_class=processor,
            callbacks=[StepTimer()],
        )
        trainer.train()
    (work / f"trl-{steps}.json").write_text(
        json.dumps({"step_s": step_s, "interval_s": [b - a for a, b in zip(ends, ends[1:])]})
    )


# ----------------------------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------------------------


def timed_run(kind: str, work: Path, steps: int, args) -> tuple[float, dict]:
    """Wall seconds of one worker subprocess (``kind`` fit or trl) and what it wrote."""
    cmd = [sys.executable, __file__, "--worker", kind, "--work", str(work), "--worker-steps", str(steps)]
    cmd += ["--group-size", str(args.group_size), "--new-tokens", str(args.new_tokens)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run of {steps} steps failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}")
    return wall, json.loads((work / f"{kind}-{steps}.json").read_text())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, default=None, help="folder for the model, data and runs (default: a temp dir)")
    p.add_argument("--rounds", type=int, default=2, help="A B rounds (each: lit short+long, then TRL short+long)")
    p.add_argument("--short", type=int, default=2, help="steps of the short run")
    p.add_argument("--long", type=int, default=6, help="steps of the long run")
    p.add_argument("--hidden", type=int, default=256, help="LLM hidden size of the tiny model")
    p.add_argument("--layers", type=int, default=4, help="LLM layers of the tiny model")
    p.add_argument("--clips", type=int, default=8, help="synthetic training clips (one prompt per step)")
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument(
        "--old-decode",
        action="store_true",
        help="add an arm: lit_videor2 fit with the rollout on the concatenating decode cache (decode_cache=dynamic)",
    )
    p.add_argument("--worker", choices=("fit", "fit-dynamic", "trl"), default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker-steps", type=int, default=0, help=argparse.SUPPRESS)
    return p


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def run(work: Path, args) -> None:
    import importlib.util

    import torch

    has_trl = importlib.util.find_spec("trl") is not None
    kinds = ["fit"] + (["fit-dynamic"] if args.old_decode else []) + (["trl"] if has_trl else [])
    if len(kinds) == 1:
        raise SystemExit("TRL is not installed: pass --old-decode for a lit_videor2 arm to compare with.")
    prepare(work, args, trl=has_trl)
    trl_version = __import__("trl").__version__ if has_trl else "not installed (no TRL arm)"
    print(
        f"torch {torch.__version__}, trl {trl_version}; tiny qwen2_5_vl LLM hidden {args.hidden}, {args.layers} "
        f"layers; G {args.group_size}, {args.new_tokens} new tokens, beta {BETA}, checkpointing on, 1 thread",
        flush=True,
    )
    for kind in kinds:  # unmeasured: file caches, lazy imports
        timed_run(kind, work, 1, args)
    per_step: dict[str, list[float]] = {k: [] for k in kinds}  # (long - short) / (long steps - short steps)
    interval: dict[str, list[float]] = {k: [] for k in kinds}  # median end-to-end gap of the long run's steps
    for r in range(args.rounds):
        for kind in kinds:  # A B A B
            short, _ = timed_run(kind, work, args.short, args)
            long, info = timed_run(kind, work, args.long, args)
            per_step[kind].append((long - short) / (args.long - args.short))
            interval[kind].append(_median(info["interval_s"]))
            if kind != "trl":
                gen, upd = _median(info["train/gen_s"][1:]), _median(info["train/update_s"][1:])
                lens = sorted(set(info["train/completion_len_mean"]))
                extra = f"logged medians: gen_s {gen:.3f}, update_s {upd:.3f}; completion lengths {lens}"
            else:
                extra = f"TRL on_step_begin->end median {_median(info['step_s'][1:]):.3f} s"
            print(
                f"round {r} {kind:>11}: {args.short} steps {short:.1f} s, {args.long} steps {long:.1f} s -> "
                f"{per_step[kind][-1]:.3f} s/step; in-run step-to-step median {interval[kind][-1]:.3f} s ({extra})",
                flush=True,
            )
        for other in kinds[1:]:
            print(
                f"round {r}: {other} / lit_videor2 fit = {per_step[other][-1] / per_step['fit'][-1]:.2f}x (run "
                f"lengths), {interval[other][-1] / interval['fit'][-1]:.2f}x (in-run step-to-step)",
                flush=True,
            )
    print(f"\nmedian over {args.rounds} rounds, s/step   " + "   ".join(f"{k:>11}" for k in kinds) + "   (x: / fit)")
    for name, d in (("run-length difference", per_step), ("in-run step-to-step", interval)):
        fit = _median(d["fit"])
        cells = [f"{_median(d[k]):>7.3f} {_median(d[k]) / fit:>4.2f}x" for k in kinds]
        print(f"{name:<33} " + "   ".join(cells))
    print("target: lit_videor2 fit >= 4x faster than TRL GRPOTrainer" + ("" if has_trl else " (TRL not installed)"))


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.worker is not None:
        if args.worker == "trl":
            trl_worker(args.work, args.worker_steps, args)
        else:
            fit_worker(args.work, args.worker_steps, args, args.worker)
        return
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        run(args.work, args)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(Path(tmp), args)


if __name__ == "__main__":
    main()

"""A rehearsal of the shipped recipe: ``configs/sft.yaml``, export, then ``configs/grpo.yaml``, then a resume.

Both configs run as shipped (LoRA r 64 SFT in bf16 with gradient checkpointing and accumulation 4; full-LLM GRPO
in fp32 with gradient checkpointing, G 8, 1,024-token completions, accuracy + format + gated TAR rewards), on
2 CPU ranks under FSDP2 (``configs/trainer/cpu_fsdp.yaml``: Lightning ModelParallelStrategy, data-parallel 2).
Replaced, and only these: the model path (the tiny Qwen2.5-VL test checkpoint, then the SFT export), the data
files (the synthetic set: 8 short clips, so few frames), the devices (the CPU preset), the run folder (the
subprocess runs in a temporary directory, so the configs' relative ``runs/...`` paths land there) and, to keep the
test short, ``max_steps`` (and ``max_epochs`` for the resumed run) and ``num_workers`` (0: no worker processes).

Checked: each stage runs its steps on both ranks, GRPO writes a checkpoint, and GRPO resumes from it to a later
step. Each command is launched as a user would (``python -m lit_videor2 ...``); Lightning starts rank 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


def _run(args: list[str], cwd: Path, timeout: int = 900) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run(
        [sys.executable, "-m", "lit_videor2", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, (
        f"{args[:3]} failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    )
    return proc.stdout + proc.stderr


def _data(synth: Path) -> list[str]:
    return ["--data.video_root", str(synth), "--data.num_workers", "0"]


@pytest.mark.slow
@pytest.mark.distributed
def test_shipped_sft_then_grpo_on_two_fsdp_ranks_and_resume(tmp_path, tiny_model_dir, synth_dir):
    trainer = ["--config", str(CONFIGS / "trainer" / "cpu_fsdp.yaml")]
    # Stage 1: configs/sft.yaml (8 clips over 2 ranks at accumulation 4: one optimizer step per epoch).
    _run(
        [
            "fit",
            "--config",
            str(CONFIGS / "sft.yaml"),
            *trainer,
            "--model.init_args.policy.path",
            str(tiny_model_dir),
            "--data.train_file",
            str(synth_dir / "train.json"),
            *_data(synth_dir),
            "--trainer.max_steps",
            "1",
        ],
        tmp_path,
    )
    sft_ckpt = tmp_path / "runs" / "sft" / "checkpoints" / "last.ckpt"
    assert sft_ckpt.exists(), sorted(str(p) for p in (tmp_path / "runs").rglob("*"))
    _run(
        ["export", "--ckpt", str(sft_ckpt), "--out", str(tmp_path / "models" / "video-r2-sft"), "--merge-lora"],
        tmp_path,
    )

    # Stage 2: configs/grpo.yaml on the merged SFT model, 1 step, then resumed from its checkpoint to step 2.
    grpo = [
        "fit",
        "--config",
        str(CONFIGS / "grpo.yaml"),
        *trainer,
        "--model.init_args.policy.path",
        str(tmp_path / "models" / "video-r2-sft"),
        "--data.train_file",
        str(synth_dir / "train.json"),
        *_data(synth_dir),
    ]
    assert "`max_steps=1` reached" in _run([*grpo, "--trainer.max_steps", "1"], tmp_path)
    grpo_ckpt = tmp_path / "runs" / "grpo" / "checkpoints" / "last.ckpt"
    assert grpo_ckpt.exists(), sorted(str(p) for p in (tmp_path / "runs").rglob("*"))
    # A checkpoint written when fit ends (max_steps) counts its epoch as done in Lightning's loop state, so the
    # resumed run may go on in the next epoch: allow it one (max_epochs 2), the step limit ends it at step 2.
    resume = ["--trainer.max_steps", "2", "--trainer.max_epochs", "2", "--ckpt_path", str(grpo_ckpt)]
    out = _run([*grpo, *resume], tmp_path)
    assert "Restored all states from the checkpoint" in out, out[-3000:]
    assert "`max_steps=2` reached" in out, out[-3000:]  # the resumed run went on from step 1 to step 2

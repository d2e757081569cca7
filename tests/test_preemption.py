"""SIGTERM sent to a run's whole process group (DataLoader worker included) during a step: the run saves a whole
checkpoint at the end of that step and exits 0; ``--ckpt_path last`` continues at the next step, from exactly the
saved state and data position."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest

from lit_videor2.checkpoints.complete import is_complete
from tests.test_checkpoint_kill import read_log

REPO = Path(__file__).resolve().parents[1]
STEPS = 8


class SlowSteps(L.Callback):
    """Makes each step last ``seconds`` (so a signal sent after a step is logged lands inside the next one)."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds

    def on_train_batch_start(self, *args) -> None:
        time.sleep(self.seconds)


def fit_command(model_dir: Path, data_dir: Path, root: Path, log: Path, ckpt: str | None = None) -> list[str]:
    callbacks = [
        {"class_path": "tests.test_checkpoint_kill.StepLog", "init_args": {"out": str(log)}},
        {"class_path": "tests.test_preemption.SlowSteps"},
        {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {"every_n_train_steps": 1000}},
    ]
    cmd = [sys.executable, "-m", "lit_videor2", "fit", "--config", str(REPO / "configs" / "demo" / "sft.yaml")]
    cmd += [
        *("--trainer.max_steps", str(STEPS), "--trainer.callbacks", json.dumps(callbacks)),
        *("--trainer.default_root_dir", str(root), "--trainer.logger", "false", "--trainer.limit_val_batches", "0"),
        *("--trainer.enable_progress_bar", "false", "--model.init_args.policy.path", str(model_dir)),
        *("--data.train_file", str(data_dir / "train.json"), "--data.val_file", "null", "--data.cache_dir", "null"),
        *("--data.batch_size", "2", "--data.num_workers", "1"),
    ]
    return cmd + (["--ckpt_path", ckpt] if ckpt else [])


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LIT_VIDEOR2_DEBUG", "LOCAL_RANK")}
    return env | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.mark.slow
def test_sigterm_to_the_process_group_saves_exits_0_and_resumes_at_the_next_step(tmp_path, tiny_model_dir, synth_dir):
    _run(fit_command(tiny_model_dir, synth_dir, tmp_path / "ref", tmp_path / "ref_log"))
    _, reference = read_log(tmp_path / "ref_log")

    root, log = tmp_path / "run", tmp_path / "log"
    proc = subprocess.Popen(
        fit_command(tiny_model_dir, synth_dir, root, log),
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the run and its DataLoader worker
    )
    deadline = time.monotonic() + 300
    while not ((log / "rank0.jsonl").exists() and '"step": 2' in (log / "rank0.jsonl").read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before step 2"
        time.sleep(0.05)
    children = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) >= 2, "no DataLoader worker in the process group"
    os.killpg(proc.pid, signal.SIGTERM)  # as SLURM does: every process of the job
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-4000:]
    _, killed = read_log(log)
    saved = max(killed)
    assert 2 <= saved < STEPS, killed.keys()
    ckpt = root / "checkpoints" / f"preempted-step={saved}.ckpt"
    assert is_complete(ckpt), sorted(p.name for p in (root / "checkpoints").iterdir())

    _run(fit_command(tiny_model_dir, synth_dir, root, tmp_path / "log2", ckpt="last"))
    start, resumed = read_log(tmp_path / "log2")
    assert start["start"] == saved
    assert (start["weights"], start["optim"]) == (killed[saved]["weights"], killed[saved]["optim"])
    assert sorted(resumed) == list(range(saved + 1, STEPS + 1))
    for step in resumed:
        assert resumed[step]["ids"] == reference[step]["ids"], step

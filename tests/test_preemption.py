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


def fit_command(
    model_dir: Path, data_dir: Path, root: Path, log: Path, ckpt: str | None = None, world: int = 1
) -> list[str]:
    callbacks = [
        {"class_path": "tests.test_checkpoint_kill.StepLog", "init_args": {"out": str(log)}},
        {"class_path": "tests.test_preemption.SlowSteps"},
        {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {"every_n_train_steps": 1000}},
    ]
    cmd = [sys.executable, "-m", "lit_videor2", "fit", "--config", str(REPO / "configs" / "demo" / "sft.yaml")]
    if world == 2:  # 2 FSDP2 CPU ranks (gloo); Lightning starts rank 1 in the same process group
        cmd += ["--config", str(REPO / "configs" / "trainer" / "cpu_fsdp.yaml")]
    cmd += [
        *("--trainer.max_steps", str(STEPS), "--trainer.callbacks", json.dumps(callbacks)),
        *("--trainer.default_root_dir", str(root), "--trainer.logger", "false", "--trainer.limit_val_batches", "0"),
        *("--trainer.enable_progress_bar", "false", "--model.init_args.policy.path", str(model_dir)),
        *("--data.train_file", str(data_dir / "train.json"), "--data.val_file", "null", "--data.cache_dir", "null"),
        *("--data.batch_size", str(2 // world), "--data.num_workers", "1"),
    ]
    return cmd + (["--ckpt_path", ckpt] if ckpt else [])


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LIT_VIDEOR2_DEBUG", "LOCAL_RANK")}
    return env | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.mark.slow
@pytest.mark.parametrize("world", [1, pytest.param(2, marks=pytest.mark.distributed)])
def test_sigterm_to_the_process_group_saves_exits_0_and_resumes_at_the_next_step(
    tmp_path, tiny_model_dir, synth_dir, world
):
    _run(fit_command(tiny_model_dir, synth_dir, tmp_path / "ref", tmp_path / "ref_log", world=world))
    references = [read_log(tmp_path / "ref_log", rank)[1] for rank in range(world)]

    root, log = tmp_path / "run", tmp_path / "log"
    proc = subprocess.Popen(
        fit_command(tiny_model_dir, synth_dir, root, log, world=world),
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
    assert len(children) >= 2 * world, "not every rank's DataLoader worker is in the process group"
    os.killpg(proc.pid, signal.SIGTERM)  # as SLURM does: every process of the job
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-4000:]
    killed = [read_log(log, rank)[1] for rank in range(world)]
    saved = max(killed[0])
    assert 2 <= saved < STEPS, killed[0].keys()
    assert all(max(k) == saved for k in killed), "the ranks stopped at different steps"
    ckpt = root / "checkpoints" / f"preempted-step={saved}.ckpt"
    assert is_complete(ckpt), sorted(p.name for p in (root / "checkpoints").iterdir())
    assert ckpt.is_dir() == (world == 2)  # FSDP2 writes a distributed folder

    _run(fit_command(tiny_model_dir, synth_dir, root, tmp_path / "log2", ckpt="last", world=world))
    for rank in range(world):
        start, resumed = read_log(tmp_path / "log2", rank)
        assert start["start"] == saved
        assert (start["weights"], start["optim"]) == (killed[rank][saved]["weights"], killed[rank][saved]["optim"])
        assert sorted(resumed) == list(range(saved + 1, STEPS + 1))
        for step in resumed:
            assert resumed[step]["ids"] == references[rank][step]["ids"], step

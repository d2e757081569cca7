"""A run killed at each point of a save resumes from a state that one save wrote whole, never a mixed one.

Each run is SFT on the tiny model, a checkpoint after every step (``step=N.ckpt``, top 2 kept, and ``last.ckpt``),
launched in a process group of its own (two FSDP2 ranks: Lightning's launcher starts rank 1 in that group). At the
save of step ``KILL_AT`` the group is killed with SIGKILL (a lost node: nothing runs after it), during the rewrite of
``last.ckpt`` (the second save of that step, after ``step=3.ckpt``: the one the issue saw mixing two steps) or during
``step=3.ckpt`` (nothing of step 3 whole), at one point:

==============  ===============================================================================================
before          when the save starts (``on_save_checkpoint``), nothing of step ``KILL_AT`` written
between_shards  2 ranks: rank 0's shard file is written, then the kill (no ``.metadata``, no ``meta.pt``)
weights_state   2 ranks: every shard and ``.metadata`` written, before ``meta.pt`` (the trainer state);
                1 process: the file written whole, before it is moved into place
half_file       half of a file written: the ``.ckpt`` file (1 process) or ``meta.pt`` (2 ranks)
==============  ===============================================================================================

The resumed run (``ckpt_path="last"``, :func:`~lit_videor2.checkpoints.complete.resolve_last`) must start from
exactly what the killed run had after one of its saved steps: the full weights and optimizer state bitwise (digests
written by the killed run at every step), the step counter, and the data position (the same samples next as an
uninterrupted run). A path to the interrupted checkpoint is refused in one line naming the newest complete one.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from tests.test_resume_elsewhere import digest, full_weights, optimizer_digest, strategy

REPO = Path(__file__).resolve().parents[1]
STEPS, KILL_AT = 5, 3
POINTS = {1: ["before", "weights_state", "half_file"], 2: ["before", "between_shards", "weights_state", "half_file"]}
#: (world, point, target): every point during the rewrite of last.ckpt, and a mid-save kill of step=3.ckpt.
CASES = [(w, p, "last") for w, points in POINTS.items() for p in points] + [(1, "weights_state", "step")]
CASES += [(2, "weights_state", "step")]


class StepLog(L.Callback):
    """Appends one JSON line per step to ``out/rank<r>.jsonl`` (survives a kill): digests of the full weights and
    optimizer state, the samples trained on; and a ``start`` line with the state training starts from."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)

    def _write(self, trainer, row: dict) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / f"rank{trainer.global_rank}.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _state(self, trainer, pl_module) -> dict:
        return {
            "weights": digest(full_weights(pl_module.model)),
            "optim": optimizer_digest(pl_module, trainer.optimizers[0]),
            "world_size": trainer.world_size,
        }

    def on_train_start(self, trainer, pl_module) -> None:
        self._write(trainer, {"start": trainer.global_step, **self._state(trainer, pl_module)})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        row = {"step": trainer.global_step, "ids": list(batch["columns"]["id"]), **self._state(trainer, pl_module)}
        self._write(trainer, row)


def read_log(out: Path, rank: int = 0) -> tuple[dict, dict[int, dict]]:
    rows = [json.loads(ln) for ln in (out / f"rank{rank}.jsonl").read_text().splitlines()]
    return next(r for r in rows if "start" in r), {r["step"]: r for r in rows if "step" in r}


def _kill_group() -> None:
    os.killpg(os.getpgrp(), signal.SIGKILL)


class KillDuringSave(L.Callback):
    """Kills the process group at ``point`` of the ``nth`` save of step ``step`` (see the module docstring)."""

    def __init__(self, point: str, step: int, nth: int) -> None:
        self.point, self.step, self.nth, self.armed, self.seen = point, step, nth, False, 0

    def setup(self, trainer, pl_module, stage) -> None:
        import torch.distributed.checkpoint.filesystem as dcp_fs

        import lit_videor2.checkpoints.atomic as atomic

        me, rank = self, trainer.global_rank
        if self.point == "between_shards" and rank == 0:
            write_data = dcp_fs.FileSystemWriter.write_data

            def write_then_kill(writer, plan, planner):
                result = write_data(writer, plan, planner)
                if me.armed:
                    result.wait()
                    _kill_group()
                return result

            dcp_fs.FileSystemWriter.write_data = write_then_kill
        if self.point == "weights_state" and trainer.world_size == 1:
            move = atomic.move_into_place

            def kill_before_move(staging, final):
                if me.armed:
                    _kill_group()
                return move(staging, final)

            atomic.move_into_place = kill_before_move
        if self.point in ("weights_state", "half_file") and trainer.world_size > 1 and rank == 0:
            self._patch_save(lambda target: str(target).endswith("meta.pt"))
        if self.point == "half_file" and trainer.world_size == 1:
            self._patch_save(lambda target: not isinstance(target, (str, Path)))  # the staged .ckpt file object

    def _patch_save(self, matches) -> None:
        import io

        save, me = torch.save, self

        def save_or_kill(obj, target, *args, **kwargs):
            if not (me.armed and matches(target)):
                return save(obj, target, *args, **kwargs)
            if me.point == "weights_state":
                _kill_group()
            buffer = io.BytesIO()
            save(obj, buffer, *args, **kwargs)
            data = buffer.getvalue()[: len(buffer.getvalue()) // 2]
            if isinstance(target, (str, Path)):
                with open(target, "wb") as f:
                    f.write(data)
            else:
                target.write(data)
                target.flush()
            os.sync()
            _kill_group()

        torch.save = save_or_kill

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        self.seen += checkpoint["global_step"] == self.step
        self.armed = checkpoint["global_step"] == self.step and self.seen == self.nth
        if self.armed and self.point == "before":
            _kill_group()


def sft_run(name: str, model_dir: str, data_dir: str, out: Path, *, fault: str | None, ckpt: str | None) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lit_videor2.checkpoints.complete import resolve_last
    from lit_videor2.modules.optim import WarmupCosine
    from tests.sft_utils import make_datamodule, make_module, make_trainer

    torch.set_num_threads(1)
    L.seed_everything(0)
    module = make_module(model_dir, lora=False, dropout=0.0, lr=1e-2)
    module.scheduler_factory = WarmupCosine(warmup_steps=2)
    world = 1 if name == "single" else 2
    callbacks = [
        StepLog(str(out)),
        ModelCheckpoint(
            dirpath=out.parent / "ckpt",
            filename="{step}",
            every_n_train_steps=1,
            save_top_k=2,
            monitor="step",
            mode="max",
            save_last=True,
        ),
    ]
    if fault:
        point, target = fault.split(":")
        callbacks.append(KillDuringSave(point, KILL_AT, nth=2 if target == "last" else 1))
    trainer = make_trainer(out, max_steps=STEPS, callbacks=callbacks, strategy=strategy(name), devices=world)
    if ckpt == "last":
        ckpt = resolve_last(trainer)
    trainer.fit(module, make_datamodule(data_dir, model_dir, batch_size=2 // world), ckpt_path=ckpt)


def launch(name: str, model_dir: Path, data_dir: Path, out: Path, *, fault=None, ckpt=None) -> int:
    cmd = [sys.executable, "-m", "tests.test_checkpoint_kill", name, str(model_dir), str(data_dir), str(out)]
    cmd += ["--fault", fault] if fault else []
    cmd += ["--ckpt", str(ckpt)] if ckpt else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=400, start_new_session=True)
    if fault is None or proc.returncode != -signal.SIGKILL:
        assert proc.returncode == 0, f"run failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc.returncode


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_model_dir, synth_dir):
    """Uninterrupted runs (1 process, 2 FSDP2 ranks): the samples each step trains on."""
    root = tmp_path_factory.mktemp("kill_reference")
    runs = {}
    for world, name in ((1, "single"), (2, "fsdp")):
        launch(name, tiny_model_dir, synth_dir, root / name / "run")
        runs[world] = [read_log(root / name / "run", r)[1] for r in range(world)]
    return runs


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize(("world", "point", "target"), CASES)
def test_killed_save_resumes_from_a_whole_checkpoint(
    tmp_path, tiny_model_dir, synth_dir, reference, world, point, target
):
    from lit_videor2.checkpoints.complete import (
        IncompleteCheckpointError,
        is_complete,
        newest_complete,
        read_marker,
        require_complete,
    )

    name = "single" if world == 1 else "fsdp"
    killed, resumed, ckpt_dir = tmp_path / "killed", tmp_path / "resumed", tmp_path / "ckpt"
    rc = launch(name, tiny_model_dir, synth_dir, killed, fault=f"{point}:{target}")
    assert rc == -signal.SIGKILL, "the fault did not fire"
    _, before = read_log(killed)
    assert max(before) == KILL_AT  # killed during the save of step KILL_AT, after its update

    # The interrupted checkpoint is refused in one line that names the newest complete one.
    newest = newest_complete([ckpt_dir])
    assert newest is not None
    interrupted = [p for p in ckpt_dir.iterdir() if p.name.startswith(".")]  # staging copies
    interrupted.append(ckpt_dir / f"step={KILL_AT}.ckpt")
    for path in interrupted:
        if is_complete(path):  # e.g. a staged file killed before its rename: whole, nothing mixed
            continue
        with pytest.raises(IncompleteCheckpointError) as err:
            require_complete(path)
        assert "\n" not in str(err.value) and str(newest) in str(err.value), str(err.value)

    # The explicit path the docs give, last.ckpt, is the whole one of the step before (it was not rewritten in place).
    last = ckpt_dir / "last.ckpt"
    require_complete(last)
    saved_step = read_marker(last).get("step") if last.is_dir() else torch.load(last, weights_only=False)["global_step"]
    assert saved_step == KILL_AT - 1

    launch(name, tiny_model_dir, synth_dir, resumed, ckpt="last")
    for rank in range(world):
        start, after = read_log(resumed, rank)
        _, before = read_log(killed, rank)
        saved = start["start"]
        # The newest whole save: step 3 once step=3.ckpt (or a staged file) is whole, else step 2.
        whole_3 = target == "last" or (world == 1 and point == "weights_state")
        assert saved == (KILL_AT if whole_3 else KILL_AT - 1), start
        # Bitwise the state the killed run had after the saved step: weights, optimizer, step counter.
        assert (start["weights"], start["optim"]) == (before[saved]["weights"], before[saved]["optim"])
        assert sorted(after) == list(range(saved + 1, STEPS + 1))
        # The data position: the same samples next as the uninterrupted run.
        for step in after:
            assert after[step]["ids"] == reference[world][rank][step]["ids"], step


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="one SFT run of the checkpoint-kill tests (launched by them)")
    p.add_argument("strategy", choices=["single", "fsdp"])
    p.add_argument("model_dir")
    p.add_argument("data_dir")
    p.add_argument("out", type=Path)
    p.add_argument("--fault", default=None)
    p.add_argument("--ckpt", default=None)
    a = p.parse_args()
    sft_run(a.strategy, a.model_dir, a.data_dir, a.out, fault=a.fault, ckpt=a.ckpt)

"""The same SFTModule over 2 CPU processes (gloo): DDP, and FSDP2 via Lightning's ModelParallelStrategy.

Each test launches ``python -m tests.test_distributed_sft`` in a subprocess; Lightning's launcher re-runs that
command for rank 1 (as it does for a training script), so the test needs no spawn tricks and exercises the real
launch path. The runs must succeed: a process that cannot start fails the test, it is never skipped.
The reference is one process on the same global batch (per-rank batch 1 x 2 ranks = batch 2, the same shuffled
order: rank r takes every second sample of the one permutation).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures import synth_dir, tiny_model_dir, tiny_models  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
STEPS = 4  # one epoch of the 8 synthetic training clips at global batch 2
WORLD = 2


def strategy(name: str):
    from lightning.pytorch.strategies import DDPStrategy, ModelParallelStrategy

    if name == "ddp":
        return DDPStrategy(process_group_backend="gloo")
    if name == "fsdp":
        return ModelParallelStrategy(data_parallel_size=WORLD, tensor_parallel_size=1, process_group_backend="gloo")
    if name == "fsdp-skip":
        return ModelParallelStrategy(data_parallel_size=WORLD, tensor_parallel_size=1, process_group_backend="gloo")
    if name == "single":
        return "auto"
    raise ValueError(name)


def run(name: str, model_dir: str, data_dir: str, out: Path, *, lora: bool) -> dict:
    """Train ``STEPS`` steps; rank 0 returns/writes the logged losses, every rank its sharding facts."""
    import lightning as L
    import torch

    from tests.sft_utils import LossRecorder, make_datamodule, make_module, make_trainer

    class ShardingProbe(L.Callback):
        def on_train_start(self, trainer, pl_module):
            from torch.distributed.tensor import DTensor, Shard

            params = list(pl_module.model.parameters())
            self.facts = {
                "dtensor": all(isinstance(p, DTensor) for p in params),
                "shard0": all(isinstance(p, DTensor) and p.placements == (Shard(0),) for p in params),
                "local_numel": sum(p.to_local().numel() if isinstance(p, DTensor) else p.numel() for p in params),
                "full_numel": sum(p.numel() for p in params),
                "world_size": trainer.world_size,
                "strategy": type(trainer.strategy).__name__,
            }

    torch.set_num_threads(1)
    L.seed_everything(0)
    distributed = name != "single"
    # The FSDP run also exercises what configs/trainer/fsdp.yaml turns on: activation checkpointing, and
    # gradient clipping (the recipe's 1.0) over sharded gradients.
    module = make_module(model_dir, lora=lora, dropout=0.0, lr=1e-2, gradient_checkpointing=not lora)
    rec, probe = LossRecorder(), ShardingProbe()
    trainer = make_trainer(
        out / "run",
        max_steps=STEPS,
        callbacks=[rec, probe],
        strategy=strategy(name),
        devices=WORLD if distributed else 1,
        gradient_clip_val=None if lora else 1.0,
    )
    per_rank_batch = 1 if distributed else WORLD
    if name == "fsdp-skip":  # rank 1's second batch (record 3, unshuffled) is a video that cannot be decoded
        records = json.loads((Path(data_dir) / "train.json").read_text())
        out.mkdir(parents=True, exist_ok=True)
        (out / "broken.mp4").write_bytes(b"not a video")
        records[3]["video"] = str(out / "broken.mp4")
        (out / "train.json").write_text(json.dumps(records))
        dm = make_datamodule(data_dir, model_dir, batch_size=1, shuffle=False)
        dm.files["train"], dm.video_root, dm.on_error = str(out / "train.json"), str(data_dir), "skip"
    else:
        dm = make_datamodule(data_dir, model_dir, batch_size=per_rank_batch)
    trainer.fit(module, dm)
    digest = hashlib.sha256()
    for pname, p in sorted(module.model.named_parameters()):
        full = p.full_tensor() if hasattr(p, "full_tensor") else p
        digest.update(pname.encode() + full.detach().float().cpu().numpy().tobytes())
    probe.facts.update(weights_sha256=digest.hexdigest(), global_step=trainer.global_step)
    result = {"losses": rec.losses, **probe.facts}
    out.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(out / "last.ckpt")  # FSDP: a sharded folder written by every rank
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(result))
    return result


def launch(name: str, model_dir: Path, data_dir: Path, out: Path, *, lora: bool) -> list[dict]:
    cmd = [sys.executable, "-m", "tests.test_distributed_sft", name, str(model_dir), str(data_dir), str(out)]
    cmd += ["--lora"] if lora else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (
        f"{name} run failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    )
    results = [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]
    for r in results:
        assert r["world_size"] == WORLD, r  # really two processes, not a silent single-process run
    return results


def assert_same_losses(got: dict, expected: dict, tol: float) -> None:
    got = {int(k): v for k, v in got.items()}
    expected = {int(k): v for k, v in expected.items()}
    assert sorted(got) == sorted(expected) == list(range(1, STEPS + 1))
    table = "\n".join(f"step {s}: 2 ranks {got[s]:.8f}  1 process {expected[s]:.8f}" for s in expected)
    for s in expected:
        assert abs(got[s] - expected[s]) <= tol, f"step {s}:\n{table}"
    assert len({round(v, 4) for v in expected.values()}) == STEPS  # training moves the loss: steps are distinct


@pytest.mark.slow
@pytest.mark.distributed
def test_ddp_two_cpu_processes_match_single_process(tmp_path, tiny_model_dir, synth_dir):  # noqa: F811
    ranks = launch("ddp", tiny_model_dir, synth_dir, tmp_path / "ddp", lora=True)
    assert ranks[0]["strategy"] == "DDPStrategy"
    single = run("single", str(tiny_model_dir), str(synth_dir), tmp_path / "single", lora=True)
    assert_same_losses(ranks[0]["losses"], single["losses"], tol=1e-5)
    assert ranks[1]["losses"] == ranks[0]["losses"]  # the logged loss is the synced global one on every rank


@pytest.mark.slow
@pytest.mark.distributed
def test_fsdp2_two_cpu_processes_shard_and_match_single_process(tmp_path, tiny_model_dir, synth_dir):  # noqa: F811
    ranks = launch("fsdp", tiny_model_dir, synth_dir, tmp_path / "fsdp", lora=False)
    for r in ranks:
        assert r["strategy"] == "ModelParallelStrategy"
        assert r["dtensor"] and r["shard0"], r  # every parameter is a DTensor sharded on dim 0
        # Each rank holds about half of every parameter (dim-0 shards; odd sizes are padded on the last rank).
        assert 0.4 * r["full_numel"] <= r["local_numel"] <= 0.6 * r["full_numel"], r
    assert sum(r["local_numel"] for r in ranks) == ranks[0]["full_numel"]
    single = run("single", str(tiny_model_dir), str(synth_dir), tmp_path / "single", lora=False)
    assert_same_losses(ranks[0]["losses"], single["losses"], tol=1e-5)

    # The sharded checkpoint folder exports to a HF model equal to the one-process run's (consolidated in memory).
    import torch
    from transformers import AutoModelForImageTextToText

    from lit_videor2.export import main as export_main
    from tests.sft_utils import first_batch, logits

    assert (tmp_path / "fsdp" / "last.ckpt").is_dir()
    export_main(["--ckpt", str(tmp_path / "fsdp" / "last.ckpt"), "--out", str(tmp_path / "hf")])
    inputs = first_batch(synth_dir, tiny_model_dir)
    sharded = logits(AutoModelForImageTextToText.from_pretrained(tmp_path / "hf"), inputs)
    export_main(["--ckpt", str(tmp_path / "single" / "last.ckpt"), "--out", str(tmp_path / "hf1")])
    one = logits(AutoModelForImageTextToText.from_pretrained(tmp_path / "hf1"), inputs)
    torch.testing.assert_close(sharded, one, atol=1e-4, rtol=0)


@pytest.mark.slow
@pytest.mark.distributed
def test_fsdp2_rank_with_an_empty_batch_keeps_step(tmp_path, tiny_model_dir, synth_dir):  # noqa: F811
    """Rank 1's whole second batch is skipped (undecodable video, ``on_error: skip``): it replays its last batch at
    zero weight, so both ranks run the same forwards and gradient reductions; the run ends with equal weights."""
    ranks = launch("fsdp-skip", tiny_model_dir, synth_dir, tmp_path / "skip", lora=False)
    assert all(r["global_step"] == STEPS for r in ranks), ranks
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    assert len(ranks[0]["losses"]) == STEPS


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="one distributed SFT run of the tests (launched by them)")
    p.add_argument("strategy", choices=["ddp", "fsdp", "fsdp-skip", "single"])
    p.add_argument("model_dir")
    p.add_argument("data_dir")
    p.add_argument("out", type=Path)
    p.add_argument("--lora", action="store_true")
    a = p.parse_args()
    run(a.strategy, a.model_dir, a.data_dir, a.out, lora=a.lora)

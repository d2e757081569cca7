"""Checkpoints resume on another number of ranks: 2 FSDP2 ranks -> 1 process and -> DDP, 1 process -> 2 FSDP2 ranks.

Each run writes a checkpoint after every step; the resumed runs start from the one after step ``SAVE_AT``. A
:class:`Probe` callback writes, per rank, the steps and losses the run logged, the record ids each step trained
on, a digest of the full weights when training starts (after the checkpoint was loaded) and the full weights at
the end. Two-process runs are launched as users launch them (Lightning's launcher re-runs the command for rank 1)
and must really run on two processes; they are never skipped.

What is compared, and why:

* SFT is deterministic given the data (no dropout), and one process with batch 2 trains on exactly the samples of
  2 ranks with batch 1 (rank r takes every second sample of one order; ``tests/test_distributed_sft.py``). So a
  resumed run's losses and final weights must match the uninterrupted run on the resumed world size within float
  tolerance (FSDP2's reduce-scatter and DDP's all-reduce sum in another order than one process: ~1e-6).
* GRPO samples its completions per rank from the RNG, and all ranks start from one seed (and rank 0's RNG state is
  what a checkpoint restores). 2 FSDP2 ranks -> DDP keeps 2 ranks with the same prompts and RNG: weights must match
  the uninterrupted FSDP2 run. Across world sizes one process samples both prompts from one stream where 2 ranks
  sampled each from its own copy, so the completions, rewards and updates differ by design; what must hold is
  that training starts from exactly the saved weights (bitwise digest), logs the steps after the saved one, trains
  on the prompts not yet seen, and that its first step is a small Adam step from there (the restored optimizer
  state: a fresh Adam would move every weight by about lr).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
STEPS, SAVE_AT = 4, 2  # SFT: one epoch of the 8 synthetic clips at global batch 2; the resumed runs start at step 3
GRPO_STEPS, G, MAX_NEW = 3, 2, 6
REWARD = "tests.test_resume_elsewhere.text_length_reward"


def full_weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter as a full tensor (gathered from its shards under FSDP2; a collective: call on every rank)."""
    return {
        n: (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().float().cpu().clone()
        for n, p in sorted(module.named_parameters())
    }


def digest(weights: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for n, t in weights.items():
        h.update(n.encode() + t.numpy().tobytes())
    return h.hexdigest()


def optimizer_digest(module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> str:
    """Digest of the full optimizer state by parameter name (a collective under FSDP2: call on every rank)."""
    names = {id(p): n for n, p in module.named_parameters()}
    h = hashlib.sha256()
    for name, state in sorted((names[id(p)], s) for p, s in optimizer.state.items()):
        for key in sorted(state):
            t = state[key]
            t = t.full_tensor() if hasattr(t, "full_tensor") else torch.as_tensor(t)
            h.update(f"{name}.{key}".encode() + t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


class Probe(L.Callback):
    """Writes ``rank<r>.json`` (and rank 0's ``weights.pt``) in ``out``: what this rank trained on and ended with."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.steps: dict[int, dict] = {}
        self.start: str | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = digest(full_weights(pl_module.model))
        self.start_optim = optimizer_digest(pl_module, trainer.optimizers[0])
        self.start_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = trainer.callback_metrics.get("train/loss")
        self.steps[trainer.global_step] = {
            "loss": None if loss is None else float(loss),
            "ids": list(batch["columns"]["id"]),
            "epoch": trainer.current_epoch,
            "weights": digest(full_weights(pl_module.model)),
            "optim": optimizer_digest(pl_module, trainer.optimizers[0]),
        }

    def on_train_end(self, trainer, pl_module) -> None:
        from lit_videor2.distributed.sharding import fsdp_units

        weights = full_weights(pl_module.model)
        units = fsdp_units(pl_module.model)  # the dtype FSDP2 gathers in (none: one process, DDP)
        param_dtypes = sorted({str(u._get_fsdp_state()._mp_policy.param_dtype) for u in units})
        self.out.mkdir(parents=True, exist_ok=True)
        if trainer.global_rank == 0:
            torch.save(weights, self.out / "weights.pt")
        facts = {
            "world_size": trainer.world_size,
            "strategy": type(trainer.strategy).__name__,
            "start_step": self.start_step,
            "start_digest": self.start,
            "start_optim": self.start_optim,
            "end_digest": digest(weights),
            "param_dtypes": param_dtypes,
            "global_step": trainer.global_step,
            "steps": self.steps,
        }
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(facts))


def strategy(name: str):
    from lightning.pytorch.strategies import DDPStrategy, ModelParallelStrategy

    if name == "ddp":
        return DDPStrategy(process_group_backend="gloo")
    if name == "fsdp":
        return ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1, process_group_backend="gloo")
    return "auto"


def sft_run(name: str, model_dir: str, data_dir: str, out: Path, *, ckpt: str | None = None) -> None:
    """SFT on the tiny model for ``STEPS`` steps (global batch 2), a checkpoint after every step in ``out/ckpt``."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lit_videor2.modules.optim import WarmupCosine
    from tests.sft_utils import make_datamodule, make_module, make_trainer

    torch.set_num_threads(1)
    L.seed_everything(0)
    module = make_module(model_dir, lora=False, dropout=0.0, lr=1e-2)
    module.scheduler_factory = WarmupCosine(warmup_steps=2)  # the lr changes every step: the schedule must resume
    world = 1 if name == "single" else 2
    callbacks = [
        Probe(str(out)),
        ModelCheckpoint(dirpath=out / "ckpt", filename="{step}", every_n_train_steps=1, save_top_k=-1),
    ]
    trainer = make_trainer(out, max_steps=STEPS, callbacks=callbacks, strategy=strategy(name), devices=world)
    trainer.fit(module, make_datamodule(data_dir, model_dir, batch_size=2 // world), ckpt_path=ckpt)


def launch(cmd: list[str], out: Path, world: int) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, f"run failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(world)]
    assert all(r["world_size"] == world for r in ranks), ranks  # really `world` processes
    return ranks


def launch_sft(name: str, model_dir: Path, data_dir: Path, out: Path, ckpt: Path | None = None) -> list[dict]:
    cmd = [sys.executable, "-m", "tests.test_resume_elsewhere", name, str(model_dir), str(data_dir), str(out)]
    cmd += ["--ckpt", str(ckpt)] if ckpt else []
    return launch(cmd, out, 1 if name == "single" else 2)


def ckpt_at(run: Path, step: int) -> Path:
    return run / "ckpt" / f"step={step}.ckpt"


def assert_weights_close(a: Path, b: Path, atol: float) -> float:
    wa, wb = torch.load(a / "weights.pt"), torch.load(b / "weights.pt")
    assert wa.keys() == wb.keys()
    worst = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    assert worst <= atol, f"weights differ by up to {worst}"
    return worst


@pytest.fixture(scope="module")
def sft_runs(tmp_path_factory, tiny_model_dir, synth_dir):
    """Uninterrupted runs on 1 process and 2 FSDP2 ranks, and resumes from their step-2 checkpoints."""
    root = tmp_path_factory.mktemp("sft_elsewhere")
    runs = {
        "one": launch_sft("single", tiny_model_dir, synth_dir, root / "one"),
        "fsdp": launch_sft("fsdp", tiny_model_dir, synth_dir, root / "fsdp"),
    }
    runs["fsdp->one"] = launch_sft("single", tiny_model_dir, synth_dir, root / "f2o", ckpt_at(root / "fsdp", SAVE_AT))
    runs["fsdp->ddp"] = launch_sft("ddp", tiny_model_dir, synth_dir, root / "f2d", ckpt_at(root / "fsdp", SAVE_AT))
    runs["one->fsdp"] = launch_sft("fsdp", tiny_model_dir, synth_dir, root / "o2f", ckpt_at(root / "one", SAVE_AT))
    paths = {"one": "one", "fsdp": "fsdp", "fsdp->one": "f2o", "fsdp->ddp": "f2d", "one->fsdp": "o2f"}
    return root, runs, {k: root / v for k, v in paths.items()}


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize(("resumed", "reference"), [("fsdp->one", "one"), ("fsdp->ddp", "fsdp"), ("one->fsdp", "fsdp")])
def test_sft_resumes_on_another_world_size(sft_runs, resumed, reference):
    _, runs, paths = sft_runs
    got, ref = runs[resumed][0], runs[reference][0]
    assert got["start_step"] == SAVE_AT
    assert sorted(map(int, got["steps"])) == list(range(SAVE_AT + 1, STEPS + 1)), "the steps after the saved one"
    for step in got["steps"]:
        assert got["steps"][step]["loss"] == pytest.approx(ref["steps"][step]["loss"], abs=1e-5), step
    writer = runs[resumed.split("->")[0]][0]
    saved = writer["steps"][str(SAVE_AT)]
    assert (got["start_digest"], got["start_optim"]) == (saved["weights"], saved["optim"])  # exactly the saved state
    # One process and 2 ranks sum gradients in another order; Adam at lr 1e-2 turns that into ~1.6e-5 between the
    # two uninterrupted runs. A resumed run must sit as close to the uninterrupted run on its world size.
    assert_weights_close(paths[resumed], paths[reference], atol=5e-5)
    assert got["end_digest"] != got["start_digest"]  # the resumed steps moved the weights


@pytest.mark.slow
@pytest.mark.distributed
def test_samples_of_an_epoch_across_a_two_to_one_resume(sft_runs, synth_dir):
    """2 ranks trained on 4 samples before the checkpoint; the 1-process run trains on the other 4: each once."""
    _, runs, _ = sft_runs
    before = [i for r in runs["fsdp"] for s, v in r["steps"].items() if int(s) <= SAVE_AT for i in v["ids"]]
    after = [i for s, v in runs["fsdp->one"][0]["steps"].items() for i in v["ids"]]
    epoch = [r["id"] for r in json.loads((synth_dir / "train.json").read_text())]
    assert len(before) == len(after) == 4
    assert sorted(before + after) == sorted(epoch), (before, after)


def text_length_reward(completions: list[str], **columns) -> list[float]:
    """A reward the tiny random model's completions differ in (their length in characters): every group has
    advantages, so every step moves the weights (the demo's rewards score a random model's completions all 0)."""
    return [len(c) / 10.0 for c in completions]


def launch_grpo(
    kind: str, model_dir: Path, data_dir: Path, out: Path, ckpt: Path | None = None, precision: str | None = None
) -> list[dict]:
    """``lit_videor2 fit`` of the demo GRPO config (``configs/trainer/cpu_fsdp.yaml`` for FSDP2), as users run it.

    Per-rank batch 2 / ranks (2 prompts per step at any world size), a checkpoint after every step in
    ``out/checkpoints`` (the CLI's default folder under ``trainer.default_root_dir``). ``precision``: the trainer's
    (default: the configs' ``32-true``).
    """
    world = 1 if kind == "single" else 2
    callbacks = [
        {"class_path": "tests.test_resume_elsewhere.Probe", "init_args": {"out": str(out)}},
        {
            "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
            "init_args": {"filename": "{step}", "every_n_train_steps": 1, "save_top_k": -1},
        },
    ]
    cmd = [sys.executable, "-m", "lit_videor2", "fit", "--config", str(REPO / "configs" / "demo" / "grpo.yaml")]
    if kind == "fsdp":
        cmd += ["--config", str(REPO / "configs" / "trainer" / "cpu_fsdp.yaml")]
    if kind == "ddp":
        ddp = {"class_path": "lightning.pytorch.strategies.DDPStrategy", "init_args": {"process_group_backend": "gloo"}}
        cmd += ["--trainer.devices", "2", "--trainer.strategy", json.dumps(ddp)]
    cmd += [
        *("--trainer.max_steps", str(GRPO_STEPS), "--trainer.callbacks", json.dumps(callbacks)),
        *("--trainer.default_root_dir", str(out), "--trainer.logger", "false", "--trainer.limit_val_batches", "0"),
        *("--model.init_args.policy.path", str(model_dir), "--model.init_args.generation_eval", "null"),
        *(
            "--model.init_args.rewards",
            json.dumps({"rewards": {"length": REWARD}, "weights": {"length": 1.0}}),
        ),
        *("--model.init_args.rollout.group_size", str(G), "--model.init_args.rollout.max_new_tokens", str(MAX_NEW)),
        *("--data.train_file", str(data_dir / "train.json"), "--data.val_file", "null"),
        *("--data.batch_size", str(2 // world), "--data.num_workers", "0", "--data.cache_dir", "null"),
    ]
    cmd += ["--trainer.precision", precision] if precision else []
    cmd += ["--ckpt_path", str(ckpt)] if ckpt else []
    return launch(cmd, out, world)


@pytest.fixture(scope="module")
def grpo_runs(tmp_path_factory, tiny_model_dir, synth_dir):
    root = tmp_path_factory.mktemp("grpo_elsewhere")
    saved = {"fsdp": root / "fsdp" / "checkpoints" / f"step={SAVE_AT}.ckpt"}
    saved["one"] = root / "one" / "checkpoints" / f"step={SAVE_AT}.ckpt"
    return {
        "fsdp": launch_grpo("fsdp", tiny_model_dir, synth_dir, root / "fsdp"),
        "one": launch_grpo("single", tiny_model_dir, synth_dir, root / "one"),
        "fsdp->one": launch_grpo("single", tiny_model_dir, synth_dir, root / "f2o", saved["fsdp"]),
        "fsdp->ddp": launch_grpo("ddp", tiny_model_dir, synth_dir, root / "f2d", saved["fsdp"]),
        "one->fsdp": launch_grpo("fsdp", tiny_model_dir, synth_dir, root / "o2f", saved["one"]),
    }, root


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize(("resumed", "writer"), [("fsdp->one", "fsdp"), ("fsdp->ddp", "fsdp"), ("one->fsdp", "one")])
def test_grpo_resumes_on_another_world_size(grpo_runs, resumed, writer):
    runs, root = grpo_runs
    check_grpo_resume(runs, root, resumed, writer)
    if resumed == "fsdp->ddp":  # same world size, prompts and RNG: the uninterrupted run's update
        assert_weights_close(root / "f2d", root / "fsdp", atol=1e-5)


def check_grpo_resume(runs: dict, root: Path, resumed: str, writer: str) -> None:
    """The resumed run starts from exactly the saved state, at the saved step, on the prompts the writer took next."""
    got, wrote = runs[resumed], runs[writer]
    saved = wrote[0]["steps"][str(SAVE_AT)]
    assert (root / "fsdp" / "checkpoints" / f"step={SAVE_AT}.ckpt").is_dir()  # FSDP2 writes a DCP folder
    for rank in got:
        assert rank["start_step"] == SAVE_AT
        assert sorted(map(int, rank["steps"])) == list(range(SAVE_AT + 1, GRPO_STEPS + 1))
        # Exactly the saved weights and optimizer state (resharded bytes, not an approximation).
        assert (rank["start_digest"], rank["start_optim"]) == (saved["weights"], saved["optim"])
    # The prompts after the saved position: those the writer (2 prompts per step at any world size) took next.
    for step in range(SAVE_AT + 1, GRPO_STEPS + 1):
        taken = sorted(i for rank in got for i in rank["steps"][str(step)]["ids"])
        assert taken == sorted(i for rank in wrote for i in rank["steps"][str(step)]["ids"]), step


@pytest.fixture(scope="module")
def grpo_bf16_runs(tmp_path_factory, tiny_model_dir, synth_dir):
    """The GRPO runs at ``trainer.precision: bf16-mixed``: FSDP2 ranks shard with a mixed-precision policy (bf16
    gathers, fp32 reduce-scatters, fp32 stored weights); one process runs under autocast alone."""
    root = tmp_path_factory.mktemp("grpo_elsewhere_bf16")

    def run(kind: str, name: str, ckpt_of: str | None = None) -> list[dict]:
        ckpt = root / ckpt_of / "checkpoints" / f"step={SAVE_AT}.ckpt" if ckpt_of else None
        return launch_grpo(kind, tiny_model_dir, synth_dir, root / name, ckpt, precision="bf16-mixed")

    runs = {"fsdp": run("fsdp", "fsdp"), "one": run("single", "one")}
    runs["fsdp->one"] = run("single", "f2o", "fsdp")
    runs["one->fsdp"] = run("fsdp", "o2f", "one")
    return runs, root


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize(("resumed", "writer"), [("fsdp->one", "fsdp"), ("one->fsdp", "one")])
def test_grpo_resumes_on_another_world_size_at_bf16_mixed(grpo_bf16_runs, resumed, writer):
    runs, root = grpo_bf16_runs
    check_grpo_resume(runs, root, resumed, writer)
    sharded = runs["fsdp"] + (runs[resumed] if resumed == "one->fsdp" else [])
    assert all(rank["param_dtypes"] == ["torch.bfloat16"] for rank in sharded), sharded  # the policy was on
    assert all(rank["param_dtypes"] == [] for rank in runs["one"])


@pytest.mark.slow
@pytest.mark.distributed
def test_bf16_mixed_fsdp_checkpoint_exports_its_fp32_weights(grpo_bf16_runs, tmp_path):
    """``lit_videor2 export`` of the last FSDP2 checkpoint of a bf16-mixed run: the run's full fp32 weights, exactly
    (the checkpoint holds the sharded master weights, not the bf16 gathers)."""
    from transformers import AutoModelForImageTextToText

    from lit_videor2.export import main as export_main

    runs, root = grpo_bf16_runs
    export_main(
        ["--ckpt", str(root / "fsdp" / "checkpoints" / f"step={GRPO_STEPS}.ckpt"), "--out", str(tmp_path / "hf")]
    )
    exported = dict(AutoModelForImageTextToText.from_pretrained(tmp_path / "hf").named_parameters())
    trained = torch.load(root / "fsdp" / "weights.pt")  # rank 0's full weights at the end of the run
    assert exported.keys() == trained.keys()
    for name, weight in trained.items():
        assert exported[name].dtype == torch.float32 and torch.equal(exported[name].detach(), weight), name


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="one SFT run of the resume tests (launched by them)")
    p.add_argument("strategy", choices=["single", "ddp", "fsdp"])
    p.add_argument("model_dir")
    p.add_argument("data_dir")
    p.add_argument("out", type=Path)
    p.add_argument("--ckpt", default=None)
    a = p.parse_args()
    sft_run(a.strategy, a.model_dir, a.data_dir, a.out, ckpt=a.ckpt)

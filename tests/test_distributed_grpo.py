"""GRPOModule over 2 CPU processes (gloo): DDP, and FSDP2 via Lightning's ModelParallelStrategy.

Each test runs ``python -m lit_videor2 fit`` in a subprocess, exactly as a user launches training; Lightning's
launcher re-runs that command for rank 1. A :class:`RankProbe` callback writes what each rank saw. The runs must
succeed: a process that cannot start fails the test, it is never skipped.

Rollouts are sampled per rank, so a 2-rank run is not compared with one process step by step (the SFT tests do
that); what is checked is that groups stay on their rank, that both ranks end with the same weights (DDP) or with
really sharded weights (FSDP2, policy and reference alike), and that every logged value is finite.

Ranks decode in lockstep: :class:`UnevenEnds` makes rank 0's completions end at their first token (EOS forced)
and rank 1's run to the token limit (EOS forbidden). Without lockstep, rank 0 stops decoding after one token while
rank 1 keeps running forwards: under FSDP2 the weight all-gathers go out of step (gloo: "received data size
doesn't match"). Both runs must finish with equal weights on both ranks.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
G, PROMPTS_PER_RANK, STEPS, MAX_NEW = 2, 1, 2, 6


class UnevenEnds(L.Callback):
    """Rank 0: every completion ends at its first token (EOS forced); other ranks: EOS forbidden (run to the limit).

    Wraps the rollout's logits processors in this process only, as a different model state per rank would.
    """

    def setup(self, trainer, pl_module, stage) -> None:
        from lit_videor2.rollout import generation as rollout

        original = rollout.build_logits_processors
        first = trainer.global_rank == 0

        def processors(**kwargs):
            out = original(**kwargs)
            eos = list(kwargs["eos_token_ids"])

            def force(input_ids, scores):
                if first:  # only EOS is possible (whatever the warpers before left)
                    return torch.full_like(scores, float("-inf")).index_fill(1, torch.tensor(eos), 0.0)
                return scores.index_fill(1, torch.tensor(eos), float("-inf"))

            out.append(force)
            return out

        rollout.build_logits_processors = processors


class RankProbe(L.Callback):
    """Writes ``rank<r>.json`` in ``out``: world size, sharding facts, a digest of the final full weights."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)

    @staticmethod
    def _facts(module: torch.nn.Module | None) -> dict:
        from torch.distributed.tensor import DTensor, Shard

        if module is None:
            return {}
        from lit_videor2.distributed.sharding import fsdp_units

        params = list(module.parameters())
        policies = [unit._get_fsdp_state()._mp_policy for unit in fsdp_units(module)]
        return {
            # The dtype each FSDP2 unit gathers and computes in (None: the stored dtype).
            "param_dtypes": sorted({str(mp.param_dtype) for mp in policies}),
            "reduce_dtypes": sorted({str(mp.reduce_dtype) for mp in policies}),
            "stored_dtypes": sorted({str(p.dtype) for p in params}),
            "dtensor": all(isinstance(p, DTensor) for p in params),
            "shard0": all(isinstance(p, DTensor) and p.placements == (Shard(0),) for p in params),
            "local_numel": sum(p.to_local().numel() if isinstance(p, DTensor) else p.numel() for p in params),
            "full_numel": sum(p.numel() for p in params),
        }

    def on_train_end(self, trainer, pl_module) -> None:
        digest = hashlib.sha256()
        for name, p in sorted(pl_module.model.named_parameters()):
            full = p.full_tensor() if hasattr(p, "full_tensor") else p
            digest.update(name.encode() + full.detach().float().cpu().numpy().tobytes())
        facts = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "strategy": type(trainer.strategy).__name__,
            "global_step": trainer.global_step,
            "policy": self._facts(pl_module.model),
            "reference": self._facts(getattr(pl_module, "ref_model", None)),
            "weights_sha256": digest.hexdigest(),
        }
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(facts))


def launch(
    strategy: str,
    model_dir: Path,
    data_dir: Path,
    out: Path,
    *,
    lora: bool,
    validate_at_start: bool = False,
    steps: int = STEPS,
    precision: str | None = None,
    rewards: dict | None = None,
) -> list[dict]:
    """``validate_at_start``: keep the demo config's step-0 validation (greedy generation on one val batch per rank
    before any training forward), as users run it. ``precision``: the trainer's (default: the demo config's
    ``32-true``). ``rewards``: replaces the demo config's (a ``RewardComposition``'s init arguments)."""
    callbacks = [
        {"class_path": "tests.test_distributed_grpo.RankProbe", "init_args": {"out": str(out)}},
        {"class_path": "tests.test_distributed_grpo.UnevenEnds"},
    ]
    if validate_at_start:
        callbacks.append({"class_path": "lit_videor2.modules.callbacks.ValidateAtStart"})
    probe = json.dumps(callbacks)
    cmd = [
        sys.executable,
        "-m",
        "lit_videor2",
        "fit",
        "--config",
        str(REPO / "configs" / "demo" / "grpo.yaml"),
        "--trainer.strategy",
        strategy,
        "--trainer.devices",
        "2",
        "--trainer.max_steps",
        str(steps),
        "--trainer.callbacks",
        probe,
        "--trainer.default_root_dir",
        str(out),
        "--trainer.logger",
        "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.save_dir",
        str(out),
        "--trainer.log_every_n_steps",
        "1",
        "--trainer.limit_val_batches",
        "0",
        "--model.init_args.policy.path",
        str(model_dir),
        "--model.init_args.generation_eval",
        "null",
        "--model.init_args.rollout.group_size",
        str(G),
        "--model.init_args.rollout.max_new_tokens",
        str(MAX_NEW),
        "--model.init_args.log_completions_every",
        "1",
        "--data.train_file",
        str(data_dir / "train.json"),
        "--data.val_file",
        "null",
        "--data.batch_size",
        str(PROMPTS_PER_RANK),
        "--data.num_workers",
        "0",
        "--data.cache_dir",
        "null",
    ]
    if precision is not None:
        cmd += ["--trainer.precision", precision]
    if rewards is not None:
        cmd += ["--model.init_args.rewards", json.dumps(rewards)]
    if lora:
        cmd += ["--model.init_args.policy.lora", json.dumps({"r": 4, "alpha": 8, "dropout": 0.0})]
    if validate_at_start:  # later arguments win
        cmd += ["--trainer.limit_val_batches", "1", "--data.val_file", str(data_dir / "val.json")]
        cmd += ["--model.init_args.generation_eval", json.dumps({"max_new_tokens": MAX_NEW})]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run(cmd, cwd=out.parent, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, (
        f"{strategy} run failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    )
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    for r in ranks:
        assert r["world_size"] == 2 and r["global_step"] == steps, r  # really two processes, both trained
    return ranks


def check_logs_and_groups(out: Path, steps: int = STEPS) -> None:
    rows = list(csv.DictReader(next(out.glob("**/metrics.csv")).open()))
    rewards = [float(r["train/reward"]) for r in rows if r.get("train/reward")]
    assert len(rewards) == steps and all(math.isfinite(v) for v in rewards)
    for r in rows:
        for k, v in r.items():
            if k.startswith("train/") and v:
                assert math.isfinite(float(v)), (k, v)
    # Groups never straddle ranks: each rank scored exactly G completions of each of its own prompts per step.
    for rank in range(2):
        lines = [json.loads(x) for x in next(out.glob(f"**/completions_rank{rank}.jsonl")).read_text().splitlines()]
        assert len(lines) == steps * PROMPTS_PER_RANK * G
        per_step_ids = {}
        for x in lines:
            per_step_ids.setdefault(x["step"], []).append(x["id"])
        assert all(
            len(set(ids)) == PROMPTS_PER_RANK and len(ids) == G * PROMPTS_PER_RANK for ids in per_step_ids.values()
        )
        # Uneven ends: rank 0 finished every completion at its first token, rank 1 ran each to the limit.
        assert {x["num_tokens"] for x in lines} == ({1} if rank == 0 else {MAX_NEW}), (rank, lines)


@pytest.mark.slow
@pytest.mark.distributed
def test_grpo_ddp_two_cpu_processes(tmp_path, tiny_model_dir, synth_dir):
    strategy = json.dumps(
        {"class_path": "lightning.pytorch.strategies.DDPStrategy", "init_args": {"process_group_backend": "gloo"}}
    )
    ranks = launch(strategy, tiny_model_dir, synth_dir, tmp_path / "ddp", lora=True)
    assert ranks[0]["strategy"] == "DDPStrategy"
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]  # gradients were all-reduced: same weights
    assert ranks[0]["reference"] == {}  # LoRA: the reference is the policy with adapters disabled, no copy
    check_logs_and_groups(tmp_path / "ddp")


@pytest.mark.slow
@pytest.mark.distributed
def test_grpo_fsdp2_two_cpu_processes_shards_policy_and_reference(tmp_path, tiny_model_dir, synth_dir):
    strategy = json.dumps(
        {
            "class_path": "lightning.pytorch.strategies.ModelParallelStrategy",
            "init_args": {"data_parallel_size": 2, "tensor_parallel_size": 1, "process_group_backend": "gloo"},
        }
    )
    ranks = launch(strategy, tiny_model_dir, synth_dir, tmp_path / "fsdp", lora=False, validate_at_start=True)
    for r in ranks:
        assert r["strategy"] == "ModelParallelStrategy"
        for part in ("policy", "reference"):  # full fine-tuning: a frozen reference copy, sharded like the policy
            facts = r[part]
            assert facts["dtensor"] and facts["shard0"], (part, facts)
            assert 0.4 * facts["full_numel"] <= facts["local_numel"] <= 0.6 * facts["full_numel"], (part, facts)
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]  # the gathered full weights agree
    check_logs_and_groups(tmp_path / "fsdp")
    # Validation ran at step 0, before any training forward (generation first calls the vision tower directly).
    rows = list(csv.DictReader(next((tmp_path / "fsdp").glob("**/metrics.csv")).open()))
    assert [r["step"] for r in rows if r.get("val/accuracy")] == ["0"]


@pytest.mark.slow
@pytest.mark.distributed
def test_grpo_fsdp2_bf16_mixed_gathers_in_bf16_for_twelve_steps(tmp_path, tiny_model_dir, synth_dir):
    """``trainer.precision: bf16-mixed`` under FSDP2 (issue 29): policy and reference gather and compute in bf16 and
    reduce gradients in fp32 (their FSDP2 ``MixedPrecisionPolicy``), the stored weights stay fp32, and 12 steps run
    in lockstep while rank 0's completions end at their first token and rank 1's run to the limit."""
    strategy = json.dumps(
        {
            "class_path": "lightning.pytorch.strategies.ModelParallelStrategy",
            "init_args": {"data_parallel_size": 2, "tensor_parallel_size": 1, "process_group_backend": "gloo"},
        }
    )
    out = tmp_path / "fsdp_bf16"
    # The demo's rewards score the random model's completions all 0 (no update); the completion length in characters
    # differs within rank 1's groups, so the policy moves away from the reference.
    rewards = {"rewards": {"length": "tests.test_resume_elsewhere.text_length_reward"}, "weights": {"length": 1.0}}
    ranks = launch(
        strategy, tiny_model_dir, synth_dir, out, lora=False, steps=12, precision="bf16-mixed", rewards=rewards
    )
    for r in ranks:
        for part in ("policy", "reference"):
            facts = r[part]
            assert facts["param_dtypes"] == ["torch.bfloat16"] and facts["reduce_dtypes"] == ["torch.float32"], facts
            assert facts["stored_dtypes"] == ["torch.float32"] and facts["shard0"], facts
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    check_logs_and_groups(out, steps=12)  # diverging completion lengths: 1 token on rank 0, MAX_NEW on rank 1
    rows = [r for r in csv.DictReader(next(out.glob("**/metrics.csv")).open()) if r.get("train/kl")]
    kl, grad = [float(r["train/kl"]) for r in rows], [float(r["train/grad_norm"]) for r in rows]
    assert kl[0] == 0.0 and max(kl) > 0.0, kl  # bf16 reference = bf16 policy at step 0; apart once updated
    assert all(g > 0.0 for g in grad), grad  # every step updated the fp32 master weights

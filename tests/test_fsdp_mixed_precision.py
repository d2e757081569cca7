"""FSDP2 at bf16: gather and compute in bfloat16, reduce gradients in float32 (issue 29).

Two CPU processes (gloo) shard the tiny Qwen2.5-VL policy and its frozen reference copy with the project's
:func:`shard_policy`, once as ``bf16-mixed`` does now (``mp_dtype=bfloat16``: an FSDP2 ``MixedPrecisionPolicy``) and
once as before (no policy: fp32 gathers). Each setting runs one GRPO step as :class:`GRPOModule` does, under
``torch.autocast("cpu", bfloat16)`` as Lightning's ``bf16-mixed`` runs the training step: a rollout (G completions of
exactly ``NEW`` tokens, weights gathered once), the reference pass, the policy pass and its backward, the gradient
norm and AdamW. Every collective is counted in each process (:func:`bench.collectives.count_collectives`):

* all-gather bytes per rollout and per training step are exactly half of the fp32 setting's, in bfloat16;
* gradient reduce-scatters stay float32, with the same bytes; all-reduces (lockstep decoding, gradient norm) float32;
* generation, the reference pass and the policy pass all compute with bfloat16 weights, so the step's KL is exactly
  0 and its ratio exactly 1 (the policy equals the reference before its first update);
* on one fixed rollout, teacher-forced log-probs with bf16 gathers differ from fp32 gathers (both under autocast) by
  at most ``LOGPROB_BOUND`` nats per token on average;
* the mRoPE positions of a 29.97 fps clip (``second_per_grid_ts`` 14.998 s, which bfloat16 rounds to 15.0 and would
  move the time positions) are the same in both settings, and a forward that computes its own positions receives
  ``second_per_grid_ts`` in float32, unrounded.

Both ranks' facts are written to JSON; the byte counts are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from bench.collectives import count_collectives

WORLD, G, NEW = 2, 2, 6
#: 8 frames spread over a 60 s clip at 29.97 fps (1,798 frames): 14.998 s per temporal grid of 2 frames.
FPS, SOURCE_FRAMES, FRAMES = 29.97, 1798, 8
#: Mean |log p(bf16 gathers) - log p(fp32 gathers)| per completion token allowed on the tiny model.
LOGPROB_BOUND = 0.02


def _prompt(processor, rank: int):
    """One video prompt per rank: 8 frames of a 29.97 fps minute, sampled uniformly (their real times)."""
    from lit_videor2.data.collate import VideoCollator
    from lit_videor2.data.dataset import VideoSample
    from lit_videor2.data.frames import Frames
    from lit_videor2.data.records import VideoRecord
    from lit_videor2.rollout import PromptBatch

    indices = [round(k * SOURCE_FRAMES / FRAMES) for k in range(FRAMES)]
    frames = torch.randint(
        0, 256, (FRAMES, 3, 56, 56), dtype=torch.uint8, generator=torch.Generator().manual_seed(rank)
    )
    record = VideoRecord(id=f"r{rank}", video="v.mp4", question="What happens at the end?" * (rank + 1), answer="A")
    sample = VideoSample(record, Frames(frames, [i / FPS for i in indices], SOURCE_FRAMES / FPS, "test"))
    return PromptBatch.from_collated(VideoCollator(processor, "prompt")([sample]))


class DtypeProbe:
    """Records the dtype of the final norm's weight at each forward of a model: the dtype its root computes in."""

    def __init__(self, model) -> None:
        from lit_videor2.models.policy import language_model

        self.seen: list[str] = []
        language_model(model).norm.register_forward_pre_hook(self._hook)

    def _hook(self, module, args) -> None:
        self.seen.append(str(module.weight.dtype).removeprefix("torch."))

    def take(self) -> list[str]:
        out, self.seen = sorted(set(self.seen)), []
        return out


def _masked_diffs(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> list[float]:
    """Sum and max of |a - b| over the masked tokens, and their count (summed over ranks by the caller)."""
    d = (a - b).abs()[mask.bool()]
    return [float(d.sum()), float(d.max()) if d.numel() else 0.0, float(d.numel())]


def _worker(rank: int, model_dir: str, init_file: str, out_dir: str) -> None:
    from torch.distributed.device_mesh import init_device_mesh

    from lit_videor2.distributed.loading import load_policy
    from lit_videor2.distributed.sharding import shard_policy
    from lit_videor2.losses import group_advantages, grpo_loss
    from lit_videor2.models.hub import load_processor
    from lit_videor2.models.policy import PolicySpec, inner_model
    from lit_videor2.models.vision import original_rope_index, rope_positions
    from lit_videor2.rollout import generate_group, sequence_logprobs, stop_token_ids
    from lit_videor2.rollout.decoding import special_token_kwargs

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        mesh = init_device_mesh("cpu", (WORLD,))
        spec = PolicySpec(path=model_dir, attn_implementation="sdpa")
        processor = load_processor(model_dir)
        prompt = _prompt(processor, rank)
        tokens = special_token_kwargs(load_policy(spec), processor.tokenizer)
        # Lightning's bf16-mixed. Without cache_enabled=False, the weights' bf16 casts cached in the no-grad rollout
        # would be reused by the policy pass, and the fp32-gather setting's linear weights would get no gradient.
        autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False)  # noqa: E731
        text = torch.tensor([[stop_token_ids(processor.tokenizer)[0]]])
        facts: dict = {}
        models = {}
        for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            policy = shard_policy(load_policy(spec).train(), mesh, mp_dtype=dtype)
            reference = shard_policy(load_policy(spec).eval().requires_grad_(False), mesh, mp_dtype=dtype)
            for model in (policy, reference):  # FSDP2 picks each root (PolicyModule.init_fsdp_roots)
                with torch.no_grad():
                    model(
                        input_ids=text, attention_mask=torch.ones_like(text), mm_token_type_ids=torch.zeros_like(text)
                    )
            models[name] = policy, reference

        # One GRPO step per setting, counted.
        rollouts = {}
        for name, (policy, reference) in models.items():
            probes = DtypeProbe(policy), DtypeProbe(reference)
            optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-4)
            with autocast():
                with count_collectives() as rollout_counts:
                    rollout = generate_group(policy, prompt, group_size=G, max_new_tokens=NEW, min_new_tokens=NEW,
                                             temperature=0.9, generator=torch.Generator().manual_seed(rank),
                                             synced=True, **tokens)  # fmt: skip
                compute = {"rollout": probes[0].take()}
                with count_collectives() as step_counts:
                    with torch.no_grad():
                        ref = sequence_logprobs(reference, rollout, temperature=0.9)
                    compute["reference"] = probes[1].take()
                    logps = sequence_logprobs(policy, rollout, temperature=0.9)
                    compute["policy"] = probes[0].take()
                    advantages = group_advantages(torch.arange(G * prompt.batch_size, dtype=torch.float32), G)
                    mask = rollout.completion_mask.float()
                    loss, stats = grpo_loss(logps, logps.detach(), ref, advantages, mask, beta=0.04)
                    loss.backward()
            with count_collectives() as optim_counts:  # outside autocast, as Lightning steps the optimizer
                grads = [p.grad for p in policy.parameters() if p.grad is not None]
                norm = torch.nn.utils.get_total_norm(grads)
                norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            grad_dtypes = sorted({str(g.dtype).removeprefix("torch.") for g in grads})
            facts[name] = {
                "rollout": rollout_counts.as_dict(),
                "step": step_counts.as_dict(),
                "optimizer": optim_counts.as_dict(),
                "compute": compute,
                "kl": float(stats.kl),
                "ratio": float(stats.ratio_mean),
                "grad_norm": float(norm),
                "grad_dtypes": grad_dtypes,
                "master_dtypes": sorted({str(p.dtype).removeprefix("torch.") for p in policy.parameters()}),
                "positions": rollout.position_ids[:, :, : prompt.length].tolist(),
            }
            rollouts[name] = rollout

        # Fixed rollout (the fp32 setting's), teacher-forced through each frozen reference: video re-encoded by each.
        fixed = rollouts["fp32"]
        mask = fixed.completion_mask
        with torch.no_grad():
            plain = sequence_logprobs(models["fp32"][1], fixed, reuse_vision=False, temperature=0.9)  # no autocast
            with autocast():
                lp = {n: sequence_logprobs(models[n][1], fixed, reuse_vision=False, temperature=0.9) for n in models}
        facts["logprob_diff"] = {
            "bf16_vs_fp32_gathers": _masked_diffs(lp["bf16"], lp["fp32"], mask),
            "autocast_vs_fp32": _masked_diffs(lp["fp32"], plain, mask),
            "bf16_gathers_vs_fp32": _masked_diffs(lp["bf16"], plain, mask),
        }

        # mRoPE time positions at 29.97 fps: the project's (float32 seconds), and what bfloat16 seconds would give.
        seconds = prompt.second_per_grid_ts
        args = (prompt.input_ids, prompt.attention_mask, prompt.mm_token_type_ids, prompt.video_grid_thw)
        policy = models["bf16"][0]
        positions, _ = rope_positions(policy, *args, seconds)
        rounded, _ = rope_positions(policy, *args, seconds.bfloat16())
        # A forward of the sharded bf16 root that computes its own positions (no position_ids given).
        seen = {}
        with torch.no_grad(), autocast(), original_rope_index(policy):
            core = inner_model(policy).model
            own = core.get_rope_index

            def spy(*a, **kw):
                seen["seconds"] = kw.get("second_per_grid_ts")
                out = own(*a, **kw)
                seen["positions"] = out[0]
                return out

            core.get_rope_index = spy
            policy(input_ids=prompt.input_ids, attention_mask=prompt.attention_mask,
                   mm_token_type_ids=prompt.mm_token_type_ids, pixel_values_videos=prompt.pixel_values_videos,
                   video_grid_thw=prompt.video_grid_thw, second_per_grid_ts=seconds, use_cache=False)  # fmt: skip
        facts["time"] = {
            "seconds": seconds.tolist(),
            "seconds_bf16": seconds.bfloat16().float().tolist(),
            "positions": positions.tolist(),
            "positions_if_bf16": rounded.tolist(),
            "forward_seconds_dtype": str(seen["seconds"].dtype).removeprefix("torch."),
            "forward_seconds": seen["seconds"].float().tolist(),
            "forward_positions": seen["positions"].tolist(),
        }
        (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(facts))
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory, tiny_model_dir) -> list[dict]:
    import torch.multiprocessing as mp

    out = tmp_path_factory.mktemp("fsdp_bf16")
    ctx = mp.spawn(_worker, args=(str(tiny_model_dir), str(out / "init"), str(out)), nprocs=WORLD, join=False)
    deadline = time.monotonic() + 400
    while not ctx.join(timeout=5):  # raises if a worker fails
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"the {WORLD} gloo workers did not finish within 400 s")
    facts = [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]
    print("\nbytes per GRPO step on 2 ranks (tiny Qwen2.5-VL, G 2, 6 new tokens), rank 0:")
    print("| setting | phase | all-gather | reduce-scatter | all-reduce |")
    for name in ("fp32", "bf16"):
        for phase in ("rollout", "step", "optimizer"):
            c = facts[0][name][phase]
            cells = [f"{c[k]['calls']} × {c[k]['by_dtype']} = {c[k]['bytes']:,} B" for k in c]
            print(f"| {name} gathers | {phase} | " + " | ".join(cells) + " |")
    return facts


@pytest.mark.distributed
@pytest.mark.slow
def test_bf16_gathers_halve_all_gather_bytes(ranks):
    for r in ranks:
        for phase in ("rollout", "step"):
            fp32, bf16 = r["fp32"][phase]["all_gather"], r["bf16"][phase]["all_gather"]
            assert fp32["calls"] == bf16["calls"] > 0, (phase, fp32, bf16)
            assert set(fp32["by_dtype"]) == {"float32"} and set(bf16["by_dtype"]) == {"bfloat16"}, (phase, bf16)
            assert 2 * bf16["bytes"] == fp32["bytes"], (phase, fp32, bf16)
    for name in ("fp32", "bf16"):  # the same collectives on both ranks
        assert (
            ranks[0][name]["rollout"] == ranks[1][name]["rollout"] and ranks[0][name]["step"] == ranks[1][name]["step"]
        )


@pytest.mark.distributed
@pytest.mark.slow
def test_gradient_reduce_scatters_and_all_reduces_stay_fp32(ranks):
    for r in ranks:
        fp32, bf16 = r["fp32"]["step"]["reduce_scatter"], r["bf16"]["step"]["reduce_scatter"]
        assert bf16["calls"] > 0 and set(bf16["by_dtype"]) == {"float32"}, bf16
        assert fp32 == bf16  # the same gradient buffers, in float32 either way
        assert r["bf16"]["rollout"]["reduce_scatter"]["calls"] == 0
        for name in ("fp32", "bf16"):
            # Lockstep decoding (one scalar per step) and the gradient norm (a DTensor all-reduce).
            assert r[name]["rollout"]["all_reduce"]["calls"] == NEW - 1, r[name]["rollout"]
            assert set(r[name]["rollout"]["all_reduce"]["by_dtype"]) == {"float32"}
            assert r[name]["optimizer"]["all_reduce"]["calls"] >= 1
            assert set(r[name]["optimizer"]["all_reduce"]["by_dtype"]) == {"float32"}
            # Master weights and their (reduced) gradients stay float32; the optimizer updates those.
            assert r[name]["master_dtypes"] == ["float32"] and r[name]["grad_dtypes"] == ["float32"]
        assert r["fp32"]["grad_norm"] > 0 and r["bf16"]["grad_norm"] > 0


@pytest.mark.distributed
@pytest.mark.slow
def test_generation_reference_and_policy_compute_in_one_dtype(ranks):
    for r in ranks:
        for name, dtype in (("fp32", "float32"), ("bf16", "bfloat16")):
            assert r[name]["compute"] == {"rollout": [dtype], "reference": [dtype], "policy": [dtype]}, r[name]
            # The policy equals the reference before its first update and both passes compute alike: k3 KL exactly
            # 0, ratio exactly 1 (a policy in bf16 against a reference in fp32 would show a KL from rounding alone).
            assert r[name]["kl"] == 0.0 and r[name]["ratio"] == 1.0, r[name]


@pytest.mark.distributed
@pytest.mark.slow
def test_bf16_gather_logprobs_within_bound(ranks):
    diffs = {}
    for key in ranks[0]["logprob_diff"]:
        total = sum(r["logprob_diff"][key][0] for r in ranks)
        worst = max(r["logprob_diff"][key][1] for r in ranks)
        count = sum(r["logprob_diff"][key][2] for r in ranks)
        diffs[key] = (total / count, worst)
    print(f"\nmean / max |Δ log p| per completion token: {diffs}")
    mean, _ = diffs["bf16_vs_fp32_gathers"]
    assert 0.0 < mean <= LOGPROB_BOUND, diffs  # not 0: the gathers really changed dtype


@pytest.mark.distributed
@pytest.mark.slow
def test_mrope_positions_unchanged_at_29_97_fps(ranks):
    for r in ranks:
        t = r["time"]
        spg = 2 * (SOURCE_FRAMES / FPS) / FRAMES
        assert t["seconds"] == pytest.approx([spg], abs=1e-4) and t["seconds_bf16"] == [15.0]
        assert t["positions"] != t["positions_if_bf16"]  # bfloat16 seconds would move the time positions
        # The rollouts' prompt positions: the project's (float32 seconds), the same in both settings.
        for name in ("fp32", "bf16"):
            assert all(row == t["positions"][axis][0] for axis in range(3) for row in r[name]["positions"][axis])
        # A forward of the bf16 root that computes its own positions gets the seconds unrounded.
        assert t["forward_seconds_dtype"] == "float32" and t["forward_seconds"] == t["seconds"]
        assert t["forward_positions"] == t["positions"]


@pytest.mark.parametrize(
    ("precision", "enabled", "expected"),
    [
        ("bf16-mixed", True, torch.bfloat16),  # fsdp.yaml: bf16 gathers, fp32 reductions
        ("bf16-mixed", False, None),  # turned off: gather the stored dtype
        ("32-true", True, None),
        ("bf16-true", True, None),  # weights stored in bf16 already
        ("16-mixed", True, None),  # fp16 gradients would need a scaler
        (None, True, None),  # no trainer
    ],
)
def test_fsdp_param_dtype_follows_precision_and_setting(precision, enabled, expected):
    from lit_videor2.distributed.sharding import fsdp_param_dtype
    from lit_videor2.models.policy import PolicySpec

    spec = PolicySpec(path="unused", fsdp_mixed_precision=enabled)
    assert fsdp_param_dtype(spec, precision) is expected

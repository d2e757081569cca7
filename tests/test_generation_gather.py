"""Generation under FSDP2 all-gathers the weights once per call, not once per decode step (issue 19).

Two CPU processes (gloo) shard the tiny Qwen2.5-VL with the project's :func:`shard_policy` (a unit per decoder
layer, the vision tower and the root). Every all-gather FSDP2 issues is counted (``torch.distributed``'s all-gather
entry points are wrapped in each process) around one GRPO rollout (:func:`generate_group`, G 2) and one evaluation
batch (:func:`generate_completions`), at two completion lengths and with ``gather_for_generation`` on and off:

* on: one all-gather per FSDP2 unit per call, whatever the number of new tokens; off: the count grows with it
  (so the counter sees FSDP2's gathers);
* the ranks decode in lockstep with uneven ends (rank 0's rows stop at their first token, rank 1's run to the
  limit) and issue the same number of all-gathers;
* greedy tokens are identical either way and equal those of the unsharded model; the log-probs of a rollout are
  identical either way;
* afterwards the model is sharded again and a training forward all-gathers exactly as before; after a GRPO-style
  update the full parameters agree across ranks and between the two settings.

And end to end: ``lit_videor2 test`` on 2 FSDP2 ranks all-gathers each unit once per test batch, and its
predictions equal those of a 1-process run.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.distributed as dist

from bench.collectives import count_all_gathers  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

WORLD, G, SHORT, LONG = 2, 2, 3, 9


def _prompt(processor, rank: int):
    """One video prompt per rank (different frames, lengths and fps on each rank)."""
    from lit_videor2.data.collate import VideoCollator
    from lit_videor2.data.dataset import VideoSample
    from lit_videor2.data.frames import Frames
    from lit_videor2.data.records import VideoRecord
    from lit_videor2.rollout import PromptBatch

    n, fps = (8, 2.0) if rank == 0 else (4, 1.0)
    frames = torch.randint(0, 256, (n, 3, 56, 56), dtype=torch.uint8, generator=torch.Generator().manual_seed(rank))
    record = VideoRecord(id=f"r{rank}", video="v.mp4", question="Which shape appears first?" * (rank + 1), answer="A")
    sample = VideoSample(record, Frames(frames, [i / fps for i in range(n)], n / fps, "test"))
    return PromptBatch.from_collated(VideoCollator(processor, "prompt")([sample]))


def _digest(model: torch.nn.Module) -> str:
    """SHA-256 of the full (gathered) parameters."""
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        full = p.full_tensor() if hasattr(p, "full_tensor") else p
        h.update(name.encode() + full.detach().float().numpy().tobytes())
    return h.hexdigest()


def _worker(rank: int, model_dir: str, init_file: str, out_dir: str) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor

    from lit_videor2.distributed.loading import load_policy
    from lit_videor2.distributed.sharding import fsdp_units, shard_policy
    from lit_videor2.models.hub import load_processor
    from lit_videor2.models.policy import PolicySpec, decoder_layers
    from lit_videor2.rollout import GenerationSettings, generate_completions, generate_group, sequence_logprobs
    from lit_videor2.rollout.decoding import special_token_kwargs

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        mesh = init_device_mesh("cpu", (WORLD,))
        spec = PolicySpec(path=model_dir, attn_implementation="sdpa")
        processor = load_processor(model_dir)
        plain = load_policy(spec).eval()  # unsharded, for the 1-process tokens
        models = {
            True: shard_policy(load_policy(spec).train(), mesh),
            False: shard_policy(load_policy(spec).train(), mesh),
        }
        prompt = _prompt(processor, rank)
        tokens = special_token_kwargs(plain, processor.tokenizer)
        # Uneven ends: every id stops rank 0's rows at their first token; rank 1's rows cannot stop before the limit.
        stop = list(range(plain.config.text_config.vocab_size)) if rank == 0 else tokens["eos_token_ids"]

        def train_forward(model) -> int:
            """A training forward and backward (as the log-prob passes make) -> its all-gathers. Its backward
            reshards the root too, so every generation call below starts from the state a GRPO step leaves."""
            ids = prompt.input_ids[:, -4:]
            with count_all_gathers() as c:
                out = model(input_ids=ids, attention_mask=torch.ones_like(ids), mm_token_type_ids=torch.zeros_like(ids))
                out.logits.sum().backward()
            model.zero_grad(set_to_none=True)
            return c.calls

        facts: dict = {"units": len(fsdp_units(models[True])), "layers": len(decoder_layers(plain))}
        rollouts = {}
        for gather, model in models.items():
            facts[f"train/{gather}"] = [train_forward(model)]  # also the root's lazy init (PolicyModule does it)
            for new in (SHORT, LONG):
                with count_all_gathers() as c:
                    r = generate_group(
                        model,
                        prompt,
                        group_size=G,
                        max_new_tokens=new,
                        min_new_tokens=new if rank == 1 else 0,
                        do_sample=False,
                        synced=True,
                        gather_for_generation=gather,
                        **{**tokens, "eos_token_ids": stop},
                    )
                facts[f"rollout/{gather}/{new}"] = [c.calls, c.bytes, r.completion_lengths.tolist()]
                rollouts[gather, new] = r
                facts[f"train/{gather}"].append(train_forward(model))
                with count_all_gathers() as c:
                    settings = GenerationSettings(max_new_tokens=new, min_new_tokens=new)
                    done = generate_completions(model, processor.tokenizer, prompt, settings, synced=True,
                                                gather_for_generation=gather)  # fmt: skip
                facts[f"eval/{gather}/{new}"] = [c.calls, c.bytes, done.token_ids.tolist()]
                facts[f"train/{gather}"].append(train_forward(model))
                # Sharded again: every parameter of the decoder layers is this rank's shard only.
                layer_params = [p for layer in decoder_layers(model) for p in layer.parameters()]
                assert all(isinstance(p, DTensor) and p.to_local().numel() < p.numel() for p in layer_params)
            # The unsharded model's greedy tokens (rank 0's stop early: the lockstep rollout pads after them).
            ref = generate_group(plain, prompt, group_size=G, max_new_tokens=LONG, min_new_tokens=LONG if rank else 0,
                                 do_sample=False, **{**tokens, "eos_token_ids": stop})  # fmt: skip
            got, t = rollouts[gather, LONG], ref.completion_ids.shape[1]
            facts[f"plain_tokens_equal/{gather}"] = torch.equal(ref.completion_ids, got.completion_ids[:, :t]) and (
                int(got.completion_mask[:, t:].sum()) == 0
            )
        # GRPO-style update on the LONG rollout of each setting; log-probs and updated parameters compared.
        logps = {}
        for gather, model in models.items():
            optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
            rollout = rollouts[gather, LONG]
            lp = sequence_logprobs(model, rollout, reuse_vision=True, share_prompt=True)  # [N, T]
            mask = rollout.completion_mask.float()
            (-(lp * mask).sum() / mask.sum().clamp(min=1)).backward()
            optimizer.step()
            logps[gather] = lp.detach()
        facts["tokens_equal"] = all(
            torch.equal(rollouts[True, n].completion_ids, rollouts[False, n].completion_ids) for n in (SHORT, LONG)
        )
        facts["logprobs_equal"] = torch.equal(logps[True], logps[False])
        facts["digest"] = {str(k): _digest(m) for k, m in models.items()}
        (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(facts))
        dist.barrier()  # neither rank tears gloo down while its peer still talks to it
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
@pytest.mark.slow
def test_fsdp2_generation_gathers_once_per_call(tmp_path, tiny_model_dir):
    import torch.multiprocessing as mp

    ctx = mp.spawn(_worker, args=(str(tiny_model_dir), str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=False)
    deadline = time.monotonic() + 300
    while not ctx.join(timeout=5):  # raises if a worker fails
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"the {WORLD} gloo workers did not finish within 300 s")
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    units = ranks[0]["units"]
    assert units == ranks[0]["layers"] + 2  # every decoder layer, the vision tower, the root

    for kind in ("rollout", "eval"):
        once_short, once_long = (ranks[0][f"{kind}/True/{n}"][:2] for n in (SHORT, LONG))
        per_token_short, per_token_long = (ranks[0][f"{kind}/False/{n}"][:2] for n in (SHORT, LONG))
        # Gather once: one all-gather per unit per call, the same bytes, whatever the number of new tokens.
        assert once_short == once_long and once_short[0] == units, (kind, once_short, once_long)
        # Per token: each extra decode step gathers every unit but the vision tower again (the decoder layers and
        # the root: embeddings, final norm, LM head), so the counter sees FSDP2's gathers.
        assert per_token_long[0] - per_token_short[0] == (LONG - SHORT) * (units - 1), (kind, per_token_long)
        assert per_token_long[1] > 2 * once_long[1]
        for gather in (True, False):  # lockstep: both ranks issue the same gathers of the same sizes
            for n in (SHORT, LONG):
                assert ranks[0][f"{kind}/{gather}/{n}"][:2] == ranks[1][f"{kind}/{gather}/{n}"][:2], (kind, gather, n)
    # Uneven ends: rank 0's rows stopped at their first token, rank 1's ran to the limit, in both settings.
    for gather in (True, False):
        assert ranks[0][f"rollout/{gather}/{LONG}"][2] == [1] * G
        assert ranks[1][f"rollout/{gather}/{LONG}"][2] == [LONG] * G
    for r in ranks:
        assert r["tokens_equal"] and r["logprobs_equal"], r
        assert r["plain_tokens_equal/True"] and r["plain_tokens_equal/False"]  # = the unsharded model's tokens
        assert r[f"eval/True/{LONG}"][2] == r[f"eval/False/{LONG}"][2]
        # Training forwards keep resharding: after generation they gather as after today's per-token generation,
        # every decoder layer in the forward and again in the backward.
        assert r["train/True"] == r["train/False"], r
        assert all(n >= 2 * r["layers"] for n in r["train/True"]), r
    # After the update the full parameters agree across ranks and between the two settings.
    assert ranks[0]["digest"] == ranks[1]["digest"]
    assert ranks[0]["digest"]["True"] == ranks[0]["digest"]["False"]


def test_gathered_for_generation_is_a_no_op_without_fsdp(tiny_model_dir):
    from lit_videor2.distributed.loading import load_policy
    from lit_videor2.distributed.sharding import fsdp_units, gathered_for_generation
    from lit_videor2.models.policy import PolicySpec

    model = load_policy(PolicySpec(path=str(tiny_model_dir), attn_implementation="sdpa"))
    before = {n: p.clone() for n, p in model.named_parameters()}
    assert fsdp_units(model) == []
    with count_all_gathers() as c, gathered_for_generation(model):
        pass
    assert c.calls == 0
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


class GatherCounter(L.Callback):
    """Counts the all-gathers of every test batch in this process; writes ``gathers_rank<r>.json`` to ``out``."""

    def __init__(self, out: str) -> None:
        self.out, self.counts, self.stack = Path(out), [], ExitStack()

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self.count = self.stack.enter_context(count_all_gathers())

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.stack.close()
        self.counts.append(self.count.calls)

    def on_test_end(self, trainer, pl_module) -> None:
        from lit_videor2.distributed.sharding import fsdp_units

        facts = {"counts": self.counts, "units": len(fsdp_units(pl_module.model)), "world": trainer.world_size}
        (self.out / f"gathers_rank{trainer.global_rank}.json").write_text(json.dumps(facts))


def _eval_run(tmp: Path, synth_dir: Path, model_dir: Path, *, fsdp: bool) -> list[dict]:
    """``lit_videor2 test`` as a user launches it (2 FSDP2 ranks, or 1 process) -> predictions rows."""
    from lit_videor2.evaluation.predictions import read_predictions
    from tests.test_evaluation import eval_config

    tmp.mkdir()
    cfg = eval_config(tmp, synth_dir, model_dir, batch_size=1, devices=2 if fsdp else 1)
    args = [sys.executable, "-m", "lit_videor2", "test", "--config", str(cfg)]
    if fsdp:
        args += ["--config", str(REPO / "configs" / "trainer" / "cpu_fsdp.yaml"), "--trainer.logger", "false"]
        counter = {"class_path": "tests.test_generation_gather.GatherCounter", "init_args": {"out": str(tmp)}}
        args += ["--trainer.callbacks", json.dumps([counter])]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, f"rc {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return read_predictions(tmp / "eval" / "predictions.jsonl")


@pytest.mark.distributed
@pytest.mark.slow
def test_fsdp2_test_gathers_once_per_batch_and_matches_one_process(tmp_path, synth_dir, tiny_model_dir):
    sharded = _eval_run(tmp_path / "fsdp", synth_dir, tiny_model_dir, fsdp=True)
    ranks = [json.loads((tmp_path / "fsdp" / f"gathers_rank{r}.json").read_text()) for r in range(WORLD)]
    for r in ranks:
        assert r["world"] == WORLD and r["units"] >= 4, r  # really 2 processes, really sharded
        # Once per batch: one all-gather per FSDP2 unit, whatever the completion lengths (8 new tokens at most).
        assert r["counts"] and all(c == r["units"] for c in r["counts"]), r
    assert ranks[0]["counts"] == ranks[1]["counts"]
    single = _eval_run(tmp_path / "one", synth_dir, tiny_model_dir, fsdp=False)
    key = lambda row: (row["benchmark"], row["id"])  # noqa: E731
    assert len(sharded) == len(single) == 8
    assert {key(r): (r["completion"], r["num_tokens"]) for r in sharded} == {
        key(r): (r["completion"], r["num_tokens"]) for r in single
    }

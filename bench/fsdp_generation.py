"""Rollout time and all-gather bytes of a 2-rank FSDP2 GRPO step: weights gathered once per rollout vs per token.

Two CPU processes (gloo) shard a tiny, language-dominant Qwen2.5-VL (LLM hidden 256, 4 layers by default) with the
project's :func:`~lit_videor2.distributed.sharding.shard_policy` (a unit per decoder layer, the vision tower, the root),
activation checkpointing on, a frozen reference copy sharded alike. One step = rollout (G completions of exactly
``--new-tokens`` tokens per prompt, one video prompt per rank, lockstep decoding) + reference log-probs + policy
log-probs, backward and AdamW, as :class:`~lit_videor2.modules.grpo.GRPOModule` runs it.

(once)      ``gather_for_generation=True``: every FSDP2 unit is all-gathered once before the rollout and
            resharded after it (:func:`~lit_videor2.distributed.sharding.gathered_for_generation`).
(per token) ``gather_for_generation=False``: every decode step's forward all-gathers each decoder layer and the
            root again (``reshard_after_forward=True``), the behaviour before issue 19.

Every all-gather the rollout issues is counted in each process (``torch.distributed``'s all-gather functions
wrapped), with the bytes of the gathered outputs; a rank receives (W - 1) / W of them. The arms run interleaved
(A B A B: for each round, each token count in each mode) so that CPU noise hits them alike; medians are printed
side by side with the ratio.

Usage: ``python bench/fsdp_generation.py [--new-tokens 64 256] [--steps 3] [--warmup 1] [--threads 1]
[--hidden 256 --layers 4] [--frames 8 --size 112] [--checkpointing on|off]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grpo_step import make_frames, make_prompt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.collectives import count_all_gathers  # noqa: E402

WORLD = 2


def grpo_step(policy, reference, optimizer, prompt, eos, args, new_tokens: int, gather: bool) -> dict[str, float]:
    """One GRPO step on this rank; returns seconds per phase and the rollout's all-gathers."""
    from lit_videor2.losses import group_advantages, grpo_loss
    from lit_videor2.rollout import generate_group, sequence_logprobs

    dist.barrier()  # both ranks start the arm together
    t0 = time.perf_counter()
    with count_all_gathers() as gathers:
        rollout = generate_group(
            policy,
            prompt,
            group_size=args.group_size,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            temperature=0.9,
            top_k=50,
            eos_token_ids=eos,
            synced=True,
            gather_for_generation=gather,
        )
    t1 = time.perf_counter()
    with torch.no_grad():
        ref = sequence_logprobs(reference, rollout, reuse_vision=True, share_prompt=True, temperature=0.9)
    logps = sequence_logprobs(policy, rollout, reuse_vision=True, share_prompt=True, temperature=0.9)
    advantages = group_advantages(torch.rand(rollout.num_completions), args.group_size)
    loss, _ = grpo_loss(logps, None, ref, advantages, rollout.completion_mask, loss_type="bnpo", beta=0.04)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    t2 = time.perf_counter()
    assert rollout.completion_ids.shape == (args.group_size, new_tokens)
    return {"rollout": t1 - t0, "step": t2 - t0, "gathers": gathers.calls, "gather_bytes": gathers.bytes}


def _init_root(model, tokenizer) -> None:
    """One text forward: FSDP2 picks the root (as ``PolicyModule.init_fsdp_roots`` does before any rollout)."""
    from lit_videor2.rollout import stop_token_ids

    ids = torch.tensor([[stop_token_ids(tokenizer)[0]]])
    with torch.no_grad():
        model(input_ids=ids, attention_mask=torch.ones_like(ids), mm_token_type_ids=torch.zeros_like(ids))


def worker(rank: int, args: argparse.Namespace, model_dir: str, init_file: str, out: str) -> None:
    from torch.distributed.device_mesh import init_device_mesh

    from lit_videor2.distributed.loading import load_policy
    from lit_videor2.distributed.sharding import shard_policy
    from lit_videor2.models.hub import load_processor
    from lit_videor2.models.policy import PolicySpec
    from lit_videor2.rollout import stop_token_ids

    torch.set_num_threads(args.threads)
    torch.manual_seed(rank)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        mesh = init_device_mesh("cpu", (WORLD,))
        processor = load_processor(model_dir)
        spec = PolicySpec(path=model_dir, attn_implementation="sdpa", gradient_checkpointing=args.checkpointing)
        policy = shard_policy(load_policy(spec).train(), mesh)
        reference = load_policy(replace(spec, gradient_checkpointing=False)).eval().requires_grad_(False)
        reference = shard_policy(reference, mesh)
        for model in (policy, reference):
            _init_root(model, processor.tokenizer)
        optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-6)
        prompt = make_prompt(processor, make_frames(args.frames, args.size, seed=rank), fps=2.0)
        eos = stop_token_ids(processor.tokenizer)
        arms = [(n, gather) for n in args.new_tokens for gather in (True, False)]
        times: dict[str, list[dict[str, float]]] = {f"{n}/{g}": [] for n, g in arms}
        for r in range(args.warmup + args.steps):
            for n, gather in arms:
                t = grpo_step(policy, reference, optimizer, prompt, eos, args, n, gather)
                if rank == 0:
                    mode = "once" if gather else "per token"
                    print(f"  round {r}, {n} tokens, {mode}: rollout {t['rollout']:.3f} s, step {t['step']:.3f} s, "
                          f"{t['gathers']} all-gathers, {t['gather_bytes'] / 2**20:.1f} MiB", flush=True)  # fmt: skip
                if r >= args.warmup:
                    times[f"{n}/{gather}"].append(t)
        if rank == 0:
            params = sum(p.numel() for p in policy.parameters())
            Path(out).write_text(json.dumps({"times": times, "params": params, "prompt_len": prompt.length}))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def summarise(result: dict, args: argparse.Namespace) -> str:
    """Markdown table: median rollout and step seconds, all-gathers per rollout, once vs per token."""
    lines = [
        "| new tokens | rollout once (s) | rollout per token (s) | once / per token | step once (s) | "
        "step per token (s) | all-gathers per rollout, once / per token | MiB gathered per rollout, once / "
        "per token (a rank receives half) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n in args.new_tokens:
        once, per = result["times"][f"{n}/True"], result["times"][f"{n}/False"]

        def med(ts, key):
            return statistics.median(t[key] for t in ts)

        lines.append(
            f"| {n} | {med(once, 'rollout'):.3f} | {med(per, 'rollout'):.3f} | "
            f"**{med(once, 'rollout') / med(per, 'rollout'):.2f}** | {med(once, 'step'):.3f} | {med(per, 'step'):.3f} | "
            f"{once[0]['gathers']} / {per[0]['gathers']} | "
            f"{once[0]['gather_bytes'] / 2**20:.1f} / {per[0]['gather_bytes'] / 2**20:.1f} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--new-tokens", type=int, nargs="+", default=[64, 256], help="completion lengths (exact)")
    p.add_argument("--steps", type=int, default=3, help="timed rounds (each runs every arm once)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--group-size", type=int, default=8, help="G, completions per prompt")
    p.add_argument("--hidden", type=int, default=256, help="LLM hidden size of the tiny model")
    p.add_argument("--layers", type=int, default=4, help="LLM decoder layers of the tiny model")
    p.add_argument("--frames", type=int, default=8, help="video frames per prompt (one prompt per rank)")
    p.add_argument("--size", type=int, default=112, help="frame side in pixels")
    p.add_argument("--checkpointing", choices=["on", "off"], default="on", help="activation checkpointing")
    return p


def main(argv: list[str] | None = None) -> None:
    import torch.multiprocessing as mp

    from lit_videor2.demo.tiny import build_tiny_model

    args = build_parser().parse_args(argv)
    args.checkpointing = args.checkpointing == "on"
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model("qwen2_5_vl", Path(tmp) / "model", seed=0, hidden_size=args.hidden,
                                     layers=args.layers)  # fmt: skip
        out = Path(tmp) / "result.json"
        print(f"torch {torch.__version__}; {WORLD} CPU processes (gloo, FSDP2), {args.threads} thread(s) each; "
              f"LLM hidden {args.hidden} x {args.layers} layers, checkpointing {'on' if args.checkpointing else 'off'}; "
              f"G {args.group_size}, {args.frames} frames {args.size}x{args.size} per prompt", flush=True)  # fmt: skip
        mp.spawn(worker, args=(args, str(model_dir), str(Path(tmp) / "init"), str(out)), nprocs=WORLD)
        result = json.loads(out.read_text())
    print(f"\n{result['params']:,} parameters, prompt {result['prompt_len']} tokens; "
          f"median of {args.steps} rounds after {args.warmup} warm-up, rank 0:")  # fmt: skip
    print(summarise(result, args))


if __name__ == "__main__":
    main()

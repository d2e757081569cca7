"""Why a demo GRPO model does or does not hold at a frame layout it was not trained on: the code checks and the drift.

For each policy given (a training checkpoint ``.ckpt`` or a model folder) and each frame layout (default: the
demo's 2 fps / 8 frames and 4 fps / 16 frames on ``data/demo/val.json``) it prints:

* **code checks** on the first ``--check`` clips, so a collapse cannot hide in the rollout code:
  greedy completions by the shared-prefix engine vs ``model.generate`` on full rows (``share_prefix=False``) and vs
  one prompt at a time (no left padding); the 3-D positions the engine hands the model vs a plain re-derivation of
  the original Qwen rule (text +1 per token, video ``t · second_per_grid · tokens_per_second``, text after a video at
  its largest position + 1); teacher-forced log-probs of sampled completions by the shared-prompt path vs full rows,
  with stored vision features vs re-encoded pixels (max abs difference).
* **greedy accuracy and format** on all clips of the layout (what validation logs).
* **KL to the reference** (the SFT model): the k3 estimator GRPO's loss uses, per token, on ``--kl-prompts`` clips
  × G 8 completions sampled from the policy as in training (temperature 1, top-k 50, 48 tokens); and the mean
  log-prob the policy gives its own greedy completion's tokens.

Usage (from the repository root, after the demo)::

    python bench/demo_layouts.py --policy runs/demo-grpo/checkpoints/last.ckpt --reference models/demo-sft \\
        [--threads 1] [--check 16] [--kl-prompts 32] [--out runs/demo-layouts.md]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

DEFAULT_LAYOUTS = ("2fps:2:8", "4fps:4:16")


def load(path: str) -> torch.nn.Module:
    from lit_videor2.distributed.loading import load_policy
    from lit_videor2.export import load_checkpoint_policy, read_checkpoint
    from lit_videor2.models.policy import PolicySpec

    if path.endswith(".ckpt"):
        model, _ = load_checkpoint_policy(read_checkpoint(path))
        return model.eval()
    return load_policy(PolicySpec(path=path, dtype="float32", attn_implementation="sdpa")).eval()


def batches(processor_path: str, val_file: str, fps: float, frames: int, n: int | None, batch_size: int):
    from lit_videor2.data.datamodule import VideoDataModule
    from lit_videor2.data.sampling import FrameSampling

    dm = VideoDataModule(
        processor=processor_path,
        val_file=val_file,
        mode="prompt",
        eval_batch_size=batch_size,
        num_workers=0,
        sampling=FrameSampling(fps=fps, min_frames=2, max_frames=frames, min_pixels=3136, max_pixels=3136),
        cache_dir=str(Path(val_file).parent / ".frame_cache"),
    )
    dm.setup("validate")
    if n is not None:
        dm.datasets["val"].records = dm.datasets["val"].records[:n]
    return list(dm.val_dataloader())


def reference_positions(ids: list[int], grid: list[int], spg: float, tps: float, video_id: int) -> torch.Tensor:
    """(3, L) positions of one unpadded row with one video, the original Qwen2.5-VL rule, written out plainly."""
    t, h, w = grid[0], grid[1] // 2, grid[2] // 2
    out, st, i = [], 0, 0
    while i < len(ids):
        if ids[i] != video_id:
            out.append((st, st, st))
            st, i = st + 1, i + 1
            continue
        block = [(st + int(tt * spg * tps), st + hh, st + ww) for tt in range(t) for hh in range(h) for ww in range(w)]
        out += block
        st = max(max(p) for p in block) + 1
        i += len(block)
    return torch.tensor(out).T


def code_checks(model, tok, batch, kw) -> dict[str, float]:
    from lit_videor2.rollout import generate_group, sequence_logprobs
    from lit_videor2.rollout.containers import PromptBatch

    prompt = PromptBatch.from_collated(batch)
    greedy = dict(group_size=1, max_new_tokens=48, do_sample=False, **kw)
    shared = generate_group(model, prompt, **greedy)
    full = generate_group(model, prompt, share_prefix=False, **greedy)
    same_full = [
        torch.equal(a[m.bool()], b[n.bool()])
        for a, m, b, n in zip(shared.completion_ids, shared.completion_mask, full.completion_ids, full.completion_mask)
    ]
    keys = ("input_ids", "attention_mask", "mm_token_type_ids")
    same_single, pos_ok = [], []
    cfg = model.config
    video_id = cfg.video_token_id
    tps = float(cfg.vision_config.tokens_per_second)
    tokens_per_video = [int(g.prod()) // 4 for g in prompt.video_grid_thw]
    patches = [int(g.prod()) for g in prompt.video_grid_thw]
    pstarts = [0, *torch.tensor(patches).cumsum(0).tolist()]
    for b in range(prompt.batch_size):
        keep = prompt.attention_mask[b].bool()
        one = {k: getattr(prompt, k)[b : b + 1, keep] for k in keys}
        one_prompt = PromptBatch(
            **one,
            pixel_values_videos=prompt.pixel_values_videos[pstarts[b] : pstarts[b + 1]],
            video_grid_thw=prompt.video_grid_thw[b : b + 1],
            second_per_grid_ts=None if prompt.second_per_grid_ts is None else prompt.second_per_grid_ts[b : b + 1],
        )
        single = generate_group(model, one_prompt, **greedy)
        m, n = shared.completion_mask[b].bool(), single.completion_mask[0].bool()
        same_single.append(torch.equal(shared.completion_ids[b][m], single.completion_ids[0][n]))
        spg = 1.0 if prompt.second_per_grid_ts is None else float(prompt.second_per_grid_ts[b])
        ref = reference_positions(one["input_ids"][0].tolist(), prompt.video_grid_thw[b].tolist(), spg, tps, video_id)
        got = shared.position_ids[:, b, : prompt.length][:, keep]
        pos_ok.append(torch.equal(got, ref))
    sampled = generate_group(model, prompt, group_size=4, max_new_tokens=48, do_sample=True, top_k=50, **kw)
    with torch.no_grad():
        lp = {
            (s, r): sequence_logprobs(model, sampled, share_prompt=s, reuse_vision=r)
            for s in (True, False)
            for r in (True, False)
        }
    mask = sampled.completion_mask.bool()
    base = lp[(False, False)][mask]
    diff = max(float((v[mask] - base).abs().max()) for v in lp.values())
    t_max = [float(sampled.position_ids[0, i * 4, : prompt.length].max()) for i in range(prompt.batch_size)]
    return {
        "greedy = generate() on full rows %": 100.0 * sum(same_full) / len(same_full),
        "greedy = one prompt alone %": 100.0 * sum(same_single) / len(same_single),
        "positions = plain rule %": 100.0 * sum(pos_ok) / len(pos_ok),
        "log-prob max abs diff (4 paths)": diff,
        "prompt tokens (incl. padding)": float(prompt.length),
        "video tokens": float(tokens_per_video[0]),
        "largest prompt position": max(t_max),
    }


def greedy_scores(model, tok, loader) -> dict[str, float]:
    from lit_videor2.evaluation import judge_rows
    from lit_videor2.evaluation.predictions import batch_rows
    from lit_videor2.judges import RuleBasedJudge
    from lit_videor2.rollout import GenerationSettings, generate_completions

    rows = []
    settings = GenerationSettings(max_new_tokens=48)
    for batch in loader:
        out = generate_completions(model, tok, batch, settings)
        rows += judge_rows(batch_rows(batch["columns"], out.texts, out.lengths), RuleBasedJudge(), temporal=False)
    n = len(rows)
    return {
        "n": n,
        "accuracy %": 100.0 * sum(bool(r["correct"]) for r in rows) / n,
        "format %": 100.0 * sum(bool(r["format"]) for r in rows) / n,
        "example": rows[0]["completion"][:110],
    }


def kl_to_reference(model, reference, loader, kw) -> dict[str, float]:
    from lit_videor2.rollout import generate_group, sequence_logprobs

    k3s, own = [], []
    gen = torch.Generator().manual_seed(0)
    for batch in loader:
        r = generate_group(model, batch, group_size=8, max_new_tokens=48, top_k=50, generator=gen, **kw)
        with torch.no_grad():
            lp = sequence_logprobs(model, r)
            ref = sequence_logprobs(reference, r)
        m = r.completion_mask.bool()
        d = (ref - lp)[m]
        k3s.append(float((d.exp() - d - 1).mean()))
        g = generate_group(model, batch, group_size=1, max_new_tokens=48, do_sample=False, **kw)
        with torch.no_grad():
            own.append(float(sequence_logprobs(model, g)[g.completion_mask.bool()].mean()))
    return {"KL k3 to reference / token": sum(k3s) / len(k3s), "greedy mean log-prob / token": sum(own) / len(own)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", nargs="+", required=True, help="checkpoints (.ckpt) or model folders")
    p.add_argument("--reference", default="models/demo-sft")
    p.add_argument("--val-file", default="data/demo/val.json")
    p.add_argument("--layouts", nargs="+", default=list(DEFAULT_LAYOUTS), help="name:fps:max_frames")
    p.add_argument("--check", type=int, default=16, help="clips for the code checks (0: skip)")
    p.add_argument("--kl-prompts", type=int, default=32, help="clips for the KL to the reference (0: skip)")
    p.add_argument("--n", type=int, default=None, help="clips for greedy accuracy (default: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="also write the results as JSON lines")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from lit_videor2.models.hub import load_processor
    from lit_videor2.rollout.decoding import special_token_kwargs

    tok = load_processor(args.reference).tokenizer
    reference = load(args.reference)
    kw = special_token_kwargs(reference, tok)
    results = []
    for path in args.policy:
        model = reference if path == args.reference else load(path)
        for layout in args.layouts:
            name, fps, frames = layout.split(":")
            torch.manual_seed(0)
            res: dict = {"policy": path, "layout": name}
            if args.check:
                (b,) = batches(args.reference, args.val_file, float(fps), int(frames), args.check, args.check)
                res.update(code_checks(model, tok, b, kw))
            res.update(
                greedy_scores(model, tok, batches(args.reference, args.val_file, float(fps), int(frames), args.n, 16))
            )
            if args.kl_prompts:
                loader = batches(args.reference, args.val_file, float(fps), int(frames), args.kl_prompts, 4)
                res.update(kl_to_reference(model, reference, loader, kw))
            results.append(res)
            print(json.dumps(res), flush=True)
            if args.out is not None:
                with args.out.open("a") as f:
                    f.write(json.dumps(res) + "\n")
    keys = [k for k in results[0] if k not in ("policy", "example")]
    print("\n| policy | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for r in results:
        cells = [f"{r[k]:.3g}" if isinstance(r.get(k), float) and not math.isnan(r[k]) else str(r.get(k)) for k in keys]
        print(f"| {r['policy']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

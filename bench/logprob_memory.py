"""Peak memory of one policy log-prob pass (forward + backward) on CPU: shared prompt vs full rows vs [N, T, V] logits.

Each variant runs in its own subprocess on the same model and rollout; the figure is the process's peak resident
memory during the pass (``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after it) minus its resident memory right
before it (the peak is reset first through ``/proc/self/clear_refs``, so model loading does not count). The weight
gradients exist (zeroed) before the pass, as in every training step after the first, so the figure is activations
and transients. Variants:

* ``shared``        ``sequence_logprobs(share_prompt=True)``: prompt once per group, completions on its KV; log-probs
                    from hidden states through the LM head in chunks (``hidden_logprobs``).
* ``full``          ``sequence_logprobs(share_prompt=False)``: G full prompt + completion rows; the same chunked head.
* ``logits``        the path the chunked head replaces: the model's own ``lm_head`` gives ``[N, T, V]`` float32 logits
                    (``logits_to_keep`` = the completion positions), then ``token_logprobs`` on them; G full rows.
* ``+ ckpt``        the same with the project's per-layer activation checkpointing (``enable_activation_checkpointing``).

The model is the tiny Qwen2.5-VL (``lit_videor2.demo.tiny``) at a mid-size language model with Qwen's vocabulary:
hidden 512, 4 layers, vocabulary 151,936 (the config's ``vocab_size`` overridden; random float32 weights, vision tower
frozen, the video features reused from the rollout as in training). Completions are random tokens of ``--new-tokens``.

Usage: ``python bench/logprob_memory.py [--group-size 8 --new-tokens 256 --frames 8 --size 224]``
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

VARIANTS = ("shared", "full", "logits", "shared+ckpt", "full+ckpt", "logits+ckpt")


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak() -> bool:
    """Reset the peak RSS (VmHWM, what ru_maxrss reports) to the current RSS; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rollout(model, processor, args):
    """A rollout of G random completions of ``--new-tokens`` on one video prompt (1 token generated for the KV
    positions and video features, then the completion replaced)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from grpo_step import make_frames, make_prompt

    from lit_videor2.models.vision import continue_positions
    from lit_videor2.rollout import generate_group, stop_token_ids

    prompt = make_prompt(processor, make_frames(args.frames, args.size), 2.0)
    with torch.no_grad():
        r = generate_group(
            model,
            prompt,
            group_size=args.group_size,
            max_new_tokens=1,
            eos_token_ids=stop_token_ids(processor.tokenizer),
        )
    n, t, lp = r.num_completions, args.new_tokens, r.prompt_length
    ids = torch.randint(0, len(processor.tokenizer) - 64, (n, t), generator=torch.Generator().manual_seed(0))
    prompt_pos = r.position_ids[..., :lp]
    positions = torch.cat([prompt_pos, continue_positions(prompt_pos[..., -1:], t)], dim=-1)
    return dataclasses.replace(
        r,
        completion_ids=ids,
        completion_mask=torch.ones_like(ids),
        is_truncated=torch.ones(n, dtype=torch.bool),
        position_ids=positions,
    )


def _logits_logprobs(model, rollout):
    """The replaced path: ``[N, T, V]`` logits from the model's head, then ``token_logprobs``."""
    from lit_videor2.losses.logprobs import token_logprobs
    from lit_videor2.rollout.logprobs import _video_kwargs

    lp, t = rollout.prompt_length, rollout.completion_length
    out = model(
        input_ids=rollout.input_ids(),
        attention_mask=rollout.attention_mask(),
        position_ids=rollout.position_ids,
        use_cache=False,
        logits_to_keep=torch.arange(lp - 1, lp + t - 1),
        **_video_kwargs(model, rollout, reuse_vision=True, repeats=rollout.group_size),
    )
    return token_logprobs(out.logits, rollout.completion_ids)  # out.logits: [N, T, V] float32


def worker(args) -> None:
    """Run one variant and print its figures as one JSON line."""
    from transformers import AutoConfig, Qwen2_5_VLForConditionalGeneration

    from lit_videor2.distributed.activation_checkpointing import enable_activation_checkpointing
    from lit_videor2.models.hub import load_processor
    from lit_videor2.rollout import sequence_logprobs

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(args.model_dir)
    config.text_config.vocab_size = args.vocab
    model = Qwen2_5_VLForConditionalGeneration(config).train()
    model.model.visual.requires_grad_(False)
    processor = load_processor(str(args.model_dir))
    rollout = _rollout(model, processor, args)
    name = args.worker
    if name.endswith("+ckpt"):
        enable_activation_checkpointing(model)
    base = name.split("+")[0]
    for p in model.parameters():  # steady state of training: the gradients exist before the pass (zeroed)
        if p.requires_grad:
            p.grad = torch.zeros_like(p)
    gc.collect()
    exact = _reset_peak()
    before = _rss_mib()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    if base == "logits":
        logps = _logits_logprobs(model, rollout)
    else:
        logps = sequence_logprobs(model, rollout, share_prompt=base == "shared", reuse_vision=True)
    (logps * rollout.completion_mask).sum().backward()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    print(
        json.dumps(
            {
                "variant": name,
                "extra_mib": peak - (before if exact else peak_before),
                "baseline_mib": before,
                "seconds": seconds,
                "prompt_tokens": rollout.prompt_length,
                "exact_peak": exact,
            }
        )
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=224, help="frame side (a multiple of 28)")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=151936)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)

    from lit_videor2.demo.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model("qwen2_5_vl", Path(tmp) / "m", hidden_size=args.hidden, layers=args.layers)
        rows = []
        for name in args.variants.split(","):
            if name not in VARIANTS:
                raise SystemExit(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
            cmd = [sys.executable, __file__, "--worker", name, "--model-dir", str(model_dir)]
            for k in ("group_size", "new_tokens", "frames", "size", "vocab"):
                cmd += [f"--{k.replace('_', '-')}", str(getattr(args, k))]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"variant {name} failed:\n{out.stderr[-3000:]}")
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  {rows[-1]}", flush=True)
    n, t, v = args.group_size, args.new_tokens, args.vocab
    print(
        f"\nQwen2.5-VL tiny, LLM hidden {args.hidden}, {args.layers} layers, vocabulary {v:,}; G={n}, "
        f"{rows[0]['prompt_tokens']} prompt tokens, {t} completion tokens; float32, 1 thread"
    )
    print(f"[N, T, V] float32 logits alone: {n * t * v * 4 / 2**20:,.0f} MiB")
    print("| variant | extra peak memory (MiB) | seconds |\n|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['extra_mib']:,.0f} | {r['seconds']:.1f} |")
    if not all(r["exact_peak"] for r in rows):
        print("(peak RSS could not be reset: figures are over the process's earlier peak, a lower bound)")


if __name__ == "__main__":
    main()

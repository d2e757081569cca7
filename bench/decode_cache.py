"""Decode ms per token of a GRPO group rollout on each decode cache, side by side in one run: the cache that grows
by concatenation every token (``dynamic``, the path before issue 30), transformers' ``StaticCache`` with the prompt
copied into every row (``static``) and the group cache holding the prompt once per group (``shared``, the default).

``python bench/decode_cache.py [--hidden 256 --layers 4 --frames 32 --size 224 --group-size 8 --new-tokens 64]``.
One video prompt (32 frames of 224×224 at 2 fps: 1,024 visual tokens) on a tiny random Qwen2.5-VL; the arms
alternate (A B A B ...) and each runs :func:`~lit_videor2.rollout.generate_group` with exactly ``--new-tokens``
tokens per row (``min_new_tokens``), sampled from one seed. The decode time is the time of the decode loop, plus,
for the static arm, copying the prompt's keys and values into the preallocated cache (counted against it); the
prompt prefill and the vision tower are the same in every arm and are left out. It prints the median ms per
token of each arm, wall clock and this process's CPU time (the latter moves less when other jobs share the cores),
the ratios, whether the arms drew the same tokens, and the preallocated cache's size.

``--compile`` adds an arm with the shared cache and the decode step compiled by ``torch.compile`` (its first
call compiles and is not timed). ``--device cuda`` runs on a GPU; ``--hidden 3584 --layers 28 --heads 28 --kv-heads 4`` gives the
language part Qwen2.5-VL-7B's sizes (random weights, bf16 with ``--dtype bfloat16``), and the script then prints
the weight-read floor (bytes of the language weights / the ``--bandwidth`` in GB/s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lit_videor2.rollout.generation as generation  # noqa: E402
from lit_videor2.data.collate import VideoCollator  # noqa: E402
from lit_videor2.data.dataset import VideoSample  # noqa: E402
from lit_videor2.data.frames import Frames  # noqa: E402
from lit_videor2.data.records import VideoRecord  # noqa: E402
from lit_videor2.rollout import PromptBatch, generate_group, stop_token_ids  # noqa: E402
from lit_videor2.rollout.decoding import static_cache_bytes, static_cache_length  # noqa: E402
from lit_videor2.rollout.group_cache import group_cache_bytes  # noqa: E402

QUESTION = "Which shape appears first? A. red circle B. blue square C. green triangle D. yellow star"


class DecodeTimer:
    """Wraps the rollout engine's ``decode_loop`` and ``preallocated_cache`` (as :mod:`generation` calls them)
    and adds up the seconds spent in them."""

    def __init__(self) -> None:
        self.seconds = 0.0  # wall clock
        self.cpu_seconds = 0.0  # this process's CPU time (less sensitive to other jobs on the cores)

    def _timed(self, fn, sync):
        def wrapper(*args, **kwargs):
            sync()
            start, cpu = time.perf_counter(), time.process_time()
            out = fn(*args, **kwargs)
            sync()
            self.seconds += time.perf_counter() - start
            self.cpu_seconds += time.process_time() - cpu
            return out

        return wrapper

    @contextmanager
    def installed(self, device: torch.device):
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        saved = generation.decode_loop, generation.preallocated_cache
        generation.decode_loop = self._timed(saved[0], sync)
        generation.preallocated_cache = self._timed(saved[1], sync)
        try:
            yield self
        finally:
            generation.decode_loop, generation.preallocated_cache = saved


def make_prompt(processor, frames: int, size: int, fps: float) -> PromptBatch:
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (frames, 3, size, size), dtype=torch.uint8, generator=g)
    record = VideoRecord(id="bench", video="bench.mp4", question=QUESTION, answer="A")
    sample = VideoSample(record, Frames(pixels, [i / fps for i in range(frames)], frames / fps, "bench"))
    return PromptBatch.from_collated(VideoCollator(processor, "prompt")([sample]))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--intermediate", type=int, default=None)
    p.add_argument("--vocab", type=int, default=1024)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--size", type=int, default=224, help="frame side (a multiple of 28)")
    p.add_argument("--fps", type=float, default=2.0)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5, help="measured rounds (each runs every arm once)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--compile", action="store_true", help="add the compiled static-cache arm")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--bandwidth", type=float, default=None, help="GB/s of the device memory (prints the floor)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    from transformers import Qwen2_5_VLForConditionalGeneration

    from lit_videor2.demo.tiny import build_tiny_model
    from lit_videor2.models.hub import load_processor

    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_model(
            "qwen2_5_vl",
            Path(tmp) / "m",
            seed=0,
            hidden_size=args.hidden,
            layers=args.layers,
            num_heads=args.heads,
            num_kv_heads=args.kv_heads,
            intermediate_size=args.intermediate,
            vocab_size=args.vocab,
        )
        processor = load_processor(str(folder))
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder, dtype=dtype).to(device).eval()
    prompt = make_prompt(processor, args.frames, args.size, args.fps).to(device)
    eos = stop_token_ids(processor.tokenizer)
    arms = {
        "dynamic (concatenating)": {"decode_cache": "dynamic"},
        "static (per-row prompt)": {"decode_cache": "static"},
        "shared (default)": {"decode_cache": "shared"},
    }
    if args.compile:
        arms["shared, compiled step"] = {"decode_cache": "shared", "compile_decode": True}

    def run(kw: dict) -> tuple[float, float, torch.Tensor]:
        timer = DecodeTimer()
        with timer.installed(device):
            rollout = generate_group(
                model,
                prompt,
                group_size=args.group_size,
                max_new_tokens=args.new_tokens,
                min_new_tokens=args.new_tokens,
                eos_token_ids=eos,
                temperature=0.9,
                top_k=50,
                generator=torch.Generator(device).manual_seed(0),
                **kw,
            )
        per_token = 1000 / rollout.completion_length
        return timer.seconds * per_token, timer.cpu_seconds * per_token, rollout.completion_ids

    times: dict[str, list[float]] = {name: [] for name in arms}
    cpu_times: dict[str, list[float]] = {name: [] for name in arms}
    tokens = {name: run(kw)[2] for name, kw in arms.items()}  # warm-up (and compilation)
    for _ in range(args.rounds):
        for name, kw in arms.items():
            ms, cpu_ms, ids = run(kw)
            times[name].append(ms)
            cpu_times[name].append(cpu_ms)
            assert torch.equal(ids, tokens[name]), f"{name}: a seeded run did not reproduce itself"
    n = args.group_size
    slots = static_cache_length(prompt.length, args.new_tokens)
    print(f"torch {torch.__version__}, {args.device} {args.dtype}, {args.threads} threads; tiny Qwen2.5-VL hidden "
          f"{args.hidden}, {args.layers} layers; prompt {prompt.length} tokens ({args.frames} frames {args.size}²), "
          f"G {n}, {args.new_tokens} new tokens, median of {args.rounds} rounds")  # fmt: skip
    base = statistics.median(times["dynamic (concatenating)"])
    cpu_base = statistics.median(cpu_times["dynamic (concatenating)"])
    print(f"  {'decode':26s} {'wall ms/token':>14s} {'ratio':>6s} {'CPU ms/token':>13s} {'ratio':>6s}  same tokens")
    for name, ts in times.items():
        med, cpu = statistics.median(ts), statistics.median(cpu_times[name])
        same = torch.equal(tokens[name], tokens["dynamic (concatenating)"])
        print(f"  {name:26s} {med:14.2f} {base / med:5.2f}x {cpu:13.2f} {cpu_base / cpu:5.2f}x  {same}")
    shared = group_cache_bytes(model.config, 1, prompt.length, n, args.new_tokens - 1, dtype) / 2**20
    static = static_cache_bytes(model.config, n, slots, dtype) / 2**20
    print(f"decode cache: shared {shared:.1f} MiB (the prompt once + {n} rows x {args.new_tokens - 1} slots); "
          f"static and dynamic (at its end) {static:.1f} MiB ({n} rows x {slots} slots)")  # fmt: skip
    if args.bandwidth:
        lm = sum(p.numel() * p.element_size() for name, p in model.named_parameters() if "visual" not in name)
        print(
            f"weight-read floor: {lm / 1e9:.2f} GB / {args.bandwidth} GB/s = {lm / args.bandwidth / 1e6:.2f} ms/token"
        )


if __name__ == "__main__":
    main()

"""Evaluation throughput: samples per second of generation + judging at batch size 1 and 8.

One run, the same tiny model, the same synthetic validation samples and the same frames for both rows::

    python bench/eval_throughput.py [--num-val 16 --max-new-tokens 64 --repeats 2 --device cpu]

What is timed is what ``EvalModule.test_step`` does per batch: greedy ``generate_completions`` (vision tokens
suppressed, ``max_new_tokens``) and ``judge_rows`` with the rule-based judge (TAR included). Batches are collated
beforehand (video decoding is the data pipeline's cost, measured by ``bench/data_throughput.py``), so the rows
compare the model side only. Best of ``--repeats``; the two batch sizes are measured interleaved.

A random tiny model rarely emits ``<|im_end|>``, so every completion runs to ``max_new_tokens`` and batch sizes
1 and 8 generate the same number of tokens per sample: the ratio is the gain of batching itself. Prompts of a
batch are left-padded (the collator), so batched greedy decoding continues every prompt from its real last token.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from lit_videor2.data.datamodule import VideoDataModule  # noqa: E402
from lit_videor2.data.sampling import FrameSampling  # noqa: E402
from lit_videor2.demo.synthetic import generate_dataset  # noqa: E402
from lit_videor2.demo.tiny import build_tiny_model  # noqa: E402
from lit_videor2.distributed.loading import load_policy  # noqa: E402
from lit_videor2.evaluation.judging import judge_rows  # noqa: E402
from lit_videor2.evaluation.predictions import ROW_COLUMNS  # noqa: E402
from lit_videor2.judges import RuleBasedJudge  # noqa: E402
from lit_videor2.models.hub import load_processor  # noqa: E402
from lit_videor2.models.policy import PolicySpec  # noqa: E402
from lit_videor2.rollout.engine import GenerationSettings, generate_completions  # noqa: E402

SAMPLING = FrameSampling(fps=1.0, min_frames=2, max_frames=8, min_pixels=56 * 56, max_pixels=56 * 56)


def batches(data_dir: Path, model_dir: Path, batch_size: int, device: str) -> list[dict]:
    dm = VideoDataModule(
        processor=str(model_dir),
        test_file=str(data_dir / "val.json"),
        eval_batch_size=batch_size,
        num_workers=0,
        sampling=SAMPLING,
    )
    out = []
    for b in dm.test_dataloader():
        out.append({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in b.items()})
    return out


def evaluate(model, tokenizer, judge, prepared: list[dict], max_new_tokens: int) -> int:
    """Generate and judge every batch; returns the number of samples."""
    n = 0
    for batch in prepared:
        texts = generate_completions(model, tokenizer, batch, GenerationSettings(max_new_tokens=max_new_tokens)).texts
        cols = batch["columns"]
        rows = [
            {**{k: cols.get(k, [None] * len(texts))[i] for k in ROW_COLUMNS}, "completion": t}
            for i, t in enumerate(texts)
        ]
        judge_rows(rows, judge)
        n += len(texts)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-val", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workdir", default=None, help="where to build data and model (default: a temp folder)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    torch.manual_seed(0)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="eval_bench_"))
    if not (work / "data" / "val.json").is_file():
        generate_dataset(work / "data", num_train=1, num_val=args.num_val, seed=0)
    if not (work / "model" / "config.json").is_file():
        build_tiny_model("qwen2_5_vl", work / "model", seed=0)
    model = load_policy(PolicySpec(path=str(work / "model"), attn_implementation="sdpa")).to(args.device).eval()
    tokenizer = load_processor(str(work / "model")).tokenizer
    judge = RuleBasedJudge()
    prepared = {bs: batches(work / "data", work / "model", bs, args.device) for bs in (1, 8)}
    evaluate(model, tokenizer, judge, prepared[8][:1], args.max_new_tokens)  # warm-up (and load the embedder)

    best = {bs: float("inf") for bs in prepared}
    samples = {}
    for _ in range(args.repeats):
        for bs, prep in prepared.items():
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            samples[bs] = evaluate(model, tokenizer, judge, prep, args.max_new_tokens)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            best[bs] = min(best[bs], time.perf_counter() - t0)
    rate = {bs: samples[bs] / best[bs] for bs in best}
    print(f"device {args.device}, {samples[1]} samples, max_new_tokens {args.max_new_tokens}, best of {args.repeats}")
    for bs in (1, 8):
        print(f"batch size {bs}: {rate[bs]:7.2f} samples/s  ({best[bs]:.2f} s)")
    print(f"ratio batch 8 / batch 1: {rate[8] / rate[1]:.2f}x")


if __name__ == "__main__":
    main()

"""Demo-like inputs of the trace viewer, built cheaply: synthetic clips, and rows shaped exactly like the rows
``lit_videor2 test`` writes (the batch columns of ``evaluation.predictions.ROW_COLUMNS`` + completion + ``judge_rows``) and
the rows ``GRPOModule._log_completions`` writes — without generating with a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lit_videor2.data.decoding import decode_video
from lit_videor2.data.sampling import FrameSampling, sample_times
from lit_videor2.data.schema import load_records
from lit_videor2.demo.synthetic import generate_dataset
from lit_videor2.evaluation.judging import judge_rows
from lit_videor2.evaluation.predictions import ROW_COLUMNS, write_predictions
from lit_videor2.judges import RuleBasedJudge

#: The demo's frame settings (configs/demo/*.yaml).
DEMO_SAMPLING = FrameSampling(fps=1.0, min_frames=2, max_frames=8, min_pixels=3136, max_pixels=3136)
#: Benchmark names of the rows (alternating), as in configs/demo/eval.yaml.
BENCHMARKS = (("synthetic-1fps", "generic"), ("synthetic-2fps", "reasoning"))
SCRIPT = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def _completions(record) -> list[str]:
    """Four kinds of completion for a record: right and consistent; inconsistent; wrong and citing a time no
    sampled frame shows; hostile HTML."""
    claims = list(record.temporal_grounding.items())
    key, claim = claims[0]
    other = "A" if record.answer != "A" else "B"
    return [
        f"<think>At {key} {claim.lower()} So the answer is {record.answer}.</think>\n<answer>{record.answer}</answer>",
        f"<think>At {key} {claim.lower()} So the answer is {record.answer}.</think>\n<answer>{other}</answer>",
        f"<think>Around 00:02.5 nothing moves, then at 00:03 a shape leaves. Therefore {other}.</think>\n"
        f"<answer>{other}</answer>",
        f"<think>{SCRIPT} at 00:01 the frame shows </think> so the answer is {other}</think><answer>{SCRIPT}</answer>",
    ]


def _frame_times(record, root: Path) -> list[float]:
    """The frames' real times, as the data module reports them."""
    times = lambda tl: sample_times(tl.num_frames, tl.duration, DEMO_SAMPLING)  # noqa: E731
    return decode_video(root / record.video, times).times


def make_view_inputs(out: Path, num: int = 4) -> dict[str, Path]:
    """Write ``data/`` (synthetic clips), two predictions files (runs ``sft`` and ``grpo``) with a run config
    each, and a GRPO completions table with its config. Returns the paths by name."""
    data = out / "data"
    generate_dataset(data, num_train=num, num_val=num, seed=0)
    val = load_records(data / "val.json").records
    judge = RuleBasedJudge()
    paths: dict[str, Path] = {"data": data}
    for run, shift in (("sft", 0), ("grpo", 1)):
        rows = []
        for i, rec in enumerate(val):
            cols = rec.columns()
            bench, group = BENCHMARKS[i % 2]
            cols.update(benchmark=bench, group=group, frame_times=_frame_times(rec, data))
            row: dict[str, Any] = {k: cols.get(k) for k in ROW_COLUMNS}
            kinds = _completions(rec)
            row.update(completion=kinds[(i + shift) % len(kinds)], num_tokens=40 + i)
            rows.append(row)
        judge_rows(rows, judge, temporal=False)
        folder = out / "runs" / run
        write_predictions(folder / "predictions.jsonl", rows)
        _write_config(folder / "logs" / "version_0" / "config.yaml", data, benchmarks=True)
        paths[run] = folder / "predictions.jsonl"
    train = load_records(data / "train.json").records
    logs = out / "runs" / "demo-grpo" / "logs" / "version_0"
    logs.mkdir(parents=True)
    with (logs / "completions_rank0.jsonl").open("w") as f:
        for step in (0, 10):
            for rec in train[:2]:
                for g, text in enumerate(_completions(rec) * 2):  # G = 8
                    reward = 1.0 + (g % 3) * 0.5 + step / 100
                    row = {
                        "step": step,
                        "id": rec.id,
                        "completion": text,
                        "num_tokens": 30 + g,
                        "reward": reward,
                        "advantage": round(reward - 1.5, 3),
                        "accuracy": float(g % 2),
                        "format": 1.0,
                        "temporal": 0.0,
                    }
                    f.write(json.dumps(row) + "\n")
    _write_config(logs / "config.yaml", data, benchmarks=False)
    paths["completions"] = logs / "completions_rank0.jsonl"
    return paths


def _write_config(path: Path, data: Path, *, benchmarks: bool) -> None:
    """A run config as LightningCLI saves it (the ``data`` part the viewer reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sampling = "{fps: 1.0, min_frames: 2, max_frames: 8, min_pixels: 3136, max_pixels: 3136}"
    lines = [
        "data:",
        f"  train_file: {data / 'train.json'}",
        f"  val_file: {data / 'val.json'}",
        f"  sampling: {sampling}",
    ]
    if benchmarks:
        lines.append("  benchmarks:")
        for name, group in BENCHMARKS:
            lines += [f"  - name: {name}", f"    file: {data / 'val.json'}", f"    group: {group}"]
    path.write_text("\n".join(lines) + "\n")

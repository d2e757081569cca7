"""The predictions file: one JSON line per evaluated sample, written per rank and merged by rank 0.

Fields of a line (``PREDICTION_FIELDS``, in this order):

==================== ==================================================================================
``id``               record id (unique within its benchmark)
``benchmark``        benchmark name; ``group``: ``generic`` | ``reasoning`` | null
``completion``       the generated text
``answer_parsed``    the judge's reading of the ``<answer>`` block (letter for multiple choice) or null
``concluded``        the answer the ``<think>`` block concludes, per the judge (last conclusion wins) or null
``correct``          accuracy score of the completion (the accuracy reward: 0/1, or in [0, 1] for
                     regression, OCR, free-form)
``think_correct``    the same score for the concluded answer
``tac_a``/``tac_t``  TAC components: ``answer_parsed`` / ``concluded`` match the ground truth (bool)
``consistent``       the judge's verdict: reasoning and final answer reach the same conclusion (bool)
``vas``              the judge's visual-grounding score of the reasoning, 0–10
``tar``              ungated temporal alignment precision when the record has ``temporal_grounding``, else
                     null
``judge``            which judge produced the judgments
``num_tokens``       completion length in tokens
``question`` …       ``question``, ``answer``, ``problem_type``, ``options``, ``video``, ``frame_times``,
                     ``temporal_grounding`` for analysis
==================== ==================================================================================

Rows are keyed by ``(benchmark, id)``: a run resumes by leaving those keys out, and merging keeps the first row
of a key (a distributed sampler pads ranks with repeated samples).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "PREDICTION_FIELDS",
    "finished_ids",
    "merge_part_files",
    "part_file",
    "part_files",
    "read_predictions",
    "row_key",
    "write_predictions",
]

PREDICTION_FIELDS = (
    "id",
    "benchmark",
    "group",
    "completion",
    "answer_parsed",
    "concluded",
    "correct",
    "think_correct",
    "tac_a",
    "tac_t",
    "consistent",
    "vas",
    "tar",
    "judge",
    "num_tokens",
    "question",
    "answer",
    "problem_type",
    "options",
    "video",
    "frame_times",
    "temporal_grounding",
)


def row_key(row: dict[str, Any]) -> tuple[str, str]:
    return (str(row.get("benchmark")), str(row["id"]))


def read_predictions(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSONL predictions file ([] when it does not exist); a bad line names the file and line."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                # A run killed mid-write leaves a truncated last line: drop it (that sample is redone), else fail.
                if not f.readline():
                    break
                raise ValueError(f"{path}:{lineno}: not a JSON line ({e})") from None
    return rows


def _line(row: dict[str, Any]) -> str:
    ordered = {k: row.get(k) for k in PREDICTION_FIELDS}
    ordered.update({k: v for k, v in row.items() if k not in ordered})
    return json.dumps(ordered, ensure_ascii=False)


def write_predictions(path: str | Path, rows: Iterable[dict[str, Any]], *, append: bool = False) -> None:
    """Write rows as JSONL; a full rewrite goes through a temporary file so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if append:
        with path.open("a", encoding="utf-8") as f:
            f.writelines(_line(r) + "\n" for r in rows)
            f.flush()
        return
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.writelines(_line(r) + "\n" for r in rows)
    os.replace(tmp, path)


def part_file(path: str | Path, rank: int) -> Path:
    """Per-rank file a rank appends its rows to during the run (``predictions.jsonl.rank0.part``)."""
    path = Path(path)
    return path.with_name(f"{path.name}.rank{rank}.part")


def part_files(path: str | Path) -> list[Path]:
    path = Path(path)
    return sorted(path.parent.glob(f"{path.name}.rank*.part"))


def finished_ids(path: str | Path) -> dict[str, set[str]]:
    """``benchmark -> ids`` already in the predictions file or in part files left by an interrupted run."""
    done: dict[str, set[str]] = {}
    for file in [Path(path), *part_files(path)]:
        for row in read_predictions(file):
            bench, rid = row_key(row)
            done.setdefault(bench, set()).add(rid)
    return done


def merge_part_files(path: str | Path) -> list[dict[str, Any]]:
    """Fold the part files into the predictions file (first row of a key wins), delete them; return all rows."""
    rows = read_predictions(path)
    seen = {row_key(r) for r in rows}
    parts = part_files(path)
    for part in parts:
        for row in read_predictions(part):
            if row_key(row) not in seen:
                seen.add(row_key(row))
                rows.append(row)
    write_predictions(path, rows)
    for part in parts:
        part.unlink()
    return rows

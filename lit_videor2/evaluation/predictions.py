"""The predictions file: one JSON line per evaluated sample, written per rank and merged by rank 0.

Fields of a line (``PREDICTION_FIELDS``, in this order):

======================== ================================================================================
``id``                   record id (unique within its benchmark)
``benchmark``            benchmark name; ``group``: ``generic`` | ``reasoning`` | null
``completion``           the generated text
``answer_parsed``        the judge's reading of the ``<answer>`` block (letter for multiple choice) or null
``concluded``            the answer the ``<think>`` block concludes, per the judge (last conclusion wins) or null
``correct``              accuracy score of the completion (the accuracy reward: 0/1, or in [0, 1] for
                         regression, OCR, free-form)
``concluded_accuracy``   the same score for the concluded answer (graded; TAC's exact match is ``tac_t``)
``format``               the format reward: 1 when the completion is ``<think>…</think><answer>…</answer>``
``tac_a``/``tac_t``      TAC components (``answer_correct``/``think_correct`` of
                         :func:`~lit_videor2.metrics.functional.tac_correctness`): ``answer_parsed`` /
                         ``concluded`` match the ground truth (bool)
``consistent``           the judge's verdict: reasoning and final answer reach the same conclusion (bool)
``vas``                  the judge's visual-grounding score of the reasoning, 0–10
``tar``                  ungated temporal alignment precision when the record has ``temporal_grounding``, else
                         null
``judge``                which judge produced the judgments
``num_tokens``           completion length in tokens
``question`` …           ``question``, ``answer``, ``problem_type``, ``options``, ``video``, ``frame_times``,
                         ``temporal_grounding`` for analysis
======================== ================================================================================

Rows are keyed by ``(benchmark, id)``: a run resumes by leaving those keys out, and merging keeps the first row
of a key (a distributed sampler pads ranks with repeated samples).

Nothing written is lost. A run killed mid-write (or a full disk) can leave half a line at the end of a part file:
before appending to a part file and when reading one, a partial last line is cut (counted and logged; that sample
is redone on resume) and a complete last row that lacks its newline gets one. Full rewrites (the merge, ``judge``)
go through a temporary file and ``os.replace``, so a crash or ``ENOSPC`` leaves the previous file as it was.

Records skipped during ``test`` (``data.on_error: skip``) go to ``<stem>.skipped.jsonl`` beside the predictions
(``{"benchmark", "id", "reason"}`` per line, per-rank part files during the run); the results tables count them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lit_videor2.errors import UserError

__all__ = [
    "PREDICTION_FIELDS",
    "ROW_COLUMNS",
    "PredictionsFileError",
    "append_skipped",
    "batch_rows",
    "atomic_write_text",
    "finished_ids",
    "merge_part_files",
    "merge_skipped",
    "part_file",
    "part_files",
    "read_predictions",
    "repair_partial_line",
    "row_key",
    "run_labels",
    "skipped_file",
    "write_predictions",
]

log = logging.getLogger(__name__)


class PredictionsFileError(UserError, ValueError):
    """A predictions file with a line that is not JSON in the middle (not a torn last line, which is repaired)."""


class RunLabelsError(UserError, ValueError):
    """``--labels`` does not name every predictions file once."""


def run_labels(files: Sequence[str | Path], labels: Sequence[str] | None = None) -> list[str]:
    """The names of predictions runs, one rule for ``report`` and ``view``: the ``--labels`` given (one per file),
    else each file's folder name; where two runs share a folder name, ``folder/file stem``; where those still
    collide, the full paths."""
    files = [Path(f) for f in files]
    if labels:
        if len(labels) != len(files):
            raise RunLabelsError(f"--labels: got {len(labels)} labels for {len(files)} predictions files")
        return list(labels)
    names = [f.parent.name or f.stem for f in files]
    if len(set(names)) < len(names):
        names = [f"{n}/{f.stem}" for n, f in zip(names, files)]
    if len(set(names)) < len(names):
        names = [str(f) for f in files]
    return names


#: Columns of a batch (``batch["columns"]``) copied into each predictions row.
ROW_COLUMNS = (
    "id",
    "benchmark",
    "group",
    "question",
    "answer",
    "problem_type",
    "options",
    "video",
    "frame_times",
    "temporal_grounding",
)

#: The judgments :func:`~lit_videor2.evaluation.judging.judge_rows` adds to a row (and the completion's length).
JUDGMENT_FIELDS = (
    "answer_parsed",
    "concluded",
    "correct",
    "concluded_accuracy",
    "format",
    "tac_a",
    "tac_t",
    "consistent",
    "vas",
    "tar",
    "judge",
    "num_tokens",
)

#: Every field of a predictions row, in file order: identity, the completion, the judgments, the record's columns.
PREDICTION_FIELDS = (*ROW_COLUMNS[:3], "completion", *JUDGMENT_FIELDS, *ROW_COLUMNS[3:])


def batch_rows(
    columns: dict[str, list[Any]], completions: Sequence[str], num_tokens: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """One unjudged predictions row per completion: the batch's :data:`ROW_COLUMNS` (None when a column is
    absent; ``benchmark`` defaults to ``"test"``), ``completion`` and ``num_tokens``. Validation and ``test`` both
    build their rows here and judge them with :func:`lit_videor2.evaluation.judge_rows`."""
    rows = []
    for i, text in enumerate(completions):
        row = {k: columns[k][i] if k in columns else None for k in ROW_COLUMNS}
        row["benchmark"] = row["benchmark"] or "test"
        row.update(completion=text, num_tokens=None if num_tokens is None else num_tokens[i])
        rows.append(row)
    return rows


def row_key(row: dict[str, Any]) -> tuple[str, str]:
    return (str(row.get("benchmark")), str(row["id"]))


def repair_partial_line(path: str | Path) -> int:
    """Make ``path`` end on a complete line; return how many partial lines were cut (0 or 1).

    A last line without its newline is either a complete row (the newline is added: nothing is lost) or a row cut
    off by a kill or a full disk (it is cut away and logged: that sample is redone on resume). Without this, the
    next appended row would be glued to the fragment and the file could not be merged.
    """
    path = Path(path)
    if not path.is_file():
        return 0
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        # Find the start of the last line (scan backwards in blocks).
        start, pos = 0, size
        while pos > 0:
            step = min(65536, pos)
            f.seek(pos - step)
            block = f.read(step)
            cut = block.rfind(b"\n")
            if cut >= 0:
                start = pos - step + cut + 1
                break
            pos -= step
        f.seek(start)
        tail = f.read()
        try:
            json.loads(tail.decode("utf-8"))
            f.seek(size)
            f.write(b"\n")  # a complete row that lost only its newline
            return 0
        except (UnicodeDecodeError, json.JSONDecodeError):
            f.truncate(start)
    log.warning(
        "%s: cut a partial last line (%d bytes) left by an interrupted run; that sample will be redone",
        path,
        len(tail),
    )
    return 1


def read_predictions(path: str | Path, *, lenient: bool = False) -> list[dict[str, Any]]:
    """Rows of a JSONL predictions file ([] when it does not exist).

    A partial last line (a killed run) is skipped with a warning. Another line that is not JSON raises
    :class:`PredictionsFileError` naming the file and line, or with ``lenient`` (part files, whose rows are redone
    when missing) is skipped, counted and logged.
    """
    path = Path(path)
    if not path.is_file():
        return []
    rows, bad = [], []
    with path.open(encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if lineno == len(lines):  # no newline after it: a torn last line; that sample is redone
                log.warning("%s:%d: skipped a partial last line left by an interrupted run", path, lineno)
                continue
            if not lenient:
                raise PredictionsFileError(
                    f"{path}:{lineno}: not a JSON line ({e.msg} at column {e.colno}); fix or delete that line"
                ) from None
            bad.append(lineno)
    if bad:
        log.warning(
            "%s: skipped %d line(s) that are not JSON (lines %s); those samples are redone", path, len(bad), bad[:5]
        )
    return rows


def _line(row: dict[str, Any]) -> str:
    ordered = {k: row.get(k) for k in PREDICTION_FIELDS}
    ordered.update({k: v for k, v in row.items() if k not in ordered})
    return json.dumps(ordered, ensure_ascii=False)


def write_predictions(path: str | Path, rows: Iterable[dict[str, Any]], *, append: bool = False) -> None:
    """Write rows as JSONL.

    ``append`` first repairs a partial last line (:func:`repair_partial_line`) so a new row never joins a
    fragment. A full rewrite goes through a temporary file and ``os.replace``: a crash or a full disk leaves the
    previous file untouched (the temporary file is removed on error).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if append:
        repair_partial_line(path)
        with path.open("a", encoding="utf-8") as f:
            f.writelines(_line(r) + "\n" for r in rows)
            f.flush()
        return
    atomic_write_text(path, "".join(_line(r) + "\n" for r in rows))


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through ``<path>.tmp`` + ``os.replace``; on any error the old file stays."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
        for row in read_predictions(file, lenient=file != Path(path)):
            bench, rid = row_key(row)
            done.setdefault(bench, set()).add(rid)
    return done


def merge_part_files(path: str | Path) -> list[dict[str, Any]]:
    """Fold the part files into the predictions file (first row of a key wins), delete them; return all rows."""
    rows = read_predictions(path)
    seen = {row_key(r) for r in rows}
    parts = part_files(path)
    for part in parts:
        for row in read_predictions(part, lenient=True):
            if row_key(row) not in seen:
                seen.add(row_key(row))
                rows.append(row)
    write_predictions(path, rows)
    for part in parts:
        part.unlink()
    return rows


def skipped_file(path: str | Path) -> Path:
    """Where the records skipped by ``test`` are listed: ``<stem>.skipped.jsonl`` beside the predictions."""
    path = Path(path)
    return path.with_name(f"{path.stem}.skipped.jsonl")


def append_skipped(path: str | Path, rank: int, skipped: Iterable[dict[str, Any]]) -> None:
    """Append ``{"benchmark", "id", "reason"}`` entries of skipped records to this rank's part file."""
    entries = [
        {"benchmark": e.get("benchmark") or "test", "id": e.get("id"), "reason": e.get("reason")} for e in skipped
    ]
    if entries:
        part = part_file(skipped_file(path), rank)
        part.parent.mkdir(parents=True, exist_ok=True)
        repair_partial_line(part)
        with part.open("a", encoding="utf-8") as f:
            f.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)


def merge_skipped(
    path: str | Path, rows: Iterable[dict[str, Any]] = (), extra: Iterable[dict[str, Any]] = ()
) -> list[dict[str, Any]]:
    """This run's skipped records: ``extra`` (e.g. records skipped while reading the files) and the part files,
    one entry per ``(benchmark, id)``, minus those with a prediction (a retry that succeeded). Written to
    :func:`skipped_file` (atomically, replacing the previous run's list); the part files are deleted."""
    out_path = skipped_file(path)
    done = {row_key(r) for r in rows}
    parts = part_files(out_path)
    entries: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for e in [*extra, *(e for part in parts for e in read_predictions(part, lenient=True))]:
        e = {"benchmark": e.get("benchmark") or "test", "id": e.get("id"), "reason": e.get("reason")}
        key = (str(e["benchmark"]), str(e["id"]))
        if e["id"] is not None and (key in done or key in seen):
            continue
        seen.add(key)
        entries.append(e)
    if entries or out_path.exists():
        atomic_write_text(out_path, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries))
    for part in parts:
        part.unlink()
    return entries

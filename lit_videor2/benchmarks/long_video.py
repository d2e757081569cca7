"""Converters of the long-video benchmarks: MLVU, LongVideoBench.

Every converter follows :mod:`lit_videor2.benchmarks.adapters` (signature, ``video_prefix``, ``video_root``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lit_videor2.benchmarks.common import (
    LETTERS,
    BenchmarkFormatError,
    Skips,
    checked_records,
    files_in,
    mc_record,
    read_table,
    require,
    video_prefix_or,
)

# --------------------------------------------------------------------------------------------- MLVU

#: MLVU dev tasks without candidates (open generation, scored by a GPT judge): left out with a note.
MLVU_GENERATION_TASKS = ("sub_scene", "summary")


def convert_mlvu(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
    strict: bool = False,
    skips: Skips | None = None,
) -> list[dict]:
    """MLVU dev multiple-choice tasks (``MLVU/json/<n>_<task>.json``): lists of ``{"video", "duration",
    "question", "candidates", "answer": "<candidate text>", "question_type"}``. ``src``: one file or the
    ``json/`` folder. Video: ``video/<file stem>/<video>`` (default prefix ``video/``).

    The official ``json/`` folder also holds the generation tasks (``8_sub_scene.json``, ``9_summary.json``:
    rows without ``candidates``); those files are skipped with a note. A row whose answer matches no candidate,
    or several, or is empty, is dropped and counted in ``skips`` (``strict``: an error naming the row).
    """
    prefix = video_prefix_or(video_prefix, "video/")
    skips = skips if skips is not None else Skips(strict)
    records = []
    for file in files_in(src, ["*.json", "json/*.json"]):
        rows = read_table(file)
        if any(t in file.stem for t in MLVU_GENERATION_TASKS) or (rows and not any("candidates" in r for _, r in rows)):
            skips.note(f"{file}: generation task without candidates ({len(rows)} rows), not converted")
            continue
        for i, (where, row) in enumerate(rows):
            meta = {"task": file.stem, "question_type": row.get("question_type"), "duration": row.get("duration")}
            try:
                record = mc_record(
                    "mlvu",
                    f"mlvu/{file.stem}/{i}",
                    f"{prefix}{file.stem}/{require(row, 'video', where)}",
                    str(require(row, "question", where)),
                    list(require(row, "candidates", where)),
                    require(row, "answer", where, allow_empty=True),
                    where,
                    meta,
                )
            except BenchmarkFormatError as e:
                if "answer" not in str(e):
                    raise
                skips.row(e)
                continue
            records.append(record)
    return checked_records(records, video_root, skip_missing)


# ------------------------------------------------------------------------------------ LongVideoBench

_LVB_PAD = "N/A"


def _lvb_files(src: str | Path, skips: Skips) -> list[Path]:
    """The annotation files of a LongVideoBench download: ``lvb_val.json`` (or ``validation-*.parquet`` when the
    JSON is absent); the test files (``lvb_test_wo_gt.json``, ``test-*.parquet``) have no answers and are skipped."""
    src = Path(src)
    if src.is_file():
        return [src]
    files = files_in(src, ["*.json", "*.jsonl", "*.parquet"])
    test = [f for f in files if "wo_gt" in f.stem or f.stem.startswith("test")]
    for f in test:
        skips.note(f"{f}: test split without answers, not converted")
    kept = [f for f in files if f not in test]
    val_json = [f for f in kept if f.suffix.lower() in (".json", ".jsonl")]
    if val_json and len(kept) > len(val_json):
        for f in kept:
            if f not in val_json:
                skips.note(f"{f}: same validation rows as {val_json[0].name}, not converted twice")
        kept = val_json
    if not kept:
        raise BenchmarkFormatError(f"{src}: only test files without answers; use lvb_val.json")
    return kept


def _lvb_options(row: dict[str, Any], where: str) -> list[Any]:
    """``candidates`` (JSON layout), or ``option0``…``option4`` (parquet layout) without the ``"N/A"`` padding."""
    if "candidates" in row:
        return list(require(row, "candidates", where))
    cols = sorted((k for k in row if re.fullmatch(r"option\d+", k)), key=lambda k: int(k[6:]))
    if not cols:
        raise BenchmarkFormatError(f"{where}: no 'candidates' nor 'option0'… columns (fields present: {sorted(row)})")
    options = [row[k] for k in cols]
    while options and (options[-1] is None or str(options[-1]).strip() in ("", _LVB_PAD)):
        options.pop()
    return options


def convert_longvideobench(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
    skips: Skips | None = None,
) -> list[dict]:
    """LongVideoBench (``longvideobench/LongVideoBench``), two layouts of the validation split:

    - ``lvb_val.json``: ``id, video_id, video_path, question, candidates, correct_choice`` (0-based index),
      ``duration_group, question_category, duration``;
    - ``validation-00000-of-00001.parquet``: the same with ``option0``…``option4`` (padded with ``"N/A"``)
      instead of ``candidates``.

    ``src``: a file, or the download folder (the test files without answers are skipped with a note, and the
    parquet is skipped when ``lvb_val.json`` is there). Video: ``videos/<video_path>`` (default prefix ``videos/``).
    """
    prefix = video_prefix_or(video_prefix, "videos/")
    skips = skips if skips is not None else Skips()
    records = []
    for file in _lvb_files(src, skips):
        for where, row in read_table(file):
            rid = str(require(row, "id", where))
            if row.get("correct_choice") is None:
                raise BenchmarkFormatError(
                    f"{where}: no 'correct_choice' (the test split has no answers; use lvb_val.json)"
                )
            options = _lvb_options(row, where)
            choice = row["correct_choice"]
            n = len(options)
            if isinstance(choice, str) and choice.strip().isdigit():
                choice = int(choice)
            elif isinstance(choice, str) and re.fullmatch(r"[A-Za-z]", choice.strip()):
                choice = LETTERS.index(choice.strip().upper())
            if isinstance(choice, float) and choice.is_integer():
                choice = int(choice)
            if isinstance(choice, bool) or not isinstance(choice, int) or not 0 <= choice < n:
                raise BenchmarkFormatError(f"{where}: correct_choice {choice!r} is not an index into {n} candidates")
            meta = {
                k: row.get(k) for k in ("duration_group", "question_category", "topic_category", "duration", "video_id")
            }
            records.append(
                mc_record(
                    "longvideobench",
                    f"longvideobench/{rid}",
                    f"{prefix}{require(row, 'video_path', where)}",
                    str(require(row, "question", where)),
                    options,
                    LETTERS[choice],
                    where,
                    meta,
                )
            )
    return checked_records(records, video_root, skip_missing)

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
    files_in,
    mc_record,
    read_table,
    require,
    video_prefix_or,
)
from lit_videor2.benchmarks.rows import Skips, convert_rows, finish, source_meta

# --------------------------------------------------------------------------------------------- MLVU

#: MLVU dev tasks without candidates (open generation, scored by a GPT judge): left out with a note.
MLVU_GENERATION_TASKS = ("sub_scene", "summary")


def mlvu_generation_reason(file: Path, rows: list[tuple[str, dict]]) -> str | None:
    """Why a file holds no multiple-choice task (``None`` if it does): a generation task (``8_sub_scene.json``,
    ``9_summary.json``), or no row with ``candidates``."""
    if not rows:
        return "the file holds no rows"
    if any(isinstance(r.get("candidates"), list) and r["candidates"] for _, r in rows):
        return None
    task = next((t for t in MLVU_GENERATION_TASKS if t in file.stem), None)
    kind = f"generation task ({task})" if task else "no multiple-choice rows"
    return (
        f"{kind}: its {len(rows)} rows have no candidates, and the multiple-choice evaluation leaves "
        "generation tasks out (they are scored by a GPT judge)"
    )


def convert_mlvu(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
    skips: Skips | None = None,
) -> list[dict]:
    """MLVU dev multiple-choice tasks (``MLVU/json/<n>_<task>.json``): lists of ``{"video", "duration",
    "question", "candidates", "answer": "<candidate text>", "question_type"}``. ``src``: one file or the
    ``json/`` folder. Ids are ``mlvu/<file stem>/<row index>``. Video: ``video/<file stem>/<video>`` (default
    prefix ``video/``).

    The official ``json/`` folder also holds the generation tasks (``8_sub_scene.json``, ``9_summary.json``:
    rows without ``candidates``); those files are left out with a note saying so (:func:`mlvu_generation_reason`).
    A row that cannot be used (empty question; answer empty, matching no candidate or several) is dropped and
    counted in ``skips`` (``skips.strict``: an error naming the file, the row and the field).
    """
    prefix = video_prefix_or(video_prefix, "video/")
    skips = skips if skips is not None else Skips()
    converted = []
    for file in files_in(src, ["*.json", "json/*.json"]):
        rows = read_table(file)
        reason = mlvu_generation_reason(file, rows)
        if reason is not None:
            skips.note(f"{file}: not converted: {reason}")
            continue

        def build(where: str, item: tuple[int, dict], task: str = file.stem) -> dict:
            index, row = item
            return mc_record(
                "mlvu",
                f"mlvu/{task}/{index}",
                f"{prefix}{task}/{require(row, 'video', where)}",
                require(row, "question", where),
                require(row, "candidates", where),
                require(row, "answer", where, allow_empty=True),
                where,
                source_meta(row, ("question", "candidates", "answer")) | {"task": task},
                options_field="candidates",
            )

        converted += convert_rows(((where, (i, row)) for i, (where, row) in enumerate(rows)), build, skips)
    return finish(converted, skips, video_root, skip_missing)


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


def _lvb_option_columns(row: dict[str, Any]) -> list[str]:
    """The parquet layout's ``option0``, ``option1``, ... columns, in order."""
    return sorted((k for k in row if re.fullmatch(r"option\d+", k)), key=lambda k: int(k[6:]))


def _lvb_options(row: dict[str, Any], where: str) -> list[Any]:
    """``candidates`` (JSON layout), or ``option0``…``option4`` (parquet layout) without the ``"N/A"`` padding."""
    if "candidates" in row:
        return require(row, "candidates", where)
    cols = _lvb_option_columns(row)
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

    def build(where: str, row: dict) -> dict:
        rid = str(require(row, "id", where))
        if row.get("correct_choice") is None:
            raise BenchmarkFormatError(
                f"{where}: field 'correct_choice' is missing or null (the test split has no answers; use lvb_val.json)"
            )
        options = _lvb_options(row, where)
        return mc_record(
            "longvideobench",
            f"longvideobench/{rid}",
            f"{prefix}{require(row, 'video_path', where)}",
            require(row, "question", where),
            options,
            LETTERS[_lvb_choice(row["correct_choice"], len(options), where)],
            where,
            source_meta(row, ("question", "candidates", "correct_choice", *_lvb_option_columns(row))),
            options_field="candidates" if "candidates" in row else "option0…",
        )

    converted = []
    for file in _lvb_files(src, skips):
        converted += convert_rows(read_table(file), build, skips)
    return finish(converted, skips, video_root, skip_missing)


def _lvb_choice(choice: Any, n: int, where: str) -> int:
    """``correct_choice`` as a 0-based index (an int, a digit string or a letter)."""
    if isinstance(choice, str) and choice.strip().isdigit():
        choice = int(choice)
    elif isinstance(choice, str) and re.fullmatch(r"[A-Za-z]", choice.strip()):
        choice = LETTERS.index(choice.strip().upper())
    if isinstance(choice, float) and choice.is_integer():
        choice = int(choice)
    if isinstance(choice, bool) or not isinstance(choice, int) or not 0 <= choice < n:
        raise BenchmarkFormatError(f"{where}: field 'correct_choice' {choice!r} is not an index into {n} candidates")
    return choice

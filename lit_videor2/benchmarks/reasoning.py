"""Converters of the spatial and mathematical reasoning benchmarks: VSI-Bench, VideoMathQA, MINERVA.

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
    make_record,
    mc_record,
    parse_plain_number,
    read_table,
    require,
    video_prefix_or,
)
from lit_videor2.benchmarks.rows import Skips, convert_rows, finish, source_meta

# ---------------------------------------------------------------------------------------- VSI-Bench

#: VSI-Bench question types with numeric answers, scored by relative error (mean relative accuracy).
VSI_NUMERIC_TYPES = ("object_abs_distance", "object_counting", "object_size_estimation", "room_size_estimation")
#: VSI-Bench question types with options, scored by exact letter match.
VSI_CHOICE_TYPES = (
    "object_rel_direction_easy",
    "object_rel_direction_medium",
    "object_rel_direction_hard",
    "object_rel_distance",
    "route_planning",
    "obj_appearance_order",
)


def convert_vsibench(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
    skips: Skips | None = None,
) -> list[dict]:
    """VSI-Bench (``nyu-visionx/VSI-Bench`` ``test-00000-of-00001.parquet``, or the rows as JSON): ``id, dataset``
    (arkitscenes / scannet / scannetpp), ``scene_name, question_type, question, options`` (``["A. ...", ...]``
    or null), ``ground_truth`` (a letter, or a number as text). Numeric question types become
    ``problem_type: "regression"`` with a numeric answer: VSI-Bench scores them by relative error, which the
    regression reward (1 − |y−ŷ|/|y|) and the 5 % TAC rule follow (not VSI's own MRA average over
    thresholds). Video: ``<dataset>/<scene_name>.mp4`` (default prefix empty).
    """
    prefix = video_prefix_or(video_prefix, "")
    skips = skips if skips is not None else Skips()

    def build(where: str, row: dict) -> dict:
        rid = str(require(row, "id", where))
        video = f"{prefix}{require(row, 'dataset', where)}/{require(row, 'scene_name', where)}.mp4"
        qtype = str(require(row, "question_type", where))
        meta = source_meta(row, ("question", "options", "ground_truth"))
        question = require(row, "question", where)
        truth = require(row, "ground_truth", where, allow_empty=True)
        if qtype in VSI_NUMERIC_TYPES or (qtype not in VSI_CHOICE_TYPES and not row.get("options")):
            value = parse_plain_number(truth)
            if value is None:
                raise BenchmarkFormatError(
                    f"{where}: field 'ground_truth' {truth!r} is not a number (numeric question type {qtype!r})"
                )
            if not str(question).strip():
                raise BenchmarkFormatError(f"{where}: field 'question' is empty")
            return make_record(
                benchmark="vsibench",
                record_id=f"vsibench/{rid}",
                video=video,
                question=str(question),
                problem_type="regression",
                answer=value,
                meta=meta,
            )
        options = row.get("options")
        if not options:
            raise BenchmarkFormatError(f"{where}: field 'options' is empty (choice question type {qtype!r})")
        return mc_record("vsibench", f"vsibench/{rid}", video, question, options, truth, where, meta)

    converted = []
    for file in files_in(src, ["*.parquet", "*.json", "*.jsonl"]):
        converted += convert_rows(read_table(file), build, skips)
    return finish(converted, skips, video_root, skip_missing)


# --------------------------------------------------------------------------------------- VideoMathQA


def convert_videomathqa(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
    skips: Skips | None = None,
) -> list[dict]:
    """VideoMathQA (``MBZUAI/VideoMathQA``): ``videomathqa_mcq_test.parquet`` (5 options) or
    ``videomathqa_mbin_test.parquet`` (multi-binary: one row per pair of the answer and one distractor, several
    rows per ``question_id``); columns ``videoID, question_id, category, question, options, answer`` (a
    letter), ``steps, length``. ``src``: a file, or the download folder (then only the MCQ file is read).
    Video: ``videos/<videoID>.mp4`` (default prefix ``videos/``).

    Ids are ``videomathqa/<question_id>``, with ``-<n>`` added for the multi-binary rows of one question. Each
    multi-binary row is scored on its own here; lmms-eval counts a question right only when all its pairs are.
    """
    prefix = video_prefix_or(video_prefix, "videos/")
    if Path(src).is_dir():
        files = files_in(src, ["videomathqa_mcq_test.*", "*mcq*.parquet", "*mcq*.json", "*mcq*.jsonl"])[:1]
    else:
        files = files_in(src, [])
    skips = skips if skips is not None else Skips()
    converted = []
    for file in files:
        rows = read_table(file)
        per_question: dict[str, int] = {}
        for _, row in rows:
            qid = str(row.get("question_id"))
            per_question[qid] = per_question.get(qid, 0) + 1
        index: dict[str, int] = {}

        def build(where: str, row: dict, per_question: dict[str, int] = per_question, index: dict = index) -> dict:
            qid = str(require(row, "question_id", where))
            k = index[qid] = index.get(qid, -1) + 1
            return mc_record(
                "videomathqa",
                f"videomathqa/{qid}" + (f"-{k}" if per_question[qid] > 1 else ""),
                f"{prefix}{require(row, 'videoID', where)}.mp4",
                require(row, "question", where),
                require(row, "options", where),
                require(row, "answer", where, allow_empty=True),
                where,
                source_meta(row, ("question", "options", "answer")),
            )

        converted += convert_rows(rows, build, skips)
    return finish(converted, skips, video_root, skip_missing)


# ------------------------------------------------------------------------------------------- MINERVA


def convert_minerva(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
    skips: Skips | None = None,
) -> list[dict]:
    """MINERVA (``minerva.json`` from Google DeepMind's neptune release; also ``lmms-lab-eval/minerva``):
    ``key, video_id`` (a YouTube id), ``question, answer`` (free text), ``answer_choice_0``…``answer_choice_4``,
    ``answer_id`` (index of the right choice), ``reasoning``, ``question type`` (or ``question_type``),
    ``split, category``. Video: ``<video_id>.mp4`` (default prefix empty; the videos are downloaded from
    YouTube by the user). The right letter comes from ``answer_id``; the free-text ``answer`` must agree with
    that choice when both are given.
    """
    prefix = video_prefix_or(video_prefix, "")
    skips = skips if skips is not None else Skips()

    def build(where: str, row: dict) -> dict:
        key = str(require(row, "key", where))
        cols = sorted((k for k in row if re.fullmatch(r"answer_choice_\d+", k)), key=lambda k: int(k[14:]))
        if not cols:
            raise BenchmarkFormatError(f"{where}: missing field 'answer_choice_0' (fields present: {sorted(row)})")
        options = [require(row, k, where) for k in cols]
        return mc_record(
            "minerva",
            f"minerva/{key}",
            f"{prefix}{require(row, 'video_id', where)}.mp4",
            require(row, "question", where),
            options,
            _minerva_truth(row, options, where),
            where,
            source_meta(row, ("question", "answer", *cols))
            | {"question_type": row.get("question_type", row.get("question type"))},
            options_field="answer_choice_0…",
        )

    converted = []
    for file in files_in(src, ["*.json", "*.jsonl", "*.parquet"]):
        converted += convert_rows(read_table(file), build, skips)
    return finish(converted, skips, video_root, skip_missing)


def _minerva_truth(row: dict[str, Any], options: list[Any], where: str) -> Any:
    """The right letter from ``answer_id``, whose choice the free-text ``answer`` must agree with (else the text)."""
    answer_id = row.get("answer_id")
    if isinstance(answer_id, str) and answer_id.strip().isdigit():
        answer_id = int(answer_id)
    if isinstance(answer_id, float) and answer_id.is_integer():
        answer_id = int(answer_id)
    if answer_id is None:
        return require(row, "answer", where, allow_empty=True)
    if isinstance(answer_id, bool) or not isinstance(answer_id, int) or not 0 <= answer_id < len(options):
        raise BenchmarkFormatError(
            f"{where}: field 'answer_id' {answer_id!r} is not an index into {len(options)} choices"
        )
    text = row.get("answer")
    if isinstance(text, str) and text.strip() and text.strip() != str(options[answer_id]).strip():
        raise BenchmarkFormatError(
            f"{where}: field 'answer' {text!r} differs from answer_choice_{answer_id} {options[answer_id]!r}"
        )
    return LETTERS[answer_id]

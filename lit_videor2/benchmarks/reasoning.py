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
    checked_records,
    files_in,
    make_record,
    mc_record,
    parse_plain_number,
    read_table,
    require,
    video_prefix_or,
)

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
) -> list[dict]:
    """VSI-Bench (``nyu-visionx/VSI-Bench`` ``test-00000-of-00001.parquet``, or the rows as JSON): ``id, dataset``
    (arkitscenes / scannet / scannetpp), ``scene_name, question_type, question, options`` (``["A. ...", ...]``
    or null), ``ground_truth`` (a letter, or a number as text). Numeric question types become
    ``problem_type: "regression"`` with a numeric answer: VSI-Bench scores them by relative error, which the
    regression reward (1 − |y−ŷ|/|y|) and the 5 % TAC rule follow (not VSI's own MRA average over
    thresholds). Video: ``<dataset>/<scene_name>.mp4`` (default prefix empty).
    """
    prefix = video_prefix_or(video_prefix, "")
    records = []
    for file in files_in(src, ["*.parquet", "*.json", "*.jsonl"]):
        for where, row in read_table(file):
            rid = str(require(row, "id", where))
            video = f"{prefix}{require(row, 'dataset', where)}/{require(row, 'scene_name', where)}.mp4"
            qtype = str(require(row, "question_type", where))
            meta = {"question_type": qtype, "scene_name": row.get("scene_name"), "dataset": row.get("dataset")}
            question = str(require(row, "question", where))
            truth = require(row, "ground_truth", where)
            if qtype in VSI_NUMERIC_TYPES or (qtype not in VSI_CHOICE_TYPES and not row.get("options")):
                value = parse_plain_number(truth)
                if value is None:
                    raise BenchmarkFormatError(
                        f"{where}: numeric question type {qtype!r} with non-numeric ground_truth {truth!r}"
                    )
                records.append(
                    make_record(
                        benchmark="vsibench",
                        record_id=f"vsibench/{rid}",
                        video=video,
                        question=question,
                        problem_type="regression",
                        answer=value,
                        meta=meta,
                    )
                )
            else:
                options = row.get("options")
                if not options:
                    raise BenchmarkFormatError(f"{where}: choice question type {qtype!r} without options")
                records.append(
                    mc_record("vsibench", f"vsibench/{rid}", video, question, list(options), truth, where, meta)
                )
    return checked_records(records, video_root, skip_missing)


# --------------------------------------------------------------------------------------- VideoMathQA


def convert_videomathqa(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
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
    records = []
    for file in files:
        rows = read_table(file)
        per_question: dict[str, int] = {}
        for _, row in rows:
            qid = str(row.get("question_id"))
            per_question[qid] = per_question.get(qid, 0) + 1
        index: dict[str, int] = {}
        for where, row in rows:
            qid = str(require(row, "question_id", where))
            k = index[qid] = index.get(qid, -1) + 1
            meta = {"category": row.get("category"), "length": row.get("length"), "question_id": qid}
            records.append(
                mc_record(
                    "videomathqa",
                    f"videomathqa/{qid}" + (f"-{k}" if per_question[qid] > 1 else ""),
                    f"{prefix}{require(row, 'videoID', where)}.mp4",
                    str(require(row, "question", where)),
                    list(require(row, "options", where)),
                    require(row, "answer", where, allow_empty=True),
                    where,
                    meta,
                )
            )
    return checked_records(records, video_root, skip_missing)


# ------------------------------------------------------------------------------------------- MINERVA


def convert_minerva(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
) -> list[dict]:
    """MINERVA (``minerva.json`` from Google DeepMind's neptune release; also ``lmms-lab-eval/minerva``):
    ``key, video_id`` (a YouTube id), ``question, answer`` (free text), ``answer_choice_0``…``answer_choice_4``,
    ``answer_id`` (index of the right choice), ``reasoning``, ``question type`` (or ``question_type``),
    ``split, category``. Video: ``<video_id>.mp4`` (default prefix empty; the videos are downloaded from
    YouTube by the user). The right letter comes from ``answer_id``; the free-text ``answer`` must agree with
    that choice when both are given.
    """
    prefix = video_prefix_or(video_prefix, "")
    records = []
    for file in files_in(src, ["*.json", "*.jsonl", "*.parquet"]):
        for where, row in read_table(file):
            key = str(require(row, "key", where))
            cols = sorted((k for k in row if re.fullmatch(r"answer_choice_\d+", k)), key=lambda k: int(k[14:]))
            if not cols:
                raise BenchmarkFormatError(f"{where}: no 'answer_choice_0'… fields (fields present: {sorted(row)})")
            options = [require(row, k, where) for k in cols]
            answer_id = row.get("answer_id")
            if isinstance(answer_id, str) and answer_id.strip().isdigit():
                answer_id = int(answer_id)
            if answer_id is None:
                truth: Any = require(row, "answer", where, allow_empty=True)
            elif isinstance(answer_id, bool) or not isinstance(answer_id, int) or not 0 <= answer_id < len(options):
                raise BenchmarkFormatError(
                    f"{where}: answer_id {answer_id!r} is not an index into {len(options)} choices"
                )
            else:
                truth = LETTERS[answer_id]
                text = row.get("answer")
                if isinstance(text, str) and text.strip() and text.strip() != str(options[answer_id]).strip():
                    raise BenchmarkFormatError(
                        f"{where}: answer {text!r} differs from answer_choice_{answer_id} {options[answer_id]!r}"
                    )
            qtype = row.get("question_type", row.get("question type"))
            meta = {"question_type": qtype, "split": row.get("split"), "category": row.get("category")}
            meta["video_id"] = row.get("video_id")
            records.append(
                mc_record(
                    "minerva",
                    f"minerva/{key}",
                    f"{prefix}{require(row, 'video_id', where)}.mp4",
                    str(require(row, "question", where)),
                    options,
                    truth,
                    where,
                    meta,
                )
            )
    return checked_records(records, video_root, skip_missing)

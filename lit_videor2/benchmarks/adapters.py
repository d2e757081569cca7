"""One converter per public benchmark layout -> Video-R2-schema records (see :mod:`.common`).

Every converter has the signature ``convert_<name>(src, *, video_root=None, video_prefix=None,
skip_missing=False) -> list[dict]``:

- ``src``: the annotation file (or the folder holding the per-task files) as published;
- ``video_prefix``: prepended to the video path the layout implies (each converter documents its default,
  which follows the official download's folder structure), so paths are relative to your video root;
- ``video_root``: when given, every video is checked to exist under it (missing -> error naming the
  record, or dropped with ``skip_missing``).

Layouts were written from the benchmarks' dataset cards and official evaluation code; docs/benchmarks.md
says which were compared with real annotation files.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lit_videor2.benchmarks.common import (
    LETTERS,
    BenchmarkFormatError,
    files_in,
    iter_with_video_check,
    letter_for_answer,
    lettered_options,
    make_record,
    open_problem_type,
    parse_plain_number,
    read_json,
    read_table,
    require,
    split_question_options,
)

Converter = Callable[..., list[dict[str, Any]]]


def _prefix(video_prefix: str | None, default: str) -> str:
    p = default if video_prefix is None else video_prefix
    return p if not p or p.endswith("/") else p + "/"


def _finish(records: list[dict], video_root: str | Path | None, skip_missing: bool) -> list[dict]:
    return list(iter_with_video_check(records, video_root, skip_missing))


def _mc_record(benchmark: str, rid: str, video: str, question: str, options: list, answer: Any, where: str, meta=None):
    opts = lettered_options(options, where)
    return make_record(
        benchmark=benchmark,
        record_id=rid,
        video=video,
        question=question,
        problem_type="multiple choice",
        answer=letter_for_answer(answer, opts, where),
        options=opts,
        meta=meta,
    )


# ------------------------------------------------------------------------------------------ MVBench

#: MVBench task (json file stem) -> (folder under ``video/``, data type). From the official evaluation
#: (OpenGVLab Ask-Anything, video_chat2 ``mvbench.ipynb`` data list). ``frame`` tasks are folders of frames.
MVBENCH_TASKS: dict[str, tuple[str, str]] = {
    "action_sequence": ("star/Charades_v1_480", "video"),
    "action_prediction": ("star/Charades_v1_480", "video"),
    "action_antonym": ("ssv2_video", "video"),
    "fine_grained_action": ("Moments_in_Time_Raw/videos", "video"),
    "unexpected_action": ("FunQA_test/test", "video"),
    "object_existence": ("clevrer/video_validation", "video"),
    "object_interaction": ("star/Charades_v1_480", "video"),
    "object_shuffle": ("perception/videos", "video"),
    "moving_direction": ("clevrer/video_validation", "video"),
    "action_localization": ("sta/sta_video", "video"),
    "scene_transition": ("scene_qa/video", "video"),
    "action_count": ("perception/videos", "video"),
    "moving_count": ("clevrer/video_validation", "video"),
    "moving_attribute": ("clevrer/video_validation", "video"),
    "state_change": ("perception/videos", "video"),
    "fine_grained_pose": ("nturgbd", "video"),
    "character_order": ("perception/videos", "video"),
    "egocentric_navigation": ("vlnqa", "video"),
    "episodic_reasoning": ("tvqa/frames_fps3_hq", "frame"),
    "counterfactual_inference": ("clevrer/video_validation", "video"),
}


def convert_mvbench(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
) -> list[dict]:
    """MVBench (``OpenGVLab/MVBench``): ``json/<task>.json``, each a list of
    ``{"video", "question", "candidates": [...], "answer": "<candidate text>"}`` (+ ``start``/``end`` seconds
    for the clipped tasks). ``src``: one task file, the ``json/`` folder or the dataset root. Video: ``video/<task folder>/<video>``
    (default prefix ``video/``). The answer text is mapped to its candidate's letter.
    """
    prefix = _prefix(video_prefix, "video/")
    records = []
    for file in files_in(src, ["*.json", "json/*.json"]):
        task = file.stem
        folder, data_type = MVBENCH_TASKS.get(task, (task, "video"))
        for i, (where, row) in enumerate(read_table(file)):
            meta = {"task": task, "data_type": data_type}
            for key in ("start", "end"):
                if row.get(key) is not None:
                    meta[key] = row[key]
            records.append(
                _mc_record(
                    "mvbench",
                    f"mvbench/{task}/{i}",
                    f"{prefix}{folder}/{require(row, 'video', where)}",
                    str(require(row, "question", where)),
                    list(require(row, "candidates", where)),
                    require(row, "answer", where),
                    where,
                    meta,
                )
            )
    return _finish(records, video_root, skip_missing)


# ------------------------------------------------------------------------------------------ VideoMME


def convert_videomme(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
) -> list[dict]:
    """Video-MME (``lmms-lab/Video-MME``, ``videomme/test-*.parquet``, or the same rows as JSON/JSONL):
    ``video_id, duration, domain, sub_category, url, videoID, question_id, task_type, question,
    options: ["A. ...", ...], answer: "B"``. Video: ``data/<videoID>.mp4`` (default prefix ``data/``).
    """
    prefix = _prefix(video_prefix, "data/")
    records = []
    for file in files_in(src, ["*.parquet", "*.json", "*.jsonl"]):
        for where, row in read_table(file):
            qid = str(require(row, "question_id", where))
            meta = {k: row.get(k) for k in ("duration", "domain", "sub_category", "task_type", "video_id", "url")}
            records.append(
                _mc_record(
                    "videomme",
                    f"videomme/{qid}",
                    f"{prefix}{require(row, 'videoID', where)}.mp4",
                    str(require(row, "question", where)),
                    list(require(row, "options", where)),
                    require(row, "answer", where),
                    where,
                    meta,
                )
            )
    return _finish(records, video_root, skip_missing)


# ---------------------------------------------------------------------------------------- TempCompass


def _tempcompass_row(where: str, rid: str, video_id: str, dim: str, item: dict, prefix: str) -> dict:
    stem, options = split_question_options(str(require(item, "question", where)))
    if not options:
        raise BenchmarkFormatError(f"{where}: TempCompass multi-choice question without 'A. ...' option lines")
    return _mc_record(
        "tempcompass",
        rid,
        f"{prefix}{video_id}.mp4",
        stem,
        options,
        require(item, "answer", where),
        where,
        {"dim": dim, "video_id": video_id},
    )


def convert_tempcompass(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
) -> list[dict]:
    """TempCompass multi-choice task. Two layouts:

    - official repo ``questions/multi-choice.json``: ``{video_id: {dim: [{"question": "...\\nA. x\\nB. y",
      "answer": "A. x"}]}}``;
    - flat rows (``lmms-lab/TempCompass`` ``multi-choice`` parquet or JSON list): ``video_id, dim, question,
      answer``.

    The options are the ``A. ...`` lines inside the question. Video: ``videos/<video_id>.mp4`` (default
    prefix ``videos/``).
    """
    prefix = _prefix(video_prefix, "videos/")
    records = []
    for file in files_in(src, ["*.json", "*.jsonl", "*.parquet"]):
        data = read_json(file) if file.suffix.lower() == ".json" else None
        if isinstance(data, dict):
            for video_id, dims in data.items():
                if not isinstance(dims, dict):
                    raise BenchmarkFormatError(f"{file}[{video_id!r}]: expected {{dimension: [questions]}}")
                for dim, items in dims.items():
                    if not isinstance(items, list):
                        raise BenchmarkFormatError(f"{file}[{video_id!r}][{dim!r}]: expected a list of questions")
                    for i, item in enumerate(items):
                        where = f"{file}[{video_id!r}][{dim!r}][{i}]"
                        if not isinstance(item, dict):
                            raise BenchmarkFormatError(f"{where}: expected a question object")
                        rid = f"tempcompass/{video_id}/{dim}/{i}"
                        records.append(_tempcompass_row(where, rid, video_id, dim, item, prefix))
            continue
        counters: dict[tuple[str, str], int] = {}
        for where, row in read_table(file):
            video_id, dim = str(require(row, "video_id", where)), str(require(row, "dim", where))
            i = counters[(video_id, dim)] = counters.get((video_id, dim), -1) + 1
            records.append(_tempcompass_row(where, f"tempcompass/{video_id}/{dim}/{i}", video_id, dim, row, prefix))
    return _finish(records, video_root, skip_missing)


# ---------------------------------------------------------------------------------------- Video-MMMU

#: Video-MMMU subject -> video folder of the official download (videos are ``<folder>/<id>.mp4``).
VIDEOMMMU_FOLDERS: dict[str, tuple[str, ...]] = {
    "Art": ("Art", "Art_Theory", "Design", "Music"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Humanities": ("History", "Literature", "Sociology", "Psychology"),
    "Engineering": (
        "Agriculture",
        "Architecture_and_Engineering",
        "Computer_Science",
        "Electronics",
        "Energy_and_Power",
        "Materials",
        "Mechanical_Engineering",
    ),
    "Medicine": (
        "Basic_Medical_Science",
        "Clinical_Medicine",
        "Diagnostics_and_Laboratory_Medicine",
        "Pharmacy",
        "Public_Health",
    ),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
}
_VIDEOMMMU_FOLDER_OF = {s: folder for folder, subjects in VIDEOMMMU_FOLDERS.items() for s in subjects}
_VIDEOMMMU_ID_RE = re.compile(r"^[A-Za-z]+_(?P<subject>.+)_\d+$")


def convert_videommmu(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
    track: str | None = None,
) -> list[dict]:
    """Video-MMMU (``lmms-lab/VideoMMMU``; tracks Perception / Comprehension / Adaptation, one parquet each,
    or the same rows as JSON): ``id`` (``<split>_<Subject>_<n>``), ``question``, ``options``, ``answer``,
    ``question_type`` (``multiple-choice`` or ``open``). Open answers that are plain numbers become
    ``numerical``, other open answers ``free-form``. Video: ``<subject folder>/<id>.mp4`` (default prefix
    empty). ``track`` is recorded per record; by default it is taken from a parent folder named after a track.
    """
    prefix = _prefix(video_prefix, "")
    records = []
    for file in files_in(src, ["**/*.parquet", "**/*.json", "**/*.jsonl"]):
        this_track = track or next((p for p in file.parts if p in ("Perception", "Comprehension", "Adaptation")), None)
        for where, row in read_table(file):
            rid = str(require(row, "id", where))
            m = _VIDEOMMMU_ID_RE.match(rid)
            if m is None or m.group("subject") not in _VIDEOMMMU_FOLDER_OF:
                raise BenchmarkFormatError(
                    f"{where}: id {rid!r} is not '<split>_<Subject>_<n>' with a known subject "
                    f"({sorted(_VIDEOMMMU_FOLDER_OF)})"
                )
            video = f"{prefix}{_VIDEOMMMU_FOLDER_OF[m.group('subject')]}/{rid}.mp4"
            qtype = str(row.get("question_type") or "multiple-choice").lower()
            meta = {"track": this_track, "subject": m.group("subject"), "source_question_type": qtype}
            question = str(require(row, "question", where))
            answer = require(row, "answer", where)
            if qtype in ("multiple-choice", "perception"):
                records.append(
                    _mc_record(
                        "videommmu",
                        f"videommmu/{rid}",
                        video,
                        question,
                        list(row.get("options") or []),
                        answer,
                        where,
                        meta,
                    )
                )
            elif qtype in ("open", "open-ended"):
                ptype, value = open_problem_type(answer)
                records.append(
                    make_record(
                        benchmark="videommmu",
                        record_id=f"videommmu/{rid}",
                        video=video,
                        question=question,
                        problem_type=ptype,
                        answer=value,
                        meta=meta,
                    )
                )
            else:
                raise BenchmarkFormatError(f"{where}: unknown question_type {qtype!r} (expected multiple-choice/open)")
    return _finish(records, video_root, skip_missing)


# --------------------------------------------------------------------------------------------- MMVU

_HF_RESOLVE_RE = re.compile(r"^https?://[^ ]*/resolve/[^/]+/(?P<path>.+)$")


def convert_mmvu(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
) -> list[dict]:
    """MMVU (``yale-nlp/MMVU`` ``validation.json``): ``id, video`` (a ``…/resolve/main/videos/<Subject>/<n>.mp4``
    URL), ``question, choices: {"A": ..., "E": ...}`` (empty strings for open questions), ``answer`` (a letter,
    or free text), ``question_type`` (``multiple-choice`` / ``open-ended``), ``metadata.subject``.
    Video: the path inside the dataset repo, ``videos/<Subject>/<n>.mp4`` (default prefix empty); a
    ``video_path`` field (lmms-eval copy) is used as is.
    """
    prefix = _prefix(video_prefix, "")
    records = []
    for file in files_in(src, ["*.json", "*.jsonl", "*.parquet"]):
        for where, row in read_table(file):
            rid = str(require(row, "id", where))
            raw_video = str(row.get("video_path") or require(row, "video", where))
            m = _HF_RESOLVE_RE.match(raw_video)
            video = prefix + (m.group("path") if m else raw_video.lstrip("/"))
            qtype = str(require(row, "question_type", where)).lower()
            meta_src = row.get("metadata") if isinstance(row.get("metadata"), dict) else {}
            meta = {"subject": meta_src.get("subject"), "source_question_type": qtype}
            question = str(require(row, "question", where))
            answer = require(row, "answer", where)
            if qtype == "multiple-choice":
                choices = require(row, "choices", where)
                if not isinstance(choices, dict):
                    raise BenchmarkFormatError(f"{where}: 'choices' must be an object letter -> text")
                keys = [k for k in sorted(choices) if str(choices[k] or "").strip()]
                if keys != list(LETTERS[: len(keys)]):
                    raise BenchmarkFormatError(f"{where}: non-empty choices {keys} are not consecutive letters from A")
                records.append(
                    _mc_record("mmvu", f"mmvu/{rid}", video, question, [choices[k] for k in keys], answer, where, meta)
                )
            elif qtype == "open-ended":
                ptype, value = open_problem_type(answer)
                records.append(
                    make_record(
                        benchmark="mmvu",
                        record_id=f"mmvu/{rid}",
                        video=video,
                        question=question,
                        problem_type=ptype,
                        answer=value,
                        meta=meta,
                    )
                )
            else:
                raise BenchmarkFormatError(
                    f"{where}: unknown question_type {qtype!r} (expected multiple-choice/open-ended)"
                )
    return _finish(records, video_root, skip_missing)


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
    prefix = _prefix(video_prefix, "")
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
                    _mc_record("vsibench", f"vsibench/{rid}", video, question, list(options), truth, where, meta)
                )
    return _finish(records, video_root, skip_missing)


# --------------------------------------------------------------------------------------------- MLVU


def convert_mlvu(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
) -> list[dict]:
    """MLVU dev multiple-choice tasks (``MLVU/json/<n>_<task>.json``): lists of ``{"video", "duration",
    "question", "candidates", "answer": "<candidate text>", "question_type"}``. ``src``: one file or the
    ``json/`` folder. Video: ``video/<file stem>/<video>`` (default prefix ``video/``). Rows without
    ``candidates`` (the generation tasks) are an error: convert only the multiple-choice files.
    """
    prefix = _prefix(video_prefix, "video/")
    records = []
    for file in files_in(src, ["*.json", "json/*.json"]):
        for i, (where, row) in enumerate(read_table(file)):
            meta = {"task": file.stem, "question_type": row.get("question_type"), "duration": row.get("duration")}
            records.append(
                _mc_record(
                    "mlvu",
                    f"mlvu/{file.stem}/{i}",
                    f"{prefix}{file.stem}/{require(row, 'video', where)}",
                    str(require(row, "question", where)),
                    list(require(row, "candidates", where)),
                    require(row, "answer", where),
                    where,
                    meta,
                )
            )
    return _finish(records, video_root, skip_missing)


# ------------------------------------------------------------------------------------ LongVideoBench


def convert_longvideobench(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
) -> list[dict]:
    """LongVideoBench (``longvideobench/LongVideoBench`` ``lvb_val.json``): ``id, video_path, question,
    candidates, correct_choice`` (0-based index), ``duration_group, question_category, duration``.
    Video: ``videos/<video_path>`` (default prefix ``videos/``). The test split has no answers: an error.
    """
    prefix = _prefix(video_prefix, "videos/")
    records = []
    for file in files_in(src, ["*.json", "*.jsonl", "*.parquet"]):
        for where, row in read_table(file):
            rid = str(require(row, "id", where))
            if row.get("correct_choice") is None:
                raise BenchmarkFormatError(
                    f"{where}: no 'correct_choice' (the test split has no answers; use lvb_val.json)"
                )
            choice = row["correct_choice"]
            n = len(row.get("candidates") or [])
            if isinstance(choice, str) and choice.strip().isdigit():
                choice = int(choice)
            if isinstance(choice, bool) or not isinstance(choice, int) or not 0 <= choice < n:
                raise BenchmarkFormatError(f"{where}: correct_choice {choice!r} is not an index into {n} candidates")
            meta = {k: row.get(k) for k in ("duration_group", "question_category", "duration", "video_id")}
            records.append(
                _mc_record(
                    "longvideobench",
                    f"longvideobench/{rid}",
                    f"{prefix}{require(row, 'video_path', where)}",
                    str(require(row, "question", where)),
                    list(require(row, "candidates", where)),
                    LETTERS[choice],
                    where,
                    meta,
                )
            )
    return _finish(records, video_root, skip_missing)


#: Benchmark name -> converter (``lit_videor2 convert-benchmark --name NAME``).
ADAPTERS: dict[str, Converter] = {
    "mvbench": convert_mvbench,
    "videomme": convert_videomme,
    "tempcompass": convert_tempcompass,
    "videommmu": convert_videommmu,
    "mmvu": convert_mmvu,
    "vsibench": convert_vsibench,
    "mlvu": convert_mlvu,
    "longvideobench": convert_longvideobench,
}

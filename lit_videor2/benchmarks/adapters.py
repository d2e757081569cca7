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

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lit_videor2.benchmarks.common import (
    LETTERS,
    BenchmarkFormatError,
    Skips,
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
#: The ``video`` revision of ``OpenGVLab/MVBench`` (the one lmms-eval downloads): clipped tasks ship cut files
#: ``<id>_<start>_<end>.mp4`` in ``*_segment`` folders, TVQA frames become MP4 clips, NTU and SSv2 are re-encoded.
#: Task -> (folder, data type, whether the file is a cut segment named after ``start``/``end``).
MVBENCH_VIDEO_REVISION_TASKS: dict[str, tuple[str, str, bool]] = {
    **{task: (folder, kind, False) for task, (folder, kind) in MVBENCH_TASKS.items()},
    "action_sequence": ("star/Charades_segment", "video", True),
    "action_prediction": ("star/Charades_segment", "video", True),
    "object_interaction": ("star/Charades_segment", "video", True),
    "action_localization": ("sta/sta_video_segment", "video", True),
    "episodic_reasoning": ("tvqa/video_fps3_hq_segment", "video", True),
    "fine_grained_pose": ("nturgbd_convert", "video", False),
    "action_antonym": ("ssv2_video_mp4", "video", False),
}
_SEGMENT_RE = re.compile(
    r"^(?P<stem>.+)_(?P<start>[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)_(?P<end>[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)$"
)


def segment_name(video: str, start: Any, end: Any) -> str:
    """``<id>_<start>_<end>.mp4``: the cut file of a clipped MVBench row in the ``video`` revision.

    The numbers are written as Python writes the floats read from the JSON (``1.2999999999999998``, ``15.4``),
    which is how the published file names read (``star/Charades_segment/USNP1_1.2999999999999998_15.4.mp4``).
    A ``video`` that already names a segment is kept.
    """
    stem = Path(video).stem
    if _SEGMENT_RE.match(stem):
        return Path(video).with_suffix(".mp4").name
    return f"{stem}_{float(start)!r}_{float(end)!r}.mp4"


def _find_segment(folder: Path, video: str, start: Any, end: Any) -> str | None:
    """The file in ``folder`` cut from ``video`` at ``start``–``end`` (numbers compared with a 1e-6 tolerance)."""
    if not folder.is_dir():
        return None
    stem = Path(video).stem
    for path in folder.glob(f"{glob_escape(stem)}_*_*"):
        m = _SEGMENT_RE.match(path.stem)
        if m and m.group("stem") == stem:
            if math.isclose(float(m.group("start")), float(start), abs_tol=1e-6) and math.isclose(
                float(m.group("end")), float(end), abs_tol=1e-6
            ):
                return path.name
    return None


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def convert_mvbench(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
    revision: str | None = None,
) -> list[dict]:
    """MVBench (``OpenGVLab/MVBench``): ``json/<task>.json``, each a list of
    ``{"video", "question", "candidates": [...], "answer": "<candidate text>"}`` (+ ``start``/``end`` seconds
    for the clipped tasks). ``src``: one task file, the ``json/`` folder or the dataset root. Video:
    ``video/<task folder>/<video>`` (default prefix ``video/``). The answer text is mapped to its candidate's letter.

    ``revision``: ``"main"`` (the original layout, :data:`MVBENCH_TASKS`) or ``"video"`` (the repository's
    ``video`` revision, :data:`MVBENCH_VIDEO_REVISION_TASKS`: clipped rows point at their cut file
    ``<id>_<start>_<end>.mp4``, found under ``video_root`` when given). Default: ``"video"`` when
    ``video_root`` holds ``<prefix>star/Charades_segment``, else ``"main"``.
    """
    prefix = _prefix(video_prefix, "video/")
    if revision is None:
        segment_dir = Path(video_root) / f"{prefix}star/Charades_segment" if video_root is not None else None
        revision = "video" if segment_dir is not None and segment_dir.is_dir() else "main"
    if revision not in ("main", "video"):
        raise BenchmarkFormatError(f"MVBench revision {revision!r}: expected 'main' or 'video'")
    records = []
    for file in files_in(src, ["*.json", "json/*.json"]):
        task = file.stem
        if revision == "video":
            folder, data_type, segmented = MVBENCH_VIDEO_REVISION_TASKS.get(task, (task, "video", False))
        else:
            (folder, data_type), segmented = MVBENCH_TASKS.get(task, (task, "video")), False
        for i, (where, row) in enumerate(read_table(file)):
            meta = {"task": task, "data_type": data_type, "revision": revision}
            for key in ("start", "end"):
                if row.get(key) is not None:
                    meta[key] = row[key]
            video = str(require(row, "video", where))
            if segmented and row.get("start") is not None and row.get("end") is not None:
                found = None
                if video_root is not None:
                    found = _find_segment(Path(video_root) / f"{prefix}{folder}", video, row["start"], row["end"])
                video = found or segment_name(video, row["start"], row["end"])
                meta["source_video"] = str(row["video"])
            records.append(
                _mc_record(
                    "mvbench",
                    f"mvbench/{task}/{i}",
                    f"{prefix}{folder}/{video}",
                    str(require(row, "question", where)),
                    list(require(row, "candidates", where)),
                    require(row, "answer", where, allow_empty=True),
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


VIDEOMMMU_TRACKS = ("Perception", "Comprehension", "Adaptation")


def _videommmu_rows(file: Path) -> list[tuple[str, dict[str, Any], str | None]]:
    """``(location, row, track)`` of a Video-MMMU file: rows as a list (parquet, JSON list, JSONL), or the
    official JSON that nests them under the split name and string indices: ``{"Perception": {"0": {...}}}``."""
    data = read_json(file) if file.suffix.lower() == ".json" else None
    if not isinstance(data, dict):
        return [(where, row, None) for where, row in read_table(file)]
    rows = []
    for split, items in data.items():
        if isinstance(items, list):
            entries = list(enumerate(items))
        elif isinstance(items, dict):
            entries = list(items.items())
        else:
            raise BenchmarkFormatError(
                f"{file}[{split!r}]: expected the rows of split {split!r} as an object of index -> question "
                f"(or a list), got {type(items).__name__}"
            )
        for index, row in entries:
            where = f"{file}[{split!r}][{index!r}]"
            if not isinstance(row, dict):
                raise BenchmarkFormatError(f"{where}: expected a JSON object per question, got {type(row).__name__}")
            rows.append((where, row, split if split in VIDEOMMMU_TRACKS else None))
    return rows


def convert_videommmu(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
    track: str | None = None,
) -> list[dict]:
    """Video-MMMU (``lmms-lab/VideoMMMU``; tracks Perception / Comprehension / Adaptation, one parquet each,
    the same rows as a JSON list, or the official JSON nesting them under the split name and string indices,
    ``{"Perception": {"0": {...}}}``): ``id`` (``<split>_<Subject>_<n>``), ``question``, ``options``, ``answer``,
    ``question_type`` (``multiple-choice`` or ``open``). Open answers that are plain numbers become
    ``numerical``, other open answers ``free-form``. Video: ``<subject folder>/<id>.mp4`` (default prefix
    empty). ``track`` is recorded per record; by default it is taken from a parent folder named after a track.
    """
    prefix = _prefix(video_prefix, "")
    records = []
    for file in files_in(src, ["**/*.parquet", "**/*.json", "**/*.jsonl"]):
        file_track = track or next((p for p in file.parts if p in VIDEOMMMU_TRACKS), None)
        for where, row, row_track in _videommmu_rows(file):
            this_track = track or row_track or file_track
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
    prefix = _prefix(video_prefix, "video/")
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
                record = _mc_record(
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
    return _finish(records, video_root, skip_missing)


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
    prefix = _prefix(video_prefix, "videos/")
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
                _mc_record(
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
    return _finish(records, video_root, skip_missing)


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
    prefix = _prefix(video_prefix, "videos/")
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
                _mc_record(
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
    return _finish(records, video_root, skip_missing)


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
    prefix = _prefix(video_prefix, "")
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
                _mc_record(
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
    return _finish(records, video_root, skip_missing)


# ------------------------------------------------------------------------------------- SciVideoBench


def convert_scivideobench(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
) -> list[dict]:
    """SciVideoBench (``groundmore/scivideobench``, ``scivideobench_1k.jsonl``; lmms-eval task
    ``scivideobench``): ``video_id, question_id, question, options`` (an object letter -> text, A…J, or a
    list), ``answer`` (a letter), ``question_type, discipline, subject`` (+ ``video_duration``,
    ``timestamp_breakdown``). Video: ``jove_<video_id>.mp4`` (default prefix empty).
    """
    prefix = _prefix(video_prefix, "")
    records = []
    for file in files_in(src, ["*.jsonl", "*.json", "*.parquet"]):
        seen: dict[str, int] = {}
        for where, row in read_table(file):
            vid = str(require(row, "video_id", where))
            qid = str(row.get("question_id") if row.get("question_id") is not None else "")
            if not qid:
                qid = str(seen.setdefault(vid, 0))
                seen[vid] += 1
            options = require(row, "options", where)
            if isinstance(options, dict):
                keys = sorted(options)
                if keys != list(LETTERS[: len(keys)]):
                    raise BenchmarkFormatError(f"{where}: option keys {keys} are not consecutive letters from A")
                options = [options[k] for k in keys]
            elif not isinstance(options, list):
                raise BenchmarkFormatError(
                    f"{where}: 'options' must be an object letter -> text or a list, got {type(options).__name__}"
                )
            meta = {k: row.get(k) for k in ("question_type", "discipline", "subject", "video_duration")}
            records.append(
                _mc_record(
                    "scivideobench",
                    f"scivideobench/{vid}/{qid}",
                    f"{prefix}jove_{vid}.mp4",
                    str(require(row, "question", where)),
                    options,
                    require(row, "answer", where, allow_empty=True),
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
    "videomathqa": convert_videomathqa,
    "minerva": convert_minerva,
    "scivideobench": convert_scivideobench,
}

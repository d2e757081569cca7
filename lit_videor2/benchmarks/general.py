"""Converters of the general video-understanding benchmarks: MVBench, Video-MME, TempCompass.

Every converter follows :mod:`lit_videor2.benchmarks.adapters` (signature, ``video_prefix``, ``video_root``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from lit_videor2.benchmarks.common import (
    BenchmarkFormatError,
    checked_records,
    files_in,
    mc_record,
    read_json,
    read_table,
    require,
    split_question_options,
    video_prefix_or,
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
    prefix = video_prefix_or(video_prefix, "video/")
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
                mc_record(
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
    return checked_records(records, video_root, skip_missing)


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
    prefix = video_prefix_or(video_prefix, "data/")
    records = []
    for file in files_in(src, ["*.parquet", "*.json", "*.jsonl"]):
        for where, row in read_table(file):
            qid = str(require(row, "question_id", where))
            meta = {k: row.get(k) for k in ("duration", "domain", "sub_category", "task_type", "video_id", "url")}
            records.append(
                mc_record(
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
    return checked_records(records, video_root, skip_missing)


# ---------------------------------------------------------------------------------------- TempCompass


def _tempcompass_row(where: str, rid: str, video_id: str, dim: str, item: dict, prefix: str) -> dict:
    stem, options = split_question_options(str(require(item, "question", where)))
    if not options:
        raise BenchmarkFormatError(f"{where}: TempCompass multi-choice question without 'A. ...' option lines")
    return mc_record(
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
    prefix = video_prefix_or(video_prefix, "videos/")
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
    return checked_records(records, video_root, skip_missing)

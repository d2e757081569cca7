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
    files_in,
    mc_record,
    parse_plain_number,
    read_json,
    read_table,
    require,
    split_question_options,
    video_prefix_or,
)
from lit_videor2.benchmarks.rows import Skips, convert_rows, finish, source_meta

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


#: The tasks whose clips the ``video`` revision ships pre-cut (``<id>_<start>_<end>.mp4``).
MVBENCH_SEGMENTED_TASKS = frozenset(task for task, (_, _, cut) in MVBENCH_VIDEO_REVISION_TASKS.items() if cut)
MVBENCH_REVISIONS = ("main", "video")
_MVBENCH_PREFIX = {"main": "video/", "video": ""}


def names_cut_clip(task: str, row: dict[str, Any]) -> bool:
    """Whether the row's ``video`` names a pre-cut clip of the ``video`` revision: ``<id>_<start>_<end>.mp4`` in a
    task that revision cuts, with the row's own ``start``/``end`` when it has them. Only that revision's JSON
    names its clips so; the ``main`` revision names the whole video and gives ``start``/``end`` beside it."""
    video = row.get("video")
    if task not in MVBENCH_SEGMENTED_TASKS or not isinstance(video, str):
        return False
    m = _SEGMENT_RE.match(Path(video).stem)
    if m is None:
        return False
    if row.get("start") is None or row.get("end") is None:
        return True
    try:
        return math.isclose(float(m.group("start")), float(row["start"]), abs_tol=1e-6) and math.isclose(
            float(m.group("end")), float(row["end"]), abs_tol=1e-6
        )
    except (TypeError, ValueError):
        return False


def mvbench_revision(
    tables: list[tuple[Path, list[tuple[str, dict]]]],
    revision: str | None,
    video_root: str | Path | None,
    video_prefix: str | None,
    skips: Skips,
) -> str:
    """The revision the rows come from: rows naming pre-cut clips (:func:`names_cut_clip`) say ``video``, and then
    ``revision="main"`` is an error naming the row. Without ``revision``: the rows' word, else a ``video_root``
    holding ``star/Charades_segment`` (``video``), else ``main``; the choice and its reason go to ``skips`` as a
    note (printed on stderr)."""
    if revision is not None and revision not in MVBENCH_REVISIONS:
        raise BenchmarkFormatError(f"MVBench revision {revision!r}: expected one of {list(MVBENCH_REVISIONS)}")
    cut = next(
        ((where, row["video"]) for file, rows in tables for where, row in rows if names_cut_clip(file.stem, row)), None
    )
    if cut is not None:
        where, video = cut
        if revision == "main":
            raise BenchmarkFormatError(
                f"{where}: field 'video' {video!r} names a pre-cut clip <id>_<start>_<end>.mp4 of MVBench's `video` "
                "revision, but --revision main was given; pass --revision video (or leave it out)"
            )
        if revision is None:
            skips.note(
                f"MVBench revision 'video' inferred: {where} names the pre-cut clip {video!r}; video paths are "
                "written relative to the root of that revision's download (--revision video says so)"
            )
        return "video"
    if revision is not None:
        return revision
    if video_root is not None:
        segments = Path(video_root) / video_prefix_or(video_prefix, _MVBENCH_PREFIX["video"]) / "star/Charades_segment"
        if segments.is_dir():
            skips.note(f"MVBench revision 'video' inferred: {segments} exists (--revision video says so)")
            return "video"
    skips.note(
        "MVBench revision 'main' assumed: no row names a pre-cut clip <id>_<start>_<end>.mp4; video paths are "
        "written under video/ (pass --revision video for the `video` revision's download)"
    )
    return "main"


def _mvbench_video(
    task: str, row: dict, where: str, revision: str, prefix: str, video_root: str | Path | None
) -> tuple[str, dict]:
    """The video path of one MVBench row, and the metadata that says how it was found."""
    if revision == "video":
        folder, data_type, cut = MVBENCH_VIDEO_REVISION_TASKS.get(task, (task, "video", False))
    else:
        (folder, data_type), cut = MVBENCH_TASKS.get(task, (task, "video")), False
    meta: dict[str, Any] = {"task": task, "data_type": data_type, "revision": revision}
    video = str(require(row, "video", where))
    if cut and not names_cut_clip(task, row) and row.get("start") is not None and row.get("end") is not None:
        for key in ("start", "end"):
            if parse_plain_number(row[key]) is None:
                raise BenchmarkFormatError(f"{where}: field {key!r} {row[key]!r} is not a number of seconds")
        found = None
        if video_root is not None:
            found = _find_segment(Path(video_root) / f"{prefix}{folder}", video, row["start"], row["end"])
        video = found or segment_name(video, row["start"], row["end"])
    return f"{prefix}{folder}/{video}", meta


def convert_mvbench(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
    revision: str | None = None,
    skips: Skips | None = None,
) -> list[dict]:
    """MVBench (``OpenGVLab/MVBench``): ``json/<task>.json``, each a list of
    ``{"video", "question", "candidates": [...], "answer": "<candidate text>"}`` (+ ``start``/``end`` seconds
    for the clipped tasks). ``src``: one task file, the ``json/`` folder or the dataset root. The answer text is
    mapped to its candidate's letter; ids are ``mvbench/<task>/<row index>``.

    ``revision`` (see :func:`mvbench_revision`): ``"main"``, the original layout (:data:`MVBENCH_TASKS`), videos
    under ``video/<task folder>/<video>`` (default prefix ``video/``); or ``"video"``, the repository's ``video``
    revision (:data:`MVBENCH_VIDEO_REVISION_TASKS`), whose task folders sit at the download root (default prefix
    empty): ``star/Charades_segment/<id>_<start>_<end>.mp4``. Rows of the ``main`` JSON converted for the
    ``video`` revision point at their cut file, found under ``video_root`` when given.
    """
    skips = skips if skips is not None else Skips()
    tables = [(file, read_table(file)) for file in files_in(src, ["*.json", "json/*.json"])]
    revision = mvbench_revision(tables, revision, video_root, video_prefix, skips)
    prefix = video_prefix_or(video_prefix, _MVBENCH_PREFIX[revision])
    used = ("question", "candidates", "answer")

    def build(where: str, item: tuple[str, int, dict]) -> dict:
        task, index, row = item
        video, meta = _mvbench_video(task, row, where, revision, prefix, video_root)
        return mc_record(
            "mvbench",
            f"mvbench/{task}/{index}",
            video,
            require(row, "question", where),
            require(row, "candidates", where),
            require(row, "answer", where, allow_empty=True),
            where,
            source_meta(row, used) | meta,
            options_field="candidates",
        )

    converted = []
    for file, rows in tables:
        items = ((where, (file.stem, i, row)) for i, (where, row) in enumerate(rows))
        converted += convert_rows(items, build, skips)
    return finish(converted, skips, video_root, skip_missing)


# ------------------------------------------------------------------------------------------ VideoMME


def convert_videomme(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
    skips: Skips | None = None,
) -> list[dict]:
    """Video-MME (``lmms-lab/Video-MME``, ``videomme/test-*.parquet``, or the same rows as JSON/JSONL):
    ``video_id, duration, domain, sub_category, url, videoID, question_id, task_type, question,
    options: ["A. ...", ...], answer: "B"``. Video: ``data/<videoID>.mp4`` (default prefix ``data/``).
    """
    prefix = video_prefix_or(video_prefix, "data/")
    skips = skips if skips is not None else Skips()

    def build(where: str, row: dict) -> dict:
        return mc_record(
            "videomme",
            f"videomme/{require(row, 'question_id', where)}",
            f"{prefix}{require(row, 'videoID', where)}.mp4",
            require(row, "question", where),
            require(row, "options", where),
            require(row, "answer", where, allow_empty=True),
            where,
            source_meta(row, ("question", "options", "answer")),
        )

    converted = []
    for file in files_in(src, ["*.parquet", "*.json", "*.jsonl"]):
        converted += convert_rows(read_table(file), build, skips)
    return finish(converted, skips, video_root, skip_missing)


# ---------------------------------------------------------------------------------------- TempCompass


def _tempcompass_nested(file: Path, data: dict) -> list[tuple[str, dict]]:
    """The rows of the official ``{video_id: {dim: [question, ...]}}`` file, each with its ``video_id`` and ``dim``."""
    rows = []
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
                rows.append((where, {"video_id": video_id, "dim": dim, **item}))
    return rows


def convert_tempcompass(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
    skips: Skips | None = None,
) -> list[dict]:
    """TempCompass multi-choice task. Two layouts:

    - official repo ``questions/multi-choice.json``: ``{video_id: {dim: [{"question": "...\\nA. x\\nB. y",
      "answer": "A. x"}]}}``;
    - flat rows (``lmms-lab/TempCompass`` ``multi-choice`` parquet or JSON list): ``video_id, dim, question,
      answer``.

    The options are the ``A. ...`` lines inside the question. Ids are ``tempcompass/<video_id>/<dim>/<n>``, ``n``
    counting the questions of that video and dimension in file order. Video: ``videos/<video_id>.mp4`` (default
    prefix ``videos/``).
    """
    prefix = video_prefix_or(video_prefix, "videos/")
    skips = skips if skips is not None else Skips()
    counters: dict[tuple[str, str], int] = {}

    def build(where: str, row: dict) -> dict:
        video_id, dim = str(require(row, "video_id", where)), str(require(row, "dim", where))
        i = counters[(video_id, dim)] = counters.get((video_id, dim), -1) + 1
        stem, options = split_question_options(str(require(row, "question", where)))
        if not options:
            raise BenchmarkFormatError(f"{where}: field 'question' has no 'A. ...' option lines (multi-choice task)")
        return mc_record(
            "tempcompass",
            f"tempcompass/{video_id}/{dim}/{i}",
            f"{prefix}{video_id}.mp4",
            stem,
            options,
            require(row, "answer", where, allow_empty=True),
            where,
            source_meta(row, ("question", "answer")),
        )

    converted = []
    for file in files_in(src, ["*.json", "*.jsonl", "*.parquet"]):
        data = read_json(file) if file.suffix.lower() == ".json" else None
        rows = _tempcompass_nested(file, data) if isinstance(data, dict) else read_table(file)
        converted += convert_rows(rows, build, skips)
    return finish(converted, skips, video_root, skip_missing)

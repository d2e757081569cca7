"""Converters of the expert-knowledge benchmarks: Video-MMMU, MMVU, SciVideoBench.

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
    open_problem_type,
    read_json,
    read_table,
    require,
    video_prefix_or,
)
from lit_videor2.benchmarks.rows import Skips, convert_rows, finish, source_meta

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
    skips: Skips | None = None,
) -> list[dict]:
    """Video-MMMU (``lmms-lab/VideoMMMU``; tracks Perception / Comprehension / Adaptation, one parquet each,
    the same rows as a JSON list, or the official JSON nesting them under the split name and string indices,
    ``{"Perception": {"0": {...}}}``): ``id`` (``<split>_<Subject>_<n>``), ``question``, ``options``, ``answer``,
    ``question_type`` (``multiple-choice`` or ``open``). Open answers that are plain numbers become
    ``numerical``, other open answers ``free-form``. Video: ``<subject folder>/<id>.mp4`` (default prefix
    empty). ``track`` is recorded per record; by default it is taken from a parent folder named after a track.
    """
    prefix = video_prefix_or(video_prefix, "")
    skips = skips if skips is not None else Skips()

    def build(where: str, item: tuple[dict, str | None]) -> dict:
        row, this_track = item
        rid = str(require(row, "id", where))
        m = _VIDEOMMMU_ID_RE.match(rid)
        if m is None or m.group("subject") not in _VIDEOMMMU_FOLDER_OF:
            raise BenchmarkFormatError(
                f"{where}: field 'id' {rid!r} is not '<split>_<Subject>_<n>' with a known subject "
                f"({sorted(_VIDEOMMMU_FOLDER_OF)})"
            )
        video = f"{prefix}{_VIDEOMMMU_FOLDER_OF[m.group('subject')]}/{rid}.mp4"
        qtype = str(row.get("question_type") or "multiple-choice").lower()
        meta = source_meta(row, ("question", "options", "answer")) | {
            "track": this_track,
            "subject": m.group("subject"),
            "source_question_type": qtype,
        }
        question = require(row, "question", where)
        answer = require(row, "answer", where, allow_empty=True)
        if qtype in ("multiple-choice", "perception"):
            options = row.get("options") or []
            return mc_record("videommmu", f"videommmu/{rid}", video, question, options, answer, where, meta)
        if qtype in ("open", "open-ended"):
            return open_record("videommmu", f"videommmu/{rid}", video, question, answer, where, meta)
        raise BenchmarkFormatError(
            f"{where}: field 'question_type' {qtype!r} is unknown (expected multiple-choice/open)"
        )

    converted = []
    for file in files_in(src, ["**/*.parquet", "**/*.json", "**/*.jsonl"]):
        file_track = track or next((p for p in file.parts if p in VIDEOMMMU_TRACKS), None)
        rows = [(where, (row, track or row_track or file_track)) for where, row, row_track in _videommmu_rows(file)]
        converted += convert_rows(rows, build, skips)
    return finish(converted, skips, video_root, skip_missing)


def open_record(benchmark: str, rid: str, video: str, question: Any, answer: Any, where: str, meta: dict) -> dict:
    """An open question's record: ``numerical`` when the answer is a plain number, else ``free-form``.

    An empty question or answer raises naming ``where`` and the field."""
    if not str(question).strip():
        raise BenchmarkFormatError(f"{where}: field 'question' is empty")
    if not str(answer).strip():
        raise BenchmarkFormatError(f"{where}: answer is empty (open question)")
    ptype, value = open_problem_type(answer)
    return make_record(
        benchmark=benchmark,
        record_id=rid,
        video=video,
        question=str(question),
        problem_type=ptype,
        answer=value,
        meta=meta,
    )


# --------------------------------------------------------------------------------------------- MMVU

_HF_RESOLVE_RE = re.compile(r"^https?://[^ ]*/resolve/[^/]+/(?P<path>.+)$")


def convert_mmvu(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
    skips: Skips | None = None,
) -> list[dict]:
    """MMVU (``yale-nlp/MMVU`` ``validation.json``): ``id, video`` (a ``…/resolve/main/videos/<Subject>/<n>.mp4``
    URL), ``question, choices: {"A": ..., "E": ...}`` (empty strings for open questions), ``answer`` (a letter,
    or free text), ``question_type`` (``multiple-choice`` / ``open-ended``), ``metadata.subject``.
    Video: the path inside the dataset repo, ``videos/<Subject>/<n>.mp4`` (default prefix empty); a
    ``video_path`` field (lmms-eval copy) is used as is.
    """
    prefix = video_prefix_or(video_prefix, "")
    skips = skips if skips is not None else Skips()

    def build(where: str, row: dict) -> dict:
        rid = str(require(row, "id", where))
        raw_video = str(row.get("video_path") or require(row, "video", where))
        m = _HF_RESOLVE_RE.match(raw_video)
        video = prefix + (m.group("path") if m else raw_video.lstrip("/"))
        qtype = str(require(row, "question_type", where)).lower()
        meta_src = row.get("metadata") if isinstance(row.get("metadata"), dict) else {}
        meta = source_meta(row, ("question", "choices", "answer")) | {
            "subject": meta_src.get("subject"),
            "source_question_type": qtype,
        }
        question = require(row, "question", where)
        answer = require(row, "answer", where, allow_empty=True)
        if qtype == "multiple-choice":
            choices = require(row, "choices", where)
            if not isinstance(choices, dict):
                raise BenchmarkFormatError(f"{where}: field 'choices' must be an object letter -> text")
            keys = [k for k in sorted(choices) if str(choices[k] or "").strip()]
            if keys != list(LETTERS[: len(keys)]):
                raise BenchmarkFormatError(
                    f"{where}: field 'choices': non-empty choices {keys} are not consecutive letters from A"
                )
            options = [choices[k] for k in keys]
            return mc_record(
                "mmvu", f"mmvu/{rid}", video, question, options, answer, where, meta, options_field="choices"
            )
        if qtype == "open-ended":
            return open_record("mmvu", f"mmvu/{rid}", video, question, answer, where, meta)
        raise BenchmarkFormatError(
            f"{where}: field 'question_type' {qtype!r} is unknown (expected multiple-choice/open-ended)"
        )

    converted = []
    for file in files_in(src, ["*.json", "*.jsonl", "*.parquet"]):
        converted += convert_rows(read_table(file), build, skips)
    return finish(converted, skips, video_root, skip_missing)


# ------------------------------------------------------------------------------------- SciVideoBench


def _slug(text: Any) -> str:
    """``"Conceptual Reasoning"`` -> ``"conceptual_reasoning"`` (an id part: lower case, words joined by ``_``)."""
    return "_".join(re.findall(r"[a-z0-9]+", str(text).lower()))


def scivideobench_id(row: dict[str, Any], where: str, fallback: int) -> str:
    """``scivideobench/<video_id>/<question type>/<question_id>``, e.g. ``scivideobench/65238/conceptual_reasoning/1``.

    The published file reuses a ``question_id`` on one video for questions of different types (a conceptual and a
    hypothetical question 1), so the type is part of the id: the three source fields tell its 1,000 rows apart,
    and the id does not depend on the other rows or their order. A row without ``question_type`` leaves that part
    out; a row without ``question_id`` uses ``fallback`` (its position among its video's rows).
    """
    vid = str(require(row, "video_id", where)).strip()
    qid = row.get("question_id")
    qid = str(qid).strip() if qid is not None and str(qid).strip() else str(fallback)
    qtype = _slug(row.get("question_type") or "")
    return "/".join(["scivideobench", vid, *([qtype] if qtype else []), qid])


def _scivideobench_options(options: Any, where: str) -> list[Any]:
    """``options`` as a list: an object letter -> text (A…J, in letter order) or a list."""
    if isinstance(options, dict):
        keys = sorted(k for k, v in options.items() if v is not None)  # parquet structs pad with nulls
        if keys != list(LETTERS[: len(keys)]):
            raise BenchmarkFormatError(f"{where}: field 'options': keys {keys} are not consecutive letters from A")
        return [options[k] for k in keys]
    if isinstance(options, list):
        return options
    raise BenchmarkFormatError(
        f"{where}: field 'options' must be an object letter -> text or a list, got {type(options).__name__}"
    )


def convert_scivideobench(
    src: str | Path,
    *,
    video_root: str | Path | None = None,
    video_prefix: str | None = None,
    skip_missing: bool = False,
    skips: Skips | None = None,
) -> list[dict]:
    """SciVideoBench (``groundmore/scivideobench``, ``scivideobench_1k.jsonl``; lmms-eval task ``scivideobench``):
    ``video_id, question_id, question, options`` (an object letter -> text, A…J, or a list), ``answer`` (a
    letter), ``question_type`` (+ ``category``, ``discipline``, ``subject``, ``video_duration``, ... kept as
    metadata). Ids: :func:`scivideobench_id`. Video: ``jove_<video_id>.mp4`` (default prefix empty).
    """
    prefix = video_prefix_or(video_prefix, "")
    skips = skips if skips is not None else Skips()
    per_video: dict[str, int] = {}  # rows seen per video (the id of a row without question_id)

    def build(where: str, row: dict) -> dict:
        vid = str(require(row, "video_id", where)).strip()
        n = per_video[vid] = per_video.get(vid, -1) + 1
        return mc_record(
            "scivideobench",
            scivideobench_id(row, where, n),
            f"{prefix}jove_{vid}.mp4",
            require(row, "question", where),
            _scivideobench_options(require(row, "options", where), where),
            require(row, "answer", where, allow_empty=True),
            where,
            source_meta(row, ("question", "options", "answer")),
        )

    converted = []
    for file in files_in(src, ["*.jsonl", "*.json", "*.parquet"]):
        converted += convert_rows(read_table(file), build, skips)
    return finish(converted, skips, video_root, skip_missing)

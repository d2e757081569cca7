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
    checked_records,
    files_in,
    make_record,
    mc_record,
    open_problem_type,
    read_json,
    read_table,
    require,
    video_prefix_or,
)

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
    prefix = video_prefix_or(video_prefix, "")
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
                    mc_record(
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
    return checked_records(records, video_root, skip_missing)


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
    prefix = video_prefix_or(video_prefix, "")
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
                    mc_record("mmvu", f"mmvu/{rid}", video, question, [choices[k] for k in keys], answer, where, meta)
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
    return checked_records(records, video_root, skip_missing)


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
    prefix = video_prefix_or(video_prefix, "")
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
                mc_record(
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
    return checked_records(records, video_root, skip_missing)

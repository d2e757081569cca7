"""Read annotation files (JSON list or JSONL) in the Video-R2 or Video-R1 schema into :class:`VideoRecord`.

Video-R2 (reference)::

    {"video": "clips/x.mp4",
     "conversations": [{"from": "human", "value": "<video>\\nWhat happens first?\\nA. ...\\nB. ..."},
                       {"from": "gpt", "value": "<think>At 00:03 ...</think>\\n<answer>B</answer>"}],
     "temporal_grounding": {"00:03": "A red circle appears."},
     "problem_type": "multiple choice"}          # optional, as are "id" and "options"

Video-R1::

    {"problem_id": 7, "problem": "What happens first?", "data_type": "video", "problem_type": "multiple choice",
     "options": ["A. ...", "B. ..."], "solution": "<answer>B</answer>", "path": "./clips/x.mp4",
     "process": "<think>...</think>"}           # "process" optional (SFT reasoning)

Image-only records (``data_type: image`` or an ``image`` field without a video) are rejected with a
message naming the record: this project trains and evaluates on video.

Every bad record raises :class:`RecordError` naming the file, the line (JSONL) or index (JSON) and the record id
when it has one; ``on_error='skip'`` counts and logs it instead. Checked: the JSON itself, UTF-8 (a record
holding bytes that are not UTF-8 is that record's error, not the whole file's), field types (``options`` must be
a list, never a string split into characters or a number; the question, ``process``, ``solution`` and video path
must be strings), and an empty question.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lit_videor2.data.records import VideoRecord, question_with_options
from lit_videor2.errors import UserError
from lit_videor2.problem_types import UnknownProblemTypeError, canonical_problem_type
from lit_videor2.text import strip_answer_tags

log = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]

_OPTION_LINE_RE = re.compile(r"^\s*\(?([A-Z])[.)]\s+\S")


class RecordError(UserError, ValueError):
    """A bad annotation record; the message names the file and line or record index, and the record id."""


class AnnotationFileNotFoundError(UserError, FileNotFoundError):
    """An annotation file that does not exist."""


@dataclass
class LoadReport:
    """Records read from one file and what was skipped (``on_error='skip'``)."""

    records: list[VideoRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def normalise_problem_type(value: Any, where: str) -> str | None:
    """The canonical problem type of a record (:mod:`lit_videor2.problem_types`); a bad one names the record."""
    try:
        return canonical_problem_type(value)
    except UnknownProblemTypeError as err:
        raise RecordError(f"{where}: {err}") from None


def options_from_question(question: str) -> list[str]:
    """Option lines (``A. red``, ``(B) blue``) found in a question text."""
    return [line.strip() for line in question.splitlines() if _OPTION_LINE_RE.match(line)]


def _require(raw: dict, key: str, where: str) -> Any:
    if key not in raw or raw[key] in (None, ""):
        raise RecordError(f"{where}: missing required field {key!r} (fields present: {sorted(raw)})")
    return raw[key]


def _text(value: Any, key: str, where: str, *, allow_number: bool = False) -> str:
    """A field that must hold text (numbers too when ``allow_number``); anything else is the record's error."""
    if isinstance(value, str):
        return value
    if allow_number and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise RecordError(f"{where}: field {key!r} must be a string, got {type(value).__name__} {_short(value)}")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _options(value: Any, where: str) -> list[str] | None:
    """The ``options`` field as a list of strings; None when absent. A string or a number is an error."""
    if value is None or value == []:
        return None
    if not isinstance(value, list):
        hint = " (a string is never split into characters: write a JSON list)" if isinstance(value, str) else ""
        raise RecordError(
            f'{where}: field \'options\' must be a list of option strings such as ["A. red", "B. blue"], got '
            f"{type(value).__name__} {_short(value)}{hint}"
        )
    return [_text(o, f"options[{i}]", where, allow_number=True) for i, o in enumerate(value)]


def _question(text: str, key: str, where: str) -> str:
    if not text.strip():
        raise RecordError(f"{where}: empty question in {key!r}")
    return text


def _has_bad_bytes(value: Any) -> str | None:
    """Path of the first string holding bytes that were not UTF-8 (decoded as lone surrogates), or None."""
    if isinstance(value, str):
        return "" if any("\udc80" <= ch <= "\udcff" for ch in value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        if isinstance(k, str) and _has_bad_bytes(k) is not None:
            return f"[{k.encode('utf-8', 'surrogateescape')!r}]"
        inner = _has_bad_bytes(v)
        if inner is not None:
            return f"[{k!r}]{inner}" if isinstance(k, str) else f"[{k}]{inner}"
    return None


def _record_id(raw: Any) -> Any:
    if isinstance(raw, dict):
        for key in ("id", "problem_id"):
            if isinstance(raw.get(key), (str, int)) and not isinstance(raw.get(key), bool):
                return raw[key]
    return None


def _reject_image(raw: dict, where: str) -> None:
    if str(raw.get("data_type", "video")).lower() == "image" or (
        "image" in raw and not (raw.get("video") or raw.get("path"))
    ):
        raise RecordError(f"{where}: image-only record; lit_videor2 trains and evaluates on videos only")


def _from_video_r2(raw: dict, where: str, default_id: str) -> VideoRecord:
    video = _require(raw, "video", where)
    convs = _require(raw, "conversations", where)
    if not isinstance(convs, list) or not all(isinstance(c, dict) and "value" in c for c in convs):
        raise RecordError(f"{where}: 'conversations' must be a list of {{'from', 'value'}} turns")
    for i, c in enumerate(convs):
        _text(c["value"], f"conversations[{i}].value", where)
    human = [c["value"] for c in convs if c.get("from") in ("human", "user")]
    gpt = [c["value"] for c in convs if c.get("from") in ("gpt", "assistant")]
    if not human:
        raise RecordError(f"{where}: 'conversations' has no human turn")
    question = _question(re.sub(r"<video>\s*", "", human[0]).strip(), "conversations[0].value", where)
    solution = gpt[0].strip() if gpt else None
    answer = raw.get("answer")
    if answer is None:
        if solution is None:
            raise RecordError(f"{where}: no answer: neither an 'answer' field nor a gpt turn with <answer>")
        answer = strip_answer_tags(solution)
    answer = _text(answer, "answer", where, allow_number=True)
    tg = _grounding(raw, where)
    options = _options(raw.get("options"), where) or options_from_question(question)
    known = {"id", "video", "conversations", "temporal_grounding", "problem_type", "options", "answer"}
    return VideoRecord(
        id=str(raw.get("id", default_id)),
        video=_text(video, "video", where),
        question=question,
        answer=strip_answer_tags(answer),
        problem_type=normalise_problem_type(raw.get("problem_type"), where),
        options=[str(o) for o in options],
        solution=solution,
        temporal_grounding={str(k): v for k, v in tg.items()},
        source=where,
        extra={k: v for k, v in raw.items() if k not in known},
    )


def _grounding(raw: dict, where: str) -> dict:
    tg = raw.get("temporal_grounding") or {}
    if not isinstance(tg, dict):
        raise RecordError(
            f"{where}: 'temporal_grounding' must be an object of timestamp -> claim, got {type(tg).__name__}"
        )
    return tg


def _from_video_r1(raw: dict, where: str, default_id: str) -> VideoRecord:
    problem = _question(_text(_require(raw, "problem", where), "problem", where).strip(), "problem", where)
    solution = _text(_require(raw, "solution", where), "solution", where, allow_number=True)
    video = _text(_require(raw, "path", where), "path", where)
    options = _options(raw.get("options"), where) or []
    question = question_with_options(problem, options)
    process = raw.get("process")
    if process is not None:
        process = _text(process, "process", where)
    sft_target = f"{process.strip()}\n{solution.strip()}" if process else None
    tg = _grounding(raw, where)
    known = {
        "problem_id",
        "problem",
        "data_type",
        "problem_type",
        "options",
        "solution",
        "path",
        "process",
        "temporal_grounding",
    }
    return VideoRecord(
        id=str(raw.get("problem_id", raw.get("id", default_id))),
        video=str(video),
        question=question,
        answer=strip_answer_tags(solution),
        problem_type=normalise_problem_type(raw.get("problem_type"), where),
        options=options,
        solution=sft_target,
        temporal_grounding={str(k): v for k, v in tg.items()},
        source=where,
        extra={k: v for k, v in raw.items() if k not in known},
    )


def parse_record(raw: Any, where: str, default_id: str) -> VideoRecord:
    """Normalise one raw record of either schema; raise :class:`RecordError` naming ``where``."""
    if not isinstance(raw, dict):
        raise RecordError(f"{where}: a record must be a JSON object, got {type(raw).__name__}")
    source, rid = where, _record_id(raw)
    if rid is not None:
        where = f"{where} (id {rid!r})"  # errors name the record id; the record's source stays file:line
    bad = _has_bad_bytes(raw)
    if bad is not None:
        raise RecordError(f"{where}: field {bad or '(key)'} holds bytes that are not UTF-8; re-save the file as UTF-8")
    _reject_image(raw, where)
    if "conversations" in raw or "problem" in raw:
        record = (_from_video_r2 if "conversations" in raw else _from_video_r1)(raw, where, default_id)
        record.source = source
        return record
    raise RecordError(
        f"{where}: unknown schema: expected Video-R2 ('video', 'conversations') or Video-R1 ('problem', 'solution', "
        f"'path') fields, got {sorted(raw)}"
    )


def _iter_raw(path: Path) -> Iterator[tuple[str, Any]]:
    """Yield ``(location, raw record or exception)`` for every record in a JSON or JSONL file.

    Bytes that are not UTF-8 are decoded as lone surrogates (``surrogateescape``) so that only the records that
    hold them fail (:func:`parse_record` names the field), not the whole file.
    """
    text = path.read_bytes().decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    stripped = text.lstrip()
    if path.suffix == ".jsonl" or (stripped and not stripped.startswith("[")):
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as e:
                yield where, RecordError(f"{where}: malformed JSON line ({e.msg} at column {e.colno})")
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RecordError(f"{path}:{e.lineno}: malformed JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(data, list):
        raise RecordError(f"{path}: a JSON annotation file must hold a list of records, got {type(data).__name__}")
    for i, raw in enumerate(data):
        yield f"{path}[{i}]", raw


def load_records(path: str | Path, on_error: OnError = "raise") -> LoadReport:
    """Read every record of an annotation file.

    With ``on_error='raise'`` the first bad record raises :class:`RecordError` naming the file and the line
    (JSONL) or index (JSON). With ``'skip'`` bad records are counted in the report and logged as a warning.
    Duplicate ids are an error (evaluation resumes by id).
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationFileNotFoundError(f"annotation file not found: {path}")
    report = LoadReport()
    seen: dict[str, str] = {}
    for i, (where, raw) in enumerate(_iter_raw(path)):
        try:
            if isinstance(raw, Exception):
                raise raw
            try:
                rec = parse_record(raw, where, default_id=f"{path.stem}:{i}")
            except RecordError:
                raise
            except Exception as e:  # noqa: BLE001 - any surprise in one record is that record's error
                rid = _record_id(raw)
                at = f"{where} (id {rid!r})" if rid is not None else where
                raise RecordError(f"{at}: cannot read record ({type(e).__name__}: {e})") from e
            if rec.id in seen:
                raise RecordError(f"{where}: duplicate id {rec.id!r} (first at {seen[rec.id]})")
            seen[rec.id] = where
            report.records.append(rec)
        except RecordError as e:
            if on_error == "raise":
                raise
            report.skipped.append(str(e))
    if report.skipped:
        log.warning(
            "%s: skipped %d bad record(s) (on_error='skip'); first: %s", path, len(report.skipped), report.skipped[0]
        )
    return report

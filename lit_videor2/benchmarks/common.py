"""Shared pieces of the benchmark adapters: reading rows, options, answer mapping, building records.

Every adapter turns the rows of a public benchmark layout into Video-R2-schema records (the format
:func:`lit_videor2.data.schema.load_records` reads)::

    {"id": "videomme/001-1", "video": "data/fFjv93ACGo8.mp4",
     "conversations": [{"from": "human", "value": "<video>\\nWhat ...?\\nOptions:\\nA. ...\\nB. ..."},
                       {"from": "gpt", "value": "<answer>B</answer>"}],
     "problem_type": "multiple choice", "options": ["A. ...", "B. ..."], "answer": "B",
     "benchmark": "videomme", ...benchmark-specific metadata...}

The reasoning instruction is *not* added here: the collator appends it to every question.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from lit_videor2.data.records import question_with_options
from lit_videor2.errors import UserError

LETTERS = string.ascii_uppercase

_LETTER_PREFIX_RE = re.compile(r"^\s*\(?([A-Z])\s*[.):]\s*")
_OPTION_LINE_RE = re.compile(r"^\s*\(?([A-Z])[.):]\s*\S")
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


class BenchmarkFormatError(UserError, ValueError):
    """A benchmark file or row does not have the expected layout; the message names the file and row.

    A :class:`~lit_videor2.errors.UserError` (the command line prints it as one line) and a ``ValueError``."""


Row = tuple[str, dict[str, Any]]
"""``(location, row)``: location is ``file[index]`` or ``file:line`` (for error messages)."""


# ------------------------------------------------------------------------------------------ reading


def read_table(path: str | Path) -> list[Row]:
    """Rows of a ``.json`` (list of objects), ``.jsonl`` or ``.parquet`` file, each with its location.

    A JSON file holding an object (not a list) is an error here: adapters that expect a mapping read it
    with :func:`read_json`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"benchmark annotation file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(path)
    if suffix == ".jsonl":
        rows = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append((f"{path}:{lineno}", json.loads(line)))
            except json.JSONDecodeError as e:
                raise BenchmarkFormatError(f"{path}:{lineno}: malformed JSON line ({e.msg})") from None
        return [_check_object(r) for r in rows]
    data = read_json(path)
    if not isinstance(data, list):
        raise BenchmarkFormatError(
            f"{path}: expected a JSON list of question objects, got a {type(data).__name__}"
            + (f" with keys {sorted(data)[:5]}" if isinstance(data, dict) else "")
        )
    return [_check_object((f"{path}[{i}]", row)) for i, row in enumerate(data)]


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise BenchmarkFormatError(f"{path}:{e.lineno}: malformed JSON ({e.msg} at column {e.colno})") from None


def _check_object(row: Row) -> Row:
    where, raw = row
    if not isinstance(raw, dict):
        raise BenchmarkFormatError(f"{where}: expected a JSON object per question, got {type(raw).__name__}")
    return row


def _read_parquet(path: Path) -> list[Row]:
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover - pandas ships with the dev/eval environment
        raise ImportError(f"{path}: reading parquet needs pandas and pyarrow (`pip install pandas pyarrow`)") from e
    frame = pd.read_parquet(path)
    rows = []
    for i, rec in enumerate(frame.to_dict(orient="records")):
        rows.append((f"{path}[row {i}]", {k: _from_arrow(v) for k, v in rec.items()}))
    return rows


def _from_arrow(value: Any) -> Any:
    """numpy arrays / scalars from parquet -> plain Python lists / scalars (NaN -> None)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def files_in(src: str | Path, patterns: Sequence[str]) -> list[Path]:
    """``src`` itself when it is a file, else the files under it matching ``patterns`` (sorted)."""
    src = Path(src)
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise FileNotFoundError(f"benchmark source not found: {src}")
    found = sorted({p for pat in patterns for p in src.glob(pat) if p.is_file()})
    if not found:
        raise BenchmarkFormatError(f"{src}: no annotation files matching {list(patterns)}")
    return found


def require(row: dict[str, Any], key: str, where: str, *, allow_empty: bool = False) -> Any:
    """``row[key]``; a missing key is an error naming the row, the field and the fields present.

    A null value is reported as *null*, an empty string as *empty* (returned when ``allow_empty``).
    """
    if key not in row:
        raise BenchmarkFormatError(f"{where}: missing field {key!r} (fields present: {sorted(row)})")
    if row[key] is None:
        raise BenchmarkFormatError(f"{where}: field {key!r} is null")
    if isinstance(row[key], str) and not row[key].strip() and not allow_empty:
        raise BenchmarkFormatError(f"{where}: field {key!r} is empty")
    return row[key]


# ------------------------------------------------------------------------------------------ options


def strip_letter(option: str) -> str:
    """``"B. blue car"`` / ``"(B) blue car"`` -> ``"blue car"``."""
    return _LETTER_PREFIX_RE.sub("", str(option), count=1).strip()


def has_letter_prefixes(options: Sequence[str]) -> bool:
    """Whether every option already starts with its own letter in order (``A.``, ``B.``, ...)."""
    return bool(options) and all(
        (m := _LETTER_PREFIX_RE.match(str(o))) is not None and m.group(1) == LETTERS[i] for i, o in enumerate(options)
    )


def lettered_options(options: Sequence[Any], where: str, field: str = "options") -> list[str]:
    """Options as ``["A. x", "B. y", ...]``, whether or not the source already carries the letters.

    No options, or options that are not a list, is an error naming ``field`` (the source's name for them)."""
    if not isinstance(options, (list, tuple)):
        raise BenchmarkFormatError(f"{where}: field {field!r} must be a list of options, got {type(options).__name__}")
    opts = [str(o).strip() if o is not None else "" for o in options]
    if not opts:
        raise BenchmarkFormatError(f"{where}: field {field!r} is empty (a multiple-choice question needs options)")
    if len(opts) > len(LETTERS):
        raise BenchmarkFormatError(
            f"{where}: field {field!r} has {len(opts)} options; at most {len(LETTERS)} letters are supported"
        )
    if has_letter_prefixes(opts):
        return [f"{LETTERS[i]}. {strip_letter(o)}" for i, o in enumerate(opts)]
    return [f"{LETTERS[i]}. {o}" for i, o in enumerate(opts)]


def split_question_options(text: str) -> tuple[str, list[str]]:
    """A question with its option lines embedded (``"What ...?\\nA. x\\nB. y"``) -> ``(stem, ["A. x", ...])``."""
    stem, options = [], []
    for line in str(text).splitlines():
        if _OPTION_LINE_RE.match(line):
            options.append(line.strip())
        elif options:
            options[-1] += " " + line.strip()  # a wrapped option line
        else:
            stem.append(line)
    return "\n".join(stem).strip(), options


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", str(text).lower()).split())


def letter_for_answer(answer: Any, options: Sequence[str], where: str) -> str:
    """The option letter of a ground truth given as a letter, ``"B. text"`` or the option text.

    Numbers are option *text* (``3`` matches the option ``"3"``), never indices. Order: a bare letter (``B``, ``(B)``, ``B.``); ``"B. text"`` (the text must agree
    with option B); the exact option text; the option text after lower-casing and dropping punctuation.
    Anything else, or text that matches several options, raises naming the row.
    """
    n = len(options)
    bodies = [strip_letter(o) for o in options]
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
        raise BenchmarkFormatError(f"{where}: answer {answer!r} ({type(answer).__name__}) is not an option")
    text = str(answer).strip()
    if not text:
        raise BenchmarkFormatError(f"{where}: answer is empty (options {list(options)})")
    m = re.fullmatch(r"\(?([A-Za-z])\)?[.):]?", text)
    if m and not any(b == text for b in bodies):  # a bare letter, unless an option literally reads "a"
        letter = m.group(1).upper()
        if letter in LETTERS[:n]:
            return letter
        raise BenchmarkFormatError(f"{where}: answer letter {letter!r} but the options are {LETTERS[:n]}")
    m = _LETTER_PREFIX_RE.match(text)
    if m and m.group(1) in LETTERS[:n]:
        letter, rest = m.group(1), text[m.end() :].strip()
        if not rest or _norm(rest) == _norm(bodies[LETTERS.index(letter)]):
            return letter
    for key in (lambda s: s.strip(), _norm):
        hits = [i for i, b in enumerate(bodies) if key(b) == key(text)]
        if len(hits) == 1:
            return LETTERS[hits[0]]
        if len(hits) > 1:
            raise BenchmarkFormatError(f"{where}: answer {text!r} matches several options {[options[i] for i in hits]}")
    raise BenchmarkFormatError(
        f"{where}: answer {text!r} is neither an option letter nor one of the options {list(options)}"
    )


# ------------------------------------------------------------------------------------------ numbers


def parse_plain_number(value: Any) -> int | float | None:
    """A number given as a number or as plain numeric text (``"3"``, ``"2.50"``, ``"1,200"``); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None
    text = str(value).strip().replace(",", "")
    if not _NUMBER_RE.match(text):
        return None
    num = float(text)
    if not math.isfinite(num):
        return None
    return int(num) if re.fullmatch(r"[+-]?\d+", text) else num


def answer_text(value: Any) -> str:
    """The ground truth as written inside ``<answer>`` (a float keeps its decimal point: ``3.0``, as the
    numerical reward's decimal-point rule expects)."""
    return str(value).strip()


# ------------------------------------------------------------------------------------------ records


def make_record(
    *,
    benchmark: str,
    record_id: str,
    video: str,
    question: str,
    problem_type: str,
    answer: Any,
    options: Sequence[str] = (),
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One Video-R2-schema record. ``answer``: the letter (multiple choice), a number or free text."""
    question = question.strip()
    human = question_with_options(question, options)
    rec: dict[str, Any] = {
        "id": record_id,
        "video": video,
        "conversations": [
            {"from": "human", "value": f"<video>\n{human}"},
            {"from": "gpt", "value": f"<answer>{answer_text(answer)}</answer>"},
        ],
        "problem_type": problem_type,
        "options": list(options),
        "answer": answer,
        "benchmark": benchmark,
    }
    for k, v in (meta or {}).items():
        if v is not None and k not in rec:
            rec[k] = v
    return rec


def open_problem_type(answer: Any) -> tuple[str, Any]:
    """``("numerical", number)`` for an answer that is a plain number, else ``("free-form", text)``.

    Numeric text becomes an int when written without a decimal point and a float otherwise, so ``"3"``
    and ``"3.0"`` stay distinguishable (the numerical reward's decimal-point rule).
    """
    num = parse_plain_number(answer)
    if num is None:
        return "free-form", str(answer).strip()
    return "numerical", num


def iter_with_video_check(
    records: list[dict[str, Any]], video_root: str | Path | None, skip_missing: bool
) -> Iterator[dict[str, Any]]:
    """Records whose video exists under ``video_root`` (no check without a root).

    A missing video raises naming the record, or, with ``skip_missing``, the record is dropped. Common
    container variants of the same stem (``.mp4``/``.MP4``/``.mkv``/``.webm``/``.avi``) are accepted and the
    record is rewritten to the file that exists.
    """
    if video_root is None:
        yield from records
        return
    root = Path(video_root)
    for rec in records:
        path = root / rec["video"]
        if not path.exists():
            alt = next(
                (
                    path.with_suffix(s)
                    for s in (".mp4", ".MP4", ".mkv", ".webm", ".avi")
                    if path.with_suffix(s).exists()
                ),
                None,
            )
            if alt is None:
                if skip_missing:
                    continue
                raise BenchmarkFormatError(
                    f"record {rec['id']!r}: video {path} not found (pass --skip-missing to drop such records, "
                    f"or fix --video-root/--video-prefix)"
                )
            rec["video"] = str(alt.relative_to(root))
        yield rec


def video_prefix_or(video_prefix: str | None, default: str) -> str:
    """``video_prefix`` (or a layout's ``default``) ending in ``/`` unless empty."""
    p = default if video_prefix is None else video_prefix
    return p if not p or p.endswith("/") else p + "/"


def checked_records(records: list[dict], video_root: str | Path | None, skip_missing: bool) -> list[dict]:
    """The records whose videos exist under ``video_root`` (see :func:`iter_with_video_check`)."""
    return list(iter_with_video_check(records, video_root, skip_missing))


def mc_record(
    benchmark: str,
    rid: str,
    video: str,
    question: str,
    options: list,
    answer: Any,
    where: str,
    meta: dict[str, Any] | None = None,
    *,
    options_field: str = "options",
) -> dict[str, Any]:
    """A multiple-choice record: options lettered, the answer given as a letter or an option's text.

    An empty question, missing options or an answer that is not one of them raise naming ``where`` and the field.
    """
    if not str(question).strip():
        raise BenchmarkFormatError(f"{where}: field 'question' is empty")
    opts = lettered_options(options, where, options_field)
    return make_record(
        benchmark=benchmark,
        record_id=rid,
        video=video,
        question=str(question),
        problem_type="multiple choice",
        answer=letter_for_answer(answer, opts, where),
        options=opts,
        meta=meta,
    )

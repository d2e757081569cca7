"""What the benchmark converters do with each row: drop it or fail (:class:`Skips`), keep its unused fields
(:func:`source_meta`), give it a unique id (:func:`unique_ids`) and check its video (:func:`finish`).

Every converter turns its rows with :func:`convert_rows`: a :class:`~.common.BenchmarkFormatError` raised for one
row is that row's skip (dropped, counted and listed; ``Skips(strict=True)``: the error, naming the file, the row
and the field), never the whole file's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lit_videor2.benchmarks.common import BenchmarkFormatError, checked_records


class Skips:
    """Rows and files a converter left out, and ids it had to tell apart; printed as counted, listed warnings.

    ``strict=True`` turns a row that cannot be used into an error instead (:meth:`row`). Notes (files left out
    on purpose, a revision inferred) and repeated ids (:meth:`repeat`) are never errors.
    """

    #: At most this many dropped rows are listed one by one per reason (the count covers them all).
    LISTED = 20

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.rows: list[tuple[str, str]] = []  # (location, reason)
        self.notes: list[str] = []  # files or layouts left out on purpose, revisions inferred
        self.repeats: list[tuple[str, str]] = []  # (kind, "location: id 'x' -> 'x#2' (first at ...)")

    def row(self, error: BenchmarkFormatError) -> None:
        """Record a dropped row (``strict``: re-raise the error, which names the file, the row and the field)."""
        if self.strict:
            raise error
        where, _, reason = str(error).partition(": ")
        self.rows.append((where, reason or str(error)))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def repeat(self, where: str, old_id: str, new_id: str, first: str, identical: bool) -> None:
        """Record a row whose id an earlier row already has (kept, under ``new_id``)."""
        kind = "identical" if identical else "different"
        self.repeats.append((kind, f"{where}: id {old_id!r} -> {new_id!r} (first at {first})"))

    def dropped(self) -> dict[str, list[str]]:
        """Reason kind -> ``"location: reason"`` of every dropped row, in file order."""
        groups: dict[str, list[str]] = {}
        for where, reason in self.rows:
            groups.setdefault(reason_kind(reason), []).append(f"{where}: {reason}")
        return groups

    def summary(self) -> str:
        """``"dropped 3 row(s): field 'question' is empty: 1, answer matches no option: 2"`` (empty if none)."""
        groups = self.dropped()
        if not groups:
            return ""
        kinds = ", ".join(f"{kind}: {len(items)}" for kind, items in groups.items())
        return f"dropped {len(self.rows)} row(s): {kinds}"

    def messages(self) -> list[str]:
        """The notes; per reason, the count of rows dropped and each row (at most :attr:`LISTED`); the repeated
        ids, counted."""
        out = list(self.notes)
        for kind, items in self.dropped().items():
            out.append(f"dropped {len(items)} row(s): {kind} (--strict makes this an error)")
            out.extend(f"skipped {item}" for item in items[: self.LISTED])
            if len(items) > self.LISTED:
                out.append(f"... and {len(items) - self.LISTED} more row(s) skipped for: {kind}")
        for kind in ("identical", "different"):
            items = [text for k, text in self.repeats if k == kind]
            if items:
                what = (
                    "repeat an earlier row (same id, video, question, options and answer)"
                    if kind == "identical"
                    else "have the id of an earlier row with another question or answer"
                )
                out.append(
                    f"{len(items)} row(s) {what}: kept, the id suffixed '#2', '#3', ... in file order "
                    f"(first: {items[0]})"
                )
        return out


_KINDS = (
    (re.compile(r"^field ('[^']*') is empty"), r"field \1 is empty"),
    (re.compile(r"^field ('[^']*') is null"), r"field \1 is null"),
    (re.compile(r"^missing field ('[^']*')"), r"missing field \1"),
    (re.compile(r"^answer is empty"), "empty answer"),
    (re.compile(r"matches several options"), "answer matches several options"),
    (re.compile(r"is neither an option letter"), "answer matches no option"),
    (re.compile(r"^answer letter"), "answer letter outside the options"),
)


def reason_kind(reason: str) -> str:
    """The reason a row was dropped, without the row's own values (to count rows dropped for the same reason)."""
    for pattern, kind in _KINDS:
        m = pattern.search(reason)
        if m:
            return m.expand(kind)
    return re.sub(r"\s*\(.*", "", reason)[:100] or reason[:100]


# ------------------------------------------------------------------------------------------ rows


RESERVED_KEYS = frozenset(
    {
        "id",
        "video",
        "conversations",
        "problem_type",
        "options",
        "answer",
        "benchmark",
        "temporal_grounding",
        "problem",
        "problem_id",
        "solution",
        "path",
        "process",
        "data_type",
        "image",
    }
)
"""Record fields that the record itself or :func:`lit_videor2.data.schema.load_records` gives a meaning: a source
field of that name is kept as ``source_<name>``."""


def jsonable(value: Any) -> Any:
    """A source value as plain JSON (numpy and parquet values to lists and scalars, NaN to None, bytes left
    out, anything else as text), so that keeping a field never fails."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes, bytearray)):
        value = value.tolist()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (bytes, bytearray)):
        return None
    if isinstance(value, dict):
        return {str(k): v for k, v in ((k, jsonable(v)) for k, v in value.items()) if v is not None}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)


def source_meta(row: dict[str, Any], used: Iterable[str] = ()) -> dict[str, Any]:
    """The row's fields that the record does not already hold (``used``), kept as metadata.

    Null values are left out; a field named like a record field (:data:`RESERVED_KEYS`) becomes ``source_<name>``.
    Never raises: a field the converter does not use is never a reason to fail.
    """
    skip = set(used)
    meta: dict[str, Any] = {}
    for key, value in row.items():
        if key in skip:
            continue
        value = jsonable(value)
        if value is not None:
            meta[f"source_{key}" if key in RESERVED_KEYS else str(key)] = value
    return meta


Converted = tuple[str, dict[str, Any]]
"""``(location, record)``: a record with the location of the row it comes from (for messages)."""


def convert_rows(rows: Iterable[tuple[str, Any]], build: Callable[[str, Any], dict], skips: Skips) -> list[Converted]:
    """``build(location, row)`` for every row; a row it rejects (:class:`BenchmarkFormatError`) goes to ``skips``.

    Without ``skips.strict`` the row is dropped, counted and listed; with it the error (naming the file, the row
    and the field) stops the conversion.
    """
    out: list[Converted] = []
    for where, row in rows:
        try:
            out.append((where, build(where, row)))
        except BenchmarkFormatError as e:
            skips.row(e)
    return out


def _content(rec: dict[str, Any]) -> tuple:
    return rec["video"], rec["conversations"][0]["value"], tuple(rec["options"]), str(rec["answer"])


def unique_ids(converted: list[Converted], skips: Skips) -> list[dict[str, Any]]:
    """The records with unique ids: a row whose id an earlier row has keeps its place and gets ``<id>#2``,
    ``#3``, ... (file order, so the ids are the same on every run); ``skips`` counts them, telling genuine repeats
    (same video, question, options and answer) from different rows under one id."""
    first: dict[str, Converted] = {}
    count: dict[str, int] = {}
    out = []
    for where, rec in converted:
        rid = rec["id"]
        if rid in first:
            n = count.get(rid, 1)
            new = rid
            while new in first:
                n += 1
                new = f"{rid}#{n}"
            count[rid] = n
            first_where, first_rec = first[rid]
            rec["id"] = new
            skips.repeat(where, rid, new, first_where, _content(rec) == _content(first_rec))
        first[rec["id"]] = (where, rec)
        out.append(rec)
    return out


def finish(
    converted: list[Converted], skips: Skips, video_root: str | Path | None = None, skip_missing: bool = False
) -> list[dict[str, Any]]:
    """The converter's result: ids made unique (:func:`unique_ids`), then videos checked (:func:`checked_records`)."""
    return checked_records(unique_ids(converted, skips), video_root, skip_missing)

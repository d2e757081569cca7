"""Inputs of the trace viewer -> *items*: what one card of the page shows.

An item is one question about one video with one or more *entries* (completions):

* predictions (``lit_videor2 test``): one entry per predictions file, items keyed by ``(benchmark, id)``, so two
  files (e.g. SFT and GRPO) appear side by side on the same ids;
* GRPO completions (``completions_rank*.jsonl``, written every ``log_completions_every`` steps): one item per
  ``(step, id)`` group with its G completions, their rewards, reward components and advantages. Those rows carry
  only the id, so the question, options, answer and reference claims come from the run's training records, and
  the judgments (concluded and final answer, consistency, VAS) are made here by
  :func:`lit_videor2.evaluation.judge_rows` with the rule-based judge (the judge of the default consistency gate).

Every entry gets the annotations of :mod:`lit_videor2.view.annotate` and filter flags (``wrong``,
``inconsistent``, ``unmatched``). Pure functions apart from reading the input files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lit_videor2.evaluation.judging import judge_rows
from lit_videor2.evaluation.predictions import JUDGMENT_FIELDS, read_predictions, row_key
from lit_videor2.judges import RuleBasedJudge
from lit_videor2.rewards.embedding import Embedder
from lit_videor2.view.annotate import cited_times, claim_checks, tac_spans, tar_pairing, text_segments
from lit_videor2.view.sources import Sources, ViewError

log = logging.getLogger(__name__)

__all__ = [
    "annotate_entry",
    "completion_items",
    "parse_steps",
    "prediction_items",
    "read_completions",
    "read_prediction_files",
]

#: Fields of a completions row that are not reward components.
COMPLETION_FIELDS = ("step", "id", "completion", "reward", "advantage", "num_tokens")


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v and abs(v) != float("inf") else None


def annotate_entry(
    entry: dict[str, Any],
    *,
    options: Sequence[str] | None,
    problem_type: str | None,
    grounding: dict[str, str] | None,
    embedder: Embedder | None,
    pad_s: float = 2.0,
    threshold: float = 0.75,
) -> dict[str, Any]:
    """Add ``segments``, ``spans``, ``cited``, ``pairing``, ``claims_checked`` (each claim's verdict against the
    ground truth) and ``flags`` to an entry holding ``completion`` and the judgment fields (in place; also
    returned)."""
    text = entry.get("completion") or ""
    spans = tac_spans(text, options, problem_type)
    entry["spans"] = {k: v is not None for k, v in spans.items()}
    entry["segments"] = text_segments(text, spans)
    entry["cited"] = cited_times(entry["segments"])
    pairing = tar_pairing(text, grounding, embedder=embedder, pad_s=pad_s, threshold=threshold)
    entry["pairing"] = pairing
    entry["claims_checked"] = claim_checks(
        text, grounding, duration=entry.get("duration"), frame_times=entry.get("frame_times")
    )
    correct = _finite(entry.get("correct"))
    unmatched = None
    if pairing is not None and pairing["pairs"] is not None:
        unmatched = bool(pairing["unmatched_pred"])
    entry["flags"] = {
        "wrong": correct is not None and correct < 1.0,
        "inconsistent": entry.get("consistent") is False,
        "unmatched": unmatched,
    }
    return entry


# ------------------------------------------------------------------------------------------- predictions


def read_prediction_files(paths: Sequence[Path]) -> list[list[dict[str, Any]]]:
    """Rows of each predictions file; a missing or empty file, or a row without ``id``/``completion``, is an error
    naming the file and row."""
    out = []
    for path in paths:
        if not path.is_file():
            raise ViewError(f"{path}: predictions file not found")
        try:
            rows = read_predictions(path)
        except ValueError as e:
            raise ViewError(str(e)) from None
        if not rows:
            raise ViewError(f"{path}: no predictions rows")
        for n, row in enumerate(rows, 1):
            missing = [k for k in ("id", "completion") if k not in row]
            if missing:
                raise ViewError(
                    f"{path}: row {n} has no {' or '.join(missing)} (not a `lit_videor2 test` predictions file?)"
                )
        out.append(rows)
    return out


def prediction_items(
    runs: Sequence[Sequence[dict[str, Any]]],
    labels: Sequence[str],
    *,
    embedder: Embedder | None,
    pad_s: float = 2.0,
    threshold: float = 0.75,
) -> list[dict[str, Any]]:
    """Items from one or more predictions files (``runs``, labelled ``labels``), keyed by ``(benchmark, id)`` in
    the first file's order; an id missing from a run has no entry for it."""
    items: dict[tuple[str, str], dict[str, Any]] = {}
    for label, rows in zip(labels, runs):
        for row in rows:
            key = row_key(row)
            item = items.get(key)
            if item is None:
                item = items[key] = {
                    "key": f"{key[0]} / {key[1]}",
                    "id": str(row["id"]),
                    "benchmark": row.get("benchmark"),
                    "problem_type": row.get("problem_type"),
                    "question": row.get("question") or "",
                    "options": list(row.get("options") or []),
                    "answer": row.get("answer"),
                    "video": row.get("video"),
                    "grounding": row.get("temporal_grounding") or None,
                    "entries": [],
                }
            elif any(e["label"] == label for e in item["entries"]):
                continue  # a key repeated within one file: the first row wins, as when merging part files
            entry = {"label": label, "completion": row.get("completion") or "", "frame_times": row.get("frame_times")}
            entry["duration"] = row.get("duration")
            entry.update({k: row.get(k) for k in JUDGMENT_FIELDS})
            annotate_entry(
                entry,
                options=item["options"],
                problem_type=item["problem_type"],
                grounding=item["grounding"],
                embedder=embedder,
                pad_s=pad_s,
                threshold=threshold,
            )
            item["entries"].append(entry)
    return list(items.values())


# ------------------------------------------------------------------------------------------- completions


def parse_steps(spec: str | None) -> set[int] | None:
    """``"0,10,50"`` or ``"0-30"`` (or a mix) -> a set of steps; None or ``"all"`` -> None (every step)."""
    if spec is None or spec.strip().lower() == "all":
        return None
    steps: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                steps.update(range(min(a, b), max(a, b) + 1))
            else:
                steps.add(int(part))
        except ValueError:
            raise ViewError(f"--steps {spec!r}: expected steps such as 0,10,50 or 0-30, or 'all'") from None
    return steps


def read_completions(path: Path, steps: set[int] | None = None) -> list[dict[str, Any]]:
    """Rows of a GRPO completions table (``completions_rank*.jsonl``), restricted to ``steps``; a bad line names
    the file and line."""
    if not path.is_file():
        raise ViewError(f"{path}: completions file not found")
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                if not f.readline():  # training may be writing the last line right now
                    break
                raise ViewError(f"{path}:{n}: not a JSON line ({e})") from None
            missing = [k for k in ("step", "id", "completion") if k not in row]
            if missing:
                raise ViewError(f"{path}:{n}: no {', '.join(missing)} (not a GRPO completions table?)")
            if steps is None or int(row["step"]) in steps:
                rows.append(row)
    if not rows:
        raise ViewError(f"{path}: no completions" + (f" at steps {sorted(steps)}" if steps else ""))
    return rows


def completion_items(
    rows: Sequence[dict[str, Any]],
    sources: Sources,
    *,
    embedder: Embedder | None,
    pad_s: float = 2.0,
    threshold: float = 0.75,
) -> list[dict[str, Any]]:
    """Items (one per ``(step, id)`` group, in file order) from GRPO completions rows and the run's records."""
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((int(row["step"]), str(row["id"])), []).append(row)
    unknown = sorted({rid for _, rid in groups if rid not in sources.records})
    if unknown:
        where = f"the training records of {sources.config}" if sources.config else "any training records (no config)"
        log.warning(
            "%d completion ids not in %s (shown without question or video): %s", len(unknown), where, unknown[:5]
        )
    items = []
    judge = RuleBasedJudge()
    for (step, rid), group in groups.items():
        record = sources.records.get(rid)
        cols = record.columns() if record is not None else {}
        judged = [
            {
                "completion": r.get("completion") or "",
                "answer": cols.get("answer") or "",
                "problem_type": cols.get("problem_type"),
                "options": cols.get("options") or [],
                "question": cols.get("question") or "",
                "temporal_grounding": None,
            }
            for r in group
        ]
        judge_rows(judged, judge, temporal=False)
        item = {
            "key": f"step {step} / {rid}",
            "id": rid,
            "step": step,
            "benchmark": None,
            "problem_type": cols.get("problem_type"),
            "question": cols.get("question") or "",
            "options": list(cols.get("options") or []),
            "answer": cols.get("answer"),
            "video": cols.get("video"),
            "grounding": cols.get("temporal_grounding") or None,
            "entries": [],
        }
        for k, (row, j) in enumerate(zip(group, judged)):
            entry = {"label": f"#{k}", "completion": row.get("completion") or "", "frame_times": None}
            entry.update({f: j.get(f) for f in JUDGMENT_FIELDS})
            if record is None:
                entry.update(correct=None, tac_a=None, tac_t=None, concluded_accuracy=None)
            entry["num_tokens"] = row.get("num_tokens")
            entry["reward"] = _finite(row.get("reward"))
            entry["advantage"] = _finite(row.get("advantage"))
            entry["components"] = {name: _finite(value) for name, value in row.items() if name not in COMPLETION_FIELDS}
            annotate_entry(
                entry,
                options=item["options"],
                problem_type=item["problem_type"],
                grounding=item["grounding"],
                embedder=embedder,
                pad_s=pad_s,
                threshold=threshold,
            )
            if entry["pairing"] is not None:
                entry["tar"] = entry["pairing"]["score"]
            item["entries"].append(entry)
        items.append(item)
    return items

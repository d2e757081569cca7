"""Results tables from predictions rows: per benchmark, and Generic / Reasoning / Overall as in the paper.

Per benchmark (percentages 0–100):

* ``n`` — samples; ``accuracy`` — mean ``correct`` × 100;
* ``tac_consistency`` — TAC conditional consistency TP / (TP + FN) × 100: of the samples whose answer is right,
  the share whose reasoning reaches the right answer too (the published "TAC" fits this one: see
  ``docs/method.md#tac-thinkanswer-consistency``);
* ``tac_agreement`` — (TP + TN) / N × 100: reasoning and answer equally right or wrong;
* ``vas`` — mean judge grounding score × 10 (0–100); ``tar`` — mean TAR over the samples that have temporal
  grounding (None when none do);
* claim truth (:data:`~lit_videor2.metrics.CLAIM_METRICS`, over the samples that have temporal grounding):
  ``claims_true`` — of all timestamped claims in the reasoning, the share true against the ground truth;
  ``with_claim`` — the share of completions carrying a timestamped claim (both in ``results.md``); in
  ``results.json`` also ``claims_complete``, ``claims_contradicted``, ``claims_timed`` and ``stated_<attribute>``.
  A benchmark without any temporal grounding has no claim keys (``–`` in the Markdown table).

``skipped`` counts the benchmark's records that ``test`` skipped (``data.on_error: skip``); ``results.json`` lists
each with its reason under ``"skipped"`` and ``results.md`` lists the reasons under the table.

Groups are **unweighted means over benchmarks** (the paper's averages: Overall is the mean over all benchmarks,
not the mean of the two group means); a metric undefined for a benchmark (None) is left out of its group mean.
The numbers come from :class:`~lit_videor2.metrics.PredictionMetrics`, the metric validation holds too, so
validation and ``test`` compute every figure the same way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lit_videor2.evaluation.predictions import atomic_write_text, read_predictions
from lit_videor2.metrics import CLAIM_METRICS, PredictionMetrics

__all__ = [
    "ALL_METRICS",
    "CLAIM_COLUMNS",
    "METRICS",
    "benchmark_metrics",
    "compute_results",
    "results_markdown",
    "write_results",
]

#: Metric key -> column title of the Markdown table.
METRICS = {
    "accuracy": "Acc %",
    "tac_consistency": "TAC cons. %",
    "tac_agreement": "TAC agree %",
    "vas": "VAS",
    "tar": "TAR",
}
#: Claim-truth columns of the Markdown table (all of :data:`~lit_videor2.metrics.CLAIM_METRICS` are in the JSON).
CLAIM_COLUMNS = {"claims_true": "Claims true %", "with_claim": "w/ claim %"}
#: Every metric key of a table row (``results.json``; logged as ``test/<name>/<key>``).
ALL_METRICS = (*METRICS, *CLAIM_METRICS)
_COLUMNS = {**METRICS, **CLAIM_COLUMNS}
GROUPS = {"generic": "Generic", "reasoning": "Reasoning"}
#: Skipped records listed with their reasons in ``results.md`` (all are in ``results.json``).
MAX_LISTED_SKIPS = 20


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _finite(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def benchmark_metrics(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The metrics of one benchmark's rows (see the module docstring); all None when it has no rows."""
    n = len(rows)
    if n == 0:
        return {"n": 0, **dict.fromkeys(METRICS)}
    metric = PredictionMetrics(sync_on_compute=False)  # rank 0 alone writes the tables
    metric.update(rows)
    values = metric.compute()
    out = {"n": n, **{key: _finite(float(values[key])) for key in METRICS}}
    if any(r.get("claims") is not None for r in rows):  # claim truth only where there is ground truth
        out.update({key: _finite(float(values[key])) for key in CLAIM_METRICS})
    return out


def _group_row(members: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "n": sum(m["n"] for m in members),
        "skipped": sum(m.get("skipped", 0) for m in members),
        "benchmarks": len(members),
    }
    for key in ALL_METRICS:
        if key in METRICS or any(key in m for m in members):
            out[key] = _mean([m[key] for m in members if m.get(key) is not None])
    return out


def compute_results(
    rows: Sequence[dict[str, Any]],
    order: Sequence[str] = (),
    skipped: Sequence[dict[str, Any]] = (),
    groups_of: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """``{"benchmarks": {name: metrics + group + skipped}, "groups": {...}, "skipped": [...]}``.

    ``skipped``: ``{"benchmark", "id", "reason"}`` of each record skipped by ``test``; a benchmark whose records
    were all skipped still gets a row (``n`` 0). ``groups_of``: benchmark -> group for such benchmarks.
    Benchmarks appear in ``order`` first (those with rows or skips), then in order of first appearance.
    """
    by_bench: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_bench.setdefault(str(r.get("benchmark")), []).append(r)
    skips: dict[str, list[dict[str, Any]]] = {}
    for e in skipped:
        skips.setdefault(str(e.get("benchmark") or "test"), []).append(e)
    for name in skips:
        by_bench.setdefault(name, [])
    names = [b for b in order if b in by_bench] + [b for b in by_bench if b not in order]
    benchmarks = {}
    for name in names:
        group = next((r.get("group") for r in by_bench[name] if r.get("group")), (groups_of or {}).get(name))
        benchmarks[name] = {"group": group, **benchmark_metrics(by_bench[name]), "skipped": len(skips.get(name, []))}
    groups = {}
    for key, title in GROUPS.items():
        members = [m for m in benchmarks.values() if m["group"] == key]
        if members:
            groups[title] = _group_row(members)
    if benchmarks:
        groups["Overall"] = _group_row(list(benchmarks.values()))
    return {"benchmarks": benchmarks, "groups": groups, "skipped": [dict(e) for e in skipped]}


def _fmt(x: Any, digits: int = 1) -> str:
    return "–" if x is None else (str(x) if isinstance(x, int) else f"{x:.{digits}f}")


def results_markdown(results: dict[str, Any], title: str | None = None) -> str:
    """The tables as one Markdown table (benchmarks, then the group rows in bold)."""
    skipped = results.get("skipped") or []
    head = ["benchmark", "group", "n", *(["skipped"] if skipped else []), *_COLUMNS.values()]
    lines = [f"### {title}", ""] if title else []
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, m in results["benchmarks"].items():
        cells = [name, m["group"] or "–", _fmt(m["n"]), *([_fmt(m.get("skipped", 0))] if skipped else [])]
        cells += [_fmt(m.get(k), 3 if k == "tar" else 1) for k in _COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    for name, m in results["groups"].items():
        cells = [f"**{name}**", f"mean of {m['benchmarks']}", _fmt(m["n"])]
        cells += [_fmt(m.get("skipped", 0))] if skipped else []
        cells += [_fmt(m.get(k), 3 if k == "tar" else 1) for k in _COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    if skipped:
        lines += ["", f"Skipped records ({len(skipped)}, `data.on_error: skip`; not in the means):", ""]
        for e in skipped[:MAX_LISTED_SKIPS]:
            rid = "" if e.get("id") is None else f" `{e['id']}`"
            lines.append(f"- {e.get('benchmark') or 'test'}{rid}: {e.get('reason')}")
        if len(skipped) > MAX_LISTED_SKIPS:
            lines.append(f"- … {len(skipped) - MAX_LISTED_SKIPS} more in results.json")
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any], folder: str | Path, **meta: Any) -> tuple[Path, Path]:
    """Write ``results.json`` (with ``meta``, e.g. the predictions path and judge) and ``results.md``.

    Each file is written to a temporary file and renamed over the old one, so a crash or a full disk leaves the
    previous tables intact.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "results.json", folder / "results.md"
    atomic_write_text(json_path, json.dumps({**meta, **results}, indent=2) + "\n")
    atomic_write_text(md_path, results_markdown(results))
    return json_path, md_path


def results_for_file(predictions: str | Path, order: Sequence[str] = ()) -> dict[str, Any]:
    """Tables of a predictions file."""
    return compute_results(read_predictions(predictions), order)

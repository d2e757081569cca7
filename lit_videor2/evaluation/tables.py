"""Results tables from predictions rows: per benchmark, and Generic / Reasoning / Overall as in the paper.

Per benchmark (percentages 0–100):

* ``n`` — samples; ``accuracy`` — mean ``correct`` × 100;
* ``tac_consistency`` — TAC conditional consistency TP / (TP + FN) × 100: of the samples whose answer is right,
  the share whose reasoning reaches the right answer too (the published "TAC" fits this one, METHOD.md);
* ``tac_agreement`` — (TP + TN) / N × 100: reasoning and answer equally right or wrong;
* ``vas`` — mean judge grounding score × 10 (0–100); ``tar`` — mean TAR over the samples that have temporal
  grounding (None when none do).

Groups are **unweighted means over benchmarks** (the paper's averages: Overall is the mean over all benchmarks,
not the mean of the two group means); a metric undefined for a benchmark (None) is left out of its group mean.
TAC counts come from the TAC metric's functional update (:mod:`lit_videor2.metrics.functional`), so the tables and
the metric share one definition.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from lit_videor2.metrics.functional import _tac_compute, _tac_update

__all__ = ["METRICS", "benchmark_metrics", "compute_results", "results_markdown", "write_results"]

#: Metric key -> column title of the Markdown table.
METRICS = {
    "accuracy": "Acc %",
    "tac_consistency": "TAC cons. %",
    "tac_agreement": "TAC agree %",
    "vas": "VAS",
    "tar": "TAR",
}
GROUPS = {"generic": "Generic", "reasoning": "Reasoning"}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _finite(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def benchmark_metrics(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The metrics of one benchmark's rows (see the module docstring)."""
    n = len(rows)
    a = torch.tensor([bool(r["tac_a"]) for r in rows], dtype=torch.bool)
    t = torch.tensor([bool(r["tac_t"]) for r in rows], dtype=torch.bool)
    tac = _tac_compute(_tac_update(a, t))
    tars = [float(r["tar"]) for r in rows if r.get("tar") is not None]
    acc = _mean([float(r["correct"]) for r in rows])
    vas = _mean([float(r["vas"]) for r in rows])
    return {
        "n": n,
        "accuracy": None if acc is None else 100.0 * acc,
        "tac_consistency": _finite(100.0 * float(tac["conditional_consistency"])),
        "tac_agreement": _finite(100.0 * float(tac["agreement"])),
        "vas": None if vas is None else 10.0 * vas,
        "tar": _mean(tars),
    }


def _group_row(members: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": sum(m["n"] for m in members), "benchmarks": len(members)}
    for key in METRICS:
        out[key] = _mean([m[key] for m in members if m[key] is not None])
    return out


def compute_results(rows: Sequence[dict[str, Any]], order: Sequence[str] = ()) -> dict[str, Any]:
    """``{"benchmarks": {name: metrics + group}, "groups": {"Generic"|"Reasoning"|"Overall": metrics}}``.

    Benchmarks appear in ``order`` first (those with rows), then in order of first appearance.
    """
    by_bench: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_bench.setdefault(str(r.get("benchmark")), []).append(r)
    names = [b for b in order if b in by_bench] + [b for b in by_bench if b not in order]
    benchmarks = {}
    for name in names:
        group = next((r.get("group") for r in by_bench[name] if r.get("group")), None)
        benchmarks[name] = {"group": group, **benchmark_metrics(by_bench[name])}
    groups = {}
    for key, title in GROUPS.items():
        members = [m for m in benchmarks.values() if m["group"] == key]
        if members:
            groups[title] = _group_row(members)
    if benchmarks:
        groups["Overall"] = _group_row(list(benchmarks.values()))
    return {"benchmarks": benchmarks, "groups": groups}


def _fmt(x: Any, digits: int = 1) -> str:
    return "–" if x is None else (str(x) if isinstance(x, int) else f"{x:.{digits}f}")


def results_markdown(results: dict[str, Any], title: str | None = None) -> str:
    """The tables as one Markdown table (benchmarks, then the group rows in bold)."""
    head = ["benchmark", "group", "n", *METRICS.values()]
    lines = [f"### {title}", ""] if title else []
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, m in results["benchmarks"].items():
        cells = [name, m["group"] or "–", _fmt(m["n"])]
        cells += [_fmt(m[k], 3 if k == "tar" else 1) for k in METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    for name, m in results["groups"].items():
        cells = [f"**{name}**", f"mean of {m['benchmarks']}", _fmt(m["n"])]
        cells += [_fmt(m[k], 3 if k == "tar" else 1) for k in METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any], folder: str | Path, **meta: Any) -> tuple[Path, Path]:
    """Write ``results.json`` (with ``meta``, e.g. the predictions path and judge) and ``results.md``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "results.json", folder / "results.md"
    json_path.write_text(json.dumps({**meta, **results}, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(results_markdown(results), encoding="utf-8")
    return json_path, md_path


def results_for_file(predictions: str | Path, order: Sequence[str] = ()) -> dict[str, Any]:
    """Tables of a predictions file."""
    from lit_videor2.evaluation.predictions import read_predictions

    return compute_results(read_predictions(predictions), order)

"""``lit_videor2 report``: a Markdown table and PNG charts from one or more predictions files.

The summary table has one row per run (Generic / Reasoning / Overall accuracy, TAC and VAS overall; unweighted
means over benchmarks); ``--compare paper`` puts the paper's published rows
(``docs/method.md#benchmarks-and-published-figures``) above the user's. The paper's "TAC" is shown in the conditional-consistency column (the aggregate it fits; unconfirmed), and the paper
publishes only averages, so its bars appear in the group columns of the charts. Per-benchmark tables follow.

Charts (matplotlib, Agg backend): ``accuracy.png``, ``tac.png`` (conditional consistency), ``vas.png`` — grouped
bars per benchmark and per group, one colour per run.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lit_videor2.errors import UserError
from lit_videor2.evaluation.paper import PAPER_ADAPTERS, PAPER_BENCHMARKS, PAPER_ROWS, paper_benchmark
from lit_videor2.evaluation.predictions import read_predictions, run_labels
from lit_videor2.evaluation.tables import compute_results, results_markdown

__all__ = ["CHARTS", "ReportError", "coverage_markdown", "main", "make_report", "summary_markdown"]


class ReportError(UserError, ValueError):
    """A report cannot be made from the given files or options (the CLI prints it as one line)."""


#: Chart file -> (metric key, axis label).
CHARTS = {
    "accuracy.png": ("accuracy", "accuracy (%)"),
    "tac.png": ("tac_consistency", "TAC conditional consistency (%)"),
    "vas.png": ("vas", "VAS (0–100)"),
}
GROUP_TITLES = ("Generic", "Reasoning", "Overall")


def _fmt(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


def _paper_as_results(row: dict[str, float | None]) -> dict[str, Any]:
    """A published row shaped like :func:`compute_results` output (groups only)."""
    groups = {
        "Generic": {"accuracy": row["generic"]},
        "Reasoning": {"accuracy": row["reasoning"]},
        "Overall": {"accuracy": row["overall"], "tac_consistency": row["tac"], "vas": row["vas"]},
    }
    return {"benchmarks": {}, "groups": groups}


def summary_markdown(runs: dict[str, dict[str, Any]], paper: bool = False) -> str:
    """One row per run: Generic / Reasoning / Overall accuracy, TAC (both aggregates) and VAS overall."""
    head = ["model", "Generic acc", "Reasoning acc", "Overall acc", "TAC cons.", "TAC agree", "VAS", "source"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows: list[tuple[str, dict[str, Any], str]] = []
    if paper:
        rows += [(name, _paper_as_results(r), "paper") for name, r in PAPER_ROWS.items()]
    rows += [(name, res, "this run") for name, res in runs.items()]
    for name, res, source in rows:
        g = res["groups"]

        def get(group: str, key: str, g=g) -> float | None:
            return g.get(group, {}).get(key)

        cells = [name, *(_fmt(get(t, "accuracy")) for t in GROUP_TITLES)]
        cells += [_fmt(get("Overall", k)) for k in ("tac_consistency", "tac_agreement", "vas")]
        lines.append("| " + " | ".join([*cells, source]) + " |")
    return "\n".join(lines) + "\n"


def coverage_markdown(runs: dict[str, dict[str, Any]]) -> str:
    """Which of the paper's eleven benchmarks each run has (matched by name: ``videomme``, ``VideoMME`` and
    ``Video-MME`` are one), in which group, and what is missing. The paper's group averages are means over
    all of its benchmarks, so a run's averages compare with them only when nothing is missing."""
    lines = []
    for name, res in runs.items():
        found: dict[str, str] = {}
        for bench in res["benchmarks"]:
            paper = paper_benchmark(bench)
            if paper is not None:
                found[paper] = bench
        missing = [b for b in PAPER_BENCHMARKS if b not in found]
        wrong_group = [
            f"{found[b]} ({res['benchmarks'][found[b]].get('group') or 'no group'}, paper: {PAPER_BENCHMARKS[b]})"
            for b in found
            if res["benchmarks"][found[b]].get("group") != PAPER_BENCHMARKS[b]
        ]
        line = f"- **{name}**: {len(found)} of {len(PAPER_BENCHMARKS)} paper benchmarks"
        if missing:
            todo = ", ".join(f"{b} (`convert-benchmark --name {PAPER_ADAPTERS[b]}`)" for b in missing)
            line += f"; missing: {todo}. Group averages are not comparable with the paper's until all are in."
        else:
            line += "."
        if wrong_group:
            line += " In another group than the paper's: " + ", ".join(wrong_group) + "."
        lines.append(line)
    return "\n".join(lines) + "\n"


def _chart(path: Path, runs: dict[str, dict[str, Any]], key: str, ylabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benchmarks: list[str] = []
    for res in runs.values():
        benchmarks += [b for b in res["benchmarks"] if b not in benchmarks]
    groups = [t for t in GROUP_TITLES if any(t in res["groups"] for res in runs.values())]
    cats = benchmarks + groups
    width = 0.8 / max(1, len(runs))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(cats) * max(1, len(runs)) ** 0.5 + 2), 4.0))
    for k, (name, res) in enumerate(runs.items()):
        values = [res["benchmarks"].get(c, {}).get(key) for c in benchmarks]
        values += [res["groups"].get(c, {}).get(key) for c in groups]
        xs = [i + (k - (len(runs) - 1) / 2) * width for i in range(len(cats))]
        ys = [math.nan if v is None else v for v in values]
        ax.bar(xs, ys, width, label=name)
    if benchmarks and groups:
        ax.axvline(len(benchmarks) - 0.5, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(cats)), cats, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def make_report(
    predictions: Sequence[str | Path],
    out: str | Path | None = None,
    *,
    compare_paper: bool = False,
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Write ``report.md`` and the charts to ``out`` (default: ``report/`` beside the first predictions file).

    Returns ``{"markdown": text, "files": [paths], "runs": {label: results}}``.
    """
    files = [Path(p) for p in predictions]
    runs: dict[str, dict[str, Any]] = {}
    for label, f in zip(run_labels(files, labels), files):
        rows = read_predictions(f)
        if not rows:
            raise ReportError(f"{f}: no predictions (missing or empty file)")
        runs[label] = compute_results(rows)
    out = Path(out) if out is not None else files[0].parent / "report"
    out.mkdir(parents=True, exist_ok=True)
    parts = ["## Summary", "", summary_markdown(runs, paper=compare_paper)]
    parts.append(
        "Accuracy, TAC and VAS in %; group columns are unweighted means over benchmarks. TAC cons. = TP/(TP+FN), "
        "TAC agree = (TP+TN)/N; VAS = judge grounding score ×10.\n"
    )
    if compare_paper:
        parts += ["## Coverage of the paper's benchmarks", "", coverage_markdown(runs)]
    parts += ["## Per benchmark", ""] + [results_markdown(res, title=name) for name, res in runs.items()]
    markdown = "\n".join(parts)
    written = [out / "report.md"]
    written[0].write_text(markdown, encoding="utf-8")
    chart_runs = dict(runs)
    if compare_paper:
        chart_runs = {f"{n} (paper)": _paper_as_results(r) for n, r in PAPER_ROWS.items()} | runs
    for name, (key, ylabel) in CHARTS.items():
        _chart(out / name, chart_runs, key, ylabel)
        written.append(out / name)
    return {"markdown": markdown, "files": written, "runs": runs}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="lit_videor2 report",
        description="Print a Markdown results table and write PNG charts (accuracy, TAC, VAS per benchmark).",
    )
    parser.add_argument("--predictions", nargs="+", required=True, help="predictions JSONL file(s), one per run")
    parser.add_argument("--labels", nargs="+", default=None, help="run names (default: the files' folder names)")
    parser.add_argument("--compare", choices=["paper"], default=None, help="show the paper's published rows too")
    parser.add_argument("--out", default=None, help="output folder (default: report/ beside the first file)")
    args = parser.parse_args(argv)
    report = make_report(args.predictions, args.out, compare_paper=args.compare == "paper", labels=args.labels)
    print(report["markdown"])
    print("wrote " + ", ".join(str(p) for p in report["files"]))
    return report

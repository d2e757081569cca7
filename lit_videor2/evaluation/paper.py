"""The paper's benchmark list and published rows (``docs/method.md#benchmarks-and-published-figures``, from the
Video-R2 paper, arXiv 2511.23478)."""

from __future__ import annotations

import re

__all__ = ["PAPER_ADAPTERS", "PAPER_BENCHMARKS", "PAPER_ROWS", "paper_benchmark"]

#: Benchmark -> group, in the paper's order.
PAPER_BENCHMARKS: dict[str, str] = {
    "MVBench": "generic",
    "VideoMME": "generic",
    "TempCompass": "generic",
    "MLVU": "generic",
    "LongVideoBench": "generic",
    "VideoMathQA": "reasoning",
    "Video-MMMU": "reasoning",
    "MMVU-val": "reasoning",
    "VSI-Bench": "reasoning",
    "MINERVA": "reasoning",
    "SciVideoBench": "reasoning",
}

#: Published averages: accuracy of the Generic and Reasoning groups and Overall, TAC and VAS overall (all 0–100;
#: None where not published). Which TAC aggregate the paper reports is unconfirmed; it fits the conditional
#: consistency TP / (TP + FN), so reports show it beside that column.
PAPER_ROWS: dict[str, dict[str, float | None]] = {
    "Qwen2.5-VL-7B": {"generic": 67.5, "reasoning": 38.9, "overall": 51.9, "tac": None, "vas": None},
    "Video-R1": {"generic": 65.6, "reasoning": 38.8, "overall": 51.0, "tac": 73.6, "vas": 45.9},
    "VideoChat-R1": {"generic": 63.8, "reasoning": 39.1, "overall": 50.3, "tac": 76.8, "vas": 48.9},
    "Video-R2": {"generic": 66.7, "reasoning": 41.6, "overall": 53.0, "tac": 81.6, "vas": 69.4},
}

#: Paper benchmark -> ``lit_videor2 convert-benchmark --name`` that reads its published files (docs/benchmarks.md).
PAPER_ADAPTERS: dict[str, str] = {
    "MVBench": "mvbench",
    "VideoMME": "videomme",
    "TempCompass": "tempcompass",
    "MLVU": "mlvu",
    "LongVideoBench": "longvideobench",
    "VideoMathQA": "videomathqa",
    "Video-MMMU": "videommmu",
    "MMVU-val": "mmvu",
    "VSI-Bench": "vsibench",
    "MINERVA": "minerva",
    "SciVideoBench": "scivideobench",
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_ALIASES = (
    {_key(n): n for n in PAPER_BENCHMARKS} | {_key(a): n for n, a in PAPER_ADAPTERS.items()} | {"mmvu": "MMVU-val"}
)


def paper_benchmark(name: str) -> str | None:
    """The paper's name for a benchmark name used in a run (``"videomme"``, ``"Video-MME"`` -> ``"VideoMME"``);
    None when it is not one of the paper's eleven."""
    return _ALIASES.get(_key(name))

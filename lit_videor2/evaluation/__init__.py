"""Evaluation: benchmarks, predictions files, judgments, results tables and the paper's published rows.

The Lightning side is :class:`lit_videor2.modules.evaluation.EvalModule` (``lit_videor2 test``); the
``judge`` and ``report`` commands work on predictions files alone.
"""

from lit_videor2.data.benchmark import Benchmark
from lit_videor2.evaluation.judging import judge_name, judge_rows, parse_judge
from lit_videor2.evaluation.paper import PAPER_BENCHMARKS, PAPER_ROWS
from lit_videor2.evaluation.predictions import (
    PREDICTION_FIELDS,
    finished_ids,
    merge_part_files,
    read_predictions,
    write_predictions,
)
from lit_videor2.evaluation.tables import compute_results, results_markdown, write_results

__all__ = [
    "PAPER_BENCHMARKS",
    "PAPER_ROWS",
    "PREDICTION_FIELDS",
    "Benchmark",
    "compute_results",
    "finished_ids",
    "judge_name",
    "judge_rows",
    "merge_part_files",
    "parse_judge",
    "read_predictions",
    "results_markdown",
    "write_predictions",
    "write_results",
]

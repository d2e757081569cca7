"""``lit_videor2 judge``: recompute the judgments of a predictions file without generating."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from lit_videor2.evaluation.judging import JUDGE_HELP, judge_rows, parse_judge
from lit_videor2.evaluation.predictions import read_predictions, write_predictions
from lit_videor2.evaluation.tables import compute_results, results_markdown, write_results

__all__ = ["judge_main", "rejudge"]


def rejudge(
    predictions: str | Path,
    judge: str = "rule",
    out: str | Path | None = None,
    *,
    temporal: bool = True,
    batch_size: int = 64,
) -> dict:
    """Re-judge every row of ``predictions`` with ``judge`` (a spec, see ``JUDGE_HELP``); write the rows to ``out``
    (default: in place) and ``results.json``/``results.md`` next to it. Returns the results."""
    rows = read_predictions(predictions)
    if not rows:
        raise ValueError(f"{predictions}: no predictions to judge")
    missing = [k for k in ("completion", "answer") if k not in rows[0]]
    if missing:
        raise ValueError(f"{predictions}: rows lack {missing}; is this a lit_videor2 predictions file?")
    the_judge = parse_judge(judge)
    for start in range(0, len(rows), batch_size):
        judge_rows(rows[start : start + batch_size], the_judge, temporal=temporal)
    out = Path(out or predictions)
    write_predictions(out, rows)
    results = compute_results(rows)
    write_results(results, out.parent, predictions=str(out), judge=rows[0]["judge"])
    return results


def judge_main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="lit_videor2 judge",
        description="Recompute parsed/concluded answers, correctness, TAC parts, VAS and TAR of a predictions file "
        "with another judge, without generating; rewrite the predictions and results.json/results.md next to them.",
    )
    parser.add_argument("--predictions", required=True, help="predictions JSONL written by `lit_videor2 test`")
    parser.add_argument("--judge", default="rule", help=JUDGE_HELP)
    parser.add_argument("--out", default=None, help="where to write the re-judged predictions (default: in place)")
    parser.add_argument("--no-tar", action="store_true", help="skip TAR (no sentence embedder)")
    parser.add_argument("--batch-size", type=int, default=64, help="rows per judge call")
    args = parser.parse_args(argv)
    results = rejudge(args.predictions, args.judge, args.out, temporal=not args.no_tar, batch_size=args.batch_size)
    print(results_markdown(results))
    return results

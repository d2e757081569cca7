"""``lit_videor2 judge``: recompute the judgments of a predictions file without generating.

Nothing is lost when the judge fails: a row whose judge call failed (server refused, HTTP 4xx/5xx after retries)
keeps its previous values, the file is replaced atomically (temporary file + rename; ``--out`` leaves the input
untouched), and the command exits with status 1 naming how many rows failed, unless ``--allow-fallbacks`` (then
those rows get the documented fallbacks, marked ``judge_failed: true``). ``--no-tar`` keeps existing TAR values.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lit_videor2.errors import UserError
from lit_videor2.evaluation.judging import JUDGE_HELP, judge_batch, parse_judge
from lit_videor2.evaluation.predictions import read_predictions, write_predictions
from lit_videor2.evaluation.tables import compute_results, results_markdown, write_results

__all__ = ["JudgeFailedError", "judge_main", "rejudge"]


class JudgeFailedError(UserError, RuntimeError):
    """Some rows could not be judged (the judge backend failed); they kept their previous values."""

    def __init__(self, message: str, failed: int, results: dict) -> None:
        super().__init__(message)
        self.failed = failed
        self.results = results


def rejudge(
    predictions: str | Path,
    judge: str = "rule",
    out: str | Path | None = None,
    *,
    temporal: bool = True,
    batch_size: int = 64,
    allow_fallbacks: bool = False,
) -> dict:
    """Re-judge every row of ``predictions`` with ``judge`` (a spec, see ``JUDGE_HELP``); write the rows to ``out``
    (default: in place, atomically) and ``results.json``/``results.md`` next to it. Returns the results.

    Rows whose judge call failed keep their previous values and :class:`JudgeFailedError` is raised after writing
    (the rows judged so far are kept); ``allow_fallbacks`` writes the fallbacks for them instead.
    """
    rows = read_predictions(predictions)
    if not rows:
        raise UserError(f"{predictions}: no predictions to judge")
    missing = [k for k in ("completion", "answer") if k not in rows[0]]
    if missing:
        raise UserError(f"{predictions}: rows lack {missing}; is this a lit_videor2 predictions file?")
    the_judge = parse_judge(judge)
    failed = 0
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        failed += len(judge_batch(batch, the_judge, temporal=temporal, keep_failed=not allow_fallbacks))
    out = Path(out or predictions)
    write_predictions(out, rows)
    results = compute_results(rows)
    write_results(results, out.parent, predictions=str(out), judge=rows[-1].get("judge"), judge_failed=failed)
    if failed and not allow_fallbacks:
        raise JudgeFailedError(
            f"{predictions}: the judge failed on {failed} of {len(rows)} rows ({judge}); they keep their previous "
            f"judgments in {out}. Check the judge server and rerun, or pass --allow-fallbacks to write fallbacks",
            failed,
            results,
        )
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
    parser.add_argument("--no-tar", action="store_true", help="skip TAR (no sentence embedder); existing TAR is kept")
    parser.add_argument("--batch-size", type=int, default=64, help="rows per judge call")
    parser.add_argument(
        "--allow-fallbacks",
        action="store_true",
        help="when the judge fails on a row, write the fallback judgments (marked judge_failed) and exit 0; "
        "default: keep the row's previous values and exit 1",
    )
    args = parser.parse_args(argv)
    try:
        results = rejudge(
            args.predictions,
            args.judge,
            args.out,
            temporal=not args.no_tar,
            batch_size=args.batch_size,
            allow_fallbacks=args.allow_fallbacks,
        )
    except JudgeFailedError as e:
        print(results_markdown(e.results))
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    print(results_markdown(results))
    return results

"""Results tables (hand-computed numbers) and the `report` command (Markdown + PNG charts)."""

from __future__ import annotations

import pytest

from lit_videor2.cli import main
from lit_videor2.evaluation import PAPER_BENCHMARKS, PAPER_ROWS, compute_results, results_markdown
from lit_videor2.evaluation.predictions import write_predictions


def _rows(bench: str, group: str | None, correct, a, t, vas, tar=None) -> list[dict]:
    tar = tar or [None] * len(correct)
    return [
        {
            "id": f"{bench}-{i}",
            "benchmark": bench,
            "group": group,
            "correct": c,
            "tac_a": ai,
            "tac_t": ti,
            "vas": v,
            "tar": r,
        }
        for i, (c, ai, ti, v, r) in enumerate(zip(correct, a, t, vas, tar))
    ]


T, F = True, False
# A (generic): TP (row 0), FN (row 1), TN (row 2), FP (row 3).
ROWS_A = _rows("A", "generic", [1, 1, 0, 0], [T, T, F, F], [T, F, F, T], [10, 5, 0, 5], [1.0, None, 0.5, None])
# B (generic): all right and consistent.
ROWS_B = _rows("B", "generic", [1, 1], [T, T], [T, T], [8, 6])
# C (reasoning): one wrong answer -> conditional consistency undefined.
ROWS_C = _rows("C", "reasoning", [0], [F], [F], [2])


def test_tables_against_hand_computed_numbers():
    res = compute_results(ROWS_C + ROWS_A + ROWS_B, order=["A", "B", "C"])
    assert list(res["benchmarks"]) == ["A", "B", "C"]
    a, b, c = (res["benchmarks"][k] for k in "ABC")
    # Nothing was skipped: every table row says so (0), then the figures are compared without that column.
    for row in [a, b, c, *res["groups"].values()]:
        assert row.pop("skipped") == 0
    assert a == pytest.approx(
        {
            "group": "generic",
            "n": 4,
            "accuracy": 50.0,
            "tac_consistency": 50.0,
            "tac_agreement": 50.0,
            "vas": 50.0,
            "tar": 0.75,
        }
    )
    assert b == pytest.approx(
        {
            "group": "generic",
            "n": 2,
            "accuracy": 100.0,
            "tac_consistency": 100.0,
            "tac_agreement": 100.0,
            "vas": 70.0,
            "tar": None,
        }
    )
    assert c["tac_consistency"] is None and c["tac_agreement"] == 100.0 and c["vas"] == pytest.approx(20.0)
    g = res["groups"]
    # Unweighted means over benchmarks: Generic accuracy (50 + 100) / 2 = 75, not 4/6 = 66.7 over samples.
    assert g["Generic"] == pytest.approx(
        {
            "n": 6,
            "benchmarks": 2,
            "accuracy": 75.0,
            "tac_consistency": 75.0,
            "tac_agreement": 75.0,
            "vas": 60.0,
            "tar": 0.75,
        }
    )
    assert g["Reasoning"] == pytest.approx(
        {
            "n": 1,
            "benchmarks": 1,
            "accuracy": 0.0,
            "tac_consistency": None,
            "tac_agreement": 100.0,
            "vas": 20.0,
            "tar": None,
        }
    )
    # Overall: mean over all three benchmarks (not of the two group means); undefined values left out.
    assert g["Overall"] == pytest.approx(
        {
            "n": 7,
            "benchmarks": 3,
            "accuracy": 50.0,
            "tac_consistency": 75.0,
            "tac_agreement": 250 / 3,
            "vas": 140 / 3,
            "tar": 0.75,
        }
    )
    md = results_markdown(res)
    assert "| A | generic | 4 | 50.0 | 50.0 | 50.0 | 50.0 | 0.750 |" in md
    assert "| C | reasoning | 1 | 0.0 | – | 100.0 | 20.0 | – |" in md
    assert "| **Overall** | mean of 3 | 7 | 50.0 | 75.0 | 83.3 | 46.7 | 0.750 |" in md


def test_group_without_benchmarks_is_left_out():
    res = compute_results(ROWS_B)
    assert list(res["groups"]) == ["Generic", "Overall"]


@pytest.mark.parametrize("model", list(PAPER_ROWS))
def test_paper_overall_is_the_mean_over_benchmarks(model):
    """The published Overall equals the benchmark-weighted mean of the group averages (5 generic, 6 reasoning
    benchmarks), i.e. the unweighted mean over the 11 benchmarks that the tables compute."""
    row = PAPER_ROWS[model]
    n_gen = sum(g == "generic" for g in PAPER_BENCHMARKS.values())
    n_rea = sum(g == "reasoning" for g in PAPER_BENCHMARKS.values())
    assert (n_gen, n_rea) == (5, 6)
    assert (n_gen * row["generic"] + n_rea * row["reasoning"]) / (n_gen + n_rea) == pytest.approx(
        row["overall"], abs=0.05
    )
    # ... and not the mean of the two group means
    assert abs((row["generic"] + row["reasoning"]) / 2 - row["overall"]) > 1.0


def test_report_writes_markdown_and_charts(tmp_path, capsys):
    run1 = tmp_path / "run1" / "predictions.jsonl"
    run2 = tmp_path / "run2" / "predictions.jsonl"
    write_predictions(run1, ROWS_A + ROWS_B + ROWS_C)
    write_predictions(run2, ROWS_A + ROWS_C)
    out = tmp_path / "report"
    report = main(["report", "--predictions", str(run1), str(run2), "--compare", "paper", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "| Video-R2 | 66.7 | 41.6 | 53.0 | 81.6 | – | 69.4 | paper |" in printed
    assert "| run1 | 75.0 | 0.0 | 50.0 | 75.0 | 83.3 | 46.7 | this run |" in printed
    assert "| run2 | 50.0 | 0.0 | 25.0 | 50.0 | 75.0 | 35.0 | this run |" in printed
    assert "### run1" in printed and "### run2" in printed
    assert (out / "report.md").read_text() == report["markdown"]
    for name in ("accuracy.png", "tac.png", "vas.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name


def test_report_without_paper_and_default_out(tmp_path, capsys):
    run = tmp_path / "r" / "predictions.jsonl"
    write_predictions(run, ROWS_B)
    main(["report", "--predictions", str(run), "--labels", "mine"])
    printed = capsys.readouterr().out
    assert "paper" not in printed.split("## Per benchmark")[0].replace("--compare paper", "")
    assert "| mine | 100.0 | – | 100.0 |" in printed
    assert (tmp_path / "r" / "report" / "accuracy.png").is_file()


def test_report_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="no predictions"):
        main(["report", "--predictions", str(tmp_path / "missing.jsonl")])
    run = tmp_path / "r" / "predictions.jsonl"
    write_predictions(run, ROWS_B)
    with pytest.raises(ValueError, match="2 labels for 1"):
        main(["report", "--predictions", str(run), "--labels", "a", "b"])


def test_compare_paper_shows_coverage_of_the_eleven_benchmarks(tmp_path):
    """Names match across spellings (converter name, paper name); missing benchmarks are listed with the
    converter that reads them, and a benchmark in another group than the paper's is flagged."""
    from lit_videor2.evaluation.paper import PAPER_ADAPTERS, paper_benchmark
    from lit_videor2.report import ReportError, make_report

    assert set(PAPER_ADAPTERS) == set(PAPER_BENCHMARKS)
    assert [paper_benchmark(n) for n in ("videomme", "Video-MME", "mmvu", "MINERVA", "vsi_bench", "other")] == [
        "VideoMME",
        "VideoMME",
        "MMVU-val",
        "MINERVA",
        "VSI-Bench",
        None,
    ]
    rows = _rows("videomme", "generic", [1], [T], [T], [5]) + _rows("minerva", "generic", [0], [F], [F], [1])
    run = tmp_path / "r" / "predictions.jsonl"
    write_predictions(run, rows)
    md = make_report([run], tmp_path / "out", compare_paper=True)["markdown"]
    line = next(ln for ln in md.splitlines() if ln.startswith("- **r**"))
    assert line.startswith("- **r**: 2 of 11 paper benchmarks; missing: MVBench (`convert-benchmark --name mvbench`)")
    assert "SciVideoBench (`convert-benchmark --name scivideobench`)" in line
    assert "minerva (generic, paper: reasoning)" in line
    assert "Coverage" not in make_report([run], tmp_path / "out2")["markdown"]
    with pytest.raises(ReportError):
        make_report([tmp_path / "missing.jsonl"], tmp_path / "out3")


def test_report_and_viewer_name_runs_by_one_rule(tmp_path):
    """The viewer names predictions runs as the report does (issue 28: the two rules had drifted apart)."""
    from lit_videor2.evaluation.predictions import run_labels
    from lit_videor2.view import build

    assert build.run_labels is run_labels
    a, b = tmp_path / "a" / "eval" / "sft.jsonl", tmp_path / "b" / "eval" / "grpo.jsonl"
    assert run_labels([tmp_path / "sft" / "predictions.jsonl", tmp_path / "grpo" / "predictions.jsonl"]) == [
        "sft",
        "grpo",
    ]
    assert run_labels([a, b]) == ["eval/sft", "eval/grpo"]  # same folder name: folder/file stem
    same = [tmp_path / "a" / "eval" / "p.jsonl", tmp_path / "b" / "eval" / "p.jsonl"]
    assert run_labels(same) == [str(p) for p in same]  # still the same: the full paths
    assert run_labels([a, b], ["x", "y"]) == ["x", "y"]
    with pytest.raises(ValueError, match="2 labels for 1"):
        run_labels([a], ["x", "y"])

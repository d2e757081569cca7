"""Nothing written is lost: a killed ``test``, a full disk during ``test``, and a judge server that is down or
failing all leave earlier results intact; ``judge --no-tar`` keeps TAR; skipped records reach the tables."""

from __future__ import annotations

import errno
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lit_videor2.evaluation import compute_results, finished_ids, merge_part_files, results_markdown, write_results
from lit_videor2.evaluation import predictions as predictions_mod
from lit_videor2.evaluation.commands import JudgeFailedError, judge_main, rejudge
from lit_videor2.evaluation.predictions import (
    append_skipped,
    merge_skipped,
    part_file,
    read_predictions,
    repair_partial_line,
    skipped_file,
    write_predictions,
)

GOOD = "<think>At 00:02 a green square appears. So the answer is C.</think>\n<answer>C</answer>"


def _row(rid: str, **kw) -> dict:
    row = {
        "id": rid,
        "benchmark": "syn",
        "group": "generic",
        "completion": GOOD,
        "answer": "C",
        "problem_type": "multiple choice",
        "options": ["A. red", "B. blue", "C. green"],
        "question": "Which shape appears first?",
        "temporal_grounding": {"00:02": "A green square appears."},
        "answer_parsed": "C",
        "concluded": "C",
        "correct": 1.0,
        "concluded_accuracy": 1.0,
        "tac_a": True,
        "tac_t": True,
        "consistent": True,
        "vas": 7.0,
        "tar": 0.5,
        "judge": "earlier-judge",
    }
    row.update(kw)
    return row


# ------------------------------------------------------------------------------------------ killed `test`


def test_killed_test_partial_line_is_cut_counted_and_later_runs_merge(tmp_path, caplog):
    pred = tmp_path / "predictions.jsonl"
    write_predictions(pred, [_row("a")])  # an earlier, finished run
    part = part_file(pred, 0)
    write_predictions(part, [_row("b")], append=True)
    with part.open("a") as f:  # the run is killed in the middle of writing row c
        f.write(json.dumps(_row("c"))[:40])
    assert finished_ids(pred) == {"syn": {"a", "b"}}  # c is not finished: it will be redone
    # The resumed run appends to the same part file: the fragment is cut first, never glued to the new row.
    write_predictions(part, [_row("c")], append=True)
    assert "cut a partial last line" in caplog.text
    assert [r["id"] for r in read_predictions(part)] == ["b", "c"]
    rows = merge_part_files(pred)
    assert [r["id"] for r in rows] == ["a", "b", "c"] and rows[0]["judge"] == "earlier-judge"
    assert not list(tmp_path.glob("*.part"))


def test_complete_last_row_without_newline_is_kept(tmp_path):
    part = tmp_path / "p.jsonl.rank0.part"
    part.write_text(json.dumps(_row("a")) + "\n" + json.dumps(_row("b")))  # killed before the newline
    assert repair_partial_line(part) == 0  # nothing cut: the row is whole, it only gains its newline
    write_predictions(part, [_row("c")], append=True)
    assert [r["id"] for r in read_predictions(part)] == ["a", "b", "c"]


def test_fragment_glued_to_a_row_in_a_part_file_does_not_block_the_merge(tmp_path, caplog):
    """Part files written before the repair existed: a fragment with the next row glued to it, mid-file."""
    pred = tmp_path / "predictions.jsonl"
    part = part_file(pred, 0)
    part.write_text(json.dumps(_row("a")) + "\n" + json.dumps(_row("b"))[:30] + json.dumps(_row("c")) + "\n")
    assert finished_ids(pred) == {"syn": {"a"}}  # b and c are redone
    assert [r["id"] for r in merge_part_files(pred)] == ["a"]
    assert "skipped 1 line(s) that are not JSON" in caplog.text


# ---------------------------------------------------------------------------------------- full disk


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_while_appending_then_resume(tmp_path, monkeypatch):
    pred = tmp_path / "predictions.jsonl"
    part = part_file(pred, 0)
    write_predictions(part, [_row("a")], append=True)
    real_open = Path.open

    class HalfWriter:  # writes half of what it is given, then the disk is full
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def writelines(self, lines):
            text = "".join(lines)
            self.f.write(text[: len(text) // 2])
            self.f.flush()
            _enospc()

    def full_disk_open(self, mode="r", *a, **k):
        f = real_open(self, mode, *a, **k)
        return HalfWriter(f) if mode == "a" else f

    monkeypatch.setattr(Path, "open", full_disk_open)
    with pytest.raises(OSError, match="No space left"):
        write_predictions(part, [_row("b")], append=True)
    monkeypatch.undo()
    assert finished_ids(pred) == {"syn": {"a"}}  # b was not written completely: it is redone
    write_predictions(part, [_row("b")], append=True)  # the next run (disk freed)
    assert [r["id"] for r in merge_part_files(pred)] == ["a", "b"]


def test_full_disk_during_merge_and_tables_keeps_previous_files(tmp_path, monkeypatch):
    pred = tmp_path / "predictions.jsonl"
    write_predictions(pred, [_row("a")])
    write_predictions(part_file(pred, 0), [_row("b")], append=True)
    old_results = compute_results(read_predictions(pred))
    write_results(old_results, tmp_path, predictions=str(pred))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr(predictions_mod.os, "fsync", _enospc)  # every full rewrite fails before the rename
    with pytest.raises(OSError, match="No space left"):
        merge_part_files(pred)
    with pytest.raises(OSError, match="No space left"):
        write_results(compute_results([_row("a"), _row("b")]), tmp_path, predictions=str(pred))
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # predictions, part file and tables as they were; no temporary files left
    assert [r["id"] for r in merge_part_files(pred)] == ["a", "b"]  # the next run merges


# ------------------------------------------------------------------------------------------ judge faults


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.calls += 1
        status = self.server.status
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": "C"}}]}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def http_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.status, httpd.calls = 500, 0
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _spec(port: int) -> str:
    return f"openai:http://127.0.0.1:{port}/v1,model=m,max_retries=1,timeout_s=2,backoff_s=0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("status", [None, 500, 400])  # None: nothing listens (connection refused)
def test_judge_server_down_or_failing_keeps_rows_and_exits_nonzero(tmp_path, http_server, status, capsys):
    http_server.status = status or 200
    port = _free_port() if status is None else http_server.server_address[1]
    pred = tmp_path / "predictions.jsonl"
    rows = [_row("a"), _row("b")]
    write_predictions(pred, rows)
    before = pred.read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        judge_main(["--predictions", str(pred), "--judge", _spec(port), "--no-tar"])
    assert exit_info.value.code == 1
    assert "the judge failed on 2 of 2 rows" in capsys.readouterr().err
    assert pred.read_bytes() == before  # every earlier value kept, byte for byte
    assert [r["judge"] for r in read_predictions(pred)] == ["earlier-judge"] * 2
    if status is not None:
        assert http_server.calls > 0


def test_judge_allow_fallbacks_marks_rows_and_exits_zero(tmp_path, http_server):
    pred = tmp_path / "predictions.jsonl"
    write_predictions(pred, [_row("a")])
    out = tmp_path / "out" / "predictions.jsonl"
    results = rejudge(pred, _spec(http_server.server_address[1]), out, temporal=False, allow_fallbacks=True)
    (row,) = read_predictions(out)
    assert row["judge_failed"] is True and row["vas"] == 0.0 and row["consistent"] is False  # fallbacks
    assert row["tar"] == 0.5  # --no-tar keeps TAR
    assert read_predictions(pred)[0]["judge"] == "earlier-judge"  # --out leaves the input alone
    assert results["benchmarks"]["syn"]["n"] == 1


def test_judge_partial_failure_keeps_only_failed_rows(tmp_path, http_server):
    """A server that fails mid-way: rows judged before keep their new judgments, the rest keep the old."""
    pred = tmp_path / "predictions.jsonl"
    write_predictions(pred, [_row("a", tar=0.25), _row("b")])

    http_server.status = 200
    with pytest.raises(JudgeFailedError):
        # batch 1 (row a) against the live server; then the server breaks for batch 2 (row b)
        import lit_videor2.evaluation.commands as commands

        real = commands.judge_batch

        def judge_then_break(batch, judge, **kw):
            out = real(batch, judge, **kw)
            http_server.status = 500
            return out

        commands.judge_batch = judge_then_break
        try:
            rejudge(pred, _spec(http_server.server_address[1]), temporal=False, batch_size=1)
        finally:
            commands.judge_batch = real
    a, b = read_predictions(pred)
    assert a["judge"].startswith("openai:m@") and a["tar"] == 0.25 and "judge_failed" not in a
    assert b["judge"] == "earlier-judge" and b["vas"] == 7.0


def test_rule_judge_no_tar_keeps_existing_tar(tmp_path):
    pred = tmp_path / "predictions.jsonl"
    write_predictions(pred, [_row("a", tar=0.75)])
    rejudge(pred, "rule", temporal=False)
    (row,) = read_predictions(pred)
    assert row["tar"] == 0.75 and row["judge"] == "rule"


# ---------------------------------------------------------------------------------------- skipped records


def test_skipped_records_are_counted_with_reasons_in_the_tables(tmp_path):
    pred = tmp_path / "predictions.jsonl"
    rows = [_row("a"), _row("b")]
    append_skipped(pred, 0, [{"id": "c", "benchmark": "syn", "reason": "record 'c': video file not found"}])
    append_skipped(pred, 1, [{"id": "b", "benchmark": "syn", "reason": "retried and succeeded"}])
    append_skipped(pred, 1, [{"id": "z", "benchmark": "other", "reason": "aspect ratio 250:1"}])
    read = [{"benchmark": "syn", "id": None, "reason": "a.json[3] (id 'd'): empty question in 'problem'"}]
    skipped = merge_skipped(pred, rows, read)
    assert [(e["benchmark"], e["id"]) for e in skipped] == [("syn", None), ("syn", "c"), ("other", "z")]
    assert [json.loads(x)["id"] for x in skipped_file(pred).read_text().splitlines()] == [None, "c", "z"]
    results = compute_results(rows, ["syn", "other"], skipped, {"other": "reasoning"})
    assert results["benchmarks"]["syn"]["skipped"] == 2 and results["benchmarks"]["syn"]["n"] == 2
    other = results["benchmarks"]["other"]
    assert other["n"] == 0 and other["skipped"] == 1 and other["group"] == "reasoning" and other["accuracy"] is None
    assert results["groups"]["Overall"]["skipped"] == 3
    assert results["groups"]["Overall"]["accuracy"] == 100.0  # a benchmark with no rows is left out of the mean
    md = results_markdown(results)
    assert "| skipped |" in md and "Skipped records (3" in md and "video file not found" in md
    assert "empty question" in md and "aspect ratio 250:1" in md
    write_results(results, tmp_path)
    assert len(json.loads((tmp_path / "results.json").read_text())["skipped"]) == 3

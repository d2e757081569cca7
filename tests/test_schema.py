"""Annotation schemas: Video-R2 and Video-R1 records normalise to the same VideoRecord; bad records fail clearly."""

from __future__ import annotations

import json
import logging

import pytest

from lit_videor2.data.records import VideoRecord
from lit_videor2.data.schema import RecordError, load_records, parse_record

QUESTION = "Which shape appears first?\nOptions:\nA. a red circle\nB. a blue square"
THINK = "<think>At 00:03 a red circle appears. At 00:05 a blue square appears.</think>"

VIDEO_R2 = {
    "id": "q1",
    "video": "clips/x.mp4",
    "conversations": [
        {"from": "human", "value": f"<video>\n{QUESTION}"},
        {"from": "gpt", "value": f"{THINK}\n<answer>A</answer>"},
    ],
    "temporal_grounding": {"00:03": "A red circle appears.", "00:05": "A blue square appears."},
    "problem_type": "multiple choice",
}

VIDEO_R1 = {
    "problem_id": "q1",
    "problem": "Which shape appears first?",
    "data_type": "video",
    "problem_type": "multiple choice",
    "options": ["A. a red circle", "B. a blue square"],
    "solution": "<answer>A</answer>",
    "path": "clips/x.mp4",
    "process": THINK,
    "temporal_grounding": {"00:03": "A red circle appears.", "00:05": "A blue square appears."},
    "data_source": "synthetic",
}


def _write(tmp_path, name, records, jsonl=False):
    p = tmp_path / name
    p.write_text("\n".join(json.dumps(r) for r in records) if jsonl else json.dumps(records))
    return p


def test_both_schemas_give_the_same_record():
    r2 = parse_record(VIDEO_R2, "a.json[0]", "a:0")
    r1 = parse_record(VIDEO_R1, "b.json[0]", "b:0")
    for rec in (r1, r2):
        assert isinstance(rec, VideoRecord)
        assert rec.id == "q1" and rec.video == "clips/x.mp4"
        assert rec.question == QUESTION  # <video> tag stripped; options in the text
        assert rec.answer == "A"
        assert rec.problem_type == "multiple choice"
        assert rec.options == ["A. a red circle", "B. a blue square"]
        assert rec.solution == f"{THINK}\n<answer>A</answer>"
        assert rec.temporal_grounding == VIDEO_R2["temporal_grounding"]
    assert r1.extra == {"data_source": "synthetic"} and r2.extra == {}
    assert r1.source == "b.json[0]"


def test_video_r2_options_parsed_from_question_when_absent():
    raw = {k: v for k, v in VIDEO_R2.items() if k not in ("id", "problem_type")}
    rec = parse_record(raw, "f.json[3]", "f:3")
    assert rec.options == ["A. a red circle", "B. a blue square"]
    assert rec.id == "f:3" and rec.problem_type is None


def test_video_r1_without_process_has_no_sft_target():
    raw = {k: v for k, v in VIDEO_R1.items() if k != "process"}
    assert parse_record(raw, "w", "d").solution is None


@pytest.mark.parametrize("alias, canonical", [("MCQ", "multiple choice"), ("numeric", "numerical"), ("ocr", "OCR")])
def test_problem_type_aliases(alias, canonical):
    assert parse_record({**VIDEO_R2, "problem_type": alias}, "w", "d").problem_type == canonical


def test_untagged_solution_is_kept_as_the_answer():
    raw = {**VIDEO_R1, "solution": " 3.5 "}  # the reference would turn this into ""
    assert parse_record(raw, "w", "d").answer == "3.5"
    assert parse_record({**VIDEO_R1, "solution": "<answer> B </answer>"}, "w", "d").answer == "B"


@pytest.mark.parametrize("jsonl", [False, True])
def test_load_records_json_and_jsonl(tmp_path, jsonl):
    p = _write(tmp_path, "ann.jsonl" if jsonl else "ann.json", [VIDEO_R2, {**VIDEO_R1, "problem_id": "q2"}], jsonl)
    report = load_records(p)
    assert [r.id for r in report.records] == ["q1", "q2"] and report.skipped == []
    assert report.records[0].source == (f"{p}:1" if jsonl else f"{p}[0]")


# ------------------------------------------------------------------------------------------------ bad records


def test_missing_field_named(tmp_path):
    bad = {k: v for k, v in VIDEO_R1.items() if k != "path"}
    p = _write(tmp_path, "a.json", [VIDEO_R2, bad])
    with pytest.raises(RecordError, match=rf"{p}\[1\] \(id 'q1'\): missing required field 'path'"):
        load_records(p)


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text(json.dumps(VIDEO_R2) + "\n\n" + '{"video": "x.mp4", "conv\n')
    with pytest.raises(RecordError, match=rf"{p}:3: malformed JSON line"):
        load_records(p)


def test_malformed_json_file_names_file_and_line(tmp_path):
    p = tmp_path / "a.json"
    p.write_text('[\n {"video": "x.mp4"},\n {"video": \n]')
    with pytest.raises(RecordError, match=rf"{p}:4: malformed JSON"):
        load_records(p)


def test_json_file_must_hold_a_list(tmp_path):
    p = tmp_path / "a.json"
    p.write_text("[1, 2]")  # a list, but of non-records
    with pytest.raises(RecordError, match=r"must be a JSON object"):
        load_records(p)


@pytest.mark.parametrize(
    "raw", [{**VIDEO_R1, "data_type": "image"}, {"image": "a.jpg", "problem": "?", "solution": "<answer>A</answer>"}]
)
def test_image_only_record_rejected(tmp_path, raw):
    p = _write(tmp_path, "a.json", [raw])
    with pytest.raises(RecordError, match=rf"{p}\[0\].*: image-only record"):
        load_records(p)


def test_duplicate_ids_rejected(tmp_path):
    p = _write(tmp_path, "a.jsonl", [VIDEO_R2, VIDEO_R2], jsonl=True)
    with pytest.raises(RecordError, match=rf"{p}:2: duplicate id 'q1' \(first at {p}:1\)"):
        load_records(p)


def test_unknown_problem_type_rejected(tmp_path):
    p = _write(tmp_path, "a.json", [{**VIDEO_R2, "problem_type": "essay"}])
    with pytest.raises(RecordError, match=r"unknown problem_type 'essay'"):
        load_records(p)


def test_unknown_schema_rejected():
    with pytest.raises(RecordError, match="unknown schema"):
        parse_record({"clip": "x.mp4", "q": "?"}, "w", "d")


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="annotation file not found"):
        load_records("/nonexistent/ann.json")


def test_on_error_skip_counts_every_bad_record(tmp_path, caplog):
    lines = [
        json.dumps(VIDEO_R2),  # good
        "{not json",  # malformed line
        json.dumps({**VIDEO_R1, "problem_id": "q2", "data_type": "image"}),  # image-only
        json.dumps(VIDEO_R2),  # duplicate id
        json.dumps({**VIDEO_R1, "problem_id": "q3", "problem_type": "essay"}),  # unknown problem type
        json.dumps({**VIDEO_R1, "problem_id": "q4"}),  # good
    ]
    p = tmp_path / "a.jsonl"
    p.write_text("\n".join(lines))
    with caplog.at_level(logging.WARNING):
        report = load_records(p, on_error="skip")
    assert [r.id for r in report.records] == ["q1", "q4"]
    assert len(report.skipped) == 4
    assert [s.split(": ")[0] for s in report.skipped] == [f"{p}:2", f"{p}:3 (id 'q2')", f"{p}:4", f"{p}:5 (id 'q3')"]
    assert "skipped 4 bad record(s)" in caplog.text

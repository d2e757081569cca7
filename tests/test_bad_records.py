"""Every bad record gets a clear error naming file, line/index and id, or a counted skip (``on_error='skip'``)."""

from __future__ import annotations

import json

import pytest

from lit_videor2.data.collate import VideoCollator
from lit_videor2.data.dataset import SkippedSample, VideoDataset
from lit_videor2.data.decoding import VideoDecodeError
from lit_videor2.data.frames import FrameLoader
from lit_videor2.data.schema import RecordError, load_records
from lit_videor2.errors import UserError
from tests.fixtures import SMALL, processors, synth_dir, tiny_models  # noqa: F401

R1 = {
    "problem_id": "ok",
    "problem": "What?",
    "solution": "<answer>B</answer>",
    "path": "x.mp4",
    "options": ["A. a", "B. b"],
}
R2 = {"id": "ok2", "video": "x.mp4", "conversations": [{"from": "human", "value": "<video>\nWhat?"}], "answer": "B"}

CASES = [
    ({**R1, "options": "A. a B. b"}, r"field 'options' must be a list .* got str .*never split into characters"),
    ({**R1, "options": 3}, r"field 'options' must be a list .* got int 3"),
    ({**R1, "problem": 5}, r"field 'problem' must be a string, got int 5"),
    ({**R1, "problem": "   "}, r"empty question in 'problem'"),
    ({**R1, "process": ["<think>x</think>"]}, r"field 'process' must be a string, got list"),
    ({**R1, "temporal_grounding": ["00:01"]}, r"'temporal_grounding' must be an object"),
    ({**R2, "options": "A. a"}, r"field 'options' must be a list"),  # Video-R2 schema too
    ({**R2, "conversations": [{"from": "human", "value": 7}]}, r"field 'conversations\[0\].value' must be a string"),
    ({**R2, "conversations": [{"from": "human", "value": "<video>\n "}]}, r"empty question"),
]


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
@pytest.mark.parametrize("bad, message", CASES)
def test_wrong_field_types_name_file_line_and_id(tmp_path, fmt, bad, message):
    bad = {**bad, "problem_id": "bad"} if "problem" in bad else {**bad, "id": "bad"}
    path = tmp_path / f"a.{fmt}"
    rows = [R1, bad]
    path.write_text("\n".join(json.dumps(r) for r in rows) if fmt == "jsonl" else json.dumps(rows))
    where = r"a.jsonl:2 \(id 'bad'\)" if fmt == "jsonl" else r"a.json\[1\] \(id 'bad'\)"
    with pytest.raises(RecordError, match=rf"{where}: {message}"):
        load_records(path)
    report = load_records(path, on_error="skip")
    assert [r.id for r in report.records] == ["ok"] and len(report.skipped) == 1
    assert isinstance(RecordError("x"), UserError) and isinstance(RecordError("x"), ValueError)


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_non_utf8_bytes_are_that_records_error(tmp_path, fmt):
    good = json.dumps(R1).encode()
    bad = json.dumps({**R1, "problem_id": "latin1", "problem": "caf\u00e9?"}).encode().replace(b"\\u00e9", b"\xe9")
    path = tmp_path / f"a.{fmt}"
    path.write_bytes(good + b"\n" + bad if fmt == "jsonl" else b"[" + good + b"," + bad + b"]")
    with pytest.raises(RecordError, match=r"\(id 'latin1'\): field \['problem'\] holds bytes that are not UTF-8"):
        load_records(path)
    report = load_records(path, on_error="skip")
    assert [r.id for r in report.records] == ["ok"] and len(report.skipped) == 1


def test_string_options_never_split(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{**R1, "options": "ABCD"}]))
    report = load_records(path, on_error="skip")
    assert report.records == [] and "never split into characters" in report.skipped[0]


class _Boom(FrameLoader):
    def __call__(self, path, srt_path=None):
        raise MemoryError("resize ran out of memory")


def test_any_exception_while_loading_a_video_is_the_records_error(synth_dir):  # noqa: F811
    records = load_records(synth_dir / "train.json").records[:2]
    ds = VideoDataset(records, synth_dir, _Boom(SMALL), on_error="skip")
    skipped = ds[0]
    assert isinstance(skipped, SkippedSample) and f"record {records[0].id!r} ({records[0].source})" in skipped.reason
    assert "MemoryError: resize ran out of memory" in skipped.reason and records[0].video in skipped.reason
    with pytest.raises(VideoDecodeError, match=rf"record '{records[0].id}' .*MemoryError"):
        VideoDataset(records, synth_dir, _Boom(SMALL))[0]


def test_processor_failure_is_the_records_error_and_skippable(synth_dir, processors, monkeypatch):  # noqa: F811
    proc = processors("qwen2_5_vl")
    records = load_records(synth_dir / "train.json").records[:2]
    samples = [VideoDataset(records, synth_dir, FrameLoader(SMALL))[i] for i in range(2)]
    collator = VideoCollator(proc, "sft", on_error="skip")
    real = collator._process

    def flaky(sample):
        if sample.record.id == records[0].id:
            raise IndexError("processor blew up")
        return real(sample)

    monkeypatch.setattr(collator, "_process", flaky)
    batch = collator(samples)
    assert batch["num_skipped"] == 1 and batch["batch_size"] == 1
    assert "the processor failed (IndexError: processor blew up)" in batch["skipped"][0]["reason"]
    collator.on_error = "raise"
    with pytest.raises(RecordError, match=rf"record '{records[0].id}' \(.*train.json\[0\]\).*processor blew up"):
        collator(samples)

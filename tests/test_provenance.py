"""Predictions files record who wrote them: a resume by another model or with other settings is refused."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from lit_videor2.evaluation.provenance import (
    ResumeMismatch,
    check_identity,
    identity_file,
    model_fingerprint,
    run_identity,
    write_identity,
)
from lit_videor2.rollout.engine import GenerationSettings


def _model(folder, weights: bytes, config: str = '{"hidden_size": 64}'):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(config)
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "README.md").write_text("a model card")
    return folder


def test_fingerprint_follows_contents_not_path(tmp_path):
    big = bytes(range(256)) * (3 << 12)  # 3 MiB: read at both ends, not in the middle
    a = _model(tmp_path / "a", big)
    b = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, b)
    assert model_fingerprint(a) == model_fingerprint(b)  # moved or copied: same model
    (b / "README.md").write_text("an edited model card")  # not a file that decides the outputs
    assert model_fingerprint(a) == model_fingerprint(b)
    tail = bytearray(big)
    tail[-10] ^= 1
    assert model_fingerprint(_model(tmp_path / "c", bytes(tail))) != model_fingerprint(a)
    head = bytearray(big)
    head[10] ^= 1
    assert model_fingerprint(_model(tmp_path / "d", bytes(head))) != model_fingerprint(a)
    assert model_fingerprint(_model(tmp_path / "e", big, '{"hidden_size": 128}')) != model_fingerprint(a)
    assert model_fingerprint("Qwen/Qwen2.5-VL-7B-Instruct") == "id:Qwen/Qwen2.5-VL-7B-Instruct"


def test_check_identity_refuses_rows_of_another_run(tmp_path, caplog):
    sft, grpo = _model(tmp_path / "sft", b"sft weights"), _model(tmp_path / "grpo", b"grpo weights")
    pred = tmp_path / "eval" / "predictions.jsonl"
    greedy = GenerationSettings(max_new_tokens=128)
    mine = run_identity(sft, greedy)

    check_identity(pred, run_identity(grpo, greedy), has_rows=False)  # nothing to resume: anything goes
    with caplog.at_level(logging.WARNING):
        check_identity(pred, mine, has_rows=True)  # rows from before the record existed: resumed, with a warning
    assert "cannot check" in caplog.text and "predictions.run.json" in caplog.text

    write_identity(pred, mine)
    assert identity_file(pred) == tmp_path / "eval" / "predictions.run.json"
    assert [p.name for p in pred.parent.iterdir()] == ["predictions.run.json"]  # no temporary file left
    assert json.loads(identity_file(pred).read_text())["policy"] == str(sft)
    check_identity(pred, mine, has_rows=True)
    check_identity(pred, run_identity(shutil.copytree(sft, tmp_path / "copy"), greedy), has_rows=True)

    with pytest.raises(ResumeMismatch, match=r"predictions\.jsonl holds rows written by another model .*grpo"):
        check_identity(pred, run_identity(grpo, greedy), has_rows=True)
    with pytest.raises(ResumeMismatch, match="other generation settings.*--model.init_args.resume false"):
        check_identity(pred, run_identity(sft, GenerationSettings(max_new_tokens=64)), has_rows=True)
    identity_file(pred).write_text("{not json")
    with pytest.raises(ResumeMismatch, match="predictions.run.json: unreadable"):
        check_identity(pred, mine, has_rows=True)

"""Validation and ``lit_videor2 test`` score completions through one path and report the same numbers.

Both loops get the same crafted completions (generation replaced by a function of the record: right, wrong,
inconsistent and badly formatted answers), so every figure is defined and they must agree to the last digit.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math

import lightning as L
import pytest
import torch
import yaml

from lit_videor2.cli import main
from lit_videor2.data.datamodule import VideoDataModule
from lit_videor2.evaluation.tables import METRICS
from lit_videor2.models.policy import PolicySpec
from lit_videor2.modules import base as base_module
from lit_videor2.modules import evaluation as eval_module
from lit_videor2.modules.base import GenerationEval
from lit_videor2.modules.sft import SFTModule
from lit_videor2.rollout.engine import Completions
from tests.fixtures import SMALL, synth_dir, tiny_model_dir  # noqa: F401


def _wrong(answer: str, options) -> str:
    if options:
        return "A" if answer.strip().upper() != "A" else "B"
    return str(float(answer) + 7)


def _completion(kind: int, answer: str, options) -> str:
    wrong = _wrong(answer, options)
    return [
        f"<think>At 00:02 a shape appears. So the answer is {answer}.</think><answer>{answer}</answer>",
        f"<think>At 00:02 a shape appears. So the answer is {wrong}.</think><answer>{answer}</answer>",
        f"<think>So the answer is {answer}.</think><answer>{wrong}</answer>",
        f"The answer is {answer}.",  # no tags: format 0, no answer block
    ][kind % 4]


def _fake_generation(order: list[str]):
    def generate(model, tokenizer, batch, settings, synced=False, gather_for_generation=True):
        cols = batch["columns"]
        texts = [
            _completion(order.index(rid), ans, opts)
            for rid, ans, opts in zip(cols["id"], cols["answer"], cols["options"])
        ]
        return Completions(texts, torch.zeros(len(texts), 1, dtype=torch.long), [5] * len(texts))

    return generate


@pytest.mark.slow
def test_validation_and_test_give_the_same_numbers(tmp_path, monkeypatch, synth_dir, tiny_model_dir):  # noqa: F811
    order = [r["id"] for r in json.loads((synth_dir / "val.json").read_text())]
    fake = _fake_generation(order)
    monkeypatch.setattr(base_module, "generate_completions", fake)
    monkeypatch.setattr(eval_module, "generate_completions", fake)

    # Validation (SFT module, generation_eval on every batch).
    module = SFTModule(
        policy=PolicySpec(path=str(tiny_model_dir), attn_implementation="sdpa"),
        optimizer=functools.partial(torch.optim.SGD, lr=0.0),
        generation_eval=GenerationEval(max_new_tokens=4),
    )
    dm = VideoDataModule(
        processor=str(tiny_model_dir),
        train_file=str(synth_dir / "train.json"),
        val_file=str(synth_dir / "val.json"),
        batch_size=3,  # 4 clips: a full and a partial batch
        sampling=SMALL,
        num_workers=0,
    )
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    (val,) = trainer.validate(module, datamodule=dm)

    # `lit_videor2 test` on the same records.
    cfg = {
        "trainer": {
            "accelerator": "cpu",
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "default_root_dir": str(tmp_path / "eval"),  # the CLI saves its config.yaml here, not in the cwd
        },
        "model": {
            "class_path": "lit_videor2.modules.evaluation.EvalModule",
            "init_args": {
                "policy": {"path": str(tiny_model_dir), "attn_implementation": "sdpa"},
                "predictions": str(tmp_path / "eval" / "predictions.jsonl"),
                "temporal": False,
            },
        },
        "data": {
            "mode": "prompt",
            "eval_batch_size": 2,
            "num_workers": 0,
            "sampling": dataclasses.asdict(SMALL),
            "benchmarks": [{"name": "syn", "file": str(synth_dir / "val.json"), "group": "generic"}],
        },
    }
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump(cfg))
    main(["test", "--config", str(tmp_path / "eval.yaml")])
    table = json.loads((tmp_path / "eval" / "results.json").read_text())["benchmarks"]["syn"]

    assert table["n"] == len(order) == 4
    defined = 0
    for key in METRICS:
        got, want = float(val[f"val/{key}"]), table[key]
        if want is None:
            assert math.isnan(got), key
        else:
            defined += 1
            assert got == pytest.approx(want, rel=1e-6, abs=1e-6), key
    assert defined == 4  # accuracy, TAC consistency and agreement, VAS (no TAR: temporal scoring is off)
    # The crafted mix: 2 of 4 answers right; of those, 1 reasoning right too; reasoning and answer agree on 2 of 4.
    assert table["accuracy"] == pytest.approx(50.0)
    assert table["tac_consistency"] == pytest.approx(50.0)
    assert table["tac_agreement"] == pytest.approx(50.0)
    assert float(val["val/format"]) == pytest.approx(75.0)

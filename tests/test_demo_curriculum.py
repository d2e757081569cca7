"""The demo curriculum: the ``appear_colour`` question kind, validation at the start of training, stale demo folders."""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from lit_videor2.cli import VideoR2CLI
from lit_videor2.demo import PrepareDemoAssets
from lit_videor2.demo.synthetic import ALL_KINDS, QUESTION_KINDS, generate_dataset
from lit_videor2.demo.synthetic_scenes import COLOURS, Scene, render_frame, single_shape_scene
from lit_videor2.text import extract_answer, extract_think
from tests.fixtures import synth_dir, tiny_model_dir, tiny_models  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def colour_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("colour")
    generate_dataset(out, num_train=12, num_val=4, seed=1, question_kinds=("appear_colour",))
    return out


def test_appear_colour_records_match_their_frames(colour_dir):
    records = json.loads((colour_dir / "train.json").read_text())
    assert "appear_colour" in ALL_KINDS and "appear_colour" not in QUESTION_KINDS  # asked for, never by default
    letters = set()
    for r in records:
        (track,) = r["scene"]["tracks"]  # exactly one shape
        t, colour = track["appear"], track["colour"]
        assert t in (1, 2, 3) and r["duration"] == 4.0
        # fixed option order: the letter is a function of the colour alone
        assert r["options"] == ["A. red", "B. green", "C. blue", "D. yellow"]
        assert r["answer"] == "ABCD"["red green blue yellow".split().index(colour)]
        letters.add(r["answer"])
        target = r["conversations"][1]["value"]
        think, answer = extract_think(target), extract_answer(target)
        assert answer == r["answer"] and f"At 00:0{t} a {colour} {track['shape']} appears." in think
        assert r["temporal_grounding"] == {f"00:0{t}": f"A {colour} {track['shape']} appears."}
        # the pixels agree: nothing before the appearance, the shape's colour after it
        scene = Scene.from_dict(r["scene"])
        assert render_frame(scene, t - 0.5).max() < 60
        frame = render_frame(scene, t + 0.5).reshape(-1, 3)
        lit = frame[frame.max(axis=1) > 100]
        assert np.abs(lit.mean(axis=0) - np.array(COLOURS[colour])).max() < 2
    assert len(letters) > 1


def test_single_shape_scene_is_seeded_and_checks_arguments():
    assert single_shape_scene([0, 1]) == single_shape_scene([0, 1])
    with pytest.raises(ValueError, match="appear_times"):
        single_shape_scene(0, appear_times=(4,))
    with pytest.raises(ValueError, match="colours"):
        single_shape_scene(0, colours=("red", "mauve"))


def test_validate_at_start_logs_step_zero(synth_dir, tiny_model_dir, tmp_path):  # noqa: F811
    """GRPO with ValidateAtStart: val/* (with the accuracy's standard error) before the first step and after it, and
    the 4 fps validation set beside it (val/4fps/*); the training batch mixes the demo's two frame layouts."""
    root = tmp_path / "run"
    gen = {"max_new_tokens": 4, "do_sample": False, "temperature": 1.0, "top_k": 0, "top_p": 1.0}
    fps4 = {"fps": 4.0, "min_frames": 2, "max_frames": 16, "min_pixels": 3136, "max_pixels": 3136}
    val_sets = [{"name": "4fps", "file": str(synth_dir / "val.json"), "sampling": fps4}]
    VideoR2CLI(
        args=[
            "fit",
            "--config", str(ROOT / "configs" / "demo" / "grpo.yaml"),
            "--model.init_args.policy.path", str(tiny_model_dir),
            "--model.init_args.rollout.group_size", "2",
            "--model.init_args.rollout.max_new_tokens", "4",
            "--model.init_args.generation_eval", json.dumps(gen),
            "--data.train_file", str(synth_dir / "train.json"),
            "--data.val_file", str(synth_dir / "val.json"),
            "--data.val_benchmarks", json.dumps(val_sets),
            "--data.batch_size", "2", "--data.eval_batch_size", "4", "--data.num_workers", "0",
            "--data.cache_dir", "null",
            "--trainer.default_root_dir", str(root),
            "--trainer.callbacks", json.dumps([{"class_path": "lit_videor2.modules.callbacks.ValidateAtStart"}]),
            "--trainer.enable_checkpointing", "false",
            "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
            "--trainer.logger.save_dir", str(root),
            "--trainer.max_steps", "1", "--trainer.val_check_interval", "1",
        ]
    )  # fmt: skip
    (path,) = sorted(root.glob("**/version_*/metrics.csv"))
    rows = [r for r in csv.DictReader(path.open()) if r.get("val/accuracy")]
    assert len(rows) == 2  # at the start (the untrained model) and after the step
    for r in rows:
        for prefix in ("val", "val/4fps"):  # the val_file at the data module's layout, then the 4 fps set
            n, acc = float(r[f"{prefix}/n"]), float(r[f"{prefix}/accuracy"]) / 100
            se = float(r[f"{prefix}/accuracy_se"])
            assert n == 4 and math.isclose(se, 100 * math.sqrt(acc * (1 - acc) / n), abs_tol=1e-6)
            assert {f"{prefix}/format", f"{prefix}/tac_consistency", f"{prefix}/tac_agreement"} <= r.keys()


def test_mixed_frame_layouts_are_balanced_and_fixed(synth_dir, tiny_model_dir):  # noqa: F811
    """``train_sampling``: each training record keeps one of the layouts (seeded, half each); validation sets follow
    the val_file in order, tagged with their name."""
    from lit_videor2.data.benchmark import Benchmark
    from lit_videor2.data.datamodule import VideoDataModule
    from lit_videor2.data.sampling import FrameSampling

    fps2 = FrameSampling(fps=2.0, min_frames=2, max_frames=8, min_pixels=3136, max_pixels=3136)
    fps4 = FrameSampling(fps=4.0, min_frames=2, max_frames=16, min_pixels=3136, max_pixels=3136)

    def make(seed: int) -> VideoDataModule:
        dm = VideoDataModule(
            processor=str(tiny_model_dir),
            train_file=str(synth_dir / "train.json"),
            val_file=str(synth_dir / "val.json"),
            mode="prompt",
            num_workers=0,
            sampling=fps2,
            train_sampling=[fps2, fps4],
            val_benchmarks=[Benchmark(name="4fps", file=str(synth_dir / "val.json"), sampling=fps4)],
            seed=seed,
        )
        dm.setup("fit")
        return dm

    dm = make(0)
    train = dm.datasets["train"]
    assert sorted(train.assignment) == [0] * 4 + [1] * 4 and train.assignment == make(0).datasets["train"].assignment
    assert train.assignment != make(1).datasets["train"].assignment  # seeded (fixed for seeds 0 and 1 here)
    frames = [len(train[i].frames.times) for i in range(len(train))]
    assert all(f == (16 if k else 8) for f, k in zip(frames, train.assignment))  # 6-10 s clips: capped counts
    val = dm.datasets["val"]
    assert [val[i].record.extra.get("benchmark") for i in range(len(val))] == [None] * 4 + ["4fps"] * 4
    assert dm.val_set_names == ["4fps"]


def test_stale_demo_folder_is_named(colour_dir, caplog):
    cb = PrepareDemoAssets(data_dir=str(colour_dir), model_dir=None, num_train=12, num_val=4)
    with caplog.at_level(logging.WARNING, logger="lit_videor2.demo.assets"):
        cb.prepare()  # asks for the default kinds; the folder holds appear_colour
    assert str(colour_dir) in caplog.text and "appear_colour" in caplog.text
    caplog.clear()
    cb = PrepareDemoAssets(
        data_dir=str(colour_dir), model_dir=None, num_train=12, num_val=4, question_kinds=["appear_colour"]
    )
    with caplog.at_level(logging.WARNING, logger="lit_videor2.demo.assets"):
        cb.prepare()
    assert caplog.text == ""


def test_appear_kinds_ask_for_the_shape_and_the_second_and_their_targets_are_true_claims(tmp_path):
    """The claims demo's three kinds on the same one-shape clips, at the demo's 84-pixel frames."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    from lit_videor2.claims import claim_summary, claim_verdicts

    kinds = ("appear_colour", "appear_shape", "appear_when")
    generate_dataset(tmp_path, num_train=30, num_val=3, seed=2, size=(84, 84), question_kinds=kinds)
    records = json.loads((tmp_path / "train.json").read_text())
    assert [r["question_kind"] for r in records[:3]] == list(kinds)
    for r in records:
        (track,) = r["scene"]["tracks"]
        t, colour, shape = track["appear"], track["colour"], track["shape"]
        target = r["conversations"][1]["value"]
        assert target.startswith(f"<think>At 00:0{t} a {colour} {shape} appears. "), target
        if r["question_kind"] == "appear_shape":
            assert r["options"] == ["A. circle", "B. square", "C. triangle"]
            assert r["answer"] == "ABC"["circle square triangle".split().index(shape)]
        elif r["question_kind"] == "appear_when":
            assert r["options"] == ["A. 00:01", "B. 00:02", "C. 00:03"] and r["answer"] == "ABC"[t - 1]
            assert "00:0" not in extract_think(target).split(".", 1)[1]  # the time is said once, in the claim
        assert extract_answer(target) == r["answer"]
        # the SFT target's evidence is one true claim stating the time, the colour and the shape
        summary = claim_summary(claim_verdicts(target, r["temporal_grounding"], duration=r["duration"]))
        assert (summary["n"], summary["true"], summary["complete"]) == (1, 1, 1), (target, summary)
        # 84 px at the demo's 7,056 pixels stays 84 px, so each 28-px video token (14-px patches merged 2 x 2)
        # is one cell of the 3 x 3 grid: the shape's pixels lie inside one token
        assert smart_resize(84, 84, factor=28, min_pixels=7056, max_pixels=7056) == (84, 84)
        lit = np.argwhere(render_frame(Scene.from_dict(r["scene"]), t + 0.5).max(axis=2) > 60)
        assert set(map(tuple, lit // 28)) == {tuple(track["cell"])}

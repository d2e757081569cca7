"""Evaluation: `lit_videor2 test` with EvalModule (predictions, tables, resume), `judge`, predictions files.

The end-to-end runs use a tiny random Qwen2.5-VL and 4 synthetic validation clips evaluated as two benchmarks
(one per group), through the same ``lit_videor2.cli.main`` the console script calls.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file, save_file

from lit_videor2.cli import main
from lit_videor2.evaluation import PREDICTION_FIELDS, compute_results, finished_ids, merge_part_files, parse_judge
from lit_videor2.evaluation.predictions import part_file, read_predictions, write_predictions
from lit_videor2.evaluation.provenance import ResumeMismatch
from lit_videor2.judges import HFJudge, OpenAIJudge, RuleBasedJudge
from tests.fixtures import synth_dir, tiny_model_dir  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


def eval_config(tmp: Path, data: Path, model: Path, *, batch_size: int = 2, devices: int = 1) -> Path:
    """A config like configs/demo/eval.yaml, small: two benchmarks over the same 4 clips, 8 new tokens."""
    small = {"fps": 1.0, "min_frames": 2, "max_frames": 8, "min_pixels": 3136, "max_pixels": 3136}
    cfg = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "devices": devices,
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "default_root_dir": str(tmp / "run"),
        },
        "model": {
            "class_path": "lit_videor2.modules.evaluation.EvalModule",
            "init_args": {
                "policy": {"path": str(model), "dtype": "float32", "attn_implementation": "sdpa"},
                "predictions": str(tmp / "eval" / "predictions.jsonl"),
                "generation": {"max_new_tokens": 8},
            },
        },
        "data": {
            "mode": "prompt",
            "eval_batch_size": batch_size,
            "num_workers": 0,
            "sampling": small,
            "benchmarks": [
                {"name": "synA", "file": str(data / "val.json"), "group": "generic"},
                {
                    "name": "synB",
                    "file": str(data / "val.json"),
                    "group": "reasoning",
                    "sampling": {**small, "fps": 2.0, "max_frames": 16},
                },
            ],
        },
    }
    path = tmp / "eval.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_test_writes_predictions_tables_and_resumes(tmp_path, synth_dir, tiny_model_dir):  # noqa: F811
    cfg = eval_config(tmp_path, synth_dir, tiny_model_dir)
    pred = tmp_path / "eval" / "predictions.jsonl"

    cli = main(["test", "--config", str(cfg)])
    assert cli.model.num_generated == 8  # 4 clips x 2 benchmarks
    rows = read_predictions(pred)
    assert len(rows) == 8 and len({(r["benchmark"], r["id"]) for r in rows}) == 8
    assert list(rows[0])[: len(PREDICTION_FIELDS)] == list(PREDICTION_FIELDS)
    for r in rows:
        assert r["group"] == {"synA": "generic", "synB": "reasoning"}[r["benchmark"]]
        assert isinstance(r["completion"], str) and 1 <= r["num_tokens"] <= 8
        assert isinstance(r["tac_a"], bool) and isinstance(r["tac_t"], bool) and 0 <= r["vas"] <= 10
        assert r["tar"] is not None  # synthetic records carry temporal_grounding
        assert r["frame_times"] and isinstance(r["options"], list) and r["judge"] == "rule"
    # synB samples at 2 fps: more frames than synA's 1 fps for the same clip
    times = {(r["benchmark"], r["id"]): r["frame_times"] for r in rows}
    assert all(len(times[("synB", i)]) > len(times[("synA", i)]) for b, i in times if b == "synA")
    assert not list(pred.parent.glob("*.part"))
    results = json.loads((pred.parent / "results.json").read_text())
    assert list(results["benchmarks"]) == ["synA", "synB"]
    assert list(results["groups"]) == ["Generic", "Reasoning", "Overall"]
    expected = compute_results(rows, ["synA", "synB"])
    assert results["groups"] == json.loads(json.dumps(expected["groups"]))
    assert "| **Overall** |" in (pred.parent / "results.md").read_text()
    assert results["predictions"] == str(pred)

    # Resume: drop two synB rows; a second run generates exactly those and keeps the other rows as they were.
    kept = [r for r in rows if not (r["benchmark"] == "synB" and r["id"] in {rows[4]["id"], rows[5]["id"]})]
    write_predictions(pred, kept)
    cli = main(["test", "--config", str(cfg)])
    assert cli.model.num_generated == 2
    again = read_predictions(pred)
    assert again[:6] == kept
    assert sorted((r["benchmark"], r["id"]) for r in again) == sorted((r["benchmark"], r["id"]) for r in rows)

    # Everything finished: nothing generated (Lightning skips the loop) and the tables are still written.
    (pred.parent / "results.json").unlink()
    cli = main(["test", "--config", str(cfg)])
    assert cli.model.num_generated == 0
    assert json.loads((pred.parent / "results.json").read_text())["groups"]["Overall"]["n"] == 8

    # resume=false starts over.
    cli = main(["test", "--config", str(cfg), "--model.init_args.resume", "false"])
    assert cli.model.num_generated == 8 and len(read_predictions(pred)) == 8

    # Another model (fine-tuned weights in a folder of the same architecture), same predictions file: refused before
    # anything is generated or written, instead of reporting the first model's rows as its own. Its own file works.
    other = shutil.copytree(tiny_model_dir, tmp_path / "other-model")
    weights = load_file(other / "model.safetensors")
    assert any(k.endswith("lm_head.weight") for k in weights)
    weights = {k: v + 1e-3 if k.endswith("lm_head.weight") else v for k, v in weights.items()}
    save_file(weights, other / "model.safetensors", metadata={"format": "pt"})
    before = pred.read_bytes()
    with pytest.raises(ResumeMismatch, match=f"{pred} holds rows written by another model"):
        main(["test", "--config", str(cfg), "--model.init_args.policy.path", str(other)])
    assert pred.read_bytes() == before
    with pytest.raises(ResumeMismatch, match="other generation settings"):
        main(["test", "--config", str(cfg), "--model.init_args.generation.max_new_tokens", "4"])
    own = tmp_path / "eval-other" / "predictions.jsonl"
    cli = main(["test", "--config", str(cfg), "--model.init_args.policy.path", str(other),
                "--model.init_args.predictions", str(own)])  # fmt: skip
    assert cli.model.num_generated == 8 and len(read_predictions(own)) == 8


@pytest.mark.slow
@pytest.mark.distributed
def test_two_ranks_gather_predictions(tmp_path, synth_dir, tiny_model_dir):  # noqa: F811
    """DDP on 2 CPU processes (gloo): each rank writes its part, rank 0 merges; the sampler's padding repeat of
    an odd-sized benchmark is written once."""
    records = json.loads((synth_dir / "val.json").read_text())[:3]
    odd = tmp_path / "data"
    odd.mkdir()
    (odd / "val.json").write_text(json.dumps(records))
    os.symlink(synth_dir / "videos", odd / "videos")
    cfg = eval_config(tmp_path, odd, tiny_model_dir, batch_size=1, devices=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "lit_videor2", "test", "--config", str(cfg), "--trainer.strategy", "ddp"]
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pred = tmp_path / "eval" / "predictions.jsonl"
    rows = read_predictions(pred)
    keys = [(r["benchmark"], r["id"]) for r in rows]
    assert len(keys) == len(set(keys)) == 6
    assert not list(pred.parent.glob("*.part"))
    results = json.loads((pred.parent / "results.json").read_text())
    assert results["groups"]["Overall"]["n"] == 6


# --------------------------------------------------------------------------------------------- batching


@pytest.mark.slow
def test_batched_greedy_equals_one_by_one(synth_dir, tiny_model_dir):  # noqa: F811
    """Left-padded batched generation continues each prompt exactly as it would alone (what batching relies on)."""
    from lit_videor2.data.datamodule import VideoDataModule
    from lit_videor2.distributed.loading import load_policy
    from lit_videor2.models.hub import load_processor
    from lit_videor2.models.policy import PolicySpec
    from lit_videor2.rollout.engine import GenerationSettings, generate_completions
    from tests.fixtures import SMALL

    def batches(bs):
        dm = VideoDataModule(
            processor=str(tiny_model_dir),
            test_file=str(synth_dir / "val.json"),
            eval_batch_size=bs,
            num_workers=0,
            sampling=SMALL,
        )
        return list(dm.test_dataloader())

    model = load_policy(PolicySpec(path=str(tiny_model_dir), attn_implementation="sdpa")).eval()
    tok = load_processor(str(tiny_model_dir)).tokenizer
    (big,) = batches(4)
    assert big["prompt_attention_mask"].sum(1).unique().numel() > 1  # prompts of different lengths: padding used
    settings = GenerationSettings(max_new_tokens=12)
    together = generate_completions(model, tok, big, settings).texts
    alone = [generate_completions(model, tok, b, settings).texts[0] for b in batches(1)]
    assert together == alone


# ------------------------------------------------------------------------------------------------ judge


def _row(completion: str, **kw) -> dict:
    row = {
        "id": "q1",
        "benchmark": "syn",
        "group": "generic",
        "completion": completion,
        "question": "Which shape?",
        "answer": "C",
        "problem_type": "multiple choice",
        "options": ["A. red", "B. blue", "C. green", "D. cyan"],
        "temporal_grounding": {"00:02": "A green square appears."},
        "answer_parsed": "Z",
        "concluded": "Z",
        "correct": 0.5,
        "tac_a": None,
        "tac_t": None,
        "vas": -1,
        "tar": None,
        "judge": "stale",
    }
    return {**row, **kw}


def test_judge_recomputes_without_generating(tmp_path, monkeypatch):
    import lit_videor2.distributed.loading as policy
    import lit_videor2.rollout.engine as generation

    def boom(*a, **k):
        raise AssertionError("judge must not load a policy or generate")

    monkeypatch.setattr(generation, "generate_completions", boom)
    monkeypatch.setattr(policy, "load_policy", boom)
    good = "<think>At 00:02 a green square appears on the left. So the answer is C.</think>\n<answer>C</answer>"
    flip = "<think>The answer is B.</think>\n<answer>(C)</answer>"
    numeric = "<think>I count 3 shapes, so 3.</think><answer>3</answer>"
    rows = [
        _row(good),
        _row(flip, id="q2"),
        _row("no tags at all", id="q3", temporal_grounding={}),
        _row(numeric, id="q4", answer="3", problem_type="numerical", options=[], temporal_grounding={}),
    ]
    src = tmp_path / "in" / "predictions.jsonl"
    write_predictions(src, rows)
    out = tmp_path / "out" / "predictions.jsonl"
    results = main(["judge", "--predictions", str(src), "--judge", "rule", "--out", str(out)])
    got = {r["id"]: r for r in read_predictions(out)}
    # (answer_parsed, concluded, correct, concluded_accuracy, tac_a, tac_t, consistent)
    expected = {
        "q1": ("C", "C", 1.0, 1.0, True, True, True),  # right and consistent
        "q2": ("C", "B", 1.0, 0.0, True, False, False),  # answer right, reasoning concludes B: a TAC false negative
        "q3": (None, None, 0.0, 0.0, False, False, False),  # no blocks
        "q4": ("3", "3", 1.0, 1.0, True, True, True),  # numeric
    }
    for rid, (parsed, concl, correct, concluded_accuracy, a, t, consistent) in expected.items():
        r = got[rid]
        assert (r["answer_parsed"], r["concluded"], r["correct"], r["concluded_accuracy"]) == (
            parsed,
            concl,
            correct,
            concluded_accuracy,
        ), rid
        assert (r["tac_a"], r["tac_t"], r["consistent"], r["judge"]) == (a, t, consistent, "rule"), rid
    assert got["q1"]["vas"] > 0 and got["q3"]["vas"] == 0.0
    assert got["q1"]["tar"] == 1.0  # "00:02 a green square appears" matches the ground-truth claim
    assert got["q2"]["tar"] == 0.0 and got["q3"]["tar"] is None  # grounded but no claims / not grounded
    assert results["benchmarks"]["syn"]["n"] == 4
    assert results["benchmarks"]["syn"]["tac_consistency"] == pytest.approx(100 * 2 / 3)  # TP=2 (q1, q4), FN=1 (q2)
    assert json.loads((out.parent / "results.json").read_text())["judge"] == "rule"
    assert (out.parent / "results.md").is_file()
    assert read_predictions(src)[0]["judge"] == "stale"  # --out leaves the input alone


def test_parse_judge_specs():
    assert isinstance(parse_judge("rule"), RuleBasedJudge)
    hf = parse_judge("hf:/models/judge,device=cuda,max_new_tokens=64")
    assert isinstance(hf, HFJudge) and (hf.model_name, hf.device, hf.max_new_tokens) == ("/models/judge", "cuda", 64)
    oa = parse_judge("openai:http://127.0.0.1:8000/v1,model=Qwen/Qwen3-32B,max_concurrency=4")
    assert isinstance(oa, OpenAIJudge)
    assert (oa.base_url, oa.model, oa.max_concurrency) == ("http://127.0.0.1:8000/v1", "Qwen/Qwen3-32B", 4)
    for bad, msg in [
        ("openai:http://x/v1", "model=NAME"),  # no model
        ("gpt", "unknown judge spec"),
        ("hf:/m,nonsense", "key=value"),
        ("hf:/m,colour=red", "colour"),  # unknown option names the option
    ]:
        with pytest.raises(ValueError, match=msg):
            parse_judge(bad)


# --------------------------------------------------------------------------------------- predictions files


def test_part_files_merge_dedup_and_resume_ids(tmp_path):
    pred = tmp_path / "predictions.jsonl"
    write_predictions(pred, [{"id": "a", "benchmark": "X", "completion": "old"}])
    write_predictions(part_file(pred, 0), [{"id": "b", "benchmark": "X"}, {"id": "a", "benchmark": "Y"}], append=True)
    # rank 1 repeats X/b (DistributedSampler padding) and X/a (already in the file)
    write_predictions(part_file(pred, 1), [{"id": "b", "benchmark": "X"}, {"id": "a", "benchmark": "X"}], append=True)
    with part_file(pred, 1).open("a") as f:
        f.write('{"id": "c", "bench')  # a line cut by a crash: that sample is simply redone
    assert finished_ids(pred) == {"X": {"a", "b"}, "Y": {"a"}}
    rows = merge_part_files(pred)
    assert [(r["benchmark"], r["id"]) for r in rows] == [("X", "a"), ("X", "b"), ("Y", "a")]
    assert rows[0]["completion"] == "old"
    assert read_predictions(pred) == rows and not list(tmp_path.glob("*.part"))


def test_bad_line_in_the_middle_names_file_and_line(tmp_path):
    pred = tmp_path / "p.jsonl"
    pred.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(ValueError, match=r"p.jsonl:2"):
        read_predictions(pred)

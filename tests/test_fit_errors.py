"""Errors a user causes inside ``fit`` print one line and no traceback (exit status 2): a Qwen2-VL processor given
with a Qwen2.5-VL model, a reward that returns inf, and a reward that raises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def inf_reward(completions: list[str], **columns) -> list[float]:
    """A broken reward: +inf for every completion."""
    return [float("inf")] * len(completions)


def raising_reward(completions: list[str], **columns) -> list[float]:
    """A broken reward: raises on every call."""
    raise KeyError("score_column")


def grpo_fit_command(model_dir: Path, data_dir: Path, root: Path, *, reward: str, extra: list[str] = ()) -> list[str]:
    """``lit_videor2 fit`` of the demo GRPO config on the tiny model, one process, one step, one reward."""
    return [
        *(sys.executable, "-m", "lit_videor2", "fit", "--config", str(REPO / "configs" / "demo" / "grpo.yaml")),
        *("--trainer.max_steps", "1", "--trainer.callbacks", "[]", "--trainer.default_root_dir", str(root)),
        *("--trainer.logger", "false", "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false"),
        *("--model.init_args.policy.path", str(model_dir), "--model.init_args.generation_eval", "null"),
        *("--model.init_args.rewards", json.dumps({"rewards": {"r": reward}, "weights": {"r": 1.0}})),
        *("--model.init_args.rollout.group_size", "2", "--model.init_args.rollout.max_new_tokens", "4"),
        *("--data.train_file", str(data_dir / "train.json"), "--data.val_file", "null"),
        *("--data.batch_size", "1", "--data.num_workers", "0", "--data.cache_dir", "null"),
        *extra,
    ]


def run_console(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("LIT_VIDEOR2_DEBUG", "LOCAL_RANK")}
    env |= {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("processor", "does not match the model"),
        ("inf", "reward 'r' returned inf on sample id"),
        ("raises", "reward 'r' raised on sample id"),
    ],
)
def test_fit_error_is_one_line_without_traceback(tmp_path, tiny_models, synth_dir, case, expected):
    reward = {"inf": "tests.test_fit_errors.inf_reward", "raises": "tests.test_fit_errors.raising_reward"}
    extra = ["--data.processor", str(tiny_models("qwen2_vl"))] if case == "processor" else []
    cmd = grpo_fit_command(
        tiny_models("qwen2_5_vl"), synth_dir, tmp_path, reward=reward.get(case, reward["inf"]), extra=extra
    )
    proc = run_console(cmd)
    assert proc.returncode == 2, proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("lit_videor2")]
    assert len(lines) == 1 and lines[0].startswith("lit_videor2 fit: error: "), proc.stderr[-4000:]
    assert expected in lines[0], lines[0]

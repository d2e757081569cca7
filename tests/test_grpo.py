"""GRPOModule: rewards composed from YAML, one full training step, robustness, exact resume."""

from __future__ import annotations

import csv
import json
import math
import textwrap
from pathlib import Path

import pytest

from lit_videor2.cli import VideoR2CLI

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "configs" / "demo" / "grpo.yaml"


def _args(synth: Path, model: Path, root: Path, *extra: str) -> list[str]:
    return [
        "--config",
        str(DEMO),
        "--model.init_args.policy.path",
        str(model),
        "--model.init_args.rollout.group_size",
        "2",
        "--model.init_args.rollout.max_new_tokens",
        "6",
        "--model.init_args.generation_eval",
        "null",
        "--data.train_file",
        str(synth / "train.json"),
        "--data.val_file",
        "null",
        "--data.batch_size",
        "2",
        "--data.num_workers",
        "0",
        "--data.cache_dir",
        "null",
        "--trainer.default_root_dir",
        str(root),
        "--trainer.callbacks",
        "[]",
        "--trainer.logger",
        "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.save_dir",
        str(root),
        "--trainer.limit_val_batches",
        "0",
        *extra,
    ]


def _cli(args: list[str]) -> VideoR2CLI:
    """Instantiate model, data and trainer from the arguments without running (no subcommand)."""
    return VideoR2CLI(args=args, run=False)


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


# -- rewards swapped in YAML ------------------------------------------------------------------------------


def test_demo_config_builds_reference_rewards(synth_dir, tiny_model_dir, tmp_path):
    cli = _cli(_args(synth_dir, tiny_model_dir, tmp_path))
    comp = cli.model.rewards
    assert comp.names == ["accuracy", "format", "temporal"]
    assert comp.weights == {"accuracy": 1.0, "format": 1.0, "temporal": 1.0}


def test_yaml_drops_tar_changes_weight_adds_user_reward(synth_dir, tiny_model_dir, tmp_path, monkeypatch):
    pkg = tmp_path / "user_pkg"
    pkg.mkdir()
    _write(pkg / "__init__.py", "")
    _write(
        pkg / "rewards.py",
        """
        def short_answer(completions, **columns):
            return [1.0 if len(c) < 40 else 0.0 for c in completions]
    """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    override = _write(
        tmp_path / "rewards.yaml",
        """
        model:
          init_args:
            rewards:
              rewards:
                accuracy: {class_path: lit_videor2.rewards.AccuracyReward}
                format: {class_path: lit_videor2.rewards.FormatReward, init_args: {strict: false}}
                brevity: user_pkg.rewards.short_answer
              weights: {accuracy: 2.0, brevity: 0.5}
    """,
    )
    cli = _cli([*_args(synth_dir, tiny_model_dir, tmp_path), "--config", str(override)])
    comp = cli.model.rewards
    assert comp.names == ["accuracy", "format", "brevity"]  # TAR dropped
    assert comp.weights == {"accuracy": 2.0, "format": 1.0, "brevity": 0.5}
    out = comp(
        ["<think>x</think><answer>A</answer>"],
        answer=["A"],
        problem_type=["multiple choice"],
        options=[["A. a", "B. b"]],
        id=["r0"],
    )
    assert out.total == [2.0 * 1.0 + 1.0 * 1.0 + 0.5 * 1.0]


# -- a real run ----------------------------------------------------------------------------------------------


def _metrics(root: Path) -> list[dict[str, str]]:
    files = sorted(root.glob("**/version_*/metrics.csv"))
    assert files, f"no metrics.csv under {root}"
    return list(csv.DictReader(files[-1].open()))


def _series(rows: list[dict[str, str]], key: str) -> dict[int, float]:
    return {int(r["step"]): float(r[key]) for r in rows if r.get(key)}


@pytest.mark.slow
def test_grpo_fit_logs_everything(synth_dir, tiny_model_dir, tmp_path):
    root = tmp_path / "run"
    cli = VideoR2CLI(
        args=[
            "fit",
            *_args(synth_dir, tiny_model_dir, root, "--trainer.max_steps", "2", "--trainer.log_every_n_steps", "1"),
        ]
    )
    assert cli.trainer.global_step == 2
    rows = _metrics(root)
    keys = set().union(*(r.keys() for r in rows))
    for k in [
        "train/reward",
        "train/rewards/accuracy_mean",
        "train/rewards/format_std",
        "train/rewards/temporal_mean",
        "train/advantage_std",
        "train/kl",
        "train/clip_frac_low",
        "train/clip_frac_high",
        "train/completion_len_mean",
        "train/completion_len_max",
        "train/truncated_frac",
        "train/zero_std_groups",
        "train/entropy",
        "train/tokens_per_s",
        "train/gen_s",
        "train/update_s",
        "train/grad_norm",
        "train/lr",
        "train/loss",
    ]:
        assert k in keys, k
    for r in rows:
        for k, v in r.items():
            if k.startswith("train/") and v:
                assert math.isfinite(float(v)), (k, v)
    table = list((root).rglob("completions_rank0.jsonl"))
    assert table, "completions table not written"
    first = json.loads(table[0].read_text().splitlines()[0])
    assert {"id", "completion", "reward", "accuracy", "format", "temporal"} <= set(first)


@pytest.mark.slow
def test_grpo_resume_is_exact(synth_dir, tiny_model_dir, tmp_path):
    """4 steps straight vs 2 steps, checkpoint, then resumed to 4: same rewards and losses at the same steps."""
    common = ("--trainer.log_every_n_steps", "1", "--model.init_args.rollout.temperature", "1.0")
    full = tmp_path / "full"
    VideoR2CLI(args=["fit", *_args(synth_dir, tiny_model_dir, full, "--trainer.max_steps", "4", *common)])
    part = tmp_path / "part"
    ckpt_cb = json.dumps(
        [
            {
                "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                "init_args": {"dirpath": str(part / "ckpt"), "every_n_train_steps": 2, "filename": "k"},
            }
        ]
    )
    VideoR2CLI(
        args=[
            "fit",
            *_args(synth_dir, tiny_model_dir, part, "--trainer.max_steps", "2", *common),
            "--trainer.callbacks",
            ckpt_cb,
        ]
    )
    ckpt = part / "ckpt" / "k.ckpt"
    assert ckpt.is_file()
    VideoR2CLI(
        args=[
            "fit",
            *_args(synth_dir, tiny_model_dir, part, "--trainer.max_steps", "4", *common),
            "--ckpt_path",
            str(ckpt),
        ]
    )
    a, b = _metrics(full), _metrics(part)
    for key in ("train/reward", "train/loss"):
        sa, sb = _series(a, key), _series(b, key)
        assert sorted(sa) == [0, 1, 2, 3], sa
        assert {2, 3} <= set(sb), sb
        for step in (2, 3):
            assert sb[step] == pytest.approx(sa[step], abs=1e-6), (key, step, sa, sb)


# -- robustness -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_raising_reward_is_named(synth_dir, tiny_model_dir, tmp_path, monkeypatch):
    pkg = tmp_path / "bad_pkg"
    pkg.mkdir()
    _write(pkg / "__init__.py", "")
    _write(
        pkg / "rewards.py",
        """
        def broken(completions, **columns):
            raise ValueError("boom")
    """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    args = _args(synth_dir, tiny_model_dir, tmp_path / "run", "--trainer.max_steps", "1")
    override = _write(
        tmp_path / "bad.yaml",
        """
        model:
          init_args:
            rewards:
              rewards: {format: {class_path: lit_videor2.rewards.FormatReward}, broken: bad_pkg.rewards.broken}
              weights: {format: 1.0, broken: 1.0}
    """,
    )
    with pytest.raises(RuntimeError, match="reward 'broken' raised on sample id"):
        VideoR2CLI(args=["fit", *args, "--config", str(override)])


@pytest.mark.slow
def test_truncated_and_equal_rewards_give_finite_zero_advantage_step(synth_dir, tiny_model_dir, tmp_path):
    """One-token completions (all truncated, all rewards equal): zero advantages, finite loss, no NaN anywhere."""
    root = tmp_path / "run"
    VideoR2CLI(
        args=[
            "fit",
            *_args(
                synth_dir,
                tiny_model_dir,
                root,
                "--trainer.max_steps",
                "1",
                "--model.init_args.rollout.max_new_tokens",
                "1",
                "--model.init_args.mask_truncated_completions",
                "true",
            ),
        ]
    )
    row = next(r for r in _metrics(root) if r.get("train/reward"))
    assert float(row["train/truncated_frac"]) == 1.0
    assert float(row["train/zero_std_groups"]) == 1.0
    assert float(row["train/advantage_abs"]) == 0.0
    assert float(row["train/loss"]) == 0.0


@pytest.mark.slow
def test_grpo_with_the_checked_temporal_reward_logs_claim_truth(synth_dir, tiny_model_dir, tmp_path):
    root = tmp_path / "run"
    override = _write(
        tmp_path / "checked.yaml",
        f"""
        model:
          init_args:
            rewards:
              rewards:
                accuracy: {{class_path: lit_videor2.rewards.AccuracyReward}}
                format: {{class_path: lit_videor2.rewards.FormatReward}}
                temporal: {{class_path: lit_videor2.rewards.TemporalAlignmentReward, init_args: {{rule: checked}}}}
            generation_eval: {{max_new_tokens: 6, do_sample: false, temporal_reward: false}}
        data:
          val_file: {synth_dir / "val.json"}
        trainer:
          limit_val_batches: 1
          val_check_interval: 1
          check_val_every_n_epoch: null
    """,
    )
    args = _args(synth_dir, tiny_model_dir, root, "--trainer.max_steps", "1", "--trainer.log_every_n_steps", "1")
    cli = VideoR2CLI(args=["fit", *args, "--config", str(override)])
    assert cli.model.rewards.rewards["temporal"].rule == "checked"
    rows = _metrics(root)
    keys = set().union(*(r.keys() for r in rows))
    assert "train/rewards/temporal_mean" in keys
    for key in ("val/claims_true", "val/with_claim", "val/stated_colour", "val/accuracy"):
        assert key in keys, key

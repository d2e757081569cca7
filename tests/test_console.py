"""The first screen of a run: logs follow ``--trainer.default_root_dir``, no unactionable warnings, a sane bar."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import yaml

from lit_videor2.cli import VideoR2CLI, main
from lit_videor2.console import UNACTIONABLE_WARNINGS, StepProgressBar

ROOT = Path(__file__).resolve().parents[1]
DEMO_GRPO = ROOT / "configs" / "demo" / "grpo.yaml"


def _demo_args(synth: Path, model: Path, root: Path) -> list[str]:
    """The GRPO demo config on the test's tiny model and data, with every output under ``root``."""
    return [
        "--config",
        str(DEMO_GRPO),
        "--model.init_args.policy.path",
        str(model),
        "--model.init_args.rollout.group_size",
        "2",
        "--model.init_args.rollout.max_new_tokens",
        "4",
        "--model.init_args.generation_eval",
        "null",
        "--data.train_file",
        str(synth / "train.json"),
        "--data.val_file",
        "null",
        "--data.num_workers",
        "0",
        "--data.cache_dir",
        "null",
        "--trainer.default_root_dir",
        str(root),
        "--trainer.limit_val_batches",
        "0",
    ]


@pytest.mark.parametrize("config", ["demo/sft.yaml", "demo/grpo.yaml", "demo/eval.yaml", "eval.yaml"])
def test_shipped_configs_leave_logger_save_dir_to_the_run_folder(config):
    logger = yaml.safe_load((ROOT / "configs" / config).read_text())["trainer"]["logger"]
    assert logger["class_path"].endswith("CSVLogger") and "save_dir" not in logger["init_args"]


def test_default_root_dir_moves_the_logs(synth_dir, tiny_model_dir, tmp_path):
    callbacks = ["--trainer.callbacks", "[]"]  # no demo assets, no checkpoint folder
    cli = VideoR2CLI(args=[*_demo_args(synth_dir, tiny_model_dir, tmp_path / "moved"), *callbacks], run=False)
    assert Path(cli.trainer.logger.save_dir) == tmp_path / "moved"
    assert Path(cli.trainer.logger.log_dir).parent == tmp_path / "moved" / "logs"

    explicit = ["--trainer.logger.init_args.save_dir", str(tmp_path / "explicit")]
    cli = VideoR2CLI(args=[*_demo_args(synth_dir, tiny_model_dir, tmp_path), *callbacks, *explicit], run=False)
    assert Path(cli.trainer.logger.save_dir) == tmp_path / "explicit"  # an explicit save_dir still wins

    without_override = [a for a in _demo_args(synth_dir, tiny_model_dir, tmp_path) if a != str(tmp_path)]
    without_override.remove("--trainer.default_root_dir")
    cli = VideoR2CLI(args=[*without_override, *callbacks], run=False)
    assert cli.trainer.logger.save_dir == "runs/demo-grpo"  # the demo's documented place: runs/demo-grpo/logs


@pytest.mark.slow
def test_demo_first_screen_has_no_unactionable_warnings(synth_dir, tiny_model_dir, tmp_path):
    checkpoint = tmp_path / "checkpoint.yaml"
    checkpoint.write_text(
        "trainer:\n  callbacks:\n    - class_path: lightning.pytorch.callbacks.ModelCheckpoint\n"
        f"      init_args: {{dirpath: {tmp_path / 'ckpt'}, filename: last, every_n_train_steps: 1}}\n"
    )
    args = ["fit", *_demo_args(synth_dir, tiny_model_dir, tmp_path), "--config", str(checkpoint)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli = main([*args, "--trainer.max_steps", "1"])
    assert (tmp_path / "ckpt" / "last.ckpt").is_file()  # the checkpoint path that used to warn ran
    assert cli.model.ref_model is not None  # the frozen reference (eval mode) was there
    messages = [str(w.message) for w in caught]
    for pattern, _why in UNACTIONABLE_WARNINGS:
        assert not [m for m in messages if re.match(pattern, m)], pattern
    assert list((tmp_path / "logs").glob("version_*/metrics.csv"))

    (bar,) = [c for c in cli.trainer.callbacks if isinstance(c, StepProgressBar)]
    assert cli.trainer.max_epochs == -1
    assert bar._get_train_description(0).strip() == "Epoch 0"  # Lightning's own bar says "Epoch 0/-2"


def test_unactionable_warnings_are_matched_exactly():
    from lit_videor2.console import quiet_unactionable_warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_unactionable_warnings()
        warnings.warn(
            "Found 67 module(s) in eval mode at the start of training. This may lead", UserWarning, stacklevel=2
        )
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning, stacklevel=2)
        warnings.warn(
            "Using ModelCheckpoint with manual optimization and every_n_train_steps, but no "
            "pre-optimization state was saved.",
            UserWarning,
            stacklevel=2,
        )
        warnings.warn("Found no module in eval mode", UserWarning, stacklevel=2)  # anything else still shows
        warnings.warn("The dataloader does not have many workers", UserWarning, stacklevel=2)
    assert [str(w.message) for w in caught] == [
        "Found no module in eval mode",
        "The dataloader does not have many workers",
    ]

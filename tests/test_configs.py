"""Every YAML under configs/ parses through the real CLI (found by globbing, not a hand list)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lit_videor2.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if "trainer" not in p.parts)
PRESETS = sorted((ROOT / "configs" / "trainer").glob("*.yaml"))


def test_configs_found():
    assert any(p.name == "sft.yaml" for p in CONFIGS), CONFIGS


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_config_parses(config, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--config", str(config), "--print_config"])
    assert exc.value.code in (0, None)
    out = capsys.readouterr().out
    assert "class_path: lit_videor2.modules" in out


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_trainer_preset_composes(preset, capsys):
    """A trainer preset composes with a stage config as its header says (``--config A --config preset``)."""
    with pytest.raises(SystemExit) as exc:
        main(
            ["fit", "--config", str(ROOT / "configs" / "demo" / "sft.yaml"), "--config", str(preset), "--print_config"]
        )
    assert exc.value.code in (0, None)
    assert "trainer:" in capsys.readouterr().out


def test_top_level_help(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("fit", "synth", "tiny-model"):
        assert cmd in out


@pytest.mark.parametrize("cmd", ["synth", "tiny-model"])
def test_project_command_help(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    assert "--out" in capsys.readouterr().out


def test_second_fit_in_same_folder_does_not_fail_on_saved_config(tmp_path, monkeypatch):
    """The run folder's saved config.yaml is overwritten, not an error, on a second fit."""
    from lit_videor2.demo.synthetic import generate_dataset
    from lit_videor2.demo.tiny import build_tiny_model

    generate_dataset(tmp_path / "data", num_train=4, num_val=2, seed=0)
    build_tiny_model("qwen2_5_vl", tmp_path / "model", seed=0)
    monkeypatch.chdir(tmp_path)
    args = [
        "fit",
        "--config",
        str(ROOT / "configs" / "demo" / "sft.yaml"),
        "--trainer.max_steps",
        "1",
        "--trainer.val_check_interval",
        "1",
        "--trainer.limit_val_batches",
        "1",
        "--trainer.default_root_dir",
        "run",
        "--trainer.logger",
        "false",
        "--trainer.callbacks",
        "[]",
        "--model.init_args.policy.path",
        "model",
        "--model.init_args.generation_eval",
        "null",
        "--data.train_file",
        "data/train.json",
        "--data.val_file",
        "data/val.json",
        "--data.batch_size",
        "2",
        "--data.num_workers",
        "0",
        "--data.cache_dir",
        "null",
    ]
    for _ in range(2):
        main(args)
    assert (tmp_path / "run" / "config.yaml").is_file()

"""The console script prints user errors as one line (exit status 2); ``main`` keeps raising for callers."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lit_videor2.benchmarks import BenchmarkFormatError
from lit_videor2.cli import UsageError, error_line, main, parse_error_line, run
from lit_videor2.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
BAD_MVBENCH = ROOT / "tests" / "data" / "benchmarks" / "malformed" / "mvbench_answer_not_a_candidate.json"

# Messages as jsonargparse 4.53 raises them with exit_on_error=False (copied from real runs of `lit_videor2 fit`).
UNION_ERROR = """Parser key "trainer.max_epochs":
  Does not validate against any of the Union subtypes
  Subtypes: [<class 'int'>, <class 'NoneType'>]
  Errors:
    - Expected a <class 'int'>
    - Expected a <class 'NoneType'>
  Given value type: <class 'str'>
  Given value: abc"""
NESTED_ERROR = """Parser key "model":
  Does not validate against any of the Union subtypes
  Subtypes: [<class 'lightning.pytorch.core.module.LightningModule'>, <class 'NoneType'>]
  Errors:
    - Problem with given class_path 'lit_videor2.modules.sft.SFTModule':
        Option 'learning_rate' is not accepted
    - Expected a <class 'NoneType'>
  Given value type: <class 'jsonargparse._util.NestedArg'>
  Given value: NestedArg(key='learning_rate', val='foo')"""


def _console(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "LIT_VIDEOR2_DEBUG"}
    environ |= {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **env}
    return subprocess.run(
        [sys.executable, "-m", "lit_videor2", *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=300
    )


def _error_lines(stderr: str) -> list[str]:
    """stderr lines that are not library warnings (Lightning/transformers may warn on import)."""
    return [ln for ln in stderr.splitlines() if ln.startswith("lit_videor2")]


# ------------------------------------------------------------------------------------------ formatting


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (UNION_ERROR, "trainer.max_epochs: expected int; Given value: abc"),
        (
            NESTED_ERROR,
            "model: Problem with given class_path 'lit_videor2.modules.sft.SFTModule'; "
            "Option 'learning_rate' is not accepted; given value: learning_rate=foo",
        ),
        (
            "Parser key \"data.batch_size\":\n  Expected a <class 'int'>. Got value: x",
            "data.batch_size: expected int. Got value: x",
        ),
        ("Parser key \"config\": File does not exist: '/a/b.yaml'", "config: File does not exist: '/a/b.yaml'"),
        ("unrecognized arguments: --bogus 1", "unrecognized arguments: --bogus 1"),
    ],
)
def test_parse_error_line_keeps_key_and_value(message, expected):
    assert parse_error_line(message) == expected


def test_error_line_strips_a_dataloader_worker_traceback():
    """torch re-raises a worker's exception with the worker traceback inside the message."""
    msg = (
        "Caught RecordError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 3, in f\n    raise RecordError(m)\n'
        "lit_videor2.data.schema.RecordError: train.json[3] (id 'a'): 'options' is a number\n"
    )
    assert error_line(UserError(msg)) == "train.json[3] (id 'a'): 'options' is a number"
    assert error_line(UserError("first line\n  second line")) == "first line second line"
    assert error_line(argparse.ArgumentError(None, UNION_ERROR)).startswith("trainer.max_epochs: expected int")


# ------------------------------------------------------------------------------------------ in process


def test_main_keeps_raising_for_programmatic_callers(tmp_path):
    with pytest.raises(BenchmarkFormatError, match="'a phone' is neither"):
        main(
            [
                "convert-benchmark",
                "--name",
                "mvbench",
                "--src",
                str(BAD_MVBENCH),
                "--out",
                str(tmp_path / "o.json"),
                "--strict",
            ]
        )
    with pytest.raises(UsageError, match="unknown command 'fitt'"):
        main(["fitt"])
    with pytest.raises(argparse.ArgumentError, match="trainer.max_epochs"):
        main(["fit", "--trainer.max_epochs", "abc"], exit_on_error=False)


def test_run_prints_one_line_and_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LIT_VIDEOR2_DEBUG", raising=False)
    out = tmp_path / "o.json"
    with pytest.raises(SystemExit) as exc:
        run(["convert-benchmark", "--name", "mvbench", "--src", str(BAD_MVBENCH), "--out", str(out), "--strict"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("lit_videor2 convert-benchmark: error: ")
    assert "mvbench_answer_not_a_candidate.json[1]" in err and "'a phone'" in err
    assert not out.exists()

    with pytest.raises(SystemExit) as exc:
        run(["convert-benchmark", "--name", "mlvu", "--src", str(tmp_path / "missing"), "--out", str(out)])
    assert exc.value.code == 2
    assert (
        capsys.readouterr().err
        == f"lit_videor2 convert-benchmark: error: benchmark source not found: {tmp_path / 'missing'}\n"
    )

    with pytest.raises(SystemExit) as exc:
        run(["fitt"])
    assert exc.value.code == 2 and "unknown command 'fitt'" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_lets_the_exception_through(tmp_path, monkeypatch, how):
    args = [
        "convert-benchmark",
        "--name",
        "mvbench",
        "--src",
        str(BAD_MVBENCH),
        "--out",
        str(tmp_path / "o.json"),
        "--strict",
    ]
    if how == "flag":
        monkeypatch.delenv("LIT_VIDEOR2_DEBUG", raising=False)
        args.append("--debug")
    else:
        monkeypatch.setenv("LIT_VIDEOR2_DEBUG", "1")
    with pytest.raises(BenchmarkFormatError):
        run(args)


def test_bugs_keep_their_traceback(monkeypatch):
    """An exception that is not a user error is not swallowed."""
    import lit_videor2.cli as cli

    def boom(argv):
        raise KeyError("bug")

    monkeypatch.setitem(cli.PROJECT_COMMANDS, "boom", ("x:y", "test"))
    monkeypatch.setattr(cli, "_resolve", lambda target: boom)
    with pytest.raises(KeyError):
        run(["boom"])


# ------------------------------------------------------------------------------------------ console script


def test_console_config_error_is_one_line(tmp_path):
    """A bad config value: one line with the key and the value, exit status 2, no usage dump."""
    proc = _console(
        ["fit", "--config", str(ROOT / "configs" / "demo" / "sft.yaml"), "--trainer.max_epochs", "abc"], tmp_path
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "usage:" not in proc.stderr
    lines = _error_lines(proc.stderr)
    assert lines == [
        "lit_videor2 fit: error: trainer.max_epochs: expected int; Given value: abc "
        "(`lit_videor2 fit --help` lists the options)"
    ]


def test_console_error_inside_fit_is_one_line_and_debug_shows_traceback(tmp_path):
    """A missing annotation file, found inside trainer.fit (the data module's setup)."""
    args = ["fit", "--config", str(ROOT / "configs" / "demo" / "sft.yaml"), "--data.train_file", "nowhere/train.json"]
    args += ["--trainer.default_root_dir", "run", "--trainer.logger", "false", "--trainer.callbacks", "[]"]
    args += ["--model.init_args.policy.path", "nowhere/model"]
    proc = _console(args, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = _error_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("lit_videor2 fit: error: "), proc.stderr
    assert "nowhere/" in lines[0]

    proc = _console(args, tmp_path, LIT_VIDEOR2_DEBUG="1")
    assert proc.returncode != 0 and "Traceback (most recent call last)" in proc.stderr

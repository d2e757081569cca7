"""Command line: ``lit_videor2 {fit,validate,test,predict}`` (LightningCLI) plus project commands.

``main(args)`` is the single entry point: the console script, ``python -m lit_videor2``, tests and notebooks
all drive the same path. ``main`` returns results and raises for programmatic callers; the console script
(:func:`run`) turns errors a user can fix into one line on stderr and exit status 2:

- :class:`~lit_videor2.errors.UserError` (bad record, bad benchmark file, bad video, ...) and
  ``FileNotFoundError``: ``lit_videor2 <command>: error: <message>``;
- a bad option or config value (jsonargparse): the key, the value and what was expected, in one line, instead of
  the full usage text;
- ``--debug`` (anywhere on the command line) or ``LIT_VIDEOR2_DEBUG=1`` shows the traceback instead.

Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch.callbacks import Callback, ProgressBar
from lightning.pytorch.callbacks.progress.rich_progress import _RICH_AVAILABLE
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.trainer import Trainer

from lit_videor2.console import StepProgressBar, quiet_unactionable_warnings
from lit_videor2.errors import UserError

#: Project commands beside Lightning's: name -> ("module:function(argv)", one-line help).
PROJECT_COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("lit_videor2.demo.synthetic:main", "write a synthetic temporal video dataset (MP4 + Video-R2 JSON)"),
    "tiny-model": ("lit_videor2.demo.tiny:tiny_model_main", "write a tiny random Qwen-VL model folder (offline)"),
    "export": ("lit_videor2.export:main", "checkpoint -> Hugging Face folder (model + processor; --merge-lora)"),
    "convert-benchmark": (
        "lit_videor2.benchmarks:main",
        "convert a public benchmark annotation file to the project schema",
    ),
    "ask": ("lit_videor2.ask:main", "answer a question about one video; print reasoning, answer and cited timestamps"),
    "judge": ("lit_videor2.evaluation.commands:judge_main", "recompute judgments (TAC, VAS, …) of a predictions file"),
    "report": ("lit_videor2.report:main", "Markdown table and PNG charts from predictions files (--compare paper)"),
    "view": ("lit_videor2.view.cli:main", "static page: reasoning beside the frames (predictions, GRPO completions)"),
}
LIGHTNING_COMMANDS = {
    "fit": "train (SFT or GRPO, chosen by the config's model class)",
    "validate": "run the validation loop",
    "test": "evaluate on benchmarks",
    "predict": "generate on a prediction set",
}


class VideoR2CLI(LightningCLI):
    """LightningCLI for lit_videor2: any LightningModule (``model.class_path``) with the shared VideoDataModule.

    The saved ``config.yaml`` of a run is overwritten when a run is repeated in the same folder, so a second
    ``fit`` does not fail on it. A logger given without ``save_dir`` writes under ``trainer.default_root_dir``
    (so ``--trainer.default_root_dir`` moves the logs too), a ``ModelCheckpoint`` without ``dirpath`` writes to
    ``<default_root_dir>/checkpoints``, and the rich progress bar is
    :class:`~lit_videor2.console.StepProgressBar`. Unless ``trainer.enable_checkpointing`` is false, a
    :class:`~lit_videor2.checkpoints.preemption.PreemptionCheckpoint` is added (when none is configured): SIGTERM
    or SLURM's requeue signal saves a whole checkpoint at the end of the step and stops the run (exit status 0).
    ``--ckpt_path last`` resumes from the newest *complete* checkpoint of the run's checkpoint folders.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from lit_videor2.data.datamodule import VideoDataModule

        kwargs.setdefault("datamodule_class", VideoDataModule)
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("auto_configure_optimizers", False)
        super().__init__(*args, **kwargs)

    def parse_arguments(self, parser: Any, args: Any) -> None:
        """Parse as LightningCLI does, but fill loggers' missing ``save_dir`` before the required-key check."""
        if isinstance(args, (dict, Namespace)):
            super().parse_arguments(parser, args)
            return
        if args is None:
            args = sys.argv[1:]
        cfg = parser.parse_args(args, _skip_validation=True)  # validated below, once save_dir is filled
        subcommand = cfg.get("subcommand")
        trainer = (cfg.get(subcommand) if subcommand else cfg).get("trainer")
        if trainer is not None:
            default_logger_save_dir(trainer)
            default_checkpoint_dirpath(trainer)
        try:
            parser.validate(cfg)
        except (TypeError, KeyError) as exc:
            parser.error(str(exc), exc)
        self.config = cfg

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Trainer:
        given = config.get("callbacks") or []
        given = given if isinstance(given, list) else [given]
        has_bar = any(isinstance(c, ProgressBar) for c in [*given, *callbacks])
        if _RICH_AVAILABLE and config.get("enable_progress_bar") is not False and not has_bar:
            callbacks = [*callbacks, StepProgressBar()]
        from lit_videor2.checkpoints.preemption import PreemptionCheckpoint

        has_preemption = any(isinstance(c, PreemptionCheckpoint) for c in [*given, *callbacks])
        if config.get("enable_checkpointing") is not False and not has_preemption:
            callbacks = [*callbacks, PreemptionCheckpoint()]  # SIGTERM / SLURM requeue: save at the step's end, stop
        return super()._instantiate_trainer(config, callbacks)

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
        """Lightning's keyword arguments of the command, with ``ckpt_path="last"`` read as the run's newest *complete*
        checkpoint (:func:`~lit_videor2.checkpoints.complete.resolve_last`); with none, the run starts afresh."""
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if kwargs.get("ckpt_path") == "last":
            from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn

            from lit_videor2.checkpoints.complete import checkpoint_dirs, resolve_last

            newest = resolve_last(self.trainer)
            if newest is None:
                where = ", ".join(map(str, checkpoint_dirs(self.trainer))) or "(no ModelCheckpoint folder)"
                rank_zero_warn(
                    f"--ckpt_path last: no complete checkpoint in {where}; the run starts from the beginning"
                )
            else:
                rank_zero_info(f"--ckpt_path last: resuming from {newest}")
            kwargs["ckpt_path"] = None if newest is None else str(newest)
        return kwargs

    def _prepare(self) -> None:
        from lit_videor2.demo import prepare_assets

        prepare_assets(self.trainer.callbacks)

    def before_fit(self) -> None:
        self._prepare()

    def before_validate(self) -> None:
        self._prepare()

    def before_test(self) -> None:
        self._prepare()

    def before_predict(self) -> None:
        self._prepare()


def default_logger_save_dir(trainer: Any) -> None:
    """Give every logger of a parsed ``trainer`` config without ``save_dir`` the run folder, in place.

    The run folder is ``trainer.default_root_dir`` (``"."`` when unset, as Lightning does), so the shipped
    configs, which leave ``save_dir`` out, put their logs in ``<default_root_dir>/logs/version_N``.

    Args:
        trainer: the ``trainer`` namespace of a parsed LightningCLI config; its ``logger`` is a bool, one
            ``class_path``/``init_args`` namespace, or a list of them.
    """
    loggers = trainer.get("logger")
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        init_args = logger.get("init_args") if hasattr(logger, "get") else None
        if init_args is not None and "save_dir" in init_args and init_args.get("save_dir") is None:
            init_args["save_dir"] = trainer.get("default_root_dir") or "."


def default_checkpoint_dirpath(trainer: Any) -> None:
    """Give every ``ModelCheckpoint`` of a parsed ``trainer`` config without ``dirpath`` the run's checkpoint folder.

    The folder is ``<trainer.default_root_dir>/checkpoints`` (``./checkpoints`` when unset), so checkpoints follow
    the run folder as the logs do (:func:`default_logger_save_dir`): two runs with different roots never write into
    one folder, and ``--trainer.default_root_dir`` moves both. Lightning's own default would put them under the
    logger's ``version_N`` folder, which changes from run to run.
    """
    callbacks = trainer.get("callbacks")
    for callback in callbacks if isinstance(callbacks, list) else [callbacks]:
        class_path = callback.get("class_path", "") if hasattr(callback, "get") else ""
        init_args = callback.get("init_args") if hasattr(callback, "get") else None
        if class_path.endswith("ModelCheckpoint") and init_args is not None and init_args.get("dirpath") is None:
            init_args["dirpath"] = str(Path(trainer.get("default_root_dir") or ".") / "checkpoints")


def _resolve(target: str) -> Callable[[list[str]], Any]:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def _top_help() -> str:
    width = max(map(len, [*PROJECT_COMMANDS, *LIGHTNING_COMMANDS]))
    lines = [
        "usage: lit_videor2 <command> [options]",
        "",
        "Video-R2 post-training with PyTorch Lightning.",
        "",
        "training and evaluation (LightningCLI; `lit_videor2 <command> --help`):",
    ]
    lines += [f"  {k:<{width}}  {v}" for k, v in LIGHTNING_COMMANDS.items()]
    lines += ["", "project commands:"]
    lines += [f"  {k:<{width}}  {v[1]}" for k, v in PROJECT_COMMANDS.items()]
    lines += ["", "example: lit_videor2 fit --config configs/demo/sft.yaml"]
    return "\n".join(lines)


class UsageError(UserError):
    """The command line itself is wrong (unknown command, bad option or config value)."""


#: Environment variable that makes the console script show tracebacks of user errors (like ``--debug``).
DEBUG_ENV = "LIT_VIDEOR2_DEBUG"
#: Exceptions the console script prints as one line (exit status 2); anything else keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, FileNotFoundError, NotADirectoryError, IsADirectoryError)


def main(args: Sequence[str] | None = None, *, exit_on_error: bool = True) -> Any:
    """Run the CLI on ``args`` (default ``sys.argv[1:]``). Returns the LightningCLI or the command's result.

    Args:
        args: the command line without the program name; ``None`` reads ``sys.argv``.
        exit_on_error: ``True`` (default): a bad option or config value of a Lightning command prints the usage
            and raises ``SystemExit(2)`` (jsonargparse's behaviour). ``False``: it raises
            ``argparse.ArgumentError`` instead, which :func:`run` turns into one line.

    Raises:
        UsageError: an unknown command.
    """
    argv = list(sys.argv[1:] if args is None else args)
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_help())
        return None
    if argv[0] in PROJECT_COMMANDS:
        return _resolve(PROJECT_COMMANDS[argv[0]][0])(argv[1:])
    if not argv[0].startswith("-") and argv[0] not in LIGHTNING_COMMANDS:
        raise UsageError(
            f"unknown command {argv[0]!r}; commands: {', '.join([*LIGHTNING_COMMANDS, *PROJECT_COMMANDS])} "
            "(`lit_videor2 --help`)"
        )
    kwargs = {} if exit_on_error else {"parser_kwargs": {"exit_on_error": False}}
    quiet_unactionable_warnings()
    return VideoR2CLI(args=None if args is None else argv, **kwargs)


_CLASS_RE = re.compile(r"<class '(?:[\w.]+\.)?(\w+)'>")
_NESTED_ARG_RE = re.compile(r"NestedArg\(key='([^']*)', val=(.*)\)$")
_NOISE = (
    "Does not validate against any of the Union subtypes",
    "Subtypes:",
    "Errors:",
    "Given value type:",
    "Expected a NoneType",
)


def parse_error_line(message: str) -> str:
    """A jsonargparse error (many lines: union subtypes, nested errors) as one line keeping the key and value.

    ``Parser key "trainer.max_epochs": ... Expected a <class 'int'> ... Given value: abc`` becomes
    ``trainer.max_epochs: expected int; Given value: abc``.
    """
    lines = [_CLASS_RE.sub(r"\1", ln.strip().lstrip("-").strip()) for ln in message.strip().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(_NOISE)]
    if not lines:
        return message.strip()
    head, rest = lines[0], lines[1:]
    m = re.match(r'Parser key "([^"]*)":\s*(.*)$', head)
    parts = [m.group(2)] if m else [head]
    for ln in rest:
        nested = _NESTED_ARG_RE.search(ln)
        ln = re.sub(r"^Expected a (\w)", lambda m: "expected " + m.group(1), ln)
        parts.append(f"given value: {nested.group(1)}={nested.group(2).strip(chr(39))}" if nested else ln)
    text = "; ".join(p.rstrip(":") for p in parts if p)
    return f"{m.group(1)}: {text}" if m else text


def error_line(exc: BaseException) -> str:
    """The one line the console script prints for a user error: the message, without traceback text.

    A DataLoader worker re-raises an error with the worker's traceback in its message; only the original
    message (its last line) is kept.
    """
    if isinstance(exc, argparse.ArgumentError):
        return parse_error_line(str(exc))
    text = str(exc).strip()
    if "Original Traceback" in text:  # re-raised from a DataLoader worker
        last = text.splitlines()[-1]
        text = re.sub(r"^[\w.]+(Error|Exception): ", "", last)
    text = " ".join(ln.strip() for ln in text.splitlines() if ln.strip())
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text = f"{text}: {exc.filename}"
    return text or type(exc).__name__


def run(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: :func:`main`, with user errors printed as one line and exit status 2.

    ``--debug`` (removed from the arguments) or ``LIT_VIDEOR2_DEBUG=1`` lets the exception through with its
    traceback. Success exits with status 0 (the result of ``main`` is not returned).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")
    args = [a for a in args if a != "--debug"]
    command = args[0] if args and not args[0].startswith("-") else None
    if argv is None:  # LightningCLI warns when given args while sys.argv has some: hand them over via sys.argv
        sys.argv[1:] = args
    try:
        main(None if argv is None else args, exit_on_error=debug)
    except (*USER_ERRORS, argparse.ArgumentError) as e:
        if debug:
            raise
        prog = "lit_videor2" + (f" {command}" if command else "")
        hint = f" (`{prog} --help` lists the options)" if isinstance(e, argparse.ArgumentError) else ""
        print(f"{prog}: error: {error_line(e)}{hint}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    run()

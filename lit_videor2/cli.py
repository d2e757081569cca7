"""Command line: ``lit_videor2 {fit,validate,test,predict}`` (LightningCLI) plus project commands.

``main(args)`` is the single entry point: the console script, ``python -m lit_videor2``, tests and notebooks
all drive the same path.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from lightning.pytorch.cli import LightningCLI

#: Project commands beside Lightning's: name -> ("module:function(argv)", one-line help).
PROJECT_COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("lit_videor2.data.synthetic:main", "write a synthetic temporal video dataset (MP4 + Video-R2 JSON)"),
    "tiny-model": ("lit_videor2.models.tiny:tiny_model_main", "write a tiny random Qwen-VL model folder (offline)"),
    "export": ("lit_videor2.export:main", "checkpoint -> Hugging Face folder (model + processor; --merge-lora)"),
    "convert-benchmark": (
        "lit_videor2.benchmarks:main",
        "convert a public benchmark annotation file to the project schema",
    ),
    "ask": ("lit_videor2.ask:main", "answer a question about one video; print reasoning, answer and cited timestamps"),
    "judge": ("lit_videor2.evaluation.commands:judge_main", "recompute judgments (TAC, VAS, …) of a predictions file"),
    "report": ("lit_videor2.report:main", "Markdown table and PNG charts from predictions files (--compare paper)"),
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
    ``fit`` does not fail on it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from lit_videor2.data.datamodule import VideoDataModule

        kwargs.setdefault("datamodule_class", VideoDataModule)
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("auto_configure_optimizers", False)
        super().__init__(*args, **kwargs)

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


def main(args: Sequence[str] | None = None) -> Any:
    """Run the CLI on ``args`` (default ``sys.argv[1:]``). Returns the LightningCLI or the command's result."""
    argv = list(sys.argv[1:] if args is None else args)
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_help())
        return None
    if argv[0] in PROJECT_COMMANDS:
        return _resolve(PROJECT_COMMANDS[argv[0]][0])(argv[1:])
    return VideoR2CLI(args=None if args is None else argv)


def run() -> None:
    """Console-script entry point: like :func:`main`, but returns nothing so the process exits with status 0."""
    main()


if __name__ == "__main__":
    run()

"""Demo assets: make the synthetic dataset and the tiny model a demo config points to, when they are missing.

Used as a callback in ``configs/demo/*.yaml`` so ``lit_videor2 fit --config configs/demo/sft.yaml`` works on a
fresh clone. It never touches existing folders, and does nothing for real data or checkpoints unless asked.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import lightning as L

log = logging.getLogger(__name__)


class PrepareDemoAssets(L.Callback):
    """Create ``data_dir`` (``lit_videor2 synth``) and ``model_dir`` (``lit_videor2 tiny-model``) if absent."""

    def __init__(
        self,
        data_dir: str | None = "data/demo",
        model_dir: str | None = "models/demo-qwen2_5_vl",
        arch: Literal["qwen2_5_vl", "qwen2_vl", "qwen3_vl"] = "qwen2_5_vl",
        num_train: int = 200,
        num_val: int = 40,
        seed: int = 0,
        hidden_size: int = 128,
        layers: int = 2,
        question_kinds: list[str] | None = None,
    ) -> None:
        """
        Args:
            data_dir: Synthetic dataset folder (None: leave data alone).
            model_dir: Tiny model folder (None: leave the model alone).
            arch: Architecture of the tiny model.
            num_train: Training clips to generate.
            num_val: Validation clips to generate.
            seed: Seed of both the data and the model weights.
            hidden_size: Tiny model width.
            layers: Tiny model decoder layers.
            question_kinds: Question kinds to generate (None: all).
        """
        self.data_dir, self.model_dir, self.arch = data_dir, model_dir, arch
        self.num_train, self.num_val, self.seed = num_train, num_val, seed
        self.hidden_size, self.layers, self.question_kinds = hidden_size, layers, question_kinds

    def prepare(self) -> None:
        """Build whatever is missing (call on one process)."""
        if self.data_dir and not (Path(self.data_dir) / "train.json").is_file():
            from lit_videor2.data.synthetic import QUESTION_KINDS, generate_dataset

            log.info("writing synthetic demo data to %s", self.data_dir)
            generate_dataset(
                self.data_dir,
                num_train=self.num_train,
                num_val=self.num_val,
                seed=self.seed,
                question_kinds=tuple(self.question_kinds or QUESTION_KINDS),
            )
        if self.model_dir and not (Path(self.model_dir) / "config.json").is_file():
            from lit_videor2.models.tiny import build_tiny_model

            log.info("writing tiny %s model to %s", self.arch, self.model_dir)
            build_tiny_model(
                self.arch, self.model_dir, seed=self.seed, hidden_size=self.hidden_size, layers=self.layers
            )

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # The CLI calls ``prepare`` before the run starts (see ``VideoR2CLI``); this catches direct Trainer use
        # after the datamodule has been set up, which is too late for the data but still makes the model.
        if trainer.is_global_zero:
            self.prepare()
        trainer.strategy.barrier("demo-assets")


def prepare_assets(callbacks: list[Any]) -> None:
    """Run :meth:`PrepareDemoAssets.prepare` for every such callback, on local rank 0 only.

    Called by the CLI before fit/validate/test, i.e. before processes are launched and data is read; other
    local ranks (re-launched scripts in DDP) wait for the folders to appear.
    """
    import os
    import time

    for cb in callbacks:
        if not isinstance(cb, PrepareDemoAssets):
            continue
        if os.environ.get("LOCAL_RANK", "0") == "0":
            cb.prepare()
            continue
        for path in filter(
            None,
            [cb.data_dir and Path(cb.data_dir) / "meta.json", cb.model_dir and Path(cb.model_dir) / "tiny_model.json"],
        ):
            deadline = time.time() + 600
            while not path.exists() and time.time() < deadline:
                time.sleep(1)

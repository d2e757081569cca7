"""Demo assets: make the synthetic dataset and the tiny model a demo config points to, when they are missing.

Used as a callback in ``configs/demo/*.yaml`` so ``lit_videor2 fit --config configs/demo/sft.yaml`` works on a
fresh clone. It never touches existing folders, and does nothing for real data or checkpoints unless asked.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

import lightning as L

from lit_videor2.demo.synthetic import QUESTION_KINDS, generate_dataset
from lit_videor2.demo.tiny import build_tiny_model
from lit_videor2.export import export_checkpoint

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
        size: int = 64,
        sft_model_dir: str | None = None,
        sft_config: str = "configs/demo/sft.yaml",
        sft_checkpoint: str = "runs/demo-sft/checkpoints/last.ckpt",
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
            question_kinds: Question kinds to generate (None: the default kinds, :data:`QUESTION_KINDS`; the demo
                configs ask for the three ``appear_*`` kinds).
            size: Frame side of the synthetic clips in pixels (square). The demo uses 84: with the Qwen-VL patch
                of 14 px merged 2 × 2, each 28-px video token then covers exactly one cell of the scene's 3 × 3
                grid (``docs/demo.md``).
            sft_model_dir: For the GRPO demo: the SFT-trained model folder. When missing, the SFT demo
                (``sft_config``) is run in a subprocess and its checkpoint exported here (None: not needed).
            sft_config: Config of the SFT stage that makes ``sft_model_dir``.
            sft_checkpoint: Checkpoint that SFT run writes, exported to ``sft_model_dir``.
        """
        self.data_dir, self.model_dir, self.arch = data_dir, model_dir, arch
        self.num_train, self.num_val, self.seed = num_train, num_val, seed
        self.hidden_size, self.layers, self.question_kinds = hidden_size, layers, question_kinds
        self.size = size
        self.sft_model_dir, self.sft_config, self.sft_checkpoint = sft_model_dir, sft_config, sft_checkpoint

    def prepare(self) -> None:
        """Build whatever is missing (call on one process); warn when an existing folder was made with other settings."""
        self._warn_if_stale()
        if self.data_dir and not (Path(self.data_dir) / "train.json").is_file():
            log.info("writing synthetic demo data to %s", self.data_dir)
            generate_dataset(
                self.data_dir,
                num_train=self.num_train,
                num_val=self.num_val,
                seed=self.seed,
                question_kinds=tuple(self.question_kinds or QUESTION_KINDS),
                size=(self.size, self.size),
            )
        if self.model_dir and not (Path(self.model_dir) / "config.json").is_file():
            log.info("writing tiny %s model to %s", self.arch, self.model_dir)
            build_tiny_model(
                self.arch, self.model_dir, seed=self.seed, hidden_size=self.hidden_size, layers=self.layers
            )
        if self.sft_model_dir and not (Path(self.sft_model_dir) / "config.json").is_file():
            self._run_sft_stage()

    def _warn_if_stale(self) -> None:
        """Existing folders are never rebuilt: say so when they differ from what this callback would make (e.g. a
        checkout made before the demo changed), and how to rebuild them."""
        wanted = {
            Path(self.data_dir or "") / "meta.json": {
                "num_train": self.num_train,
                "num_val": self.num_val,
                "question_kinds": list(self.question_kinds or QUESTION_KINDS),
                "size": [self.size, self.size],
            },
            Path(self.model_dir or "") / "tiny_model.json": {"hidden_size": self.hidden_size, "layers": self.layers},
        }
        for path, expect in wanted.items():
            if path.parent == Path("") or not path.is_file():
                continue
            meta = json.loads(path.read_text())
            found = {k: meta.get("sizes", meta).get(k) for k in expect}
            if found != expect:
                log.warning(
                    "%s was made with %s, not %s as this config asks; it is used as it is. Delete %s (and the "
                    "folders made from it: models/demo-sft, runs/demo-sft) to rebuild it.",
                    path.parent,
                    found,
                    expect,
                    path.parent,
                )

    def _run_sft_stage(self) -> None:
        """Stage 1 of the demo, exactly as a user runs it: ``lit_videor2 fit`` then ``lit_videor2 export``."""
        if not Path(self.sft_checkpoint).is_file():
            log.info("no SFT model at %s: running the SFT demo (%s) first", self.sft_model_dir, self.sft_config)
            subprocess.run([sys.executable, "-m", "lit_videor2", "fit", "--config", self.sft_config], check=True)
        export_checkpoint(self.sft_checkpoint, self.sft_model_dir, merge_lora=True)

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
    for cb in callbacks:
        if not isinstance(cb, PrepareDemoAssets):
            continue
        if os.environ.get("LOCAL_RANK", "0") == "0":
            cb.prepare()
            continue
        wanted = [
            cb.data_dir and Path(cb.data_dir) / "meta.json",
            cb.model_dir and Path(cb.model_dir) / "tiny_model.json",
            cb.sft_model_dir and Path(cb.sft_model_dir) / "lit_videor2_export.json",
        ]
        for path in filter(None, wanted):
            deadline = time.time() + 600
            while not path.exists() and time.time() < deadline:
                time.sleep(1)

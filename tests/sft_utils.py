"""Small SFT runs on CPU shared by the export, resume and distributed tests (test code, kept out of the package)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import lightning as L
import torch

from lit_videor2.data.datamodule import VideoDataModule
from lit_videor2.models.policy import LoraSpec, PolicySpec
from lit_videor2.modules.sft import SFTModule
from lit_videor2.rollout.forward import model_inputs
from tests.fixtures import SMALL


class LossRecorder(L.Callback):
    """``losses[global_step] = logged training loss`` of the step that produced that global step (1-based)."""

    def __init__(self) -> None:
        self.losses: dict[int, float] = {}
        self.where: dict[int, tuple[int, int]] = {}  # global step -> (epoch, batch index)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, i: int):
        # The logged value: synced over ranks, the global token-mean loss (``outputs`` holds this rank's share).
        self.losses[trainer.global_step] = float(trainer.callback_metrics["train/loss"])
        self.where[trainer.global_step] = (trainer.current_epoch, i)


def make_module(
    model_dir: str | Path, *, lora: bool = True, dropout: float = 0.1, lr: float = 1e-2, **policy: Any
) -> SFTModule:
    """SFTModule on a tiny model; LoRA with dropout makes the loss depend on the RNG stream."""
    spec = PolicySpec(
        path=str(model_dir),
        attn_implementation="sdpa",
        lora=LoraSpec(r=4, alpha=8, dropout=dropout) if lora else None,
        **policy,
    )
    # functools.partial (not a lambda) so the hyper-parameters pickle into the checkpoint.
    return SFTModule(policy=spec, optimizer=functools.partial(torch.optim.AdamW, lr=lr, weight_decay=0.0))


def make_datamodule(
    data_dir: str | Path, model_dir: str | Path, *, batch_size: int = 2, num_workers: int = 0, shuffle: bool = True
) -> VideoDataModule:
    return VideoDataModule(
        processor=str(model_dir),
        train_file=str(Path(data_dir) / "train.json"),
        batch_size=batch_size,
        num_workers=num_workers,
        sampling=SMALL,
        shuffle=shuffle,
        seed=0,
    )


def make_trainer(root: str | Path, *, max_steps: int, callbacks: list | None = None, **kwargs: Any) -> L.Trainer:
    kwargs.setdefault("accelerator", "cpu")
    kwargs.setdefault("devices", 1)
    return L.Trainer(
        default_root_dir=str(root),
        max_steps=max_steps,
        callbacks=callbacks or [],
        logger=False,
        enable_checkpointing=any(isinstance(c, L.pytorch.callbacks.ModelCheckpoint) for c in callbacks or []),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kwargs,
    )


def first_batch(data_dir: str | Path, model_dir: str | Path, batch_size: int = 2) -> dict[str, Any]:
    """A fixed (unshuffled) SFT batch, as the model forward takes it."""
    dm = make_datamodule(data_dir, model_dir, batch_size=batch_size, shuffle=False)
    return model_inputs(next(iter(dm.train_dataloader())))


@torch.no_grad()
def logits(model: torch.nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
    return model.eval()(**inputs, use_cache=False).logits

"""Stage 1: timestamp-aware supervised fine-tuning (cross-entropy on the assistant tokens only)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F

from lit_videor2.models.policy import explain_video_token_mismatch
from lit_videor2.models.vision import batch_positions
from lit_videor2.modules.base import PolicyModule

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Training stopped on a NaN/inf loss (``on_nonfinite='stop'``); a checkpoint was written first."""


def model_inputs(batch: dict[str, Any], model: torch.nn.Module | None = None) -> dict[str, Any]:
    """Forward inputs of the full (prompt + target) sequences of an SFT batch.

    With ``model``, explicit 3-D ``position_ids`` ``(3, B, L)`` are added
    (:func:`~lit_videor2.models.vision.batch_positions`: the original Qwen rule for Qwen2/2.5-VL), so the model
    never computes its own.
    """
    keys = (
        "input_ids",
        "attention_mask",
        "mm_token_type_ids",
        "pixel_values_videos",
        "video_grid_thw",
        "second_per_grid_ts",
    )
    out = {k: batch[k] for k in keys if k in batch}
    if model is not None:
        positions = batch_positions(model, batch)
        if positions is not None:
            out["position_ids"] = positions
    return out


def assistant_token_loss(model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
    """Mean next-token cross-entropy over label tokens, and the number of label tokens.

    Logits are computed only from the first target position on (``logits_to_keep``), not for the prompt; positions
    are explicit (:func:`model_inputs` with the model).
    """
    labels = batch["labels"]  # [B, L]
    keep = labels.shape[1] - int(batch["prompt_lengths"].min()) + 1
    try:
        out = model(**model_inputs(batch, model), logits_to_keep=keep, use_cache=False)
    except ValueError as err:
        raise explain_video_token_mismatch(err) from err
    logits = out.logits[:, :-1]  # [B, keep-1, V] predicts positions L-keep+1 .. L-1
    targets = labels[:, labels.shape[1] - keep + 1 :]  # [B, keep-1]
    n = int((targets != -100).sum())
    loss = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="sum"
    )
    return loss / max(n, 1), n


class SFTModule(PolicyModule):
    """Supervised fine-tuning on ``<think>…</think><answer>…</answer>`` targets (METHOD.md, stage 1).

    Logs ``train/loss``, ``train/lr``, ``train/grad_norm``, ``train/tokens_per_s``, ``train/nonfinite_steps``,
    ``data/skipped``; validation logs ``val/loss`` and, with ``generation_eval``, ``val/format``, ``val/accuracy``,
    ``val/tac_consistency``, ``val/tac_agreement`` (and ``val/tar``).
    """

    def __init__(self, *args: Any, on_nonfinite: Literal["skip", "stop"] = "skip", **kwargs: Any) -> None:
        """
        Args:
            on_nonfinite: On a NaN/inf loss, ``skip`` the step (counted in ``train/nonfinite_steps``) or ``stop``
                with a checkpoint (``nonfinite.ckpt`` in the run folder) and an error.
        """
        super().__init__(*args, **kwargs)
        self.on_nonfinite = on_nonfinite
        self.nonfinite_steps = 0
        self._t_last: float | None = None

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        self.log_skipped(batch)
        if not batch.get("batch_size"):
            return None
        loss, n_tokens = assistant_token_loss(self.model, batch)
        bad = torch.tensor(float(not torch.isfinite(loss)), device=self.device)
        if float(self.trainer.strategy.reduce(bad, reduce_op="max")) > 0:  # every rank skips together
            return self._nonfinite(loss)
        now = time.perf_counter()
        if self._t_last is not None:
            self.log("train/tokens_per_s", float(batch["attention_mask"].sum()) / max(now - self._t_last, 1e-9))
        self._t_last = now
        bs = batch["input_ids"].shape[0]
        loss = self._global_token_mean(loss, n_tokens)
        self.log("train/loss", loss, prog_bar=True, batch_size=bs, sync_dist=self.trainer.world_size > 1)
        self.log("train/label_tokens", float(n_tokens), batch_size=bs)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"])
        return loss

    def _global_token_mean(self, loss: torch.Tensor, n_tokens: int) -> torch.Tensor:
        """Rescale a rank's token-mean loss so the gradient is the token mean over the *global* batch.

        DDP and FSDP average gradients over ranks: with a plain per-rank mean, ranks with few label tokens would
        weigh as much as ranks with many, and results would change with the number of processes. Scaling by
        ``n_rank * world / n_global`` makes the averaged gradient that of one process on the whole batch (tensor-
        parallel ranks see the same tokens, so ``world / n_global`` is still ``dp / n_dp``). The mean of the
        scaled values over ranks (what ``sync_dist`` logs) is the global token-mean loss.
        """
        world = self.trainer.world_size
        if world == 1:
            return loss
        n_all = self.trainer.strategy.reduce(torch.tensor(float(n_tokens), device=self.device), reduce_op="sum")
        return loss * (n_tokens * world / n_all.clamp_min(1.0))

    def _nonfinite(self, loss: torch.Tensor) -> None:
        self.nonfinite_steps += 1
        self.log("train/nonfinite_steps", float(self.nonfinite_steps))
        if self.on_nonfinite == "stop":
            path = Path(self.trainer.default_root_dir) / "nonfinite.ckpt"
            self.trainer.save_checkpoint(path)
            raise NonFiniteLossError(
                f"loss is {loss.item()} at global step {self.global_step}; checkpoint written to {path}. "
                "Lower the learning rate, check the data of this step, or set model.on_nonfinite=skip."
            )
        log.warning(
            "non-finite loss %s at step %d skipped (%d so far)", loss.item(), self.global_step, self.nonfinite_steps
        )
        return None

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        self.log("train/grad_norm", self.grad_norm())

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if not batch.get("batch_size"):
            return
        if "labels" in batch:
            loss, _ = assistant_token_loss(self.model, batch)
            self.log("val/loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0], sync_dist=True)
        self.maybe_score_generation(batch, batch_idx)

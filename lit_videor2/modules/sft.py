"""Stage 1: timestamp-aware supervised fine-tuning (cross-entropy on the assistant tokens only)."""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

import torch

from lit_videor2.losses.sft import loss_terms
from lit_videor2.modules.base import NonFiniteLossError, PolicyModule
from lit_videor2.rollout.forward import label_token_losses

__all__ = ["NonFiniteLossError", "SFTModule"]

log = logging.getLogger(__name__)


class SFTModule(PolicyModule):
    """Supervised fine-tuning on ``<think>…</think><answer>…</answer>`` targets (``docs/method.md#training-recipe``, stage 1).

    Logs ``train/loss``, ``train/lr``, ``train/grad_norm``, ``train/tokens_per_s``, ``train/nonfinite_steps``,
    ``data/skipped``; validation logs ``val/loss`` and, with ``generation_eval``, the figures of
    :class:`~lit_videor2.metrics.PredictionMetrics` as ``lit_videor2 test`` computes them (``val/accuracy``,
    ``val/format``, ``val/tac_consistency``, ``val/tac_agreement``, ``val/think_accuracy``, ``val/vas``, ``val/tar``).
    """

    def __init__(
        self,
        *args: Any,
        on_nonfinite: Literal["skip", "stop"] = "skip",
        loss_aggregation: Literal["token", "sample"] = "token",
        **kwargs: Any,
    ) -> None:
        """
        Args:
            on_nonfinite: On a NaN/inf loss, ``skip`` the step (counted in ``train/nonfinite_steps``) or ``stop``
                with a checkpoint (``nonfinite.ckpt`` in the run folder) and an error.
            loss_aggregation: ``token``: the mean over every label token of the optimizer step's global batch (all
                accumulated micro-batches on all ranks; long answers weigh by their length). ``sample``: the mean
                over samples of each sample's token mean (the reference's HF Trainer at one sample per device:
                every answer weighs the same).
        """
        super().__init__(*args, **kwargs)
        if loss_aggregation not in ("token", "sample"):
            raise ValueError(f"loss_aggregation must be 'token' or 'sample', got {loss_aggregation!r}")
        self.on_nonfinite = on_nonfinite
        self.loss_aggregation = loss_aggregation
        self.nonfinite_steps = 0
        self._t_last: float | None = None
        self._acc_units = 0.0  # label tokens (or samples) this rank back-propagated since the last optimizer step
        self._acc_scale: float | None = None  # the divisor of this accumulation window's returned losses

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        """Back-propagates ``loss_sum / c`` (``c`` one constant per optimizer step, the same on every rank);
        :meth:`on_before_optimizer_step` rescales the accumulated gradients to the exact global mean."""
        self.log_skipped(batch)
        batch, dummy = self.collective_batch(batch, "train")  # an empty rank replays a batch with zero weight
        if batch is None:
            return None
        sums, counts = label_token_losses(self.model, batch)  # [B], [B]
        total, units = loss_terms(sums, counts, self.loss_aggregation)
        if dummy:
            total, units = total * 0.0, units * 0.0
        if self.any_rank(not torch.isfinite(total)):  # every rank skips together
            return self.skip_or_stop_nonfinite(
                "SFT loss",
                total,
                "Lower the learning rate, check the data of this step, or set model.init_args.on_nonfinite=skip.",
            )
        now = time.perf_counter()
        if self._t_last is not None and not dummy:
            self.log("train/tokens_per_s", float(batch["attention_mask"].sum()) / max(now - self._t_last, 1e-9))
        self._t_last = now
        step = torch.stack([total.detach().float(), units.float()])  # [2] this rank's loss sum and units
        if self.trainer.world_size > 1:
            step = self.trainer.strategy.reduce(step, reduce_op="sum")
        if self._acc_scale is None:
            self._acc_scale = max(float(step[1]), 1.0)
        self._acc_units += float(units)
        bs = batch["input_ids"].shape[0]
        self.log("train/loss", step[0] / step[1].clamp(min=1.0), prog_bar=True, batch_size=bs)  # already global
        self.log("train/label_tokens", float(counts.sum()) * (not dummy), batch_size=bs)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"])
        return total / self._acc_scale

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Make the accumulated gradient the mean over the global batch's units (tokens or samples).

        After Lightning's ``1/accumulate_grad_batches`` and the data-parallel average, the gradient is
        ``sum_r sum_m grad(loss_sum) / (c · A · W)``; multiplying by ``c · A · W / N`` (``N`` the units over all
        micro-batches and ranks) gives the global mean. Micro-steps of 400 and 4,000 tokens at mean losses 1.0 and
        2.0 weigh 1.909, not 1.5.
        """
        units = torch.tensor(self._acc_units, device=self.device)
        if self.trainer.world_size > 1:
            units = self.trainer.strategy.reduce(units, reduce_op="sum")
        scale, self._acc_units, self._acc_scale = self._acc_scale, 0.0, None
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if float(units) == 0 or scale is None:  # nothing back-propagated (skipped steps): no update
            optimizer.zero_grad(set_to_none=True)
            return
        factor = scale * self.trainer.accumulate_grad_batches * self.trainer.world_size / float(units)
        for g in grads:
            g.mul_(factor)
        self.log("train/grad_norm", self.grad_norm())

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        batch, dummy = self.collective_batch(batch, "val")  # an empty rank replays a batch, results discarded
        if batch is None:
            return
        if "labels" in batch:
            with torch.no_grad():
                sums, counts = label_token_losses(self.model, batch)
            total, units = loss_terms(sums, counts, self.loss_aggregation)
            if not dummy:
                self._val_loss += torch.stack([total.float(), units.float()]).to(self._val_loss.device)
        self.maybe_score_generation(batch, batch_idx, record=not dummy)  # a dummy runs the same forwards

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self._val_loss = torch.zeros(2, device=self.device)  # loss sum, units

    def on_validation_epoch_end(self) -> None:
        """``val/loss``: the mean over the whole validation set's label tokens (or samples), on every rank."""
        total = self._val_loss
        if self.trainer.world_size > 1:
            total = self.trainer.strategy.reduce(total, reduce_op="sum")
        if float(total[1]) > 0:
            self.log("val/loss", total[0] / total[1], prog_bar=True, sync_dist=False, rank_zero_only=False)
        super().on_validation_epoch_end()

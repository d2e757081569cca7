"""Training callbacks of the stages."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.trainer.states import TrainerFn


class ValidateAtStart(L.Callback):
    """Run the validation loop once before the first training step, so ``val/*`` is logged at step 0 too.

    Lightning's sanity check (``num_sanity_val_steps``) runs before training but logs nothing; this runs the fit
    loop's own validation loop at ``on_train_start`` exactly as Lightning does at a ``val_check_interval``, so a
    run logs its starting point (e.g. the SFT model at the start of GRPO) and its end in the same metrics file.
    Skipped when resuming from a checkpoint (``global_step > 0``) and when there are no validation batches.
    """

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step > 0 or trainer.state.fn != TrainerFn.FITTING:
            return
        epoch_loop = trainer.fit_loop.epoch_loop
        val_loop = epoch_loop.val_loop
        val_loop.setup_data()
        if val_loop.skip:  # no val_dataloader, or limit_val_batches=0
            return
        trainer.validating = True  # picks the validation loop as the active loop (logging, hooks)
        first_loop_iter = trainer._logger_connector._first_loop_iter
        val_loop.run()
        trainer.training = True
        trainer._logger_connector._first_loop_iter = first_loop_iter  # the loop restored the modules' modes

"""Preemption: on SIGTERM or SLURM's requeue signal, save a whole checkpoint at the next step boundary and stop.

Clusters announce a preemption or the end of a time limit with a signal, then kill the job after a grace period.
Lightning's own reactions do not fit a sharded run: on SIGTERM it stops without saving, and under SLURM its
requeue handler saves *inside the signal handler*, in the middle of a step, where an FSDP2 rank may be inside a
collective (the ranks' all-gathers then go out of step). :class:`PreemptionCheckpoint` instead:

* while training, replaces the SIGTERM and requeue-signal handlers by one that only records the signal;
* at the end of the step in progress, all ranks agree whether any of them got a signal (one all-reduce of a flag);
* if so, every rank saves ``<dirpath>/preempted-step=<N>.ckpt`` (written whole, :mod:`.atomic`), and the run stops
  as if ``max_steps`` were reached: ``lit_videor2 fit`` exits with status 0;
* under SLURM with Lightning's ``SLURMEnvironment(auto_requeue=True)`` (its default) and the requeue signal
  (``SLURMEnvironment.requeue_signal``, SIGUSR1 by default), rank 0 then requeues the job
  (``scontrol requeue``, as Lightning does); the requeued job resumes with ``--ckpt_path last``.

SLURM signals every process of the job, DataLoader workers included: the data module's workers ignore SIGTERM and
the requeue signal (:func:`lit_videor2.data.workers.ignore_preemption_signals`), so they keep serving batches
until the step ends.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn

log = logging.getLogger(__name__)


def slurm_job_id() -> str | None:
    """The id ``scontrol requeue`` takes for this SLURM job (``<array job>_<task>`` for array jobs), or None."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array_job}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}" if array_job else os.environ.get("SLURM_JOB_ID")
    return job if job and re.fullmatch(r"[0-9_]+", job) else None


class PreemptionCheckpoint(L.Callback):
    """Save a whole checkpoint at the next step boundary after SIGTERM (or SLURM's requeue signal), then stop.

    Args:
        dirpath: Folder of the preemption checkpoint. Default: the ``dirpath`` of the run's first ``ModelCheckpoint``,
            else ``<default_root_dir>/checkpoints``; ``--ckpt_path last`` finds it there.
        filename: Name of the checkpoint, formatted with ``step`` (the global step). Must end in ``.ckpt``.
        requeue: After saving on SLURM's requeue signal, requeue the job (``scontrol requeue``; rank 0). Only under
            Lightning's ``SLURMEnvironment`` with ``auto_requeue`` (its default when SLURM is detected).
    """

    def __init__(
        self, dirpath: str | None = None, filename: str = "preempted-step={step}.ckpt", requeue: bool = True
    ) -> None:
        if not filename.endswith(".ckpt"):
            raise ValueError(f"PreemptionCheckpoint filename {filename!r} must end in .ckpt (resume looks for those)")
        self.dirpath = dirpath
        self.filename = filename
        self.requeue = requeue
        self.received: int | None = None  # the signal number received (in this process), None before any
        self.saved_path: Path | None = None
        self._previous: dict[int, Any] = {}

    # -- signals -------------------------------------------------------------------------------------------------

    def _signals(self, trainer: L.Trainer) -> list[int]:
        found = [signal.SIGTERM]
        env = trainer._accelerator_connector.cluster_environment
        if isinstance(env, SLURMEnvironment) and env.requeue_signal is not None:
            found.append(env.requeue_signal)
        return list(dict.fromkeys(found))

    def _handler(self, signum: int, frame: Any) -> None:
        # Only record it: a handler runs between two bytecodes of the main thread, possibly inside a collective.
        if self.received is None:
            self.received = signum

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Install the handlers (after Lightning's own, which they replace while training)."""
        if threading.current_thread() is not threading.main_thread():
            rank_zero_warn("PreemptionCheckpoint: not on the main thread, signals cannot be handled here")
            return
        for signum in self._signals(trainer):
            self._previous[signum] = signal.signal(signum, self._handler)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore()

    # -- the step boundary ---------------------------------------------------------------------------------------

    def checkpoint_path(self, trainer: L.Trainer) -> Path:
        """Where the preemption checkpoint of the current step goes."""
        dirpath = self.dirpath
        if dirpath is None:
            callbacks = [cb for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint) and cb.dirpath]
            dirpath = callbacks[0].dirpath if callbacks else os.path.join(trainer.default_root_dir, "checkpoints")
        return Path(dirpath) / self.filename.format(step=trainer.global_step)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        """All ranks agree whether a signal came; if so, save and stop."""
        stop = self.received is not None
        if trainer.world_size > 1:
            stop = bool(trainer.strategy.reduce_boolean_decision(stop, all=False))
        if not stop:
            return
        signum = trainer.strategy.broadcast(self.received if self.received is not None else signal.SIGTERM)
        path = self.checkpoint_path(trainer)
        name = signal.Signals(signum).name
        rank_zero_info(f"{name} received: saving {path} at step {trainer.global_step}, then stopping")
        trainer.save_checkpoint(path)
        self.saved_path = path
        trainer.should_stop = True
        env = trainer._accelerator_connector.cluster_environment
        requeue_signal = env.requeue_signal if isinstance(env, SLURMEnvironment) else None
        if self.requeue and signum == requeue_signal and env.auto_requeue and trainer.is_global_zero:
            self._requeue()

    @staticmethod
    def _requeue() -> None:
        job = slurm_job_id()
        if job is None:
            log.warning("SLURM requeue signal received but no SLURM_JOB_ID is set: not requeued")
            return
        result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
        if result.returncode == 0:
            rank_zero_info(f"requeued SLURM job {job}")
        else:
            log.warning(f"scontrol requeue {job} failed ({result.returncode}): {result.stderr.strip()}")

    def state_dict(self) -> dict[str, Any]:
        return {}

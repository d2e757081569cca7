"""Lightning glue that lets a run resume any checkpoint the project writes, on any number of ranks.

The work is in :mod:`lit_videor2.checkpoints.resharding` (reading, checking and resharding model and optimizer states)
and in the data module (the data position in samples, :meth:`VideoDataModule.rebase_batch_progress`). Lightning
offers no plugin point for *reading* checkpoints under ``ModelParallelStrategy`` (it bypasses ``CheckpointIO``), so
:func:`install_resume_anywhere` replaces methods of the run's strategy *instance* (its class is untouched):

* ``load_checkpoint``: checks the files and the model layout, then ModelParallelStrategy (FSDP2) loads the model and
  optimizer states itself (:func:`~lit_videor2.checkpoints.resharding.load_sharded`, DCP resharding); any other strategy
  gets the checkpoint as one full dict (:func:`~lit_videor2.checkpoints.resharding.read_full_checkpoint`; a distributed
  folder is consolidated) and loads it as Lightning does.
* ``load_optimizer_state_dict`` (strategies without sharding): checks the optimizer's parameter groups first, so a
  layout mismatch is one clear line instead of torch's size error.

Before loading, a checkpoint that is not whole (its save was killed, or it was copied in part) is refused in one
line naming the newest whole one (:func:`~lit_videor2.checkpoints.complete.require_complete`). Every save the
strategy makes is all-or-nothing (:func:`~lit_videor2.checkpoints.atomic.install_atomic_saves`), which also lets a
run resumed in the folder of a sharded run replace a distributed-checkpoint folder by a file (and back).
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

from lightning.pytorch.strategies import ModelParallelStrategy, Strategy

from lit_videor2.checkpoints.atomic import install_atomic_saves
from lit_videor2.checkpoints.complete import checkpoint_dirs, require_complete
from lit_videor2.checkpoints.resharding import (
    check_checkpoint_files,
    check_model_layout,
    check_optimizer_layout,
    load_sharded,
    optimizer_param_names,
    read_full_checkpoint,
)

_FLAG = "_lit_videor2_resume_loader"


def _load_checkpoint(strategy: Strategy, checkpoint_path: Any, weights_only: bool | None = None) -> dict[str, Any]:
    path = Path(strategy.broadcast(str(checkpoint_path)))  # every rank reads what rank 0 was given
    trainer = getattr(strategy.lightning_module, "_trainer", None)
    require_complete(path, search=checkpoint_dirs(trainer) if trainer is not None else ())
    check_checkpoint_files(path)
    strategy.__dict__[_FLAG] = path
    module = strategy.lightning_module
    if isinstance(strategy, ModelParallelStrategy):
        return load_sharded(path, strategy.model, list(strategy.optimizers), weights_only=weights_only)
    checkpoint = read_full_checkpoint(path, weights_only=weights_only)
    check_model_layout(path, module, checkpoint, checkpoint)
    return checkpoint


def _load_optimizer_state_dict(strategy: Strategy, checkpoint: dict[str, Any]) -> None:
    path = strategy.__dict__.get(_FLAG)
    for optimizer, saved in zip(strategy.optimizers, checkpoint.get("optimizer_states", [])):
        names = optimizer_param_names(strategy.lightning_module, optimizer)
        check_optimizer_layout(path, [g["params"] for g in saved["param_groups"]], names)
    type(strategy).load_optimizer_state_dict(strategy, checkpoint)


def install_resume_anywhere(strategy: Strategy) -> None:
    """Make ``strategy`` load any project checkpoint (file or distributed folder) at any world size, refuse one that
    is not whole, and write every checkpoint all-or-nothing. Idempotent."""
    install_atomic_saves(strategy)
    if _FLAG in strategy.__dict__:
        return
    strategy.__dict__[_FLAG] = None
    strategy.load_checkpoint = types.MethodType(_load_checkpoint, strategy)
    if not isinstance(strategy, ModelParallelStrategy):
        strategy.load_optimizer_state_dict = types.MethodType(_load_optimizer_state_dict, strategy)

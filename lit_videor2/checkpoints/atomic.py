"""All-or-nothing checkpoint writes, for one-file and distributed (FSDP2) checkpoints, on every rank.

Lightning writes a one-file checkpoint through ``fsspec``'s transaction, which stages it in the system temp folder
and *copies* it into place when that folder is on another filesystem (a node's local disk, a shared checkpoint
folder); ``ModelParallelStrategy`` writes a distributed checkpoint into the existing folder in place and its
``meta.pt`` (trainer state) after the shards. A kill in either leaves a checkpoint mixing two steps or cut short,
and the one it replaced is gone. Here every save, ``save_last``, top-k, step, SLURM and preemption checkpoints
alike (they all go through the strategy), is written like this:

1. into a hidden name beside its final place, ``.<name>.partial`` (same folder, so same filesystem; a leftover of
   a killed save is removed first);
2. one file: written, flushed and ``fsync``-ed, then renamed over the final name (``os.replace``, atomic);
3. a distributed folder: every rank writes its shards (DCP), rank 0 writes ``meta.pt``; once every rank has
   finished, rank 0 writes :data:`~lit_videor2.checkpoints.complete.MARKER` last and moves the folder into place.
   A folder cannot be renamed over another, so the one it replaces is first renamed to ``.<name>.old`` and removed
   after; at every instant one of them is whole and found by ``--ckpt_path last``
   (:func:`~lit_videor2.checkpoints.complete.newest_complete`);
4. a checkpoint that is removed (top-k rotation) loses its marker first, so a kill during its removal cannot
   leave a folder that claims to be whole.

A write that fails (a full disk) removes its staging copy, leaves the previous checkpoint as it was, and stops the
run with :class:`CheckpointWriteError`: one line naming the checkpoint, the reason and the newest whole one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import types
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.strategies import ModelParallelStrategy, Strategy

from lit_videor2.checkpoints.complete import (
    MARKER,
    aside_path,
    fsync_path,
    newest_complete,
    staging_path,
)
from lit_videor2.errors import UserError

log = logging.getLogger(__name__)
_FLAG = "_lit_videor2_atomic_saves"


class CheckpointWriteError(UserError):
    """A checkpoint could not be written (e.g. the disk is full); the previous checkpoints are kept."""


def _write_error(final: Path, err: BaseException) -> CheckpointWriteError:
    text = str(err)
    if isinstance(err, OSError) and err.strerror:
        reason = err.strerror
    elif "No space left" in text:  # e.g. DCP's CheckpointException gathering a rank's ENOSPC (many lines)
        reason = "No space left on device"
    else:
        reason = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    newest = newest_complete([final.parent])
    kept = f"the newest complete checkpoint is {newest}" if newest else "no earlier complete checkpoint is beside it"
    return CheckpointWriteError(f"could not write checkpoint {final}: {reason}; nothing was replaced, {kept}")


def remove_checkpoint_path(path: str | Path) -> None:
    """Remove a checkpoint file or folder; a folder loses its marker first (a kill midway leaves it incomplete)."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        (path / MARKER).unlink(missing_ok=True)
        shutil.rmtree(path)


def move_into_place(staging: Path, final: Path) -> None:
    """Rename the whole ``staging`` checkpoint to ``final``, replacing what is there.

    A file replaces a file in one atomic rename. Anything else that exists at ``final`` (a folder, or a file where a
    folder goes) is first renamed aside to ``.<name>.old`` and removed once ``staging`` is in place.
    """
    if final.is_symlink() or (final.is_file() and staging.is_file()) or not final.exists():
        os.replace(staging, final)
        fsync_path(final.parent)
        return
    aside = aside_path(final)
    remove_checkpoint_path(aside)
    os.replace(final, aside)
    os.replace(staging, final)
    fsync_path(final.parent)
    remove_checkpoint_path(aside)


def write_file_atomically(final: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write one file with ``write(f)`` beside ``final``, flush it to disk, then rename it over ``final``.

    Raises:
        CheckpointWriteError: the write failed (full disk, permissions); ``final`` is untouched.
    """
    final = Path(final)
    staging = staging_path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_checkpoint_path(staging)  # left by a save that was killed
        with open(staging, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        move_into_place(staging, final)
    except OSError as err:
        _discard(staging)
        raise _write_error(final, err) from err
    except BaseException:
        _discard(staging)
        raise


def _discard(path: Path) -> None:
    try:
        remove_checkpoint_path(path)
    except OSError:
        pass


def write_marker(folder: Path, info: dict[str, Any]) -> None:
    """Write :data:`MARKER` into ``folder`` (itself atomically: a hidden file renamed into place), then sync."""
    tmp = folder / f".{MARKER}.tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / MARKER)
    fsync_path(folder)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose files are written beside their place and renamed in whole (local paths).

    ``torch.save`` streams into ``.<name>.partial`` in the checkpoint's own folder (no second copy in memory, no
    other filesystem's temp folder), the file is ``fsync``-ed and renamed over the old one. Remote paths
    (``s3://``…) keep Lightning's own write. Removal takes a folder's marker first.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            return super().save_checkpoint(checkpoint, path, storage_options=storage_options)
        write_file_atomically(path, lambda f: torch.save(checkpoint, f))

    def remove_checkpoint(self, path: Any) -> None:
        if not _is_local_file_protocol(path):
            return super().remove_checkpoint(path)
        remove_checkpoint_path(path)


def _agree(strategy: Strategy, ok: bool) -> bool:
    """True when ``ok`` holds on every rank (a collective; every rank calls it)."""
    return bool(strategy.reduce_boolean_decision(ok, all=True)) if strategy.world_size > 1 else ok


def _save_distributed(strategy: ModelParallelStrategy, checkpoint: dict[str, Any], filepath: Any, storage_options=None):
    """``ModelParallelStrategy.save_checkpoint`` made all-or-nothing (see the module docstring). Every rank calls it."""
    if not strategy._save_distributed_checkpoint:  # one full file, written by rank 0 through the checkpoint IO
        path = Path(strategy.broadcast(str(filepath)))
        return Strategy.save_checkpoint(strategy, checkpoint, path, storage_options=storage_options)
    final = Path(strategy.broadcast(str(filepath)))
    staging = staging_path(final)
    info = {
        "step": checkpoint.get("global_step"),
        "epoch": checkpoint.get("epoch"),
        "world_size": strategy.world_size,
        "format": "lightning-dcp",
    }
    error: BaseException | None = None
    try:
        if strategy.is_global_zero:
            final.parent.mkdir(parents=True, exist_ok=True)
            remove_checkpoint_path(staging)  # left by a save that was killed
    except OSError as err:
        error = err
    strategy.barrier("lit_videor2.checkpoint.staging")
    if error is None:
        try:
            type(strategy).save_checkpoint(strategy, checkpoint, staging, storage_options=storage_options)
        except Exception as err:  # noqa: BLE001 - re-raised below, after every rank knows
            error = err
    if _agree(strategy, error is None) and strategy.is_global_zero:
        try:
            fsync_path(staging / "meta.pt")
            write_marker(staging, info)  # last: its presence means every file above is whole
            move_into_place(staging, final)
        except OSError as err:
            error = err
    if _agree(strategy, error is None):
        return
    if strategy.is_global_zero:
        _discard(staging)
    if error is None:
        error = OSError("another rank failed to write its part")
    if isinstance(error, OSError) or "No space left" in str(error):
        raise _write_error(final, error) from error
    raise error


def install_atomic_saves(strategy: Strategy) -> None:
    """Make every checkpoint ``strategy`` writes all-or-nothing (files and distributed folders). Idempotent.

    The strategy's checkpoint IO becomes :class:`AtomicCheckpointIO` when it is Lightning's default one (a
    ``CheckpointIO`` of the user's own is kept, with a warning); under ``ModelParallelStrategy`` its
    ``save_checkpoint`` is replaced on this instance (the class is untouched), since it bypasses the IO for folders.
    """
    if strategy.__dict__.get(_FLAG):
        return
    strategy.__dict__[_FLAG] = True
    from lightning.pytorch.plugins.io.wrapper import _WrappingCheckpointIO

    current = strategy._checkpoint_io
    if current is None or type(current) is TorchCheckpointIO:
        strategy.checkpoint_io = AtomicCheckpointIO()
    elif isinstance(current, _WrappingCheckpointIO) and type(current.checkpoint_io) in (type(None), TorchCheckpointIO):
        current._checkpoint_io = AtomicCheckpointIO()  # e.g. AsyncCheckpointIO around the default (its setter
        current._base_checkpoint_io_configured = True  # only fills an empty slot)
    elif not isinstance(current, AtomicCheckpointIO):
        log.warning(f"checkpoint IO {type(current).__name__} is kept: its files are not known to be written whole")
    if isinstance(strategy, ModelParallelStrategy):
        strategy.save_checkpoint = types.MethodType(_save_distributed, strategy)

"""Which checkpoints are whole: the completeness test, the newest complete checkpoint, and the refusal of a partial one.

A checkpoint is *complete* when every file of it is on disk in full:

=========================  ========================================================================================
one file (``.ckpt``)       a zip archive (``torch.save``) whose end-of-archive record is present; that record is
                           the last thing ``torch.save`` writes, so a file cut by a kill or a full disk fails it.
                           Files are written beside their place and renamed in whole (:mod:`.atomic`), so a final
                           name only ever holds a whole file; the test catches files written before this change.
distributed folder         :data:`MARKER` (``complete.json``) is present, written by rank 0 after every rank's
(FSDP2, DCP)               shards, DCP's ``.metadata`` and Lightning's ``meta.pt``, and every file ``.metadata``
                           lists is there. A folder written before this change (no marker) counts as complete when
                           ``.metadata``, ``meta.pt`` and every shard file exist.
=========================  ========================================================================================

Saves in progress live under hidden names beside their final place (``.last.ckpt.partial``); the one being replaced
is renamed to ``.last.ckpt.old`` for the instant of the swap. Both are candidates of :func:`newest_complete` when
whole, so ``--ckpt_path last`` finds a whole checkpoint at every instant of a save.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lit_videor2.checkpoints.resharding import CheckpointError, check_checkpoint_files
from lit_videor2.errors import UserError

#: Written last into a distributed checkpoint folder, by rank 0, once every other file of it is on disk.
MARKER = "complete.json"
#: Suffix of the hidden name a save writes to (``.<name>.partial``) before moving it into place.
STAGING_SUFFIX = ".partial"
#: Suffix of the hidden name a replaced checkpoint has for the instant of a swap (``.<name>.old``).
ASIDE_SUFFIX = ".old"
#: File extension of Lightning checkpoints (files and distributed folders alike).
EXTENSION = ".ckpt"
_HPC_RE = re.compile(r"^hpc_ckpt_\d+\.ckpt$")


class IncompleteCheckpointError(UserError):
    """A checkpoint given to resume from is not whole (its save was interrupted, or it was copied in part)."""


def staging_path(final: str | Path) -> Path:
    """The hidden name beside ``final`` that a save writes to before moving it into place (same filesystem)."""
    final = Path(final)
    return final.with_name(f".{final.name}{STAGING_SUFFIX}")


def aside_path(final: str | Path) -> Path:
    """The hidden name beside ``final`` that the checkpoint it replaces has while the new one is moved in."""
    final = Path(final)
    return final.with_name(f".{final.name}{ASIDE_SUFFIX}")


def _is_hidden_copy(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith((STAGING_SUFFIX, ASIDE_SUFFIX))


def incompleteness(path: str | Path) -> str | None:
    """Why ``path`` is not a whole checkpoint, or None when it is one (see the module docstring for the tests)."""
    path = Path(path)
    if path.is_file():
        if zipfile.is_zipfile(path):
            return None
        return "the file is cut short (its save was interrupted, or the disk filled up)"
    if not path.is_dir():
        return "it does not exist"
    if not (path / MARKER).is_file() and _is_hidden_copy(path):
        return f"its save did not finish (no {MARKER})"
    try:
        check_checkpoint_files(path)
    except CheckpointError as err:
        return str(err).removeprefix(f"checkpoint folder {path} ")
    return None


def is_complete(path: str | Path) -> bool:
    """Whether ``path`` is a whole checkpoint (file or distributed folder)."""
    return incompleteness(path) is None


def completed_at(path: str | Path) -> float:
    """When a complete checkpoint was finished: the modification time of its marker, ``meta.pt`` or file."""
    path = Path(path)
    if path.is_dir():
        for name in (MARKER, "meta.pt", ".metadata"):
            if (path / name).exists():
                return (path / name).stat().st_mtime
    return path.stat().st_mtime


def read_marker(path: str | Path) -> dict[str, Any]:
    """The contents of a distributed checkpoint's :data:`MARKER` (step, epoch, world size), or {} without one."""
    marker = Path(path) / MARKER
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return {}


def checkpoint_candidates(dirs: Iterable[str | Path]) -> list[Path]:
    """Every checkpoint-like entry of ``dirs``: ``*.ckpt`` files and folders, hidden staging/aside copies included."""
    found: dict[Path, None] = {}
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            continue
        for entry in sorted(d.iterdir()):
            name = entry.name
            base = name[1:].removesuffix(STAGING_SUFFIX).removesuffix(ASIDE_SUFFIX) if _is_hidden_copy(entry) else name
            if base.endswith(EXTENSION):
                found[entry] = None
    return list(found)


def newest_complete(dirs: Iterable[str | Path]) -> Path | None:
    """The most recently finished complete checkpoint in ``dirs`` (None when there is none)."""
    return _newest(checkpoint_candidates(dirs))


def checkpoint_dirs(trainer: Any) -> list[Path]:
    """The folders a run's ``ModelCheckpoint`` callbacks write to (their ``dirpath``)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    dirs = [Path(cb.dirpath) for cb in getattr(trainer, "checkpoint_callbacks", []) if isinstance(cb, ModelCheckpoint)]
    return list(dict.fromkeys(p.resolve() for p in dirs if p))


def _newest(paths: Iterable[Path]) -> Path | None:
    complete = [p for p in dict.fromkeys(paths) if is_complete(p)]
    if not complete:
        return None
    # Finish time first; on a tie (a step checkpoint and `last` written in one second) the public name wins.
    return max(complete, key=lambda p: (completed_at(p), not _is_hidden_copy(p), p.name))


def resolve_last(trainer: Any) -> Path | None:
    """What ``ckpt_path="last"`` means for ``trainer``: its newest complete checkpoint (None: nothing to resume).

    Lightning's own ``"last"`` is the most recently modified ``last*.ckpt``, whole or not. This looks at every
    checkpoint in the folders of the run's ``ModelCheckpoint`` callbacks and at Lightning's SLURM checkpoints
    (``hpc_ckpt_N.ckpt`` in ``trainer.default_root_dir``), and keeps the newest whole one.
    """
    candidates = checkpoint_candidates(checkpoint_dirs(trainer))
    root = getattr(trainer, "default_root_dir", None)
    if root:
        candidates += [p for p in checkpoint_candidates([root]) if _HPC_RE.match(p.name)]
    return _newest(candidates)


def require_complete(path: str | Path, search: Iterable[str | Path] = ()) -> None:
    """Raise :class:`IncompleteCheckpointError` (one line) when ``path`` is not whole, naming the newest whole one.

    Args:
        path: the checkpoint given to resume from.
        search: other folders to look for complete checkpoints in (``path``'s own folder is always searched).
    """
    path = Path(path)
    why = incompleteness(path)
    if why is None:
        return
    newest = newest_complete([path.parent, *search])
    tail = (
        f"the newest complete checkpoint is {newest} (resume from it, or with --ckpt_path last)"
        if newest is not None
        else "no complete checkpoint is beside it; start the run afresh (without --ckpt_path)"
    )
    raise IncompleteCheckpointError(f"checkpoint {path} is incomplete: {why}; {tail}")


def fsync_path(path: str | Path) -> None:
    """Flush a file's or folder's entry to disk (a folder's fsync makes its renames durable). Best effort."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

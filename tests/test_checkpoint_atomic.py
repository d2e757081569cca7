"""Checkpoints are whole or absent: the completeness test, ``last`` = the newest whole one, swaps that keep a whole
checkpoint at every instant, and a full disk during a save (the previous checkpoint stays, one line)."""

from __future__ import annotations

import errno
import json
import os

import pytest
import torch

from lit_videor2.checkpoints.atomic import (
    AtomicCheckpointIO,
    CheckpointWriteError,
    move_into_place,
    remove_checkpoint_path,
    write_file_atomically,
    write_marker,
)
from lit_videor2.checkpoints.complete import (
    MARKER,
    IncompleteCheckpointError,
    aside_path,
    incompleteness,
    is_complete,
    newest_complete,
    require_complete,
    staging_path,
)
from lit_videor2.cli import USER_ERRORS, error_line


def _file_ckpt(path, step: int):
    torch.save({"global_step": step, "w": torch.full((4,), float(step))}, path)
    return path


def _dcp_folder(path, step: int, *, marker: bool = True, meta: bool = True):
    """A real one-process DCP checkpoint folder (shards + .metadata), Lightning's meta.pt, and the marker."""
    import torch.distributed.checkpoint as dcp

    dcp.save({"state_dict": {"w": torch.full((4,), float(step))}}, checkpoint_id=path, no_dist=True)
    if meta:
        torch.save({"global_step": step}, path / "meta.pt")
    if marker:
        write_marker(path, {"step": step})
    return path


def _age(path, seconds: float) -> None:
    """Make a checkpoint look finished ``seconds`` ago (ordering by finish time without sleeping)."""
    for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
        st = p.stat()
        os.utime(p, (st.st_atime - seconds, st.st_mtime - seconds))


def test_cut_file_is_incomplete_and_refused_naming_the_newest_whole_one(tmp_path):
    _age(_file_ckpt(tmp_path / "step=1.ckpt", 1), 20)
    whole = _file_ckpt(tmp_path / "step=2.ckpt", 2)
    data = whole.read_bytes()
    (tmp_path / "last.ckpt").write_bytes(data[: len(data) // 2])  # an old-style in-place write, killed halfway
    assert is_complete(whole) and not is_complete(tmp_path / "last.ckpt")
    assert newest_complete([tmp_path]) == whole
    with pytest.raises(IncompleteCheckpointError) as err:
        require_complete(tmp_path / "last.ckpt")
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "last.ckpt") in message and str(whole) in message
    assert isinstance(err.value, USER_ERRORS)  # the console prints it as one line, exit status 2


def test_missing_checkpoint_is_refused_and_nothing_whole_says_start_afresh(tmp_path):
    with pytest.raises(IncompleteCheckpointError, match="does not exist; no complete checkpoint"):
        require_complete(tmp_path / "last.ckpt")


def test_folder_completeness_marker_files_and_old_folders(tmp_path):
    new = _dcp_folder(tmp_path / "step=2.ckpt", 2)
    assert is_complete(new)
    legacy = _dcp_folder(tmp_path / "step=1.ckpt", 1, marker=False)  # written before markers: still loads
    assert is_complete(legacy)
    no_meta = _dcp_folder(tmp_path / "step=3.ckpt", 3, marker=False, meta=False)  # killed before meta.pt
    assert "meta.pt" in incompleteness(no_meta)
    staged = _dcp_folder(staging_path(tmp_path / "step=4.ckpt"), 4, marker=False)  # whole files, no marker yet
    assert "did not finish" in incompleteness(staged)
    shard = next(new.glob("*.distcp"))
    shard.unlink()  # a shard lost (copied in part, or removed midway): the marker alone is not enough
    assert not is_complete(new)
    assert newest_complete([tmp_path]) == legacy


def test_swap_keeps_a_whole_checkpoint_at_every_instant(tmp_path, monkeypatch):
    final = _age(_dcp_folder(tmp_path / "last.ckpt", 1), 20) or tmp_path / "last.ckpt"
    staged = _dcp_folder(staging_path(final), 2)
    seen = []
    real_replace = os.replace

    def replace_and_look(src, dst):
        real_replace(src, dst)
        seen.append(newest_complete([tmp_path]))

    monkeypatch.setattr(os, "replace", replace_and_look)
    move_into_place(staged, final)
    monkeypatch.undo()
    assert len(seen) == 2 and all(p is not None for p in seen)  # after the move aside, and after the move in
    assert seen[0] == staged  # in between: the new one (whole, marker written) under its staging name
    assert json.loads((final / MARKER).read_text())["step"] == 2 and not aside_path(final).exists()
    # A file replaces a folder (a one-process run resumed in the folder of a sharded run), and back.
    staged_file = _file_ckpt(staging_path(final), 3)
    move_into_place(staged_file, final)
    assert final.is_file() and torch.load(final)["global_step"] == 3


def test_a_removal_killed_midway_leaves_no_whole_looking_folder(tmp_path, monkeypatch):
    folder = _dcp_folder(tmp_path / "step=1.ckpt", 1)

    def killed_rmtree(path):
        next(folder.glob("*.distcp")).unlink()  # one shard gone, then the kill
        raise KeyboardInterrupt

    monkeypatch.setattr("shutil.rmtree", killed_rmtree)
    with pytest.raises(KeyboardInterrupt):
        remove_checkpoint_path(folder)
    assert not (folder / MARKER).exists() and not is_complete(folder)
    assert newest_complete([tmp_path]) is None


def test_enospc_keeps_the_previous_file_and_says_so_in_one_line(tmp_path, monkeypatch):
    final = _file_ckpt(tmp_path / "last.ckpt", 1)
    before = final.read_bytes()

    def fill_disk(f):
        f.write(b"x" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(CheckpointWriteError) as err:
        write_file_atomically(final, fill_disk)
    assert final.read_bytes() == before and not staging_path(final).exists()
    line = error_line(err.value)
    assert (
        line == f"could not write checkpoint {final}: No space left on device; nothing was replaced, the newest "
        f"complete checkpoint is {final}"
    )
    assert isinstance(err.value, USER_ERRORS)


@pytest.mark.slow
def test_enospc_during_fit_stops_the_run_and_the_previous_checkpoint_loads(tmp_path, tiny_model_dir, synth_dir):
    """A full disk at the step-2 save of a real run: the run stops with CheckpointWriteError (one line), step 1's
    checkpoints stay whole and a new run resumes from them."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lit_videor2.checkpoints.complete import resolve_last
    from tests.sft_utils import make_datamodule, make_module, make_trainer

    real_save = torch.save

    def save(obj, target, *args, **kwargs):
        if not isinstance(target, (str, os.PathLike)) and obj.get("global_step") == 2:
            target.write(b"PK\x03\x04" + b"\0" * 4096)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, target, *args, **kwargs)

    def trainer(max_steps):
        ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{step}", every_n_train_steps=1, save_last=True)
        return make_trainer(tmp_path, max_steps=max_steps, callbacks=[ckpt])

    first = trainer(3)
    torch.save = save
    try:
        with pytest.raises(CheckpointWriteError, match="No space left on device") as err:
            first.fit(make_module(tiny_model_dir), make_datamodule(synth_dir, tiny_model_dir))
    finally:
        torch.save = real_save
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["last.ckpt", "step=1.ckpt"]  # no leftovers
    resumed = trainer(3)
    last = resolve_last(resumed)
    assert last is not None and torch.load(last, weights_only=False)["global_step"] == 1
    resumed.fit(make_module(tiny_model_dir), make_datamodule(synth_dir, tiny_model_dir), ckpt_path=last)
    assert resumed.global_step == 3


def test_checkpoint_io_writes_beside_the_final_place(tmp_path, monkeypatch):
    """No other filesystem's temp folder: the only file ever opened for writing is the staging file beside it."""
    opened = []
    real_open = open

    def spy(file, mode="r", *args, **kwargs):
        if "w" in mode:
            opened.append(str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    AtomicCheckpointIO().save_checkpoint({"a": torch.ones(2)}, tmp_path / "sub" / "x.ckpt")
    monkeypatch.undo()
    assert opened == [str(staging_path(tmp_path / "sub" / "x.ckpt"))]
    assert torch.load(tmp_path / "sub" / "x.ckpt")["a"].sum() == 2


def test_export_refuses_a_cut_checkpoint(tmp_path):
    from lit_videor2.export import read_checkpoint

    whole = _file_ckpt(tmp_path / "step=1.ckpt", 1)
    data = whole.read_bytes()
    (tmp_path / "last.ckpt").write_bytes(data[: len(data) // 3])
    with pytest.raises(IncompleteCheckpointError, match=f"the newest complete checkpoint is {whole}"):
        read_checkpoint(tmp_path / "last.ckpt")

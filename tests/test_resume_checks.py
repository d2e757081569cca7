"""Fast checks of resuming on another number of ranks: the data position in samples, the errors, the checkpoint folder.

The runs across world sizes themselves are in ``tests/test_resume_elsewhere.py`` (2-process, slow).
"""

from __future__ import annotations

import pytest
import torch

from lit_videor2.checkpoints.resharding import (
    CheckpointError,
    check_checkpoint_files,
    layout_mismatch,
    named_optimizer_state,
    optimizer_layout_mismatch,
    positional_optimizer_state,
)
from lit_videor2.data.sampler import ResumableSampler, batches_done_equivalent, resumed_order

# -- the data position is in samples --------------------------------------------------------------------------------


def consumed(n: int, world: int, batch: int, batches: int, seed: int = 3) -> list[int]:
    """The samples ``world`` ranks trained on in their first ``batches`` batches of epoch 0."""
    samplers = [ResumableSampler(list(range(n)), num_replicas=world, rank=r, seed=seed) for r in range(world)]
    return [i for s in samplers for i in list(s)[: batches * batch]]


def resumed(n: int, world: int, start: int, seed: int = 3) -> list[list[int]]:
    """What each of ``world`` ranks trains on in epoch 0 after resuming at position ``start``."""
    out = []
    for r in range(world):
        s = ResumableSampler(list(range(n)), num_replicas=world, rank=r, seed=seed)
        s.set_epoch(0)
        s.resume(0, start)
        out.append(list(s))
    return out


@pytest.mark.parametrize("n", [8, 7, 12])
@pytest.mark.parametrize(("world", "new_world"), [(2, 1), (1, 2), (2, 3), (3, 2), (4, 1), (2, 2)])
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("batches", [1, 2])
def test_each_sample_of_the_epoch_once_across_a_resume(n, world, new_world, batch, batches):
    before = consumed(n, world, batch, batches)
    start = batches * batch * world
    after = [i for rank in resumed(n, new_world, start) for i in rank]
    if start >= n:  # the checkpoint closed its epoch (DistributedSampler padding included)
        assert after == []
        return
    # Only DistributedSampler's own padding repeats a sample: it evens out the ranks' shares with the epoch's first
    # samples (never more than ranks - 1 of them), exactly as an uninterrupted run on the new world size does.
    assert sorted(set(before + after)) == list(range(n))
    assert len(before) + len(after) - n == -(n - start) % new_world
    if n % world == 0 and (n - start) % new_world == 0:
        assert sorted(before + after) == list(range(n))  # no padding: each sample exactly once


@pytest.mark.parametrize("n", [8, 7])
@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("drop_last", [False, True])
def test_same_world_size_resume_is_the_uninterrupted_order(n, world, drop_last):
    """Same world size: every rank continues with exactly the uninterrupted run's indices (padding included)."""
    for batches in range(3):
        full = [
            list(ResumableSampler(list(range(n)), num_replicas=world, rank=r, seed=1, drop_last=drop_last))
            for r in range(world)
        ]
        start = batches * world
        for r in range(world):
            s = ResumableSampler(list(range(n)), num_replicas=world, rank=r, seed=1, drop_last=drop_last)
            s.set_epoch(0)
            s.resume(0, start)
            assert list(s) == full[r][batches:], (r, batches)
        assert batches_done_equivalent(n, start, world, 1, drop_last) == min(batches, len(full[0]))


def test_resumed_order_pads_like_distributed_sampler():
    assert resumed_order([5, 3, 1, 0, 2, 4, 6], 4, 2, drop_last=False) == [2, 4, 6, 5]
    assert resumed_order([5, 3, 1, 0, 2, 4, 6], 4, 2, drop_last=True) == [2, 4]
    assert resumed_order([5, 3], 1, 4, drop_last=False) == [3, 5, 3, 5]


@pytest.mark.parametrize(
    ("saved_world", "saved_batch", "batches", "world", "batch", "ready"),
    [
        (2, 1, 2, 2, 1, 2),  # same world size: unchanged
        (2, 1, 2, 1, 2, 2),  # 4 of 8 samples seen; 1 process, batch 2: 2 batches left of 4
        (2, 1, 2, 1, 1, 4),  # 1 process, batch 1: 4 left of 8
        (1, 2, 3, 2, 1, 3),  # 6 of 8 seen; 2 ranks, batch 1: 1 left of 4
        (1, 1, 8, 2, 1, 4),  # the checkpoint closed its epoch: the count is full
    ],
)
def test_rebase_batch_progress(saved_world, saved_batch, batches, world, batch, ready):
    """Lightning's in-epoch batch counters are moved to what is left at this world size (8 training samples)."""
    from lit_videor2.data.datamodule import VideoDataModule

    dm = VideoDataModule(processor="unused", batch_size=batch)
    dm.datasets["train"] = list(range(8))
    dm._world = lambda: (world, 0)
    saved = batches
    current = {"ready": saved, "started": saved, "processed": saved, "completed": saved - 1}
    checkpoint = {
        "VideoDataModule": {"epoch": 0, "samples": batches * saved_batch * saved_world, "world_size": saved_world},
        "loops": {"fit_loop": {"epoch_loop.batch_progress": {"current": dict(current)}}},
    }
    dm.rebase_batch_progress(checkpoint)
    got = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
    assert got == {"ready": ready, "started": ready, "processed": ready, "completed": ready - 1}


def test_data_position_state_in_samples_and_older_checkpoints():
    from lit_videor2.data.datamodule import VideoDataModule

    dm = VideoDataModule(processor="unused", batch_size=2)
    dm._seen = {"epoch": 1, "start": 4, "batches": 3}
    assert dm.state_dict() == {"epoch": 1, "samples": 10, "world_size": 1}
    dm.load_state_dict({"epoch": 0, "batches": 2})  # before samples were counted: this rank's batches
    assert dm._resume == {"epoch": 0, "samples": 4}


# -- optimizer state keys and layout checks ---------------------------------------------------------------------------


def test_optimizer_state_by_position_and_by_name_round_trip():
    named = {
        "state": {"b": {"step": torch.tensor(2.0)}, "c": {"step": torch.tensor(3.0)}},  # "a" has no state yet
        "param_groups": [{"lr": 1.0, "params": ["a", "b"]}, {"lr": 2.0, "params": ["c"]}],
    }
    positional = positional_optimizer_state(named)
    assert positional["param_groups"][0]["params"] == [0, 1] and positional["param_groups"][1]["params"] == [2]
    assert set(positional["state"]) == {1, 2}
    back = named_optimizer_state(positional, [["a", "b"], ["c"]])
    assert back["param_groups"] == named["param_groups"] and back["state"] == named["state"]


def test_layout_mismatch_names_what_differs():
    assert layout_mismatch({"a": (2, 3)}, {"a": (2, 3)}) is None
    text = layout_mismatch({"a": (2, 3), "lora_A": (4, 3)}, {"a": (2, 4), "b": (1,)})
    assert "1 of the model's tensors are not in it (e.g. b)" in text
    assert "1 of its tensors are not in the model (e.g. lora_A)" in text
    assert "a: [2, 3] saved, [2, 4] here" in text
    assert "groups of [2, 1]" in optimizer_layout_mismatch([[0, 1], [2]], [["x"], ["y"]])
    assert "trains b where this run trains x" in optimizer_layout_mismatch([["b"]], [["x"]])


def test_missing_shard_file_is_one_clear_line(tmp_path):
    import torch.distributed.checkpoint as dcp

    folder = tmp_path / "last.ckpt"
    dcp.save({"state_dict": {"w": torch.ones(3)}}, checkpoint_id=folder, no_dist=True)
    torch.save({"epoch": 0}, folder / "meta.pt")
    check_checkpoint_files(folder)  # complete
    (folder / "__0_0.distcp").unlink()
    with pytest.raises(CheckpointError, match=r"lacks 1 of its files \(__0_0.distcp\)") as err:
        check_checkpoint_files(folder)
    assert str(folder) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="does not exist"):
        check_checkpoint_files(tmp_path / "nothing.ckpt")


# -- a checkpoint of another layout: one line before anything is loaded -----------------------------------------------


@pytest.fixture(scope="module")
def one_step_checkpoint(tmp_path_factory, tiny_model_dir, synth_dir):
    """A 1-process SFT checkpoint (full fine-tuning) after one step."""
    from tests.sft_utils import make_datamodule, make_module, make_trainer

    root = tmp_path_factory.mktemp("one_step")
    trainer = make_trainer(root, max_steps=1)
    trainer.fit(make_module(tiny_model_dir, lora=False), make_datamodule(synth_dir, tiny_model_dir))
    trainer.save_checkpoint(root / "last.ckpt")
    return root / "last.ckpt"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({"lora": True}, "another model or LoRA layout (policy.lora=None there"),
        (
            {"lora": False, "freeze_embeddings": True},
            "trains 27 parameters in groups of [16, 11], this run 26 in groups of [15, 11]",
        ),
    ],
)
def test_checkpoint_of_another_layout_is_one_clear_line(
    tmp_path, one_step_checkpoint, tiny_model_dir, synth_dir, policy, expected
):
    from tests.sft_utils import make_datamodule, make_module, make_trainer

    trainer = make_trainer(tmp_path, max_steps=2)
    module = make_module(tiny_model_dir, **policy)
    with pytest.raises(CheckpointError) as err:
        trainer.fit(module, make_datamodule(synth_dir, tiny_model_dir), ckpt_path=one_step_checkpoint)
    text = str(err.value)
    assert str(one_step_checkpoint) in text and expected in text and "\n" not in text, text


# -- shipped configs: checkpoints follow trainer.default_root_dir ------------------------------------------------------


@pytest.mark.parametrize("config", ["configs/demo/sft.yaml", "configs/demo/grpo.yaml", "configs/sft.yaml"])
def test_checkpoint_folder_follows_default_root_dir(tmp_path, tiny_model_dir, config):
    from pathlib import Path

    from lightning.pytorch.callbacks import ModelCheckpoint

    from lit_videor2.cli import VideoR2CLI

    repo = Path(__file__).resolve().parents[1]
    args = ["--config", str(repo / config), "--trainer.default_root_dir", str(tmp_path / "run")]
    args += ["--model.init_args.policy.path", str(tiny_model_dir)]
    cli = VideoR2CLI(args=args, run=False)
    dirs = [c.dirpath for c in cli.trainer.callbacks if isinstance(c, ModelCheckpoint)]
    assert dirs == [str(tmp_path / "run" / "checkpoints")]


# -- a parameter without optimizer state stays without (both kinds of checkpoint) ----------------------------------


def _tiny_run() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2), torch.nn.Linear(2, 2))
    groups = [{"params": [p for p in model.parameters() if p.ndim == 2]}]
    groups.append({"params": [p for p in model.parameters() if p.ndim == 1], "weight_decay": 0.0})
    return model, torch.optim.AdamW(groups, lr=0.1, weight_decay=0.1)


def _step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, last_too: bool) -> None:
    x = torch.arange(6.0).view(2, 3)
    h = model[1](model[0](x))
    loss = (model[2](h).sum() if last_too else h.sum()) ** 2  # without the last layer: it gets no gradient
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_parameter_without_optimizer_state_stays_without(tmp_path, kind):
    """Saved after a step in which the last layer had no gradient; loaded by the sharded path (here unsharded, one
    process): the state of the others is restored, the last layer has none, and the next step equals the
    uninterrupted run's (torch would have given it a zero-gradient step, shifting Adam's bias correction)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    from lit_videor2.checkpoints.resharding import load_sharded

    model, opt = _tiny_run()
    _step(model, opt, last_too=False)
    assert model[2].weight not in opt.state
    path = tmp_path / "ckpt"
    if kind == "file":
        torch.save({"state_dict": model.state_dict(), "optimizer_states": [opt.state_dict()], "epoch": 0}, path)
    else:
        state = {"state_dict": get_model_state_dict(model), "optimizer_0": get_optimizer_state_dict(model, opt)}
        dcp.save(state, checkpoint_id=path, no_dist=True)
        torch.save({"epoch": 0}, path / "meta.pt")

    resumed, resumed_opt = _tiny_run()
    for p in resumed.parameters():
        p.data.add_(1.0)  # other starting weights: the load must overwrite them
    rest = load_sharded(path, resumed, [resumed_opt], weights_only=False)
    assert rest["epoch"] == 0
    assert resumed[2].weight not in resumed_opt.state and resumed[0].weight in resumed_opt.state
    _step(model, opt, last_too=True)
    _step(resumed, resumed_opt, last_too=True)
    for a, b in zip(model.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)

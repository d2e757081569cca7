"""Exact resume: a run interrupted after k steps and resumed logs the same losses as an uninterrupted run.

LoRA dropout makes every loss depend on the RNG stream, shuffling makes it depend on the data position, and
AdamW + a warm-up schedule make it depend on the optimizer and scheduler states: all must be restored.
"""

from __future__ import annotations

import lightning as L
import pytest
from lightning.pytorch.callbacks import ModelCheckpoint

from lit_videor2.modules.optim import WarmupCosine
from tests.fixtures import synth_dir, tiny_model_dir, tiny_models  # noqa: F401
from tests.sft_utils import LossRecorder, make_datamodule, make_module, make_trainer

N_STEPS = 8  # 8 training clips, batch 2: 4 batches per epoch, so the run crosses an epoch boundary


class StopAfter(L.Callback):
    """Interrupt the run after ``step`` optimizer steps (as a crash or preemption would; ``max_steps`` unchanged,
    so the learning-rate schedule is the one of the full run)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def run(root, model_dir, data_dir, *, num_workers, stop_after=None, ckpt_path=None) -> dict[int, float]:
    L.seed_everything(0)
    module = make_module(model_dir)
    module.scheduler_factory = WarmupCosine(warmup_steps=3)  # the lr changes every step: the scheduler must resume
    rec = LossRecorder()
    callbacks: list[L.Callback] = [rec]
    if stop_after:
        ckpt = ModelCheckpoint(dirpath=root, filename="{step}", every_n_train_steps=stop_after, save_top_k=-1)
        callbacks += [ckpt, StopAfter(stop_after)]
    trainer = make_trainer(root, max_steps=N_STEPS, callbacks=callbacks)
    trainer.fit(
        module, make_datamodule(data_dir, model_dir, num_workers=num_workers), ckpt_path=ckpt_path, weights_only=False
    )
    return rec.losses


def test_rng_states_load_with_weights_only(tmp_path):
    """Lightning resumes with ``torch.load(weights_only=True)`` by default: the saved RNG states must pass it."""
    import random

    import numpy as np
    import torch

    from lit_videor2.modules.base import collect_rng_states, restore_rng_states

    states = collect_rng_states()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.save({"rng_states": states}, tmp_path / "rng.pt")
    restore_rng_states(torch.load(tmp_path / "rng.pt", weights_only=True)["rng_states"])
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]


# (k, num_workers): mid-epoch 0; at the end of epoch 0 with a worker; mid-epoch 1 with a worker (Lightning creates
# the resumed iterator before its set_epoch, and worker processes prefetch at once).
@pytest.mark.slow
@pytest.mark.parametrize(("k", "num_workers"), [(3, 0), (4, 1), (5, 1)])
def test_resume_is_exact(tmp_path, synth_dir, tiny_model_dir, k, num_workers):  # noqa: F811
    full = run(tmp_path / "full", tiny_model_dir, synth_dir, num_workers=num_workers)
    assert sorted(full) == list(range(1, N_STEPS + 1))
    first = run(tmp_path / "a", tiny_model_dir, synth_dir, num_workers=num_workers, stop_after=k)
    assert sorted(first) == list(range(1, k + 1))
    ckpt = tmp_path / "a" / f"step={k}.ckpt"
    second = run(tmp_path / "b", tiny_model_dir, synth_dir, num_workers=num_workers, ckpt_path=ckpt)
    resumed = {**first, **second}
    assert sorted(second) == list(range(k + 1, N_STEPS + 1)), "resumed run did not continue at the next step"
    table = "\n".join(f"step {s}: full {full[s]:.8f} resumed {resumed.get(s, float('nan')):.8f}" for s in full)
    for step in full:
        assert resumed[step] == pytest.approx(full[step], abs=1e-6, rel=0), f"step {step} differs:\n{table}"
    # The losses really differ step to step (the comparison is not trivially satisfied).
    assert len({round(v, 6) for v in full.values()}) == N_STEPS

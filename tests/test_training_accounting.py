"""Optimizer-step accounting, loss aggregation, non-finite guards and the reference's effective GRPO batch.

- SFT: the gradient of an optimizer step is the mean over the global batch's label tokens across accumulated
  micro-batches (``loss_aggregation: token``), or the reference's per-sample mean (``sample``); checked through a
  real Lightning run with gradient accumulation on a one-parameter stand-in model.
- The learning-rate schedule spans optimizer steps: GRPO's batches × μ / accumulate_steps.
- Rewards: ±inf is an error naming the reward and the sample (zeroed and counted under ``on_error: zero``); a
  completion no reward applies to totals NaN, stays out of its group's statistics and gets advantage 0.
- GRPO: a non-finite loss skips the update (counted), or stops without replacing the last good checkpoint.
- The reference's optimisation (8 ranks, one completion of the prompt each, a token mean per rank, gradients
  averaged over ranks) equals ``loss_type: grpo`` on one rank holding the whole group.
"""

from __future__ import annotations

import csv
import functools
import math
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from lit_videor2.losses import group_advantages, grpo_loss
from lit_videor2.rewards import RewardComposition

# -- SFT: token / sample mean over the optimizer step's global batch ---------------------------------------------


class _Scalar(torch.nn.Module):
    """One weight ``w``; the stand-in label loss of a micro-batch is ``w * mean_loss`` on each of its tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))


def _fake_losses(model, batch):
    tokens = batch["tokens"]  # [B] label tokens per sample
    per_token = batch["mean_loss"]  # [B] mean loss of each sample's tokens
    return model.w * per_token * tokens, tokens  # sums [B], counts [B]


def _sft_step_update(monkeypatch, tmp_path, aggregation: str) -> float:
    """Run one optimizer step (2 accumulated micro-batches, SGD lr 1) and return the change of ``w``."""
    from lit_videor2.models.policy import PolicySpec
    from lit_videor2.modules import sft

    monkeypatch.setattr(sft, "label_token_losses", _fake_losses)
    module = sft.SFTModule(
        policy=PolicySpec(path="unused"),
        optimizer=functools.partial(torch.optim.SGD, lr=1.0),
        loss_aggregation=aggregation,
    )
    module.model = _Scalar()  # configure_model keeps a model that is already there
    batches = [  # micro-steps of 400 and 4,000 label tokens at mean losses 1.0 and 2.0
        {"batch_size": 1, "tokens": torch.tensor([400.0]), "mean_loss": torch.tensor([1.0])},
        {"batch_size": 1, "tokens": torch.tensor([4000.0]), "mean_loss": torch.tensor([2.0])},
    ]
    for b in batches:
        b["input_ids"] = torch.zeros(1, 1, dtype=torch.long)
        b["attention_mask"] = torch.ones(1, 1)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        accumulate_grad_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    return 1.0 - float(module.model.w)


def test_sft_token_mean_over_accumulated_micro_batches(monkeypatch, tmp_path):
    # (400 * 1.0 + 4000 * 2.0) / 4400 = 1.909..., not the mean of micro-step means (1.5)
    assert _sft_step_update(monkeypatch, tmp_path, "token") == pytest.approx(8400 / 4400, rel=1e-6)


def test_sft_sample_mean_is_the_reference_option(monkeypatch, tmp_path):
    assert _sft_step_update(monkeypatch, tmp_path, "sample") == pytest.approx(1.5, rel=1e-6)


def test_sft_rejects_unknown_aggregation():
    from lit_videor2.models.policy import PolicySpec
    from lit_videor2.modules.sft import SFTModule

    with pytest.raises(ValueError, match="loss_aggregation"):
        SFTModule(policy=PolicySpec(path="unused"), loss_aggregation="tokens")


# -- LR schedule in optimizer steps ----------------------------------------------------------------------------


def _grpo(**kw):
    from lit_videor2.models.policy import PolicySpec
    from lit_videor2.modules.grpo import GRPOModule

    return GRPOModule(policy=PolicySpec(path="unused"), rewards=RewardComposition({"x": lambda c, **_: [0.0]}), **kw)


@pytest.mark.parametrize(
    ("mu", "accumulate", "max_steps", "expected"),
    [(1, 1, -1, 10), (2, 1, -1, 20), (1, 4, -1, 2), (2, 1, 12, 12), (1, 1, 4, 4)],
)
def test_grpo_schedule_spans_optimizer_steps(mu, accumulate, max_steps, expected):
    module = _grpo(num_iterations=mu, accumulate_steps=accumulate)
    module._trainer = SimpleNamespace(
        estimated_stepping_batches=10 if max_steps == -1 else min(10, max_steps),
        num_training_batches=10,
        max_epochs=1,
        max_steps=max_steps,
    )
    assert module.total_optimizer_steps() == expected


def test_grpo_refuses_iterations_with_accumulation():
    with pytest.raises(ValueError, match="num_iterations=2 with accumulate_steps=4"):
        _grpo(num_iterations=2, accumulate_steps=4)


# -- non-finite rewards and unscored completions ----------------------------------------------------------------


def _inf_reward(completions, **_):
    return [1.0, math.inf][: len(completions)] + [0.0] * max(0, len(completions) - 2)


def test_inf_reward_is_an_error_naming_reward_and_sample():
    comp = RewardComposition({"bad": _inf_reward})
    with pytest.raises(RuntimeError, match=r"reward 'bad' returned inf on sample id 'b'"):
        comp(["x", "y"], id=["a", "b"])


def test_inf_reward_is_counted_and_zeroed_under_on_error_zero():
    comp = RewardComposition({"bad": _inf_reward}, on_error="zero")
    with pytest.warns(RuntimeWarning, match="non-finite"):
        out = comp(["x", "y"], id=["a", "b"])
    assert out.total == [1.0, 0.0] and comp.error_counts == {"bad": 1}


def test_unscored_completion_totals_nan_and_gets_zero_advantage():
    comp = RewardComposition({"r": lambda completions, **_: [None, 1.0, 0.0, 2.0]})
    total = torch.tensor(comp(["a", "b", "c", "d"]).total)
    assert math.isnan(total[0])
    adv = group_advantages(total, 4)
    assert adv[0] == 0.0
    # the three scored completions are normalised among themselves: mean 1, unbiased std 1
    torch.testing.assert_close(adv[1:], torch.tensor([0.0, -1.0, 1.0]) / (1.0 + 1e-4))
    assert torch.equal(
        group_advantages(torch.tensor([math.nan, 3.0]), 2), torch.zeros(2)
    )  # one scored: nothing to compare


# -- GRPO: a non-finite loss never reaches the weights ----------------------------------------------------------


def _grpo_args(synth: Path, model: Path, root: Path, *extra: str) -> list[str]:
    from tests.test_grpo import _args

    return ["fit", *_args(synth, model, root, *extra)]


@pytest.mark.parametrize("mode", ["skip", "stop"])
def test_grpo_nonfinite_loss_skips_update_or_stops(synth_dir, tiny_model_dir, tmp_path, monkeypatch, mode):
    from lit_videor2.cli import VideoR2CLI
    from lit_videor2.modules import grpo
    from lit_videor2.modules.base import NonFiniteLossError

    real = grpo.grpo_loss

    def nan_loss(*args, **kwargs):
        loss, stats = real(*args, **kwargs)
        return loss * math.nan, stats

    monkeypatch.setattr(grpo, "grpo_loss", nan_loss)
    root = tmp_path / "run"
    args = _grpo_args(synth_dir, tiny_model_dir, root, "--trainer.max_steps", "2", "--trainer.max_epochs", "1")
    args += ["--model.init_args.on_nonfinite", mode, "--trainer.limit_train_batches", "2"]
    before = {}

    class Snapshot(L.Callback):
        def on_train_start(self, trainer, pl_module):
            before.update({k: v.detach().clone() for k, v in pl_module.model.state_dict().items()})

    monkeypatch.setattr(grpo.GRPOModule, "configure_callbacks", lambda self: [Snapshot()])
    if mode == "stop":
        with pytest.raises(NonFiniteLossError, match="GRPO loss is nan"):
            VideoR2CLI(args=args)
        assert (root / "nonfinite.ckpt").exists()
        return
    cli = VideoR2CLI(args=args)
    after = cli.model.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # no update was applied
    assert cli.model.nonfinite_steps == 2  # both steps counted
    # Nothing to apply: neither the optimizer nor the LR schedule moved (Lightning's skip of a None loss).
    assert cli.trainer.global_step == 0
    rows = list(csv.DictReader(next(root.glob("**/metrics.csv")).open()))
    assert max(float(r["train/nonfinite_steps"]) for r in rows if r.get("train/nonfinite_steps")) == 2


# -- the reference's effective batch -----------------------------------------------------------------------------


def test_grpo_loss_type_matches_reference_arrangement_by_hand():
    """Reference: 8 ranks, each with one completion of the same prompt; TRL's token mean ("bnpo") per rank, DDP
    averages the 8 gradients. Here one rank holds the whole group: ``loss_type: grpo`` gives the same gradient."""
    torch.manual_seed(0)
    G, T = 8, 7
    logps = torch.randn(G, T, dtype=torch.float64).mul(0.3).sub(1.0)
    ref = logps + 0.05 * torch.randn(G, T, dtype=torch.float64)
    mask = torch.zeros(G, T, dtype=torch.float64)
    for i, n in enumerate([1, 7, 3, 5, 2, 7, 4, 6]):  # completions of different lengths
        mask[i, :n] = 1.0
    adv = group_advantages(torch.tensor([1.0, 0.0, 2.0, 1.0, 0.0, 3.0, 1.0, 2.0], dtype=torch.float64), G)

    reference = torch.zeros_like(logps)
    for r in range(G):  # rank r: its one completion, a token mean, then the average over the 8 ranks
        lp = logps[r : r + 1].clone().requires_grad_(True)
        loss, _ = grpo_loss(lp, None, ref[r : r + 1], adv[r : r + 1], mask[r : r + 1], loss_type="bnpo")
        (loss / G).backward()
        reference[r] = lp.grad[0]

    lp = logps.clone().requires_grad_(True)
    loss, _ = grpo_loss(lp, None, ref, adv, mask, loss_type="grpo")
    loss.backward()
    torch.testing.assert_close(lp.grad, reference, rtol=1e-12, atol=1e-12)

    lp = logps.clone().requires_grad_(True)
    grpo_loss(lp, None, ref, adv, mask, loss_type="bnpo")[0].backward()  # a token mean over the group differs
    assert not torch.allclose(lp.grad, reference)


def test_shipped_grpo_recipe_sets_the_reference_aggregation():
    import yaml

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "grpo.yaml").read_text())
    args = cfg["model"]["init_args"]
    assert args["loss_type"] == "grpo" and args["rollout"]["group_size"] == 8
    assert cfg["data"]["batch_size"] == 1 and args["accumulate_steps"] == 1


# -- evaluation shards -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("world", [2, 3, 4])
def test_eval_shards_are_even_and_padding_is_named_once(world):
    """Every rank gets the same number of samples (the same number of test batches, so the same forwards); the
    repeated ones are named so each sample is written once, by the rank holding its real occurrence."""
    from lit_videor2.data.sampler import ResumableSampler

    data = list(range(7))
    shards = [ResumableSampler(data, num_replicas=world, rank=r, shuffle=False) for r in range(world)]
    assert len({len(list(s)) for s in shards}) == 1
    written = [i for s in shards for i in list(s) if i not in s.padding_indices()]
    assert sorted(written) == data  # each sample exactly once

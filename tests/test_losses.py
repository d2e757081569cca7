"""Tests for lit_videor2.losses: expected values are worked out with plain Python floats, not the code under test."""

from __future__ import annotations

import math
import statistics
import time

import pytest
import torch
import torch.nn.functional as F

from lit_videor2.losses import GRPOLossStats, group_advantages, grpo_loss, mask_truncated, token_logprobs
from lit_videor2.losses.grpo import LOSS_TYPES

TOL = {"rtol": 0, "atol": 1e-12}


def k3(d: float) -> float:
    """k3 KL estimator for d = ref - logp."""
    return math.exp(d) - d - 1.0


# --------------------------------------------------------------------------------------------------------------------
# group_advantages
# --------------------------------------------------------------------------------------------------------------------

REWARDS = [1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0]  # two groups of 4; the second all equal
GROUP_STD = math.sqrt((1.5**2 + 0.5**2 + 0.5**2 + 1.5**2) / 3)  # unbiased (n - 1) std of [1, 2, 3, 4]
CENTERED = [-1.5, -0.5, 0.5, 1.5, 0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        # (r - group mean) / (unbiased group std + eps); the all-equal group is exactly 0
        ("group", [c / (GROUP_STD + 1e-4) for c in CENTERED[:4]] + [0.0] * 4),
        # (r - group mean) / (unbiased std over all 8 rewards + eps)
        ("batch", [c / (statistics.stdev(REWARDS) + 1e-4) for c in CENTERED]),
        # Dr.GRPO: centred only
        ("none", CENTERED),
    ],
)
def test_group_advantages_scales(scale, expected):
    adv = group_advantages(torch.tensor(REWARDS, dtype=torch.float64), 4, scale=scale)
    torch.testing.assert_close(adv, torch.tensor(expected, dtype=torch.float64), **TOL)


def test_group_advantages_std_is_unbiased():
    # G = 2, rewards [0, 1]: unbiased std = sqrt(0.5); the biased one (0.5) would give +-1 / (1 + 2e-4)
    adv = group_advantages(torch.tensor([0.0, 1.0], dtype=torch.float64), 2)
    expected = 0.5 / (math.sqrt(0.5) + 1e-4)
    torch.testing.assert_close(adv, torch.tensor([-expected, expected], dtype=torch.float64), **TOL)


def test_group_advantages_eps():
    adv = group_advantages(torch.tensor([0.0, 1.0], dtype=torch.float64), 2, eps=0.5)
    expected = 0.5 / (math.sqrt(0.5) + 0.5)
    torch.testing.assert_close(adv, torch.tensor([-expected, expected], dtype=torch.float64), **TOL)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_group_advantages_all_equal_is_exactly_zero(scale):
    # 0.1 * 8 / 8 is not exactly 0.1 in floating point: the zero must not be a rounding residue / 1e-4
    adv = group_advantages(torch.full((16,), 0.1), 8, scale=scale)
    assert torch.equal(adv, torch.zeros(16))


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_group_advantages_group_size_one_is_zero(scale):
    adv = group_advantages(torch.tensor([0.3, 1.0, -2.0]), 1, scale=scale)
    assert torch.equal(adv, torch.zeros(3))


def test_group_advantages_int_rewards_and_multiple_groups():
    adv = group_advantages(torch.tensor([0, 1, 1, 1, 0, 0]), 3, scale="none")
    expected = [-2 / 3, 1 / 3, 1 / 3, 2 / 3, -1 / 3, -1 / 3]
    torch.testing.assert_close(adv, torch.tensor(expected), rtol=0, atol=1e-6)


def test_group_advantages_partial_group_raises():
    with pytest.raises(ValueError, match=r"7 elements.*group_size=4"):
        group_advantages(torch.ones(7), 4)


def test_group_advantages_bad_arguments():
    with pytest.raises(ValueError, match="'group', 'batch', 'none'"):
        group_advantages(torch.ones(4), 2, scale="std")
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(torch.ones(4), 0)
    with pytest.raises(ValueError, match=r"1-D"):
        group_advantages(torch.ones(2, 2), 2)


def test_mask_truncated():
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0]], dtype=torch.float32)
    out = mask_truncated(mask, torch.tensor([False, True, False]))
    assert torch.equal(out, torch.tensor([[1, 1, 0], [0, 0, 0], [1, 0, 0]], dtype=torch.float32))
    out_bool = mask_truncated(mask.bool(), torch.tensor([True, False, False]))
    assert out_bool.dtype == torch.bool
    assert out_bool.tolist() == [[False, False, False], [True, True, True], [True, False, False]]
    with pytest.raises(ValueError, match="is_truncated"):
        mask_truncated(mask, torch.tensor([True, False]))


# --------------------------------------------------------------------------------------------------------------------
# grpo_loss: one hand-worked batch
# --------------------------------------------------------------------------------------------------------------------
# N = 2 completions, T = 3; the last token of row 0 is padding (its values are absurd on purpose).
# Row 0 has A = +1, row 1 has A = -0.5. eps_low = eps_high = 0.2, so the clip range is [0.8, 1.2].
#   row 0, t0: rho 1.1                         -> -min(1.1, 1.1) * 1            = -1.1
#   row 0, t1: rho 1.5 > 1.2 and A > 0 (high)  -> -min(1.5, 1.2) * 1            = -1.2  (clipped: no gradient)
#   row 1, t0: rho 0.9                         -> -min(-0.45, -0.45)            =  0.45
#   row 1, t1: rho 0.5 < 0.8 and A < 0 (low)   -> -min(-0.25, 0.8 * -0.5)       =  0.4   (clipped: no gradient)
#   row 1, t2: rho 1.3 > 1.2 but A < 0         -> -min(-0.65, 1.2 * -0.5)       =  0.65  (not clipped)
RATIOS = [[1.1, 1.5, 2.0], [0.9, 0.5, 1.3]]
OLD = [[-1.0, -2.0, -0.5], [-0.3, -1.2, -2.2]]
REF_MINUS_LOGP = [[0.1, -0.2, 5.0], [0.3, 0.0, -0.1]]
ADV = [1.0, -0.5]
MASK = [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
SURROGATE = [[-1.1, -1.2], [0.45, 0.4, 0.65]]  # valid tokens only
KL = [[k3(0.1), k3(-0.2)], [k3(0.3), k3(0.0), k3(-0.1)]]
BETA = 0.04
PER_TOKEN = [[s + BETA * k for s, k in zip(srow, krow)] for srow, krow in zip(SURROGATE, KL)]
N_VALID = 5
TOTAL = sum(sum(row) for row in PER_TOKEN)

EXPECTED_LOSS = {
    "grpo": (sum(PER_TOKEN[0]) / 2 + sum(PER_TOKEN[1]) / 3) / 2,
    "bnpo": TOTAL / N_VALID,
    "dr_grpo": TOTAL / (2 * 4),  # max_completion_length = 4 (> T = 3: the normaliser is not the padded width)
    "dapo": TOTAL / N_VALID,  # single process: the global batch is this batch
}


def _hand_batch(requires_grad: bool = True):
    old = torch.tensor(OLD, dtype=torch.float64)
    logps = (old + torch.tensor(RATIOS, dtype=torch.float64).log()).requires_grad_(requires_grad)
    ref = logps.detach() + torch.tensor(REF_MINUS_LOGP, dtype=torch.float64)
    return logps, old, ref, torch.tensor(ADV, dtype=torch.float64), torch.tensor(MASK, dtype=torch.float64)


@pytest.mark.parametrize("loss_type", sorted(EXPECTED_LOSS))
def test_grpo_loss_hand_computed(loss_type):
    logps, old, ref, adv, mask = _hand_batch()
    loss, stats = grpo_loss(logps, old, ref, adv, mask, loss_type=loss_type, beta=BETA, max_completion_length=4)
    torch.testing.assert_close(loss, torch.tensor(EXPECTED_LOSS[loss_type], dtype=torch.float64), **TOL)
    assert isinstance(stats, GRPOLossStats)
    torch.testing.assert_close(stats.clip_frac_low, torch.tensor(1 / 5, dtype=torch.float64), **TOL)
    torch.testing.assert_close(stats.clip_frac_high, torch.tensor(1 / 5, dtype=torch.float64), **TOL)
    torch.testing.assert_close(stats.clip_frac, torch.tensor(2 / 5, dtype=torch.float64), **TOL)
    torch.testing.assert_close(stats.ratio_mean, torch.tensor((1.1 + 1.5 + 0.9 + 0.5 + 1.3) / 5, dtype=torch.float64))
    torch.testing.assert_close(stats.kl, torch.tensor(sum(map(sum, KL)) / 5, dtype=torch.float64), **TOL)
    assert not any(s.requires_grad for s in stats if s is not None)


def test_every_loss_type_has_a_hand_computed_case():
    assert set(EXPECTED_LOSS) == set(LOSS_TYPES)


def test_grpo_loss_clipped_tokens_get_no_gradient():
    logps, old, _, adv, mask = _hand_batch()
    loss, _ = grpo_loss(logps, old, None, adv, mask, loss_type="bnpo", beta=0.0)
    loss.backward()
    # d(-rho * A)/d logp = -rho * A on unclipped tokens, 0 on clipped ones and padding; bnpo divides by 5
    expected = [[-1.1 / 5, 0.0, 0.0], [0.45 / 5, 0.0, 0.65 / 5]]
    torch.testing.assert_close(logps.grad, torch.tensor(expected, dtype=torch.float64), **TOL)


def test_grpo_loss_asymmetric_clip_range():
    # eps_high = 0.6 (DAPO clip-higher) un-clips row 0, t1 (rho 1.5 < 1.6): its surrogate becomes -1.5
    logps, old, _, adv, mask = _hand_batch()
    loss, stats = grpo_loss(logps, old, None, adv, mask, beta=0.0, epsilon_low=0.2, epsilon_high=0.6)
    expected = (-1.1 - 1.5 + 0.45 + 0.4 + 0.65) / 5
    torch.testing.assert_close(loss, torch.tensor(expected, dtype=torch.float64), **TOL)
    assert stats.clip_frac_high.item() == 0.0 and stats.clip_frac_low.item() == pytest.approx(1 / 5)
    assert stats.kl is None


def test_grpo_loss_kl_term():
    # A = 0 leaves only beta * k3; at beta = 0.5 the loss is 0.5 * mean k3 over valid tokens
    logps, old, ref, _, mask = _hand_batch()
    loss, stats = grpo_loss(logps, old, ref, torch.zeros(2, dtype=torch.float64), mask, beta=0.5)
    mean_kl = sum(map(sum, KL)) / 5
    torch.testing.assert_close(loss, torch.tensor(0.5 * mean_kl, dtype=torch.float64), **TOL)
    torch.testing.assert_close(stats.kl, torch.tensor(mean_kl, dtype=torch.float64), **TOL)
    loss.backward()
    # d k3 / d logp = 1 - exp(ref - logp)
    expected = [
        [0.5 * (1 - math.exp(d)) / 5 * m for d, m in zip(drow, mrow)] for drow, mrow in zip(REF_MINUS_LOGP, MASK)
    ]
    torch.testing.assert_close(logps.grad, torch.tensor(expected, dtype=torch.float64), **TOL)


def test_grpo_loss_kl_is_reported_at_beta_zero_when_ref_given():
    logps, old, ref, adv, mask = _hand_batch()
    loss_with_ref, stats = grpo_loss(logps, old, ref, adv, mask, beta=0.0)
    loss_without, _ = grpo_loss(logps, old, None, adv, mask, beta=0.0)
    torch.testing.assert_close(loss_with_ref, loss_without, **TOL)
    torch.testing.assert_close(stats.kl, torch.tensor(sum(map(sum, KL)) / 5, dtype=torch.float64), **TOL)


# --------------------------------------------------------------------------------------------------------------------
# grpo_loss: on-policy gradients
# --------------------------------------------------------------------------------------------------------------------

ON_POLICY_MASK = [[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]
ON_POLICY_ADV = [0.5, -2.0, 1.5]
N_TOKENS = [3, 1, 4]


@pytest.mark.parametrize(
    ("loss_type", "loss_value", "token_grad"),
    [
        # loss = -sum_i A_i n_i / 8 ; d/dlogp_it = -A_i / 8
        ("bnpo", -(0.5 * 3 - 2.0 * 1 + 1.5 * 4) / 8, lambda i: -ON_POLICY_ADV[i] / 8),
        ("dapo", -(0.5 * 3 - 2.0 * 1 + 1.5 * 4) / 8, lambda i: -ON_POLICY_ADV[i] / 8),
        # loss = mean_i(-A_i) ; d/dlogp_it = -A_i / (n_i * N)
        ("grpo", -(0.5 - 2.0 + 1.5) / 3, lambda i: -ON_POLICY_ADV[i] / (N_TOKENS[i] * 3)),
        # loss = -sum_i A_i n_i / (N * L), L = 5 ; d/dlogp_it = -A_i / 15
        ("dr_grpo", -(0.5 * 3 - 2.0 * 1 + 1.5 * 4) / 15, lambda i: -ON_POLICY_ADV[i] / 15),
    ],
)
def test_grpo_loss_on_policy_gradient(loss_type, loss_value, token_grad):
    torch.manual_seed(0)
    logps = (-torch.rand(3, 4, dtype=torch.float64) * 3).requires_grad_(True)
    mask = torch.tensor(ON_POLICY_MASK, dtype=torch.float64)
    adv = torch.tensor(ON_POLICY_ADV, dtype=torch.float64)
    loss, stats = grpo_loss(logps, None, None, adv, mask, loss_type=loss_type, beta=0.0, max_completion_length=5)
    torch.testing.assert_close(loss, torch.tensor(loss_value, dtype=torch.float64), **TOL)
    loss.backward()
    expected = [[token_grad(i) * m for m in row] for i, row in enumerate(ON_POLICY_MASK)]
    torch.testing.assert_close(logps.grad, torch.tensor(expected, dtype=torch.float64), **TOL)
    assert stats.ratio_mean.item() == 1.0 and stats.clip_frac.item() == 0.0


def test_grpo_loss_bool_mask_and_empty_mask():
    logps, old, ref, adv, mask = _hand_batch()
    loss_bool, _ = grpo_loss(logps, old, ref, adv, mask.bool())
    loss_float, _ = grpo_loss(logps, old, ref, adv, mask)
    torch.testing.assert_close(loss_bool, loss_float, **TOL)
    for loss_type in LOSS_TYPES:
        loss, stats = grpo_loss(
            logps, old, ref, adv, torch.zeros_like(mask), loss_type=loss_type, max_completion_length=4
        )
        assert loss.item() == 0.0 and stats.kl.item() == 0.0 and not torch.isnan(stats.ratio_mean)


def test_grpo_loss_dapo_with_explicit_token_count():
    # gradient accumulation: the count of the whole optimiser step (here 10 tokens over two micro-batches)
    logps, old, ref, adv, mask = _hand_batch()
    loss, _ = grpo_loss(logps, old, ref, adv, mask, loss_type="dapo", beta=BETA, num_items_in_batch=10)
    torch.testing.assert_close(loss, torch.tensor(TOTAL / 10, dtype=torch.float64), **TOL)


def test_grpo_loss_errors():
    logps, old, ref, adv, mask = _hand_batch()
    with pytest.raises(ValueError, match=r"'grpo', 'bnpo', 'dr_grpo', 'dapo'"):
        grpo_loss(logps, old, ref, adv, mask, loss_type="ppo")
    with pytest.raises(ValueError, match="ref_logps=None needs beta == 0"):
        grpo_loss(logps, old, None, adv, mask, beta=0.04)
    with pytest.raises(ValueError, match="max_completion_length"):
        grpo_loss(logps, old, ref, adv, mask, loss_type="dr_grpo")
    with pytest.raises(ValueError, match="advantages must be"):
        grpo_loss(logps, old, ref, adv[:, None], mask)
    with pytest.raises(ValueError, match="mask must have the shape"):
        grpo_loss(logps, old, ref, adv, mask[:, :2])


# --------------------------------------------------------------------------------------------------------------------
# token_logprobs
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("chunk_size", [1, 4, 1024])
def test_token_logprobs_matches_log_softmax_gather(temperature, chunk_size):
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 11, (3, 5))
    out = token_logprobs(logits, labels, temperature=temperature, chunk_size=chunk_size)
    expected = F.log_softmax(logits / temperature, dim=-1).gather(-1, labels[..., None]).squeeze(-1)
    torch.testing.assert_close(out, expected, **TOL)
    (grad,) = torch.autograd.grad(out.sum(), logits)
    (expected_grad,) = torch.autograd.grad(expected.sum(), logits)
    torch.testing.assert_close(grad, expected_grad, **TOL)


def test_token_logprobs_bf16_and_ignore_index():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 9).to(torch.bfloat16)
    labels = torch.randint(0, 9, (2, 4))
    labels[1, 2:] = -100
    out = token_logprobs(logits, labels, chunk_size=3)
    assert out.dtype == torch.float32 and out.shape == (2, 4)
    expected = F.log_softmax(logits.float(), dim=-1).gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
    torch.testing.assert_close(out[0], expected[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(out[1, :2], expected[1, :2], rtol=0, atol=1e-6)
    assert out[1, 2:].tolist() == [0.0, 0.0]


def test_token_logprobs_shape_error():
    with pytest.raises(ValueError, match=r"logits \[N, T, V\]"):
        token_logprobs(torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.long))


# --------------------------------------------------------------------------------------------------------------------
# dapo across 2 real processes (gloo, DDP)
# --------------------------------------------------------------------------------------------------------------------
# Rank 0 holds rows 0-1 (7 valid tokens), rank 1 rows 2-3 (2 valid tokens): with unequal counts a per-rank token
# mean averaged by DDP differs from the token mean of the concatenated batch, which dapo must reproduce.

DIST_MASK = [[1, 1, 1, 1, 0], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 0, 0, 0, 0]]
DIST_ROWS = {0: slice(0, 2), 1: slice(2, 4)}


def _dapo_problem():
    """A tiny policy (one linear layer over features) and a batch of 4 completions, identical in every process."""
    g = torch.Generator().manual_seed(1234)
    model = torch.nn.Linear(3, 6, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(6, 3, generator=g, dtype=torch.float64))
    x = torch.randn(4, 5, 3, generator=g, dtype=torch.float64)  # [N, T, H]
    labels = torch.randint(0, 6, (4, 5), generator=g)  # [N, T]
    with torch.no_grad():
        base = token_logprobs(model(x), labels)
    old = base + 0.4 * torch.randn(4, 5, generator=g, dtype=torch.float64)  # large enough to clip some tokens
    ref = base + 0.3 * torch.randn(4, 5, generator=g, dtype=torch.float64)
    adv = torch.tensor([1.0, -0.7, 0.4, -1.2], dtype=torch.float64)
    mask = torch.tensor(DIST_MASK, dtype=torch.float64)
    return model, x, labels, old, ref, adv, mask


def _loss_on_rows(model, batch, rows, loss_type):
    _, x, labels, old, ref, adv, mask = batch
    logps = token_logprobs(model(x[rows]), labels[rows])
    return grpo_loss(logps, old[rows], ref[rows], adv[rows], mask[rows], loss_type=loss_type)


def _dapo_worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        batch = _dapo_problem()
        ddp = torch.nn.parallel.DistributedDataParallel(batch[0])
        loss, stats = _loss_on_rows(ddp, batch, DIST_ROWS[rank], "dapo")
        loss.backward()  # DDP averages the weight gradient over the 2 ranks
        torch.save(
            {"loss": loss.detach(), "grad": ddp.module.weight.grad, "clip": stats.clip_frac}, f"{out_dir}/{rank}.pt"
        )
        dist.barrier()  # neither rank tears gloo down while its peer still talks to it (a SIGABRT was seen in CI)
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
@pytest.mark.slow
def test_dapo_two_processes_match_single_process(tmp_path):
    import torch.multiprocessing as mp

    ctx = mp.spawn(_dapo_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=False)
    deadline = time.monotonic() + 120
    while not ctx.join(timeout=5):  # raises if a worker fails
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("the 2 gloo workers did not finish within 120 s")
    results = [torch.load(tmp_path / f"{rank}.pt") for rank in range(2)]

    # single process over the concatenated batch: dapo is the token mean of all 9 valid tokens
    batch = _dapo_problem()
    model = batch[0]
    loss, stats = _loss_on_rows(model, batch, slice(0, 4), "dapo")
    loss.backward()
    assert 0 < stats.clip_frac.item() < 1  # the clip is active somewhere, so the ratios matter

    torch.testing.assert_close(results[0]["grad"], results[1]["grad"], **TOL)  # DDP synchronised them
    torch.testing.assert_close(results[0]["grad"], model.weight.grad, rtol=1e-10, atol=1e-12)
    # the mean over ranks of the per-rank losses is the global loss (what a logger with sync_dist reports)
    torch.testing.assert_close((results[0]["loss"] + results[1]["loss"]) / 2, loss.detach(), rtol=1e-10, atol=1e-12)

    # the data can tell the difference: a per-rank bnpo averaged by DDP gives another gradient
    naive = _dapo_problem()
    naive_loss = sum(_loss_on_rows(naive[0], naive, DIST_ROWS[r], "bnpo")[0] for r in range(2)) / 2
    naive_loss.backward()
    assert not torch.allclose(naive[0].weight.grad, model.weight.grad, rtol=1e-3, atol=1e-6)

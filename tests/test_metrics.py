"""Metrics against plain-Python references: several batches on one process, and 2 real gloo ranks on CPU."""

import math
import random

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lit_videor2.judges import Judge
from lit_videor2.metrics import (
    ThinkAnswerConsistency,
    VideoAttentionScore,
    VisualReliance,
    answer_matches,
    think_answer_consistency,
    video_attention_score,
)
from lit_videor2.metrics.functional import _visual_reliance_update

LETTERS = "ABCD"
OPTIONS = ["A. red", "B. blue", "C. green", "D. white"]

# ----------------------------------------------------------------------------------------- synthetic data


def tac_batch(seed: int, n: int = 16):
    """Completions whose think concludes one letter and whose answer gives another, with the ground truth."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        truth, think, answer = (rng.choice(LETTERS) for _ in range(3))
        style = rng.choice(["So the answer is {}.", "Therefore, {}.", "Option {} is correct.", "I choose ({})."])
        completion = f"<think>At 00:05 a box appears. {style.format(think)}</think><answer>{answer}</answer>"
        rows.append((completion, truth, think, answer))
    return rows


def tac_reference(rows):
    """Plain-Python TAC from the generation parameters (no parsing involved)."""
    a = [ans == truth for _, truth, _, ans in rows]
    t = [think == truth for _, truth, think, _ in rows]
    tp = sum(x and y for x, y in zip(a, t))
    fn = sum(x and not y for x, y in zip(a, t))
    tn = sum(not x and not y for x, y in zip(a, t))
    n = len(rows)
    return {
        "conditional_consistency": tp / (tp + fn) if tp + fn else math.nan,
        "agreement": (tp + tn) / n,
        "answer_accuracy": sum(a) / n,
        "think_accuracy": sum(t) / n,
    }


class ScoreJudge(Judge):
    """Judge whose grounding score is written in the completion ("score=7")."""

    def grounding_scores(self, completions, questions=None):
        return [float(c.split("score=")[1].split()[0]) for c in completions]

    def concluded_answers(self, *a, **k):
        raise NotImplementedError

    final_answers = consistency = concluded_answers


def vas_batch(seed: int, n: int = 8):
    rng = random.Random(seed)
    return [f"<think>score={rng.randint(0, 10)} the video shows</think><answer>A</answer>" for _ in range(n)]


def attention_batch(seed: int, b: int = 3, h: int = 2, length: int = 7):
    g = torch.Generator().manual_seed(seed)
    attn = torch.softmax(torch.randn(b, h, length, length, generator=g), dim=-1)
    generated = torch.rand(b, length, generator=g) > 0.5
    video = torch.rand(b, length, generator=g) > 0.4
    return attn, generated, video


def reliance_reference(batches, per_video_token=False):
    total, count = 0.0, 0
    for attn, generated, video in batches:
        b, h, q_len, k_len = attn.shape
        for i in range(b):
            n_video = max(1, sum(bool(video[i, k]) for k in range(k_len)))
            for q in range(q_len):
                if not generated[i, q]:
                    continue
                mass = sum(float(attn[i, hh, q, k]) for hh in range(h) for k in range(k_len) if video[i, k]) / h
                total += mass / n_video if per_video_token else mass
                count += 1
    return total / count


# ------------------------------------------------------------------------------------------ single process


@pytest.mark.parametrize(
    "pred, truth, ptype, options, expected",
    [
        ("B", "(B)", "multiple choice", None, True),  # letter match
        ("blue", "B", None, OPTIONS, True),  # option text -> letter
        ("3.001", "3", "numerical", None, True),  # rounded to 2 decimals
        ("3.1", "3", "numerical", None, False),  # beyond rounding
        ("10.4", "10", "regression", None, True),  # relative error 4 % <= 5 %
        ("10.6", "10", "regression", None, False),  # 6 %
        (None, "B", "multiple choice", None, False),  # nothing extracted
        ("Red Car", "red  car", "free-form", None, True),  # case and spaces ignored
    ],
)
def test_answer_matches(pred, truth, ptype, options, expected):
    assert answer_matches(pred, truth, ptype, options) is expected


def test_tac_several_batches():
    metric = ThinkAnswerConsistency()
    batches = [tac_batch(seed) for seed in range(4)]
    for rows in batches:
        metric.update(
            [r[0] for r in rows], [r[1] for r in rows], ["multiple choice"] * len(rows), [OPTIONS] * len(rows)
        )
        batch_value = think_answer_consistency(
            [r[0] for r in rows], [r[1] for r in rows], options=[OPTIONS] * len(rows)
        )
        for key, value in tac_reference(rows).items():
            assert float(batch_value[key]) == pytest.approx(value, rel=1e-12, nan_ok=True)
    union = [r for rows in batches for r in rows]
    result = metric.compute()
    for key, value in tac_reference(union).items():
        assert float(result[key]) == pytest.approx(value, rel=1e-12)
    assert set(result) == {"conditional_consistency", "agreement", "answer_accuracy", "think_accuracy"}


def test_tac_undefined_is_nan():
    rows = [("<think>So the answer is A.</think><answer>A</answer>", "B")]  # no correct answer at all
    value = think_answer_consistency([rows[0][0]], [rows[0][1]], options=[OPTIONS])
    assert math.isnan(float(value["conditional_consistency"])) and float(value["agreement"]) == 1.0


def test_vas_several_batches():
    metric = VideoAttentionScore(judge=ScoreJudge())
    batches = [vas_batch(seed) for seed in range(3)]
    for completions in batches:
        metric.update(completions)
        expected = 10 * sum(ScoreJudge().grounding_scores(completions)) / len(completions)
        assert float(video_attention_score(completions, judge=ScoreJudge())) == pytest.approx(expected)
    union = [c for b in batches for c in b]
    assert float(metric.compute()) == pytest.approx(10 * sum(ScoreJudge().grounding_scores(union)) / len(union))


@pytest.mark.parametrize("per_video_token", [False, True])
def test_visual_reliance_several_batches(per_video_token):
    metric = VisualReliance(per_video_token=per_video_token)
    batches = [attention_batch(seed) for seed in range(3)]
    for batch in batches:
        metric.update(*batch)
        state = _visual_reliance_update(*batch, per_video_token=per_video_token)
        assert float(state[0] / state[1]) == pytest.approx(reliance_reference([batch], per_video_token), rel=1e-6)
    assert float(metric.compute()) == pytest.approx(reliance_reference(batches, per_video_token), rel=1e-6)


def test_metric_states_are_summed_tensors():
    for metric in (ThinkAnswerConsistency(), VideoAttentionScore(), VisualReliance()):
        assert metric.full_state_update is False
        assert all(
            fx is dist.ReduceOp.SUM or getattr(fx, "__name__", "") == "dim_zero_sum"
            for fx in metric._reductions.values()
        )
        assert all(isinstance(v, torch.Tensor) for v in metric._defaults.values())


# ------------------------------------------------------------------------------------------------ 2 ranks


def _rank_batches(rank: int):
    return (
        [tac_batch(10 * rank + i) for i in range(2)],
        [vas_batch(10 * rank + i) for i in range(2)],
        [attention_batch(10 * rank + i) for i in range(2)],
    )


def _worker(rank: int, world_size: int, init_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        tac, vas, rel = ThinkAnswerConsistency(), VideoAttentionScore(judge=ScoreJudge()), VisualReliance()
        tac_b, vas_b, rel_b = _rank_batches(rank)
        for rows in tac_b:
            tac.update([r[0] for r in rows], [r[1] for r in rows], options=[OPTIONS] * len(rows))
        for completions in vas_b:
            vas.update(completions)
        for batch in rel_b:
            rel.update(*batch)
        all_tac, all_vas, all_rel = [], [], []
        for r in range(world_size):
            t, v, a = _rank_batches(r)
            all_tac += [row for rows in t for row in rows]
            all_vas += [c for b in v for c in b]
            all_rel += a
        result = tac.compute()
        for key, value in tac_reference(all_tac).items():
            assert float(result[key]) == pytest.approx(value, rel=1e-12), key
        expected_vas = 10 * sum(ScoreJudge().grounding_scores(all_vas)) / len(all_vas)
        assert float(vas.compute()) == pytest.approx(expected_vas, rel=1e-12)
        assert float(rel.compute()) == pytest.approx(reliance_reference(all_rel), rel=1e-6)
        # the union differs from this rank's own data, so the checks above prove the states were synced
        assert dist.get_world_size() == 2
        assert float(rel.compute()) != pytest.approx(reliance_reference(rel_b), rel=1e-6)
        dist.barrier()  # neither rank tears gloo down while its peer still talks to it
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
@pytest.mark.slow
def test_metrics_two_gloo_ranks(tmp_path):
    # Real processes; this raises if a process cannot start or any assertion in a rank fails: the test fails, never
    # skips. "fork" (Linux) reuses the parent's imports; "spawn" would re-import torchmetrics in each child (tens of
    # seconds on a loaded 2-core machine).
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(_worker, args=(2, str(tmp_path / "init")), nprocs=2, join=True, start_method=method)


# ------------------------------------------------------------------------------------------ claim truth


def claims_batch(seed: int, n: int = 12):
    """Completions citing a shape at a second of a 4-second clip, right or wrong in time, colour and shape."""
    from lit_videor2.demo.synthetic_scenes import SHAPES

    colours = ["red", "green", "blue"]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        t, c, s = rng.randint(1, 3), rng.choice(colours), rng.choice(SHAPES)
        ct = t if rng.random() < 0.6 else rng.randint(1, 3)  # right more often than by chance
        cc = c if rng.random() < 0.6 else rng.choice(colours)
        cs = s if rng.random() < 0.6 else rng.choice(SHAPES + ("",))
        text = f"At 00:0{ct} a {cc} {cs} appears." if rng.random() < 0.8 else "A shape appears."
        out.append(
            (f"<think>{text} So the answer is A.</think><answer>A</answer>", {f"00:0{t}": f"A {c} {s} appears."})
        )
    return out


def claims_reference(batch):
    """Plain-Python claim truth of the crafted batch: one claim per completion (or none)."""
    n = true = complete = with_claim = 0
    for completion, truth in batch:
        think = completion.split("</think>")[0]
        if "At 00:0" not in think:
            continue
        with_claim += 1
        n += 1
        rest = think.split("At 00:0")[1]
        t, words = rest[0], rest[1:].split("appears")[0].split()[1:]  # [colour] or [colour, shape]
        ((gt_key, gt),) = truth.items()
        _, gc, gs, _ = gt.split()
        same_time = t == gt_key[-1]
        colour_ok, shape = words[0] == gc, (words[1:] or [None])[0]
        shape_ok = shape in (gs, None)  # "a red  appears": the shape left out
        true += same_time and colour_ok and shape_ok
        complete += same_time and colour_ok and shape == gs
    return {
        "claims_true": 100 * true / n,
        "claims_complete": 100 * complete / n,
        "with_claim": 100 * with_claim / len(batch),
    }


def test_claim_truth_several_batches_and_prediction_metrics():
    from lit_videor2.evaluation.judging import row_claims
    from lit_videor2.metrics import ClaimTruth, PredictionMetrics, claim_truth

    batches = [claims_batch(seed) for seed in range(3)]
    union = [x for b in batches for x in b]
    want = claims_reference(union)
    metric, rows_metric = ClaimTruth(), PredictionMetrics()
    for b in batches:
        metric.update([c for c, _ in b], [g for _, g in b], durations=[4.0] * len(b))
        rows = [{"completion": c, "temporal_grounding": g, "duration": 4.0} for c, g in b]
        for r in rows:
            r.update(correct=1.0, format=1.0, tac_a=True, tac_t=True, vas=5.0, tar=None, claims=row_claims(r))
        rows_metric.update(rows + [{"correct": 0.0, "tac_a": False, "tac_t": False, "vas": 0.0, "claims": None}])
    got, from_rows = metric.compute(), rows_metric.compute()
    once = claim_truth([c for c, _ in union], [g for _, g in union], [4.0] * len(union))
    for key, value in want.items():
        assert float(got[key]) == pytest.approx(value), key
        assert float(from_rows[key]) == pytest.approx(value), key  # rows without ground truth are left out
        assert float(once[key]) == pytest.approx(value), key
    assert float(got["stated_colour"]) == pytest.approx(100.0)
    assert 0 < float(got["stated_object"]) < 100  # some claims leave the shape out
    assert math.isnan(float(ClaimTruth().compute()["claims_true"]))  # no claim: undefined

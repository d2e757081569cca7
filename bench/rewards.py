"""Time of the full reward set (format + accuracy + gated TAR) on one GRPO group of 8 completions with 5 timestamp
claims each, after the embedder is loaded (shipped all-MiniLM-L6-v2, CPU).

Run: ``OMP_NUM_THREADS=1 python bench/rewards.py [--repeats 10] [--threads 1]``

Prints the median time per group, the part spent in the sentence embedder (the MiniLM forward over the predicted
claims), and the rest (parsing, matching, accuracy, composition) measured side by side with a memoising embedder;
then the same rest under the checked TAR rule (``rule="checked"``: closed-attribute checks of every claim, its
attribute cache cleared before each call so every claim is read anew), beside the reference rule's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lit_videor2.rewards import (
    AccuracyReward,
    Embedder,
    FormatReward,
    RewardComposition,
    SentenceTransformerEmbedder,
    TemporalAlignmentReward,
)
from lit_videor2.rewards.temporal import _attributes

ACTIONS = [
    "the man lifts the red box onto the table",
    "a dog runs across the yard toward the gate",
    "the woman opens the blue door slowly",
    "a slide shows the total count of apples",
    "the car turns left at the corner",
    "two children throw a ball near the tree",
    "the chef cuts the onion into slices",
    "a bird lands on the roof of the house",
]


MANNER = ["", " again", " as we can see", " in the video", " clearly", " at that moment", " on screen", " once more"]


def make_group(group_size: int = 8, claims: int = 5):
    """One prompt's group: distinct completions (each claim worded per completion) and the record's columns."""
    completions = []
    for g in range(group_size):
        sentences = [
            f"At 00:{10 * k + g % 3:02d} {ACTIONS[(k + g * (k % 2)) % len(ACTIONS)]}{MANNER[g]}." for k in range(claims)
        ]
        completions.append(f"<think>{' '.join(sentences)} So the answer is B.</think>\n<answer>B</answer>")
    reference = {f"00:{10 * k:02d}": ACTIONS[k % len(ACTIONS)] for k in range(claims)}
    columns = dict(
        id=["bench-0"] * group_size,
        answer=["B"] * group_size,
        problem_type=["multiple choice"] * group_size,
        options=[["A. red", "B. blue", "C. green", "D. white"]] * group_size,
        temporal_grounding=[reference] * group_size,
        question=["What happens?"] * group_size,
        duration=[60.0] * group_size,
    )
    return completions, columns


class Memo(Embedder):
    """Memoising wrapper: after a warm-up call, encoding costs only a lookup (isolates the non-embedding work)."""

    def __init__(self, inner: Embedder):
        self.inner, self.memo = inner, {}

    def encode(self, sentences):
        missing = [s for s in sentences if s not in self.memo]
        if missing:
            for s, e in zip(missing, self.inner.encode(missing)):
                self.memo[s] = e
        return torch.stack([self.memo[s] for s in sentences]) if sentences else torch.zeros(0, 0)


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    embedder = SentenceTransformerEmbedder().load()
    completions, columns = make_group()

    def composition(emb, rule="reference"):
        tar = TemporalAlignmentReward(embedder=emb, rule=rule)
        return RewardComposition({"format": FormatReward(), "accuracy": AccuracyReward(), "temporal_alignment": tar})

    cold = SentenceTransformerEmbedder(cache_size=0)  # every predicted claim encoded on every call
    full = composition(cold)
    out = full(completions, **columns)  # warm-up: caches the record's reference embeddings, imports ROUGE/WER
    assert all(v == 1.0 for v in out.components["format"]) and any(out.components["temporal_alignment"])
    n_claims = sum(c.count("At 00:") for c in completions)
    cached = composition(embedder)  # the default: distinct sentences encoded once (LRU), as claims repeat in GRPO
    cached(completions, **columns)
    memo = composition(Memo(embedder))
    memo(completions, **columns)

    checked = composition(Memo(embedder), rule="checked")
    checked(completions, **columns)

    def checked_cold():
        _attributes.cache_clear()
        checked(completions, **columns)

    t_full = median_ms(lambda: full(completions, **columns), args.repeats)
    t_cached = median_ms(lambda: cached(completions, **columns), args.repeats)
    t_rest = median_ms(lambda: memo(completions, **columns), args.repeats)
    print(f"group of {len(completions)} completions, {n_claims} predicted claims, torch threads={args.threads}")
    print(
        f"full reward set (format + accuracy + gated TAR), all claims new: {t_full:.1f} ms per group (target < 50 ms)"
    )
    print(f"  sentence embedder (MiniLM forward on {n_claims} claims): {t_full - t_rest:.1f} ms")
    print(f"  everything else (parsing, gate, matching, accuracy, composition): {t_rest:.1f} ms")
    print(f"full reward set, claims seen before (embedder's sentence cache hit): {t_cached:.1f} ms per group")
    t_rest_ref = median_ms(lambda: memo(completions, **columns), args.repeats)  # side by side with the checked rule
    t_rest_checked = median_ms(checked_cold, args.repeats)
    print(
        f"everything else under rule='checked' (closed attributes of every claim read anew): {t_rest_checked:.1f} ms"
        f" vs {t_rest_ref:.1f} ms under the reference rule ({t_rest_checked / t_rest_ref:.2f}x)"
    )


if __name__ == "__main__":
    main()

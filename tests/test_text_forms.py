"""Text forms the reference reads (issue: scientific notation, ``to`` ranges, single-digit clock fields).

Each case is checked in the one parser (:mod:`lit_videor2.text`) and through the reward and the metric that use
it, so a reward and its metric can never read the same text differently.
"""

import pytest
import torch

from lit_videor2.metrics import answer_matches
from lit_videor2.rewards import accuracy_score, temporal_alignment_score
from lit_videor2.rewards.embedding import Embedder
from lit_videor2.text import find_timestamps, parse_interval, parse_number, parse_time, sanitize_claims


class _SameEmbedder(Embedder):
    """Every sentence embeds to the same vector (similarity 1), so TAR checks the time matching alone."""

    def encode(self, sentences):
        return torch.ones(len(sentences), 4)


NUMBERS = [
    ("1e3", 1000.0),  # reference: float("1e3")
    ("1E3", 1000.0),  # upper-case exponent
    ("2.5e-1", 0.25),  # negative exponent, decimal mantissa
    ("-3e2", -300.0),  # signed mantissa
    ("1,000", 1000.0),  # thousands separator (the reference drops commas)
    ("about 1e3 apples", 1000.0),  # embedded in text: the last number, exponent included
    ("1e400", None),  # overflows to inf: not a finite number
]


@pytest.mark.parametrize("text, value", NUMBERS)
def test_parse_number_forms(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize(
    "pred, truth, score",
    [
        ("<answer>1e3</answer>", "1000", 1.0),  # scientific notation equals the plain integer
        ("<answer>1000</answer>", "1e3", 1.0),  # either side
        ("<answer>2e3</answer>", "1000", 0.0),  # a different value
    ],
)
def test_numerical_reward_and_metric_read_scientific_notation(pred, truth, score):
    assert accuracy_score(pred, truth, "numerical") == score
    assert bool(answer_matches(pred, truth, "numerical")) == bool(score)


KEYS = [
    ("00:40to00:45", (40, 45)),  # "to" without spaces (reference: re "\s*(?:-|–|—|to)\s*", IGNORECASE)
    ("00:40TO00:45", (40, 45)),  # upper case
    ("00:40 To 00:45", (40, 45)),  # mixed case with spaces
    ("0:05", (5, 5)),  # single-digit minutes
    ("1:5", (65, 65)),  # single-digit seconds field: int("5") = 5, so 1 min 5 s
    ("1:5-1:9", (65, 69)),  # single-digit fields in a range
    ("0:0:7", (7, 7)),  # single-digit hours, minutes, seconds
    ("1:02:03.5", (3724, 3724)),  # decimal seconds, rounded half-to-even (3723.5 -> 3724)
    ("1e3", (1000, 1000)),  # plain seconds in scientific notation (reference: round(float(t)))
    ("1e1to2e1", (10, 20)),  # both ends in scientific notation, joined by "to"
    ("00:12toend", None),  # open-ended: dropped, as the reference drops it
]


@pytest.mark.parametrize("key, interval", KEYS)
def test_claim_keys_parse_as_the_reference(key, interval):
    assert parse_interval(key) == interval


@pytest.mark.parametrize(
    "token, seconds",
    [
        ("1:5", 65.0),  # single-digit seconds
        ("0:05", 5.0),  # single-digit minutes
        ("1e3", 1000.0),  # scientific notation
        ("1e999", None),  # not finite
    ],
)
def test_parse_time_forms(token, seconds):
    assert parse_time(token) == seconds


@pytest.mark.parametrize(
    "text, spans",
    [
        ("from 00:40to00:45 a dog runs", [(40.0, 45.0)]),  # "to" without spaces in free text
        ("from 00:40TO00:45 a dog runs", [(40.0, 45.0)]),  # upper case
        ("at 0:05 a cat", [(5.0, 5.0)]),  # single-digit minutes in free text
        ("at 00:12 tomorrow", [(12.0, 12.0)]),  # a word starting with "to" is not a range
    ],
)
def test_find_timestamps_forms(text, spans):
    assert [(m.start, m.end) for m in find_timestamps(text)] == spans


def test_tar_reads_the_same_forms_in_reference_and_predicted_keys():
    ref = {"00:40to00:45": "a dog runs", "1:5": "a cat sits"}  # ground truth as a user might write it
    assert sanitize_claims(ref) == {"00:40-00:45": "a dog runs", "01:05": "a cat sits"}
    pred = {"00:41": "a dog runs", "01:05": "a cat sits"}
    assert temporal_alignment_score(pred, ref, embedder=_SameEmbedder()) == 1.0
    far = {"00:10": "a dog runs"}  # outside every window (2 s padding each side)
    assert temporal_alignment_score(far, ref, embedder=_SameEmbedder()) == 0.0

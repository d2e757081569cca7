"""Table-driven reward tests (a comment per case) and the composition, with a fast bag-of-words embedder."""

import math
import re
import warnings

import pytest
import torch

from lit_videor2.rewards import (
    AccuracyReward,
    ConsistencyGate,
    Embedder,
    FormatReward,
    RewardComposition,
    TemporalAlignmentReward,
    accuracy_score,
    component_stats,
    format_score,
    match_claims,
    temporal_alignment_score,
)
from lit_videor2.rewards.accuracy import infer_problem_type


class BagOfWords(Embedder):
    """Deterministic embedder: normalised word counts, so cosine = word overlap. Counts its calls.

    Each word gets its own dimension, in the order first seen by this instance (no hashing: Python's string hash
    changes per process, and two words sharing a bucket made overlaps flaky)."""

    def __init__(self):
        self.calls, self.sentences = 0, 0
        self.vocab: dict[str, int] = {}

    def encode(self, sentences):
        self.calls += 1
        self.sentences += len(sentences)
        out = torch.zeros(len(sentences), 4096)
        for row, s in enumerate(sentences):
            for w in re.findall(r"\w+", s.lower()):
                out[row, self.vocab.setdefault(w, len(self.vocab))] += 1.0
        return torch.nn.functional.normalize(out, dim=-1)


def W(think: str, answer: str) -> str:
    return f"<think>{think}</think>\n<answer>{answer}</answer>"


# ----------------------------------------------------------------------------------------------- format


@pytest.mark.parametrize(
    "completion, strict, lenient",
    [
        ("<think>x</think><answer>B</answer>", 1.0, 1.0),  # minimal well-formed
        ("<think>x\ny</think>\n\n<answer>B</answer>", 1.0, 1.0),  # newlines inside and between blocks
        ("<think>x</think><answer>B</answer>\n", 0.0, 1.0),  # trailing newline fails strict (reference)
        ("Sure! <think>x</think><answer>B</answer>", 0.0, 0.0),  # text before
        ("<think>x</think>", 0.0, 0.0),  # no answer
        ("<answer>B</answer><think>x</think>", 0.0, 0.0),  # wrong order
        ("<THINK>x</THINK><ANSWER>B</ANSWER>", 0.0, 1.0),  # tag case: lenient only
    ],
)
def test_format(completion, strict, lenient):
    assert format_score(completion) == strict
    assert format_score(completion, strict=False) == lenient
    assert FormatReward(strict=False)([completion]) == [lenient]


# --------------------------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize(
    "pred, truth, ptype, expected",
    [
        ("B", "B", "multiple choice", 1.0),  # same letter
        ("(B)", "B", "multiple choice", 1.0),  # parenthesised prediction
        ("B.", "B", "multiple choice", 1.0),  # trailing dot
        ("b", "B", "multiple choice", 1.0),  # lower case
        ("B. blue car", "B", "multiple choice", 1.0),  # letter with option text
        ("The answer is B", "(B)", None, 1.0),  # sentence; "(B)" inferred as multiple choice (reference: free-form)
        ("C", "B", "multiple choice", 0.0),  # wrong letter
        ("B", "<answer>B</answer>", "multiple choice", 1.0),  # tagged ground truth accepted
        ("3", "3", "numerical", 1.0),  # equal integers
        ("3.0", "3", "numerical", 0.0),  # decimal-point rule kept: one side has a point
        ("3.004", "3.001", "numerical", 1.0),  # equal after rounding to 2 decimals
        ("1,000", "1000", "numerical", 1.0),  # thousands separator is not a decimal point
        ("3.0", "3", "regression", 1.0),  # regression: numeric closeness, 3 vs 3.0 exact
        ("9", "10", "regression", 0.9),  # 1 - 0.1
        ("30", "10", "regression", 0.0),  # clipped at 0
        ("0", "0", "regression", 1.0),  # exact 0 scores 1 (reference gives 0)
        ("0.5", "0", "regression", 0.0),  # truth 0, wrong
        ("hello world", "hello world", "OCR", 1.0),  # WER 0
        ("Hello world", "hello world", "OCR", 0.5),  # WER case-sensitive (reference)
        ("", "hello world", "OCR", 0.0),  # nothing read
        ("apple", "apple", None, 1.0),  # "apple" is not multiple choice (reference: first char a-e)
        ("A long answer about a man", "A long answer about a man", None, 1.0),  # free-form beginning with "A"
        ("A cat", "A long answer about a man", None, pytest.approx(1 / 6)),  # not letter A: R1 = RL = 0.25, R2 = 0
        ("apple", "apple", "free-form", pytest.approx(2 / 3)),  # one word: no bigram, tops out at 2/3 (reference)
        ("the red apples", "the red apple", "free-form", 1.0),  # stemming
    ],
)
def test_accuracy(pred, truth, ptype, expected):
    assert accuracy_score(W("x", pred), truth, ptype) == expected


def test_accuracy_without_answer_block_and_option_text():
    assert accuracy_score("<think>B</think>", "B", "multiple choice") == 0.0  # no <answer>: empty prediction
    # the prediction repeats an option's text: it counts as that option's letter
    assert accuracy_score(W("x", "blue car"), "B", "multiple choice", options=["A. red car", "B. blue car"]) == 1.0


@pytest.mark.parametrize(
    "truth, ptype",
    [
        ("B", "multiple choice"),
        ("(B)", "multiple choice"),
        ("apple", "OCR"),
        ("3", "numerical"),
        ("3.14159", "regression"),
        ("A long answer about a man", "free-form"),
    ],
)
def test_infer_problem_type(truth, ptype):
    assert infer_problem_type(truth) == ptype


def test_accuracy_reward_columns():
    reward = AccuracyReward()
    out = reward(
        [W("x", "B"), W("x", "3"), W("x", "y")],
        answer=["B", "3.0", None],
        problem_type=["multiple choice", "numerical", None],
        unknown=[1, 2, 3],
    )
    assert out == [1.0, 0.0, None]  # the None answer does not apply; unknown columns are accepted
    with pytest.raises(ValueError, match="problem_type"):
        accuracy_score(W("x", "B"), "B", "essay")


# ------------------------------------------------------------------------------------------ TAR matching

REF = {"00:10": "man lifts red box", "00:20": "dog runs outside", "00:30-00:35": "slide shows total count"}


@pytest.mark.parametrize(
    "pred, ref, pairs",
    [
        ({"00:14": "man lifts red box"}, {"00:10": "man lifts red box"}, [("00:14", "00:10")]),  # 4 s apart: match
        ({"00:15": "man lifts red box"}, {"00:10": "man lifts red box"}, []),  # 5 s apart: no match
        ({"00:38": "slide shows total count"}, REF, [("00:38", "00:30-00:35")]),  # point 3 s after a range end
        ({"00:10": "car drives away fast"}, REF, []),  # right time, dissimilar text
        ({"00:20": "man lifts red box"}, REF, []),  # similar text, wrong time
        (  # one reference claim is matched at most once: the second prediction finds it used
            {"00:10": "man lifts red box", "00:11": "man lifts red box now"},
            {"00:10": "man lifts red box"},
            [("00:10", "00:10")],
        ),
        (  # the most similar candidate wins
            {"00:10": "dog runs outside"},
            {"00:09": "man lifts red box", "00:11": "dog runs outside"},
            [("00:10", "00:11")],
        ),
        ({"00:35-00:30": "slide shows total count"}, REF, [("00:35-00:30", "00:30-00:35")]),  # reversed: swapped
        ({"00:30-end": "slide shows total count"}, REF, []),  # open-ended prediction dropped
        ({"inf": "man lifts red box", "00:10": "man lifts red box"}, REF, [("00:10", "00:10")]),  # bad key dropped
        ({}, REF, []),  # empty prediction
        ({"00:10": "man lifts red box"}, {}, []),  # empty reference
    ],
)
def test_match_claims(pred, ref, pairs):
    assert match_claims(pred, ref, embedder=BagOfWords()) == pairs


@pytest.mark.parametrize(
    "pred, score, expected",
    [
        ({"00:10": "man lifts red box", "00:50": "nothing"}, "precision", 0.5),  # 1 of 2 predicted
        ({"00:10": "man lifts red box", "00:50": "nothing"}, "recall", 1 / 3),  # 1 of 3 reference
        ({"00:10": "man lifts red box", "00:50": "nothing"}, "f1", 0.4),  # 2PR/(P+R)
        ({"00:10": "man lifts red box", "00:50-end": "open", "x": "bad"}, "precision", 1.0),  # dropped: not counted
        ({}, "precision", 0.0),  # empty side -> 0
    ],
)
def test_temporal_alignment_score(pred, score, expected):
    assert temporal_alignment_score(pred, REF, embedder=BagOfWords(), score=score) == pytest.approx(expected)
    assert temporal_alignment_score(REF, {}, embedder=BagOfWords()) == 0.0  # empty reference -> 0


def test_threshold_is_inclusive():
    # cosine of "a b c" and "a b d" with bag-of-words = 2/3
    assert match_claims({"1": "a b c"}, {"1": "a b d"}, threshold=2 / 3 - 1e-6, embedder=BagOfWords())
    assert not match_claims({"1": "a b c"}, {"1": "a b d"}, threshold=0.7, embedder=BagOfWords())


# ------------------------------------------------------------------------------------------- TAR reward


def _tar(**kw):
    return TemporalAlignmentReward(embedder=BagOfWords(), **kw)


def test_tar_reward_gated_and_cached():
    consistent = W("At 00:10 man lifts red box. At 00:20 dog runs outside. So the answer is B.", "B")
    inconsistent = W("At 00:10 man lifts red box. So the answer is A.", "B")
    no_times = W("So the answer is B.", "B")
    reward = _tar()
    cols = dict(id=["r1"] * 3, temporal_grounding=[REF] * 3, options=[["A. x", "B. y"]] * 3, question=["q"] * 3)
    out = reward([consistent, inconsistent, no_times], **cols)
    assert out == [1.0, 0.0, 0.0]  # both claims match; the gate zeroes the inconsistent one; no claims -> 0
    assert _tar(gated=False)([inconsistent], **{k: v[:1] for k, v in cols.items()}) == [1.0]  # ungated ablation
    calls = reward.embedder.calls
    reward([consistent], **{k: v[:1] for k, v in cols.items()})
    assert reward.embedder.calls == calls + 1  # reference embeddings cached per record: only predictions encoded
    assert reward([consistent], id=["r1"], temporal_grounding=[None]) == [None]  # no grounding: does not apply
    assert reward([consistent], id=["r1"]) == [None]  # no column at all


def test_tar_reward_custom_extractor_and_errors():
    reward = _tar(extractor="lit_videor2.text.sanitize_claims", gated=False)  # dotted path to a callable
    # the reasoning itself is not a mapping, so a broken extractor must raise, not silently score
    with pytest.raises(AttributeError):
        reward([W("x", "B")], id=["r"], temporal_grounding=[REF])
    with pytest.raises(ValueError, match="score"):
        _tar(score="accuracy")


def test_gate_rule_based():
    gate = ConsistencyGate()
    completions = [
        W("The box is blue, so the answer is B.", "B"),  # concluded letter equals answer
        W("So the answer is C.", "B"),  # mismatch
        W("We count 2 and 3, so the total is 5.", "5"),  # numbers agree
        W("There are 4.", "5"),  # last number 4 differs
        W("The sign reads open door.", "open door"),  # free text appears in the reasoning
        "<answer>B</answer>",  # no think
    ]
    types = ["multiple choice", "multiple choice", "numerical", "numerical", "OCR", "multiple choice"]
    assert gate(completions, problem_type=types, options=[None] * 6) == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]


# ------------------------------------------------------------------------------------------ composition


def always_half(completions, **columns):
    return [0.5] * len(completions)


def none_then_nan(completions, **columns):
    return [None, math.nan][: len(completions)]


def explode_on_b(completions, id, **columns):
    if any("boom" in c for c in completions):
        raise ValueError("bad completion")
    return [1.0] * len(completions)


def test_composition_weights_none_and_nan():
    comp = RewardComposition(
        {"format": FormatReward(), "half": f"{__name__}.always_half", "odd": none_then_nan},
        weights={"half": 2.0},
    )
    out = comp([W("x", "B"), "junk"], id=["a", "b"])
    assert out.components["format"] == [1.0, 0.0] and out.components["half"] == [0.5, 0.5]
    assert out.components["odd"][0] is None and math.isnan(out.components["odd"][1])
    assert out.total == [2.0, 1.0]  # 1*format + 2*half; None and NaN left out
    logs = component_stats(out.components, "r/")
    assert logs == {
        "r/format_mean": 0.5,
        "r/format_std": pytest.approx(math.sqrt(0.5)),
        "r/half_mean": 0.5,
        "r/half_std": 0.0,
    }
    # One usable value: std 0; None/NaN never reach the statistics.
    assert component_stats({"x": [None, 2.0, math.nan]}) == {"train/rewards/x_mean": 2.0, "train/rewards/x_std": 0.0}


def test_composition_error_names_reward_and_sample():
    comp = RewardComposition({"fmt": FormatReward(), "explode": explode_on_b})
    with pytest.raises(RuntimeError, match=r"reward 'explode' raised on sample id 'id-2'.*bad completion"):
        comp(["ok", "boom"], id=["id-1", "id-2"])
    lenient = RewardComposition({"fmt": FormatReward(), "explode": explode_on_b}, on_error="zero")
    with pytest.warns(RuntimeWarning, match=r"failure 1 of this reward"):
        out = lenient(["ok", "boom"], id=["id-1", "id-2"])
    assert out.components["explode"] == [0.0, 0.0] and lenient.error_counts == {"fmt": 0, "explode": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lenient(["boom"], id=["x"])
    assert lenient.error_counts["explode"] == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(rewards={}), "at least one"),  # empty
        (dict(rewards={"f": FormatReward()}, weights={"g": 1.0}), "unknown rewards"),  # weight for a missing reward
        (dict(rewards={"f": "no_such_module.fn"}), "cannot import"),  # bad dotted path
        (dict(rewards={"f": FormatReward()}, on_error="skip"), "on_error"),  # bad policy
    ],
)
def test_composition_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RewardComposition(**kwargs)


def test_composition_from_yaml(tmp_path, monkeypatch):
    """A YAML that drops TAR, changes a weight and adds a user reward by dotted path builds that composition."""
    from jsonargparse import ArgumentParser

    (tmp_path / "my_rewards.py").write_text(
        "def brevity(completions, **columns):\n    return [1.0 if len(c) < 40 else 0.0 for c in completions]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    base = tmp_path / "base.yaml"
    base.write_text(
        """
rewards:
  rewards:
    format: {class_path: lit_videor2.rewards.FormatReward}
    accuracy: {class_path: lit_videor2.rewards.AccuracyReward}
    temporal_alignment:
      class_path: lit_videor2.rewards.TemporalAlignmentReward
      init_args: {pad_s: 2.0, threshold: 0.75, gate: {class_path: lit_videor2.rewards.ConsistencyGate}}
"""
    )
    override = tmp_path / "override.yaml"
    override.write_text(
        """
rewards:
  rewards:
    format: {class_path: lit_videor2.rewards.FormatReward, init_args: {strict: false}}
    accuracy: {class_path: lit_videor2.rewards.AccuracyReward}
    brevity: my_rewards.brevity
  weights: {accuracy: 2.0}
  on_error: zero
"""
    )
    parser = ArgumentParser()
    parser.add_argument("--config", action="config")
    parser.add_argument("--rewards", type=RewardComposition)
    full = parser.instantiate(parser.parse_args(["--config", str(base)])).rewards
    assert full.names == ["format", "accuracy", "temporal_alignment"]
    assert isinstance(full.rewards["temporal_alignment"], TemporalAlignmentReward)
    comp = parser.instantiate(parser.parse_args(["--config", str(override)])).rewards
    assert comp.names == ["format", "accuracy", "brevity"]  # TAR dropped, user reward added
    assert comp.weights == {"format": 1.0, "accuracy": 2.0, "brevity": 1.0}
    assert comp.on_error == "zero" and comp.rewards["format"].strict is False
    out = comp([W("x", "B") + "\n"], answer=["B"], problem_type=["multiple choice"], id=["r"])
    assert out.components == {"format": [1.0], "accuracy": [1.0], "brevity": [1.0]} and out.total == [4.0]


def test_tar_reward_claims_far_from_every_reference_time_score_zero():
    # Claims exist on both sides but none is within the padded window of a reference claim: nothing is
    # embedded and the sample scores 0 (this batch used to crash indexing an empty embedding matrix).
    far = W("At 01:30 man lifts red box. At 02:00 dog runs outside. So the answer is B.", "B")
    cols = dict(id=["r1"], temporal_grounding=[REF], options=[["A. x", "B. y"]], question=["q"])
    assert _tar()([far], **cols) == [0.0]
    near_and_far = W("At 00:10 man lifts red box. So the answer is B.", "B")
    assert _tar()([far, near_and_far], **{k: v * 2 for k, v in cols.items()}) == [0.0, 1.0]


# ------------------------------------------------------------------------------------ checked TAR (option)


class Fixed(Embedder):
    """Every pair of sentences is cosine 0.9: only time and the closed attributes can refuse a match."""

    def encode(self, sentences):
        out = torch.zeros(len(sentences), 2)
        out[:, 0], out[:, 1] = 0.9**0.5, 0.1**0.5
        return out


def test_checked_rule_refuses_contradictions_and_reads_the_clip_length():
    ref = {"00:02": "A red circle appears."}
    wrong_colour, wrong_second, right = (
        {"00:02": "a blue circle appears"},
        {"00:01": "a red circle appears"},
        {"00:02": "a red circle shows up"},
    )
    kw = dict(embedder=Fixed(), duration=4.0)
    for pred in (wrong_colour, wrong_second, right):  # the reference rule pays all three (±2 s, cosine 0.9)
        assert temporal_alignment_score(pred, ref, **kw) == 1.0
    assert temporal_alignment_score(wrong_colour, ref, rule="checked", **kw) == 0.0
    assert temporal_alignment_score(wrong_second, ref, rule="checked", **kw) == 0.0  # a 4-second clip: the second
    assert temporal_alignment_score(right, ref, rule="checked", **kw) == 1.0  # a paraphrase still matches
    # minutes-long: the checked window is the reference's ±2 s
    assert temporal_alignment_score(wrong_second, ref, rule="checked", embedder=Fixed(), duration=300.0) == 1.0
    assert temporal_alignment_score(wrong_second, ref, rule="checked", embedder=Fixed()) == 1.0  # no duration
    assert match_claims(right, ref, rule="checked", **kw) == [("00:02", "00:02")]
    with pytest.raises(ValueError, match="rule"):
        temporal_alignment_score(right, ref, rule="strict", **kw)


def test_checked_reward_option_uses_duration_and_frame_times():
    ref = {"00:02": "A red circle appears."}
    completions = [
        W(f"At 00:0{t} a {c} circle appears. So the answer is B.", "B")
        for t, c in [(2, "red"), (1, "red"), (2, "blue")]
    ]
    cols = dict(id=["r"] * 3, temporal_grounding=[ref] * 3, options=[["A. x", "B. y"]] * 3, question=["q"] * 3)
    reference = TemporalAlignmentReward(embedder=Fixed())
    checked = TemporalAlignmentReward(embedder=Fixed(), rule="checked")
    assert reference(completions, duration=[4.0] * 3, **cols) == [1.0, 1.0, 1.0]
    assert checked(completions, duration=[4.0] * 3, **cols) == [1.0, 0.0, 0.0]
    frames = [[0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]] * 3
    assert checked(completions, frame_times=frames, **cols) == [1.0, 0.0, 0.0]
    assert checked(completions, duration=[240.0] * 3, **cols) == [1.0, 1.0, 0.0]  # ±2 s: only the colour refuses
    with pytest.raises(ValueError, match="rule"):
        TemporalAlignmentReward(embedder=Fixed(), rule="strict")
    with pytest.raises(ValueError, match="pad_per_s"):
        TemporalAlignmentReward(embedder=Fixed(), rule="checked", pad_per_s=-1.0)


def test_checked_reward_complete_refuses_a_claim_that_leaves_out_an_attribute_of_its_truth():
    ref = {"00:02": "A red circle appears."}
    completions = [
        W(f"At 00:02 a {what} appears. So the answer is B.", "B")
        for what in ("red circle", "red shape", "circle", "blue circle", "red round shape")
    ]
    cols = dict(id=["r"] * 5, temporal_grounding=[ref] * 5, options=[["A. x", "B. y"]] * 5, question=["q"] * 5)
    checked = TemporalAlignmentReward(embedder=Fixed(), rule="checked")
    complete = TemporalAlignmentReward(embedder=Fixed(), rule="checked", complete=True)
    # vague claims ("shape" for "circle") are true, nothing contradicted: the checked rule pays them, complete does not
    assert checked(completions, duration=[4.0] * 5, **cols) == [1.0, 1.0, 1.0, 0.0, 1.0]
    assert complete(completions, duration=[4.0] * 5, **cols) == [1.0, 0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="complete"):
        TemporalAlignmentReward(embedder=Fixed(), complete=True)  # the reference rule has no such option


def test_checked_reward_asks_a_verifier_only_where_the_vocabulary_cannot_decide():
    from lit_videor2.judges.llm import LLMJudge

    class ScriptedJudge(LLMJudge):
        """An LLM judge whose 'model' says FALSE when the ground truth mentions a hammer."""

        def __init__(self):
            super().__init__()
            self.asked = []

        def complete(self, requests):
            out = []
            for r in requests:
                user = r.messages[-1]["content"]
                self.asked.append(user)
                out.append("FALSE\nno" if "hammer" in user.split("CLAIM:")[0] else "TRUE\nyes")
            return out

    judge = ScriptedJudge()
    reward = TemporalAlignmentReward(embedder=Fixed(), rule="checked", verifier=judge, gated=False)
    ref = [{"00:10": "He grabs a hammer."}, {"00:10": "He grabs a wrench."}, {"00:10": "A red car appears."}]
    completions = [W("At 00:10 he grabs the tool.", "B")] * 2 + [W("At 00:10 a red car shows up.", "B")]
    assert reward(completions, id=["a", "b", "c"], temporal_grounding=ref, duration=[60.0] * 3) == [0.0, 1.0, 1.0]
    assert len(judge.asked) == 2  # the car pair agrees on colour and object: decided without the judge
    reward(completions, id=["a", "b", "c"], temporal_grounding=ref, duration=[60.0] * 3)
    assert len(judge.asked) == 2  # verdicts cached per pair
    with pytest.raises(ValueError, match="verifier"):
        TemporalAlignmentReward(embedder=Fixed(), verifier=judge)  # the reference rule takes no verifier
    with pytest.raises(ValueError, match="verifier"):
        TemporalAlignmentReward(embedder=Fixed(), rule="checked", verifier=object())

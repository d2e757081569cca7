"""The checked-claims core (lit_videor2.claims): attributes, contradictions, the time window, verdicts."""

from __future__ import annotations

import pytest

from lit_videor2.claims import (
    ATTRIBUTES,
    claim_attributes,
    claim_summary,
    claim_verdicts,
    contradictions,
    time_tolerance,
    video_duration,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A red circle appears.", {"colour": {"red"}, "object": {"circle"}, "appearance": {"appear"}}),
        ("The blue square moves left.", {"colour": {"blue"}, "object": {"square"}, "direction": {"left"}}),
        ("Two men walk to the right", {"count": {"2"}, "object": {"man"}, "direction": {"right"}}),
        ("3 people enter the room", {"count": {"3"}, "object": {"person"}, "appearance": {"appear"}}),
        ("The car does not stop", {"object": {"car"}, "motion": {"stop"}, "negation": {"negated"}}),
        ("A woman picks up a cup", {"object": {"woman", "cup"}}),  # "picks up" is no direction
        ("The man left the room", {"object": {"man"}, "appearance": {"disappear"}}),  # "left": the verb
        ("one of them sits down", {}),  # neither a count nor a direction
        (
            "The dog starts running anticlockwise",
            {"object": {"dog"}, "motion": {"start"}, "direction": {"counterclockwise"}},
        ),
        ("until 00:12 a grey cat", {"colour": {"grey"}, "object": {"cat"}}),  # a timestamp is no count
    ],
)
def test_claim_attributes(text, expected):
    got = claim_attributes(text)
    assert {k: set(v) for k, v in got.items()} == expected
    assert list(got) == [a for a in ATTRIBUTES if a in got]  # reported in ATTRIBUTES order


@pytest.mark.parametrize(
    ("pred", "ref", "attrs"),
    [
        ("a green triangle appears", "A blue triangle appears.", ["colour"]),
        ("a green circle appears", "A green triangle appears.", ["object"]),
        ("a person enters", "A man appears.", []),  # more general object, synonym verb
        ("a man enters", "A woman appears.", ["object"]),
        ("two dogs run", "Three dogs run.", ["count"]),
        ("the square moves up", "The square moves down.", ["direction"]),
        ("a red circle disappears", "A red circle appears.", ["appearance"]),
        ("the car stops", "The car starts moving.", ["motion"]),
        ("the man does not open the door", "The man opens the door.", ["negation"]),
        ("a red circle", "A red circle and a blue square appear.", []),  # stating less is no contradiction
    ],
)
def test_contradictions(pred, ref, attrs):
    assert contradictions(claim_attributes(pred), claim_attributes(ref)) == attrs


def test_time_tolerance_formula():
    assert time_tolerance(4.0) == pytest.approx(4 / 60)  # a 4-second clip: the right second only
    assert time_tolerance(60.0) == pytest.approx(1.0)
    assert time_tolerance(180.0) == 2.0  # minutes-long: the reference's ±2 s
    assert time_tolerance() == 2.0  # unknown duration: the reference's fixed window
    assert video_duration(None, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]) == pytest.approx(4.0)
    assert video_duration(float("nan"), None) is None
    assert time_tolerance(600, pad_per_s=0.01, max_pad_s=5) == 5
    with pytest.raises(ValueError, match="pad_per_s"):
        time_tolerance(4.0, pad_per_s=-1)


def test_verdicts_on_a_four_second_clip():
    completion = (
        "<think>At 00:02 a red circle appears. At 00:01 a red circle appears. At 00:03 a blue circle appears. "
        "At 00:02 a circle appears.</think><answer>A</answer>"
    )
    # the last duplicate key wins (as TAR reads claims): 00:02 is "a circle appears"
    truth = {"00:02": "A red circle appears.", "00:03": "A red circle appears."}
    got = {v.key: v for v in claim_verdicts(completion, truth, duration=4.0)}
    assert got["00:01"].verdict == "unverifiable" and got["00:01"].truth["key"] == "00:02"  # wrong second
    assert got["00:03"].verdict == "contradicted" and got["00:03"].contradicted == ("colour",)
    assert got["00:02"].verdict == "true" and not got["00:02"].complete  # true, but the colour is not stated
    s = claim_summary(list(got.values()))
    assert (s["n"], s["true"], s["complete"], s["contradicted"], s["unverifiable"]) == (3, 1, 0, 1, 1)
    assert s["stated"]["colour"] == 2 and s["stated"]["object"] == 3
    # the same claims on a 3-minute video: ±2 s, so 00:01 is near 00:02 and true
    wide = {v.key: v for v in claim_verdicts(completion, truth, duration=180.0)}
    assert wide["00:01"].verdict == "true" and wide["00:01"].complete


def test_verdict_without_ground_truth_or_vocabulary():
    assert claim_verdicts("<think>At 00:01 a red circle appears.</think>", None)[0].verdict == "unverifiable"
    v = claim_verdicts({"00:05": "something happens here"}, {"00:05": "A man opens the door."}, duration=60)[0]
    assert v.verdict == "unverifiable" and v.truth == {
        "key": "00:05",
        "start": 5,
        "end": 5,
        "text": "A man opens the door.",
    }
    assert claim_verdicts("<think>no timestamps at all</think>", {"00:01": "A red circle appears."}) == []


def test_phrasal_up_and_down_are_no_direction():
    assert "direction" not in claim_attributes("the truck backs up")
    assert "direction" not in claim_attributes("a woman sits down and picks up the phone")
    assert claim_attributes("the truck is reversing")["direction"] == {"backward"}
    assert claim_attributes("the man walks up the stairs")["direction"] == {"up"}

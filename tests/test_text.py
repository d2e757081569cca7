"""Table tests of the shared text parsing."""

import pytest

from lit_videor2.text import (
    claims_from_mapping,
    concluded_option,
    extract_answer,
    extract_think,
    extract_timestamp_claims,
    find_timestamps,
    parse_interval,
    parse_number,
    parse_option_letter,
    sanitize_claims,
    strip_answer_tags,
)


@pytest.mark.parametrize(
    "text, think, answer",
    [
        ("<think>a</think><answer>B</answer>", "a", "B"),  # plain
        ("<THINK> a </Think>\n<Answer>B</ANSWER>", "a", "B"),  # tags case-insensitive, content stripped
        ("<think>1</think><think>2</think><answer>x</answer><answer>y</answer>", "2", "y"),  # last block wins
        ("no tags", None, None),  # missing blocks
    ],
)
def test_blocks(text, think, answer):
    assert extract_think(text) == think
    assert extract_answer(text) == answer


@pytest.mark.parametrize(
    "truth, bare",
    [("<answer> B </answer>", "B"), ("B", "B"), (None, ""), ("  3.5 ", "3.5")],  # tagged, bare (used as is), None
)
def test_strip_answer_tags(truth, bare):
    assert strip_answer_tags(truth) == bare


@pytest.mark.parametrize(
    "text, letter",
    [
        ("B", "B"),  # bare
        ("b", "B"),  # lower case
        ("B.", "B"),  # trailing dot
        ("(B)", "B"),  # parenthesised
        ("B) a blue car", "B"),  # letter, bracket, text
        ("B. a blue car", "B"),  # letter, dot, text
        ("Answer: B", "B"),  # prefix
        ("The answer is B", "B"),  # sentence
        ("The answer is b.", "B"),  # lower-case letter closing a sentence
        ("A long answer about a man", None),  # a capital starting free text is not a letter
        ("a red car", None),  # nor is an article
        ("apple", None),  # a word is not a letter
        ("Therefore, A man walks", None),  # connector + article
        ("<answer>(C)</answer>", "C"),  # tagged
    ],
)
def test_parse_option_letter(text, letter):
    assert parse_option_letter(text) == letter


def test_parse_option_letter_respects_valid_letters():
    assert parse_option_letter("E", valid="ABCD") is None  # E is not an option here
    assert parse_option_letter("d", valid="ABCD") == "D"


@pytest.mark.parametrize(
    "reasoning, letter",
    [
        ("A seems wrong. So the answer is C.", "C"),  # explicit conclusion
        ("So the answer is C. Wait, actually B is correct.", "B"),  # the last conclusion wins
        ("The car in the video is green.", "C"),  # no letter: the option text quoted last
        ("I have no idea.", None),  # nothing to conclude
    ],
)
def test_concluded_option(reasoning, letter):
    assert concluded_option(reasoning, ["A. red", "B. blue", "C. green"]) == letter


@pytest.mark.parametrize(
    "text, value",
    [("3", 3.0), ("3.0", 3.0), ("1,000.5", 1000.5), ("about 3 apples", 3.0), ("none", None), ("-2", -2.0)],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize(
    "key, interval",
    [
        ("00:12", (12, 12)),  # MM:SS
        ("1:02:03", (3723, 3723)),  # HH:MM:SS
        ("[00:12]", (12, 12)),  # bracketed
        ("00:12-00:15", (12, 15)),  # hyphen range
        ("00:12 – 00:15", (12, 15)),  # en dash with spaces
        ("00:12—00:15", (12, 15)),  # em dash
        ("00:12 to 00:15", (12, 15)),  # "to"
        ("00:15-00:12", (12, 15)),  # reversed range is swapped
        ("00:12-end", None),  # open-ended range dropped
        ("00:12-EOF", None),  # open-ended range dropped
        ("12", (12, 12)),  # plain seconds
        ("12.5", (12, 12)),  # decimal seconds, half-to-even
        ("13.5", (14, 14)),  # half-to-even rounds up from odd
        ("12s", (12, 12)),  # unit
        ("12.6 seconds", (13, 13)),  # long unit
        ("1 min 5 s", (65, 65)),  # spoken
        ("inf", None),  # non-finite: dropped (the reference crashes)
        ("nan", None),  # non-finite
        ("abc", None),  # unparseable
        ("", None),  # empty
        (None, None),  # not a string
    ],
)
def test_parse_interval(key, interval):
    assert parse_interval(key) == interval


@pytest.mark.parametrize(
    "text, spans",
    [
        ("At 00:12 the man", [(12.0, 12.0)]),  # MM:SS
        ("at 1:02:03 it ends", [(3723.0, 3723.0)]),  # HH:MM:SS
        ("[00:12] a dog", [(12.0, 12.0)]),  # brackets
        ("from 01:45 to 01:52 a slide", [(105.0, 112.0)]),  # "to" range
        ("01:45–01:52", [(105.0, 112.0)]),  # en dash
        ("between 01:45 and 01:52", [(105.0, 112.0)]),  # between … and …
        ("around 12.5 seconds in", [(12.5, 12.5)]),  # decimal seconds
        ("after 12s", [(12.0, 12.0)]),  # compact unit
        ("at 1 min 5 s the car", [(65.0, 65.0)]),  # minutes and seconds
        ("12-15 seconds: a bird", [(12.0, 15.0)]),  # range with one unit
        ("from 2:00 to the end", [(120.0, None)]),  # open-ended
        ("a 3:1 ratio and 5 apples", []),  # neither is a time
    ],
)
def test_find_timestamps(text, spans):
    assert [(m.start, m.end) for m in find_timestamps(text)] == spans


def test_claims_sanitised_sorted_and_later_duplicate_wins():
    raw = {"00:20": "late.", "00:12": "first.", "12": "duplicate wins.", "inf": "x", "00:30": 5, "00:40": " "}
    claims = claims_from_mapping(raw)
    # inf, a non-string sentence and an empty sentence are dropped; "12" normalises to 00:12 and wins
    assert [(c.key, c.text, c.source_key) for c in claims] == [
        ("00:12", "duplicate wins.", "12"),
        ("00:20", "late.", "00:20"),
    ]
    assert sanitize_claims({"00:15-00:12": "r", "01:00-end": "o"}) == {"00:12-00:15": "r"}


def test_extract_timestamp_claims():
    text = (
        "At 00:12 the man lifts the red box. Between 01:45 and 01:52, the slide shows the count. "
        "From 2:00 to the end nothing happens. At 1 min 5 s the car turns left, then stops."
    )
    assert extract_timestamp_claims(text) == {
        "00:12": "man lifts the red box",
        "01:45-01:52": "slide shows the count",
        "02:00-end": "nothing happens",  # kept open here, dropped by sanitising
        "01:05": "car turns left, then stops",
    }
    assert extract_timestamp_claims("no times here") == {}
    long = "At 00:05 " + " ".join(f"w{i}" for i in range(20))
    assert len(extract_timestamp_claims(long)["00:05"].split()) == 10  # at most 10 words

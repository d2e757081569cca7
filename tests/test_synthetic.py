"""Synthetic temporal videos: scenes, questions, records, decoded frames (decord and PyAV), CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from lit_videor2.data.records import REASONING_INSTRUCTION
from lit_videor2.demo import synthetic as syn
from lit_videor2.demo import synthetic_scenes as scenes
from lit_videor2.demo.synthetic import QUESTION_KINDS, generate_dataset, make_question
from lit_videor2.demo.synthetic_scenes import (
    BACKGROUND,
    COLOURS,
    MIN_EVENT_GAP,
    Scene,
    ShapeTrack,
    events_at,
    scene_from_seed,
    visible_at,
)

TS = re.compile(r"\d\d:\d\d")

# A hand-built scene: red circle appears at 1 s, blue square appears at 3 s and moves right over 5–7 s,
# red circle disappears at 8 s.
HAND = Scene(
    duration=10,
    fps=10,
    size=(64, 64),
    tracks=(
        ShapeTrack("circle", "red", (0, 0), appear=1, disappear=8),
        ShapeTrack("square", "blue", (1, 1), appear=3, move_start=5, move_to=(1, 2)),
    ),
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    meta = generate_dataset(out, num_train=10, num_val=5, seed=3)
    return out, meta


def _load(out, split):
    return json.loads((out / f"{split}.json").read_text())


# ------------------------------------------------------------------------------------------- scenes


@pytest.mark.parametrize("seed", range(30))
def test_scene_invariants(seed):
    scene = scene_from_seed(seed)
    assert scene == scene_from_seed(seed)
    assert 6 <= scene.duration <= 10 and scene.num_frames == scene.duration * 10
    assert 2 <= len(scene.tracks) <= scenes.MAX_OBJECTS
    assert len({t.colour for t in scene.tracks}) == len(scene.tracks)  # "the red X" names one shape
    starts = [e.start for e in scene.events()]
    assert starts == sorted(starts) and starts[0] >= 1
    assert all(b - a >= MIN_EVENT_GAP for a, b in zip(starts, starts[1:]))
    assert all(e.end <= scene.duration - 1 for e in scene.events())
    cells = [t.cell for t in scene.tracks] + [t.move_to for t in scene.tracks if t.move_to]
    assert len(set(cells)) == len(cells)  # no shared cells: shapes never overlap


def test_scene_round_trips_through_dict():
    scene = scene_from_seed([1, 2, 3])
    assert Scene.from_dict(json.loads(json.dumps(scene.to_dict()))) == scene


def test_visible_and_events_at_hand_scene():
    assert visible_at(HAND, 0.9) == []
    assert [v.colour for v in visible_at(HAND, 1.0)] == ["red"]
    assert [v.colour for v in visible_at(HAND, 4.0)] == ["red", "blue"]
    assert [v.colour for v in visible_at(HAND, 8.0)] == ["blue"]
    cell = 64 / 3
    blue = {t: next(v for v in visible_at(HAND, t) if v.colour == "blue").centre for t in (5.0, 6.0, 7.0, 9.0)}
    assert blue[5.0] == pytest.approx((1.5 * cell, 1.5 * cell))
    assert blue[6.0] == pytest.approx((2.0 * cell, 1.5 * cell))  # half-way through the move
    assert blue[7.0] == pytest.approx((2.5 * cell, 1.5 * cell)) == blue[9.0]
    assert [(e.kind, e.key) for e in events_at(HAND, 6)] == [("moves", "00:05-00:07")]
    assert [(e.kind, e.key) for e in events_at(HAND, 8)] == [("disappears", "00:08")]
    assert events_at(HAND, 2) == []


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="duration_range"):
        scene_from_seed(0, duration_range=(2, 3))
    with pytest.raises(ValueError, match="colours"):
        scene_from_seed(0, colours=("red", "mauve"))
    with pytest.raises(ValueError, match="choose from"):
        generate_dataset("/nonexistent-unused", question_kinds=("order", "colour"))
    with pytest.raises(ValueError, match="even"):
        scenes.write_video(scene_from_seed(0, size=(63, 64)), "/tmp/unused.mp4")


# ---------------------------------------------------------------------------------------- questions

# (kind, seed for the question rng) -> expected pieces; the trace text is exact, the letters follow the options.
HAND_CASES = [
    # order: cites both appearances in time order
    (
        "order",
        "At 00:01 a red circle appears. At 00:03 a blue square appears. The {name} appears {which}, which is option {L}. So the answer is {L}.",
    ),
    # count: cites every appearance, counts them
    (
        "count",
        "At 00:01 a red circle appears. At 00:03 a blue square appears. That makes 2 shapes. So the answer is 2.",
    ),
]


@pytest.mark.parametrize("kind,template", HAND_CASES)
def test_hand_scene_traces(kind, template):
    q = make_question(HAND, kind, np.random.default_rng(0))
    if kind == "order":
        which = "first" if "first" in q["question"] else "last"
        name = "red circle" if which == "first" else "blue square"
        assert q["options"][ord(q["answer"]) - 65] == f"{q['answer']}. {name}"
        assert q["think"] == template.format(name=name, which=which, L=q["answer"])
        assert q["temporal_grounding"] == {"00:01": "A red circle appears.", "00:03": "A blue square appears."}
    else:
        assert q["think"] == template and q["answer"] == "2" and q["problem_type"] == "numerical"


@pytest.mark.parametrize("seed", range(12))
def test_hand_scene_event_questions(seed):
    rng = np.random.default_rng(seed)
    sentences = {
        "00:01": "At 00:01 a red circle appears.",
        "00:03": "At 00:03 a blue square appears.",
        "00:05-00:07": "From 00:05 to 00:07 the blue square moves right.",
        "00:08": "At 00:08 the red circle disappears.",
    }
    for kind in ("what_at", "when", "when_mc"):
        q = make_question(HAND, kind, rng)
        ((key, claim),) = q["temporal_grounding"].items()
        start = int(key[3:5])
        first = sentences[key]
        if kind == "what_at":
            colour = "blue" if "square" in claim else "red"
            assert q["options"][ord(q["answer"]) - 65] == f"{q['answer']}. {colour}"
            assert q["think"] == f"{first} The {colour} option is {q['answer']}. So the answer is {q['answer']}."
            assert f" at {key[:5]}?" in q["question"]
        elif kind == "when":
            assert q["answer"] == str(start) and q["options"] == [] and q["problem_type"] == "numerical"
            assert q["think"] == f"{first} So the answer is {start}."
        else:
            assert q["options"][ord(q["answer"]) - 65] == f"{q['answer']}. {key[:5]}"
            assert q["think"] == f"{first} {key[:5]} is option {q['answer']}. So the answer is {q['answer']}."


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown"):
        make_question(HAND, "colour", np.random.default_rng(0))


# ------------------------------------------------------------------------------------------ records


def test_records_schema(dataset):
    out, meta = dataset
    assert meta == json.loads((out / "meta.json").read_text())
    assert (
        meta["seed"] == 3
        and meta["num_train"] == 10
        and meta["num_val"] == 5
        and meta["version"] == syn.GENERATOR_VERSION
    )
    for split, num in (("train", 10), ("val", 5)):
        records = _load(out, split)
        assert len(records) == num and len({r["id"] for r in records}) == num
        assert {r["question_kind"] for r in records} == set(QUESTION_KINDS)  # round robin covers every kind
        for r in records:
            assert r["video"] == f"videos/{split}/{r['id'][-6:]}.mp4" and (out / r["video"]).is_file()
            human, gpt = r["conversations"]
            assert human["from"] == "human" and gpt["from"] == "gpt"
            assert human["value"].startswith("<video>\n") and REASONING_INSTRUCTION not in human["value"]
            assert "think" not in human["value"].lower()
            m = re.fullmatch(r"<think>(.+)</think>\n<answer>(.+)</answer>", gpt["value"], flags=re.S)
            assert m, gpt["value"]
            think, answer = m.groups()
            assert answer == r["answer"] and think.endswith(f"So the answer is {answer}.")
            assert r["duration"] == float(Scene.from_dict(r["scene"]).duration)
            if r["problem_type"] == "multiple choice":
                assert len(r["options"]) == 4
                assert [o[:3] for o in r["options"]] == ["A. ", "B. ", "C. ", "D. "]
                assert human["value"].endswith("\n".join(r["options"]))
                assert answer in "ABCD" and len({o[3:] for o in r["options"]}) == 4
            else:
                assert r["problem_type"] == "numerical" and r["options"] == [] and answer.isdigit()
            # every grounding key is cited in the trace, every cited time is a key; claims are short
            keys = r["temporal_grounding"]
            cited = set(TS.findall(think))  # when_mc's "00:06 is option D" repeats the grounded time
            assert cited == {t for k in keys for t in k.split("-")}
            assert all(len(c.split()) <= 10 for c in keys.values())


def test_answers_are_correct(dataset):
    """Recompute every answer from the scene, independently of the question code."""
    out, _ = dataset
    for r in _load(out, "train") + _load(out, "val"):
        scene = Scene.from_dict(r["scene"])
        ev = scene.events()
        q = r["conversations"][0]["value"]
        opt = {o[0]: o[3:] for o in r["options"]}
        kind = r["question_kind"]
        if kind == "order":
            appears = [scene.tracks[e.track].name for e in ev if e.kind == "appears"]
            assert opt[r["answer"]] == (appears[0] if "first" in q else appears[-1])
        elif kind == "count":
            assert r["answer"] == str(len(scene.tracks))
        elif kind == "what_at":
            t = int(re.search(r"at 00:(\d\d)\?", q).group(1))
            (e,) = [e for e in ev if e.start == t]
            assert opt[r["answer"]] == scene.tracks[e.track].colour
        else:
            colour, shape = re.search(r"does the (\w+) (\w+) ", q).groups()
            verb = "moves" if "moving" in q else "disappears" if "disappear" in q else "appears"
            (e,) = [e for e in ev if e.kind == verb and scene.tracks[e.track].name == f"{colour} {shape}"]
            got = int(opt[r["answer"]][3:]) if kind == "when_mc" else int(r["answer"])
            assert got == e.start


def test_kinds_selectable(tmp_path):
    generate_dataset(tmp_path, num_train=3, num_val=1, question_kinds=("count",))
    assert {r["question_kind"] for r in _load(tmp_path, "train") + _load(tmp_path, "val")} == {"count"}


def test_deterministic(dataset, tmp_path):
    out, _ = dataset
    generate_dataset(tmp_path, num_train=10, num_val=5, seed=3)
    for name in ("train.json", "val.json", "meta.json", "videos/train/000004.mp4", "videos/val/000002.mp4"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name
    other = tmp_path / "other"
    generate_dataset(other, num_train=10, num_val=0, seed=4)
    assert (other / "train.json").read_bytes() != (out / "train.json").read_bytes()


# ----------------------------------------------------------------------------------- decoded frames


def _decode_decord(path):
    import decord

    vr = decord.VideoReader(str(path))
    return vr.get_batch(list(range(len(vr)))).asnumpy(), vr.get_avg_fps()  # [T, H, W, 3]


def _decode_pyav(path):
    import av

    with av.open(str(path)) as c:
        fps = float(c.streams.video[0].average_rate)
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]), fps


def _check_frames(frames, fps, record):
    scene = Scene.from_dict(record["scene"])
    assert frames.shape == (scene.num_frames, *scene.size, 3) and fps == pytest.approx(scene.fps)
    bg = np.array(BACKGROUND)
    for i in range(len(frames)):  # first and last frames included
        t = i / fps
        shown = visible_at(record, t)
        for v in shown:
            x, y = (int(round(c)) for c in v.centre)
            assert np.abs(frames[i, y, x].astype(int) - v.rgb).max() <= 24, (record["id"], t, v)
        # every shape's position when on screen is background when it is not
        for tr in scene.tracks:
            if tr.colour not in {v.colour for v in shown} and tr.move_to is None:
                x, y = (int(round(c)) for c in scenes._cell_centre(tr.cell, scene.size))
                assert np.abs(frames[i, y, x].astype(int) - bg).max() <= 24, (record["id"], t, tr)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_decoded_frames_show_the_scene(dataset, backend):
    out, _ = dataset
    decode = _decode_decord if backend == "decord" else _decode_pyav
    for record in _load(out, "train")[:6] + _load(out, "val")[:2]:
        frames, fps = decode(out / record["video"])
        _check_frames(frames, fps, record)


def test_hand_scene_decoded_at_event_times(tmp_path):
    """Colour at the shape centre half a second either side of each event, both backends."""
    path = tmp_path / "hand.mp4"
    scenes.write_video(HAND, path)
    red, blue = COLOURS["red"], COLOURS["blue"]
    cell = 64 / 3
    red_xy, blue_from, blue_to = (
        (int(0.5 * cell), int(0.5 * cell)),
        (int(1.5 * cell), int(1.5 * cell)),
        (int(2.5 * cell), int(1.5 * cell)),
    )
    expected = [  # (time s, (x, y), rgb)
        (0.5, red_xy, BACKGROUND),
        (1.5, red_xy, red),
        (2.5, blue_from, BACKGROUND),
        (3.5, blue_from, blue),
        (4.5, blue_to, BACKGROUND),
        (7.5, blue_to, blue),
        (7.5, blue_from, BACKGROUND),
        (7.5, red_xy, red),
        (8.5, red_xy, BACKGROUND),
        (9.9, blue_to, blue),  # last frame
    ]
    for decode in (_decode_decord, _decode_pyav):
        frames, fps = decode(path)
        assert len(frames) == 100
        for t, (x, y), rgb in expected:
            got = frames[int(round(t * fps)), y, x].astype(int)
            assert np.abs(got - rgb).max() <= 24, (decode.__name__, t, got, rgb)


# ---------------------------------------------------------------------------------------------- CLI


def test_main_writes_dataset(tmp_path, capsys):
    out = tmp_path / "s"
    syn.main(
        [
            "--out",
            str(out),
            "--num-train",
            "3",
            "--num-val",
            "2",
            "--seed",
            "5",
            "--size",
            "48x64",
            "--fps",
            "4",
            "--min-duration",
            "6",
            "--max-duration",
            "7",
            "--kinds",
            "order,count",
            "when",
        ]
    )
    meta = json.loads((out / "meta.json").read_text())
    assert meta["size"] == [48, 64] and meta["fps"] == 4 and meta["question_kinds"] == ["order", "count", "when"]
    records = _load(out, "train")
    assert len(records) == 3 and len(_load(out, "val")) == 2
    assert all(6 <= r["duration"] <= 7 for r in records)
    frames, fps = _decode_pyav(out / records[0]["video"])
    assert frames.shape[1:3] == (48, 64) and fps == 4
    assert "wrote 3 train + 2 val clips" in capsys.readouterr().out

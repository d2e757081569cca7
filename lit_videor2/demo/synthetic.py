"""Synthetic temporal videos with exact ground truth, in the Video-R2 schema.

Each clip is a dark frame on which coloured shapes (circle, square, triangle) *appear*, *move* one grid
cell or *disappear* at whole seconds, never two events closer than :data:`MIN_EVENT_GAP` seconds. Every
event is known exactly, so each record carries a question with a checkable answer, a
``temporal_grounding`` map (``"MM:SS"`` or ``"MM:SS-MM:SS"`` -> claim of at most ten words) and a short
templated SFT trace that cites those timestamps and ends with ``So the answer is X.``.

Question kinds (:data:`QUESTION_KINDS`):

* ``order``   — "Which shape appears first/last?" (multiple choice over shape descriptions)
* ``what_at`` — "What colour is the shape that appears at 00:04?" (multiple choice over colours)
* ``when``    — "At what second does the blue square disappear?" (numerical, answer in seconds)
* ``when_mc`` — the same question with time options (``"A. 00:06"``)
* ``count``   — "How many shapes appear in the video?" (numerical)
* ``appear_colour`` — "What colour is the shape that appears?" on a 4-second clip with exactly one shape
  (:func:`~lit_videor2.demo.synthetic_scenes.single_shape_scene`, appearing at second 1, 2 or 3), options in a
  FIXED order (the first four colours of the palette, ``A. red`` … ``D. yellow``). The easiest kind: a tiny
  model learns it in a few hundred SFT steps, which makes it the demo's curriculum (``docs/demo.md``). Not in
  the default kinds.
* ``appear_shape`` / ``appear_when`` — "What shape appears?" (``A. circle`` … ``C. triangle``) and "At what second
  does the shape appear?" (``A. 00:01`` … ``C. 00:03``) on the same one-shape clips, options in a fixed order:
  the answer needs the claim's shape or its second, so accuracy pays for reading them (the claims demo mixes
  the three ``appear_*`` kinds, ``docs/demo.md``).

The scenes themselves (shapes, events, frames, MP4s) are :mod:`lit_videor2.demo.synthetic_scenes`.
Everything is a pure function of the seed: the same arguments give byte-identical JSON and identical
frames (libx264 on one thread). Clip ``i`` of split ``s`` uses the seed ``[seed, s, i]``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lit_videor2.demo.synthetic_scenes import (
    COLOURS,
    SHAPES,
    Event,
    Scene,
    format_timestamp,
    scene_from_seed,
    single_shape_scene,
    write_video,
)

GENERATOR_VERSION = "1"
QUESTION_KINDS = ("order", "what_at", "when", "when_mc", "count")
"""The default question kinds (round robin over multi-shape scenes)."""
EXTRA_KINDS = ("appear_colour", "appear_shape", "appear_when")
"""Kinds generated only when asked for (their own scenes)."""
ALL_KINDS = QUESTION_KINDS + EXTRA_KINDS
SINGLE_SHAPE_KINDS = EXTRA_KINDS
"""Kinds asked of one-shape, 4-second clips (:func:`single_shape_scene`)."""
NUM_OPTIONS = 4
LETTERS = "ABCDEFGH"
_SPLIT_CODES = {"train": 0, "val": 1}


# ----------------------------------------------------------------------------------------- questions


def _event_sentence(scene: Scene, e: Event) -> str:
    """The trace sentence citing one event, e.g. ``"At 00:03 a red circle appears."``."""
    tr = scene.tracks[e.track]
    if e.kind == "appears":
        return f"At {format_timestamp(e.start)} a {tr.name} appears."
    if e.kind == "disappears":
        return f"At {format_timestamp(e.start)} the {tr.name} disappears."
    return f"From {format_timestamp(e.start)} to {format_timestamp(e.end)} the {tr.name} moves {tr.direction}."


def _event_claim(scene: Scene, e: Event) -> str:
    """The ``temporal_grounding`` claim for one event (≤ 10 words)."""
    tr = scene.tracks[e.track]
    if e.kind == "appears":
        return f"A {tr.name} appears."
    if e.kind == "disappears":
        return f"The {tr.name} disappears."
    return f"The {tr.name} moves {tr.direction}."


_EVENT_VERB = {
    "appears": ("appears", "appear"),
    "disappears": ("disappears", "disappear"),
    "moves": ("starts moving", "start moving"),
}


def _mc(rng: np.random.Generator, correct: str, distractors: Sequence[str]) -> tuple[list[str], str]:
    """Shuffle ``correct`` among the first distractors; returns the option lines and the answer letter."""
    picked = [correct, *list(distractors)[: NUM_OPTIONS - 1]]
    order = rng.permutation(len(picked))
    values = [picked[j] for j in order]
    letter = LETTERS[values.index(correct)]
    return [f"{LETTERS[j]}. {v}" for j, v in enumerate(values)], letter


def _fixed_mc(fixed: Sequence[str], correct: str) -> tuple[list[str], str]:
    """Options in the given fixed order (``A. red``, ``B. green``, …) and the letter of ``correct``."""
    return [f"{LETTERS[j]}. {c}" for j, c in enumerate(fixed)], LETTERS[list(fixed).index(correct)]


def _pick_event(rng: np.random.Generator, events: Sequence[Event]) -> Event:
    """An event whose kind is drawn uniformly first, so moves and disappearances are asked about as often."""
    kinds = [k for k in _EVENT_VERB if any(e.kind == k for e in events)]
    kind = kinds[int(rng.integers(0, len(kinds)))]
    pool = [e for e in events if e.kind == kind]
    return pool[int(rng.integers(0, len(pool)))]


def _absent_names(rng: np.random.Generator, scene: Scene, colours: Sequence[str], shapes: Sequence[str]) -> list[str]:
    used = {tr.colour for tr in scene.tracks}
    absent = [c for c in colours if c not in used]
    return [f"{c} {shapes[int(rng.integers(0, len(shapes)))]}" for c in rng.permutation(absent)]


def make_question(
    scene: Scene,
    kind: str,
    rng: np.random.Generator,
    *,
    colours: Sequence[str] = tuple(COLOURS),
    shapes: Sequence[str] = SHAPES,
) -> dict[str, Any]:
    """One question about ``scene``: ``question`` (options included), ``options``, ``answer``,
    ``problem_type``, ``think`` (the SFT trace body) and ``temporal_grounding``."""
    events = scene.events()
    appears = [e for e in events if e.kind == "appears"]
    options: list[str] = []
    if kind == "order":
        which = "first" if rng.integers(0, 2) == 0 else "last"
        target = scene.tracks[(appears[0] if which == "first" else appears[-1]).track]
        others = [scene.tracks[e.track].name for e in appears if scene.tracks[e.track] is not target]
        distractors = list(rng.permutation(others)) + _absent_names(rng, scene, colours, shapes)
        options, answer = _mc(rng, target.name, distractors)
        cited = appears
        question = f"Which shape appears {which}?"
        conclusion = f"The {target.name} appears {which}, which is option {answer}."
    elif kind == "what_at":
        e = _pick_event(rng, events)
        colour = scene.tracks[e.track].colour
        distractors = [str(c) for c in rng.permutation([c for c in colours if c != colour])]
        options, answer = _mc(rng, colour, distractors)
        cited = [e]
        question = f"What colour is the shape that {_EVENT_VERB[e.kind][0]} at {format_timestamp(e.start)}?"
        conclusion = f"The {colour} option is {answer}."
    elif kind in ("when", "when_mc"):
        e = _pick_event(rng, events)
        cited = [e]
        question = f"At what second does the {scene.tracks[e.track].name} {_EVENT_VERB[e.kind][1]}?"
        if kind == "when":
            answer, conclusion = str(e.start), ""
        else:
            wrong = [
                format_timestamp(s) for s in rng.permutation([s for s in range(1, scene.duration) if s != e.start])
            ]
            options, answer = _mc(rng, format_timestamp(e.start), wrong)
            conclusion = f"{format_timestamp(e.start)} is option {answer}."
    elif kind == "appear_colour":
        e = appears[0]
        colour = scene.tracks[e.track].colour
        fixed = [str(c) for c in colours[:NUM_OPTIONS]]
        if colour not in fixed:
            raise ValueError(f"appear_colour: the shape's colour {colour!r} is not among the options {fixed}")
        options, answer = _fixed_mc(fixed, colour)
        cited = [e]
        question = "What colour is the shape that appears?"
        conclusion = f"The {colour} option is {answer}."
    elif kind in ("appear_shape", "appear_when"):
        # Same single-shape scenes as appear_colour; the answer needs the claim's shape or its second.
        e = appears[0]
        if kind == "appear_shape":
            value, fixed, question = scene.tracks[e.track].shape, [str(s) for s in shapes], "What shape appears?"
        else:
            value = format_timestamp(e.start)
            fixed = [format_timestamp(s) for s in range(1, scene.duration)]
            question = "At what second does the shape appear?"
        options, answer = _fixed_mc(fixed, value)
        cited = [e]
        # Not "The 00:02 option is B.": a second mention of the claim's time would be a claim of its own.
        conclusion = f"The {value} option is {answer}." if kind == "appear_shape" else f"That time is option {answer}."
    elif kind == "count":
        cited = appears
        answer = str(len(appears))
        question = "How many shapes appear in the video?"
        conclusion = f"That makes {answer} shapes."
    else:
        raise ValueError(f"question kind {kind!r} is unknown; choose from {list(ALL_KINDS)}")
    sentences = [_event_sentence(scene, e) for e in cited] + ([conclusion] if conclusion else [])
    sentences.append(f"So the answer is {answer}.")
    return {
        "question": "\n".join([question, *options]),
        "options": options,
        "answer": answer,
        "problem_type": "multiple choice" if options else "numerical",
        "think": " ".join(sentences),
        "temporal_grounding": {e.key: _event_claim(scene, e) for e in cited},
    }


# ------------------------------------------------------------------------------------------- dataset


def make_record(scene: Scene, question: Mapping[str, Any], *, record_id: str, video: str, kind: str) -> dict[str, Any]:
    """A Video-R2 record (plus ``answer``, ``question_kind`` and ``scene`` for checking)."""
    return {
        "id": record_id,
        "video": video,
        "conversations": [
            {"from": "human", "value": f"<video>\n{question['question']}"},
            {"from": "gpt", "value": f"<think>{question['think']}</think>\n<answer>{question['answer']}</answer>"},
        ],
        "temporal_grounding": dict(question["temporal_grounding"]),
        "problem_type": question["problem_type"],
        "options": list(question["options"]),
        "answer": question["answer"],
        "duration": float(scene.duration),
        "question_kind": kind,
        "scene": scene.to_dict(),
    }


def generate_split(
    out: str | Path,
    split: str,
    num: int,
    *,
    seed: int = 0,
    duration_range: tuple[float, float] = (6.0, 10.0),
    fps: int = 10,
    size: tuple[int, int] = (64, 64),
    question_kinds: Sequence[str] = QUESTION_KINDS,
    colours: Sequence[str] = tuple(COLOURS),
    shapes: Sequence[str] = SHAPES,
    crf: int = 23,
    write_videos: bool = True,
) -> list[dict[str, Any]]:
    """Write ``num`` clips under ``out/videos/<split>/`` and return their records (kinds in round robin)."""
    out = Path(out)
    records = []
    for i in range(num):
        clip_seed = [seed, _SPLIT_CODES.get(split, len(_SPLIT_CODES)), i]
        kind = question_kinds[i % len(question_kinds)]
        if kind in SINGLE_SHAPE_KINDS:
            scene = single_shape_scene(clip_seed, fps=fps, size=size, colours=colours[:NUM_OPTIONS], shapes=shapes)
        else:
            scene = scene_from_seed(
                clip_seed, duration_range=duration_range, fps=fps, size=size, colours=colours, shapes=shapes
            )
        q = make_question(scene, kind, np.random.default_rng([*clip_seed, 1]), colours=colours, shapes=shapes)
        video = f"videos/{split}/{i:06d}.mp4"
        if write_videos:
            write_video(scene, out / video, crf=crf)
        records.append(make_record(scene, q, record_id=f"synth-{split}-{i:06d}", video=video, kind=kind))
    return records


def generate_dataset(
    out: str | Path,
    *,
    num_train: int = 200,
    num_val: int = 40,
    seed: int = 0,
    duration_range: tuple[float, float] = (6.0, 10.0),
    fps: int = 10,
    size: tuple[int, int] = (64, 64),
    question_kinds: Sequence[str] = QUESTION_KINDS,
    colours: Sequence[str] = tuple(COLOURS),
    shapes: Sequence[str] = SHAPES,
    crf: int = 23,
) -> dict[str, Any]:
    """Write ``out/videos/{train,val}/*.mp4``, ``out/train.json``, ``out/val.json`` and ``out/meta.json``.

    Returns the content of ``meta.json``. Video paths in the records are relative to ``out``.
    """
    kinds = _check_kinds(question_kinds)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    common = dict(
        seed=seed,
        duration_range=duration_range,
        fps=fps,
        size=size,
        question_kinds=kinds,
        colours=colours,
        shapes=shapes,
        crf=crf,
    )
    counts = {}
    for split, num in (("train", num_train), ("val", num_val)):
        records = generate_split(out, split, num, **common)
        _write_json(out / f"{split}.json", records)
        counts[split] = num
    meta = {
        "generator": "lit_videor2.demo.synthetic",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "num_train": num_train,
        "num_val": num_val,
        "fps": fps,
        "size": [int(size[0]), int(size[1])],
        "duration_range": [float(duration_range[0]), float(duration_range[1])],
        "question_kinds": list(kinds),
        "colours": list(colours),
        "shapes": list(shapes),
        "crf": crf,
        "codec": "h264/yuv420p",
    }
    _write_json(out / "meta.json", meta)
    return meta


def _check_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in ALL_KINDS]
    if bad or not kinds:
        raise ValueError(f"question kinds {bad or '(none)'} unknown or empty; choose from {list(ALL_KINDS)}")
    return kinds


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


# ----------------------------------------------------------------------------------------------- CLI


def _parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().replace("x", ",").split(",")
    try:
        nums = [int(p) for p in parts if p]
    except ValueError:
        nums = []
    if len(nums) not in (1, 2):
        raise argparse.ArgumentTypeError(f"--size {text!r}: give N (square) or HxW, e.g. 64 or 64x96")
    return (nums[0], nums[-1])


def build_parser(prog: str = "lit_videor2 synth") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Write a synthetic temporal video dataset (Video-R2 schema).")
    p.add_argument("--out", required=True, help="output folder (videos/, train.json, val.json, meta.json)")
    p.add_argument("--num-train", type=int, default=200, help="train clips (default 200)")
    p.add_argument("--num-val", type=int, default=40, help="validation clips (default 40)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--fps", type=int, default=10, help="frames per second (default 10)")
    p.add_argument("--size", type=_parse_size, default=(64, 64), help="frame size: N or HxW, even (default 64)")
    p.add_argument("--min-duration", type=float, default=6.0, help="shortest clip in seconds (default 6)")
    p.add_argument("--max-duration", type=float, default=10.0, help="longest clip in seconds (default 10)")
    p.add_argument(
        "--kinds",
        nargs="+",
        default=list(QUESTION_KINDS),
        metavar="KIND",
        help=f"question kinds, space- or comma-separated, from {', '.join(ALL_KINDS)} "
        f"(default {', '.join(QUESTION_KINDS)})",
    )
    p.add_argument(
        "--colours", nargs="+", default=list(COLOURS), metavar="COLOUR", help=f"palette, from {', '.join(COLOURS)}"
    )
    p.add_argument("--crf", type=int, default=23, help="x264 quality (default 23)")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """``lit_videor2 synth``: parse ``argv`` (default ``sys.argv[1:]``), write the dataset, print a summary."""
    args = build_parser().parse_args(argv)
    kinds = [k for item in args.kinds for k in item.split(",") if k]
    colours = [c for item in args.colours for c in item.split(",") if c]
    t0 = time.perf_counter()
    generate_dataset(
        args.out,
        num_train=args.num_train,
        num_val=args.num_val,
        seed=args.seed,
        fps=args.fps,
        size=args.size,
        duration_range=(args.min_duration, args.max_duration),
        question_kinds=kinds,
        colours=colours,
        crf=args.crf,
    )
    print(f"wrote {args.num_train} train + {args.num_val} val clips to {args.out} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()

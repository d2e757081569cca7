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

Layout: the frame is a 3×3 grid; each shape owns one cell (a moving shape owns two adjacent cells) that
no other shape of the clip ever uses, so shapes never overlap and the colour at a shape's centre is
always the shape's colour. Shapes are 0.8 of a cell (about a quarter of the frame side), so they stay
visible after downsampling to ~28 pixels.

Time convention: frame ``i`` shows time ``i / fps``. A shape that appears at second ``a`` and disappears
at ``d`` is drawn on frames with ``a <= t < d``; a move over ``[s, s + 2]`` interpolates linearly between
the two cell centres. :func:`visible_at` and :func:`events_at` are the pure reference for what a decoded
frame at time ``t`` shows; every record stores its scene (``"scene"``) so they work on records too.

Everything is a pure function of the seed: the same arguments give byte-identical JSON and identical
frames (libx264 on one thread). Clip ``i`` of split ``s`` uses the seed ``[seed, s, i]``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

GENERATOR_VERSION = "1"

#: RGB of each colour name. Saturated and far apart so that they survive yuv420p and downsampling.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 245),
    "yellow": (240, 220, 40),
    "purple": (170, 60, 220),
    "cyan": (40, 215, 225),
}
SHAPES = ("circle", "square", "triangle")
BACKGROUND = (16, 16, 24)
QUESTION_KINDS = ("order", "what_at", "when", "when_mc", "count")

MIN_EVENT_GAP = 2
"""Seconds between two consecutive events (a move lasts exactly this long)."""
GRID = 3
"""The frame is a GRID × GRID board of cells, one shape per cell."""
MAX_OBJECTS = 4
NUM_OPTIONS = 4
LETTERS = "ABCDEFGH"
_DIRECTIONS = {"right": (0, 1), "left": (0, -1), "down": (1, 0), "up": (-1, 0)}
_SPLIT_CODES = {"train": 0, "val": 1}


# --------------------------------------------------------------------------------------------- scene


@dataclass(frozen=True)
class ShapeTrack:
    """One shape's whole life in a clip."""

    shape: str
    """One of :data:`SHAPES`."""
    colour: str
    """Key of :data:`COLOURS`; unique within a scene, so ``"the red circle"`` names one shape."""
    cell: tuple[int, int]
    """(row, col) grid cell where the shape appears."""
    appear: int
    """Second at which it appears."""
    disappear: int | None = None
    """Second at which it disappears; None when it stays to the end."""
    move_start: int | None = None
    """Second at which it starts moving one cell; the move lasts :data:`MIN_EVENT_GAP` seconds."""
    move_to: tuple[int, int] | None = None
    """(row, col) cell it moves to."""

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"

    @property
    def direction(self) -> str | None:
        if self.move_to is None:
            return None
        delta = (self.move_to[0] - self.cell[0], self.move_to[1] - self.cell[1])
        return next(k for k, v in _DIRECTIONS.items() if v == delta)


@dataclass(frozen=True)
class Event:
    """Something that happens in a clip; ``end == start`` except for moves."""

    kind: str
    """``"appears"``, ``"disappears"`` or ``"moves"``."""
    start: int
    end: int
    track: int
    """Index into :attr:`Scene.tracks`."""

    @property
    def key(self) -> str:
        """The ``temporal_grounding`` key: ``"MM:SS"`` or ``"MM:SS-MM:SS"``."""
        if self.end == self.start:
            return format_timestamp(self.start)
        return f"{format_timestamp(self.start)}-{format_timestamp(self.end)}"


@dataclass(frozen=True)
class VisibleShape:
    """A shape drawn on a frame: what a decoded frame at that time must show."""

    shape: str
    colour: str
    rgb: tuple[int, int, int]
    centre: tuple[float, float]
    """(x, y) in pixels."""
    radius: float
    """Half the side of the shape's bounding box, in pixels."""


@dataclass(frozen=True)
class Scene:
    """A whole clip: duration, frame format and the shape tracks."""

    duration: int
    fps: int
    size: tuple[int, int]
    """(height, width) in pixels."""
    tracks: tuple[ShapeTrack, ...]

    @property
    def num_frames(self) -> int:
        return self.duration * self.fps

    def events(self) -> list[Event]:
        """All events, in time order."""
        out = []
        for i, tr in enumerate(self.tracks):
            out.append(Event("appears", tr.appear, tr.appear, i))
            if tr.move_start is not None:
                out.append(Event("moves", tr.move_start, tr.move_start + MIN_EVENT_GAP, i))
            if tr.disappear is not None:
                out.append(Event("disappears", tr.disappear, tr.disappear, i))
        return sorted(out, key=lambda e: (e.start, e.track))

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration": self.duration,
            "fps": self.fps,
            "size": list(self.size),
            "tracks": [{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(t).items()} for t in self.tracks],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Scene:
        tracks = []
        for t in d["tracks"]:
            t = dict(t)
            t["cell"] = tuple(t["cell"])
            t["move_to"] = tuple(t["move_to"]) if t.get("move_to") is not None else None
            tracks.append(ShapeTrack(**t))
        return cls(int(d["duration"]), int(d["fps"]), (int(d["size"][0]), int(d["size"][1])), tuple(tracks))


def format_timestamp(seconds: float) -> str:
    """``MM:SS`` (whole seconds)."""
    s = int(round(seconds))
    return f"{s // 60:02d}:{s % 60:02d}"


def _as_scene(scene_or_record: Scene | Mapping[str, Any]) -> Scene:
    if isinstance(scene_or_record, Scene):
        return scene_or_record
    if "scene" in scene_or_record:
        return Scene.from_dict(scene_or_record["scene"])
    return Scene.from_dict(scene_or_record)


def _cell_centre(cell: tuple[int, int], size: tuple[int, int]) -> tuple[float, float]:
    h, w = size
    return ((cell[1] + 0.5) * w / GRID, (cell[0] + 0.5) * h / GRID)


def _shape_radius(size: tuple[int, int]) -> float:
    return 0.4 * min(size) / GRID


def visible_at(scene_or_record: Scene | Mapping[str, Any], t: float) -> list[VisibleShape]:
    """The shapes drawn on the frame at time ``t`` (seconds), with their centres in pixels."""
    scene = _as_scene(scene_or_record)
    out = []
    for tr in scene.tracks:
        if t < tr.appear or (tr.disappear is not None and t >= tr.disappear):
            continue
        x, y = _cell_centre(tr.cell, scene.size)
        if tr.move_start is not None and tr.move_to is not None and t > tr.move_start:
            x1, y1 = _cell_centre(tr.move_to, scene.size)
            a = min(1.0, (t - tr.move_start) / MIN_EVENT_GAP)
            x, y = x + a * (x1 - x), y + a * (y1 - y)
        out.append(VisibleShape(tr.shape, tr.colour, COLOURS[tr.colour], (x, y), _shape_radius(scene.size)))
    return out


def events_at(scene_or_record: Scene | Mapping[str, Any], t: float) -> list[Event]:
    """Events happening at time ``t``: instant events at exactly ``t``, moves whose span contains ``t``."""
    scene = _as_scene(scene_or_record)
    return [e for e in scene.events() if e.start <= t <= e.end]


def scene_from_seed(
    seed: int | Sequence[int],
    *,
    duration_range: tuple[float, float] = (6.0, 10.0),
    fps: int = 10,
    size: tuple[int, int] = (64, 64),
    colours: Sequence[str] = tuple(COLOURS),
    shapes: Sequence[str] = SHAPES,
    max_objects: int = MAX_OBJECTS,
) -> Scene:
    """A random scene, a pure function of ``seed`` (an int or a sequence of ints, as numpy's SeedSequence).

    Events fall on whole seconds in ``[1, duration - 1]``, at least :data:`MIN_EVENT_GAP` apart; every
    scene has at least two shapes, each shape appears once and may then move once and disappear once.
    """
    lo, hi = int(np.ceil(duration_range[0])), int(np.floor(duration_range[1]))
    if lo < 2 * MIN_EVENT_GAP or hi < lo:
        raise ValueError(
            f"duration_range={duration_range}: need whole seconds in it, the smallest ≥ {2 * MIN_EVENT_GAP}"
        )
    if len(colours) < 2 or any(c not in COLOURS for c in colours):
        raise ValueError(f"colours={list(colours)}: need at least two of {list(COLOURS)}")
    if not shapes or any(s not in SHAPES for s in shapes):
        raise ValueError(f"shapes={list(shapes)}: choose from {list(SHAPES)}")
    rng = np.random.default_rng(list(seed) if isinstance(seed, Sequence) else seed)
    duration = int(rng.integers(lo, hi + 1))

    times = [1 + int(rng.integers(0, 2))]  # event slots, ≥ MIN_EVENT_GAP apart, ≤ duration - 1
    while (nxt := times[-1] + MIN_EVENT_GAP + int(rng.random() < 0.25)) <= duration - 1:
        times.append(nxt)
    n_obj = int(rng.integers(2, min(max_objects, len(colours), len(times)) + 1))

    palette = [str(c) for c in rng.permutation(list(colours))[:n_obj]]
    free = [(r, c) for r in range(GRID) for c in range(GRID)]
    tracks: list[dict[str, Any]] = []
    for k, t in enumerate(times):
        remaining_slots = len(times) - k
        to_appear = n_obj - len(tracks)
        next_t = times[k + 1] if k + 1 < len(times) else duration
        on_screen = [
            i
            for i, tr in enumerate(tracks)
            if tr["disappear"] is None and (tr["move_start"] is None or tr["move_start"] + MIN_EVENT_GAP <= t)
        ]
        movable = [
            i
            for i in on_screen
            if tracks[i]["move_start"] is None
            and t + MIN_EVENT_GAP <= min(next_t, duration - 1)
            and _free_neighbours(tracks[i]["cell"], free)
        ]
        changes = ["move"] * bool(movable) + ["disappear"] * bool(on_screen)
        if to_appear and (to_appear >= remaining_slots or not changes or rng.random() < to_appear / remaining_slots):
            action = "appear"  # appearances spread over the slots; every shape gets one
        elif changes:
            action = changes[int(rng.integers(0, len(changes)))]
        else:
            break  # nothing on screen and nothing left to appear
        if action == "appear":
            cell = free.pop(int(rng.integers(0, len(free))))
            shape = str(shapes[int(rng.integers(0, len(shapes)))])
            tracks.append(
                dict(
                    shape=shape,
                    colour=palette[len(tracks)],
                    cell=cell,
                    appear=t,
                    disappear=None,
                    move_start=None,
                    move_to=None,
                )
            )
        elif action == "move":
            i = movable[int(rng.integers(0, len(movable)))]
            options = _free_neighbours(tracks[i]["cell"], free)
            target = options[int(rng.integers(0, len(options)))]
            free.remove(target)
            tracks[i].update(move_start=t, move_to=target)
        else:
            i = on_screen[int(rng.integers(0, len(on_screen)))]
            tracks[i]["disappear"] = t
    return Scene(duration, fps, (int(size[0]), int(size[1])), tuple(ShapeTrack(**tr) for tr in tracks))


def _free_neighbours(cell: tuple[int, int], free: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(cell[0] + dr, cell[1] + dc) for dr, dc in _DIRECTIONS.values() if (cell[0] + dr, cell[1] + dc) in free]


# ----------------------------------------------------------------------------------------- rendering


def render_frame(scene: Scene, t: float) -> np.ndarray:
    """The RGB frame at time ``t``: ``uint8 [H, W, 3]``."""
    from PIL import Image, ImageDraw

    h, w = scene.size
    img = Image.new("RGB", (w, h), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for vs in visible_at(scene, t):
        (x, y), r = vs.centre, vs.radius
        box = (x - r, y - r, x + r, y + r)
        if vs.shape == "circle":
            draw.ellipse(box, fill=vs.rgb)
        elif vs.shape == "square":
            draw.rectangle(box, fill=vs.rgb)
        else:
            draw.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], fill=vs.rgb)
    return np.asarray(img)  # [H, W, 3] uint8


def write_video(scene: Scene, path: str | Path, *, crf: int = 23, preset: str = "ultrafast") -> None:
    """Encode the scene to H.264/yuv420p MP4 with one keyframe per second (single-threaded, deterministic)."""
    import av

    h, w = scene.size
    if h % 2 or w % 2:
        raise ValueError(f"size={scene.size}: yuv420p needs an even height and width")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=scene.fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.gop_size = scene.fps
        stream.codec_context.thread_count = 1
        stream.options = {"crf": str(crf), "preset": preset, "bf": "0", "threads": "1"}
        last_key, frame = None, None
        for i in range(scene.num_frames):
            t = i / scene.fps
            key = tuple((vs.colour, round(vs.centre[0], 3), round(vs.centre[1], 3)) for vs in visible_at(scene, t))
            if key != last_key:  # static stretches reuse the converted frame
                frame = av.VideoFrame.from_ndarray(render_frame(scene, t), format="rgb24").reformat(format="yuv420p")
                last_key = key
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


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
    elif kind == "count":
        cited = appears
        answer = str(len(appears))
        question = "How many shapes appear in the video?"
        conclusion = f"That makes {answer} shapes."
    else:
        raise ValueError(f"question kind {kind!r} is unknown; choose from {list(QUESTION_KINDS)}")
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
        scene = scene_from_seed(
            clip_seed, duration_range=duration_range, fps=fps, size=size, colours=colours, shapes=shapes
        )
        kind = question_kinds[i % len(question_kinds)]
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
        "generator": "lit_videor2.data.synthetic",
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
    bad = [k for k in kinds if k not in QUESTION_KINDS]
    if bad or not kinds:
        raise ValueError(f"question kinds {bad or '(none)'} unknown or empty; choose from {list(QUESTION_KINDS)}")
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
        help=f"question kinds, space- or comma-separated, from {', '.join(QUESTION_KINDS)} (default all)",
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

"""Synthetic scenes: coloured shapes that appear, move and disappear on a grid, and their frames and MP4s.

Each clip is a dark frame on which coloured shapes (circle, square, triangle) *appear*, *move* one grid
cell or *disappear* at whole seconds, never two events closer than :data:`MIN_EVENT_GAP` seconds. Every
event is known exactly; :mod:`lit_videor2.demo.synthetic` turns the events into questions and records.

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

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageDraw

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


MIN_EVENT_GAP = 2
"""Seconds between two consecutive events (a move lasts exactly this long)."""
GRID = 3
"""The frame is a GRID × GRID board of cells, one shape per cell."""
MAX_OBJECTS = 4
_DIRECTIONS = {"right": (0, 1), "left": (0, -1), "down": (1, 0), "up": (-1, 0)}


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


def single_shape_scene(
    seed: int | Sequence[int],
    *,
    duration: int = 4,
    fps: int = 10,
    size: tuple[int, int] = (56, 56),
    colours: Sequence[str] = ("red", "green", "blue", "yellow"),
    shapes: Sequence[str] = ("square", "circle"),
    appear_times: Sequence[int] = (1, 2, 3),
) -> Scene:
    """A scene with exactly one shape, which appears at one of ``appear_times`` and stays to the end.

    The easiest scene of the demo curriculum (question kind ``appear_colour``): a pure function of ``seed``.
    """
    if len(colours) < 2 or any(c not in COLOURS for c in colours):
        raise ValueError(f"colours={list(colours)}: need at least two of {list(COLOURS)}")
    if not shapes or any(s not in SHAPES for s in shapes):
        raise ValueError(f"shapes={list(shapes)}: choose from {list(SHAPES)}")
    if not appear_times or any(not 0 < t < duration for t in appear_times):
        raise ValueError(f"appear_times={list(appear_times)}: need whole seconds in [1, duration - 1 = {duration - 1}]")
    rng = np.random.default_rng(list(seed) if isinstance(seed, Sequence) else seed)
    track = ShapeTrack(
        shape=str(shapes[int(rng.integers(0, len(shapes)))]),
        colour=str(colours[int(rng.integers(0, len(colours)))]),
        cell=(int(rng.integers(0, GRID)), int(rng.integers(0, GRID))),
        appear=int(appear_times[int(rng.integers(0, len(appear_times)))]),
    )
    return Scene(int(duration), fps, (int(size[0]), int(size[1])), (track,))


def _free_neighbours(cell: tuple[int, int], free: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(cell[0] + dr, cell[1] + dc) for dr, dc in _DIRECTIONS.values() if (cell[0] + dr, cell[1] + dc) in free]


# ----------------------------------------------------------------------------------------- rendering


def render_frame(scene: Scene, t: float) -> np.ndarray:
    """The RGB frame at time ``t``: ``uint8 [H, W, 3]``."""
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


__all__ = [
    "BACKGROUND",
    "COLOURS",
    "GRID",
    "MAX_OBJECTS",
    "MIN_EVENT_GAP",
    "SHAPES",
    "Event",
    "Scene",
    "ShapeTrack",
    "VisibleShape",
    "events_at",
    "format_timestamp",
    "render_frame",
    "scene_from_seed",
    "single_shape_scene",
    "visible_at",
    "write_video",
]

"""Video decoding by time, behind one small interface, with one wrapper per backend.

A backend opens a file, learns its timeline as a player shows it (:class:`~lit_videor2.data.timeline.VideoTimeline`:
presentation times of the shown frames, from the first one, and the duration), asks the caller for the target times
it wants (a function of that timeline), and returns the frame on screen at each target time, upright, with its real
presentation time. Nothing assumes a constant frame rate: times are the frames' own timestamps, never
``index / fps``.

* ``pyav`` (the default): the stream a player shows (the default one), the timeline from its packets (edit lists,
  late-starting clocks and variable rates as players handle them), then decoding from the nearest keyframe before
  each wanted frame; every returned frame is matched to its wanted timestamp exactly, so a seek that lands wrong is
  caught and redone from the start, never returned.
* ``torchcodec``: the same timeline and stream (read with PyAV), frames decoded by torchcodec; each returned frame's
  timestamp is checked against the one asked for and a mismatch is an error (so ``fallback_backend`` takes over).
* ``decord``: decord's own frame list and timestamps. Fast, but wrong on several kinds of real files (open-GOP
  H.264, ``-c copy`` cuts with edit lists, MPEG-TS with a late clock, fragmented MP4, files with two video streams;
  see ``docs/data.md``), and its frames cannot be checked, so it is not the default.

Rotation tags are applied by every backend (frames come upright, as players show them). Non-square pixels are
reported (:attr:`DecodedVideo.sample_aspect`) and widened to the display aspect when frames are resized
(:attr:`DecodedVideo.display_hw`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from lit_videor2.data.probe import (
    StreamScan,
    VideoDecodeError,
    display_tags,
    frame_rotation,
    probe,
    rotate_frames,
)
from lit_videor2.data.timeline import VideoTimeline

log = logging.getLogger(__name__)

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "DecodedVideo", "TimesFn", "VideoDecodeError", "decode_video"]

TimesFn = Callable[[VideoTimeline], list[float]]
"""``timeline -> target times`` (seconds from the first shown frame) to decode."""


@dataclass
class DecodedVideo:
    """The frames on screen at the target times of one video, with where and when they come from."""

    frames: np.ndarray
    """``uint8 [T, H, W, 3]``, upright (rotation tags applied), stored pixels (see :attr:`sample_aspect`)."""
    times: list[float]
    """Presentation time of each frame (seconds from the first shown frame): when a player starts showing it."""
    indices: list[int]
    """Position of each frame among the stream's shown frames."""
    duration: float
    """Seconds from the first shown frame to the end of the last."""
    num_frames: int
    """Shown frames in the stream."""
    backend: str
    rotation: int = 0
    """Counter-clockwise degrees (0, 90, 180, 270) the stored frames were turned by to stand upright."""
    sample_aspect: Fraction = Fraction(1)
    """Pixel aspect ratio of the stored frames (a player stretches stored widths by it, before turning)."""

    @property
    def average_fps(self) -> float:
        return self.num_frames / self.duration

    @property
    def display_hw(self) -> tuple[int, int]:
        """``(height, width)`` a player shows: the upright frame, its stored width scaled by the pixel aspect (wider
        for 4:3 pixels, narrower for 1:2), its height kept, as FFmpeg and players compute the display size."""
        h, w = self.frames.shape[1:3]
        if self.sample_aspect == 1:
            return h, w
        if self.rotation in (90, 270):  # the stored width is now the height
            return round(h * self.sample_aspect), w
        return h, round(w * self.sample_aspect)


def _targets(path: str, times_fn: TimesFn, timeline: VideoTimeline) -> tuple[list[float], list[int]]:
    targets = list(times_fn(timeline))
    if not targets:
        raise VideoDecodeError(f"{path}: no frames selected (video has {timeline.num_frames} frames)")
    return targets, timeline.indices_at(targets)


def _decode_pts(container, stream, scan: StreamScan, wanted: list[int], path: str, *, seek: bool = True) -> dict:
    """``{pts: (rgb frame, rotation)}`` for every wanted presentation timestamp (ascending), decoding forward from
    the nearest keyframe before each one (``seek=False``: from the start, in one pass). A wanted frame the decoder
    passes without producing (a seek that landed late, a dropped frame) raises ``LookupError``."""
    out: dict[int, tuple[np.ndarray, int]] = {}
    pending = set(wanted)
    frames = None
    position: int | None = None  # pts of the last decoded frame
    for w in wanted:
        if w not in pending:
            continue
        key = scan.keyframe_before(w)
        if seek and key is not None and key > int(scan.keyframes[0]) and (position is None or key > position):
            container.seek(key, stream=stream, backward=True)  # a keyframe between here and w: skip the gap
            frames, position = container.decode(stream), None
        elif frames is None:
            frames = container.decode(stream)
        for frame in frames:
            if frame.pts is None:
                continue
            if position is None and frame.pts > w:
                raise LookupError(f"decoding started at pts {frame.pts}, after the wanted {w}")
            position = frame.pts
            if position in pending:
                out[position] = (frame.to_ndarray(format="rgb24"), frame_rotation(path, frame))
                pending.discard(position)
            if position >= w:
                break
        if w in pending:
            raise LookupError(f"no decoded frame has pts {w} (last decoded: {position})")
    return out


def decode_pyav(path: str, times_fn: TimesFn) -> DecodedVideo:
    """Decode with PyAV: the frames a player shows at the target times (see the module docstring)."""
    import av

    scan = probe(path)
    timeline = scan.timeline
    targets, idx = _targets(path, times_fn, timeline)
    wanted = sorted({int(scan.pts[i]) for i in idx})
    got = None
    for seek in (True, False):  # a seek that lands wrong is redone by one pass from the start
        with av.open(path) as container:
            stream = container.streams[scan.index]
            try:
                got = _decode_pts(container, stream, scan, wanted, path, seek=seek)
                break
            except LookupError as e:
                if not seek:
                    t = (wanted[0] - scan.pts[0]) * float(scan.time_base)
                    raise VideoDecodeError(f"{path}: could not decode the frames at {t:.3f} s and after ({e})") from e
                log.debug("%s: seeking missed a frame (%s); decoding from the start", path, e)
    rotations = {r for _, r in got.values()}
    if len(rotations) > 1:
        raise VideoDecodeError(f"{path}: the rotation tag changes between frames ({sorted(rotations)})")
    rotation = rotations.pop()
    frames = rotate_frames(np.stack([got[int(scan.pts[i])][0] for i in idx]), rotation)
    return DecodedVideo(
        frames, timeline.times[idx].tolist(), idx, timeline.duration, timeline.num_frames, "pyav", rotation,
        scan.sample_aspect,
    )  # fmt: skip


def decode_torchcodec(path: str, times_fn: TimesFn) -> DecodedVideo:
    """Decode with torchcodec at the timeline PyAV reads; every returned timestamp is checked."""
    from torchcodec.decoders import VideoDecoder

    scan = probe(path)
    timeline = scan.timeline
    targets, idx = _targets(path, times_fn, timeline)
    tb = float(scan.time_base)
    wanted = [int(scan.pts[i]) for i in idx]
    # Ask for the middle of each frame's display interval: a frame's exact start may round to the one before.
    ends = np.append(scan.pts[1:], scan.end)
    mids = [(int(scan.pts[i]) + int(ends[i])) / 2 * tb for i in idx]
    dec = VideoDecoder(path, stream_index=scan.index, seek_mode="exact")
    batch = dec.get_frames_played_at(mids)
    for p, g, t in zip(wanted, batch.pts_seconds.tolist(), targets):
        if abs(g - p * tb) > min(tb, 1e-3):
            raise VideoDecodeError(
                f"{path}: torchcodec returned the frame at {g:.4f} s for the one at {p * tb:.4f} s (target {t:.3f} s)"
            )
    rotation, _ = display_tags(path, scan.index)  # rejects mirrored or odd matrices
    frames = batch.data.permute(0, 2, 3, 1).numpy()
    if rotation and not getattr(dec.metadata, "rotation", None):  # torchcodec 0.17 turns frames upright itself
        frames = rotate_frames(frames, rotation)
    return DecodedVideo(
        frames, timeline.times[idx].tolist(), idx, timeline.duration, timeline.num_frames, "torchcodec", rotation,
        scan.sample_aspect,
    )  # fmt: skip


def decode_decord(path: str, times_fn: TimesFn) -> DecodedVideo:
    """Decode with decord at decord's own frame list and timestamps (not checked; see the module docstring)."""
    import decord

    vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    total = len(vr)
    if total <= 0:
        raise VideoDecodeError(f"{path}: decord reports {total} frames")
    stamps = vr.get_frame_timestamp(list(range(total)))  # [N, 2] start and end (s) of each frame
    start = float(stamps[0, 0])
    times = stamps[:, 0] - start
    if total > 1 and not np.all(np.diff(times) > 0):
        raise VideoDecodeError(f"{path}: decord's frame timestamps are not increasing")
    timeline = VideoTimeline(times.astype(np.float64), float(stamps[-1, 1]) - start)
    targets, idx = _targets(path, times_fn, timeline)
    rotation, sar = display_tags(path)  # decord 0.6 turns frames upright itself; this rejects what it cannot
    frames = vr.get_batch(idx).asnumpy()
    return DecodedVideo(frames, timeline.times[idx].tolist(), idx, timeline.duration, total, "decord", rotation, sar)


BACKENDS: dict[str, Callable[[str, TimesFn], DecodedVideo]] = {
    "pyav": decode_pyav,
    "torchcodec": decode_torchcodec,
    "decord": decode_decord,
}

#: The default backend: accurate on every case of the ffmpeg-made matrix (``docs/data.md``).
DEFAULT_BACKEND = "pyav"


def decode_video(
    path: str | os.PathLike, times_fn: TimesFn, backend: str = DEFAULT_BACKEND, fallback: str | None = None
) -> DecodedVideo:
    """Decode the frames on screen at the times ``times_fn`` picks from ``path``'s timeline with ``backend``; on
    failure try ``fallback``.

    Raises :class:`VideoDecodeError` naming the file when it is missing, empty, or no backend can read it.
    """
    path = str(path)
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; choose one of {sorted(BACKENDS)}")
    p = Path(path)
    if not p.is_file():
        raise VideoDecodeError(f"{path}: video file not found")
    if p.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: video file is empty")
    order = [backend] + ([fallback] if fallback and fallback != backend else [])
    errors = []
    for name in order:
        try:
            return BACKENDS[name](path, times_fn)
        except ImportError as e:
            errors.append(f"{name}: not installed ({e})")
        except VideoDecodeError as e:
            errors.append(f"{name}: {str(e).removeprefix(f'{path}: ')}")
        except Exception as e:  # noqa: BLE001 - backends raise many types on corrupt files
            errors.append(f"{name}: {type(e).__name__}: {e}")
        if name != order[-1]:
            log.debug("backend %s failed on %s, falling back: %s", name, path, errors[-1])
    raise VideoDecodeError(f"{path}: could not decode video ({'; '.join(errors)})")

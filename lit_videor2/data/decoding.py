"""Video decoding behind one small interface, with one wrapper per backend.

A backend opens a file once, reports its frame count and frame rate, asks the caller which frames it
wants (a function of those two numbers), and returns exactly those frames as ``uint8 [T, H, W, 3]``.
``decord`` is the default; ``pyav`` is the automatic fallback when decord is missing or fails on a file;
``torchcodec`` is optional (it needs a CUDA build of torch and the system FFmpeg libraries).

A rotation tag (the display matrix phones write into the MP4 ``tkhd`` box) is applied by ``decord`` and ``pyav``:
frames come upright, as players show them, with height and width swapped for 90 and 270 degrees. decord 0.6 turns
the frames itself; the tag is still read once per video with PyAV so that a mirrored matrix or an angle that is not
a multiple of 90 degrees (which decord silently mishandles) fails clearly.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lit_videor2.errors import UserError

log = logging.getLogger(__name__)

IndexFn = Callable[[int, float], list[int]]
"""``(total_frames, native_fps) -> frame indices to decode``."""


class VideoDecodeError(UserError, RuntimeError):
    """A video could not be decoded; the message names the file and the backend(s) tried."""


@dataclass
class DecodedVideo:
    """Frames decoded from one video, with where they came from."""

    frames: np.ndarray
    """``uint8 [T, H, W, 3]``."""
    indices: list[int]
    """Index of each frame in the source video."""
    native_fps: float
    total_frames: int
    backend: str
    rotation: int = 0
    """Counter-clockwise degrees (0, 90, 180, 270) the stored frames were turned by to stand upright."""

    @property
    def duration(self) -> float:
        return self.total_frames / self.native_fps

    @property
    def times(self) -> list[float]:
        return [i / self.native_fps for i in self.indices]


def _check_indices(path: str, indices: list[int], total: int) -> None:
    if not indices:
        raise VideoDecodeError(f"{path}: no frames selected (video has {total} frames)")
    if min(indices) < 0 or max(indices) >= total:
        raise VideoDecodeError(f"{path}: frame indices {indices[0]}..{indices[-1]} out of range for {total} frames")


#: Largest gap (seconds) between a frame's real time and ``index / fps`` before a video counts as variable-rate.
VFR_TOLERANCE_S = 0.5


def check_constant_rate(path: str, indices: list[int], times: list[float], fps: float, first: float = 0.0) -> None:
    """Raise :class:`VideoDecodeError` when the real times of the sampled frames are not ``index / fps``.

    Frame times downstream (``second_per_grid_ts``, timestamps in prompts, TAR) are ``index / fps``; a variable
    frame rate video would get wrong times silently, so it fails clearly instead (tolerance: the larger of
    :data:`VFR_TOLERANCE_S` and 1.5 frame intervals).
    """
    tol = max(VFR_TOLERANCE_S, 1.5 / fps)
    for idx, t in zip(indices, times):
        if abs((t - first) - idx / fps) > tol:
            raise VideoDecodeError(
                f"{path}: variable frame rate: frame {idx} is at {t - first:.2f} s but {idx} / {fps:g} fps = "
                f"{idx / fps:.2f} s, so frame times would be wrong; re-encode at a constant rate "
                f"(e.g. ffmpeg -i IN -vf fps={max(1, round(fps))} OUT)"
            )


def rotation_from_display_matrix(matrix: list[int] | np.ndarray) -> int:
    """Counter-clockwise degrees (0, 90, 180 or 270) to turn stored frames by so they show as players show them.

    ``matrix`` is FFmpeg's display matrix (9 ints, row-major ``[a, b, u, c, d, v, x, y, w]``, ``a..d`` in 16.16
    fixed point), the one in the MP4/MOV ``tkhd`` box. It maps a stored pixel ``(p, q)`` to
    ``(a p + c q + x, b p + d q + y)``; the angle is ``-atan2(b, a)``, as FFmpeg's ``av_display_rotation_get``
    computes it. Raises ``ValueError`` for a mirrored or singular matrix or an angle that is not a multiple of 90.
    """
    a, b, c, d = (float(matrix[i]) / (1 << 16) for i in (0, 1, 3, 4))
    if a * d - b * c <= 0:
        raise ValueError(f"mirrored or singular display matrix {[int(v) for v in matrix]}")
    degrees = -math.degrees(math.atan2(b, a))
    quarter = round(degrees / 90)
    if abs(degrees - 90 * quarter) > 1.0:
        raise ValueError(f"rotation of {degrees:.1f} degrees is not a multiple of 90")
    return (90 * quarter) % 360


def frame_rotation(path: str, frame) -> int:
    """The rotation (see :func:`rotation_from_display_matrix`) of a decoded PyAV frame; 0 when it has none."""
    for sd in frame.side_data:
        if getattr(sd.type, "name", str(sd.type)).endswith("DISPLAYMATRIX"):
            matrix = np.frombuffer(bytes(sd), dtype="=i4")
            if matrix.size < 9:
                raise VideoDecodeError(f"{path}: display matrix has {matrix.size * 4} bytes, expected 36")
            try:
                return rotation_from_display_matrix(matrix[:9])
            except ValueError as e:
                raise VideoDecodeError(f"{path}: cannot apply the rotation tag: {e}") from e
    return 0


def probe_rotation(path: str) -> int:
    """The rotation tag of ``path``'s first video stream, read with PyAV from its first frame (decord hides it).

    When PyAV cannot read the file, logs a warning and returns 0 (frames as stored).
    """
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1  # one frame: threads only add latency
            frame = next(container.decode(stream), None)
    except Exception as e:  # noqa: BLE001 - PyAV raises many types on files only decord reads
        log.warning(
            "%s: PyAV cannot read the rotation tag (%s: %s); frames are used as stored", path, type(e).__name__, e
        )
        return 0
    return frame_rotation(path, frame) if frame is not None else 0


def rotate_frames(frames: np.ndarray, rotation: int) -> np.ndarray:
    """``uint8 [T, H, W, C]`` turned ``rotation`` degrees counter-clockwise (``[T, W, H, C]`` for 90 and 270)."""
    if rotation % 360 == 0:
        return frames
    return np.ascontiguousarray(np.rot90(frames, k=(rotation // 90) % 4, axes=(1, 2)))


def decode_decord(path: str, index_fn: IndexFn) -> DecodedVideo:
    """Decode with decord (fast random access); decord applies rotation tags itself."""
    import decord

    vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    total, fps = len(vr), float(vr.get_avg_fps())
    if total <= 0 or fps <= 0:
        raise VideoDecodeError(f"{path}: decord reports {total} frames at {fps} fps")
    indices = index_fn(total, fps)
    _check_indices(path, indices, total)
    stamps = vr.get_frame_timestamp([0, *indices])[:, 0]  # start time (s) of each frame
    check_constant_rate(path, list(indices), [float(t) for t in stamps[1:]], fps, float(stamps[0]))
    rotation = probe_rotation(path)  # decord 0.6 already turns the frames upright; this rejects what it cannot
    frames = vr.get_batch(indices).asnumpy()
    return DecodedVideo(frames, list(indices), fps, total, "decord", rotation)


def decode_pyav(path: str, index_fn: IndexFn) -> DecodedVideo:
    """Decode with PyAV in one sequential pass, keeping only the wanted frames."""
    import av

    with av.open(path) as container:
        if not container.streams.video:
            raise VideoDecodeError(f"{path}: no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        total = stream.frames
        if total <= 0 and stream.duration and stream.time_base and fps > 0:
            total = int(round(float(stream.duration * stream.time_base) * fps))
        if total <= 0 and fps > 0:
            # Container does not say: count by demuxing packets (cheap, no decoding).
            total = sum(1 for p in container.demux(stream) if p.size > 0)
            container.seek(0)
        if total <= 0 or fps <= 0:
            raise VideoDecodeError(f"{path}: PyAV reports {total} frames at {fps} fps")
        indices = index_fn(total, fps)
        _check_indices(path, indices, total)
        wanted = {idx: pos for pos, idx in enumerate(indices)}
        out: list[np.ndarray | None] = [None] * len(indices)
        times: list[float] = [0.0] * len(indices)
        first: float | None = None
        rotation = 0
        last = max(indices)
        for i, frame in enumerate(container.decode(stream)):
            if first is None:
                first = float(frame.time or 0.0)
                rotation = frame_rotation(path, frame)
            if i in wanted:
                out[wanted[i]] = frame.to_ndarray(format="rgb24")
                times[wanted[i]] = float(frame.time if frame.time is not None else i / fps)
            if i >= last:
                break
    missing = [indices[p] for p, f in enumerate(out) if f is None]
    if missing:
        # The header over-reported the frame count. Repeating a decoded frame would misstate its time,
        # so report the file instead.
        raise VideoDecodeError(f"{path}: PyAV could not decode frames {missing[:5]} (header claims {total})")
    check_constant_rate(path, list(indices), times, fps, first or 0.0)
    return DecodedVideo(rotate_frames(np.stack(out), rotation), list(indices), fps, total, "pyav", rotation)


def decode_torchcodec(path: str, index_fn: IndexFn) -> DecodedVideo:
    """Decode with torchcodec (optional; needs system FFmpeg). Rotation tags are not handled here (untested)."""
    from torchcodec.decoders import VideoDecoder

    dec = VideoDecoder(path)
    total, fps = int(dec.metadata.num_frames), float(dec.metadata.average_fps)
    indices = index_fn(total, fps)
    _check_indices(path, indices, total)
    frames = dec.get_frames_at(indices).data.permute(0, 2, 3, 1).numpy()
    return DecodedVideo(frames, list(indices), fps, total, "torchcodec")


BACKENDS: dict[str, Callable[[str, IndexFn], DecodedVideo]] = {
    "decord": decode_decord,
    "pyav": decode_pyav,
    "torchcodec": decode_torchcodec,
}


def decode_video(
    path: str | os.PathLike, index_fn: IndexFn, backend: str = "decord", fallback: str | None = "pyav"
) -> DecodedVideo:
    """Decode the frames ``index_fn`` selects from ``path`` with ``backend``; on failure try ``fallback``.

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
            return BACKENDS[name](path, index_fn)
        except ImportError as e:
            errors.append(f"{name}: not installed ({e})")
        except VideoDecodeError as e:
            errors.append(f"{name}: {e}")
        except Exception as e:  # noqa: BLE001 - backends raise many types on corrupt files
            errors.append(f"{name}: {type(e).__name__}: {e}")
        if name != order[-1]:
            log.debug("backend %s failed on %s, falling back: %s", name, path, errors[-1])
    raise VideoDecodeError(f"{path}: could not decode video ({'; '.join(errors)})")

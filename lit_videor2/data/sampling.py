"""Frame sampling math: which frames to decode and at what size. Pure functions, no I/O.

Semantics follow the reference (qwen-vl-utils: sample at ``fps`` frames per second, clamp the count to
``[min_frames, max_frames]``, round to the vision encoder's temporal patch, take evenly spaced frames, resize each frame so that
height and width are multiples of the patch-merge factor and the pixel count lies in
``[min_pixels, max_pixels]``) with one deliberate difference: a video too short to supply ``min_frames``
distinct frames is **not** padded with duplicated frames. We return the distinct frames it has and the
timestamps they really have, so the fps handed to the processor (and therefore ``second_per_grid_ts``
and Qwen3-VL's timestamp tokens) stays true. Frames are chosen by time, not by index (qwen-vl-utils takes
indices ``linspace(0, total - 1, n)``, which assumes a constant frame rate): see :func:`sample_times`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lit_videor2.errors import UserError


@dataclass(frozen=True)
class FrameSampling:
    """How frames are sampled from a video and sized for the vision encoder (reference defaults)."""

    fps: float = 2.0
    """Target sampling rate in frames per second."""
    min_frames: int = 4
    """Lower bound on the number of frames (never met by duplicating frames)."""
    max_frames: int = 32
    """Upper bound on the number of frames; longer videos are sampled more sparsely."""
    min_pixels: int = 100_352
    """Minimum pixels per frame after resizing (128·28·28)."""
    max_pixels: int = 151_200
    """Maximum pixels per frame after resizing."""

    def __post_init__(self) -> None:
        if self.fps <= 0:
            raise ValueError(f"FrameSampling.fps must be > 0, got {self.fps}")
        if not 1 <= self.min_frames <= self.max_frames:
            raise ValueError(
                f"FrameSampling needs 1 <= min_frames <= max_frames, got {self.min_frames}, {self.max_frames}"
            )
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(
                f"FrameSampling needs 0 < min_pixels <= max_pixels, got {self.min_pixels}, {self.max_pixels}"
            )


def num_frames_to_sample(total_frames: int, native_fps: float, sampling: FrameSampling, temporal_patch: int = 2) -> int:
    """Number of frames to take from a video of ``total_frames`` frames at ``native_fps``.

    ``round(duration · fps)`` clamped to ``[min_frames, max_frames]``, never more than the video has, and
    rounded down to a multiple of ``temporal_patch`` (at least one patch when the video has that many frames).
    """
    if total_frames <= 0:
        raise ValueError(f"video has no frames (total_frames={total_frames})")
    if native_fps <= 0:
        raise ValueError(f"video reports a non-positive frame rate ({native_fps})")
    duration = total_frames / native_fps
    n = round(duration * sampling.fps)
    n = min(max(n, sampling.min_frames), sampling.max_frames, total_frames)
    n = (n // temporal_patch) * temporal_patch
    return max(n, min(temporal_patch, total_frames))


def sample_times(total_frames: int, duration: float, sampling: FrameSampling, temporal_patch: int = 2) -> list[float]:
    """Target times (seconds from the first shown frame) of the frames to take: evenly spaced, starting at 0.

    ``n`` = :func:`num_frames_to_sample` at the video's average rate; time ``i`` of ``n`` is ``i · duration / n``, so
    the targets are ``duration / n`` apart and the frame on screen at each is taken. On a constant-rate video that is
    frame ``floor(i · total_frames / n)``: distinct frames, evenly spaced.
    """
    if duration <= 0:
        raise ValueError(f"video has a non-positive duration ({duration})")
    n = num_frames_to_sample(total_frames, total_frames / duration, sampling, temporal_patch)
    return [i * duration / n for i in range(n)]


#: Largest long-side / short-side ratio the Qwen processors accept (their ``smart_resize`` raises above it).
MAX_ASPECT_RATIO = 200


class FrameSizeError(UserError, ValueError):
    """A video whose frame shape cannot be sized for the vision encoder (aspect ratio, pixel bounds)."""


def resized_hw(height: int, width: int, sampling: FrameSampling, factor: int = 28) -> tuple[int, int]:
    """Target ``(height, width)``: multiples of ``factor`` with pixel count in ``[min_pixels, max_pixels]``.

    The Qwen processors' ``smart_resize`` rule, with one fix: ``smart_resize`` keeps each side at least ``factor``,
    so a very tall or wide frame (16×2000 against ``max_pixels`` 3,136 gives 28×616 = 17,248 px) overshoots
    ``max_pixels``; the long side is then cut to the largest multiple of ``factor`` that fits. The collator pins the
    processor to this size, so the processor keeps it. Raises :class:`FrameSizeError` for an aspect ratio over
    :data:`MAX_ASPECT_RATIO` (the processors reject it) or bounds no multiple of ``factor`` can meet.
    """
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    if height <= 0 or width <= 0:
        raise FrameSizeError(f"frame size {width}x{height} (width x height) is empty")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise FrameSizeError(
            f"frame size {width}x{height} (width x height) has aspect ratio "
            f"{max(height, width) / min(height, width):.1f}:1; the Qwen-VL processors take at most "
            f"{MAX_ASPECT_RATIO}:1 (crop or pad the video)"
        )
    h, w = smart_resize(height, width, factor=factor, min_pixels=sampling.min_pixels, max_pixels=sampling.max_pixels)
    if h * w > sampling.max_pixels:
        short, long = min(h, w), max(h, w)
        long = (sampling.max_pixels // short) // factor * factor
        if long < factor or short * long < sampling.min_pixels:
            raise FrameSizeError(
                f"frame size {width}x{height} (width x height): no multiple of {factor} per side gives "
                f"{sampling.min_pixels}..{sampling.max_pixels} pixels (raise FrameSampling.max_pixels)"
            )
        h, w = (short, long) if height <= width else (long, short)
    return h, w


def format_hms(seconds: float) -> str:
    """``HH:MM:SS`` for a time in seconds (floored), as burned into frames by the reference."""
    s = int(math.floor(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"

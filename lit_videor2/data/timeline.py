"""A video's timeline as a player shows it, and which shown frame is on screen at a given time. Pure, no I/O.

Times are seconds from the first frame a player shows (frames an MP4 edit list hides are not shown; a stream whose
clock starts late, as MPEG-TS and fragmented MP4 do, starts at 0 here). A frame is on screen from its presentation
time until the next frame's, so the frame shown at ``t`` is the last one whose time is at or before ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Slack (seconds) when comparing a target time with presentation times computed in floating point.
TIME_EPS = 1e-6


@dataclass(frozen=True)
class VideoTimeline:
    """The shown frames of one video stream: presentation times and the stream's duration."""

    times: np.ndarray
    """``float64 [N]``: presentation time of each shown frame, seconds from the first, strictly increasing."""
    duration: float
    """Seconds from the first shown frame to the end of the last one."""

    def __post_init__(self) -> None:
        if len(self.times) == 0:
            raise ValueError("a timeline needs at least one frame")
        if self.duration <= 0:
            raise ValueError(f"a timeline needs a positive duration, got {self.duration}")

    @property
    def num_frames(self) -> int:
        return len(self.times)

    @property
    def average_fps(self) -> float:
        """Shown frames per second over the whole stream (the nominal rate of a constant-rate video)."""
        return self.num_frames / self.duration

    def indices_at(self, targets: list[float] | np.ndarray) -> list[int]:
        """Index of the frame on screen at each target time (clamped to the first and last shown frame)."""
        t = np.asarray(targets, dtype=np.float64)
        idx = np.searchsorted(self.times, t + TIME_EPS, side="right") - 1
        return np.clip(idx, 0, self.num_frames - 1).tolist()


def timeline_from_pts(pts: list[int] | np.ndarray, end: int, time_base: float) -> tuple[VideoTimeline, int]:
    """Timeline of frames with presentation timestamps ``pts`` (stream units; any order, duplicates dropped) ending
    at ``end``; also returns the first pts (the origin). ``time_base``: seconds per unit."""
    p = np.unique(np.asarray(pts, dtype=np.int64))
    first = int(p[0])
    times = (p - first).astype(np.float64) * time_base
    return VideoTimeline(times, max(end - first, 1) * time_base), first

"""Frame sampling math: counts, clamps, temporal-patch rounding, no duplicated frames, true spacing, sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lit_videor2.data.sampling import FrameSampling, format_hms, num_frames_to_sample, resized_hw, sample_times
from lit_videor2.data.timeline import VideoTimeline, timeline_from_pts


def cfr_indices(total: int, native_fps: float, sampling: FrameSampling) -> tuple[list[float], list[int]]:
    """Target times, and the frame on screen at each, of a constant-rate video of ``total`` frames."""
    timeline = VideoTimeline(np.arange(total) / native_fps, total / native_fps)
    targets = sample_times(total, timeline.duration, sampling)
    return targets, timeline.indices_at(targets)


REF = FrameSampling()  # reference defaults: 2 fps, 4..32 frames, 100,352..151,200 pixels


def test_defaults_are_the_reference_ones():
    assert (REF.fps, REF.min_frames, REF.max_frames, REF.min_pixels, REF.max_pixels) == (2.0, 4, 32, 100_352, 151_200)


@pytest.mark.parametrize(
    "total, fps, sampling, expected",
    [
        (300, 30.0, REF, 20),  # 10 s at 2 fps
        (3000, 30.0, REF, 32),  # 100 s: clamped to max_frames
        (30, 30.0, REF, 4),  # 1 s -> 2 frames, raised to min_frames=4 (30 distinct frames exist)
        (3, 30.0, REF, 2),  # 3 frames < min_frames: no duplication, rounded down to one temporal patch
        (1, 30.0, REF, 1),  # a one-frame video gives its one frame, never a duplicate
        (70, 10.0, FrameSampling(fps=1.0, min_frames=2), 6),  # 7 frames -> 6 (multiple of temporal patch 2)
        (75, 25.0, FrameSampling(fps=1.0, min_frames=1), 2),  # round(3) = 3 -> 2
        (250, 25.0, FrameSampling(fps=0.5, min_frames=1, max_frames=3), 2),  # max 3 -> 2 after rounding
    ],
)
def test_num_frames_counts_and_clamps(total, fps, sampling, expected):
    assert num_frames_to_sample(total, fps, sampling) == expected


def test_temporal_patch_one_keeps_odd_counts():
    assert num_frames_to_sample(70, 10.0, FrameSampling(fps=1.0, min_frames=1), temporal_patch=1) == 7


@pytest.mark.parametrize("total", [1, 2, 3, 5, 7, 8, 31, 33, 64, 100, 301, 1000, 4321])
@pytest.mark.parametrize("native_fps", [7.0, 24.0, 29.97, 60.0])
@pytest.mark.parametrize("sampling", [REF, FrameSampling(fps=0.5, min_frames=8, max_frames=16)])
def test_frames_at_the_target_times_are_distinct_and_evenly_spaced(total, native_fps, sampling):
    targets, idx = cfr_indices(total, native_fps, sampling)
    n = len(idx)
    assert targets == pytest.approx([k * total / native_fps / n for k in range(n)])
    assert n == num_frames_to_sample(total, native_fps, sampling)
    assert n <= total and idx[0] == 0 and idx[-1] < total
    assert all(b > a for a, b in zip(idx, idx[1:])), f"duplicated or unsorted frames: {idx}"
    assert n % 2 == 0 or total < 2
    # On a constant-rate video the frame on screen at target i is floor(i * total / n): every gap is floor or ceil
    # of total / n, so the real spacing of the frames is duration / n, the interval the processor is told.
    assert idx == [k * total // n for k in range(n)]
    step = total / n
    assert all(math.floor(step) <= b - a <= math.ceil(step) for a, b in zip(idx, idx[1:]))
    assert all(abs(i - k * step) < 1 for k, i in enumerate(idx))
    sampled_fps = n / total * native_fps
    times = [i / native_fps for i in idx]
    if n > 1:
        mean_gap = (times[-1] - times[0]) / (n - 1)
        assert mean_gap == pytest.approx(1 / sampled_fps, abs=1 / native_fps / (n - 1) + 1e-9)


def test_short_video_is_not_padded_with_duplicates():
    # 6 frames at 30 fps (0.2 s) with min_frames=4 at 2 fps: the reference would emit 4 frames with repeats
    # and claim 2 fps; we take 4 distinct frames and their real times.
    targets, idx = cfr_indices(6, 30.0, REF)
    assert idx == [0, 1, 3, 4]
    assert targets == pytest.approx([0, 1.5 / 30, 3 / 30, 4.5 / 30])


def test_timeline_shows_the_last_frame_at_or_before_a_time():
    # A variable-rate stream: frames at 0, 0.1, 0.15, 0.4 s (pts in 1/1000 s, given out of order), ending at 0.5 s.
    timeline, first = timeline_from_pts([1150, 1000, 1400, 1100], end=1500, time_base=1 / 1000)
    assert first == 1000 and timeline.times.tolist() == pytest.approx([0, 0.1, 0.15, 0.4])
    assert timeline.duration == pytest.approx(0.5) and timeline.average_fps == pytest.approx(8)
    assert timeline.indices_at([0, 0.0999, 0.1, 0.3, 0.45, 7, -1]) == [0, 0, 1, 2, 3, 3, 0]


@pytest.mark.parametrize("hw", [(64, 64), (224, 224), (480, 640), (1080, 1920), (100, 3000), (37, 53), (720, 1280)])
@pytest.mark.parametrize("factor", [28, 32])
def test_resized_hw_multiple_of_factor_within_pixel_bounds(hw, factor):
    h, w = resized_hw(*hw, REF, factor=factor)
    assert h % factor == 0 and w % factor == 0
    # smart_resize may overshoot max_pixels by less than one factor-row/column of rounding; it never does here
    assert REF.min_pixels <= h * w <= REF.max_pixels, (hw, h, w)
    assert abs(h / w - hw[0] / hw[1]) / (hw[0] / hw[1]) < 0.2 or min(hw) * 20 < max(hw)  # aspect roughly kept


def test_resized_hw_keeps_a_size_that_already_fits():
    assert resized_hw(56, 56, FrameSampling(min_pixels=56 * 56, max_pixels=56 * 56)) == (56, 56)
    assert resized_hw(336, 392, REF) == (336, 392)  # 131,712 px, multiples of 28


@pytest.mark.parametrize(
    "kwargs", [dict(fps=0), dict(min_frames=0), dict(min_frames=9, max_frames=8), dict(min_pixels=10, max_pixels=5)]
)
def test_invalid_sampling_rejected(kwargs):
    with pytest.raises(ValueError, match="FrameSampling"):
        FrameSampling(**kwargs)


def test_empty_or_bad_video_metadata_rejected():
    with pytest.raises(ValueError, match="no frames"):
        num_frames_to_sample(0, 30.0, REF)
    with pytest.raises(ValueError, match="frame rate"):
        num_frames_to_sample(10, 0.0, REF)


@pytest.mark.parametrize("t, s", [(0, "00:00:00"), (59.99, "00:00:59"), (61, "00:01:01"), (3725.5, "01:02:05")])
def test_format_hms(t, s):
    assert format_hms(t) == s

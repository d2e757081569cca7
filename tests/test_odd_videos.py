"""Odd videos: a codec matrix made here with PyAV (tiny clips), very tall/wide frames, odd frame-rate metadata.

The matrix made with the ffmpeg command line, as users' files are made, is ``tests/test_video_matrix.py``.

Every frame ``i`` of a clip is a flat grey of value ``16 + 28 i`` (with a white top-left marker), so a decoded frame
says which source frame it is; each case decodes to the right frames at the right times, or fails clearly.
"""

from __future__ import annotations

import fractions
from pathlib import Path

import numpy as np
import pytest

from bench.video_matrix import ONE, W30, clockwise_matrix, set_display_matrix
from lit_videor2.data.dataset import SkippedSample, VideoDataset
from lit_videor2.data.decoding import VideoDecodeError, decode_video
from lit_videor2.data.frames import FrameLoader
from lit_videor2.data.records import VideoRecord
from lit_videor2.data.sampling import FrameSampling, FrameSizeError, resized_hw

av = pytest.importorskip("av")


def _value(i: int) -> int:
    return 16 + 28 * i


def make_clip(path: Path, codec: str, n: int = 8, fps: int = 8, w: int = 32, h: int = 32, **kw) -> Path:
    """Encode ``n`` frames with ``codec``; ``pts_ms`` gives explicit frame times (variable frame rate)."""
    try:
        av.codec.Codec(codec, "w")
    except Exception:  # noqa: BLE001
        pytest.skip(f"encoder {codec} not in this PyAV build")
    pts_ms = kw.pop("pts_ms", None)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps, options=kw.pop("options", {}))
        s.width, s.height, s.pix_fmt = w, h, kw.pop("pix_fmt", "yuv420p")
        if pts_ms is not None:
            s.codec_context.time_base = s.time_base = fractions.Fraction(1, 1000)
        for i in range(n):
            img = np.full((h, w, 3), _value(i), np.uint8)
            img[: h // 4, : w // 4] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], fractions.Fraction(1, 1000)
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


ALL = lambda timeline: timeline.times.tolist()  # noqa: E731 - times function: every shown frame


def _check(dec, n: int, fps: float, times: list[float] | None = None) -> None:
    assert dec.indices == list(range(n)) and dec.num_frames == n
    assert dec.duration == pytest.approx(n / fps)
    assert dec.times == pytest.approx(times or [i / fps for i in range(n)], abs=1e-6)
    for i, frame in zip(dec.indices, dec.frames):
        h, w = frame.shape[:2]
        assert abs(float(frame[h // 2 :, w // 2 :].mean()) - _value(i)) < 8, i  # the right source frame
        assert frame[: h // 8, : w // 8].mean() > 200  # marker top-left: orientation as stored


# name, encoder, container, extra options, backends that read it (decord's bundled FFmpeg has no AV1 decoder)
MATRIX = [
    ("h264-bframes", "libx264", "mp4", {"options": {"bf": "2"}}, ("decord", "pyav")),
    ("hevc", "libx265", "mp4", {"options": {"x265-params": "log-level=error"}}, ("decord", "pyav")),
    ("vp9", "libvpx-vp9", "webm", {}, ("decord", "pyav")),
    ("av1", "libsvtav1", "mkv", {"w": 64, "h": 64}, ("pyav",)),
    ("mjpeg", "mjpeg", "avi", {"pix_fmt": "yuvj420p"}, ("decord", "pyav")),
]


@pytest.mark.parametrize("name, codec, ext, kw, readers", MATRIX, ids=[m[0] for m in MATRIX])
def test_codec_matrix(tmp_path, name, codec, ext, kw, readers):
    clip = make_clip(tmp_path / f"{name}.{ext}", codec, **kw)
    for backend in ("decord", "pyav"):
        if backend in readers:
            _check(decode_video(clip, ALL, backend, fallback=None), 8, 8.0)
        else:
            with pytest.raises(VideoDecodeError, match=rf"{name}.{ext}: could not decode video \({backend}:"):
                decode_video(clip, ALL, backend, fallback=None)
    dec = decode_video(clip, ALL)  # the default (PyAV) reads every codec of the matrix
    _check(dec, 8, 8.0)
    assert dec.backend == "pyav"


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_one_frame_clip(tmp_path, backend):
    clip = make_clip(tmp_path / "one.mp4", "libx264", n=1)
    _check(decode_video(clip, ALL, backend, fallback=None), 1, 8.0)
    frames = FrameLoader(FrameSampling(min_frames=2, max_frames=8, min_pixels=784, max_pixels=3136))(clip)
    assert frames.times == [0.0] and len(frames.frames) == 1  # one real frame, never a duplicated second one


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_absurd_fps_metadata(tmp_path, backend):
    clip = make_clip(tmp_path / "fast.mp4", "libx264", fps=90000)  # 8 frames claimed over 89 µs
    _check(decode_video(clip, ALL, backend, fallback=None), 8, 90000.0)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_frame_rate_metadata_is_not_used(tmp_path, backend, monkeypatch):
    """Times come from the frames' timestamps: a container that reports 0 fps or none still gives the right times."""
    clip = make_clip(tmp_path / "zero.mp4", "libx264")
    if backend == "decord":  # a container that reports 0 fps (simulated: the encoders always write a rate)
        import decord

        monkeypatch.setattr(decord.VideoReader, "get_avg_fps", lambda self: 0.0)
    else:
        monkeypatch.setattr(type(av.open(str(clip)).streams.video[0]), "average_rate", property(lambda s: None))
        monkeypatch.setattr(type(av.open(str(clip)).streams.video[0]), "guessed_rate", property(lambda s: None))
    _check(decode_video(clip, ALL, backend, fallback=None), 8, 8.0)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_variable_frame_rate_reads_real_times(tmp_path, backend):
    """A variable-rate clip is read, not refused: each frame at its own timestamp, the frame on screen at a target."""
    pts_ms = [0, 100, 150, 400, 450, 1900, 1950, 2000]
    clip = make_clip(tmp_path / "vfr.mkv", "libx264", pts_ms=pts_ms)
    dec = decode_video(clip, ALL, backend, fallback=None)
    assert dec.times == pytest.approx([t / 1000 for t in pts_ms])
    for i, frame in zip(dec.indices, dec.frames):
        h, w = frame.shape[:2]
        assert abs(float(frame[h // 2 :, w // 2 :].mean()) - _value(i)) < 8, i
    at = decode_video(clip, lambda tl: [0.3, 1.0, 1.92], backend, fallback=None)  # on screen: frames 2, 4, 5
    assert at.indices == [2, 4, 5] and at.times == pytest.approx([0.15, 0.45, 1.9])


ROTATIONS = {  # clockwise degrees -> (matrix for a W x H stored picture, corner of the marker, FFmpeg's angle)
    90: (lambda w, h: clockwise_matrix(90, w, h), "top-right", -90),
    180: (lambda w, h: clockwise_matrix(180, w, h), "bottom-right", 180),
    270: (lambda w, h: clockwise_matrix(270, w, h), "bottom-left", 90),
}


def _corners(frame: np.ndarray) -> dict[str, float]:
    h, w = frame.shape[0] // 8, frame.shape[1] // 8
    return {
        "top-left": frame[:h, :w].mean(),
        "top-right": frame[:h, -w:].mean(),
        "bottom-left": frame[-h:, :w].mean(),
        "bottom-right": frame[-h:, -w:].mean(),
    }


@pytest.mark.parametrize("clockwise", [90, 180, 270])
def test_rotation_tag_is_applied(tmp_path, clockwise):
    """A 64x32 clip tagged to show turned ``clockwise`` decodes upright, as players show it, with both backends."""
    matrix, corner, ffmpeg_angle = ROTATIONS[clockwise]
    clip = set_display_matrix(make_clip(tmp_path / f"rot{clockwise}.mp4", "libx264", w=64, h=32), matrix(64, 32))
    with av.open(str(clip)) as c:  # FFmpeg reads the patched box as a display matrix on the frames
        assert next(c.decode(c.streams.video[0])).rotation % 360 == ffmpeg_angle % 360
    shown = (64, 32) if clockwise in (90, 270) else (32, 64)
    for backend in ("decord", "pyav"):
        dec = decode_video(clip, ALL, backend, fallback=None)
        assert dec.frames.shape == (8, *shown, 3) and dec.frames.flags["C_CONTIGUOUS"], backend
        assert dec.rotation == (360 - clockwise) % 360  # counter-clockwise degrees applied
        assert dec.times == pytest.approx([i / 8 for i in range(8)])  # frame times unchanged
        for i, frame in zip(dec.indices, dec.frames):
            h, w = frame.shape[:2]
            assert abs(float(frame[h // 4 : -h // 4, w // 4 : -w // 4].mean()) - _value(i)) < 8, (backend, i)
            bright = [k for k, v in _corners(frame).items() if v > _value(i) + 20]  # the white marker
            assert bright == [corner], (backend, i, _corners(frame))
    loaded = FrameLoader(FrameSampling(min_frames=2, max_frames=4, min_pixels=784, max_pixels=3136))(clip)
    assert (loaded.frames.shape[-2] > loaded.frames.shape[-1]) == (clockwise != 180)  # resized from the shown size


def test_mirrored_or_odd_display_matrix_fails_clearly(tmp_path):
    clip = make_clip(tmp_path / "mirror.mp4", "libx264", n=2)
    set_display_matrix(clip, [-ONE, 0, 0, 0, ONE, 0, 32 * ONE, 0, W30])  # horizontal flip
    with pytest.raises(
        VideoDecodeError, match=r"mirror.mp4: could not decode video \(pyav: cannot apply the rotation tag: mirrored"
    ):
        decode_video(clip, ALL, "pyav", fallback=None)
    with pytest.raises(VideoDecodeError, match=r"mirror.mp4: could not decode video \(decord: .*mirrored"):
        decode_video(clip, ALL, "decord", fallback=None)  # decord alone would show it turned 180 degrees, not mirrored
    odd = make_clip(tmp_path / "odd.mp4", "libx264", n=2)
    set_display_matrix(odd, [46341, 46341, 0, -46341, 46341, 0, 0, 0, W30])  # 45 degrees clockwise
    with pytest.raises(VideoDecodeError, match=r"odd.mp4: .*rotation of -45.0 degrees is not a multiple of 90"):
        decode_video(odd, ALL, "decord", fallback=None)  # decord alone would ignore it


# ------------------------------------------------------------------------------------- very tall / wide


@pytest.mark.parametrize(
    "h, w, bounds, expected",
    [
        (16, 2000, (784, 3136), (28, 112)),  # smart_resize alone gives 28x616 = 17,248 px > 3,136
        (2000, 16, (784, 3136), (112, 28)),  # tall
        (16, 2000, (100_352, 151_200), (56, 2688)),  # reference bounds: within max_pixels
        (64, 64, (784, 3136), (56, 56)),  # ordinary frame: unchanged rule
        (480, 640, (784, 3136), (28, 56)),  # ordinary frame: unchanged rule
    ],
)
def test_resized_hw_respects_pixel_bounds(h, w, bounds, expected):
    got = resized_hw(h, w, FrameSampling(min_pixels=bounds[0], max_pixels=bounds[1]), 28)
    assert got == expected and bounds[0] <= got[0] * got[1] <= bounds[1] and got[0] % 28 == got[1] % 28 == 0


def test_aspect_ratio_over_200_is_a_clear_error():
    with pytest.raises(FrameSizeError, match=r"frame size 3216x16 .* aspect ratio 201.0:1; .* at most 200:1"):
        resized_hw(16, 3216, FrameSampling(), 28)


def test_wide_videos_through_the_dataset(tmp_path):
    small = FrameSampling(fps=1.0, min_frames=2, max_frames=4, min_pixels=784, max_pixels=3136)
    make_clip(tmp_path / "wide.mp4", "libx264", w=2000, h=16)
    make_clip(tmp_path / "wider.mp4", "libx264", w=3216, h=16)
    recs = [
        VideoRecord(id=v, video=f"{v}.mp4", question="q?", answer="A", source=f"f.json[{i}]")
        for i, v in enumerate(["wide", "wider"])
    ]
    ds = VideoDataset(recs, tmp_path, FrameLoader(small), on_error="skip")
    frames = ds[0].frames.frames  # [T, 3, H, W]
    assert frames.shape[-2] * frames.shape[-1] <= 3136
    skipped = ds[1]
    assert isinstance(skipped, SkippedSample) and "record 'wider' (f.json[1])" in skipped.reason
    assert "aspect ratio" in skipped.reason
    with pytest.raises(FrameSizeError, match=r"record 'wider' \(f.json\[1\]\).*aspect ratio"):
        VideoDataset(recs, tmp_path, FrameLoader(small), on_error="raise")[1]

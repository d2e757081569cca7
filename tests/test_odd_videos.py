"""Odd videos: a codec matrix made here with PyAV (tiny clips), very tall/wide frames, broken frame rates.

Every frame ``i`` of a clip is a flat grey of value ``16 + 28 i`` (with a white top-left marker), so a decoded frame
says which source frame it is; each case decodes to the right frames at the right times, or fails clearly.
"""

from __future__ import annotations

import fractions
from pathlib import Path

import numpy as np
import pytest

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
        if "rotate" in kw:
            s.metadata["rotate"] = str(kw.pop("rotate"))  # legacy tag; FFmpeg muxers turn it into a display matrix
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


ALL = lambda total, fps: list(range(total))  # noqa: E731 - index function: every frame


def _check(dec, n: int, fps: float) -> None:
    assert dec.indices == list(range(n)) and dec.total_frames == n
    assert dec.native_fps == pytest.approx(fps)
    assert dec.times == pytest.approx([i / fps for i in range(n)])
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
    dec = decode_video(clip, ALL)  # the default (decord, PyAV fallback) reads every codec of the matrix
    _check(dec, 8, 8.0)
    assert dec.backend == readers[0]


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_one_frame_clip(tmp_path, backend):
    clip = make_clip(tmp_path / "one.mp4", "libx264", n=1)
    _check(decode_video(clip, ALL, backend, fallback=None), 1, 8.0)
    frames = FrameLoader(FrameSampling(min_frames=2, max_frames=8, min_pixels=784, max_pixels=3136))(clip)
    assert frames.indices == [0] and frames.times == [0.0]  # one real frame, never a duplicated second one


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_absurd_fps_metadata(tmp_path, backend):
    clip = make_clip(tmp_path / "fast.mp4", "libx264", fps=90000)  # 8 frames claimed over 89 µs
    _check(decode_video(clip, ALL, backend, fallback=None), 8, 90000.0)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_zero_fps_metadata_fails_clearly(tmp_path, backend, monkeypatch):
    clip = make_clip(tmp_path / "zero.mp4", "libx264")
    if backend == "decord":  # a container that reports 0 fps (simulated: the encoders always write a rate)
        import decord

        monkeypatch.setattr(decord.VideoReader, "get_avg_fps", lambda self: 0.0)
    else:
        monkeypatch.setattr(type(av.open(str(clip)).streams.video[0]), "average_rate", property(lambda s: None))
        monkeypatch.setattr(type(av.open(str(clip)).streams.video[0]), "guessed_rate", property(lambda s: None))
    with pytest.raises(VideoDecodeError, match=r"zero.mp4: could not decode video .*0(\.0)? fps"):
        decode_video(clip, ALL, backend, fallback=None)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_variable_frame_rate_fails_clearly(tmp_path, backend):
    clip = make_clip(tmp_path / "vfr.mkv", "libx264", pts_ms=[0, 100, 150, 400, 450, 1900, 1950, 2000])
    with pytest.raises(VideoDecodeError, match=r"variable frame rate: frame 5 is at 1.90 s but 5 / 8 fps = 0.62 s"):
        decode_video(clip, ALL, backend, fallback=None)
    mild = make_clip(tmp_path / "jitter.mkv", "libx264", pts_ms=[0, 130, 250, 370, 500, 630, 750, 870])
    _check(decode_video(mild, ALL, backend, fallback=None), 8, 8.0)  # jitter within a frame is constant-rate


def test_rotation_tag_is_not_applied(tmp_path):
    """A rotation tag is ignored by both backends: frames come as stored (documented in docs/data.md)."""
    clip = make_clip(tmp_path / "rot.mp4", "libx264", w=64, h=32, rotate=90)
    with av.open(str(clip)) as c:
        stream = c.streams.video[0]
        tagged = "rotate" in stream.metadata or getattr(next(c.decode(stream)), "rotation", 0)
    if not tagged:
        pytest.skip("this FFmpeg build drops the rotate tag on write; no rotated clip to test")
    for backend in ("decord", "pyav"):
        dec = decode_video(clip, ALL, backend, fallback=None)
        assert dec.frames.shape[1:3] == (32, 64)
        _check(dec, 8, 8.0)


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

"""Decoding backends on generated videos: frames at known times show the scene; fallback; bad files."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from lit_videor2.data import decoding
from lit_videor2.data.decoding import VideoDecodeError, decode_video
from tests.fixtures import synth_dir, synth_records  # noqa: F401
from tests.helpers import assert_frame_shows

MODULES = {"pyav": "av"}
BACKENDS = [
    pytest.param(b, marks=pytest.mark.skipif(importlib.util.find_spec(MODULES.get(b, b)) is None, reason=f"{b} missing"))
    for b in decoding.BACKENDS
]


def every_5th(timeline) -> list[float]:
    """Times function: the start of every 5th shown frame."""
    return timeline.times[::5].tolist()


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_frames_show_scene_at_their_times(backend, synth_dir, synth_records):  # noqa: F811
    for rec in synth_records[:4]:
        dec = decode_video(synth_dir / rec["video"], every_5th, backend=backend, fallback=None)
        scene = rec["scene"]
        assert dec.backend == backend
        assert dec.timeline.average_fps == pytest.approx(scene["fps"])
        assert dec.num_frames == scene["duration"] * scene["fps"]
        assert dec.duration == pytest.approx(scene["duration"])
        assert dec.indices == list(range(0, dec.num_frames, 5))
        assert dec.times == pytest.approx([i / scene["fps"] for i in dec.indices])
        assert dec.frames.dtype == np.uint8 and dec.frames.shape == (len(dec.indices), 64, 64, 3)
        for frame, t in zip(dec.frames, dec.times):
            assert_frame_shows(frame, rec, t, where=f"{backend} {rec['id']}")


def test_content_check_catches_wrong_times(synth_dir, synth_records):  # noqa: F811
    """The content check can fail: frames taken 1 s off their claimed times are caught for some clip."""
    failures = 0
    for rec in synth_records[:4]:
        dec = decode_video(synth_dir / rec["video"], every_5th, fallback=None)
        for frame, t in zip(dec.frames, dec.times):
            try:
                assert_frame_shows(frame, rec, max(0.0, t - 1.0))
            except AssertionError:
                failures += 1
    assert failures > 0


def test_decord_and_pyav_agree(synth_dir, synth_records):  # noqa: F811
    path = synth_dir / synth_records[1]["video"]
    a = decode_video(path, every_5th, backend="decord", fallback=None)
    b = decode_video(path, every_5th, backend="pyav", fallback=None)
    assert a.indices == b.indices and a.num_frames == b.num_frames and a.times == pytest.approx(b.times)
    assert np.abs(a.frames.astype(int) - b.frames.astype(int)).mean() < 2.0


def test_fallback_when_the_backend_fails(synth_dir, synth_records, monkeypatch):  # noqa: F811
    def broken(path, times_fn, size=None):
        raise RuntimeError("pyav exploded")

    monkeypatch.setitem(decoding.BACKENDS, "pyav", broken)
    rec = synth_records[0]
    dec = decode_video(synth_dir / rec["video"], every_5th, fallback="decord")
    assert dec.backend == "decord"
    assert_frame_shows(dec.frames[3], rec, dec.times[3])
    with pytest.raises(VideoDecodeError, match=r"pyav: RuntimeError: pyav exploded"):
        decode_video(synth_dir / rec["video"], every_5th)  # the default has no fallback


def test_fallback_when_the_backend_is_not_installed(synth_dir, synth_records, monkeypatch):  # noqa: F811
    def missing(path, times_fn, size=None):
        raise ImportError("No module named 'torchcodec'")

    monkeypatch.setitem(decoding.BACKENDS, "torchcodec", missing)
    assert decode_video(synth_dir / synth_records[0]["video"], every_5th, "torchcodec", "pyav").backend == "pyav"


def test_missing_video(tmp_path):
    with pytest.raises(VideoDecodeError, match=rf"{tmp_path}/nope.mp4: video file not found"):
        decode_video(tmp_path / "nope.mp4", every_5th)


def test_empty_video(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoDecodeError, match=rf"{tmp_path}/empty.mp4: video file is empty"):
        decode_video(tmp_path / "empty.mp4", every_5th)


def test_corrupt_video_names_file_and_every_backend_tried(tmp_path):
    p = tmp_path / "corrupt.mp4"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(VideoDecodeError, match=rf"{p}: could not decode video") as e:
        decode_video(p, every_5th, fallback="decord")
    assert "decord:" in str(e.value) and "pyav:" in str(e.value)


def test_no_target_times_rejected(synth_dir, synth_records):  # noqa: F811
    with pytest.raises(VideoDecodeError, match="no frames selected"):
        decode_video(synth_dir / synth_records[0]["video"], lambda timeline: [], fallback=None)


def test_times_past_the_end_take_the_last_frame(synth_dir, synth_records):  # noqa: F811
    dec = decode_video(synth_dir / synth_records[0]["video"], lambda tl: [-1.0, tl.duration + 5], fallback=None)
    assert dec.indices == [0, dec.num_frames - 1]


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown video backend 'opencv'"):
        decode_video("x.mp4", every_5th, backend="opencv")

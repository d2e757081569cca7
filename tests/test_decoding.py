"""Decoding backends on generated videos: frames at known times show the scene; fallback; bad files."""

from __future__ import annotations

import ctypes
import importlib.util
import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from lit_videor2.data import decoding
from lit_videor2.data.datamodule import VideoDataModule
from lit_videor2.data.dataset import VideoDataset
from lit_videor2.data.decoding import VideoDecodeError, VideoDecodeTimeout, decode_video
from lit_videor2.data.frames import FrameLoader
from lit_videor2.data.sampling import FrameSizeError, sample_times
from lit_videor2.data.schema import load_records
from tests.fixtures import SMALL, synth_dir, synth_records, tiny_model_dir, tiny_models  # noqa: F401
from tests.helpers import assert_frame_shows

MODULES = {"pyav": "av"}
BACKENDS = [
    pytest.param(
        b, marks=pytest.mark.skipif(importlib.util.find_spec(MODULES.get(b, b)) is None, reason=f"{b} missing")
    )
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


# ------------------------------------------------------------------------------------------- returned size


def _default_times(timeline) -> list[float]:
    return sample_times(timeline.num_frames, timeline.duration, SMALL)


def _small_size(height: int, width: int) -> tuple[int, int]:
    """Any ``(height, width)`` rule; this one stretches the 64x64 clips to 28x56."""
    return (28, 56) if (height, width) == (64, 64) else (height, width)


@pytest.mark.parametrize("backend", BACKENDS)
def test_frames_come_at_the_asked_size_close_to_a_full_size_decode_resized(backend, synth_dir, synth_records):  # noqa: F811
    """``size``: every frame at the returned size, showing what the full-size frame resized afterwards shows (PyAV
    scales with swscale, the others with the resize the full-size path uses, so they match it exactly)."""
    from lit_videor2.data.frames import resize_frames

    path = synth_dir / synth_records[2]["video"]
    sized = decode_video(path, _default_times, backend, size=_small_size)
    full = decode_video(path, _default_times, backend)
    assert sized.frames.shape == (len(full.frames), 28, 56, 3) and sized.times == full.times
    assert sized.display_hw == full.display_hw == (64, 64) and sized.indices == full.indices
    ref = resize_frames(full.frames, (28, 56)).permute(0, 2, 3, 1).numpy().astype(float)
    mse = ((sized.frames.astype(float) - ref) ** 2).mean()
    psnr = 10 * np.log10(255**2 / max(mse, 1e-9))
    assert psnr > (30 if backend == "pyav" else 99), psnr


# ------------------------------------------------------------------------------------------- time limit

#: Seconds the time-limit tests allow one decode (the clips decode in well under a second).
LIMIT = 5.0


def stuck_in_native_code(path, times_fn, size=None):
    """A backend stub: on a file named ``stuck*`` it blocks every signal and sleeps an hour inside libc (native code
    that never returns to Python, as a decoder stuck in a C loop); other files decode with PyAV."""
    if Path(path).name.startswith("stuck"):
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        ctypes.CDLL(None).sleep(3600)
    return decoding.decode_pyav(path, times_fn, size)


def _with_stuck_file(synth_dir, tmp_path, n: int = 4) -> Path:  # noqa: F811
    """A training file of ``n`` synthetic records whose second video is a copy named ``stuck.mp4``."""
    records = json.loads((synth_dir / "train.json").read_text())[:n]
    stuck = tmp_path / "stuck.mp4"
    stuck.write_bytes((synth_dir / records[1]["video"]).read_bytes())
    records[1]["video"] = str(stuck)
    for r in records[:1] + records[2:]:
        r["video"] = str(synth_dir / r["video"])
    ann = tmp_path / "train.json"
    ann.write_text(json.dumps(records))
    return ann


def test_a_decode_stuck_in_native_code_is_killed_at_the_limit(synth_dir, synth_records, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setitem(decoding.BACKENDS, "pyav", stuck_in_native_code)
    ann = _with_stuck_file(synth_dir, tmp_path)
    stuck = tmp_path / "stuck.mp4"
    start = time.monotonic()
    with pytest.raises(VideoDecodeTimeout, match=rf"^{stuck}: decoding took longer than the time limit of 5 s"):
        decode_video(stuck, _default_times, time_limit=LIMIT)
    assert LIMIT <= time.monotonic() - start < LIMIT + 30
    ok = decode_video(synth_dir / synth_records[0]["video"], _default_times, time_limit=LIMIT)  # a fresh process
    assert ok.backend == "pyav" and len(ok.frames) > 0
    # Through the dataset with on_error='raise': the record's error names the file and the limit.
    ds = VideoDataset(load_records(ann).records, tmp_path, FrameLoader(SMALL, time_limit=LIMIT), on_error="raise")
    with pytest.raises(VideoDecodeTimeout, match=r"record 'synth-train-000001' .*stuck.mp4: decoding took longer"):
        ds[1]


def test_the_callbacks_run_in_the_caller_under_a_time_limit(synth_dir, synth_records):  # noqa: F811
    """The times and size rules stay in this process (lambdas, closures), the decoding process asks for their
    results; an error they raise reaches the caller as it is."""
    seen = []
    path = synth_dir / synth_records[0]["video"]
    dec = decode_video(
        path, lambda tl: seen.append(tl.num_frames) or [0.0, 1.0], size=lambda h, w: (28, 28), time_limit=LIMIT
    )
    assert dec.frames.shape == (2, 28, 28, 3) and seen == [dec.num_frames]

    def refuse(h, w):
        raise FrameSizeError(f"no size for {w}x{h}")

    with pytest.raises(FrameSizeError, match="no size for 64x64"):
        decode_video(path, _default_times, size=refuse, time_limit=LIMIT)


def test_relative_paths_resolve_in_the_callers_current_folder(synth_dir, synth_records, monkeypatch):  # noqa: F811
    """The decoding process outlives a change of the caller's working folder (a test's chdir, a user's script): a
    relative path is read from the folder the caller is in now, not the one the process started in."""
    video = synth_dir / synth_records[0]["video"]
    first = decode_video(video, _default_times, time_limit=LIMIT)  # the decoding process starts here
    monkeypatch.chdir(video.parent)
    again = decode_video(video.name, _default_times, time_limit=LIMIT)
    assert np.array_equal(again.frames, first.frames) and again.indices == first.indices


@pytest.mark.parametrize("num_workers", [0, 2])
def test_training_goes_on_past_a_decode_stuck_in_native_code(
    synth_dir,  # noqa: F811
    tiny_model_dir,  # noqa: F811
    tmp_path,
    monkeypatch,
    num_workers,
):
    """A worker (or, with 0 workers, the trainer's process) whose decode hangs in native code with every signal
    blocked: the loader yields the other samples, the stuck one is counted and named, and training takes its steps."""
    from tests.sft_utils import make_module, make_trainer

    monkeypatch.setitem(decoding.BACKENDS, "pyav", stuck_in_native_code)
    ann = _with_stuck_file(synth_dir, tmp_path)

    def datamodule():
        return VideoDataModule(
            processor=str(tiny_model_dir),
            train_file=str(ann),
            batch_size=2,
            num_workers=num_workers,
            sampling=SMALL,
            shuffle=False,
            on_error="skip",
            decode_time_limit=LIMIT,
        )

    start = time.monotonic()
    batches = list(datamodule().train_dataloader())
    assert time.monotonic() - start < LIMIT + 60
    assert [b["num_skipped"] for b in batches] == [1, 0]
    (skipped,) = batches[0]["skipped"]
    assert skipped["id"] == "synth-train-000001"
    assert "stuck.mp4: decoding took longer than the time limit of 5 s" in skipped["reason"]

    module = make_module(tiny_model_dir)
    trainer = make_trainer(tmp_path / "run", max_steps=2)
    start = time.monotonic()
    trainer.fit(module, datamodule=datamodule())
    assert trainer.global_step == 2 and module.skipped_samples == 1
    assert time.monotonic() - start < LIMIT + 120


def test_decode_time_limit_is_checked():
    with pytest.raises(ValueError, match="decode_time_limit must be > 0"):
        VideoDataModule(processor="x", decode_time_limit=0)

"""Record -> frames: resizing, the on-disk frame cache, time/subtitle burn-in, dataset paths and errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from lit_videor2.data.dataset import SkippedSample, VideoDataset, VideoSample
from lit_videor2.data.decoding import VideoDecodeError
from lit_videor2.data.frames import FrameLoader, Overlay, parse_srt, resize_frames, subtitle_at
from lit_videor2.data.sampling import FrameSampling
from lit_videor2.data.schema import load_records
from tests.fixtures import SMALL, synth_dir, synth_records  # noqa: F401
from tests.helpers import assert_frame_shows

MEDIUM = FrameSampling(fps=1.0, min_frames=2, max_frames=8, min_pixels=112 * 112, max_pixels=112 * 112)


def test_resize_frames_layout_and_noop():
    x = np.random.default_rng(0).integers(0, 256, (3, 64, 48, 3), dtype=np.uint8)
    same = resize_frames(x, (64, 48))
    assert same.dtype == torch.uint8 and same.shape == (3, 3, 64, 48)
    assert torch.equal(same, torch.from_numpy(x).permute(0, 3, 1, 2))
    small = resize_frames(x, (28, 56))
    assert small.shape == (3, 3, 28, 56) and small.dtype == torch.uint8
    flat = resize_frames(np.full((1, 64, 64, 3), 77, np.uint8), (28, 28))
    assert (flat == 77).all()  # a constant image stays constant (no range or rounding drift)


def test_frame_loader_samples_resizes_and_keeps_content(synth_dir, synth_records):  # noqa: F811
    rec = synth_records[2]
    out = FrameLoader(SMALL)(synth_dir / rec["video"])
    total = rec["scene"]["duration"] * rec["scene"]["fps"]
    n = len(out.times)
    assert out.frames.shape == (n, 3, 56, 56) and n % 2 == 0 and n <= 8
    assert out.times == pytest.approx([(i * total // n) / 10 for i in range(n)])  # frame floor(i·total/n) at 10 fps
    assert out.duration == pytest.approx(rec["scene"]["duration"]) and out.backend == "pyav"
    for frame, t in zip(out.frames, out.times):
        assert_frame_shows(frame.permute(1, 2, 0).numpy(), rec, t)


# ---------------------------------------------------------------------------------------------------- cache


def _copy_video(synth_dir, rec, tmp_path):  # noqa: F811
    dst = tmp_path / "v.mp4"
    dst.write_bytes((synth_dir / rec["video"]).read_bytes())
    return dst


def test_cache_second_read_hits_the_file_with_same_tensors(synth_dir, synth_records, tmp_path, monkeypatch):  # noqa: F811
    video = _copy_video(synth_dir, synth_records[0], tmp_path)
    loader = FrameLoader(SMALL, cache_dir=tmp_path / "cache")
    first = loader(video)
    files = list((tmp_path / "cache").glob("*.pt"))
    assert len(files) == 1 and first.backend == "pyav"

    import lit_videor2.data.frames as frames_mod

    def no_decode(*a, **k):
        raise AssertionError("decoded again despite a cache entry")

    monkeypatch.setattr(frames_mod, "decode_video", no_decode)
    second = loader(video)
    assert second.backend == "cache"
    assert torch.equal(second.frames, first.frames)
    assert second.times == first.times and second.duration == first.duration


def test_cache_key_changes_with_sampling_overlay_and_mtime(synth_dir, synth_records, tmp_path):  # noqa: F811
    video = _copy_video(synth_dir, synth_records[0], tmp_path)
    base = FrameLoader(SMALL, cache_dir=tmp_path)
    key = base.cache_key(video, None)
    assert FrameLoader(SMALL, cache_dir=tmp_path).cache_key(video, None) == key  # deterministic
    others = [
        FrameLoader(FrameSampling(fps=2.0, min_frames=2, max_frames=8, min_pixels=3136, max_pixels=3136)),
        FrameLoader(FrameSampling(fps=1.0, min_frames=2, max_frames=6, min_pixels=3136, max_pixels=3136)),
        FrameLoader(MEDIUM),
        FrameLoader(SMALL, size_factor=32),
        FrameLoader(SMALL, overlay=Overlay(timestamp=True)),
        FrameLoader(SMALL, backend="decord"),
    ]
    keys = {o.cache_key(video, None) for o in others}
    assert key not in keys and len(keys) == len(others)
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert base.cache_key(video, None) != key


def test_cache_refreshes_when_the_video_changes(synth_dir, synth_records, tmp_path):  # noqa: F811
    video = _copy_video(synth_dir, synth_records[0], tmp_path)
    loader = FrameLoader(SMALL, cache_dir=tmp_path / "cache")
    a = loader(video)
    video.write_bytes((synth_dir / synth_records[1]["video"]).read_bytes())  # new content, new mtime/size
    b = loader(video)
    assert b.backend != "cache" and not torch.equal(a.frames[-1], b.frames[-1])
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2


def test_unreadable_cache_entry_is_decoded_again(synth_dir, synth_records, tmp_path):  # noqa: F811
    video = _copy_video(synth_dir, synth_records[0], tmp_path)
    loader = FrameLoader(SMALL, cache_dir=tmp_path / "cache")
    first = loader(video)
    (entry,) = (tmp_path / "cache").glob("*.pt")
    entry.write_bytes(b"torn")
    again = loader(video)
    assert again.backend == "pyav" and torch.equal(again.frames, first.frames)
    assert loader(video).backend == "cache"  # rewritten


# -------------------------------------------------------------------------------------------------- overlay


def test_timestamp_burn_in_changes_top_left_only(synth_dir, synth_records):  # noqa: F811
    video = synth_dir / synth_records[0]["video"]
    plain = FrameLoader(MEDIUM)(video).frames.int()
    burnt = FrameLoader(MEDIUM, overlay=Overlay(timestamp=True))(video).frames.int()
    diff = (plain - burnt).abs().amax(dim=1)  # [T, H, W]
    assert (diff[:, :16, :64].flatten(1).amax(1) > 100).all()  # every frame has text in the corner
    assert diff[:, 40:, :].max() == 0  # nothing below the text line
    # different times draw different text
    assert not torch.equal(burnt[0, :, :16, :64], burnt[-1, :, :16, :64])


SRT = """1
00:00:00,000 --> 00:00:02,500
The red circle appears

2
00:00:05,000 --> 00:00:06,000
Second line
"""


def test_parse_srt_and_subtitle_at(tmp_path):
    assert parse_srt(SRT) == [(0.0, 2.5, "The red circle appears"), (5.0, 6.0, "Second line")]
    p = tmp_path / "a.srt"
    p.write_text(SRT)
    assert subtitle_at(str(p), 2.4) == "The red circle appears"
    assert subtitle_at(str(p), 2.5) == "" and subtitle_at(str(p), 5.5) == "Second line"


def test_subtitle_burn_in_from_srt_next_to_video(synth_dir, synth_records, tmp_path):  # noqa: F811
    rec = synth_records[0]
    (tmp_path / "videos" / "train").mkdir(parents=True)
    (tmp_path / rec["video"]).write_bytes((synth_dir / rec["video"]).read_bytes())
    srt = tmp_path / "subtitles" / f"{rec['video']}.srt"
    srt.parent.mkdir(parents=True)
    srt.write_text(SRT)
    records = load_records(synth_dir / "train.json").records[:1]
    plain = VideoDataset(records, tmp_path, FrameLoader(MEDIUM))[0].frames
    subs = VideoDataset(records, tmp_path, FrameLoader(MEDIUM, overlay=Overlay(subtitles=True)))[0].frames
    diff = (plain.frames.int() - subs.frames.int()).abs().amax(dim=1)  # [T, H, W]
    for k, t in enumerate(plain.times):
        bottom = diff[k, 112 - 24 :, :].max().item()
        assert diff[k, : 112 - 24, :].max() == 0  # only the bottom band changes
        assert (bottom > 100) == (t < 2.5 or 5.0 <= t < 6.0), (t, bottom)


# -------------------------------------------------------------------------------------------------- dataset


def test_dataset_errors_name_file_and_record(synth_dir, tmp_path):  # noqa: F811
    records = load_records(synth_dir / "train.json").records[:3]
    records[1].video = "videos/missing.mp4"
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "corrupt.mp4").write_bytes(os.urandom(2048))
    records[2].video = str(tmp_path / "videos" / "corrupt.mp4")  # absolute paths bypass the root
    ds = VideoDataset(records, synth_dir, FrameLoader(SMALL))
    assert isinstance(ds[0], VideoSample)
    with pytest.raises(
        VideoDecodeError,
        match=r"record 'synth-train-000001' \(.*train.json\[1\]\): .*missing.mp4: video file not found",
    ):
        ds[1]
    with pytest.raises(VideoDecodeError, match=r"record 'synth-train-000002' .*corrupt.mp4: could not decode"):
        ds[2]
    skip = VideoDataset(records, synth_dir, FrameLoader(SMALL), on_error="skip")
    s1, s2 = skip[1], skip[2]
    assert isinstance(s1, SkippedSample) and s1.record_id == "synth-train-000001" and "not found" in s1.reason
    assert isinstance(s2, SkippedSample) and "corrupt.mp4" in s2.reason


def test_cache_entries_of_older_decoding_rules_are_not_served(synth_dir, synth_records, tmp_path, monkeypatch):  # noqa: F811
    """Entries written under an older FRAME_CACHE_VERSION (index-based frames, no real times) miss, and an old-format
    entry found under the current key is decoded again rather than served."""
    import lit_videor2.data.frames as frames_mod

    video = _copy_video(synth_dir, synth_records[0], tmp_path)
    loader = FrameLoader(SMALL, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(frames_mod, "FRAME_CACHE_VERSION", 2)
    old_key = loader.cache_key(video, None)
    monkeypatch.undo()
    assert frames_mod.FRAME_CACHE_VERSION >= 3 and loader.cache_key(video, None) != old_key
    key = loader.cache_key(video, None)
    old = {
        "frames": torch.zeros(2, 3, 56, 56, dtype=torch.uint8),
        "indices": [0, 5],
        "native_fps": 10.0,
        "total_frames": 60,
    }
    (tmp_path / "cache").mkdir()
    torch.save(old, tmp_path / "cache" / f"{key}.pt")  # the pre-v3 payload, as if written under this key
    fresh = loader(video)
    assert fresh.backend == "pyav" and fresh.frames.any() and len(fresh.times) == len(fresh.frames)
    assert loader(video).backend == "cache"  # rewritten in the current format

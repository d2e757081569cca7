"""Frames at the right time on files made the way users' files are made: by the ffmpeg command line.

Every clip (``bench/video_matrix.py``) paints its frame index into its pixels, so each test reads back which frame it
got and checks it against the time reported for it and the time asked for, within half a frame. The default backend
must be right on every case; the other backends must behave as ``docs/data.md``'s table (made by
``bench/decode_accuracy.py`` from the same matrix) says.
"""

from __future__ import annotations

import importlib
import json
import os
import re

import numpy as np
import pytest

from bench.video_matrix import backend_outcome, broken_cases, cases, decode_at, ffmpeg_available, frame_problems
from lit_videor2.data.datamodule import VideoDataModule
from lit_videor2.data.decoding import BACKENDS as BACKEND_NAMES
from lit_videor2.data.decoding import DEFAULT_BACKEND, VideoDecodeError
from lit_videor2.data.sampling import FrameSampling, resized_hw, sample_times
from tests.fixtures import tiny_model_dir, tiny_models  # noqa: F401

#: CI sets LIT_VIDEOR2_REQUIRE_FFMPEG=1: without the ffmpeg command line these tests then fail instead of skipping.
pytestmark = pytest.mark.skipif(
    not ffmpeg_available() and os.environ.get("LIT_VIDEOR2_REQUIRE_FFMPEG") != "1",
    reason="needs the ffmpeg command line (apt-get install ffmpeg)",
)

CASES = {c.name: c for c in cases()}
BROKEN = {c.name: c for c in broken_cases()}
#: Sampling of the checks: 8 target times per second (every third frame of a 24 fps clip), up to 64.
DENSE = FrameSampling(fps=8.0, max_frames=64)


def _installed(backend: str) -> bool:
    """Whether ``backend`` imports (torchcodec also needs the system FFmpeg libraries to import)."""
    try:
        importlib.import_module({"pyav": "av", "torchcodec": "torchcodec.decoders"}.get(backend, backend))
    except Exception:  # noqa: BLE001 - ImportError, or torchcodec's RuntimeError without FFmpeg
        return False
    return True


BACKENDS = [
    pytest.param(b, marks=pytest.mark.skipif(not _installed(b), reason=f"{b} not installed")) for b in BACKEND_NAMES
]

#: Where a backend other than the default is known to fail (docs/data.md, "Video backends"): ``error`` = refuses the
#: file (a fallback takes over), ``wrong`` = returns frames other than those a player shows. Everything else is right.
KNOWN = {
    "torchcodec": {
        "mpeg4-avi-bframes": "error",
        "mpeg2-ps-mpg": "error",
        "mpegts-nonzero-start": "error",
        "mpegts-cut-open-gop": "error",
    },
    "decord": {
        "h264-open-gop-bframes": "wrong",
        "hevc-10bit": "wrong",
        "av1-mkv": "error",
        "mpeg4-avi-bframes": "error",
        "mpeg2-ps-mpg": "wrong",
        "theora-ogg": "error",
        "gif": "error",
        "mpegts-nonzero-start": "wrong",
        "webm-no-duration": "error",
        "mp4-cut-edit-list": "wrong",
        "mpegts-cut-open-gop": "wrong",
        "matroska-cut-open-gop": "wrong",
        "two-video-streams": "wrong",
    },
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Make each clip once per module (with ffmpeg), on first use."""
    root = tmp_path_factory.mktemp("matrix")

    def get(case):
        path = root / case.file
        if not path.is_file():
            case.make(path)
        return path

    return get


def _grid(timeline):
    return sample_times(timeline.num_frames, timeline.duration, DENSE)


def _mid_frame(timeline):
    """Targets a third of the way into a frame interval: a decoder one frame off cannot pass by rounding."""
    return (timeline.times[:-1] + np.diff(timeline.times) / 3).tolist()[::2]


@pytest.mark.parametrize("name", list(CASES))
def test_default_backend_returns_what_a_player_shows(clips, name):
    """The default backend: every frame is the one on screen at its target, reported at its own time; the shown-frame
    count, duration and display size are the player's."""
    case = CASES[name]
    path = clips(case)
    for targets_of in (_grid, _mid_frame):
        dec, targets = decode_at(path, DEFAULT_BACKEND, targets_of)
        assert len(dec.frames) == len(targets) >= 8
        assert frame_problems(case, dec.frames, dec.times, targets) == []
        assert dec.num_frames == len(case.shown)
        assert dec.duration == pytest.approx(case.duration, abs=2e-3)
        assert dec.display_hw == (case.display[1], case.display[0])
        assert dec.rotation == case.rotation


def _encoder_size(height: int, width: int) -> tuple[int, int]:
    """The data module's default frame size rule (Qwen2.5-VL's factor 28, 100,352-151,200 px)."""
    return resized_hw(height, width, FrameSampling())


@pytest.mark.parametrize("name", list(CASES))
def test_default_backend_at_the_returned_size(clips, name):
    """Each frame scaled as it is decoded (swscale with PyAV): still the frame a player shows, upright, at the size of
    the display size's rule (non-square pixels widened, rotation applied)."""
    case = CASES[name]
    dec, targets = decode_at(clips(case), DEFAULT_BACKEND, _grid, size=_encoder_size)
    assert frame_problems(case, dec.frames, dec.times, targets) == []
    assert dec.frames.shape[1:3] == resized_hw(case.display[1], case.display[0], FrameSampling())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CASES))
def test_every_backend_behaves_as_documented(clips, backend, name):
    """Each backend on each case: right, or the documented refusal / wrong frames (never silently something else)."""
    case = CASES[name]
    outcome = backend_outcome(case, clips(case), backend, _grid)
    expected = KNOWN.get(backend, {}).get(name, "ok")
    assert outcome.kind == expected, (outcome.error, outcome.wrong_frames[:3], outcome.notes)
    if outcome.kind == "error":
        assert str(clips(case)) in outcome.error  # the error names the file


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_files_fail_naming_the_file(clips, backend, name):
    path = clips(BROKEN[name])
    with pytest.raises(VideoDecodeError, match=rf"^{path}: "):
        decode_at(path, backend, _grid)


@pytest.mark.parametrize(
    "name", ["mp4-cut-edit-list", "mpegts-nonzero-start", "variable-rate-phone", "non-square-pixels", "rotation-90"]
)
def test_frame_loader_as_the_data_module_builds_it(clips, tiny_model_dir, name):  # noqa: F811
    """Through the data module's ``FrameLoader`` (its default backend, the Qwen2.5-VL size factor; frames resized for
    the encoder): the frames a player shows at the sampled times, their real times, the display aspect kept."""
    case = CASES[name]
    sampling = FrameSampling(fps=4.0, min_pixels=112 * 112, max_pixels=168 * 168)
    dm = VideoDataModule(processor=str(tiny_model_dir), sampling=sampling)
    assert (dm.backend, dm.fallback_backend) == (DEFAULT_BACKEND, None)
    out = dm.frame_loader(clips(case))
    frames = out.frames.permute(0, 2, 3, 1).numpy()  # [T, H, W, 3], upright
    targets = sample_times(len(case.shown), case.duration, sampling)
    assert len(frames) == len(targets) and out.duration == pytest.approx(case.duration, abs=2e-3)
    assert frame_problems(case, frames, out.times, targets) == []
    h, w = frames.shape[1:3]
    assert abs(w / h - case.display[0] / case.display[1]) < 2 * 28 / min(h, w)  # widened / turned, never squeezed


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl"])
def test_real_times_reach_the_processor(clips, tiny_models, arch):  # noqa: F811
    """On a variable-rate clip the batch's ``frame_times`` are the frames' own times, Qwen3-VL stamps each frame pair
    with them, and Qwen2.5-VL gets the sampling interval as seconds per temporal patch."""
    case = CASES["variable-rate-phone"]
    path = clips(case)
    records = [{"id": "vfr", "video": str(path), "conversations": [
        {"from": "human", "value": "<video>\nWhich frame?\nA. one\nB. two"}, {"from": "gpt", "value": "<answer>A</answer>"}
    ]}]  # fmt: skip
    ann = path.with_name(f"vfr_{arch}.json")
    ann.write_text(json.dumps(records))
    pixels = (112 * 112) if arch == "qwen2_5_vl" else (128 * 128)
    sampling = FrameSampling(fps=4.0, min_pixels=pixels, max_pixels=pixels)
    dm = VideoDataModule(processor=str(tiny_models(arch)), test_file=str(ann), sampling=sampling, num_workers=0)
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    times = batch["columns"]["frame_times"][0]
    targets = sample_times(len(case.shown), case.duration, sampling)
    true_time = {i: t for t, i in case.shown}
    assert times == pytest.approx([true_time[case.expected_at(t)] for t in targets], abs=1.5e-3)
    assert times != pytest.approx(targets, abs=1e-3)  # a variable rate: real times are not the grid
    n = len(times)
    if arch == "qwen2_5_vl":
        assert float(batch["second_per_grid_ts"][0]) == pytest.approx(2 * case.duration / n, rel=1e-3)
    else:
        text = dm.processor.tokenizer.decode(batch["prompt_input_ids"][0])
        stamps = [float(x) for x in re.findall(r"<(\d+\.\d) seconds>", text)]
        assert stamps == pytest.approx([(times[2 * k] + times[2 * k + 1]) / 2 for k in range(n // 2)], abs=0.051)


class _LateSeeks:
    """A PyAV container whose seeks land one GOP late (as an imprecise demuxer seek can)."""

    def __init__(self, container, late: int):
        self._container, self._late = container, late

    def seek(self, offset, **kw):
        return self._container.seek(offset + self._late, **kw)

    def __getattr__(self, name):
        return getattr(self._container, name)


def test_a_seek_that_lands_late_is_redone_from_the_start(clips, monkeypatch):
    """A late seek would skip the wanted frame: it is caught (no frame with the wanted timestamp) and the file is
    decoded again in one pass from the start, never answered with the next frame."""
    from lit_videor2.data import decoding

    case = CASES["mpegts-nonzero-start"]
    calls = []
    decode_pts = decoding._decode_pts

    def late(container, stream, scan, wanted, path, put, *, seek=True):
        calls.append(seek)
        gop = int(scan.keyframes[1] - scan.keyframes[0])
        return decode_pts(_LateSeeks(container, gop), stream, scan, wanted, path, put, seek=seek)

    monkeypatch.setattr(decoding, "_decode_pts", late)
    dec, targets = decode_at(clips(case), "pyav", _grid)
    assert calls == [True, False]
    assert frame_problems(case, dec.frames, dec.times, targets) == []

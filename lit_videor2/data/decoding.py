"""Video decoding by time, behind one small interface, with one wrapper per backend.

A backend opens a file, learns its timeline as a player shows it (:class:`~lit_videor2.data.timeline.VideoTimeline`:
presentation times of the shown frames, from the first one, and the duration), asks the caller for the target times
it wants (a function of that timeline), and returns the frame on screen at each target time, upright, with its real
presentation time. Nothing assumes a constant frame rate: times are the frames' own timestamps, never
``index / fps``.

* ``pyav`` (the default): the stream a player shows (the default one), the timeline from its packets (edit lists,
  late-starting clocks and variable rates as players handle them), then decoding from the nearest keyframe before
  each wanted frame; every returned frame is matched to its wanted timestamp exactly, so a seek that lands wrong is
  caught and redone from the start, never returned.
* ``torchcodec``: the same timeline and stream (read with PyAV), frames decoded by torchcodec; each returned frame's
  timestamp is checked against the one asked for and a mismatch is an error (so ``fallback_backend`` takes over).
* ``decord``: decord's own frame list and timestamps. Fast, but wrong on several kinds of real files (open-GOP
  H.264, ``-c copy`` cuts with edit lists, MPEG-TS with a late clock, fragmented MP4, files with two video streams;
  see ``docs/data.md``), and its frames cannot be checked, so it is not the default.

Rotation tags are applied by every backend (frames come upright, as players show them). Non-square pixels are
reported (:attr:`DecodedVideo.sample_aspect`) and widened to the display aspect (:attr:`DecodedVideo.display_hw`)
when a size is asked for.

Memory is bounded by the returned frames: with ``size``, each decoded frame is brought to the returned size as it
arrives (PyAV: one swscale pass; torchcodec and decord: one full-size frame at a time, resized) and written into the
output array, so one source-size frame is alive at a time beside the decoder's own buffers.

With ``time_limit``, the decode runs in a child process of the caller that is killed past the limit
(:class:`VideoDecodeTimeout`), so a decoder stuck in native code, where Python timers and signal handlers never run,
cannot stall a DataLoader worker.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from lit_videor2.data.decode_process import VideoDecodeTimeout, decoder_process
from lit_videor2.data.probe import StreamScan, VideoDecodeError, display_tags, frame_rotation, probe
from lit_videor2.data.timeline import VideoTimeline
from lit_videor2.errors import UserError

log = logging.getLogger(__name__)

__all__ = [
    "BACKENDS",
    "DECODE_THREADS",
    "DEFAULT_BACKEND",
    "DEFAULT_DECODE_TIME_LIMIT",
    "BackendName",
    "DecodedVideo",
    "SizeFn",
    "TimesFn",
    "VideoDecodeError",
    "VideoDecodeTimeout",
    "decode_video",
]

TimesFn = Callable[[VideoTimeline], list[float]]
"""``timeline -> target times`` (seconds from the first shown frame) to decode."""
SizeFn = Callable[[int, int], tuple[int, int]]
"""``(display height, display width) -> (height, width)`` of the returned frames (upright)."""

#: Decoder threads per decode (PyAV and torchcodec frame threading; decord decodes on one). A DataLoader worker's
#: share of a GPU node's cores is usually two or more; the benches run both sides of a comparison at this count.
DECODE_THREADS = 2

#: Seconds one sample's decode may take before its decoding process is killed (``VideoDataModule.decode_time_limit``;
#: see ``docs/data.md``, "Decode time limit", for why this value).
DEFAULT_DECODE_TIME_LIMIT = 120.0

#: swscale's flags when PyAV scales a frame to the returned size: bicubic (as the torchvision resize it replaces),
#: accurate rounding, chroma interpolated at full output resolution. Against the full-size RGB frame resized by
#: torchvision: 35-43 dB PSNR on downscaled HD/4K, 45-53 dB on the matrix clips (``docs/data.md``); plain bicubic
#: gives 31 dB.
PYAV_INTERPOLATION = 4 | 262144 | 8192  # SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT

#: Codecs PyAV decodes with frame threads (:data:`DECODE_THREADS`) and whose frames nothing references
#: (``nal_ref_idc == 0``) it skips between wanted frames (their packet timestamps are their frames', so a wanted frame
#: is never among the skipped). Others decode as before, one frame at a time: FFmpeg 7's Theora decoder, for one,
#: returns wrong frames after a seek with frame threads (tests/test_video_matrix.py).
FAST_CODECS = frozenset({"h264", "hevc"})


@dataclass
class DecodedVideo:
    """The frames on screen at the target times of one video, with the timeline they come from."""

    frames: np.ndarray
    """``uint8 [T, H, W, 3]``, upright (rotation tags applied): at the size the caller asked for (non-square pixels
    widened to the display aspect), else the stored pixels."""
    timeline: VideoTimeline
    """The shown frames of the stream (the backend's: PyAV's scan, or decord's own list)."""
    indices: list[int]
    """Position of each frame among the stream's shown frames."""
    backend: str
    display_hw: tuple[int, int]
    """``(height, width)`` a player shows: the upright frame, its stored width scaled by the pixel aspect (wider for
    4:3 pixels, narrower for 1:2), its height kept, as FFmpeg and players compute the display size."""
    rotation: int = 0
    """Counter-clockwise degrees (0, 90, 180, 270) the stored frames were turned by to stand upright."""
    sample_aspect: Fraction = Fraction(1)
    """Pixel aspect ratio of the stored frames (a player stretches stored widths by it, before turning)."""

    @property
    def times(self) -> list[float]:
        """Presentation time of each frame (seconds from the first shown frame): when a player starts showing it."""
        return self.timeline.times[self.indices].tolist()

    @property
    def duration(self) -> float:
        """Seconds from the first shown frame to the end of the last."""
        return self.timeline.duration

    @property
    def num_frames(self) -> int:
        """Shown frames in the stream."""
        return self.timeline.num_frames


def resize_rgb(frame, hw: tuple[int, int]) -> np.ndarray:
    """One ``uint8 [H, W, 3]`` frame (numpy or torch) at ``hw``: bicubic, antialiased, in uint8 by torchvision's
    kernel, as the Qwen video processors' torchvision backend resizes."""
    import torch
    from torchvision.transforms.v2 import functional as TF

    x = torch.as_tensor(np.asarray(frame) if not isinstance(frame, torch.Tensor) else frame)
    if tuple(x.shape[:2]) == tuple(hw):
        return x.numpy()
    x = x.permute(2, 0, 1).unsqueeze(0).contiguous()
    x = TF.resize(x, list(hw), interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
    return x[0].permute(1, 2, 0).numpy()


class _Frames:
    """The returned frames of one decode, filled as frames are decoded: each is brought to the returned size and
    turned upright as it arrives, so one source-size frame is alive at a time (beside the decoder's own buffers).
    The only place a :class:`DecodedVideo` is built."""

    def __init__(
        self,
        path: str,
        timeline: VideoTimeline,
        indices: list[int],
        backend: str,
        size: SizeFn | None,
        sample_aspect: Fraction,
    ) -> None:
        self.path, self.timeline, self.indices, self.backend = path, timeline, list(indices), backend
        self.size, self.sample_aspect = size, sample_aspect
        self.slots: dict[int, list[int]] = {}
        """Shown-frame index -> output positions (a frame on screen at two targets fills both)."""
        for k, i in enumerate(self.indices):
            self.slots.setdefault(i, []).append(k)
        self.filled = np.zeros(len(self.indices), bool)
        self.out: np.ndarray | None = None
        self.rotation: int | None = None
        self.display_hw: tuple[int, int] = (0, 0)
        self.target: tuple[int, int] = (0, 0)

    def _start(self, hw: tuple[int, int], turn: int, rotation: int) -> None:
        h, w = hw
        uh, uw = (w, h) if turn in (90, 270) else (h, w)  # upright
        dh, dw = uh, uw
        if self.sample_aspect != 1:  # the stored width is the upright height when the tag turns by 90 or 270
            if rotation in (90, 270):
                dh = round(uh * self.sample_aspect)
            else:
                dw = round(uw * self.sample_aspect)
        self.rotation, self.display_hw = rotation, (dh, dw)
        self.target = tuple(self.size(dh, dw)) if self.size is not None else (uh, uw)
        self.out = np.empty((len(self.indices), *self.target, 3), np.uint8)  # [T, H, W, 3]

    def add(
        self, index: int, hw: tuple[int, int], turn: int, rotation: int, convert: Callable[[int, int], np.ndarray]
    ) -> None:
        """Put shown frame ``index`` into its output positions.

        ``hw``: its ``(height, width)`` as the backend holds it; ``turn``: counter-clockwise degrees still to turn it
        by (0 when the backend turned it already); ``rotation``: the video's rotation tag; ``convert(h, w)``: the
        frame as ``uint8 [h, w, 3]`` RGB in the backend's orientation.
        """
        if self.out is None:
            self._start(hw, turn, rotation)
        elif rotation != self.rotation:
            raise VideoDecodeError(
                f"{self.path}: the rotation tag changes between frames ({sorted({self.rotation, rotation})})"
            )
        h, w = self.target
        ch, cw = (w, h) if turn in (90, 270) else (h, w)
        rgb = convert(ch, cw)
        if rgb.shape != (ch, cw, 3):  # stored pixels asked for, and the frame size changed mid-stream
            raise VideoDecodeError(
                f"{self.path}: the frame size changes from {cw}x{ch} to {rgb.shape[1]}x{rgb.shape[0]}"
            )
        if turn % 360:
            rgb = np.rot90(rgb, k=turn // 90, axes=(0, 1))
        for k in self.slots[index]:
            self.out[k] = rgb
            self.filled[k] = True

    def result(self) -> DecodedVideo:
        if self.out is None or not self.filled.all():
            k = int(np.argmin(self.filled)) if self.out is not None else 0
            raise VideoDecodeError(
                f"{self.path}: no frame decoded at {self.timeline.times[self.indices[k]]:.3f} s ({self.backend})"
            )
        return DecodedVideo(
            self.out, self.timeline, self.indices, self.backend, self.display_hw, self.rotation, self.sample_aspect
        )


def _indices(path: str, times_fn: TimesFn, timeline: VideoTimeline) -> list[int]:
    targets = list(times_fn(timeline))
    if not targets:
        raise VideoDecodeError(f"{path}: no frames selected (video has {timeline.num_frames} frames)")
    return timeline.indices_at(targets)


def _packets_decoded(container, stream, keep: set[int] | None):
    """Decoded frames of ``stream`` from the container's position. With ``keep``, a packet whose timestamp is not in
    it is decoded with ``skip_frame = NONREF``: a frame nothing references is dropped, not decoded."""
    cc = stream.codec_context
    for packet in container.demux(stream):
        if keep is not None:
            cc.skip_frame = "DEFAULT" if packet.pts is None or packet.pts in keep else "NONREF"
        yield from cc.decode(packet)


def _decode_pts(container, stream, scan: StreamScan, wanted: list[int], path: str, put, *, seek: bool = True) -> None:
    """Call ``put(pts, frame)`` for every wanted presentation timestamp (ascending), decoding forward from the nearest
    keyframe before each one (``seek=False``: from the start, in one pass, nothing skipped). A wanted frame the
    decoder passes without producing (a seek that landed late, a dropped frame) raises ``LookupError``."""
    keep = set(wanted) if seek and stream.codec_context.name in FAST_CODECS else None
    pending = set(wanted)
    frames = None
    position: int | None = None  # pts of the last decoded frame
    for w in wanted:
        if w not in pending:
            continue
        key = scan.keyframe_before(w)
        if seek and key is not None and key > int(scan.keyframes[0]) and (position is None or key > position):
            container.seek(key, stream=stream, backward=True)  # a keyframe between here and w: skip the gap
            frames, position = _packets_decoded(container, stream, keep), None
        elif frames is None:
            frames = _packets_decoded(container, stream, keep)
        for frame in frames:
            if frame.pts is None:
                continue
            if position is None and frame.pts > w:
                raise LookupError(f"decoding started at pts {frame.pts}, after the wanted {w}")
            position = frame.pts
            if position in pending:
                put(position, frame)
                pending.discard(position)
            if position >= w:
                break
        if w in pending:
            raise LookupError(f"no decoded frame has pts {w} (last decoded: {position})")


def _pyav_rgb(frame, h: int, w: int) -> np.ndarray:
    """A PyAV frame as ``uint8 [h, w, 3]`` RGB, scaled and converted in one swscale pass (no full-size RGB copy)."""
    if (frame.height, frame.width) == (h, w):
        return frame.to_ndarray(format="rgb24")
    return frame.reformat(w, h, format="rgb24", interpolation=PYAV_INTERPOLATION).to_ndarray()


def decode_pyav(path: str, times_fn: TimesFn, size: SizeFn | None = None) -> DecodedVideo:
    """Decode with PyAV: the frames a player shows at the target times (see the module docstring)."""
    import av

    scan = probe(path)
    timeline = scan.timeline
    idx = _indices(path, times_fn, timeline)
    index_of = {int(scan.pts[i]): i for i in idx}
    wanted = sorted(index_of)
    for seek in (True, False):  # a seek that lands wrong is redone by one pass from the start
        out = _Frames(path, timeline, idx, "pyav", size, scan.sample_aspect)

        def put(pts, frame, out=out):
            if out.rotation is None:
                rotation = frame_rotation(path, frame)  # the whole display matrix: mirrored or odd ones refused
            else:  # the angle alone: PyAV 18 ties a frame whose side data is read into a reference cycle
                rotation = round((frame.rotation or 0) / 90) * 90 % 360
            out.add(index_of[pts], (frame.height, frame.width), rotation, rotation, lambda h, w: _pyav_rgb(frame, h, w))

        with av.open(path) as container:
            stream = container.streams[scan.index]
            if stream.codec_context.name in FAST_CODECS:
                stream.thread_type = "AUTO"  # frame threads: decoding forward through a GOP pays
                stream.codec_context.thread_count = DECODE_THREADS
            try:
                _decode_pts(container, stream, scan, wanted, path, put, seek=seek)
                return out.result()
            except LookupError as e:
                if not seek:
                    t = (wanted[0] - scan.pts[0]) * float(scan.time_base)
                    raise VideoDecodeError(f"{path}: could not decode the frames at {t:.3f} s and after ({e})") from e
                log.debug("%s: seeking missed a frame (%s); decoding from the start", path, e)
    raise AssertionError("unreachable")


def decode_torchcodec(path: str, times_fn: TimesFn, size: SizeFn | None = None) -> DecodedVideo:
    """Decode with torchcodec at the timeline PyAV reads, one frame at a time; every returned timestamp is checked."""
    from torchcodec.decoders import VideoDecoder

    scan = probe(path)
    timeline = scan.timeline
    idx = _indices(path, times_fn, timeline)
    tb = float(scan.time_base)
    # Ask for the middle of each frame's display interval: a frame's exact start may round to the one before.
    ends = np.append(scan.pts[1:], scan.end)
    dec = VideoDecoder(path, stream_index=scan.index, seek_mode="exact")  # 1 thread: with 2, wrong frames (matrix)
    rotation, _ = display_tags(path, scan.index)  # rejects mirrored or odd matrices
    turn = rotation if rotation and not getattr(dec.metadata, "rotation", None) else 0  # 0.17 turns frames itself
    out = _Frames(path, timeline, idx, "torchcodec", size, scan.sample_aspect)
    for i in sorted(set(idx)):
        pts = int(scan.pts[i])
        # A batch of one: torchcodec 0.17's get_frame_played_at returns the next frame on some files (the matrix).
        frame = dec.get_frames_played_at([(pts + int(ends[i])) / 2 * tb])
        got = float(frame.pts_seconds[0])
        if abs(got - pts * tb) > min(tb, 1e-3):
            raise VideoDecodeError(
                f"{path}: torchcodec returned the frame at {got:.4f} s for the one at {pts * tb:.4f} s"
            )
        hwc = frame.data[0].permute(1, 2, 0)  # [H, W, 3]
        out.add(i, tuple(hwc.shape[:2]), turn, rotation, lambda h, w, x=hwc: resize_rgb(x, (h, w)))
    return out.result()


def decode_decord(path: str, times_fn: TimesFn, size: SizeFn | None = None) -> DecodedVideo:
    """Decode with decord at decord's own frame list and timestamps, one frame at a time (not checked; see the module
    docstring)."""
    import decord

    vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    total = len(vr)
    if total <= 0:
        raise VideoDecodeError(f"{path}: decord reports {total} frames")
    stamps = vr.get_frame_timestamp(list(range(total)))  # [N, 2] start and end (s) of each frame
    start = float(stamps[0, 0])
    times = stamps[:, 0] - start
    if total > 1 and not np.all(np.diff(times) > 0):
        raise VideoDecodeError(f"{path}: decord's frame timestamps are not increasing")
    timeline = VideoTimeline(times.astype(np.float64), float(stamps[-1, 1]) - start)
    idx = _indices(path, times_fn, timeline)
    rotation, sar = display_tags(path)  # decord 0.6 turns frames upright itself; this rejects what it cannot
    out = _Frames(path, timeline, idx, "decord", size, sar)
    for i in sorted(set(idx)):
        frame = vr[i].asnumpy()  # [H, W, 3]
        out.add(i, frame.shape[:2], 0, rotation, lambda h, w, x=frame: resize_rgb(x, (h, w)))
    return out.result()


BACKENDS: dict[str, Callable[..., DecodedVideo]] = {
    "pyav": decode_pyav,
    "torchcodec": decode_torchcodec,
    "decord": decode_decord,
}
"""Backend name -> ``decode(path, times_fn, size) -> DecodedVideo``: the one list of backend names."""

BackendName = Literal[tuple(BACKENDS)]  # type: ignore[valid-type]  # the names above, for config validation

#: The default backend: accurate on every case of the ffmpeg-made matrix (``docs/data.md``).
DEFAULT_BACKEND = "pyav"


def _decode_in_order(
    path: str, order: list[tuple[str, Callable[..., DecodedVideo]]], times_fn: TimesFn, size: SizeFn | None
) -> DecodedVideo:
    errors = []
    for name, decode in order:
        try:
            return decode(path, times_fn, size)
        except ImportError as e:
            errors.append(f"{name}: not installed ({e})")
        except VideoDecodeError as e:
            errors.append(f"{name}: {str(e).removeprefix(f'{path}: ')}")
        except UserError:
            raise  # the caller's size rule refuses the frame (aspect ratio, pixel bounds): no backend does better
        except Exception as e:  # noqa: BLE001 - backends raise many types on corrupt files
            errors.append(f"{name}: {type(e).__name__}: {e}")
        if name != order[-1][0]:
            log.debug("backend %s failed on %s, falling back: %s", name, path, errors[-1])
    raise VideoDecodeError(f"{path}: could not decode video ({'; '.join(errors)})")


def decode_video(
    path: str | os.PathLike,
    times_fn: TimesFn,
    backend: str = DEFAULT_BACKEND,
    fallback: str | None = None,
    *,
    size: SizeFn | None = None,
    time_limit: float | None = None,
) -> DecodedVideo:
    """Decode the frames on screen at the times ``times_fn`` picks from ``path``'s timeline with ``backend``; on
    failure try ``fallback``.

    ``size``: the returned frames' ``(height, width)`` from the display size; each frame is brought to it as it is
    decoded (None: the stored pixels, upright). ``time_limit``: seconds the whole decode may take; it then runs in a
    child process (:class:`~lit_videor2.data.decode_process.DecoderProcess`) that is killed past the limit, even when stuck in native code, and
    :class:`VideoDecodeTimeout` is raised; ``times_fn`` and ``size`` still run in this process (the child asks for
    their results). None: decode in this process, without a limit.

    Raises :class:`VideoDecodeError` naming the file when it is missing, empty, or no backend can read it.
    """
    path = str(path)
    for name in (backend, fallback):
        if name is not None and name not in BACKENDS:
            raise ValueError(f"unknown video backend {name!r}; choose one of {sorted(BACKENDS)}")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"decode time_limit must be > 0 seconds or None, got {time_limit}")
    p = Path(path)
    if not p.is_file():
        raise VideoDecodeError(f"{path}: video file not found")
    if p.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: video file is empty")
    order = [(name, BACKENDS[name]) for name in dict.fromkeys([backend, fallback]) if name]
    if time_limit is None:
        return _decode_in_order(path, order, times_fn, size)
    return decoder_process().run(_decode_in_order, (path, order), (times_fn, size), time_limit, path)

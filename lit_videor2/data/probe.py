"""What a player makes of a video file, read with PyAV: which stream it shows, when each frame is shown, how it is
turned and stretched. No pixels are decoded here except one frame for the rotation tag.

* **Stream**: the video stream flagged default, else the first video stream that is not cover art (an attached
  picture), as players choose; not the "best" stream by size or bitrate.
* **Timeline**: the presentation timestamps of the stream's packets, read by demuxing (cheap: no decoding), in
  presentation order. Packets an MP4 edit list hides (FFmpeg marks them *discard*), empty packets, and frames that
  cannot be decoded because they come before the first keyframe (in decoding order, or in time: the leading
  pictures of an open GOP at the start of a cut) are left out;
  times count from the first shown frame, so streams whose clock starts late (MPEG-TS, fragmented MP4, cut clips)
  start at 0. A packet without a presentation timestamp (AVI) uses its decoding timestamp.
* **Pixel aspect**: the stream's sample aspect ratio (non-square pixels are widened to the display aspect later).
* **Rotation**: the display matrix of the first decoded frame (FFmpeg carries the MP4 ``tkhd`` matrix on frames).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from lit_videor2.data.timeline import VideoTimeline, timeline_from_pts
from lit_videor2.errors import UserError

log = logging.getLogger(__name__)


class VideoDecodeError(UserError, RuntimeError):
    """A video could not be decoded; the message names the file and the backend(s) tried."""


def select_video_stream(container, path: str):
    """The video stream a player shows: the one flagged default, else the first that is not an attached picture."""
    import av

    flags = av.stream.Disposition
    streams = [s for s in container.streams.video if not s.disposition & flags.attached_pic]
    if not streams:
        raise VideoDecodeError(f"{path}: no video stream")
    default = [s for s in streams if s.disposition & flags.default]
    return (default or streams)[0]


@dataclass(frozen=True)
class StreamScan:
    """The shown frames of one stream, in the stream's own time units."""

    index: int
    """Stream index in the container."""
    time_base: Fraction
    pts: np.ndarray
    """``int64 [N]`` presentation timestamps of the shown frames, ascending."""
    keyframes: np.ndarray
    """``int64 [K]`` presentation timestamps of the keyframes (hidden ones included), ascending: where decoding can
    start."""
    end: int
    """Presentation timestamp where the last shown frame ends."""
    sample_aspect: Fraction
    """Pixel aspect ratio (width / height of one stored pixel); 1 for square pixels."""

    @property
    def timeline(self) -> VideoTimeline:
        return timeline_from_pts(self.pts, self.end, float(self.time_base))[0]

    def keyframe_before(self, pts: int) -> int | None:
        """The last keyframe at or before ``pts`` (None when the stream has none there)."""
        k = int(np.searchsorted(self.keyframes, pts, side="right")) - 1
        return int(self.keyframes[k]) if k >= 0 else None


def scan_stream(container, stream, path: str) -> StreamScan:
    """Demux ``stream`` of an open container to the end and return its :class:`StreamScan`.

    Raises :class:`VideoDecodeError` naming the file when the stream has no shown frame, when reading it fails or
    meets a corrupt packet, or when it holds fewer frames than its header lists (a file cut short).
    """
    entries: list[tuple[int, int, bool, bool]] = []  # (pts, end, keyframe, shown) of each packet, in decoding order
    read = 0  # packets with a timestamp, hidden ones included (what the header counts)
    try:
        for packet in container.demux(stream):
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None and packet.size == 0:  # the demuxer's flush packet at the end
                continue
            if ts is None:
                raise VideoDecodeError(
                    f"{path}: the video packets carry no timestamps (a raw elementary stream?), so frame times are "
                    f"unknown; put it in a container at its rate, e.g. ffmpeg -r 25 -i IN -c copy OUT.mp4"
                )
            read += 1
            if packet.is_corrupt:
                raise VideoDecodeError(f"{path}: packet {read} of the video stream is corrupt (file cut short?)")
            if packet.size > 0:  # not a dropped frame; pre-roll an edit list hides is decoded but not shown
                entries.append((ts, ts + (packet.duration or 0), bool(packet.is_keyframe), not packet.is_discard))
    except VideoDecodeError:
        raise
    except Exception as e:  # noqa: BLE001 - PyAV raises many types on cut or corrupt files
        raise VideoDecodeError(f"{path}: the video stream cannot be read after {read} frames ({e})") from e
    if stream.frames and read < stream.frames:
        raise VideoDecodeError(
            f"{path}: truncated: the header lists {stream.frames} frames, only {read} are in the file"
        )
    keys = [ts for ts, _, key, _ in entries if key]
    if keys:
        # Frames before the first keyframe, in decoding order or in time (the leading pictures of an open GOP at the
        # start of a cut without re-encoding, in MPEG-TS or Matroska), refer to frames that are not in the file:
        # decoders drop them and players never show them.
        first = next(i for i, e in enumerate(entries) if e[2])
        entries = [e for e in entries[first:] if e[0] >= keys[0]]
    shown = [e for e in entries if e[3]]
    if not shown:
        raise VideoDecodeError(f"{path}: the video stream has no frames")
    p = np.unique(np.asarray([ts for ts, _, _, _ in shown], dtype=np.int64))
    gaps = np.diff(p)
    end = max(e[1] for e in shown)
    if end <= p[-1]:  # packets without durations: the last frame lasts as long as a typical one
        end = int(p[-1]) + (int(np.median(gaps)) if len(gaps) else 1)
    sar = stream.sample_aspect_ratio
    return StreamScan(
        index=stream.index,
        time_base=Fraction(stream.time_base),
        pts=p,
        keyframes=np.unique(np.asarray(keys or [p[0]], dtype=np.int64)),  # no flags: decode from the start
        end=int(end),
        sample_aspect=Fraction(sar) if sar and sar > 0 else Fraction(1),
    )


def probe(path: str) -> StreamScan:
    """Open ``path`` with PyAV and scan the stream a player shows (see the module docstring).

    Scans are kept per process for the last :data:`PROBE_CACHE_SIZE` files (keyed by path, size and modification
    time), so a video seen again in a later epoch is not demuxed twice.
    """
    st = os.stat(path)
    return _probe(path, st.st_size, st.st_mtime_ns)


#: Scans kept per process (a long video's scan is a few bytes per frame).
PROBE_CACHE_SIZE = 512


@functools.lru_cache(maxsize=PROBE_CACHE_SIZE)
def _probe(path: str, size: int, mtime_ns: int) -> StreamScan:
    import av

    try:
        container = av.open(path)
    except Exception as e:  # noqa: BLE001 - not a media file, unreadable
        raise VideoDecodeError(f"{path}: not a readable video file ({type(e).__name__}: {e})") from e
    with container:
        return scan_stream(container, select_video_stream(container, path), path)


def rotation_from_display_matrix(matrix: list[int] | np.ndarray) -> int:
    """Counter-clockwise degrees (0, 90, 180 or 270) to turn stored frames by so they show as players show them.

    ``matrix`` is FFmpeg's display matrix (9 ints, row-major ``[a, b, u, c, d, v, x, y, w]``, ``a..d`` in 16.16
    fixed point), the one in the MP4/MOV ``tkhd`` box. It maps a stored pixel ``(p, q)`` to
    ``(a p + c q + x, b p + d q + y)``; the angle is ``-atan2(b, a)``, as FFmpeg's ``av_display_rotation_get``
    computes it. Raises ``ValueError`` for a mirrored or singular matrix or an angle that is not a multiple of 90.
    """
    a, b, c, d = (float(matrix[i]) / (1 << 16) for i in (0, 1, 3, 4))
    if a * d - b * c <= 0:
        raise ValueError(f"mirrored or singular display matrix {[int(v) for v in matrix]}")
    degrees = -math.degrees(math.atan2(b, a))
    quarter = round(degrees / 90)
    if abs(degrees - 90 * quarter) > 1.0:
        raise ValueError(f"rotation of {degrees:.1f} degrees is not a multiple of 90")
    return (90 * quarter) % 360


def frame_rotation(path: str, frame) -> int:
    """The rotation (see :func:`rotation_from_display_matrix`) of a decoded PyAV frame; 0 when it has none."""
    for sd in frame.side_data:
        if getattr(sd.type, "name", str(sd.type)).endswith("DISPLAYMATRIX"):
            matrix = np.frombuffer(bytes(sd), dtype="=i4")
            if matrix.size < 9:
                raise VideoDecodeError(f"{path}: display matrix has {matrix.size * 4} bytes, expected 36")
            try:
                return rotation_from_display_matrix(matrix[:9])
            except ValueError as e:
                raise VideoDecodeError(f"{path}: cannot apply the rotation tag: {e}") from e
    return 0


def display_tags(path: str, stream_index: int | None = None) -> tuple[int, Fraction]:
    """``(rotation, sample aspect)`` of ``path``'s shown video stream, read with PyAV (the rotation from its first
    frame, see :func:`frame_rotation`), for backends that do not report them.

    When PyAV cannot read the file, logs a warning and returns ``(0, 1)`` (frames as stored).
    """
    import av

    try:
        with av.open(path) as container:
            stream = container.streams[stream_index] if stream_index is not None else None
            stream = stream or select_video_stream(container, path)
            sar = stream.sample_aspect_ratio
            stream.codec_context.thread_count = 1  # one frame: threads only add latency
            frame = next(container.decode(stream), None)
    except VideoDecodeError:
        raise
    except Exception as e:  # noqa: BLE001 - PyAV raises many types on files only other backends read
        log.warning(
            "%s: PyAV cannot read the display tags (%s: %s); frames are used as stored", path, type(e).__name__, e
        )
        return 0, Fraction(1)
    rotation = frame_rotation(path, frame) if frame is not None else 0
    return rotation, Fraction(sar) if sar and sar > 0 else Fraction(1)


def rotate_frames(frames: np.ndarray, rotation: int) -> np.ndarray:
    """``uint8 [T, H, W, C]`` turned ``rotation`` degrees counter-clockwise (``[T, W, H, C]`` for 90 and 270)."""
    if rotation % 360 == 0:
        return frames
    return np.ascontiguousarray(np.rot90(frames, k=(rotation // 90) % 4, axes=(1, 2)))

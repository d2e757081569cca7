"""Clips made the way users' files are made: by the ffmpeg command line, each frame painting its own index.

Frames are rendered here (numpy) and piped to ``ffmpeg`` as raw RGB; the encoder, muxer and any post-processing
(``-c copy`` cuts, fragmenting, rotation tags, two streams) are ffmpeg's own. Each frame paints its index as 12 bits
in a 4 × 4 grid of flat black / white cells, with three fixed marker cells (top-left white, top-right and bottom-left
black), so a decoded frame says which source frame it is after lossy coding, chroma subsampling, 10-bit formats,
resizing and non-square pixels, and its orientation shows whether a rotation tag was applied.

Each :class:`Case` knows what a player shows: the content index and presentation time (seconds from the first shown
frame) of every shown frame, the display size and the duration. ``expected_at(t)`` is the frame on screen at ``t``.
Used by ``bench/decode_accuracy.py`` (which writes the docs' table) and by ``tests/test_video_matrix.py`` and
``tests/test_odd_videos.py`` (which import it from here: ``bench/`` imports only the package, never ``tests/``).
"""

from __future__ import annotations

import bisect
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

GRID = 4
#: Cells holding a fixed marker: (row, col) -> value. The rest hold the index bits, most significant first.
MARKERS = {(0, 0): 255, (0, GRID - 1): 0, (GRID - 1, 0): 0}
BIT_CELLS = [(r, c) for r in range(GRID) for c in range(GRID) if (r, c) not in MARKERS]
#: The second video stream of a two-stream file paints ``index + SECOND_STREAM`` so it cannot pass for the first.
SECOND_STREAM = 2048


_TEXTURE = np.random.default_rng(0).integers(-40, 41, size=(512, 512), dtype=np.int16)


def paint_index(index: int, height: int, width: int) -> np.ndarray:
    """``uint8 [H, W, 3]``: ``index`` (0 … 4095) as black / white cells, marker cells fixed, under a grain texture
    that moves with the index (so the encoder predicts from other frames, as on real footage)."""
    if not 0 <= index < 1 << len(BIT_CELLS):
        raise ValueError(f"index {index} does not fit {len(BIT_CELLS)} bits")
    img = np.zeros((height, width, 3), np.uint8)
    values = dict(MARKERS)
    for k, cell in enumerate(BIT_CELLS):
        values[cell] = 255 if index >> (len(BIT_CELLS) - 1 - k) & 1 else 0
    for (r, c), v in values.items():
        img[r * height // GRID : (r + 1) * height // GRID, c * width // GRID : (c + 1) * width // GRID] = v
    grain = np.roll(_TEXTURE, (3 * index, 5 * index), axis=(0, 1))
    grain = np.tile(grain, (height // 512 + 1, width // 512 + 1))[:height, :width, None]
    return np.clip(img.astype(np.int16) + np.where(img > 127, -1, 1) * np.abs(grain), 0, 255).astype(np.uint8)


def _cell_means(frame: np.ndarray) -> dict[tuple[int, int], float]:
    h, w = frame.shape[:2]
    out = {}
    for r in range(GRID):
        for c in range(GRID):
            y0, y1 = r * h // GRID, (r + 1) * h // GRID
            x0, x1 = c * w // GRID, (c + 1) * w // GRID
            dy, dx = max(1, (y1 - y0) // 4), max(1, (x1 - x0) // 4)  # the cell's centre half: no edge bleed
            out[r, c] = float(frame[y0 + dy : y1 - dy, x0 + dx : x1 - dx].mean())
    return out


def read_index(frame: np.ndarray) -> int:
    """The index :func:`paint_index` painted into ``frame`` (``[H, W, 3]`` or ``[3, H, W]``), or -1 when the markers
    are not where they belong (a frame turned, mirrored, cropped or not one of ours)."""
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[0] == 3 and frame.shape[-1] != 3:
        frame = frame.transpose(1, 2, 0)
    means = _cell_means(frame)
    if any(abs(means[cell] - v) > 80 for cell, v in MARKERS.items()):
        return -1
    bits = [means[cell] > 127 for cell in BIT_CELLS]
    return sum(b << (len(bits) - 1 - k) for k, b in enumerate(bits))


@dataclass
class Case:
    """One file and what a player shows of it."""

    name: str
    file: str
    """File name (the extension picks the container)."""
    make: Callable[[Path], None]
    """Writes the file at the given path with the ffmpeg command line."""
    shown: list[tuple[float, int]] = field(default_factory=list)
    """(presentation time from the first shown frame, content index) of every shown frame, in time order."""
    display: tuple[int, int] = (0, 0)
    """(width, height) a player shows (after pixel aspect and rotation)."""
    duration: float = 0.0
    """Seconds from the first shown frame to the end of the last."""
    rotation: int = 0
    """Counter-clockwise turn a player applies (from the display matrix)."""
    broken: bool = False
    """Decoding must fail with an error naming the file."""

    def expected_at(self, t: float) -> int:
        """Content index of the frame on screen at ``t`` seconds (the last one shown at or before ``t``)."""
        times = [s for s, _ in self.shown]
        k = bisect.bisect_right(times, t + 1e-6) - 1
        return self.shown[max(k, 0)][1]

    def interval_at(self, t: float) -> float:
        """How long the frame on screen at ``t`` stays there (its presentation interval)."""
        times = [s for s, _ in self.shown] + [self.duration]
        k = max(bisect.bisect_right(times, t + 1e-6) - 1, 0)
        return times[min(k + 1, len(times) - 1)] - times[k]


# Display matrices as phones (and FFmpeg's MP4 muxer) write them into the ``tkhd`` box for a clip to be shown turned
# 90/180/270 degrees clockwise: ``[a, b, u, c, d, v, x, y, w]``, a..d/x/y in 16.16 and u/v/w in 2.30 fixed point,
# big-endian. A stored pixel (p, q) (x right, y down) is shown at (a p + c q + x, b p + d q + y); for 90 degrees
# that is (H - q, p): the stored top-left corner (0, 0) lands at (H, 0), the top-right of the shown picture, i.e. the
# picture turns clockwise, as ffplay and browsers show it. FFmpeg calls this rotation -90 (its angles are
# counter-clockwise: av_display_rotation_get = -atan2(b, a)).
ONE, W30 = 1 << 16, 1 << 30


def clockwise_matrix(degrees: int, w: int, h: int) -> list[int]:
    """The ``tkhd`` matrix of a ``w``×``h`` stored picture shown turned ``degrees`` (90, 180, 270) clockwise."""
    return {
        90: [0, ONE, 0, -ONE, 0, 0, h * ONE, 0, W30],
        180: [-ONE, 0, 0, 0, -ONE, 0, w * ONE, h * ONE, W30],
        270: [0, -ONE, 0, ONE, 0, 0, 0, w * ONE, W30],
    }[degrees]


def set_display_matrix(path: Path, matrix: list[int]) -> Path:
    """Patch the 36-byte matrix of the (only, version 0) ``tkhd`` box of an MP4, as a phone writes it."""
    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    assert at > 0 and data.count(b"tkhd") == 1 and data[at + 4] == 0, "expected one version-0 tkhd box"
    # after the type: version+flags, creation, modification, track id, reserved, duration (4 each), reserved (8),
    # layer, alternate group, volume, reserved (2 each), then the matrix, then width and height
    off = at + 4 + 4 * 6 + 8 + 2 * 4
    assert struct.unpack(">9i", data[off : off + 36]) == (ONE, 0, 0, 0, ONE, 0, 0, 0, W30)  # identity as written
    data[off : off + 36] = struct.pack(">9i", *matrix)
    path.write_bytes(bytes(data))
    return path


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None


def _run(args: list[str], stdin: bytes | None = None) -> None:
    proc = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], input=stdin, capture_output=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {proc.stderr.decode(errors='replace')[-2000:]}")


def _raw(n: int, w: int, h: int, offset: int = 0) -> bytes:
    return b"".join(paint_index(i + offset, h, w).tobytes() for i in range(n))


def encode(
    out: Path, n: int, rate: str, w: int, h: int, codec_args: list[str], *, pre: list[str] = (), offset: int = 0
) -> None:
    """Pipe ``n`` painted ``w``×``h`` frames at ``rate`` into ``ffmpeg`` with ``codec_args`` writing ``out``."""
    raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", rate, "-i", "-"]
    _run([*pre, *raw, *codec_args, str(out)], _raw(n, w, h, offset))


def _cfr(n: int, fps: Fraction, first: int = 0) -> list[tuple[float, int]]:
    return [(float(i / fps), first + i) for i in range(n)]


#: A keyframe every 12 frames (half a second; encoders default to about 10 s): the clips are short, and decoders
#: must seek between keyframes on them as they do on long videos.
GOP = ["-g", "12"]
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", *GOP]


def cases() -> list[Case]:
    """The matrix (see ``docs/data.md``): every case a user's file may be."""
    w, h = 192, 144
    out: list[Case] = []

    def cfr(name, file, codec_args, n=48, rate="24", size=(w, h), pre=(), **kw) -> Case:
        fps = Fraction(rate)
        c = Case(
            name,
            file,
            lambda p: encode(p, n, rate, size[0], size[1], codec_args, pre=list(pre)),
            shown=_cfr(n, fps),
            display=kw.pop("display", size),
            duration=float(n / fps),
            **kw,
        )
        out.append(c)
        return c

    cfr("h264-mp4", "h264.mp4", X264)
    cfr(
        "h264-open-gop-bframes", "opengop.mp4", [*X264, "-bf", "3", "-x264-params", "open-gop=1:keyint=12:min-keyint=4"]
    )
    cfr("h264-10bit", "h264_10.mp4", [*X264, "-pix_fmt", "yuv420p10le"])
    cfr("h264-444", "h264_444.mp4", [*X264, "-pix_fmt", "yuv444p"])
    cfr("h264-interlaced", "interlaced.mp4", [*X264, "-flags", "+ilme+ildct", "-x264-params", "interlaced=1:tff=1"])
    cfr("h264-29.97fps", "ntsc.mp4", X264, n=60, rate="30000/1001")
    cfr(
        "hevc-10bit",
        "hevc10.mp4",
        ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", *GOP, "-x265-params", "log-level=error"],
    )
    cfr("vp9-webm", "vp9.webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "400k", *GOP])
    cfr("av1-mkv", "av1.mkv", ["-c:v", "libsvtav1", "-preset", "12", "-pix_fmt", "yuv420p", *GOP])
    cfr("mpeg4-avi-bframes", "xvid.avi", ["-c:v", "mpeg4", "-bf", "2", "-q:v", "3", "-vtag", "XVID", *GOP])
    cfr("mpeg2-ps-mpg", "mpeg2.mpg", ["-c:v", "mpeg2video", "-bf", "2", "-q:v", "3", *GOP])
    cfr("h264-mkv-bframes", "h264.mkv", [*X264, "-bf", "3"])
    cfr("h264-flv", "h264.flv", [*X264, "-bf", "2"])
    cfr("wmv2-asf", "wmv2.wmv", ["-c:v", "wmv2", "-q:v", "3", *GOP])
    cfr("theora-ogg", "theora.ogv", ["-c:v", "libtheora", "-q:v", "7", *GOP])
    cfr("gif", "anim.gif", [])
    cfr("prores-mov", "prores.mov", ["-c:v", "prores_ks", "-profile:v", "1", "-pix_fmt", "yuv422p10le"])
    cfr("mjpeg-avi", "mjpeg.avi", ["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p"])
    cfr(
        "audio-stream-first",
        "audio_first.mp4",
        [*X264, "-map", "0:a", "-map", "1:v", "-c:a", "aac", "-shortest"],
        pre=["-f", "lavfi", "-i", "sine=frequency=440:duration=2.5"],
    )
    # Non-square pixels: stored 192×144 with SAR 4:3 (as DV and anamorphic DVD video) is shown as 256×144; stored
    # 384×144 with SAR 1:2 is shown as 192×144.
    cfr("non-square-pixels", "sar.mp4", [*X264, "-vf", "setsar=4/3"], display=(256, 144))
    cfr("non-square-narrow", "sar_half.mp4", [*X264, "-vf", "setsar=1/2"], size=(384, 144), display=(192, 144))
    # A rotation tag as phones write it: the MP4 ``tkhd`` display matrix, shown turned 90 degrees clockwise (FFmpeg 6+
    # writes it with ``-display_rotation``; Debian 12's FFmpeg 5.1 cannot, so the box written by ffmpeg is patched).
    rot = cfr("rotation-90", "rotated.mp4", X264, display=(h, w), rotation=270)
    rot.make = lambda p: (encode(p, 48, "24", w, h, X264), set_display_matrix(p, clockwise_matrix(90, w, h)))

    # MPEG-TS: the clock starts at 1.4 s plus the B-frame delay.
    cfr("mpegts-nonzero-start", "clip.ts", [*X264, "-bf", "2", "-f", "mpegts"])
    cfr("fragmented-mp4", "frag.mp4", [*X264, "-bf", "2", "-movflags", "frag_keyframe+empty_moov+default_base_moof"])

    def webm_no_duration(p: Path) -> None:  # written to a pipe: no duration, no cues
        raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "24", "-i", "-"]
        codec = ["-c:v", "libvpx", "-b:v", "400k", *GOP, "-f", "webm", "pipe:1"]
        proc = subprocess.run(["ffmpeg", "-loglevel", "error", *raw, *codec], input=_raw(48, w, h), capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(f"ffmpeg (webm to a pipe) failed: {proc.stderr.decode(errors='replace')[-2000:]}")
        p.write_bytes(proc.stdout)

    out.append(Case("webm-no-duration", "nodur.webm", webm_no_duration, _cfr(48, Fraction(24)), (w, h), 2.0))

    # A clip cut without re-encoding: keyframe every second, cut at 1.4 s; the edit list hides the pre-roll.
    def cut(p: Path) -> None:
        src = p.with_name("uncut.mp4")
        encode(src, 100, "25", w, h, [*X264, "-bf", "2", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0"])
        _run(["-ss", "1.4", "-i", str(src), "-c", "copy", str(p)])

    out.append(Case("mp4-cut-edit-list", "cut.mp4", cut, _cfr(65, Fraction(25), first=35), (w, h), 2.6))

    # Cuts without re-encoding of an open-GOP MPEG-TS (as broadcast recordings are cut) into MPEG-TS and Matroska,
    # which have no edit lists: the leading picture of the first GOP refers to a frame that was cut away, so decoders
    # drop it and players start at the keyframe (frame 36 of the source at 24 fps).
    def open_gop_cut(p: Path, fmt: str) -> None:
        src = p.with_name(f"opengop_src_{fmt}.ts")
        gop = ["-bf", "3", "-x264-params", "open-gop=1:keyint=12:min-keyint=12:scenecut=0"]
        encode(src, 96, "24", w, h, [*X264, *gop, "-f", "mpegts"])
        _run(["-ss", "1.3", "-i", str(src), "-c", "copy", "-f", fmt, str(p)])

    for fmt, file in (("mpegts", "cut_open_gop.ts"), ("matroska", "cut_open_gop.mkv")):
        out.append(
            Case(
                f"{fmt}-cut-open-gop",
                file,
                lambda p, fmt=fmt: open_gop_cut(p, fmt),
                _cfr(60, Fraction(24), first=36),
                (w, h),
                2.5,
            )
        )

    # Two video streams: the first flagged default and the second larger (a "best stream" by size picks it); then
    # the same with the default flag on the second stream, which is the one players show.
    def two_streams(p: Path, default: int) -> None:
        a, b = p.with_name(f"a{default}.mp4"), p.with_name(f"b{default}.mp4")
        encode(a, 48, "24", w, h, X264)
        encode(b, 48, "24", 2 * w, 2 * h, X264, offset=SECOND_STREAM)
        flags = [
            "-disposition:v:0",
            "default" if default == 0 else "0",
            "-disposition:v:1",
            "default" if default else "0",
        ]
        _run(["-i", str(a), "-i", str(b), "-map", "0:v", "-map", "1:v", "-c", "copy", *flags, str(p)])

    out.append(Case("two-video-streams", "two.mp4", lambda p: two_streams(p, 0), _cfr(48, Fraction(24)), (w, h), 2.0))
    second = [(t, i + SECOND_STREAM) for t, i in _cfr(48, Fraction(24))]
    out.append(Case("default-second-stream", "two_b.mp4", lambda p: two_streams(p, 1), second, (2 * w, 2 * h), 2.0))

    # Variable frame rate: 30 fps with a 0.3 s freeze after frame 20 (as phones and screen recorders write).
    freeze_at, freeze = 20, 0.3
    vfr_times = [i / 30 + (freeze if i >= freeze_at else 0.0) for i in range(60)]
    vfr_args = [*X264, "-vf", f"setpts='if(gte(N,{freeze_at}),N/30/TB+{freeze}/TB,N/30/TB)'", "-fps_mode", "vfr"]
    out.append(
        Case(
            "variable-frame-rate",
            "vfr.mp4",
            lambda p: encode(p, 60, "30", w, h, vfr_args),
            [(t, i) for i, t in enumerate(vfr_times)],
            (w, h),
            vfr_times[-1] + 1 / 30,
        )
    )
    # A phone-like clip whose rate changes all the time (frame intervals of 1/30 … 1/10 s).
    rng = np.random.default_rng(0)
    steps = rng.choice([1, 1, 1, 2, 3], size=59)
    phone_times = [0.0, *np.cumsum(steps / 30).tolist()]
    # setpts sees N; pts(N) = N + sum of the extra steps before N, in 1/30 s.
    extra = "+".join(f"{s - 1}*gte(N,{k + 1})" for k, s in enumerate(steps) if s != 1) or "0"
    phone_args = [*X264, "-vf", f"setpts='(N+{extra})/30/TB'", "-fps_mode", "vfr"]
    out.append(
        Case(
            "variable-rate-phone",
            "phone.mp4",
            lambda p: encode(p, 60, "30", w, h, phone_args),
            [(t, i) for i, t in enumerate(phone_times)],
            (w, h),
            phone_times[-1] + 1 / 30,
        )
    )
    return out


def broken_cases() -> list[Case]:
    """Files that must fail with an error naming the file: truncated, without timestamps, empty, not a video."""

    def truncated(p: Path) -> None:
        src = p.with_name("whole.mp4")
        encode(src, 48, "24", 192, 144, [*X264, "-movflags", "+faststart"])
        data = src.read_bytes()
        p.write_bytes(data[: len(data) // 3])

    return [
        Case("truncated-mp4", "truncated.mp4", truncated, broken=True),
        # A raw H.264 elementary stream: no container, so no timestamps to tell the frames' times.
        Case(
            "raw-h264-no-timestamps",
            "raw.h264",
            lambda p: encode(p, 48, "24", 192, 144, [*X264, "-f", "h264"]),
            broken=True,
        ),
        Case("empty-file", "empty.mp4", lambda p: p.write_bytes(b""), broken=True),
        Case("not-a-video", "notes.mp4", lambda p: p.write_text("these are not frames\n" * 50), broken=True),
    ]


def previous_shown(case: Case, index: int) -> int | None:
    """The content index shown just before ``index`` (None for the first)."""
    order = [i for _, i in case.shown]
    k = order.index(index)
    return order[k - 1] if k > 0 else None


def upright_to_stored(frame: np.ndarray, rotation: int) -> np.ndarray:
    """Undo a counter-clockwise turn of ``rotation`` degrees (``[H, W, 3]``), back to the frame as painted."""
    return np.rot90(frame, k=-(rotation // 90) % 4, axes=(0, 1)) if rotation % 360 else frame


def frame_problems(case: Case, frames, times: list[float], targets: list[float]) -> list[str]:
    """What is wrong with ``frames`` (``[T, H, W, 3]``, upright) reported at ``times`` for ``targets``; [] if right.

    Each frame must be a frame of the stream (its painted index one the case shows), reported within half of its
    presentation interval of that frame's true time (container clocks round to 1 ms), and be the frame a player
    shows at its target time.
    """
    true_time = {i: t for t, i in case.shown}
    problems = []
    for k, (frame, t, target) in enumerate(zip(frames, times, targets)):
        got = read_index(upright_to_stored(np.asarray(frame), case.rotation))
        want = case.expected_at(target)
        slack = max(case.interval_at(target) / 2, 1.5e-3)
        if got not in true_time:
            problems.append(f"frame {k} (target {target:.3f} s) shows no frame of the stream (read {got})")
        elif abs(true_time[got] - t) > slack:
            problems.append(f"frame {k}: reported at {t:.3f} s but shows frame {got} of {true_time[got]:.3f} s")
        elif got != want and not (got == previous_shown(case, want) and abs(true_time[want] - target) <= 1.5e-3):
            # (a target on a frame's start, where 1 ms clocks round, may show the frame before)
            problems.append(f"frame {k}: at {target:.3f} s a player shows frame {want}, got frame {got}")
    return problems


def decode_at(path: Path, backend: str, targets_of: Callable, size: Callable | None = None) -> tuple:
    """``decode_video`` of ``path`` with ``backend`` (no fallback) at ``targets_of(timeline)`` (frames at ``size`` of
    the display size, else stored); returns the decoded video and the target times."""
    from lit_videor2.data.decoding import decode_video

    targets: list[float] = []

    def times_fn(timeline):
        targets.extend(targets_of(timeline))
        return targets

    return decode_video(path, times_fn, backend=backend, fallback=None, size=size), targets


@dataclass
class Outcome:
    """How one backend did on one case: ``ok``, ``wrong`` (frames or stream facts not a player's) or ``error``."""

    kind: str
    wrong_frames: list[str] = field(default_factory=list)
    """:func:`frame_problems` of the returned frames."""
    notes: list[str] = field(default_factory=list)
    """Shown-frame count, duration or display size that differ from the player's."""
    targets: int = 0
    error: str = ""


def backend_outcome(case: Case, path: Path, backend: str, targets_of: Callable) -> Outcome:
    """Decode ``case`` with ``backend`` at ``targets_of`` and check everything a player would show."""
    from lit_videor2.data.decoding import VideoDecodeError

    try:
        dec, targets = decode_at(path, backend, targets_of)
    except VideoDecodeError as e:
        return Outcome("error", error=str(e))
    wrong = frame_problems(case, dec.frames, dec.times, targets)
    notes = []
    if dec.num_frames != len(case.shown):
        notes.append(f"{dec.num_frames} frames (shows {len(case.shown)})")
    if abs(dec.duration - case.duration) > 0.02:
        notes.append(f"{dec.duration:.2f} s (shows {case.duration:.2f} s)")
    if dec.display_hw != (case.display[1], case.display[0]):
        notes.append(f"{dec.display_hw[1]}x{dec.display_hw[0]} (shows {case.display[0]}x{case.display[1]})")
    return Outcome("wrong" if wrong or notes else "ok", wrong, notes, len(targets))

"""Record -> frames: decode, resize, optional burn-in overlays, optional on-disk cache.

Runs inside DataLoader workers (the dataset calls it), never in the training step.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from lit_videor2.data.decoding import DEFAULT_BACKEND, DEFAULT_DECODE_TIME_LIMIT, DecodedVideo, decode_video, resize_rgb
from lit_videor2.data.sampling import FrameSampling, format_hms, resized_hw, sample_times
from lit_videor2.data.timeline import VideoTimeline

log = logging.getLogger(__name__)


#: Version of the decoding rules in frame-cache keys: bump it when decoded frames change for the same file and
#: settings, so older cache entries are not served (2: rotation tags applied; 3: frames taken by time on the
#: player's timeline, the default stream, non-square pixels widened, real presentation times stored; 4: each frame
#: brought to the returned size as it is decoded, by swscale's bicubic filter with PyAV: ``docs/data.md``).
FRAME_CACHE_VERSION = 4


@dataclass(frozen=True)
class Overlay:
    """Text burned into frames (off by default; applied identically at train and eval time).

    The reference burns the time (top-left) and ``.srt`` subtitles (bottom) into training frames but not at
    evaluation; here whatever is configured applies to every stage that uses the data module.
    """

    timestamp: bool = False
    """Burn the frame time as ``HH:MM:SS`` into the top-left corner."""
    subtitles: bool = False
    """Burn the subtitle active at the frame time into the bottom of the frame."""
    subtitle_dir: str = "subtitles"
    """Subtitles are read from ``<video_root>/<subtitle_dir>/<video path>.srt``."""
    font_size: int = 0
    """Font size in pixels; 0 picks 1/12 of the frame height (at least 8)."""

    @property
    def enabled(self) -> bool:
        return self.timestamp or self.subtitles


@dataclass
class Frames:
    """Frames ready for the processor."""

    frames: torch.Tensor
    """``uint8 [T, 3, H, W]``."""
    times: list[float]
    """Presentation time of each frame, seconds from the first frame a player shows (the frame's own timestamp)."""
    duration: float
    """Seconds from the first shown frame to the end of the last."""
    backend: str
    cache_key: str | None = None
    """The frame cache key of these frames (None when the cache is off); keys the processor cache."""


def resize_frames(frames: np.ndarray, hw: tuple[int, int]) -> torch.Tensor:
    """``uint8 [T, H, W, 3]`` -> ``uint8 [T, 3, h, w]`` (bicubic, antialiased; no-op when the size matches), frame by
    frame with :func:`~lit_videor2.data.decoding.resize_rgb` (torchvision's uint8 kernel, as the Qwen video
    processors' torchvision backend resizes)."""
    if tuple(frames.shape[1:3]) == tuple(hw):
        return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous()
    out = torch.empty((len(frames), 3, *hw), dtype=torch.uint8)
    for k, frame in enumerate(frames):
        out[k] = torch.from_numpy(resize_rgb(frame, hw)).permute(2, 0, 1)
    return out


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    """``(start s, end s, text)`` of every cue in SubRip text (parsed by the ``srt`` package; lines joined)."""
    import srt

    return [
        (
            cue.start.total_seconds(),
            cue.end.total_seconds(),
            " ".join(x.strip() for x in cue.content.splitlines() if x.strip()),
        )
        for cue in srt.parse(text)
    ]


@lru_cache(maxsize=64)
def _load_srt(path: str) -> list[tuple[float, float, str]]:
    with open(path, encoding="utf-8-sig") as f:
        return parse_srt(f.read())


def subtitle_at(path: str, t: float) -> str:
    """The subtitle text shown at time ``t`` seconds in an ``.srt`` file ('' when none)."""
    for start, end, text in _load_srt(path):
        if start <= t < end:
            return text
    return ""


def burn_overlay(frames: torch.Tensor, times: list[float], overlay: Overlay, srt_path: str | None) -> torch.Tensor:
    """Draw the configured time / subtitle text on each frame (``uint8 [T, 3, H, W]``)."""
    from PIL import Image, ImageDraw, ImageFont

    h = frames.shape[-2]
    size = overlay.font_size or max(8, h // 12)
    font = ImageFont.load_default(size=size)
    out = []
    for frame, t in zip(frames, times):
        img = Image.fromarray(frame.permute(1, 2, 0).numpy())
        draw = ImageDraw.Draw(img)
        if overlay.timestamp:
            draw.text((2, 2), format_hms(t), fill=(255, 255, 255), font=font, stroke_width=1, stroke_fill=(0, 0, 0))
        if overlay.subtitles and srt_path:
            text = subtitle_at(srt_path, t)
            if text:
                draw.text((2, h - size - 4), text, fill=(255, 255, 0), font=font, stroke_width=1, stroke_fill=(0, 0, 0))
        out.append(torch.from_numpy(np.array(img)).permute(2, 0, 1))  # copy: PIL buffers are read-only
    return torch.stack(out)


class FrameLoader:
    """Turns a video path into :class:`Frames` with the configured sampling, size, overlay and cache."""

    def __init__(
        self,
        sampling: FrameSampling,
        *,
        size_factor: int = 28,
        temporal_patch: int = 2,
        backend: str = DEFAULT_BACKEND,
        fallback: str | None = None,
        overlay: Overlay | None = None,
        cache_dir: str | os.PathLike | None = None,
        time_limit: float | None = DEFAULT_DECODE_TIME_LIMIT,
    ) -> None:
        """``time_limit``: seconds one video's decode may take (its decoding process is then killed and the call raises
        :class:`~lit_videor2.data.decoding.VideoDecodeTimeout`); None decodes in this process without a limit."""
        self.sampling = sampling
        self.size_factor = size_factor
        self.temporal_patch = temporal_patch
        self.backend = backend
        self.fallback = fallback
        self.overlay = overlay or Overlay()
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.time_limit = time_limit

    def _times_fn(self, timeline: VideoTimeline) -> list[float]:
        return sample_times(timeline.num_frames, timeline.duration, self.sampling, self.temporal_patch)

    def _size(self, height: int, width: int) -> tuple[int, int]:
        return resized_hw(height, width, self.sampling, self.size_factor)  # display size: widened, never squeezed

    def cache_key(self, path: Path, srt_path: str | None) -> str:
        """Key over the decoding rules (:data:`FRAME_CACHE_VERSION`), the file identity (path, size, mtime), the
        backend and every parameter that changes the frames."""
        st = path.stat()
        parts = {
            "decoding": FRAME_CACHE_VERSION,
            "path": str(path.resolve()),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "sampling": asdict(self.sampling),
            "size_factor": self.size_factor,
            "temporal_patch": self.temporal_patch,
            "backend": self.backend,
            "overlay": asdict(self.overlay),
        }
        if srt_path and self.overlay.subtitles:
            s = os.stat(srt_path)
            parts["srt"] = [srt_path, s.st_size, s.st_mtime_ns]
        return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def _decode(self, path: Path, srt_path: str | None) -> Frames:
        # Each frame comes at the returned size as it is decoded: a sample's memory is bounded by what it returns.
        dec: DecodedVideo = decode_video(
            path, self._times_fn, self.backend, self.fallback, size=self._size, time_limit=self.time_limit
        )
        frames = torch.from_numpy(dec.frames).permute(0, 3, 1, 2).contiguous()  # [T, 3, H, W]
        out = Frames(frames, dec.times, dec.duration, dec.backend)
        if self.overlay.enabled:
            out.frames = burn_overlay(out.frames, out.times, self.overlay, srt_path)
        return out

    def __call__(self, path: str | os.PathLike, srt_path: str | None = None) -> Frames:
        path = Path(path)
        if self.cache_dir is None or not path.is_file():
            return self._decode(path, srt_path)
        key = self.cache_key(path, srt_path)
        file = self.cache_dir / f"{key}.pt"
        if file.is_file():
            try:
                d = torch.load(file, weights_only=True)
                return Frames(d["frames"], [float(t) for t in d["times"]], float(d["duration"]), "cache", key)
            except Exception as e:  # noqa: BLE001 - a torn or stale cache entry is re-decoded, not fatal
                log.warning("frame cache entry %s unreadable (%s); decoding %s again", file, e, path)
        out = self._decode(path, srt_path)
        out.cache_key = key
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        payload = {"frames": out.frames, "times": out.times, "duration": out.duration}
        with tempfile.NamedTemporaryFile(dir=self.cache_dir, suffix=".tmp", delete=False) as tmp:
            torch.save(payload, tmp)
        os.replace(tmp.name, file)  # atomic: concurrent workers never see a torn file
        return out

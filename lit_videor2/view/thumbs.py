"""Frame thumbnails of the trace viewer, decoded by the project's data pipeline and written once.

The frames the model saw are decoded with :func:`lit_videor2.data.decoding.decode_video` at the times the data
module used: the row's ``frame_times`` when it has them (evaluation rows: the frames' own presentation times), else
:func:`lit_videor2.data.sampling.sample_times` with the run's :class:`FrameSampling` (GRPO completions). Each is the
frame a player shows at that time. They are resized as the data module resizes them
(:func:`lit_videor2.data.frames.resize_frames` to :func:`lit_videor2.data.sampling.resized_hw` of the display size),
then shrunk to at most ``max_side`` pixels. Times that the reasoning cites but that no sampled frame shows are decoded
too (the frame on screen at that time).

File names are content-addressed: a hash of the video's identity (resolved path, size, modification time), the time
in milliseconds and the thumbnail settings. A file that exists is never written again, and each video's shown-frame
count, duration and the frame shown at each decoded time are kept in ``thumbs/videos.json``, so a second build decodes
nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lit_videor2.data.decoding import DEFAULT_BACKEND, VideoDecodeError, decode_video
from lit_videor2.data.frames import resize_frames
from lit_videor2.data.sampling import FrameSampling, resized_hw, sample_times
from lit_videor2.data.timeline import VideoTimeline

log = logging.getLogger(__name__)

__all__ = ["ThumbnailWriter"]


def _ms(t: float) -> int:
    return round(t * 1000)


@dataclass
class ThumbnailWriter:
    """Writes ``<out>/thumbs/<hash>.jpg`` and returns frame strips (see the module docstring)."""

    out: Path
    max_side: int = 160
    size_factor: int = 28
    temporal_patch: int = 2
    backend: str = DEFAULT_BACKEND
    fallback: str | None = None
    quality: int = 85

    def __post_init__(self) -> None:
        self.dir = Path(self.out) / "thumbs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._manifest_path = self.dir / "videos.json"
        try:
            self._manifest: dict[str, Any] = json.loads(self._manifest_path.read_text())
        except (OSError, ValueError):
            self._manifest = {}
        self.decoded = 0
        """Frames decoded by this writer (a rebuild over the same output decodes none)."""
        self.written = 0
        """Thumbnail files written by this writer."""

    def save(self) -> None:
        """Write the video manifest (per video: shown frames, duration, the frame shown at each decoded time)."""
        tmp = self._manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._manifest, sort_keys=True))
        os.replace(tmp, self._manifest_path)

    @staticmethod
    def _video_key(path: Path) -> str:
        st = path.stat()
        ident = json.dumps([str(path.resolve()), st.st_size, st.st_mtime_ns])
        return hashlib.sha1(ident.encode()).hexdigest()

    def _name(self, video_key: str, t: float, sampling: FrameSampling | None) -> str:
        size = None if sampling is None else [sampling.min_pixels, sampling.max_pixels, self.size_factor]
        ident = json.dumps([video_key, _ms(t), size, self.max_side, self.quality])
        return hashlib.sha1(ident.encode()).hexdigest()[:24] + ".jpg"

    def _times(self, frames: int, duration: float, sampling: FrameSampling | None, sampled: list[float] | None):
        if sampled is not None:
            return list(sampled)
        return sample_times(frames, duration, sampling or FrameSampling(), self.temporal_patch)

    def strip(
        self,
        video: Path,
        *,
        sampling: FrameSampling | None,
        sampled_times: list[float] | None,
        cited: list[float],
    ) -> dict[str, Any]:
        """Frames of one video for the page: ``{"frames": [{"t", "src", "sampled"}], "error"}``, sorted by time.

        ``sampled_times``: the row's ``frame_times`` (None: sample with ``sampling``). ``cited``: times the
        reasoning mentions; each gets its own frame unless a sampled frame shows the same frame. On a decoding
        failure the frames carry no ``src`` and ``error`` says why (times stay, so links still highlight).
        """
        try:
            if not video.is_file():
                raise VideoDecodeError(f"{video}: video file not found")
            key = self._video_key(video)
            meta = self._manifest.get(key)
            if meta is None or not self._known(meta, sampling, sampled_times, cited):
                meta = self._decode(video, key, sampling, sampled_times, cited)
            frames = self._frames(key, meta, sampling, sampled_times, cited)
            if any(not (self.dir / f["src"]).is_file() for f in frames):
                meta = self._decode(video, key, sampling, sampled_times, cited)
                frames = self._frames(key, meta, sampling, sampled_times, cited)
        except VideoDecodeError as e:
            times = [{"t": t, "src": None, "sampled": True} for t in sampled_times or []]
            times += [{"t": t, "src": None, "sampled": False} for t in cited if t not in (sampled_times or [])]
            return {"frames": sorted(times, key=lambda f: f["t"]), "error": str(e)}
        for f in frames:
            f["src"] = f"thumbs/{f['src']}"
            del f["index"]
        return {"frames": frames, "error": None}

    def _wanted(self, meta, sampling, sampled_times, cited) -> list[float]:
        times = self._times(meta["frames"], meta["duration"], sampling, sampled_times)
        return times + [t for t in cited if t <= meta["duration"]]

    def _known(self, meta, sampling, sampled_times, cited) -> bool:
        return all(str(_ms(t)) in meta["at"] for t in self._wanted(meta, sampling, sampled_times, cited))

    def _frames(
        self,
        key: str,
        meta: dict[str, Any],
        sampling: FrameSampling | None,
        sampled_times: list[float] | None,
        cited: list[float],
    ) -> list[dict[str, Any]]:
        at = meta["at"]
        times = self._times(meta["frames"], meta["duration"], sampling, sampled_times)
        frames = [
            {"t": round(t, 3), "index": at[str(_ms(t))], "src": self._name(key, t, sampling), "sampled": True}
            for t in times
        ]
        seen = {f["index"] for f in frames}
        for t in cited:
            if t > meta["duration"]:
                continue
            i = at[str(_ms(t))]
            if i not in seen:
                seen.add(i)
                frames.append({"t": round(t, 3), "index": i, "src": self._name(key, t, sampling), "sampled": False})
        return sorted(frames, key=lambda f: (f["t"], not f["sampled"]))

    def _decode(
        self,
        video: Path,
        key: str,
        sampling: FrameSampling | None,
        sampled_times: list[float] | None,
        cited: list[float],
    ) -> dict[str, Any]:
        """Decode the frames shown at every wanted time; learn the video's frame count and duration on the way."""
        meta = self._manifest.get(key)
        wanted: list[float] = []

        def times_fn(timeline: VideoTimeline) -> list[float]:
            m = {"frames": timeline.num_frames, "duration": timeline.duration, "at": {}}
            wanted.extend(self._wanted(m, sampling, sampled_times, cited))
            return wanted

        dec = decode_video(video, times_fn, self.backend, self.fallback)
        if meta is None:
            meta = {"frames": dec.num_frames, "duration": dec.duration, "at": {}}
        for t, i in zip(wanted, dec.indices):
            meta["at"][str(_ms(t))] = i
        self._manifest[key] = meta
        names = [self._name(key, t, sampling) for t in wanted]
        self._write(dec, names, sampling)
        return meta

    def _write(self, dec, names: list[str], sampling: FrameSampling | None) -> None:
        """Write each decoded frame, at the size the model saw (else the display size), to its name unless it
        exists."""
        from PIL import Image

        self.decoded += len(dec.frames)
        hw = dec.display_hw if sampling is None else resized_hw(*dec.display_hw, sampling, self.size_factor)
        frames = resize_frames(dec.frames, hw).permute(0, 2, 3, 1).numpy()  # [T, h, w, 3]
        for frame, name in zip(frames, names):
            file = self.dir / name
            if file.is_file():
                continue
            img = Image.fromarray(frame)
            img.thumbnail((self.max_side, self.max_side))
            tmp = file.with_suffix(".tmp")
            img.save(tmp, format="JPEG", quality=self.quality)
            os.replace(tmp, file)
            self.written += 1

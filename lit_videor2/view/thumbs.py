"""Frame thumbnails of the trace viewer, decoded by the project's data pipeline and written once.

The frames the model saw are decoded with :func:`lit_videor2.data.decoding.decode_video` at the indices the
data module used: from the row's ``frame_times`` when it has them (evaluation rows: index = time · fps), else
by :func:`lit_videor2.data.sampling.sample_frame_indices` with the run's :class:`FrameSampling` (GRPO
completions). They are resized as the data module resizes them (:func:`lit_videor2.data.frames.resize_frames`
to :func:`lit_videor2.data.sampling.resized_hw`), then shrunk to at most ``max_side`` pixels. Times that the
reasoning cites but that no sampled frame shows are decoded too (the frame on screen at that time).

File names are content-addressed: a hash of the video's identity (resolved path, size, modification time),
the frame index and the thumbnail settings. A file that exists is never written again, and the frame count and
rate of each video are kept in ``thumbs/videos.json``, so a second build decodes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lit_videor2.data.decoding import VideoDecodeError, decode_video
from lit_videor2.data.frames import resize_frames
from lit_videor2.data.sampling import FrameSampling, resized_hw, sample_frame_indices

log = logging.getLogger(__name__)

__all__ = ["ThumbnailWriter", "frame_index_at"]


def frame_index_at(t: float, native_fps: float, total_frames: int) -> int:
    """Index of the frame on screen at time ``t`` seconds (clamped to the video)."""
    return min(max(int(math.floor(t * native_fps + 1e-6)), 0), total_frames - 1)


@dataclass
class ThumbnailWriter:
    """Writes ``<out>/thumbs/<hash>.jpg`` and returns frame strips (see the module docstring)."""

    out: Path
    max_side: int = 160
    size_factor: int = 28
    temporal_patch: int = 2
    backend: str = "decord"
    fallback: str | None = "pyav"
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
        """Write the video manifest (frame count and rate per video)."""
        tmp = self._manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._manifest, sort_keys=True))
        os.replace(tmp, self._manifest_path)

    @staticmethod
    def _video_key(path: Path) -> str:
        st = path.stat()
        ident = json.dumps([str(path.resolve()), st.st_size, st.st_mtime_ns])
        return hashlib.sha1(ident.encode()).hexdigest()

    def _name(self, video_key: str, index: int, sampling: FrameSampling | None) -> str:
        size = None if sampling is None else [sampling.min_pixels, sampling.max_pixels, self.size_factor]
        ident = json.dumps([video_key, index, size, self.max_side, self.quality])
        return hashlib.sha1(ident.encode()).hexdigest()[:24] + ".jpg"

    def _indices(
        self, meta: dict[str, Any], sampling: FrameSampling | None, sampled_times: list[float] | None
    ) -> list[int]:
        fps, total = meta["fps"], meta["total"]
        if sampled_times is not None:
            return [min(max(round(t * fps), 0), total - 1) for t in sampled_times]
        return sample_frame_indices(total, fps, sampling or FrameSampling(), self.temporal_patch)

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
        reasoning mentions; each gets its own frame unless a sampled frame has the same index. On a decoding
        failure the frames carry no ``src`` and ``error`` says why (times stay, so links still highlight).
        """
        try:
            if not video.is_file():
                raise VideoDecodeError(f"{video}: video file not found")
            key = self._video_key(video)
            meta = self._manifest.get(key)
            if meta is None:
                meta = self._probe_and_decode(video, key, sampling, sampled_times, cited)
            frames = self._frames(key, meta, sampling, sampled_times, cited)
            missing = [f for f in frames if not (self.dir / f["src"]).is_file()]
            if missing:
                self._decode(video, key, sampling, {f["index"]: f["src"] for f in missing})
        except VideoDecodeError as e:
            times = [{"t": t, "src": None, "sampled": True} for t in sampled_times or []]
            times += [{"t": t, "src": None, "sampled": False} for t in cited if t not in (sampled_times or [])]
            return {"frames": sorted(times, key=lambda f: f["t"]), "error": str(e)}
        for f in frames:
            f["src"] = f"thumbs/{f['src']}"
            del f["index"]
        return {"frames": frames, "error": None}

    def _frames(
        self,
        key: str,
        meta: dict[str, Any],
        sampling: FrameSampling | None,
        sampled_times: list[float] | None,
        cited: list[float],
    ) -> list[dict[str, Any]]:
        fps, total = meta["fps"], meta["total"]
        indices = self._indices(meta, sampling, sampled_times)
        times = sampled_times if sampled_times is not None else [i / fps for i in indices]
        frames = [
            {"t": round(t, 3), "index": i, "src": self._name(key, i, sampling), "sampled": True}
            for t, i in zip(times, indices)
        ]
        seen = set(indices)
        for t in cited:
            i = frame_index_at(t, fps, total)
            if i not in seen and t <= total / fps:
                seen.add(i)
                frames.append({"t": round(t, 3), "index": i, "src": self._name(key, i, sampling), "sampled": False})
        return sorted(frames, key=lambda f: (f["t"], not f["sampled"]))

    def _probe_and_decode(
        self,
        video: Path,
        key: str,
        sampling: FrameSampling | None,
        sampled_times: list[float] | None,
        cited: list[float],
    ) -> dict[str, Any]:
        """First sight of a video: learn its frame count and rate while decoding the frames needed."""
        wanted: dict[int, str] = {}

        def index_fn(total: int, fps: float) -> list[int]:
            meta = {"fps": fps, "total": total}
            for f in self._frames(key, meta, sampling, sampled_times, cited):
                wanted[f["index"]] = f["src"]
            return sorted(wanted)

        dec = decode_video(video, index_fn, self.backend, self.fallback)
        meta = {"fps": dec.native_fps, "total": dec.total_frames}
        self._manifest[key] = meta
        self._write(dec.frames, dec.indices, wanted, sampling)
        return meta

    def _decode(self, video: Path, key: str, sampling: FrameSampling | None, wanted: dict[int, str]) -> None:
        order = sorted(wanted)
        dec = decode_video(video, lambda total, fps: order, self.backend, self.fallback)
        self._write(dec.frames, dec.indices, wanted, sampling)

    def _write(self, frames, indices: list[int], names: dict[int, str], sampling: FrameSampling | None) -> None:
        """``frames``: ``uint8 [T, H, W, 3]`` at ``indices``; each written to ``names[index]`` unless it exists."""
        from PIL import Image

        self.decoded += len(indices)
        if sampling is not None:  # the size the model saw
            frames = resize_frames(frames, resized_hw(frames.shape[1], frames.shape[2], sampling, self.size_factor))
            frames = frames.permute(0, 2, 3, 1).numpy()  # [T, h, w, 3]
        for frame, index in zip(frames, indices):
            file = self.dir / names[index]
            if file.is_file():
                continue
            img = Image.fromarray(frame)
            img.thumbnail((self.max_side, self.max_side))
            tmp = file.with_suffix(".tmp")
            img.save(tmp, format="JPEG", quality=self.quality)
            os.replace(tmp, file)
            self.written += 1

"""On-disk cache of what the HF processor makes of one video: the vision half of the collate.

Once decoding is cached (:class:`~lit_videor2.data.frames.FrameLoader` with ``cache_dir``), the processor's
rescale, normalise and patchify of every frame dominate the collate. This cache stores, per video, the output
of the processor's video step (``pixel_values_videos``, ``video_grid_thw``, ``second_per_grid_ts``) and the
placeholder text it puts in the prompt for that video (``<|video_pad|>`` × tokens, and Qwen3-VL's per-frame
``<t seconds>`` stamps). The processor itself still runs on every batch: it applies the chat template's text,
substitutes the placeholders and tokenises, so cached and uncached batches are identical (tested).

How: the processor's ``__call__`` gets the video step from its ``_process_videos(videos, **kwargs) ->
(processed, replacements)`` (transformers 5.x); :func:`cached_video_step` overrides that method on the
processor instance for the duration of one call, answering from the cache or running the real step and
storing its result.

Keys: the frame cache key of the video (file identity, sampling, size factor, temporal patch, overlay) plus
every setting of the processor that changes the output: the processor and video-processor classes, the video
processor's whole configuration (``to_dict()``: size / min / max pixels, patch / merge / temporal patch sizes,
mean / std, rescale factor, fps, ...) and the transformers version. Changing any of them misses the cache.
Entries are written atomically (parallel workers are safe); an unreadable entry is recomputed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

#: Bumped when the layout of an entry changes.
FORMAT = 1
#: Keys of the video step's output that are stored (``video_metadata`` is not: the placeholder text that
#: needs it is stored instead, and the processor drops it from its output).
STORED = ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts")


def processor_settings(processor: Any) -> dict[str, Any]:
    """Everything about ``processor`` that changes its video outputs (JSON-serialisable)."""
    import transformers

    vp = getattr(processor, "video_processor", None)
    if vp is None:
        raise ValueError(f"{type(processor).__name__} has no video_processor: nothing to cache")
    return {
        "format": FORMAT,
        "processor": type(processor).__qualname__,
        "video_processor": type(vp).__qualname__,
        "config": json.loads(json.dumps(vp.to_dict(), sort_keys=True, default=str)),
        "video_token": getattr(processor, "video_token", None),
        "transformers": transformers.__version__,
    }


def supports_cache(processor: Any) -> bool:
    """Whether ``processor`` runs its video step through ``_process_videos`` (transformers 5.x processors)."""
    return callable(getattr(processor, "_process_videos", None)) and hasattr(processor, "video_processor")


class ProcessorCache:
    """``<cache_dir>/processor/<key>.pt`` entries of the video step of one processor (see the module doc)."""

    def __init__(self, cache_dir: str | os.PathLike, processor: Any) -> None:
        self.dir = Path(cache_dir) / "processor"
        self.settings_digest = hashlib.sha1(json.dumps(processor_settings(processor), sort_keys=True).encode())
        self.hits = 0
        self.misses = 0

    def key(self, frame_key: str) -> str:
        """Entry key: the processor settings and the frame cache key of the video."""
        h = self.settings_digest.copy()
        h.update(frame_key.encode())
        return h.hexdigest()

    def load(self, key: str) -> tuple[dict[str, Any], list[str]] | None:
        """``(processed, replacements)`` of an entry, or None when absent or unreadable."""
        file = self.dir / f"{key}.pt"
        if not file.is_file():
            return None
        try:
            # Memory-mapped: the patches are copied once, into the batch (by the collator's concatenation).
            d = torch.load(file, weights_only=True, mmap=True)
            return dict(d["processed"]), list(d["replacements"])
        except Exception as e:  # noqa: BLE001 - a torn or stale entry is recomputed, not fatal
            log.warning("processor cache entry %s unreadable (%s); processing the video again", file, e)
            return None

    def save(self, key: str, processed: Any, replacements: list[str]) -> None:
        missing = [k for k in ("pixel_values_videos", "video_grid_thw") if k not in processed]
        if missing:
            raise KeyError(f"processor cache: the video step returned no {missing} (keys: {sorted(processed)})")
        payload = {
            "processed": {k: processed[k] for k in STORED if k in processed},
            "replacements": [str(r) for r in replacements],
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.dir, suffix=".tmp", delete=False) as tmp:
            torch.save(payload, tmp)
        os.replace(tmp.name, self.dir / f"{key}.pt")  # atomic: concurrent workers never see a torn file

    @contextlib.contextmanager
    def cached_video_step(self, processor: Any, frame_key: str | None) -> Iterator[None]:
        """Within the block, ``processor(...)`` takes its video step for the one video of ``frame_key`` from the
        cache (or runs it and stores it). ``frame_key`` None (frames not cached): nothing changes."""
        if frame_key is None:
            yield
            return
        key = self.key(frame_key)
        real = processor._process_videos  # bound method (class attribute) or an instance override

        def step(videos: Any, **kwargs: Any) -> tuple[dict[str, Any], list[str]]:
            hit = self.load(key)
            if hit is not None:
                self.hits += 1
                return hit
            processed, replacements = real(videos, **kwargs)
            self.save(key, processed, replacements)
            self.misses += 1
            return processed, replacements

        had_own = "_process_videos" in vars(processor)
        processor._process_videos = step
        try:
            yield
        finally:
            if had_own:
                processor._process_videos = real
            else:
                del processor._process_videos

"""Record -> sample: a map-style dataset that decodes frames in DataLoader workers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import ConcatDataset, Dataset

from lit_videor2.data.decoding import VideoDecodeError
from lit_videor2.data.frames import FrameLoader, Frames
from lit_videor2.data.records import VideoRecord
from lit_videor2.data.schema import OnError
from lit_videor2.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class VideoSample:
    """One record with its decoded frames."""

    record: VideoRecord
    frames: Frames


@dataclass
class SkippedSample:
    """Placeholder for a record that failed with ``on_error='skip'``; the collator counts it."""

    record_id: str
    reason: str
    benchmark: str | None = None
    """The record's benchmark (``extra['benchmark']``), so evaluation counts skips per benchmark."""


def _benchmark(record: VideoRecord) -> str | None:
    value = record.extra.get("benchmark")
    return None if value is None else str(value)


class VideoDataset(Dataset):
    """Map-style dataset over :class:`VideoRecord` s; ``__getitem__`` decodes the video (in the worker)."""

    def __init__(
        self, records: list[VideoRecord], video_root: str | Path, frame_loader: FrameLoader, on_error: OnError = "raise"
    ):
        self.records = records
        self.video_root = Path(video_root)
        self.frame_loader = frame_loader
        self.on_error = on_error

    def __len__(self) -> int:
        return len(self.records)

    def video_path(self, record: VideoRecord) -> Path:
        p = Path(record.video)
        return p if p.is_absolute() else self.video_root / p

    def srt_path(self, record: VideoRecord) -> str | None:
        if not self.frame_loader.overlay.subtitles:
            return None
        p = self.video_root / self.frame_loader.overlay.subtitle_dir / f"{record.video}.srt"
        return str(p) if p.is_file() else None

    def __getitem__(self, index: int) -> VideoSample | SkippedSample:
        """Decode, size and overlay the record's frames. Any failure (decode, frame size, resize, overlay) is this
        record's error naming the record and its file: raised, or counted as a :class:`SkippedSample`."""
        record = self.records[index]
        try:
            frames = self.frame_loader(self.video_path(record), self.srt_path(record))
        except Exception as e:  # noqa: BLE001 - one bad video must not take the run down with on_error='skip'
            detail = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
            video = "" if record.video in detail else f", video {record.video!r}"
            msg = f"record {record.id!r} ({record.source}){video}: {detail}"
            if self.on_error == "raise":
                if isinstance(e, UserError):
                    raise type(e)(msg) from None
                raise VideoDecodeError(msg) from e
            log.warning("skipping %s", msg)
            return SkippedSample(record.id, msg, _benchmark(record))
        return VideoSample(record, frames)


class MixedSamplingDataset(Dataset):
    """One record list under several frame settings: record ``i`` is read through ``parts[assignment[i]]``.

    ``parts`` are :class:`VideoDataset` s over the same records, each with its own :class:`FrameLoader`. The
    assignment is a seeded permutation of ``i mod len(parts)``: balanced, fixed for the run (every epoch, any number
    of ranks, exact resume), independent of the data order.
    """

    def __init__(self, parts: list[VideoDataset], seed: int = 0) -> None:
        if not parts or any(len(p) != len(parts[0]) for p in parts):
            raise ValueError("MixedSamplingDataset: give one or more VideoDatasets over the same records")
        self.parts = parts
        self.records = parts[0].records
        order = torch.randperm(len(self.records), generator=torch.Generator().manual_seed(seed))
        self.assignment = [0] * len(self.records)
        for rank, i in enumerate(order.tolist()):
            self.assignment[i] = rank % len(parts)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> VideoSample | SkippedSample:
        return self.parts[self.assignment[index]][index]


class ConcatVideoDataset(ConcatDataset):
    """Several :class:`VideoDataset` s read one after the other (validation sets side by side); ``records`` is the
    concatenation of theirs."""

    def __init__(self, parts: list[VideoDataset]) -> None:
        super().__init__(parts)
        self.records = [r for p in parts for r in p.records]


def sample_columns(sample: VideoSample) -> dict[str, Any]:
    """Annotation columns of a sample (the record's, plus what decoding learned)."""
    cols = sample.record.columns()
    cols["duration"] = sample.frames.duration
    cols["frame_times"] = sample.frames.times
    return cols


def stack_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """List of per-sample dicts -> dict of per-sample lists (missing keys become None)."""
    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r if k not in keys)
    return {k: [r.get(k) for r in rows] for k in keys}


def repeat_columns(columns: dict[str, list[Any]], n: int) -> dict[str, list[Any]]:
    """Repeat every column entry ``n`` times in place order (rows of one prompt adjacent), for G completions."""
    return {k: [v for v in vals for _ in range(n)] for k, vals in columns.items()}

"""A benchmark for evaluation: an annotation file, its video root, its group in the tables and its frame settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lit_videor2.data.sampling import FrameSampling

__all__ = ["Benchmark", "Group"]

Group = Literal["generic", "reasoning"]


@dataclass(frozen=True)
class Benchmark:
    """One evaluation benchmark; ``VideoDataModule(benchmarks=[...])`` gives one test dataloader per benchmark."""

    name: str
    """Short name used in the predictions file and the tables (``MVBench``)."""
    file: str | None = None
    """Annotation file in the project schema (Video-R2 or Video-R1 JSON/JSONL). Required for test benchmarks; a
    validation set (``val_benchmarks``) without one reads the data module's ``val_file`` (so swapping ``val_file``
    swaps it too)."""
    video_root: str | None = None
    """Folder the records' video paths are relative to (default: the data module's ``video_root``, else the
    annotation file's folder)."""
    group: Group | None = None
    """Table group: ``generic`` or ``reasoning`` (None: counted in Overall only)."""
    sampling: FrameSampling | None = None
    """Frame settings of this benchmark (default: the data module's ``sampling``)."""

    def __post_init__(self) -> None:
        if self.group not in (None, "generic", "reasoning"):
            raise ValueError(
                f"Benchmark {self.name!r}: group must be 'generic', 'reasoning' or null, got {self.group!r}"
            )

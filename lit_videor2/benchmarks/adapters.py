"""The registry of benchmark converters (:data:`ADAPTERS`): one per public layout -> Video-R2-schema records.

The converters live by benchmark family: :mod:`.general` (MVBench, Video-MME, TempCompass), :mod:`.long_video`
(MLVU, LongVideoBench), :mod:`.knowledge` (Video-MMMU, MMVU, SciVideoBench), :mod:`.reasoning` (VSI-Bench,
VideoMathQA, MINERVA); the shared parsing is :mod:`.common`, the per-row rules (skips, metadata, ids) :mod:`.rows`.

Every converter has the signature ``convert_<name>(src, *, video_root=None, video_prefix=None,
skip_missing=False, skips=None) -> list[dict]`` (MVBench adds ``revision``, Video-MMMU ``track``):

- ``src``: the annotation file (or the folder holding the per-task files) as published;
- ``video_prefix``: prepended to the video path the layout implies (each converter documents its default,
  which follows the official download's folder structure), so paths are relative to your video root;
- ``video_root``: when given, every video is checked to exist under it (missing -> error naming the
  record, or dropped with ``skip_missing``);
- ``skips`` (:class:`~lit_videor2.benchmarks.rows.Skips`): collects the rows that cannot be used (dropped,
  counted and listed; ``Skips(strict=True)``: an error naming the file, the row and the field), the files left
  out and why, the ids told apart with ``#2`` and the choices inferred.

Every converter turns each row with :func:`~lit_videor2.benchmarks.rows.convert_rows` (a row's
``BenchmarkFormatError`` is that row's skip, never the file's), keeps the fields it does not use as metadata
(:func:`~lit_videor2.benchmarks.rows.source_meta`) and ends with
:func:`~lit_videor2.benchmarks.rows.finish` (unique ids, video check).

Layouts were written from the benchmarks' dataset cards and official evaluation code; docs/benchmarks.md
says which were compared with real annotation files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lit_videor2.benchmarks.general import convert_mvbench, convert_tempcompass, convert_videomme
from lit_videor2.benchmarks.knowledge import convert_mmvu, convert_scivideobench, convert_videommmu
from lit_videor2.benchmarks.long_video import convert_longvideobench, convert_mlvu
from lit_videor2.benchmarks.reasoning import convert_minerva, convert_videomathqa, convert_vsibench

Converter = Callable[..., list[dict[str, Any]]]


#: Benchmark name -> converter (``lit_videor2 convert-benchmark --name NAME``).
ADAPTERS: dict[str, Converter] = {
    "mvbench": convert_mvbench,
    "videomme": convert_videomme,
    "tempcompass": convert_tempcompass,
    "videommmu": convert_videommmu,
    "mmvu": convert_mmvu,
    "vsibench": convert_vsibench,
    "mlvu": convert_mlvu,
    "longvideobench": convert_longvideobench,
    "videomathqa": convert_videomathqa,
    "minerva": convert_minerva,
    "scivideobench": convert_scivideobench,
}

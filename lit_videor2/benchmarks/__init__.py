"""Benchmark adapters: public annotation layouts -> the project's Video-R2-schema JSON.

    lit_videor2 convert-benchmark --name videomme --src videomme/test-00000-of-00001.parquet \\
        --out data/videomme.json [--video-prefix data/] [--video-root /data/Video-MME] [--strict]

The written file loads with :func:`lit_videor2.data.schema.load_records` (the CLI checks that before it
returns). Layouts, sources and what was checked against real files: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lit_videor2.benchmarks.adapters import ADAPTERS
from lit_videor2.benchmarks.common import BenchmarkFormatError, Skips
from lit_videor2.benchmarks.general import MVBENCH_TASKS, convert_mvbench, convert_tempcompass, convert_videomme
from lit_videor2.benchmarks.knowledge import convert_mmvu, convert_scivideobench, convert_videommmu
from lit_videor2.benchmarks.long_video import convert_longvideobench, convert_mlvu
from lit_videor2.benchmarks.reasoning import (
    VSI_CHOICE_TYPES,
    VSI_NUMERIC_TYPES,
    convert_minerva,
    convert_videomathqa,
    convert_vsibench,
)
from lit_videor2.data.schema import load_records


def convert(name: str, src: str | Path, *, skips: Skips | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """Run the adapter registered as ``name`` (see :data:`ADAPTERS`).

    ``skips`` collects the rows and files the adapter left out (counted warnings); adapters that never leave
    anything out do not take it. Other keyword arguments go to the adapter (``video_root``, ``revision``, ...);
    ``None`` values are dropped, so a generic caller can pass every option.
    """
    if name not in ADAPTERS:
        raise BenchmarkFormatError(f"unknown benchmark {name!r}; adapters exist for {sorted(ADAPTERS)}")
    fn = ADAPTERS[name]
    params = inspect.signature(fn).parameters
    if skips is not None and "skips" in params:
        kwargs["skips"] = skips
    extra = sorted(k for k, v in kwargs.items() if v is not None and k not in params)
    if extra:
        raise BenchmarkFormatError(f"benchmark {name!r}: options {extra} do not apply to this layout")
    return fn(src, **{k: v for k, v in kwargs.items() if v is not None})


def write_records(records: list[dict[str, Any]], out: str | Path) -> Path:
    """Write records as a JSON list (atomically: a temporary file then a rename); return the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=out.parent, suffix=".tmp", delete=False, encoding="utf-8") as tmp:
        json.dump(records, tmp, indent=1, ensure_ascii=False)
        tmp.write("\n")
    os.replace(tmp.name, out)
    return out


def build_parser(prog: str = "lit_videor2 convert-benchmark") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="Convert a public benchmark's annotations to the project schema."
    )
    p.add_argument("--name", required=True, choices=sorted(ADAPTERS), help="benchmark layout")
    p.add_argument("--src", required=True, type=Path, help="annotation file (or folder of per-task files) as published")
    p.add_argument("--out", required=True, type=Path, help="output JSON file (Video-R2 schema)")
    p.add_argument(
        "--video-prefix",
        default=None,
        help="prepended to each video path the layout implies (default: the official folder, see docs/benchmarks.md)",
    )
    p.add_argument("--video-root", default=None, type=Path, help="check that every video exists under this folder")
    p.add_argument("--skip-missing", action="store_true", help="with --video-root: drop records whose video is missing")
    p.add_argument(
        "--strict",
        action="store_true",
        help="a row whose answer matches no option (or several) is an error instead of a counted skip (MLVU)",
    )
    p.add_argument(
        "--revision",
        choices=["main", "video"],
        default=None,
        help="MVBench: the repository revision downloaded (default: 'video' when --video-root holds its "
        "star/Charades_segment folder, else 'main')",
    )
    return p


def main(argv: Sequence[str] | None = None) -> Path:
    """``lit_videor2 convert-benchmark``: convert, write, re-load through ``load_records`` and print a summary."""
    a = build_parser().parse_args(argv)
    skips = Skips(strict=a.strict)
    options = {"video_root": a.video_root, "video_prefix": a.video_prefix, "revision": a.revision}
    if a.skip_missing:
        options["skip_missing"] = True
    records = convert(a.name, a.src, skips=skips, **options)
    for message in skips.messages():
        print(f"convert-benchmark: note: {message}", file=sys.stderr)
    if not records:
        raise BenchmarkFormatError(f"{a.src}: no records converted")
    out = write_records(records, a.out)
    loaded = load_records(out).records  # the contract: the output loads with the project's reader
    types = Counter(r.problem_type for r in loaded)
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(types.items()))
    print(f"wrote {len(loaded)} {a.name} records to {out} ({summary})")
    return out


__all__ = [
    "ADAPTERS",
    "MVBENCH_TASKS",
    "VSI_CHOICE_TYPES",
    "VSI_NUMERIC_TYPES",
    "BenchmarkFormatError",
    "Skips",
    "build_parser",
    "convert",
    "convert_longvideobench",
    "convert_minerva",
    "convert_mlvu",
    "convert_mmvu",
    "convert_mvbench",
    "convert_scivideobench",
    "convert_tempcompass",
    "convert_videomathqa",
    "convert_videomme",
    "convert_videommmu",
    "convert_vsibench",
    "main",
    "write_records",
]

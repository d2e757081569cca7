"""Benchmark adapters: public annotation layouts -> the project's Video-R2-schema JSON.

    lit_videor2 convert-benchmark --name videomme --src videomme/test-00000-of-00001.parquet \\
        --out data/videomme.json [--video-prefix data/] [--video-root /data/Video-MME]

The written file loads with :func:`lit_videor2.data.schema.load_records` (the CLI checks that before it
returns). Layouts, sources and what was checked against real files: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lit_videor2.benchmarks.adapters import (
    ADAPTERS,
    MVBENCH_TASKS,
    VSI_CHOICE_TYPES,
    VSI_NUMERIC_TYPES,
    convert_longvideobench,
    convert_mlvu,
    convert_mmvu,
    convert_mvbench,
    convert_tempcompass,
    convert_videomme,
    convert_videommmu,
    convert_vsibench,
)
from lit_videor2.benchmarks.common import BenchmarkFormatError


def convert(name: str, src: str | Path, **kwargs: Any) -> list[dict[str, Any]]:
    """Run the adapter registered as ``name`` (see :data:`ADAPTERS`)."""
    if name not in ADAPTERS:
        raise ValueError(f"unknown benchmark {name!r}; adapters exist for {sorted(ADAPTERS)}")
    return ADAPTERS[name](src, **kwargs)


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
    return p


def main(argv: Sequence[str] | None = None) -> Path:
    """``lit_videor2 convert-benchmark``: convert, write, re-load through ``load_records`` and print a summary."""
    from lit_videor2.data.schema import load_records

    a = build_parser().parse_args(argv)
    records = convert(a.name, a.src, video_root=a.video_root, video_prefix=a.video_prefix, skip_missing=a.skip_missing)
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
    "build_parser",
    "convert",
    "convert_longvideobench",
    "convert_mlvu",
    "convert_mmvu",
    "convert_mvbench",
    "convert_tempcompass",
    "convert_videomme",
    "convert_videommmu",
    "convert_vsibench",
    "main",
    "write_records",
]

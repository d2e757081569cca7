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
import logging
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lit_videor2.benchmarks.adapters import ADAPTERS
from lit_videor2.benchmarks.common import BenchmarkFormatError
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
from lit_videor2.benchmarks.rows import Skips
from lit_videor2.data.schema import load_records

log = logging.getLogger(__name__)


def convert(name: str, src: str | Path, *, skips: Skips | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """Run the adapter registered as ``name`` (see :data:`ADAPTERS`).

    ``skips`` collects the rows the adapter dropped, the files it left out, the ids it had to tell apart and the
    choices it inferred (``Skips(strict=True)``: a row that cannot be used is an error naming the file, the row
    and the field). Without ``skips``, rows that cannot be used are dropped and every message is logged as a
    warning. Other keyword arguments go to the adapter (``video_root``, ``revision``, ...); ``None`` values are
    dropped, so a generic caller can pass every option.
    """
    if name not in ADAPTERS:
        raise BenchmarkFormatError(f"unknown benchmark {name!r}; adapters exist for {sorted(ADAPTERS)}")
    fn = ADAPTERS[name]
    params = inspect.signature(fn).parameters
    extra = sorted(k for k, v in kwargs.items() if v is not None and k not in params)
    if extra:
        raise BenchmarkFormatError(f"benchmark {name!r}: options {extra} do not apply to this layout")
    own = skips is None
    skips = Skips() if skips is None else skips
    records = fn(src, skips=skips, **{k: v for k, v in kwargs.items() if v is not None})
    if own:
        for message in skips.messages():
            log.warning("%s: %s", name, message)
    return records


def no_records_error(src: str | Path, skips: Skips) -> BenchmarkFormatError:
    """The error for a conversion that produced nothing, with every reason the converter gave: the files it left
    out and why, and the rows it dropped (count per reason, and the first row for each)."""
    reasons = list(skips.notes)
    if skips.rows:
        firsts = "; ".join(f"first: {items[0]}" for items in skips.dropped().values())
        reasons.append(f"{skips.summary()} ({firsts})")
    why = "; ".join(reasons) if reasons else "the source holds no rows"
    return BenchmarkFormatError(f"{src}: no records converted: {why}")


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
        help="a row that cannot be used (empty question, no answer, answer matching no option or several) is an "
        "error naming the file, the row and the field, instead of a counted, listed skip",
    )
    p.add_argument(
        "--revision",
        choices=["main", "video"],
        default=None,
        help="MVBench: the repository revision downloaded; 'video' puts the task folders at the download root. "
        "Default: inferred (rows naming pre-cut clips <id>_<start>_<end>.mp4 are the 'video' revision's, as is a "
        "--video-root holding star/Charades_segment; else 'main') and said on stderr",
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
        raise no_records_error(a.src, skips)
    out = write_records(records, a.out)
    loaded = load_records(out).records  # the contract: the output loads with the project's reader
    types = Counter(r.problem_type for r in loaded)
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(types.items()))
    dropped = f"; {skips.summary()}" if skips.rows else ""
    print(f"wrote {len(loaded)} {a.name} records to {out} ({summary}){dropped}")
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
    "no_records_error",
    "write_records",
]

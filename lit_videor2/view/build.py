"""Build the trace viewer: inputs -> annotated items -> frame strips -> ``index.html`` + ``static/`` + ``thumbs/``."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lit_videor2.data.decoding import DEFAULT_BACKEND
from lit_videor2.evaluation.predictions import run_labels
from lit_videor2.rewards.embedding import Embedder, SentenceTransformerEmbedder
from lit_videor2.view.loading import (
    completion_items,
    prediction_items,
    read_completions,
    read_prediction_files,
)
from lit_videor2.view.page import write_page
from lit_videor2.view.sources import Sources, ViewError, find_config, read_sources
from lit_videor2.view.thumbs import ThumbnailWriter

log = logging.getLogger(__name__)

__all__ = ["BuildReport", "ViewOptions", "attach_strips", "build_view", "run_labels"]


@dataclass
class ViewOptions:
    """How to build the page (the command-line options of ``lit_videor2 view``)."""

    config: Path | None = None
    """Run config (LightningCLI YAML); None: looked for next to the input."""
    video_root: Path | None = None
    """Folder the rows' video paths are relative to (overrides the config)."""
    labels: Sequence[str] | None = None
    """Names of the predictions runs (default: their folder names)."""
    steps: set[int] | None = None
    """GRPO steps to show (None: all)."""
    tar: bool = True
    """Compute the TAR pairing (loads the sentence embedder)."""
    embedder: Embedder | None = None
    """Embedder for the TAR pairing (None: the shipped all-MiniLM-L6-v2)."""
    pad_s: float = 2.0
    threshold: float = 0.75
    thumbnails: bool = True
    """Decode frames (False: strips show times only)."""
    thumb_size: int = 160
    size_factor: int = 28
    temporal_patch: int = 2
    backend: str = DEFAULT_BACKEND
    low_vas: float = 5.0
    """Default threshold of the page's "low VAS" filter."""
    page_size: int = 25


@dataclass
class BuildReport:
    """What a build did."""

    page: Path
    items: int
    entries: int
    frames_decoded: int = 0
    thumbnails_written: int = 0
    videos_failed: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _video_path(video: str | None, root: Path | None, near: Path) -> Path | None:
    if not video:
        return None
    p = Path(video)
    if p.is_absolute():
        return p
    for base in (root, near.parent, Path.cwd()):
        if base is not None and (base / p).is_file():
            return base / p
    return (root or near.parent) / p


def attach_strips(
    items: list[dict[str, Any]],
    sources: Sources,
    writer: ThumbnailWriter | None,
    *,
    video_root: Path | None,
    near: Path,
) -> list[str]:
    """Give every item ``strips`` (one per distinct ``frame_times`` of its entries) and each entry ``strip`` (its
    index); returns the videos that could not be decoded (each also logged once)."""
    failed: list[str] = []
    for item in items:
        root = video_root or sources.root_for(item.get("benchmark"))
        path = _video_path(item.get("video"), root, near)
        sampling = sources.sampling_for(item.get("benchmark"))
        keys: dict[tuple | None, int] = {}
        cited: dict[tuple | None, set[float]] = {}
        for e in item["entries"]:
            ft = e.pop("frame_times", None)
            key = tuple(ft) if ft else None
            e["strip"] = keys.setdefault(key, len(keys))
            cited.setdefault(key, set()).update(e["cited"])
        strips = []
        for key in keys:
            times = list(key) if key is not None else None
            if path is None:
                strip = {"frames": [{"t": t, "src": None, "sampled": True} for t in times or []], "error": "no video"}
            elif writer is None:
                frames = [{"t": t, "src": None, "sampled": True} for t in times or []]
                frames += [
                    {"t": t, "src": None, "sampled": False} for t in sorted(cited[key]) if t not in (times or [])
                ]
                strip = {"frames": sorted(frames, key=lambda f: f["t"]), "error": None}
            else:
                strip = writer.strip(path, sampling=sampling, sampled_times=times, cited=sorted(cited[key]))
                if strip["error"] and str(path) not in failed:
                    failed.append(str(path))
                    log.warning("frames of %s: %s", item["key"], strip["error"])
            strips.append(strip)
        item["strips"] = strips
        item["video"] = str(path) if path is not None else None
        del item["grounding"]
    return failed


def _facets(items: list[dict[str, Any]]) -> dict[str, list[Any]]:
    def distinct(values):
        return sorted({v for v in values if v is not None}, key=str)

    return {
        "benchmark": distinct(i.get("benchmark") for i in items),
        "problem_type": distinct(i.get("problem_type") for i in items),
        "step": distinct(i.get("step") for i in items),
        "label": list(dict.fromkeys(e["label"] for i in items for e in i["entries"])),
    }


def build_view(
    out: Path,
    *,
    predictions: Sequence[Path] = (),
    completions: Path | None = None,
    options: ViewOptions | None = None,
) -> BuildReport:
    """Write the page for one or two predictions files or one GRPO completions table into ``out``."""
    opts = options or ViewOptions()
    t0 = time.perf_counter()
    if bool(predictions) == bool(completions):
        raise ViewError("give --predictions FILE [FILE] or --completions FILE (one of them)")
    if len(predictions) > 2:
        raise ViewError(f"--predictions: at most two files to compare, got {len(predictions)}")
    near = Path(completions or predictions[0])
    config = opts.config or find_config(near)
    if config is not None:
        log.info("run config: %s", config)
    sources = read_sources(config, load_train_records=completions is not None)
    embedder = (opts.embedder or SentenceTransformerEmbedder()) if opts.tar else None
    kw = dict(embedder=embedder, pad_s=opts.pad_s, threshold=opts.threshold)
    if completions is not None:
        rows = read_completions(Path(completions), opts.steps)
        items = completion_items(rows, sources, **kw)
        mode, title = "completions", f"GRPO completions: {completions}"
    else:
        paths = [Path(p) for p in predictions]
        labels = run_labels(paths, opts.labels)
        items = prediction_items(read_prediction_files(paths), labels, **kw)
        mode, title = ("compare" if len(paths) > 1 else "predictions"), "Predictions: " + " vs ".join(labels)
    writer = None
    if opts.thumbnails:
        writer = ThumbnailWriter(
            Path(out),
            max_side=opts.thumb_size,
            size_factor=opts.size_factor,
            temporal_patch=opts.temporal_patch,
            backend=opts.backend,
        )
    failed = attach_strips(items, sources, writer, video_root=opts.video_root, near=near)
    if writer is not None:
        writer.save()
    data = {
        "title": title,
        "subtitle": f"built {time.strftime('%Y-%m-%d %H:%M:%S')}" + (f" · config {config}" if config else ""),
        "mode": mode,
        "tar": opts.tar,
        "low_vas": opts.low_vas,
        "page_size": opts.page_size,
        "facets": _facets(items),
        "items": items,
    }
    page = write_page(Path(out), data)
    return BuildReport(
        page=page,
        items=len(items),
        entries=sum(len(i["entries"]) for i in items),
        frames_decoded=writer.decoded if writer else 0,
        thumbnails_written=writer.written if writer else 0,
        videos_failed=failed,
        seconds=time.perf_counter() - t0,
    )

"""Where the viewer finds videos, frame settings and (for GRPO completions) the training records.

A run's LightningCLI config (``config.yaml``, saved by ``lit_videor2 fit|test`` in the run's log folder) says
it all: ``data.video_root``, ``data.sampling``, ``data.benchmarks`` (name, file, video_root, sampling) and
``data.train_file``. The viewer reads it from ``--config`` or finds it next to its input
(:func:`find_config`); relative paths in it are taken from the current directory, where the run was started.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lit_videor2.data.records import VideoRecord
from lit_videor2.data.sampling import FrameSampling
from lit_videor2.data.schema import load_records
from lit_videor2.errors import UserError

log = logging.getLogger(__name__)

__all__ = ["Sources", "ViewError", "find_config", "read_sources"]


class ViewError(UserError):
    """Bad input to ``lit_videor2 view`` (the message names the file, line or key)."""


@dataclass
class Sources:
    """What the run's config says about videos and records."""

    config: Path | None = None
    """The config file read (None: none found)."""
    video_roots: dict[str | None, Path] = field(default_factory=dict)
    """Benchmark name -> folder its records' video paths are relative to; key None: the data module's default."""
    sampling: dict[str | None, FrameSampling] = field(default_factory=dict)
    """Benchmark name -> frame sampling; key None: the data module's ``sampling``."""
    records: dict[str, VideoRecord] = field(default_factory=dict)
    """Training records by id (for GRPO completions, whose rows carry only the id)."""
    records_root: Path | None = None
    """Folder the training records' video paths are relative to."""

    def root_for(self, benchmark: str | None) -> Path | None:
        return self.video_roots.get(benchmark) or self.video_roots.get(None)

    def sampling_for(self, benchmark: str | None) -> FrameSampling | None:
        return self.sampling.get(benchmark) or self.sampling.get(None)


def find_config(near: Path) -> Path | None:
    """The run config beside an input file: ``config.yaml`` in its folder, else the newest
    ``logs/*/config.yaml`` below it (where ``lit_videor2 test`` leaves it next to ``predictions.jsonl``)."""
    folder = near.parent
    if (folder / "config.yaml").is_file():
        return folder / "config.yaml"
    found = sorted(folder.glob("logs/*/config.yaml"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _init_args(value: Any) -> Any:
    """``{class_path, init_args}`` -> ``init_args``; anything else unchanged."""
    if isinstance(value, dict) and "class_path" in value:
        return value.get("init_args") or {}
    return value


def _sampling(value: Any, where: str) -> FrameSampling | None:
    value = _init_args(value)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ViewError(f"{where}: expected a mapping of FrameSampling fields, got {value!r}")
    names = {f.name for f in fields(FrameSampling)}
    unknown = sorted(set(value) - names)
    if unknown:
        raise ViewError(f"{where}: unknown FrameSampling keys {unknown}; expected some of {sorted(names)}")
    try:
        return FrameSampling(**value)
    except (TypeError, ValueError) as e:
        raise ViewError(f"{where}: {e}") from None


def read_sources(config: Path | None, *, load_train_records: bool = False) -> Sources:
    """Read video roots, frame settings and (optionally) the training records from a run config."""
    import yaml

    if config is None:
        return Sources()
    if not config.is_file():
        raise ViewError(f"{config}: config file not found")
    try:
        cfg = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ViewError(f"{config}: not valid YAML ({e})") from None
    data = _init_args(cfg.get("data") or {}) if isinstance(cfg, dict) else {}
    if not isinstance(data, dict):
        raise ViewError(f"{config}: 'data' must be a mapping")
    src = Sources(config=config)
    if data.get("video_root"):
        src.video_roots[None] = Path(data["video_root"])
    default = _sampling(data.get("sampling"), f"{config}: data.sampling")
    if default is not None:
        src.sampling[None] = default
    for i, bench in enumerate(data.get("benchmarks") or []):
        bench = _init_args(bench)
        if not isinstance(bench, dict) or "name" not in bench:
            raise ViewError(f"{config}: data.benchmarks[{i}] needs a 'name'")
        name = str(bench["name"])
        root = (
            bench.get("video_root")
            or data.get("video_root")
            or (Path(bench["file"]).parent if bench.get("file") else None)
        )
        if root:
            src.video_roots[name] = Path(root)
        sampling = _sampling(bench.get("sampling"), f"{config}: data.benchmarks[{i}].sampling")
        if sampling is not None:
            src.sampling[name] = sampling
    train = data.get("train_file")
    if load_train_records and train:
        report = load_records(train, on_error="skip")
        if report.skipped:
            log.warning("%s: %d unusable records skipped", train, len(report.skipped))
        src.records = {r.id: r for r in report.records}
        src.records_root = Path(data.get("video_root") or Path(train).parent)
    if src.video_roots.get(None) is None and train:
        src.video_roots[None] = Path(data.get("video_root") or Path(train).parent)
    return src

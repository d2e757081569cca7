"""Which model and settings wrote a predictions file, so that ``test`` never resumes one run with another's rows.

``lit_videor2 test`` resumes by skipping the ids already in its predictions file. Without a record of who wrote
those rows, evaluating a second model with the same ``predictions`` path (for example the demo's SFT model, then
its GRPO model, with ``configs/demo/eval.yaml`` as shipped) would skip every id and report the first model's
results under the second's name. ``<stem>.run.json`` beside the predictions file records the run's identity: a
fingerprint of the model folder's contents and the generation settings. A resumed run whose identity differs stops
with an error naming both; ``resume: false`` or another ``predictions`` path starts a fresh file.

The fingerprint reads each model file's size and its first and last MiB (whole files when smaller), not every byte:
two checkpoints of one architecture differ there, and a 7B folder costs a few MiB of reads. The folder's path is
not part of it, so a moved or copied model still resumes. A hub id that is not a local folder is identified by the
id alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from lit_videor2.errors import UserError
from lit_videor2.evaluation.predictions import atomic_write_text

log = logging.getLogger(__name__)

__all__ = ["ResumeMismatch", "check_identity", "identity_file", "model_fingerprint", "run_identity", "write_identity"]

#: Model-folder files that decide what the model generates (weights, configs, tokenizer, processor).
MODEL_SUFFIXES = (".json", ".safetensors", ".bin", ".pt", ".model", ".tiktoken", ".txt")
_EDGE = 1 << 20  # bytes read from each end of a file


class ResumeMismatch(UserError, ValueError):
    """A predictions file to resume was written by another model or with other generation settings."""


def identity_file(predictions: str | Path) -> Path:
    """``<stem>.run.json`` beside the predictions file."""
    p = Path(predictions)
    return p.with_name(f"{p.stem}.run.json")


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(_EDGE))
        if size > 2 * _EDGE:
            f.seek(size - _EDGE)
        h.update(f.read(_EDGE))
    return h.hexdigest()


def model_fingerprint(path: str | Path) -> str:
    """A digest of the model folder's files (names, sizes, first and last MiB); ``path`` itself when not a folder."""
    folder = Path(path)
    if not folder.is_dir():
        return f"id:{path}"
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix in MODEL_SUFFIXES)
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}\0{_file_digest(f)}\0".encode())
    return f"sha256:{h.hexdigest()}"


def run_identity(policy_path: str | Path, generation: Any) -> dict[str, Any]:
    """What decides a predictions file's completions: the model's fingerprint and the generation settings (a
    :class:`~lit_videor2.rollout.engine.GenerationSettings`)."""
    return {
        "policy": str(policy_path),
        "model": model_fingerprint(policy_path),
        "generation": dataclasses.asdict(generation),
    }


def check_identity(predictions: str | Path, identity: dict[str, Any], has_rows: bool) -> None:
    """Raise if the predictions file's rows were written by another model or with other generation settings.

    ``has_rows``: the predictions file (or a part file of an interrupted run) holds rows that a resume would keep.
    Rows without a ``.run.json`` (files from before this check) are resumed with a warning.
    """
    if not has_rows:
        return
    record = identity_file(predictions)
    if not record.is_file():
        log.warning(
            "%s has no %s: cannot check that its rows come from this model; resuming.", predictions, record.name
        )
        return
    try:
        saved = json.loads(record.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ResumeMismatch(f"{record}: unreadable ({e}); delete it, or set resume: false to start over") from e
    diffs = [k for k in ("model", "generation") if saved.get(k) != identity[k]]
    if diffs:
        what = " and ".join({"model": "another model", "generation": "other generation settings"}[k] for k in diffs)
        raise ResumeMismatch(
            f"{predictions} holds rows written by {what} (policy {saved.get('policy')!r}, "
            f"generation {saved.get('generation')}); this run is policy {identity['policy']!r}, generation "
            f"{identity['generation']}. Resuming would mix the two. Give this run its own file "
            "(--model.init_args.predictions PATH) or start over (--model.init_args.resume false)."
        )


def write_identity(predictions: str | Path, identity: dict[str, Any]) -> None:
    """Write ``<stem>.run.json`` whole or not at all (:func:`~lit_videor2.evaluation.predictions.atomic_write_text`)."""
    record = identity_file(predictions)
    record.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(record, json.dumps(identity, indent=1) + "\n")

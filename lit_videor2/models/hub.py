"""The only place the project calls ``from_pretrained`` for processors (models: :mod:`lit_videor2.models.policy`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def check_model_path(path: str) -> None:
    """Fail early and clearly on a local path that does not exist (a hub id is passed through)."""
    looks_local = path.startswith((".", "/", "~")) or Path(path).exists() or path.count("/") != 1
    if looks_local and not Path(path).expanduser().is_dir():
        raise FileNotFoundError(
            f"model path {path!r} does not exist. Give a local Hugging Face folder (e.g. made by "
            f"`lit_videor2 tiny-model --arch qwen2_5_vl --out {path}`) or a hub id such as 'Qwen/Qwen2.5-VL-7B-Instruct'."
        )


def load_processor(path: str, **kwargs: Any) -> Any:
    """``AutoProcessor.from_pretrained(path)`` with a clear error for a missing path."""
    from transformers import AutoProcessor

    check_model_path(path)
    return AutoProcessor.from_pretrained(path, **kwargs)

"""The only place the project calls ``from_pretrained`` for processors.

Models are loaded in :mod:`lit_videor2.distributed.loading`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _offline() -> bool:
    return any(
        os.environ.get(k, "").lower() in ("1", "true", "yes") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def check_model_path(path: str) -> None:
    """Fail early and clearly when ``path`` is neither a local folder nor (when online) a hub id.

    ``models/demo-sft`` looks like a hub id too; offline, or when it is not shaped like one, a missing local
    folder is reported here instead of as a hub download error.
    """
    if Path(path).expanduser().is_dir():
        return
    if _HUB_ID.match(path) and not _offline() and not path.startswith((".", "/", "~")):
        return  # a hub id: from_pretrained downloads it (its own error if the repo does not exist)
    raise FileNotFoundError(
        f"model path {path!r} is not a local folder{' (offline mode)' if _offline() else ''}. Give a local Hugging Face "
        f"folder (e.g. made by `lit_videor2 tiny-model --arch qwen2_5_vl --out {path}` or `lit_videor2 export`) or, "
        "online, a hub id such as 'Qwen/Qwen2.5-VL-7B-Instruct'."
    )


def load_processor(path: str, **kwargs: Any) -> Any:
    """``AutoProcessor.from_pretrained(path)`` with a clear error for a missing path."""
    from transformers import AutoProcessor

    check_model_path(path)
    return AutoProcessor.from_pretrained(path, **kwargs)

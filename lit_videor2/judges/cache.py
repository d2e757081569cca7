"""On-disk cache of judge replies, keyed by model, messages and sampling settings."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["DiskCache"]


class DiskCache:
    """One JSON file per reply under ``root/<2 hex>/<sha256>.json``; writes are atomic (temp file + rename)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    @staticmethod
    def key(model: str, messages: list[dict[str, str]], sampling: dict[str, Any]) -> str:
        """SHA-256 of the canonical JSON of the request (the API key is never part of it)."""
        blob = json.dumps({"model": model, "messages": messages, "sampling": sampling}, sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        """The cached reply, or None."""
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))["content"]
        except (OSError, ValueError, KeyError):
            return None

    def put(self, key: str, content: str) -> None:
        """Store a reply."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"content": content}, fh)
        os.replace(tmp, path)

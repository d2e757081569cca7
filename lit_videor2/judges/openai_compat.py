"""Judge backed by any OpenAI-compatible chat endpoint (``vllm serve``, SGLang, TGI, OpenAI, …).

Point it at a vLLM server::

    vllm serve Qwen/Qwen3-32B --port 8000
    judge = OpenAIJudge(model="Qwen/Qwen3-32B", base_url="http://localhost:8000/v1")

Transport: one :class:`httpx.Client` with ``timeout_s`` per request; connection errors, timeouts, 429 and 5xx are
retried ``max_retries`` times with exponential backoff (``backoff_s · 2^attempt``); other 4xx fail at once. At most
``max_concurrency`` requests are in flight. A request that still fails returns None, and the judgment falls back
(:mod:`lit_videor2.judges.llm`); ``stats["transport_failures"]`` counts them. Replies are cached on disk under
``cache_dir`` (keyed by model, messages and sampling settings), so re-running an evaluation costs nothing.

The API key is read from the environment variable named by ``api_key_env`` at request time; it is never stored on
the object, printed, logged or part of the cache key.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

from lit_videor2.judges.cache import DiskCache
from lit_videor2.judges.llm import LLMJudge
from lit_videor2.judges.prompts import ChatRequest

__all__ = ["OpenAIJudge"]

log = logging.getLogger(__name__)

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIJudge(LLMJudge):
    """LLM judge over HTTP (``POST {base_url}/chat/completions``).

    Args:
        model: model name the server serves.
        base_url: API root, e.g. ``http://localhost:8000/v1``.
        api_key_env: environment variable holding the API key (unset or empty: no Authorization header).
        timeout_s: per-request timeout (connect, read, write, pool).
        max_retries: retries after the first attempt for transient failures.
        backoff_s: first backoff delay; doubles on each retry.
        max_concurrency: requests in flight at once.
        cache_dir: directory of the on-disk reply cache; None disables it.
        send_top_k: send ``top_k`` (vLLM accepts it; the OpenAI API does not).
    """

    def __init__(
        self,
        model: str,
        base_url: str = "http://localhost:8000/v1",
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 30.0,
        max_retries: int = 2,
        backoff_s: float = 0.5,
        max_concurrency: int = 8,
        cache_dir: str | None = None,
        send_top_k: bool = True,
    ) -> None:
        super().__init__()
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_concurrency = max(1, int(max_concurrency))
        self.cache = DiskCache(cache_dir) if cache_dir else None
        self.send_top_k = send_top_k
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._stats_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAIJudge(model={self.model!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"

    @property
    def client(self) -> httpx.Client:
        """The shared HTTP client (created on first use)."""
        with self._lock:
            if self._client is None:
                limits = httpx.Limits(max_connections=self.max_concurrency)
                self._client = httpx.Client(timeout=httpx.Timeout(self.timeout_s), limits=limits)
            return self._client

    def close(self) -> None:
        """Close the HTTP client."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def complete(self, requests: Sequence[ChatRequest]) -> list[str | None]:
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(requests))) as pool:
            return list(pool.map(self._complete_one, requests))

    def _payload(self, request: ChatRequest) -> dict:
        sampling = dict(request.sampling)
        if not self.send_top_k:
            sampling.pop("top_k", None)
        return {"model": self.model, "messages": request.messages, "stream": False, **sampling}

    def _complete_one(self, request: ChatRequest) -> str | None:
        key = DiskCache.key(self.model, request.messages, request.sampling) if self.cache else None
        if key is not None and (hit := self.cache.get(key)) is not None:
            self._count("cache_hits")
            return hit
        content = self._post(self._payload(request))
        if content is None:
            self._count("transport_failures")
        elif key is not None:
            self.cache.put(key, content)
        return content

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def _headers(self) -> dict[str, str]:
        api_key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def _post(self, payload: dict) -> str | None:
        url = f"{self.base_url}/chat/completions"
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = self.client.post(url, json=payload, headers=self._headers())
            except httpx.HTTPError as err:  # timeouts, refused connections, protocol errors
                log.warning("judge request to %s failed (attempt %d): %s", url, attempt + 1, type(err).__name__)
                continue
            if response.status_code in _RETRY_STATUS:
                log.warning("judge request to %s: HTTP %d (attempt %d)", url, response.status_code, attempt + 1)
                continue
            if response.status_code >= 400:
                log.warning("judge request to %s: HTTP %d, not retried", url, response.status_code)
                return None
            try:
                return response.json()["choices"][0]["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError):
                log.warning("judge reply from %s is not a chat completion", url)
                return ""
        return None

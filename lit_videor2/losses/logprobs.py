"""Per-token log-probabilities of given labels, without materialising a full-vocabulary log-softmax at once."""

from __future__ import annotations

import torch


def token_logprobs(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float = 1.0,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """``log softmax(logits / temperature)[label]`` for every position.

    Args:
        logits: ``[N, T, V]`` (any float dtype; bf16/fp16 are upcast to float32 one chunk at a time).
        labels: ``[N, T]`` token ids. Negative ids (e.g. ``-100`` padding) give a log-prob of 0; mask them.
        temperature: the sampling temperature; log-probs must be taken under the distribution that was sampled.
        chunk_size: positions processed per chunk. Forward memory beyond the logits is ``chunk_size * V`` floats
            instead of ``N * T * V``: each chunk computes ``logit[label] - logsumexp(logits)``.

    Returns:
        ``[N, T]`` float32 (float64 if ``logits`` is float64) log-probs, differentiable w.r.t. ``logits``.
    """
    if logits.dim() != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(
            f"token_logprobs expects logits [N, T, V] and labels [N, T]; got {tuple(logits.shape)} and "
            f"{tuple(labels.shape)}."
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}.")
    n, t, v = logits.shape
    out_dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    flat_logits = logits.reshape(n * t, v)  # [N*T, V]
    flat_labels = labels.reshape(n * t)  # [N*T]
    valid = flat_labels >= 0
    safe_labels = flat_labels.clamp(min=0)
    chunks = []
    for start in range(0, n * t, chunk_size):
        rows = flat_logits[start : start + chunk_size].to(out_dtype)  # [C, V]
        if temperature != 1.0:
            rows = rows / temperature
        picked = rows.gather(1, safe_labels[start : start + chunk_size, None]).squeeze(1)  # [C]
        chunks.append(picked - torch.logsumexp(rows, dim=1))
    if not chunks:
        return logits.new_zeros((n, t), dtype=out_dtype)
    out = torch.cat(chunks).masked_fill(~valid, 0.0)  # [N*T]
    return out.view(n, t)

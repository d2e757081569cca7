"""Per-token log-probabilities of given labels, without materialising a full-vocabulary log-softmax at once."""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint


def _label_logprobs(logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """``[C, V]`` float logits, ``[C]`` labels (>= 0) -> ``[C]`` ``log softmax(logits / temperature)[label]``."""
    if temperature != 1.0:
        logits = logits / temperature
    return logits.gather(1, labels[:, None]).squeeze(1) - torch.logsumexp(logits, dim=1)


def _check_settings(temperature: float, chunk_size: int) -> None:
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}.")


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
    _check_settings(temperature, chunk_size)
    n, t, v = logits.shape
    out_dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    flat_logits = logits.reshape(n * t, v)  # [N*T, V]
    flat_labels = labels.reshape(n * t)  # [N*T]
    valid = flat_labels >= 0
    safe_labels = flat_labels.clamp(min=0)
    chunks = []
    for start in range(0, n * t, chunk_size):
        rows = flat_logits[start : start + chunk_size].to(out_dtype)  # [C, V]
        chunks.append(_label_logprobs(rows, safe_labels[start : start + chunk_size], temperature))  # [C]
    if not chunks:
        return logits.new_zeros((n, t), dtype=out_dtype)
    out = torch.cat(chunks).masked_fill(~valid, 0.0)  # [N*T]
    return out.view(n, t)


def _chunk_logprobs(
    hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``[C, H]`` hidden states, ``[V, H]`` head weight, ``[C]`` labels -> ``[C]`` float32 log-probs."""
    logits = hidden @ weight.t()  # [C, V], in the head's dtype first (as the model's lm_head computes it)
    logits = logits if logits.dtype == torch.float64 else logits.float()
    return _label_logprobs(logits, labels, temperature)


def hidden_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float = 1.0,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """``log softmax(hidden @ weight.T / temperature)[label]`` without ever holding more than a chunk of logits.

    Each chunk of ``chunk_size`` positions goes through the LM head, its log-probs are taken and its logits freed;
    with gradient, the chunk runs under non-reentrant activation checkpointing, so backward recomputes its logits
    one chunk at a time too. Extra memory is ``O(chunk_size × V)`` in both passes, instead of the ``[N, T, V]``
    logits (8 × 1,024 completion tokens × Qwen's 152k vocabulary in float32 is 5 GB).

    Args:
        hidden: ``[N, T, H]`` final (normed) hidden states at the positions that predict ``labels``.
        weight: ``[V, H]`` the LM head's weight (no bias, as in Qwen-VL).
        labels: ``[N, T]`` token ids. Negative ids give a log-prob of 0; mask them.
        temperature: the sampling temperature.
        chunk_size: positions per chunk.

    Returns:
        ``[N, T]`` float32 log-probs (float64 with float64 inputs), differentiable w.r.t. ``hidden`` and ``weight``.
    """
    if hidden.dim() != 3 or labels.shape != hidden.shape[:2]:
        raise ValueError(
            f"hidden_logprobs expects hidden [N, T, H] and labels [N, T]; got {tuple(hidden.shape)} and "
            f"{tuple(labels.shape)}."
        )
    if weight.dim() != 2 or weight.shape[1] != hidden.shape[2]:
        raise ValueError(f"hidden_logprobs: weight {tuple(weight.shape)} does not match hidden size {hidden.shape[2]}.")
    _check_settings(temperature, chunk_size)
    n, t, h = hidden.shape
    out_dtype = torch.float64 if hidden.dtype == torch.float64 else torch.float32
    flat = hidden.reshape(n * t, h)  # [N*T, H]
    flat_labels = labels.reshape(n * t)  # [N*T]
    valid = flat_labels >= 0
    safe = flat_labels.clamp(min=0)
    grad = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)
    chunks = []
    for start in range(0, n * t, chunk_size):
        args = (flat[start : start + chunk_size], weight, safe[start : start + chunk_size], temperature)
        chunks.append(checkpoint(_chunk_logprobs, *args, use_reentrant=False) if grad else _chunk_logprobs(*args))
    if not chunks:
        return hidden.new_zeros((n, t), dtype=out_dtype)
    return torch.cat(chunks).to(out_dtype).masked_fill(~valid, 0.0).view(n, t)

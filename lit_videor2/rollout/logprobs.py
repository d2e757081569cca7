"""Teacher-forced log-probs of a :class:`~lit_videor2.rollout.containers.Rollout` (:func:`sequence_logprobs`):
the shared-prompt pass (prompt once per prompt, completions on its expanded KV cache) or N full forwards."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from lit_videor2.distributed.activation_checkpointing import FunctionalCache, is_activation_checkpointing
from lit_videor2.losses.logprobs import hidden_logprobs
from lit_videor2.models.policy import inner_model, language_model
from lit_videor2.models.vision import repeat_videos, video_encoder_outputs, vision_tower_trainable
from lit_videor2.rollout.containers import Rollout


def _video_kwargs(model: nn.Module, rollout: Rollout, *, reuse_vision: bool, repeats: int) -> dict[str, Any]:
    """Vision inputs of a forward over ``B * repeats`` rows: the stored features, or pixels (re-encoded)."""
    prompt = rollout.prompt
    if not reuse_vision:
        pixels, grid = repeat_videos(prompt.pixel_values_videos, prompt.video_grid_thw, repeats)
        return {"pixel_values_videos": pixels, "video_grid_thw": grid}
    if rollout.video_features is None:
        raise ValueError(
            "sequence_logprobs(reuse_vision=True) needs the rollout's video features; this rollout has none "
            "(generated with share_prefix=False). Pass reuse_vision=False or generate with share_prefix=True."
        )
    if torch.is_grad_enabled() and vision_tower_trainable(model):
        raise ValueError(
            "sequence_logprobs(reuse_vision=True) with a trainable vision tower would give it no gradient: freeze "
            "model.model.visual (the Video-R2 recipe does) or pass reuse_vision=False."
        )
    return {"mm_encoder_outputs": video_encoder_outputs(rollout.video_features, repeats)}


class _LogprobHead(nn.Module):
    """Stands in for the LM head during a log-prob forward: hidden states -> ``[N, T]`` log-probs of ``labels``,
    through :func:`~lit_videor2.losses.logprobs.hidden_logprobs` (chunked, recomputed per chunk in backward), so
    the ``[N, T, V]`` logits never exist. ``labels=None`` (a pass whose outputs are only its KV) returns nothing."""

    def __init__(self, head: nn.Module, labels: torch.Tensor | None, temperature: float, chunk_size: int) -> None:
        super().__init__()
        self.head = head
        self.labels, self.temperature, self.chunk_size = labels, temperature, chunk_size

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # [N, T, H] -> [N, T]
        if self.labels is None:
            # Zeros that stay in the autograd graph: under FSDP2 the pre-backward hooks of the root and the last
            # decoder layer fire only if the forward's output reaches the loss (see _shared_prompt_logprobs).
            return hidden.sum(-1) * 0.0
        if getattr(self.head, "bias", None) is not None:
            raise ValueError("sequence_logprobs: an LM head with a bias is not supported (Qwen-VL heads have none).")
        return hidden_logprobs(
            hidden, self.head.weight, self.labels, temperature=self.temperature, chunk_size=self.chunk_size
        )


@contextmanager
def _logprob_head(model: nn.Module, labels: torch.Tensor | None, temperature: float, chunk_size: int):
    """Swap ``model.lm_head`` for a :class:`_LogprobHead` for one forward.

    The swap keeps the head's computation inside the model's own forward, so FSDP2's root hooks (which gather the
    head weight) cover it, and the output's ``logits`` field holds ``[N, T]`` log-probs.
    """
    head = model.lm_head
    model.lm_head = _LogprobHead(head, labels, temperature, chunk_size)
    try:
        yield
    finally:
        model.lm_head = head


def _full_logprobs(
    model: nn.Module, rollout: Rollout, video: dict[str, Any], temperature: float, chunk_size: int
) -> torch.Tensor:
    """One forward over prompt + completion for all N rows -> ``[N, T]`` log-probs of the completion."""
    lp, t = rollout.prompt_length, rollout.completion_length
    keep = torch.arange(lp - 1, lp + t - 1, device=rollout.completion_ids.device)  # positions predicting tokens 0..T-1
    with _logprob_head(model, rollout.completion_ids, temperature, chunk_size):
        out = model(
            input_ids=rollout.input_ids(),  # [N, Lp + T]
            attention_mask=rollout.attention_mask(),
            position_ids=rollout.position_ids,
            use_cache=False,
            logits_to_keep=keep,
            **video,
        )
    return out.logits  # [N, T]


def _activation_checkpointing(model: nn.Module) -> bool:
    """Whether activation checkpointing is on: the project's per-layer wrapper, or transformers' own."""
    flag = getattr(type(model), "is_activation_checkpointing", None)
    name = "is_activation_checkpointing" if flag is not None else "is_gradient_checkpointing"
    return is_activation_checkpointing(model) or bool(getattr(model, name, False))


def _shared_prompt_logprobs(
    model: nn.Module, rollout: Rollout, video: dict[str, Any], temperature: float, chunk_size: int
) -> torch.Tensor:
    """The prompt (all but its last token) once per prompt with gradient, its KV expanded to G rows, then
    ``[last prompt token, completion tokens 0..T-2]`` on top for the N rows -> ``[N, T]`` log-probs.

    Every call runs exactly these two forwards whatever the completion length (under FSDP2 all ranks must run
    the same forwards). The caches are functional (:mod:`lit_videor2.distributed.activation_checkpointing`), so the path is the
    same with activation checkpointing on or off; the last prompt token is recomputed G times (one token per row)
    so that the completion pass alone produces every log-prob.
    """
    if (
        torch.is_grad_enabled()
        and model.training
        and _activation_checkpointing(model)
        and not (is_activation_checkpointing(model))
    ):
        raise ValueError(
            "sequence_logprobs(share_prompt=True) needs the KV cache, which transformers' gradient checkpointing "
            "drops in training mode: enable checkpointing with "
            "lit_videor2.distributed.activation_checkpointing.enable_activation_checkpointing (what PolicySpec does) instead."
        )
    g, lp, t = rollout.group_size, rollout.prompt_length, rollout.completion_length
    prompt = rollout.prompt
    cache = FunctionalCache.recording(len(language_model(model).layers))
    no_positions = torch.zeros(0, dtype=torch.long, device=prompt.input_ids.device)
    with _logprob_head(model, None, temperature, chunk_size):
        prompt_out = model(
            input_ids=prompt.input_ids[:, :-1],  # [B, Lp - 1]
            attention_mask=prompt.attention_mask[:, :-1],
            position_ids=rollout.prompt_position_ids[..., :-1],  # (3, B, Lp - 1)
            cache=cache,
            use_cache=True,
            logits_to_keep=no_positions,
            **video,
        )
    last = prompt.input_ids[:, -1:].repeat_interleave(g, dim=0)  # [N, 1], a text token (the generation prompt's)
    with _logprob_head(model, rollout.completion_ids, temperature, chunk_size):
        out = model(
            input_ids=torch.cat([last, rollout.completion_ids[:, :-1]], dim=1),  # [N, T]
            attention_mask=rollout.attention_mask()[:, : lp + t - 1],  # [N, Lp + T - 1]
            position_ids=rollout.position_ids[..., lp - 1 : lp + t - 1],  # (3, N, T)
            cache=cache.expanded(g),  # differentiable: backward sums the G copies into the prompt pass
            use_cache=True,
            logits_to_keep=0,
        )
    # The prompt pass's own output (zeros) joins the loss so that FSDP2's pre-backward hooks on its root and last
    # decoder layer fire: otherwise the gradient reaching those layers through the KV cache finds them resharded
    # ("setStorage ... storage of size 0"). It adds exactly 0.
    return out.logits + 0.0 * prompt_out.logits.sum()  # [N, T]


def sequence_logprobs(
    model: nn.Module,
    rollout: Rollout,
    *,
    reuse_vision: bool = True,
    share_prompt: bool = True,
    temperature: float = 1.0,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Teacher-forced per-token log-probs of the rollout's completions under ``model``.

    Uses the rollout's positions (hence the same frame times as generation). Run under ``torch.no_grad()`` for the
    reference / old-policy passes; with grad for the policy pass.

    Args:
        model: the policy or the reference model (same architecture as the generating model).
        rollout: from :func:`generate_group`.
        reuse_vision: feed the rollout's stored visual features (no vision-tower pass; the tower must be frozen).
            False re-encodes the pixels (once per prompt with ``share_prompt``, once per completion without).
        share_prompt: run the prompt once per prompt and the completions on its expanded KV cache (gradients
            flow into the prompt pass); False runs N full prompt + completion forwards (the baseline).
        temperature: the sampling temperature; log-probs are taken under ``softmax(logits / temperature)``.
        chunk_size: positions per chunk through the LM head; the ``[N, T, V]`` logits are never materialised
            (extra memory ``O(chunk_size × V)`` forward and backward).

    Works with activation checkpointing (:func:`~lit_videor2.distributed.activation_checkpointing.enable_activation_checkpointing`)
    on or off, on both paths; the policy, old-policy and reference passes take the same path.

    Returns:
        ``[N, T]`` float32 log-probs; positions after EOS hold values too, mask them with ``completion_mask``.
    """
    model = inner_model(model)
    repeats = 1 if share_prompt else rollout.group_size
    video = _video_kwargs(model, rollout, reuse_vision=reuse_vision, repeats=repeats)
    path = _shared_prompt_logprobs if share_prompt else _full_logprobs
    return path(model, rollout, video, temperature, chunk_size)


__all__ = ["sequence_logprobs"]

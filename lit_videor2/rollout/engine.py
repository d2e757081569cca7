"""One generation path for validation, ``test`` and ``ask``: the rollout engine, with every setting explicit.

:func:`generate_completions` runs :func:`~lit_videor2.rollout.generate_group` with ``group_size=1``, so
evaluation decodes exactly as GRPO does: explicit 3-D positions by the original Qwen rule, every vision special
token suppressed, the project's one list of stop tokens (:func:`~lit_videor2.rollout.stop_token_ids`), and
only the :class:`GenerationSettings` given. Nothing comes from the checkpoint's ``generation_config`` (Qwen2.5-VL-
7B-Instruct ships ``repetition_penalty`` 1.05 and its own sampling defaults, which ``model.generate`` would apply).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from lit_videor2.models.policy import inner_model
from lit_videor2.rollout.containers import PromptBatch, Rollout
from lit_videor2.rollout.decoding import special_token_kwargs
from lit_videor2.rollout.generation import generate_group

__all__ = ["Completions", "GenerationSettings", "decode_completions", "generate_completions"]


@dataclass
class GenerationSettings:
    """Decoding settings of evaluation-time generation (greedy by default). Nothing else applies."""

    max_new_tokens: int = 256
    """Longest completion, in tokens."""
    do_sample: bool = False
    """Sample (True) or decode greedily (False; temperature, top_k and top_p are then unused)."""
    temperature: float = 1.0
    """Sampling temperature."""
    top_k: int = 0
    """Sample among the k most likely tokens (0: no limit)."""
    top_p: float = 1.0
    """Nucleus sampling mass (1.0: no limit)."""
    min_new_tokens: int = 0
    """The stop tokens are forbidden before this many tokens."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.min_new_tokens < 0 or self.min_new_tokens > self.max_new_tokens:
            raise ValueError(
                f"generation settings: need 0 <= min_new_tokens ({self.min_new_tokens}) <= max_new_tokens "
                f"({self.max_new_tokens}) and max_new_tokens >= 1."
            )
        if self.do_sample and not (self.temperature > 0 and 0 < self.top_p <= 1 and self.top_k >= 0):
            raise ValueError(
                f"generation settings: sampling needs temperature > 0 ({self.temperature}), 0 < top_p <= 1 "
                f"({self.top_p}) and top_k >= 0 ({self.top_k})."
            )

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (logged and written to ``results.json``)."""
        return asdict(self)

    def engine_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~lit_videor2.rollout.generate_group` for these settings."""
        return {f: getattr(self, f) for f in GenerationSettings.__dataclass_fields__}


class Completions(NamedTuple):
    """One completion per prompt of a batch."""

    texts: list[str]
    """Decoded completions (special tokens dropped)."""
    token_ids: torch.Tensor
    """``[B, T]`` generated ids; the pad token after the first stop token."""
    lengths: list[int]
    """Tokens of each completion up to and including its first stop token (``T`` when it has none)."""


def decode_completions(tokenizer: Any, rollout: Rollout) -> list[str]:
    """The texts of a rollout's completions: each row's tokens up to and including its first stop token
    (``completion_lengths``), special tokens dropped, in one ``batch_decode``. The one decoding of completions:
    GRPO (rewards), validation, ``test`` and ``ask``."""
    ids = rollout.completion_ids.cpu()
    return tokenizer.batch_decode(
        [row[:n] for row, n in zip(ids, rollout.completion_lengths.tolist())], skip_special_tokens=True
    )


@torch.no_grad()
def generate_completions(
    model: nn.Module,
    tokenizer: Any,
    batch: PromptBatch | dict[str, Any],
    settings: GenerationSettings | None = None,
    *,
    synced: bool = False,
    generator: torch.Generator | None = None,
    gather_for_generation: bool = True,
) -> Completions:
    """One completion per prompt of a collated prompt batch, decoded by the rollout engine.

    Args:
        model: the policy (a peft wrapper is fine).
        tokenizer: its tokenizer (stop ids, pad id, decoding).
        batch: a :class:`~lit_videor2.rollout.PromptBatch` or a collated batch with ``prompt_*`` keys.
        settings: decoding settings; default :class:`GenerationSettings` (greedy, 256 tokens).
        synced: decode in lockstep with the other ranks (pass ``world_size > 1``: under FSDP every rank must run
            the same forwards).
        generator: RNG of sampling (``do_sample=True``).
        gather_for_generation: under FSDP2, all-gather the full weights once for the batch, not once per decode step
            (``PolicySpec.gather_for_generation``; :func:`~lit_videor2.distributed.sharding.gathered_for_generation`).
    """
    settings = settings or GenerationSettings()
    rollout = generate_group(
        model,
        batch,
        group_size=1,
        **special_token_kwargs(inner_model(model), tokenizer),
        generator=generator,
        synced=synced,
        gather_for_generation=gather_for_generation,
        **settings.engine_kwargs(),
    )
    texts = decode_completions(tokenizer, rollout)
    return Completions(texts, rollout.completion_ids, rollout.completion_lengths.tolist())

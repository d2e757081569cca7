"""Pure loss math: GRPO (group advantages, token log-probs, the clipped loss and its variants) and SFT (assistant-token
cross-entropy from logits; the forward is :mod:`lit_videor2.rollout.forward`)."""

from lit_videor2.losses.advantages import group_advantages, mask_truncated
from lit_videor2.losses.grpo import LOSS_TYPES, GRPOLossStats, grpo_loss
from lit_videor2.losses.logprobs import hidden_logprobs, token_logprobs
from lit_videor2.losses.sft import loss_terms, next_token_losses

__all__ = [
    "LOSS_TYPES",
    "GRPOLossStats",
    "group_advantages",
    "grpo_loss",
    "hidden_logprobs",
    "loss_terms",
    "mask_truncated",
    "next_token_losses",
    "token_logprobs",
]

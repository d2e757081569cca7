"""Pure tensor functions for GRPO: group advantages, token log-probs, the clipped loss and its variants."""

from lit_videor2.losses.advantages import group_advantages, mask_truncated
from lit_videor2.losses.grpo import LOSS_TYPES, GRPOLossStats, grpo_loss
from lit_videor2.losses.logprobs import hidden_logprobs, token_logprobs

__all__ = [
    "LOSS_TYPES",
    "GRPOLossStats",
    "group_advantages",
    "grpo_loss",
    "hidden_logprobs",
    "mask_truncated",
    "token_logprobs",
]

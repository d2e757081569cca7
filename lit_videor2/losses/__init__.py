"""Pure loss math: GRPO (group advantages, token log-probs, the clipped loss and its variants) and SFT (assistant-token
cross-entropy)."""

from lit_videor2.losses.advantages import group_advantages, mask_truncated
from lit_videor2.losses.grpo import LOSS_TYPES, GRPOLossStats, grpo_loss
from lit_videor2.losses.logprobs import hidden_logprobs, token_logprobs
from lit_videor2.losses.sft import assistant_token_loss, label_token_losses, loss_terms, model_inputs

__all__ = [
    "LOSS_TYPES",
    "GRPOLossStats",
    "assistant_token_loss",
    "group_advantages",
    "grpo_loss",
    "hidden_logprobs",
    "label_token_losses",
    "loss_terms",
    "mask_truncated",
    "model_inputs",
    "token_logprobs",
]

"""Diagnostics as torchmetrics: TAC, VAS, claim truth and the model-internal visual reliance (functional versions in
:mod:`lit_videor2.metrics.functional`)."""

from lit_videor2.metrics.classes import (
    ClaimTruth,
    PredictionMetrics,
    ThinkAnswerConsistency,
    VideoAttentionScore,
    VisualReliance,
)
from lit_videor2.metrics.functional import (
    CLAIM_METRICS,
    answer_matches,
    claim_truth,
    final_layer_attention,
    think_answer_consistency,
    video_attention_score,
    visual_reliance,
)

__all__ = [
    "CLAIM_METRICS",
    "ClaimTruth",
    "PredictionMetrics",
    "ThinkAnswerConsistency",
    "VideoAttentionScore",
    "VisualReliance",
    "answer_matches",
    "claim_truth",
    "final_layer_attention",
    "think_answer_consistency",
    "video_attention_score",
    "visual_reliance",
]

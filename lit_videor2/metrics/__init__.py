"""Diagnostics as torchmetrics: TAC, VAS and the model-internal visual reliance (functional versions in
:mod:`lit_videor2.metrics.functional`)."""

from lit_videor2.metrics.classes import PredictionMetrics, ThinkAnswerConsistency, VideoAttentionScore, VisualReliance
from lit_videor2.metrics.functional import (
    answer_matches,
    final_layer_attention,
    think_answer_consistency,
    video_attention_score,
    visual_reliance,
)

__all__ = [
    "PredictionMetrics",
    "ThinkAnswerConsistency",
    "VideoAttentionScore",
    "VisualReliance",
    "answer_matches",
    "final_layer_attention",
    "think_answer_consistency",
    "video_attention_score",
    "visual_reliance",
]

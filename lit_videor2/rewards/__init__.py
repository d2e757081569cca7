"""Rewards: TRL-style callables ``reward(completions, **columns) -> list[float | None]`` and their composition.

Public pure functions (other checks import them exactly so)::

    from lit_videor2.rewards import format_score, accuracy_score, match_claims, temporal_alignment_score
    from lit_videor2.rewards import claim_verdicts, time_tolerance  # the checked claims (lit_videor2/claims.py)
"""

from lit_videor2.claims import claim_attributes, claim_verdicts, contradictions, time_tolerance
from lit_videor2.rewards.accuracy import AccuracyReward, accuracy_score
from lit_videor2.rewards.base import Reward, RewardComposition, RewardOutput, component_stats
from lit_videor2.rewards.embedding import Embedder, SentenceTransformerEmbedder
from lit_videor2.rewards.format import FormatReward, format_score
from lit_videor2.rewards.gate import ConsistencyGate
from lit_videor2.rewards.temporal import TemporalAlignmentReward, match_claims, temporal_alignment_score

__all__ = [
    "format_score",
    "accuracy_score",
    "component_stats",
    "claim_attributes",
    "claim_verdicts",
    "contradictions",
    "time_tolerance",
    "match_claims",
    "temporal_alignment_score",
    "AccuracyReward",
    "ConsistencyGate",
    "Embedder",
    "FormatReward",
    "Reward",
    "RewardComposition",
    "RewardOutput",
    "SentenceTransformerEmbedder",
    "TemporalAlignmentReward",
]

"""Judges: the four judgments of the method (concluded answer, final answer, grounding score, consistency).

Backends: :class:`RuleBasedJudge` (offline, default), :class:`HFJudge` (local causal LM),
:class:`OpenAIJudge` (OpenAI-compatible endpoint such as ``vllm serve``).
"""

from lit_videor2.judges.base import Judge, is_multiple_choice
from lit_videor2.judges.cache import DiskCache
from lit_videor2.judges.hf import HFJudge
from lit_videor2.judges.llm import LLMJudge
from lit_videor2.judges.openai_compat import OpenAIJudge
from lit_videor2.judges.prompts import ChatRequest
from lit_videor2.judges.rule_based import RuleBasedJudge, grounding_cue_score

__all__ = [
    "ChatRequest",
    "DiskCache",
    "HFJudge",
    "Judge",
    "LLMJudge",
    "OpenAIJudge",
    "RuleBasedJudge",
    "grounding_cue_score",
    "is_multiple_choice",
]

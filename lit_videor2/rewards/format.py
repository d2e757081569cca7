"""Format reward: does the completion follow ``<think>…</think><answer>…</answer>``?

Reference semantics (kept): strict mode needs the *whole* string to match
``<think>.*?</think>\\s*<answer>.*?</answer>`` (DOTALL), so text before or after — even a trailing newline — fails.
The lenient mode (an option, not the reference) ignores surrounding whitespace and tag case.
"""

from __future__ import annotations

import re
from typing import Any

from lit_videor2.rewards.base import Reward

__all__ = ["FormatReward", "format_score"]

_STRICT_RE = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
_LENIENT_RE = re.compile(r"\s*<think>.*?</think>\s*<answer>.*?</answer>\s*", re.DOTALL | re.IGNORECASE)


def format_score(completion: str, strict: bool = True) -> float:
    """1.0 when ``completion`` is exactly a think block followed by an answer block, else 0.0."""
    pattern = _STRICT_RE if strict else _LENIENT_RE
    return 1.0 if pattern.fullmatch(completion or "") else 0.0


class FormatReward(Reward):
    """Reward 1.0 for a well-formed completion (see :func:`format_score`).

    Args:
        strict: the reference pattern (default); False also accepts surrounding whitespace and any tag case.
    """

    name = "format"

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict

    def __call__(self, completions: list[str], **columns: Any) -> list[float | None]:
        return [format_score(c, strict=self.strict) for c in completions]

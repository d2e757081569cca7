"""Prompts and output parsers of the LLM judges (intent and sampling settings:
``docs/method.md#tac-thinkanswer-consistency``, ``docs/method.md#vas-video-attention-score``).

Every judgment is a :class:`ChatRequest` (messages + sampling settings) and a parser that returns
``(ok, value)``; ``ok`` False means the output was unusable and the judge retries once with :data:`NUDGE`
appended before falling back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from lit_videor2.text import parse_option_letter

__all__ = [
    "ChatRequest",
    "claim_request",
    "EXTRACT_SAMPLING",
    "GROUNDING_SAMPLING",
    "NUDGE",
    "VERDICT_SAMPLING",
    "answer_request",
    "conclusion_request",
    "consistency_request",
    "grounding_request",
    "parse_decision",
    "parse_open_answer",
    "parse_letter",
    "parse_score",
]

EXTRACT_SAMPLING = {"temperature": 0.0, "max_tokens": 32}
"""Answer extraction: deterministic (temperature 0)."""
VERDICT_SAMPLING = {"temperature": 0.0, "max_tokens": 128}
"""Consistency auditor: deterministic."""
GROUNDING_SAMPLING = {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "max_tokens": 256}
"""Visual-grounding scorer: the sampling settings of the reference VAS script."""
NUDGE = "\n\nIMPORTANT: reply in exactly the requested format and nothing else."


class ChatRequest(NamedTuple):
    """A chat request: OpenAI-style messages and sampling settings."""

    messages: list[dict[str, str]]
    sampling: dict[str, Any]

    def nudged(self) -> ChatRequest:
        """The same request with :data:`NUDGE` appended to the last user message (the one retry)."""
        messages = [dict(m) for m in self.messages]
        messages[-1]["content"] += NUDGE
        return ChatRequest(messages, self.sampling)


def _options_block(options: Sequence[str] | None) -> str:
    if not options:
        return ""
    lines = [o if re.match(r"^\s*[A-Za-z][.)]", o) else f"{chr(ord('A') + i)}. {o}" for i, o in enumerate(options)]
    return "Options:\n" + "\n".join(lines) + "\n\n"


_MCQ_FORMAT = "Reply with ONE capital letter only (A, B, C, ...), or UNKNOWN if there is none."
_OPEN_FORMAT = (
    "Reply on one line with only the answer: the bare number if it is numeric, otherwise the shortest text answer; "
    "UNKNOWN if there is none."
)


def conclusion_request(reasoning: str, options: Sequence[str] | None, mcq: bool) -> ChatRequest:
    """Strict extractor of the answer a reasoning concludes (last explicit conclusion; option text -> letter)."""
    system = (
        "You are a strict extractor. Read only the reasoning and report the answer it explicitly concludes. "
        "If it concludes several times, report the LAST conclusion. If it names an option by its text, map it to "
        "that option's letter. Do not judge correctness and do not reason beyond what is written."
    )
    user = _options_block(options) + f"Reasoning:\n{reasoning.strip()}\n\n" + (_MCQ_FORMAT if mcq else _OPEN_FORMAT)
    return ChatRequest([{"role": "system", "content": system}, {"role": "user", "content": user}], EXTRACT_SAMPLING)


def answer_request(answer: str, options: Sequence[str] | None, mcq: bool) -> ChatRequest:
    """Deterministic parser of a final answer snippet."""
    system = (
        "You are a deterministic parser. Read only the given text and output its answer in the requested format. "
        "Treat 'option c', '(c)', '[c]', 'C)' as the letter C. No explanations, no extra words."
    )
    user = _options_block(options) + f"Text to parse:\n{answer.strip()}\n\n" + (_MCQ_FORMAT if mcq else _OPEN_FORMAT)
    return ChatRequest([{"role": "system", "content": system}, {"role": "user", "content": user}], EXTRACT_SAMPLING)


def grounding_request(question: str, completion: str) -> ChatRequest:
    """Scorer of how much the reasoning claims concrete visual evidence (0–10 rubric)."""
    system = (
        "You judge the claimed visual grounding of a video question-answering reasoning trace. You do not see the "
        "video: score what the reasoning inside <think>...</think> asserts, not whether it is true or the answer is "
        "correct. Positive cues: specific visible entities and attributes, counts, on-screen text, spatial relations, "
        "temporal order, actions described as seen, timestamps tied to content. Negative cues: generic mentions of "
        "'the video', option pattern matching, prior knowledge, restating the question.\n"
        "Rubric (integer 0-10): 10 dense, specific, step-by-step visual reasoning; 7-9 clearly video-based with "
        "several specific claims; 4-6 cites specific video facts but little spatial or temporal detail; 1-3 minimal "
        "visual content; 0 no visual grounding or no <think> block. Judge the first <think> block; ignore <answer>."
    )
    user = (
        f"Question:\n{question.strip()}\n\nResponse:\n{completion.strip()}\n\n"
        'Reply with JSON only: {"score": <integer 0-10>, "rationale": "<2-3 sentences>"}'
    )
    return ChatRequest([{"role": "system", "content": system}, {"role": "user", "content": user}], GROUNDING_SAMPLING)


def consistency_request(question: str, reasoning: str, answer: str) -> ChatRequest:
    """Auditor: do the reasoning and the final answer reach the same conclusion? (TRUE/FALSE)"""
    system = (
        "You are a meticulous auditor. Decide whether the reasoning (THINK) and the final answer (ANSWER) reach the "
        "same conclusion for the question. Ignore style and verbosity; focus only on whether THINK concludes and "
        "supports ANSWER."
    )
    user = (
        f"QUESTION:\n{question.strip() or '(none)'}\n\nTHINK:\n{reasoning.strip()}\n\nANSWER:\n{answer.strip()}\n\n"
        "On the first line output only TRUE (same conclusion) or FALSE (contradiction or unsupported); "
        "then one or two sentences of justification."
    )
    return ChatRequest([{"role": "system", "content": system}, {"role": "user", "content": user}], VERDICT_SAMPLING)


def claim_request(claim: str, truth: str) -> ChatRequest:
    """Verifier of the checked temporal alignment reward: does a claim agree with the ground truth? (TRUE/FALSE)"""
    system = (
        "You check evidence cited from a video. A CLAIM and a GROUND TRUTH describe the same moment of the video. "
        "Decide whether the CLAIM is consistent with the GROUND TRUTH: a paraphrase, or saying less, is consistent; "
        "another colour, number, kind of person or object, direction, event, or the opposite polarity is not."
    )
    user = (
        f"GROUND TRUTH:\n{truth.strip()}\n\nCLAIM:\n{claim.strip()}\n\n"
        "On the first line output only TRUE (consistent) or FALSE (contradicts the ground truth); "
        "then one sentence of justification."
    )
    return ChatRequest([{"role": "system", "content": system}, {"role": "user", "content": user}], VERDICT_SAMPLING)


def _first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def parse_letter(text: str | None, valid: str | None = None) -> tuple[bool, str | None]:
    """``(ok, letter)`` from an extractor's output; UNKNOWN is a valid "no answer"."""
    line = _first_line(text)
    if line.strip(" .").upper() == "UNKNOWN":
        return True, None
    letter = parse_option_letter(line, valid)
    return (letter is not None), letter


def parse_open_answer(text: str | None) -> tuple[bool, str | None]:
    """``(ok, answer)`` from an open-form extractor's output; UNKNOWN is a valid "no answer"."""
    line = _first_line(text).strip(" \"'`")
    if not line:
        return False, None
    return True, (None if line.strip(" .").upper() == "UNKNOWN" else line)


def parse_score(text: str | None) -> tuple[bool, float]:
    """``(ok, score)`` from the grounding scorer's JSON; the score is rounded and clamped to [0, 10]."""
    for match in re.finditer(r"\{[^{}]*\}", text or ""):
        try:
            score = json.loads(match.group(0)).get("score")
        except (json.JSONDecodeError, AttributeError):
            continue
        if isinstance(score, (int, float)) and not isinstance(score, bool) and score == score:
            return True, float(max(0, min(10, round(float(score)))))
    return False, 0.0


def parse_decision(text: str | None) -> tuple[bool, bool]:
    """``(ok, verdict)`` from the auditor's output: TRUE/FALSE on the first line (or alone in it)."""
    first = _first_line(text).upper()
    if first.startswith("TRUE") or ("TRUE" in first and "FALSE" not in first):
        return True, True
    if first.startswith("FALSE") or ("FALSE" in first and "TRUE" not in first):
        return True, False
    return False, False

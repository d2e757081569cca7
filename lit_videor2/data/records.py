"""One typed record for every annotation schema the project reads.

Both the Video-R2 schema (``video``, ``conversations``, ``temporal_grounding``) and the Video-R1 schema
(``problem``, ``options``, ``solution``, ``problem_type``, ``path``, optional ``process``) are normalised
into :class:`VideoRecord`. Everything downstream (collators, rewards, metrics, evaluation) sees only this
record, and the prompt collator hands its fields to rewards as *columns* with these names:

==================== =====================================================================
column               meaning
==================== =====================================================================
``id``               record id (string; from the file or ``<file stem>:<index>``)
``question``         the user question text, options included, without the ``<video>`` tag
``answer``           ground-truth answer, bare (``"B"``, ``"3.5"``, ``"a red circle"``)
``problem_type``     ``multiple choice`` | ``numerical`` | ``regression`` | ``OCR`` | ``free-form`` | None
``options``          list of option strings (``["A. red", "B. blue"]``) or empty list
``temporal_grounding`` mapping timestamp key -> short claim (may be empty)
``solution``         the SFT target ``<think>…</think><answer>…</answer>`` or None
``duration``         video duration in seconds (float) — set by the dataset after decoding
``frame_times``      timestamps (s) of the sampled frames — set by the dataset
``video``            video path as written in the record (relative to the video root)
==================== =====================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: Instruction appended to every question (``docs/method.md#data``).
REASONING_INSTRUCTION = (
    "Please think about this question as if you were a human pondering deeply. "
    "Provide your detailed reasoning between the <think> and </think> tags, "
    "and then give your final answer between the <answer> and </answer> tags."
)


def question_with_options(question: str, options: Sequence[str] = ()) -> str:
    """The question text a record shows the model: ``question`` and, when there are options, a line ``Options:``
    and one line per option (as given: ``"A. red"``). The one formatter of it (annotation schemas, benchmark
    converters, ``ask``)."""
    return question if not options else question + "\nOptions:\n" + "\n".join(options)


@dataclass
class VideoRecord:
    """A normalised annotation record (one question about one video)."""

    id: str
    """Record id, unique within a file."""
    video: str
    """Video path relative to the video root (or absolute)."""
    question: str
    """Question text shown to the model, options included, without ``<video>`` and without the instruction."""
    answer: str
    """Ground-truth answer, bare (no ``<answer>`` tags)."""
    problem_type: str | None = None
    """One of :data:`lit_videor2.problem_types.PROBLEM_TYPES`, or None when the source has none (rewards then
    infer it)."""
    options: list[str] = field(default_factory=list)
    """Answer options as shown (``"A. red"``), empty for open questions."""
    solution: str | None = None
    """SFT target ``<think>…</think>\\n<answer>…</answer>``; None for prompt-only data."""
    temporal_grounding: dict[str, str] = field(default_factory=dict)
    """Ground-truth timestamp -> claim map (Video-R2); empty when absent."""
    source: str = ""
    """Where the record came from: ``<file>:<line or index>`` (used in error messages)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Any other fields of the source record, kept for users' own rewards."""

    def columns(self) -> dict[str, Any]:
        """The annotation fields handed to rewards and metrics (see the module docstring)."""
        cols = dict(self.extra)
        cols.update(
            id=self.id,
            video=self.video,
            question=self.question,
            answer=self.answer,
            problem_type=self.problem_type,
            options=list(self.options),
            solution=self.solution,
            temporal_grounding=dict(self.temporal_grounding),
        )
        return cols

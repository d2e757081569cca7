"""Shared logic of the LLM-backed judges: build requests, call the backend, parse, retry once, fall back.

Backends implement only :meth:`LLMJudge.complete` (a batch of :class:`ChatRequest` -> text or None on failure).
Fallbacks (``docs/method.md#tac-thinkanswer-consistency``, ``docs/method.md#vas-video-attention-score``):
unparseable output after one retry or a failed call gives None (answers), 0.0 (grounding score) or False
(consistency). :attr:`LLMJudge.stats` counts calls, retries and fallbacks.

A *failed call* (the backend returned None: server down, HTTP error after retries) is told apart from an
unparseable reply: the index of its row in the batch goes to :attr:`LLMJudge.failed_rows`, so callers can keep
the row's previous judgments instead of writing the fallback (``lit_videor2 judge`` does).
"""

from __future__ import annotations

from abc import abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from lit_videor2.judges.base import Judge, Options, _rows
from lit_videor2.judges.prompts import (
    ChatRequest,
    answer_request,
    claim_request,
    conclusion_request,
    consistency_request,
    grounding_request,
    parse_decision,
    parse_letter,
    parse_open_answer,
    parse_score,
)
from lit_videor2.problem_types import is_multiple_choice
from lit_videor2.text import extract_answer, extract_think

__all__ = ["LLMJudge"]


def _letters(options: Sequence[str] | None) -> str | None:
    return "".join(chr(ord("A") + i) for i in range(len(options))) if options else None


class LLMJudge(Judge):
    """A judge whose four judgments are answered by a chat model (see :mod:`lit_videor2.judges.prompts`)."""

    def __init__(self) -> None:
        self.stats: Counter[str] = Counter()
        self.failed_rows: set[int] = set()
        """Rows (indices into the batches of the calls since the caller last cleared it) whose judgment fell back
        because the backend call failed."""

    @abstractmethod
    def complete(self, requests: Sequence[ChatRequest]) -> list[str | None]:
        """Model replies, one per request; None where the call failed (after the backend's own retries)."""

    def _judge(
        self,
        requests: list[ChatRequest | None],
        parse: Callable[[str | None], tuple[bool, Any]],
        fallback,
        rows: Sequence[int] | None = None,
    ):
        """Run the requests (None entries get the fallback), retry unparseable ones once, then fall back.

        ``rows[i]`` is the batch row of request ``i`` (default: ``i``); rows whose call failed go to
        :attr:`failed_rows`.
        """
        rows = list(range(len(requests))) if rows is None else list(rows)
        failed = getattr(self, "failed_rows", None)
        if failed is None:  # a subclass that did not call LLMJudge.__init__
            failed = self.failed_rows = set()
        out: list[Any] = [fallback] * len(requests)
        todo = [i for i, r in enumerate(requests) if r is not None]
        retry: list[int] = []
        for i, text in zip(todo, self.complete([requests[i] for i in todo])):
            self.stats["calls"] += 1
            ok, value = parse(text) if text is not None else (False, fallback)
            if ok:
                out[i] = value
            elif text is not None:
                retry.append(i)
            else:
                self.stats["fallbacks"] += 1
                failed.add(rows[i])
        if retry:
            self.stats["retries"] += len(retry)
            for i, text in zip(retry, self.complete([requests[i].nudged() for i in retry])):
                ok, value = parse(text) if text is not None else (False, fallback)
                out[i] = value if ok else fallback
                self.stats["fallbacks"] += 0 if ok else 1
                if text is None:
                    failed.add(rows[i])
        return out

    def _extract(self, blocks: list[str | None], options: Options, problem_types, build) -> list[str | None]:
        n = len(blocks)
        opts, types = _rows(options, n), _rows(problem_types, n)
        mcq = [is_multiple_choice(o, t) for o, t in zip(opts, types)]
        requests = [None if not b else build(b, o, m) for b, o, m in zip(blocks, opts, mcq)]
        results: list[str | None] = [None] * n
        for want_mcq in (True, False):
            idx = [i for i in range(n) if mcq[i] == want_mcq]
            if not idx:
                continue
            parse = parse_letter if want_mcq else parse_open_answer
            values = self._judge([requests[i] for i in idx], parse, None, rows=idx)
            for i, v in zip(idx, values):
                valid = _letters(opts[i])
                results[i] = v if (v is None or not want_mcq or valid is None or v in valid) else None
        return results

    def concluded_answers(self, completions, options: Options = None, problem_types=None) -> list[str | None]:
        thinks = [extract_think(c or "") for c in completions]
        return self._extract(thinks, options, problem_types, conclusion_request)

    def final_answers(self, completions, options: Options = None, problem_types=None) -> list[str | None]:
        answers = [extract_answer(c or "") for c in completions]
        return self._extract(answers, options, problem_types, answer_request)

    def grounding_scores(self, completions, questions=None) -> list[float]:
        qs = _rows(questions, len(completions))
        requests = [grounding_request(q or "", c) if extract_think(c or "") else None for c, q in zip(completions, qs)]
        return [float(v) for v in self._judge(requests, parse_score, 0.0)]

    def claims_agree(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """For ``(claim, ground truth)`` pairs about the same moment: is the claim consistent with the truth?
        Used by the checked temporal alignment reward where its closed vocabularies cannot decide
        (``TemporalAlignmentReward(rule="checked", verifier=judge)``). Fallback: False (the claim is not paid)."""
        return [bool(v) for v in self._judge([claim_request(c, t) for c, t in pairs], parse_decision, False)]

    def consistency(self, completions, questions=None, options: Options = None, problem_types=None) -> list[bool]:
        qs = _rows(questions, len(completions))
        requests = []
        for c, q in zip(completions, qs):
            think, answer = extract_think(c or ""), extract_answer(c or "")
            requests.append(consistency_request(q or "", think, answer) if think and answer else None)
        return [bool(v) for v in self._judge(requests, parse_decision, False)]

"""Judgments of generated completions: everything in a predictions row that is not generation.

One function, :func:`judge_rows`, serves validation, the test loop (right after generation) and
``lit_videor2 judge`` (re-judging a predictions file), so all three always write the same fields, and
:class:`~lit_videor2.metrics.PredictionMetrics` turns them into the same numbers. It reuses the project's single
implementations: the accuracy and format rewards (:func:`~lit_videor2.rewards.accuracy_score`,
:func:`~lit_videor2.rewards.format_score`), TAC matching
(:func:`~lit_videor2.metrics.answer_matches`), the judge's four judgments, and TAR
(:func:`~lit_videor2.rewards.temporal_alignment_score`).

TAR here is the *ungated* alignment precision, a diagnostic of the reasoning's timestamps; the consistency gate of
the reward is reported separately as ``consistent``. ``claims`` holds the claim-truth counts of the row
(:func:`~lit_videor2.claims.claim_summary`: each timestamped claim true, contradicted or unverifiable
against ``temporal_grounding``, within the time window of the row's ``duration``/``frame_times``); rule-based, so
it is filled whether or not TAR is, and None without ground truth.

A judge backend can fail (an LLM server down or answering HTTP errors). :func:`judge_batch` reports those rows:
with ``keep_failed`` they keep their previous judgments untouched (``lit_videor2 judge``); otherwise they get the
documented fallbacks and ``judge_failed: true`` so a later ``lit_videor2 judge`` can redo them. With
``temporal=False`` an existing ``tar`` is kept, never nulled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lit_videor2.claims import claim_summary, claim_verdicts
from lit_videor2.judges import HFJudge, Judge, OpenAIJudge, RuleBasedJudge
from lit_videor2.metrics import answer_matches
from lit_videor2.rewards import accuracy_score, format_score, temporal_alignment_score
from lit_videor2.rewards.embedding import Embedder
from lit_videor2.text import extract_think, extract_timestamp_claims

__all__ = ["judge_batch", "judge_name", "judge_rows", "parse_judge", "row_claims"]

JUDGE_HELP = (
    "rule (offline, default) | hf:PATH_OR_ID[,device=cuda,dtype=bfloat16] | "
    "openai:BASE_URL,model=NAME[,cache_dir=DIR,api_key_env=VAR,max_concurrency=N] (e.g. a vLLM server)"
)


def parse_judge(spec: str) -> Judge:
    """Build a judge from a command-line spec (see ``JUDGE_HELP``)."""
    kind, _, rest = spec.partition(":")
    head, *pairs = rest.split(",") if rest else [""]
    opts: dict[str, Any] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq:
            raise ValueError(f"judge spec {spec!r}: expected key=value after the first comma, got {pair!r}")
        opts[key.strip()] = int(value) if value.strip().isdigit() else value.strip()
    try:
        if kind == "rule" and not rest:
            return RuleBasedJudge()
        if kind == "hf" and head:
            return HFJudge(model=head, **opts)
        if kind == "openai" and head:
            if "model" not in opts:
                raise ValueError(f"judge spec {spec!r}: an OpenAI-compatible judge needs model=NAME")
            return OpenAIJudge(base_url=head, **opts)
    except TypeError as e:
        raise ValueError(f"judge spec {spec!r}: {e}") from None
    raise ValueError(f"unknown judge spec {spec!r}; expected {JUDGE_HELP}")


def judge_name(judge: Judge) -> str:
    """Short description of a judge stored with every row (``rule``, ``hf:Qwen/Qwen3-8B``, ``openai:NAME@URL``)."""
    if isinstance(judge, RuleBasedJudge):
        return "rule"
    if isinstance(judge, HFJudge):
        return f"hf:{judge.model_name}"
    if isinstance(judge, OpenAIJudge):
        return f"openai:{judge.model}@{judge.base_url}"
    return type(judge).__name__


def _tar(completion: str, grounding: Any, embedder: Embedder | None) -> float | None:
    if not grounding:
        return None
    claims = extract_timestamp_claims(extract_think(completion or ""))
    return temporal_alignment_score(claims, grounding, embedder=embedder)


def row_claims(row: dict[str, Any]) -> dict[str, Any] | None:
    """The claim-truth counts of a predictions row (None without ``temporal_grounding``)."""
    grounding = row.get("temporal_grounding")
    if not grounding:
        return None
    verdicts = claim_verdicts(
        row.get("completion") or "", grounding, duration=row.get("duration"), frame_times=row.get("frame_times")
    )
    return claim_summary(verdicts)


def judge_rows(
    rows: Sequence[dict[str, Any]], judge: Judge, *, temporal: bool = True, embedder: Embedder | None = None
) -> list[dict[str, Any]]:
    """Fill the judgment fields of rows that hold ``completion``, ``answer``, ``problem_type``, ``options``,
    ``question`` and ``temporal_grounding`` (in place; also returned). Batched: one judge call per judgment.
    Rows whose judge call failed get the fallbacks and ``judge_failed: true`` (see :func:`judge_batch`)."""
    judge_batch(rows, judge, temporal=temporal, embedder=embedder)
    return list(rows)


def judge_batch(
    rows: Sequence[dict[str, Any]],
    judge: Judge,
    *,
    temporal: bool = True,
    embedder: Embedder | None = None,
    keep_failed: bool = False,
) -> list[int]:
    """Judge ``rows`` in place (as :func:`judge_rows`); return the indices of the rows whose judge call failed.

    ``keep_failed``: such rows keep every previous value; otherwise they get the fallbacks and ``judge_failed``.
    """
    if not rows:
        return []
    failed_rows = getattr(judge, "failed_rows", None)
    if failed_rows is not None:
        failed_rows.clear()
    texts = [r["completion"] or "" for r in rows]
    options = [r.get("options") or None for r in rows]
    types = [r.get("problem_type") for r in rows]
    questions = [r.get("question") or "" for r in rows]
    finals = judge.final_answers(texts, options, types)
    concluded = judge.concluded_answers(texts, options, types)
    grounding = judge.grounding_scores(texts, questions)
    consistent = judge.consistency(texts, questions, options, types)
    failed = sorted(getattr(judge, "failed_rows", None) or ())
    name = judge_name(judge)
    for i, row in enumerate(rows):
        if i in failed and keep_failed:
            continue
        answer, ptype, opts = row["answer"], types[i], options[i] or ()
        row["answer_parsed"], row["concluded"] = finals[i], concluded[i]
        row["correct"] = float(accuracy_score(texts[i], answer, ptype, opts))
        row["concluded_accuracy"] = (
            float(accuracy_score(f"<answer>{concluded[i]}</answer>", answer, ptype, opts)) if concluded[i] else 0.0
        )
        row["format"] = float(format_score(texts[i]))
        row["tac_a"] = bool(answer_matches(finals[i], answer, ptype, opts))
        row["tac_t"] = bool(answer_matches(concluded[i], answer, ptype, opts))
        row["consistent"] = bool(consistent[i])
        row["vas"] = float(min(10.0, max(0.0, grounding[i])))
        if temporal:
            row["tar"] = _tar(texts[i], row.get("temporal_grounding"), embedder)
        else:
            row.setdefault("tar", None)  # --no-tar keeps an existing TAR
        row["claims"] = row_claims(row)
        row["judge"] = name
        if i in failed:
            row["judge_failed"] = True
        else:
            row.pop("judge_failed", None)
    return failed

"""Per-completion annotations of the trace viewer: pure functions over one completion and its record fields.

Everything is read with the project's own parsers, so the page shows what the judges and rewards saw:

* timestamps in the text: :func:`lit_videor2.text.find_timestamps`;
* the TAC spans: the ``<answer>`` block (:func:`lit_videor2.text.block_span`) and the conclusion of the
  ``<think>`` block (:func:`lit_videor2.text.concluded_option_span` for multiple choice, else
  :func:`lit_videor2.text.concluded_value_span`) — the rule-based reading; the verdict itself is the row's
  (``concluded``, ``answer_parsed``, ``consistent``), written by whichever judge produced the row;
* the TAR pairing: claims by :func:`lit_videor2.text.extract_timestamp_claims` and
  :func:`lit_videor2.text.claims_from_mapping`, matches by :func:`lit_videor2.rewards.temporal.match_claims`,
  temporal windows by :func:`lit_videor2.rewards.temporal.temporal_candidates`, the score by
  :func:`lit_videor2.rewards.temporal.alignment_score`;
* the claim checks: each claim true, contradicted or unverifiable against the ground truth, with the ground-truth
  claim beside it, by :func:`lit_videor2.claims.claim_verdicts` (as the claim-truth metrics count them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lit_videor2.claims import claim_verdicts
from lit_videor2.problem_types import is_multiple_choice
from lit_videor2.rewards.embedding import Embedder
from lit_videor2.rewards.temporal import alignment_score, match_claims, temporal_candidates
from lit_videor2.text import (
    block_span,
    claims_from_mapping,
    concluded_option_span,
    concluded_value_span,
    extract_think,
    extract_timestamp_claims,
    find_timestamps,
)

__all__ = ["cited_times", "claim_checks", "tac_spans", "tar_pairing", "text_segments"]


def tac_spans(
    completion: str | None, options: Sequence[str] | None, problem_type: str | None
) -> dict[str, tuple[int, int] | None]:
    """Character spans in ``completion`` of the concluded answer (in ``<think>``) and of the final answer
    (the ``<answer>`` block content); None where the rule-based parser finds none."""
    text = completion or ""
    think = block_span(text, "think")
    concluded = None
    if think is not None:
        reasoning = text[think[0] : think[1]]
        found = (
            concluded_option_span(reasoning, options or ())
            if is_multiple_choice(options, problem_type)
            else concluded_value_span(reasoning)
        )
        if found is not None:
            concluded = (think[0] + found[1][0], think[0] + found[1][1])
    return {"concluded": concluded, "final": block_span(text, "answer")}


def text_segments(completion: str | None, marks: Mapping[str, tuple[int, int] | None]) -> list[dict[str, Any]]:
    """The completion cut into pieces for rendering: ``{"s": text}`` plus ``"t": [start, end]`` (seconds) where
    the piece is a timestamp mention, and ``"m": [mark names]`` where it lies in a marked span (``marks``)."""
    text = completion or ""
    times = []
    for m in find_timestamps(text):
        end = m.start if m.end is None else m.end  # an open range ("00:12-end") links to its start
        a, b = m.span
        while a < b and text[a].isspace():  # the mention pattern takes surrounding blanks
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        times.append((a, b, [m.start, end]))
    spans = [(a, b, name) for name, ab in marks.items() if ab is not None for a, b in [ab] if a < b]
    cuts = sorted({0, len(text), *(x for a, b, _ in times for x in (a, b)), *(x for a, b, _ in spans for x in (a, b))})
    out: list[dict[str, Any]] = []
    for a, b in zip(cuts, cuts[1:]):
        seg: dict[str, Any] = {"s": text[a:b]}
        for ta, tb, t in times:
            if ta <= a and b <= tb:
                seg["t"] = t
        names = [name for sa, sb, name in spans if sa <= a and b <= sb]
        if names:
            seg["m"] = names
        prev = out[-1] if out else None
        if prev is not None and "t" not in seg and "t" not in prev and prev.get("m") == seg.get("m"):
            prev["s"] += seg["s"]
        else:
            out.append(seg)
    return out


def cited_times(segments: Sequence[Mapping[str, Any]]) -> list[float]:
    """Distinct finite start and end times (seconds) of the timestamp mentions in ``segments``, sorted."""
    times = {float(x) for s in segments if "t" in s for x in s["t"] if x is not None and math.isfinite(float(x))}
    return sorted(times)


def _claim(c) -> dict[str, Any]:
    return {"key": c.key, "start": c.start, "end": c.end, "text": c.text}


def tar_pairing(
    completion: str | None,
    grounding: Mapping[str, str] | None,
    *,
    embedder: Embedder | None,
    pad_s: float = 2.0,
    threshold: float = 0.75,
) -> dict[str, Any] | None:
    """Reference claims beside the reasoning's claims, and how TAR pairs them; None without reference claims.

    Returns ``pred``/``ref`` (claims: canonical key, whole-second interval, text), ``pad_s``, ``threshold`` and,
    when ``embedder`` is given: ``pairs`` (``{"p", "r", "sim"}``: indices into ``pred``/``ref`` and cosine
    similarity, in predicted time order), ``unmatched_pred`` (``{"p", "best"}``: the most similar reference claim
    inside the padded window, or None when no reference claim is in it), ``unmatched_ref`` and ``score`` (the
    ungated precision). Without an embedder these are None (claims only).
    """
    if not grounding:
        return None
    pred_map = extract_timestamp_claims(extract_think(completion or "") or "")
    pred, ref = claims_from_mapping(pred_map), claims_from_mapping(grounding)
    out: dict[str, Any] = {
        "pred": [_claim(c) for c in pred],
        "ref": [_claim(c) for c in ref],
        "pad_s": pad_s,
        "threshold": threshold,
        "pairs": None,
        "unmatched_pred": None,
        "unmatched_ref": None,
        "score": None,
    }
    if embedder is None:
        return out
    matched = match_claims(pred_map, grounding, pad_s=pad_s, threshold=threshold, embedder=embedder)
    p_index = {c.source_key: i for i, c in enumerate(pred)}
    r_index = {c.source_key: j for j, c in enumerate(ref)}
    sim = None
    if pred and ref:
        emb = embedder.encode([c.text for c in pred] + [c.text for c in ref])  # [P + R, D], normalised
        sim = emb[: len(pred)] @ emb[len(pred) :].T  # [P, R] cosine
    pairs = [(p_index[p], r_index[r]) for p, r in matched]
    out["pairs"] = [{"p": i, "r": j, "sim": round(float(sim[i, j]), 4)} for i, j in pairs]
    done_p, done_r = {i for i, _ in pairs}, {j for _, j in pairs}
    candidates = temporal_candidates(pred, ref, pad_s)
    unmatched = []
    for i in range(len(pred)):
        if i in done_p:
            continue
        best = None
        if sim is not None and candidates[i]:
            j = max(candidates[i], key=lambda j: float(sim[i, j]))
            best = {"r": j, "sim": round(float(sim[i, j]), 4), "used": j in done_r}
        unmatched.append({"p": i, "best": best})
    out["unmatched_pred"] = unmatched
    out["unmatched_ref"] = [j for j in range(len(ref)) if j not in done_r]
    out["score"] = alignment_score(len(pairs), len(pred), len(ref))
    return out


def claim_checks(
    completion: str | None,
    grounding: Mapping[str, str] | None,
    *,
    duration: float | None = None,
    frame_times: Sequence[float] | None = None,
) -> list[dict[str, Any]] | None:
    """Each timestamped claim of the reasoning with its verdict (``true``/``contradicted``/``unverifiable``), the
    ground-truth claim it rests on (``truth``), the contradicted attributes, the attributes it states and the time
    window ``pad_s``; None without ground truth (see :class:`lit_videor2.claims.ClaimVerdict`)."""
    if not grounding:
        return None
    return [
        v.as_dict() for v in claim_verdicts(completion or "", grounding, duration=duration, frame_times=frame_times)
    ]

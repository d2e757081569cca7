"""Temporal Alignment Reward (TAR): do the reasoning's timestamped claims match the ground-truth claims?

1. Claims: the reasoning (``<think>``) is turned into ``timestamp -> short claim`` by an injected extractor
   (default :func:`lit_videor2.text.extract_timestamp_claims`, rule-based; the reference asks an LLM). Keys of both
   sides are sanitised by :func:`lit_videor2.text.claims_from_mapping`.
2. Matching (:func:`match_claims`): predicted claims in time order (interval midpoint, stable), greedily. A
   ground-truth claim is a candidate if it is unused and the two intervals overlap after padding each side by
   ``pad_s`` (so points ``2·pad_s`` = 4 s apart match, 5 s do not). Among candidates the highest cosine similarity
   wins if it is ≥ ``threshold`` (the first candidate in time order wins a tie); the claim is then used.
3. Score (:func:`temporal_alignment_score`): matches / max(1, |predicted|) — a precision; recall and F1 are
   options; 0 when either side is empty.
4. Gate (:class:`TemporalAlignmentReward`): paid only when the consistency gate passes (R = gate · TAR).

The checked rule (``rule="checked"``, an option; the reference rule is the default): a ground-truth claim is a
candidate only if it is within the time window of :func:`lit_videor2.claims.time_tolerance` —
``min(pad_s, duration · pad_per_s)``, 1 s per minute of video and at most the reference's 2 s by default, so a
claim on a 4-second clip must name the right second — and the predicted claim contradicts it on no closed
attribute (colour, count, object class, direction, appear/disappear, start/stop, negation;
:func:`lit_videor2.claims.contradictions`), whatever the cosine. Paraphrases still match by the cosine.
Without a ``duration`` (or ``frame_times``) column the window is the reference's ``pad_s``. Optionally a
``verifier`` (an LLM judge of the project's backends, :meth:`lit_videor2.judges.llm.LLMJudge.claims_agree`) decides
the candidate pairs on which the vocabularies find nothing to compare; a pair it calls inconsistent is no candidate.

Kept from the reference: half-to-even rounding of seconds, unparseable/open-ended/empty claims dropped from the
denominator, a later duplicate key wins, greedy time-ordered matching, the ≥ threshold rule.
Deliberate fixes: a claim with an unusable key (``inf``, non-numeric) or a non-string sentence is dropped instead
of crashing (and zeroing) the whole sample. Speed-ups that do not change the result: only claims with a temporal
candidate are embedded, all completions of a batch are embedded in one call, reference-claim embeddings are
cached per record, and TAR is not computed for completions whose gate is 0.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch

from lit_videor2.claims import PAD_PER_S, agreements, claim_attributes, contradictions, states_all, time_tolerance
from lit_videor2.rewards.base import Reward, resolve_reward
from lit_videor2.rewards.embedding import Embedder, SentenceTransformerEmbedder
from lit_videor2.rewards.gate import ConsistencyGate
from lit_videor2.text import Claim, claims_from_mapping, extract_think, extract_timestamp_claims

__all__ = [
    "TemporalAlignmentReward",
    "alignment_score",
    "checked_candidates",
    "greedy_match",
    "match_claims",
    "temporal_alignment_score",
    "temporal_candidates",
]

Score = Literal["precision", "recall", "f1"]
Rule = Literal["reference", "checked"]
RULES = ("reference", "checked")
ClaimExtractor = Callable[[str], Mapping[str, str]]


def temporal_candidates(pred: Sequence[Claim], ref: Sequence[Claim], pad_s: float) -> list[list[int]]:
    """For each predicted claim, the reference claims whose padded intervals overlap its padded interval."""
    return [
        [j for j, r in enumerate(ref) if p.start - pad_s <= r.end + pad_s and r.start - pad_s <= p.end + pad_s]
        for p in pred
    ]


_attributes = functools.lru_cache(maxsize=1 << 16)(claim_attributes)  # read-only use: never mutate the result


def checked_candidates(
    pred: Sequence[Claim], ref: Sequence[Claim], pad_s: float, complete: bool = False
) -> list[list[int]]:
    """:func:`temporal_candidates` without the reference claims that a predicted claim contradicts on a closed
    attribute (:func:`lit_videor2.claims.contradictions`); with ``complete``, also without those stating a closed
    attribute the predicted claim leaves out ("a shape appears" for "a red square appears")."""

    def keep(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
        return not contradictions(a, b) and (not complete or states_all(a, b))

    return [
        [j for j in cands if keep(_attributes(p.text), _attributes(ref[j].text))]
        for p, cands in zip(pred, temporal_candidates(pred, ref, pad_s))
    ]


def _candidates(
    pred: Sequence[Claim], ref: Sequence[Claim], pad_s: float, rule: str, complete: bool = False
) -> list[list[int]]:
    if rule == "reference":
        return temporal_candidates(pred, ref, pad_s)
    if rule == "checked":
        return checked_candidates(pred, ref, pad_s, complete)
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


def _window(rule: str, pad_s: float, pad_per_s: float, duration: Any = None, frame_times: Any = None) -> float:
    """The padding of one sample: ``pad_s`` under the reference rule, :func:`time_tolerance` under the checked."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if rule == "reference":
        return pad_s
    return time_tolerance(duration, frame_times, pad_per_s=pad_per_s, max_pad_s=pad_s)


def greedy_match(
    candidates: Sequence[Sequence[int]], similarity: Callable[[int, int], float], threshold: float
) -> list[tuple[int, int]]:
    """Greedy one-to-one matching in predicted order: each predicted claim takes its most similar unused candidate
    if the similarity is ≥ ``threshold`` (first candidate wins ties). Returns ``(pred index, ref index)`` pairs."""
    used: set[int] = set()
    pairs = []
    for i, cands in enumerate(candidates):
        best_j, best_sim = None, -float("inf")
        for j in cands:
            if j in used:
                continue
            sim = similarity(i, j)
            if sim >= threshold and sim > best_sim:
                best_j, best_sim = j, sim
        if best_j is not None:
            used.add(best_j)
            pairs.append((i, best_j))
    return pairs


def alignment_score(n_matched: int, n_pred: int, n_ref: int, score: Score = "precision") -> float:
    """TAR from counts: precision matches/max(1, n_pred), recall matches/max(1, n_ref), or their F1; 0 if a side
    is empty."""
    if n_pred == 0 or n_ref == 0:
        return 0.0
    precision, recall = n_matched / n_pred, n_matched / n_ref
    if score == "precision":
        return precision
    if score == "recall":
        return recall
    if score == "f1":
        return 0.0 if n_matched == 0 else 2 * precision * recall / (precision + recall)
    raise ValueError(f"score must be 'precision', 'recall' or 'f1', got {score!r}")


def _resolve_embedder(embedder: Embedder | str | None) -> Embedder:
    if embedder is None or isinstance(embedder, str):
        return SentenceTransformerEmbedder(embedder)
    return embedder


def _match(
    pred: list[Claim], ref: list[Claim], pad_s: float, threshold: float, embedder, rule: str = "reference"
) -> list[tuple[int, int]]:
    candidates = _candidates(pred, ref, pad_s, rule)
    need_p = [i for i, c in enumerate(candidates) if c]
    if not need_p:
        return []
    need_r = sorted({j for i in need_p for j in candidates[i]})
    emb = _resolve_embedder(embedder).encode([pred[i].text for i in need_p] + [ref[j].text for j in need_r])
    sim = emb[: len(need_p)] @ emb[len(need_p) :].T  # [P', R'] cosine (embeddings are normalised)
    row, col = {i: k for k, i in enumerate(need_p)}, {j: k for k, j in enumerate(need_r)}
    return greedy_match(candidates, lambda i, j: float(sim[row[i], col[j]]), threshold)


def match_claims(
    pred_claims: Mapping[str, str],
    ref_claims: Mapping[str, str],
    *,
    pad_s: float = 2.0,
    threshold: float = 0.75,
    embedder: Embedder | str | None = None,
    rule: Rule = "reference",
    duration: float | None = None,
    frame_times: Sequence[float] | None = None,
    pad_per_s: float = PAD_PER_S,
) -> list[tuple[str, str]]:
    """Matched ``(predicted key, reference key)`` pairs, keys as given in the inputs, in predicted time order.

    ``embedder`` None uses the shipped all-MiniLM-L6-v2; a string is a local path or model id. ``rule="checked"``:
    the window of ``duration``/``frame_times`` (at most ``pad_s``) and no match across a closed-attribute
    contradiction (see the module docstring).
    """
    pred, ref = claims_from_mapping(pred_claims), claims_from_mapping(ref_claims)
    if not pred or not ref:
        return []
    pad = _window(rule, pad_s, pad_per_s, duration, frame_times)
    return [(pred[i].source_key, ref[j].source_key) for i, j in _match(pred, ref, pad, threshold, embedder, rule)]


def temporal_alignment_score(
    pred_claims: Mapping[str, str],
    ref_claims: Mapping[str, str],
    *,
    pad_s: float = 2.0,
    threshold: float = 0.75,
    embedder: Embedder | str | None = None,
    score: Score = "precision",
    rule: Rule = "reference",
    duration: float | None = None,
    frame_times: Sequence[float] | None = None,
    pad_per_s: float = PAD_PER_S,
) -> float:
    """Ungated TAR of one claim map against the reference map (precision by default); ``rule`` as in
    :func:`match_claims`."""
    pred, ref = claims_from_mapping(pred_claims), claims_from_mapping(ref_claims)
    if not pred or not ref:
        return 0.0
    pad = _window(rule, pad_s, pad_per_s, duration, frame_times)
    return alignment_score(len(_match(pred, ref, pad, threshold, embedder, rule)), len(pred), len(ref), score)


class TemporalAlignmentReward(Reward):
    """Gated temporal alignment reward over the ``temporal_grounding`` column.

    Args:
        pad_s: padding in seconds added to each side of both intervals (under ``rule="checked"``: its cap).
        threshold: minimum cosine similarity of a match.
        score: ``"precision"`` (reference), ``"recall"`` or ``"f1"``.
        embedder: an :class:`Embedder`, a local model path or model id, or None for the shipped all-MiniLM-L6-v2
            (loaded on first use, shared per process).
        extractor: callable ``reasoning -> {timestamp: claim}`` or its dotted path; None: rule-based extractor.
        gate: consistency gate; None: :class:`ConsistencyGate` with the rule-based judge.
        gated: False pays TAR regardless of the gate (the "+TAR" ablation).
        cache_size: records whose reference-claim embeddings are kept.
        rule: ``"reference"`` (default; the reference's rule: ±``pad_s`` window, cosine only) or ``"checked"``:
            the window ``min(pad_s, duration · pad_per_s)`` of each sample's ``duration`` (or ``frame_times``)
            column, and no match across a closed-attribute contradiction whatever the cosine.
        pad_per_s: the checked window's padding per second of video (default 1/60: 1 s per minute).
        verifier: with ``rule="checked"`` only, optional: a judge with ``claims_agree(pairs) -> list[bool]`` (the
            project's HF or OpenAI-compatible judges) asked about the candidate pairs that share no closed attribute
            (the vocabularies cannot decide); one batched call per reward call, answers cached per pair.
        complete: with ``rule="checked"`` only: a claim matches only a ground truth all of whose closed attributes it
            states, so a vague claim ("a shape appears") earns nothing where the truth names the colour and object
            (the claim-truth metric's ``claims_complete``). Off by default; the demo turns it on (``docs/demo.md``:
            without it, GRPO learned to drop the word it got wrong).

    A sample whose ``temporal_grounding`` is None (or a batch without the column) scores None: does not apply.
    """

    name = "temporal_alignment"

    def __init__(
        self,
        pad_s: float = 2.0,
        threshold: float = 0.75,
        score: Score = "precision",
        embedder: Embedder | str | None = None,
        extractor: ClaimExtractor | str | None = None,
        gate: ConsistencyGate | None = None,
        gated: bool = True,
        cache_size: int = 1024,
        rule: Rule = "reference",
        pad_per_s: float = PAD_PER_S,
        verifier: Any = None,
        complete: bool = False,
    ) -> None:
        alignment_score(0, 1, 1, score)  # validates ``score``
        if rule not in RULES:
            raise ValueError(f"TemporalAlignmentReward: rule must be one of {RULES}, got {rule!r}")
        time_tolerance(None, pad_per_s=pad_per_s, max_pad_s=pad_s)  # validates the window's parameters
        if verifier is not None and (rule != "checked" or not callable(getattr(verifier, "claims_agree", None))):
            raise ValueError(
                "TemporalAlignmentReward: a verifier needs rule='checked' and a judge with claims_agree(pairs) "
                f"(lit_videor2.judges.HFJudge or OpenAIJudge); got rule={rule!r}, verifier {type(verifier).__name__}"
            )
        if complete and rule != "checked":
            raise ValueError(f"TemporalAlignmentReward: complete=True needs rule='checked', got rule={rule!r}")
        self.rule = rule
        self.complete = complete
        self.pad_per_s = pad_per_s
        self.verifier = verifier
        self._verdicts: OrderedDict[tuple[str, str], bool] = OrderedDict()
        self.pad_s = pad_s
        self.threshold = threshold
        self.score = score
        self.embedder = _resolve_embedder(embedder)
        self.extractor: ClaimExtractor = resolve_reward(extractor) if extractor else extract_timestamp_claims
        self.gate = gate if gate is not None else ConsistencyGate()
        self.gated = gated
        self.cache_size = cache_size
        self._ref_cache: OrderedDict[tuple, tuple[list[Claim], torch.Tensor]] = OrderedDict()

    def reference(self, record_id: Any, claims: Mapping[str, str]) -> tuple[list[Claim], torch.Tensor]:
        """Sanitised reference claims of a record and their embeddings ``[R, D]`` (cached per record)."""
        ref = claims_from_mapping(claims)
        key = (record_id, tuple((c.key, c.text) for c in ref))
        if key in self._ref_cache:
            self._ref_cache.move_to_end(key)
            return self._ref_cache[key]
        emb = self.embedder.encode([c.text for c in ref]) if ref else torch.zeros(0, 0)
        self._ref_cache[key] = (ref, emb)
        if len(self._ref_cache) > self.cache_size:
            self._ref_cache.popitem(last=False)
        return ref, emb

    def __call__(
        self,
        completions: list[str],
        temporal_grounding: Sequence[Mapping[str, str] | None] | None = None,
        id: Sequence[Any] | None = None,  # noqa: A002 - the column's name
        duration: Sequence[float | None] | None = None,
        frame_times: Sequence[Sequence[float] | None] | None = None,
        **columns: Any,
    ) -> list[float | None]:
        n = len(completions)
        if temporal_grounding is None:
            return [None] * n
        ids = id if id is not None else [None] * n
        durations = duration if duration is not None else [None] * n
        times = frame_times if frame_times is not None else [None] * n
        gate = self.gate(completions, **columns) if self.gated else [1.0] * n
        out: list[float | None] = [None if g is None else 0.0 for g in temporal_grounding]
        jobs = []  # (sample, pred claims, ref claims, ref emb, candidates)
        for i, (c, g, rid) in enumerate(zip(completions, temporal_grounding, ids)):
            if g is None or not gate[i]:
                continue
            ref, ref_emb = self.reference(rid, g)
            pred = claims_from_mapping(self.extractor(extract_think(c or "") or ""))
            if pred and ref:
                pad = _window(self.rule, self.pad_s, self.pad_per_s, durations[i], times[i])
                jobs.append((i, pred, ref, ref_emb, _candidates(pred, ref, pad, self.rule, self.complete)))
        if self.verifier is not None:
            jobs = self._verify(jobs)
        texts = sorted({p.text for _, pred, _, _, cands in jobs for p, c in zip(pred, cands) if c})
        emb = self.embedder.encode(texts) if texts else torch.zeros(0, 0)  # [T, D], one call for the batch
        row = {t: k for k, t in enumerate(texts)}
        for i, pred, ref, ref_emb, cands in jobs:
            if not any(cands):  # no predicted claim is near any reference claim in time: nothing to embed
                pairs = []
            else:
                idx = [row[p.text] if c else 0 for p, c in zip(pred, cands)]
                sim = emb[idx] @ ref_emb.T  # [P, R]
                pairs = greedy_match(cands, lambda a, b, s=sim: float(s[a, b]), self.threshold)
            out[i] = float(gate[i]) * alignment_score(len(pairs), len(pred), len(ref), self.score)
        return out

    def _verify(self, jobs: list) -> list:
        """Drop the candidate pairs the verifier calls inconsistent, among those the vocabularies cannot decide."""
        undecided = []
        for _, pred, ref, _, cands in jobs:
            for p, cs in zip(pred, cands):
                for j in cs:
                    a, b = _attributes(p.text), _attributes(ref[j].text)
                    if not agreements(a, b) and (p.text, ref[j].text) not in self._verdicts:
                        undecided.append((p.text, ref[j].text))
        undecided = list(dict.fromkeys(undecided))
        if undecided:
            for pair, ok in zip(undecided, self.verifier.claims_agree(undecided)):
                self._verdicts[pair] = bool(ok)

        def keep(p: Claim, r: Claim) -> bool:
            return bool(agreements(_attributes(p.text), _attributes(r.text))) or self._verdicts.get(
                (p.text, r.text), True
            )

        out = [
            (i, pred, ref, emb, [[j for j in cs if keep(p, ref[j])] for p, cs in zip(pred, cands)])
            for i, pred, ref, emb, cands in jobs
        ]
        while len(self._verdicts) > 16 * self.cache_size:  # bounded memory over a long run
            self._verdicts.popitem(last=False)
        return out

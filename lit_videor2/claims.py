"""Checked claims: is a timestamped claim of the reasoning true against the record's ``temporal_grounding``?

One shared core for the checked temporal alignment reward (:mod:`lit_videor2.rewards.temporal`), the claim-truth
metrics (:mod:`lit_videor2.metrics`) and the trace viewer (:mod:`lit_videor2.view`). Pure functions, no model.

1. Claims: the reasoning's ``timestamp -> claim`` map (:func:`lit_videor2.text.extract_timestamp_claims`, sanitised
   by :func:`lit_videor2.text.claims_from_mapping`), as TAR reads it.
2. Closed attributes (:func:`claim_attributes`): what a claim states, from closed vocabularies —
   ``colour``, ``count``, ``object`` (object class), ``direction``, ``appearance`` (appear/disappear), ``motion``
   (start/stop) and ``negation``. The vocabularies cover the synthetic demo (colours, shapes, appear/disappear,
   moves left/right/up/down) and Video-R2-style ``temporal_grounding`` phrasing (people, animals, vehicles,
   household objects, counts, directions).
3. Contradiction (:func:`contradictions`): a claim contradicts a ground-truth claim on an attribute when both state
   it and the claim states a value the truth does not (for object classes: a class of the same kind — person,
   animal, vehicle, shape, item — that is neither the truth's class nor a more or less specific name of it, so
   "a man" and "a person" agree, "a man" and "a woman" do not); negation contradicts when exactly one side is
   negated.
4. Time (:func:`time_tolerance`): a ground-truth claim is *near* a claim when their whole-second intervals overlap
   after padding each side by ``min(max_pad_s, duration · pad_per_s)`` — by default 1 s per minute of video, at
   most the reference's 2 s: ±2 s from two minutes on, ±0.07 s on a 4-second clip (so a claim there must name the
   right second). Without a duration the video's length is read from ``frame_times`` (last time + one sampling
   interval); without either, the reference's fixed ``max_pad_s``.
5. Verdict (:func:`claim_verdicts`), per claim: ``true`` — some ground-truth claim near it agrees with it on at
   least one closed attribute and contradicts it on none; ``contradicted`` — every ground-truth claim near it
   contradicts it; ``unverifiable`` — no ground truth near it (the time is wrong), or the vocabularies cannot
   decide (nothing contradicted, nothing stated in common). Only ``true`` counts as true. ``complete`` marks a true
   claim that also states every closed attribute its ground truth states (the demo's "time, colour and shape all
   right").
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from lit_videor2.text import Claim, claims_from_mapping, extract_think, extract_timestamp_claims, find_timestamps

__all__ = [
    "ATTRIBUTES",
    "VERDICTS",
    "ClaimVerdict",
    "agreements",
    "claim_attributes",
    "claim_summary",
    "claim_verdicts",
    "contradictions",
    "states_all",
    "time_tolerance",
    "video_duration",
]

#: The closed attributes, in the order they are reported.
ATTRIBUTES = ("colour", "count", "object", "direction", "appearance", "motion", "negation")
#: The verdicts of :func:`claim_verdicts`.
VERDICTS = ("true", "contradicted", "unverifiable")

#: Default time tolerance: padding per second of video (1 s per minute) and its cap (the reference's 2 s).
PAD_PER_S = 1.0 / 60.0
MAX_PAD_S = 2.0


# ------------------------------------------------------------------------------------------- vocabularies


def _words(*items: str) -> tuple[str, ...]:
    return items


_COLOURS: dict[str, tuple[str, ...]] = {
    "red": _words("red", "crimson", "scarlet", "maroon", "reddish"),
    "orange": _words("orange", "orangish"),
    "yellow": _words("yellow", "golden", "gold", "yellowish"),
    "green": _words("green", "lime", "olive", "greenish"),
    "blue": _words("blue", "navy", "azure", "bluish"),
    "cyan": _words("cyan", "turquoise", "teal", "aqua"),
    "purple": _words("purple", "violet", "lilac", "lavender", "purplish"),
    "pink": _words("pink", "magenta", "pinkish"),
    "brown": _words("brown", "beige", "tan"),
    "black": _words("black"),
    "white": _words("white"),
    "grey": _words("grey", "gray", "silver", "greyish", "grayish"),
}

_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "single": 1, "both": 2, "pair": 2,
    "couple": 2, "dozen": 12, "trio": 3,
}  # fmt: skip

# Object classes: name -> (kind, parent class or None, synonyms). A class agrees with itself, its ancestors and its
# descendants ("person" ⊃ "man"); generic words ("object", "thing", "someone") are of no kind and never contradict.
_OBJECTS: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "person": ("person", None, ("person", "persons", "people", "someone", "somebody", "individual", "human")),
    "man": ("person", "person", ("man", "men", "guy", "guys", "gentleman", "gentlemen", "male")),
    "woman": ("person", "person", ("woman", "women", "lady", "ladies", "female")),
    "child": ("person", "person", ("child", "children", "kid", "kids", "toddler", "baby")),
    "boy": ("person", "child", ("boy", "boys")),
    "girl": ("person", "child", ("girl", "girls")),
    "animal": ("animal", None, ("animal", "animals", "pet", "pets")),
    "dog": ("animal", "animal", ("dog", "dogs", "puppy", "puppies")),
    "cat": ("animal", "animal", ("cat", "cats", "kitten", "kittens")),
    "bird": ("animal", "animal", ("bird", "birds")),
    "horse": ("animal", "animal", ("horse", "horses")),
    "vehicle": ("vehicle", None, ("vehicle", "vehicles")),
    "car": ("vehicle", "vehicle", ("car", "cars", "sedan", "automobile")),
    "truck": ("vehicle", "vehicle", ("truck", "trucks", "lorry")),
    "bus": ("vehicle", "vehicle", ("bus", "buses")),
    "bicycle": ("vehicle", "vehicle", ("bicycle", "bicycles", "bike", "bikes")),
    "motorcycle": ("vehicle", "vehicle", ("motorcycle", "motorcycles", "motorbike")),
    "shape": ("shape", None, ("shape", "shapes", "figure", "figures")),
    "circle": ("shape", "shape", ("circle", "circles", "disc", "disk", "dot")),
    "square": ("shape", "shape", ("square", "squares")),
    "triangle": ("shape", "shape", ("triangle", "triangles")),
    "rectangle": ("shape", "shape", ("rectangle", "rectangles")),
    "star": ("shape", "shape", ("star", "stars")),
    "ball": ("item", None, ("ball", "balls")),
    "cup": ("item", None, ("cup", "cups", "mug", "mugs")),
    "bottle": ("item", None, ("bottle", "bottles")),
    "phone": ("item", None, ("phone", "phones", "smartphone", "cellphone")),
    "door": ("item", None, ("door", "doors")),
    "window": ("item", None, ("window", "windows")),
    "chair": ("item", None, ("chair", "chairs")),
    "table": ("item", None, ("table", "tables", "desk")),
    "box": ("item", None, ("box", "boxes", "carton")),
    "bag": ("item", None, ("bag", "bags", "backpack")),
    "book": ("item", None, ("book", "books")),
    "knife": ("item", None, ("knife", "knives")),
    "laptop": ("item", None, ("laptop", "laptops", "computer")),
}

_DIRECTIONS: dict[str, str] = {
    "left": (
        r"\bleftwards?\b|\b(?:the|to|turns?|turned|turning|moves?|moved|moving|towards?|toward|from|its|his|her|"
        r"their|goes|go|went|heads?|heading|headed|faces|facing|drifts?|slides?|swerves?|veers?|pans?|panning|panned|"
        r"tilts?|tilting|tilted|glances?|glanced|looks?|looking|looked|steers?|steering|points?|pointing|rolls?|"
        r"rolling|walks?|walking|runs?|running|drives?|driving|swipes?|swiping|shifts?|shifting)\s+left\b|"
        r"\bleft\s+(?:side|hand|corner|edge|part|half|lane)\b"
    ),
    "right": (
        r"\brightwards?\b|\b(?:the|to|turns?|turned|turning|moves?|moved|moving|towards?|toward|from|its|his|her|"
        r"their|goes|go|went|heads?|heading|headed|faces|facing|drifts?|slides?|swerves?|veers?|pans?|panning|panned|"
        r"tilts?|tilting|tilted|glances?|glanced|looks?|looking|looked|steers?|steering|points?|pointing|rolls?|"
        r"rolling|walks?|walking|runs?|running|drives?|driving|swipes?|swiping|shifts?|shifting)\s+right\b|"
        r"\bright\s+(?:side|hand|corner|edge|part|half|lane)\b"
    ),
    "up": r"\bup(?:wards?)?\b|\b(?:rises?|rising|rose|ascends?|ascending|climbs?|climbing|lifts? off)\b",
    "down": r"\bdown(?:wards?)?\b|\b(?:descends?|descending|falls?|falling|fell|drops?|dropping|sinks?|sinking)\b",
    "forward": r"\bforwards?\b|\bahead\b",
    "backward": r"\bbackwards?\b|\breverses\b|\breversing\b",
    "clockwise": r"(?<!counter)(?<!counter-)(?<!anti)(?<!anti-)\bclockwise\b",
    "counterclockwise": r"\b(?:counter|anti)-?\s?clockwise\b",
}
# Phrasal verbs whose "up"/"down" is no direction (removed before directions are read).
_PHRASAL_RE = re.compile(
    r"\b(?:picks?|picked|picking|shows?|showed|showing|stands?|stood|standing|gets?|got|getting|sets?|setting|"
    r"wakes?|woke|sits?|sat|sitting|lines?|lined|cleans?|cleaned|fills?|filled|gives?|gave|ends?|ended|makes?|"
    r"made|opens?|opened|holds?|held|pops?|popped|puts?|putting|lies|lying|lay|slows?|slowed|calms?|writes?|"
    r"wrote|breaks?|broke|shuts?|shut|settles?|settled|cuts?|knocks?|turns?|turned|ties?|tied|zips?|zipped|"
    r"looks?|looked|bends?|bent|kneels?|knelt|steps?|stepped|backs?|backed|backing)\s+(?:up|down)\b"
)
_APPEARANCE: dict[str, str] = {
    "appear": (
        r"\b(?:appears?|appeared|appearing|reappears?|enters?|entered|entering|emerges?|emerged|emerging|"
        r"arrives?|arrived|arriving|materiali[sz]es?|pops? up|popped up|shows? up|showed up|"
        r"comes? (?:in|into (?:view|frame|sight|the frame))|came (?:in|into (?:view|frame|sight|the frame))|"
        r"becomes? visible|walks? in|steps? in|is first seen)\b"
    ),
    "disappear": (
        r"\b(?:disappears?|disappeared|disappearing|vanish(?:es|ed|ing)?|exits?|exited|exiting|leaves|leaving|"
        r"left (?:the|through|via)|departs?|departed|goes (?:out of|off) (?:view|frame|sight|screen|the frame)|"
        r"went (?:out of|off) (?:view|frame|sight|screen|the frame)|is gone|no longer (?:visible|seen|there|shown)|"
        r"fades? (?:away|out)|faded (?:away|out))\b"
    ),
}
_MOTION: dict[str, str] = {
    "start": r"\b(?:starts?|started|starting|begins?|began|beginning|commences?|sets? off|takes? off)\b",
    "stop": (
        r"\b(?:stops?|stopped|stopping|halts?|halted|pauses?|paused|ceases?|ceased|comes? to (?:a )?(?:stop|halt|"
        r"rest)|stands? still|freezes?|froze|finishes|finished)\b"
    ),
}
_NEGATION_RE = re.compile(
    r"\b(?:not|never|none|nobody|nothing|neither|nor|without|cannot|no(?! longer\b)(?=\s))|n't\b|\bno one\b"
)


def _alternation(words: Sequence[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


# One pattern per vocabulary; each word found maps back to its canonical value.
_COLOUR_OF = {w: c for c, ws in _COLOURS.items() for w in ws}
_OBJECT_OF = {w: o for o, (_, _, ws) in _OBJECTS.items() for w in ws}
_COLOUR_RE = re.compile(rf"\b(?:{_alternation(list(_COLOUR_OF))})\b")
_OBJECT_RE = re.compile(rf"\b(?:{_alternation(list(_OBJECT_OF))})\b")
_DIRECTION_RES = {d: re.compile(p) for d, p in _DIRECTIONS.items()}
_APPEARANCE_RES = {a: re.compile(p) for a, p in _APPEARANCE.items()}
_MOTION_RES = {m: re.compile(p) for m, p in _MOTION.items()}
# A count: a number word or digits, but not "one" as a pronoun ("no one", "the one on the left", "one of them").
_COUNT_RE = re.compile(
    rf"(?<!\bno )(?<!\bthe )(?<!\bthis )(?<!\bthat )(?<!\bany )(?<!\bevery )(?<!\bsome )(?<!\beach )"
    rf"\b(?:{_alternation(list(_NUMBER_WORDS))}|\d+)\b(?! of (?:them|the|these|those)\b)(?! another\b)"
)


def _normalise(text: str) -> str:
    text = str(text).lower().replace("’", "'")
    spans = [m.span for m in find_timestamps(text)]
    for start, end in reversed(spans):  # timestamps inside a claim are neither counts nor words
        text = text[:start] + " " + text[end:]
    return " ".join(text.split())


def claim_attributes(text: str) -> dict[str, frozenset[str]]:
    """The closed attributes a claim states: attribute -> canonical values (only stated attributes are keys).

    ``negation`` is ``{"negated"}`` when the claim is negated. Timestamps in the text are ignored.
    """
    t = _normalise(text)
    out: dict[str, frozenset[str]] = {}

    def put(name: str, values: set[str]) -> None:
        if values:
            out[name] = frozenset(values)

    put("colour", {_COLOUR_OF[w] for w in _COLOUR_RE.findall(t)})
    counts = set()
    for m in _COUNT_RE.finditer(t):
        word = m.group(0)
        counts.add(str(int(word)) if word.isdigit() else str(_NUMBER_WORDS[word]))
    put("count", counts)
    put("object", {_OBJECT_OF[w] for w in _OBJECT_RE.findall(t)})
    put("appearance", {a for a, r in _APPEARANCE_RES.items() if r.search(t)})
    put("motion", {m for m, r in _MOTION_RES.items() if r.search(t)})
    put("direction", {d for d, r in _DIRECTION_RES.items() if r.search(_PHRASAL_RE.sub(" ", t))})
    if _NEGATION_RE.search(t):
        out["negation"] = frozenset({"negated"})
    return {a: out[a] for a in ATTRIBUTES if a in out}


def _ancestors(name: str) -> set[str]:
    out = {name}
    parent = _OBJECTS[name][1]
    while parent is not None:
        out.add(parent)
        parent = _OBJECTS[parent][1]
    return out


def _objects_agree(a: str, b: str) -> bool:
    return a in _ancestors(b) or b in _ancestors(a)


def _object_contradicts(pred: frozenset[str], ref: frozenset[str]) -> bool:
    """Some predicted class has a ground-truth class of its kind and agrees with none of them."""
    for p in pred:
        kind = _OBJECTS[p][0]
        same_kind = [r for r in ref if _OBJECTS[r][0] == kind]
        if same_kind and not any(_objects_agree(p, r) for r in same_kind):
            return True
    return False


def contradictions(pred: Mapping[str, frozenset[str]], ref: Mapping[str, frozenset[str]]) -> list[str]:
    """Attributes on which a claim (``pred``, from :func:`claim_attributes`) contradicts a ground-truth claim.

    Set attributes: both state it and the claim states a value the truth does not. Object class: see
    :func:`_object_contradicts`. Negation: exactly one side is negated.
    """
    out = []
    for attr in ATTRIBUTES:
        p, r = pred.get(attr), ref.get(attr)
        if attr == "negation":
            if bool(p) != bool(r):
                out.append(attr)
        elif p and r:
            if _object_contradicts(p, r) if attr == "object" else not p <= r:
                out.append(attr)
    return out


def agreements(pred: Mapping[str, frozenset[str]], ref: Mapping[str, frozenset[str]]) -> list[str]:
    """Attributes (negation aside) both state without contradiction."""
    bad = set(contradictions(pred, ref))
    return [a for a in ATTRIBUTES if a != "negation" and pred.get(a) and ref.get(a) and a not in bad]


def states_all(pred: Mapping[str, frozenset[str]], ref: Mapping[str, frozenset[str]]) -> bool:
    """The claim states every attribute the truth states (negation aside), objects at least as specifically."""
    for attr, values in ref.items():
        if attr != "negation" and not pred.get(attr):
            return False
        if attr == "object" and not all(any(r in _ancestors(q) for q in pred[attr]) for r in values):
            return False
    return True


# ----------------------------------------------------------------------------------------------- time


def video_duration(duration: float | None = None, frame_times: Sequence[float] | None = None) -> float | None:
    """The video's duration in seconds: ``duration`` when usable, else the last frame time plus one sampling
    interval (the median spacing of ``frame_times``), else None."""
    if duration is not None:
        try:
            d = float(duration)
        except (TypeError, ValueError):
            d = math.nan
        if math.isfinite(d) and d > 0:
            return d
    times = sorted(float(t) for t in frame_times or () if t is not None and math.isfinite(float(t)))
    if len(times) >= 2:
        gaps = sorted(b - a for a, b in zip(times, times[1:]))
        return times[-1] + gaps[len(gaps) // 2]
    return None


def time_tolerance(
    duration: float | None = None,
    frame_times: Sequence[float] | None = None,
    *,
    pad_per_s: float = PAD_PER_S,
    max_pad_s: float = MAX_PAD_S,
) -> float:
    """Padding (s) added to each side of both intervals: ``min(max_pad_s, duration · pad_per_s)``.

    Defaults: 1 s per minute of video, at most the reference's 2 s (reached at 2 minutes). On a 4-second clip the
    padding is 0.07 s, so whole-second claims match only at the right second. An unknown duration (see
    :func:`video_duration`) gives ``max_pad_s``, the reference's fixed window.
    """
    if pad_per_s < 0 or max_pad_s < 0:
        raise ValueError(f"pad_per_s and max_pad_s must be ≥ 0, got {pad_per_s} and {max_pad_s}")
    d = video_duration(duration, frame_times)
    return max_pad_s if d is None else min(max_pad_s, d * pad_per_s)


def _near(p: Claim, r: Claim, pad_s: float) -> bool:
    return p.start - pad_s <= r.end + pad_s and r.start - pad_s <= p.end + pad_s


# -------------------------------------------------------------------------------------------- verdicts


class ClaimVerdict(NamedTuple):
    """The verdict on one timestamped claim of the reasoning.

    ``truth`` is the ground-truth claim the verdict rests on (``{"key", "start", "end", "text"}``): the agreeing one for ``true``,
    else the nearest in time (also outside the window, so the viewer can show what was there); None when the
    record has no ground-truth claims. ``contradicted`` lists the attributes contradicting ``truth``.
    """

    key: str
    start: int
    end: int
    text: str
    verdict: str
    stated: tuple[str, ...]
    complete: bool
    truth: dict[str, Any] | None
    contradicted: tuple[str, ...]
    pad_s: float
    timed: bool
    """Some ground-truth claim lies within the time window (the claim's time is right)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (lists for tuples)."""
        d = self._asdict()
        d["stated"], d["contradicted"] = list(self.stated), list(self.contradicted)
        return d


def _distance(p: Claim, r: Claim) -> float:
    return max(0.0, r.start - p.end, p.start - r.end)


def verdict_of(pred: Claim, ref: Sequence[Claim], pad_s: float) -> ClaimVerdict:
    """The verdict on one sanitised claim against the sanitised ground-truth claims (see the module docstring)."""
    attrs = claim_attributes(pred.text)
    stated = tuple(a for a in ATTRIBUTES if a in attrs)
    near = [r for r in ref if _near(pred, r, pad_s)]
    verdict, truth, contra, complete = "unverifiable", None, (), False
    judged = [(r, claim_attributes(r.text)) for r in near]
    agreeing = [(r, ra) for r, ra in judged if not contradictions(attrs, ra) and agreements(attrs, ra)]
    if agreeing:
        # the most specific agreement: the ground truth sharing the most stated attributes, then the nearest
        r, ra = max(agreeing, key=lambda x: (len(agreements(attrs, x[1])), -_distance(pred, x[0])))
        verdict, truth = "true", r
        complete = states_all(attrs, ra)
    elif judged and all(contradictions(attrs, ra) for _, ra in judged):
        r, ra = min(judged, key=lambda x: (len(contradictions(attrs, x[1])), _distance(pred, x[0])))
        verdict, truth, contra = "contradicted", r, tuple(contradictions(attrs, ra))
    elif judged:
        truth = min(judged, key=lambda x: _distance(pred, x[0]))[0]
    elif ref:
        truth = min(ref, key=lambda r: _distance(pred, r))
    return ClaimVerdict(
        pred.key,
        pred.start,
        pred.end,
        pred.text,
        verdict,
        stated,
        complete,
        None if truth is None else {"key": truth.key, "start": truth.start, "end": truth.end, "text": truth.text},
        contra,
        pad_s,
        bool(near),
    )


def claim_verdicts(
    completion: str | Mapping[str, str] | None,
    grounding: Mapping[str, str] | None,
    *,
    duration: float | None = None,
    frame_times: Sequence[float] | None = None,
    pad_s: float | None = None,
) -> list[ClaimVerdict]:
    """Verdicts on every timestamped claim of a completion (its ``<think>`` block; a bare reasoning text is read
    whole) or of a ready ``timestamp -> claim`` map, in time order.

    ``pad_s`` None: :func:`time_tolerance` of ``duration``/``frame_times``.
    """
    if isinstance(completion, Mapping):
        pred_map = completion
    else:
        text = completion or ""
        pred_map = extract_timestamp_claims(extract_think(text) if "<think>" in text.lower() else text)
    pred, ref = claims_from_mapping(pred_map), claims_from_mapping(grounding)
    pad = time_tolerance(duration, frame_times) if pad_s is None else float(pad_s)
    return [verdict_of(p, ref, pad) for p in pred]


def claim_summary(verdicts: Sequence[ClaimVerdict]) -> dict[str, Any]:
    """Counts for a predictions row: ``n`` claims, ``true``, ``complete``, ``contradicted``, ``unverifiable``,
    ``timed`` (a ground truth within the window) and ``stated`` (attribute -> claims stating it). The metrics sum
    these over rows."""
    return {
        "n": len(verdicts),
        "true": sum(v.verdict == "true" for v in verdicts),
        "complete": sum(v.complete for v in verdicts),
        "contradicted": sum(v.verdict == "contradicted" for v in verdicts),
        "unverifiable": sum(v.verdict == "unverifiable" for v in verdicts),
        "timed": sum(v.timed for v in verdicts),
        "stated": {a: sum(a in v.stated for v in verdicts) for a in ATTRIBUTES},
    }

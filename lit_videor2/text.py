"""Shared text parsing for rewards, judges and metrics.

One implementation of every string rule the method depends on, so that a reward and the metric that
mirrors it can never disagree:

* :func:`extract_think` / :func:`extract_answer` — the *last* ``<think>``/``<answer>`` block, tags
  matched case-insensitively; :func:`strip_answer_tags` accepts a ground truth with or without tags.
* :func:`parse_option_letter` — ``B``, ``b``, ``B.``, ``(B)``, ``B) text``, ``B. text``, ``Answer: B``,
  ``The answer is B`` all mean ``B`` (deliberate fix, ``docs/method.md#departures-from-the-reference-code``:
  the reference compares first characters, so ``"A long answer"`` would read as ``A``; here it reads as no
  letter).
* :func:`concluded_option` / :func:`concluded_value` — the answer a reasoning trace concludes (last
  conclusion wins; option text maps to its letter).
* :func:`parse_number` — numbers with thousands separators or in scientific notation (``1e3``).
* :func:`parse_time`, :func:`parse_interval`, :func:`find_timestamps` — timestamps as claim keys and in
  free text: ``MM:SS``, ``HH:MM:SS``, ``[00:12]``, ranges with ``-`` ``–`` ``—`` ``to`` (any case, spaces
  optional: ``00:40TO00:45``), ``12s``, ``12.5 seconds``, ``at 1 min 5 s``; in claim keys also single-digit
  fields (``0:05``, ``1:5`` = 65 s) and scientific notation (``1e3``), as the reference's sanitiser reads them.
* :func:`sanitize_claims` — the claim-key sanitiser of the reference TAR (kept semantics: seconds are
  rounded half-to-even, open-ended ranges such as ``00:12-end`` dropped, reversed ranges swapped, a later
  duplicate key wins; deliberate fix: keys such as ``inf``/``nan`` and non-string or empty sentences are
  dropped instead of crashing the whole sample).
* :func:`extract_timestamp_claims` — the rule-based claim extractor (each timestamp in the reasoning with
  the clause around it, ≤ 10 words), the offline stand-in for the reference's LLM extractor.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

__all__ = [
    "Claim",
    "TimeMention",
    "claims_from_mapping",
    "block_span",
    "concluded_option",
    "concluded_option_span",
    "concluded_value",
    "concluded_value_span",
    "extract_answer",
    "extract_think",
    "extract_timestamp_claims",
    "find_timestamps",
    "interval_key",
    "normalize_text",
    "parse_interval",
    "parse_number",
    "parse_option_letter",
    "parse_time",
    "resolve_option_letter",
    "sanitize_claims",
    "strip_answer_tags",
]

# --------------------------------------------------------------------------------------------- blocks

_THINK_RE = re.compile(r"<think>(.*?)</think>", re.IGNORECASE | re.DOTALL)
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)


def _last_block(pattern: re.Pattern[str], text: str) -> str | None:
    matches = pattern.findall(text or "")
    return matches[-1].strip() if matches else None


def extract_think(text: str) -> str | None:
    """Content of the last ``<think>…</think>`` block (stripped), or None when there is none."""
    return _last_block(_THINK_RE, text)


def extract_answer(text: str) -> str | None:
    """Content of the last ``<answer>…</answer>`` block (stripped), or None when there is none."""
    return _last_block(_ANSWER_RE, text)


def block_span(text: str | None, tag: str) -> tuple[int, int] | None:
    """Character span in ``text`` of what :func:`extract_think` (``tag="think"``) or :func:`extract_answer`
    (``tag="answer"``) returns: the stripped content of the last block; None when there is none."""
    pattern = {"think": _THINK_RE, "answer": _ANSWER_RE}.get(tag)
    if pattern is None:
        raise ValueError(f"block_span: tag must be 'think' or 'answer', got {tag!r}")
    matches = list(pattern.finditer(text or ""))
    if not matches:
        return None
    start, end = matches[-1].span(1)
    content = matches[-1].group(1)
    lead = len(content) - len(content.lstrip())
    return (start + lead, start + lead + len(content.strip()))


def strip_answer_tags(answer: str | None) -> str:
    """A ground truth with or without ``<answer>`` tags, as bare text: the content of the last block, or the text
    itself when it has none (a deliberate fix: ``docs/method.md#departures-from-the-reference-code``)."""
    if answer is None:
        return ""
    inner = extract_answer(str(answer))
    return (inner if inner is not None else str(answer)).strip()


def normalize_text(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed (for loose text equality)."""
    text = re.sub(r"[^\w\s.]", " ", str(text).lower())
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)
    return " ".join(text.split())


# ------------------------------------------------------------------------------------------- letters

_BARE_LETTER_RE = re.compile(r"^\s*[(\[]?\s*([A-Za-z])\s*[)\]]?\s*[.:)]?\s*$")
_LEAD_LETTER_RE = re.compile(r"^\s*(?:\(([A-Za-z])\)|\[([A-Za-z])\]|([A-Z])\s*[.:)])(?:\s|$)")
_ANSWER_PHRASE = (
    r"(?:(?:final\s+)?answer(?:\s+(?:is|would\s+be|should\s+be|=))?|correct\s+(?:answer|option|choice)"
    r"(?:\s+(?:is|would\s+be))?|option|choice|choose|select|pick)"
)
_CONNECTOR = r"(?:therefore|thus|so|hence)"
_LETTER_END = r"(?=\s*[.,;:)!]|\s*$|\s+is\b)"
_PHRASE_LETTER_RE = re.compile(
    rf"\b(?:{_ANSWER_PHRASE}\s*[:=,]?\s*(?:option\s+|choice\s+)?(?:\(([A-Za-z])\)|\b([A-Z])\b(?![\w'])|\b([a-z])\b{_LETTER_END})"
    rf"|{_CONNECTOR}\s*[:,]?\s*(?:the\s+answer\s+is\s+)?(?:option\s+)?\(?\b([A-Za-z])\b\)?{_LETTER_END})",
    re.IGNORECASE,
)
_LETTER_IS_CORRECT_RE = re.compile(r"\b(?:option\s+)?\(?([A-Z])\)?\s+is\s+(?:the\s+)?(?:correct|right|answer)\b")


def _valid(letter: str, valid: str | None) -> str | None:
    letter = letter.upper()
    return letter if valid is None or letter in valid.upper() else None


def parse_option_letter(text: str | None, valid: str | None = None) -> str | None:
    """The option letter a short answer gives, upper case, or None.

    Accepts ``B``, ``b``, ``B.``, ``(B)``, ``[B]``, ``B) text``, ``B. text``, ``Answer: B``, ``The answer is B``,
    ``Option B``. A lower-case letter followed by text (``"a red car"``) and a capital starting a sentence
    (``"A long answer"``) are *not* letters. ``valid`` (e.g. ``"ABCD"``) restricts the accepted letters.
    """
    if not text:
        return None
    text = str(text).strip()
    tagged = extract_answer(text)
    if tagged is not None:
        text = tagged
    m = _BARE_LETTER_RE.match(text)
    if m:
        return _valid(m.group(1), valid)
    m = _LEAD_LETTER_RE.match(text)
    if m:
        return _valid(next(g for g in m.groups() if g), valid)
    hits = [next(g for g in h.groups() if g) for h in _PHRASE_LETTER_RE.finditer(text)]
    hits = [h for h in (_valid(h, valid) for h in hits) if h]
    return hits[-1] if hits else None


def _option_body(option: str) -> str:
    """``"B. blue car"`` -> ``"blue car"`` (option text without its letter prefix)."""
    return re.sub(r"^\s*[(\[]?[A-Za-z][)\].:]\s*", "", str(option)).strip()


def resolve_option_letter(text: str | None, options: Sequence[str] = ()) -> str | None:
    """The option letter of an answer: :func:`parse_option_letter`, else the letter of the option whose text the
    answer repeats (case and punctuation ignored), else None."""
    letter = parse_option_letter(text)
    if letter is not None or not options or not text:
        return letter
    norm = normalize_text(text)
    for i, option in enumerate(options):
        if norm and norm in (normalize_text(option), normalize_text(_option_body(option))):
            return chr(ord("A") + i)
    return None


def concluded_option_span(reasoning: str | None, options: Sequence[str] = ()) -> tuple[str, tuple[int, int]] | None:
    """The option letter a reasoning trace concludes and the character span of that conclusion, or None.

    Looks for explicit conclusions (``"so the answer is C"``, ``"Therefore, D"``, ``"option B is correct"``;
    the one ending last wins); if there is none, for an option's text quoted in the reasoning (the last mentioned
    option wins; its span is the quoted text).
    """
    if not reasoning:
        return None
    valid = "".join(chr(ord("A") + i) for i in range(len(options))) or None
    hits: list[tuple[tuple[int, int], str]] = []
    for m in _PHRASE_LETTER_RE.finditer(reasoning):
        letter = _valid(next(g for g in m.groups() if g), valid)
        if letter:
            hits.append((m.span(), letter))
    for m in _LETTER_IS_CORRECT_RE.finditer(reasoning):
        letter = _valid(m.group(1), valid)
        if letter:
            hits.append((m.span(), letter))
    if hits:
        span, letter = max(hits, key=lambda h: h[0][1])
        return letter, span
    low = reasoning.lower()
    best: tuple[int, int, str] | None = None
    for i, option in enumerate(options):
        body = _option_body(option).lower()
        pos = low.rfind(body) if body else -1
        if pos >= 0 and (best is None or pos > best[0]):
            best = (pos, pos + len(body), chr(ord("A") + i))
    return (best[2], (best[0], best[1])) if best else None


def concluded_option(reasoning: str | None, options: Sequence[str] = ()) -> str | None:
    """The option letter a reasoning trace concludes (last explicit conclusion wins), or None.

    Looks for explicit conclusions (``"so the answer is C"``, ``"Therefore, D"``, ``"option B is correct"``);
    if there is none, for an option's text quoted in the reasoning (the last mentioned option wins).
    """
    found = concluded_option_span(reasoning, options)
    return found[0] if found else None


_CONCLUSION_RE = re.compile(
    r"(?:answer\s+(?:is|would\s+be|should\s+be|=|:)|therefore|thus|hence|so|in\s+total|total\s+(?:is|of))\s*[:,]?\s*",
    re.IGNORECASE,
)


_VALUE_STRIP = " \"'*.,;:"


def concluded_value_span(reasoning: str | None) -> tuple[str, tuple[int, int]] | None:
    """The free-form value a reasoning trace concludes (see :func:`concluded_value`) and its character span."""
    if not reasoning:
        return None
    matches = list(_CONCLUSION_RE.finditer(reasoning))
    if not matches:
        return None
    start = matches[-1].end()
    tail = re.split(r"(?<!\d)[.!?\n](?!\d)", reasoning[start:], maxsplit=1)[0]
    value = tail.strip(_VALUE_STRIP)
    if not value:
        return None
    begin = start + len(tail) - len(tail.lstrip(_VALUE_STRIP))
    return value, (begin, begin + len(value))


def concluded_value(reasoning: str | None) -> str | None:
    """The free-form value a reasoning trace concludes: text after its last conclusion phrase, up to the
    end of that sentence; None when the reasoning has no conclusion phrase."""
    found = concluded_value_span(reasoning)
    return found[0] if found else None


# ------------------------------------------------------------------------------------------- numbers

_NUMBER_RE = re.compile(r"(?:[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+)(?:[eE][-+]?\d+)?")


def parse_number(text: str | None) -> float | None:
    """The number a short answer gives (thousands commas and scientific notation allowed), or None.

    The whole text is tried first, as the reference reads it (``float(text.replace(",", ""))``: ``"1e3"`` is
    1000, ``"2.5E-1"`` 0.25); otherwise the last number in the text is used (``"about 3 apples"`` -> 3).
    """
    if text is None:
        return None
    text = str(text).strip()
    tagged = extract_answer(text)
    if tagged is not None:
        text = tagged
    if _NUMBER_RE.fullmatch(text):
        found = [text]
    else:
        found = _NUMBER_RE.findall(text)
    if not found:
        return None
    value = float(found[-1].replace(",", ""))
    return value if math.isfinite(value) else None


# ----------------------------------------------------------------------------------------- timestamps

_UNIT_S = r"(?:s|sec|secs|second|seconds)"
_UNIT_M = r"(?:m|min|mins|minute|minutes)"
_UNIT_H = r"(?:h|hr|hrs|hour|hours)"
_NUM = r"\d+(?:\.\d+)?"
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?"
_SPOKEN = (
    rf"(?:{_NUM}\s*{_UNIT_H}(?:\s*(?:and\s+)?{_NUM}\s*{_UNIT_M})?(?:\s*(?:and\s+)?{_NUM}\s*{_UNIT_S})?"
    rf"|{_NUM}\s*{_UNIT_M}(?:\s*(?:and\s+)?{_NUM}\s*{_UNIT_S})?"
    rf"|{_NUM}\s*{_UNIT_S})\b"
)
_TIME = rf"(?:{_CLOCK}|{_SPOKEN})"
_SEP = r"\s*(?:-|–|—|to|\band\b|\buntil\b|\btill\b)\s*"  # "to" in any case, spaces optional
_OPEN = r"(?:the\s+)?(?:end|eof)\b"
_MENTION_RE = re.compile(
    rf"\[?\s*(?P<start>{_TIME}|{_NUM}(?=\s*(?:-|–|—|to)\s*{_NUM}\s*{_UNIT_S}\b))"
    rf"(?:{_SEP}(?P<end>{_TIME}|{_OPEN}))?\s*\]?",
    re.IGNORECASE,
)
# Claim keys split as the reference's sanitiser splits them: "-", "–", "—" or "to" in any case, spaces optional.
_KEY_SEP_RE = re.compile(r"\s*(?:–|—|-|to)\s*", re.IGNORECASE)
# A clock field in a claim key, as the reference reads it (int fields, float seconds, any number of digits):
# "0:05" is 5 s, "1:5" is 65 s, "1:02:03.5" is 3723.5 s.
_CLOCK_KEY = r"\d+:\d+(?::\d+)?(?:\.\d+)?"
# A plain-seconds key: "65", "12.5", and scientific notation ("1e3") as Python's float() reads it.
_SECONDS_KEY = r"\d+(?:\.\d+)?(?:e[-+]?\d+)?"
_SPOKEN_PART_RE = re.compile(rf"({_NUM})\s*({_UNIT_H}|{_UNIT_M}|{_UNIT_S})\b", re.IGNORECASE)


class TimeMention(NamedTuple):
    """A timestamp found in free text: ``start``/``end`` seconds (``end`` None when open-ended, equal to
    ``start`` for a point) and the character span of the mention."""

    start: float
    end: float | None
    span: tuple[int, int]


def parse_time(token: str | None) -> float | None:
    """Seconds for one time expression (``"01:05"``, ``"1:02:03"``, ``"65"``, ``"12.5s"``, ``"1 min 5 s"``,
    ``"[00:12]"``), or None when it is not a finite time (``"end"``, ``"inf"``, ``"abc"``).

    Clock fields are read as the reference reads them: any number of digits per field (``"0:05"`` is 5 s,
    ``"1:5"`` is 1 min 5 s), seconds may be decimal; plain seconds may use scientific notation (``"1e3"``).
    """
    if token is None:
        return None
    t = str(token).strip().strip("[]()").strip().strip("+.,").strip().lower()
    if t.startswith("at "):
        t = t[3:].strip()
    if re.fullmatch(_CLOCK_KEY, t):
        parts = t.split(":")
        secs = float(parts[-1]) + 60 * int(parts[-2]) + (3600 * int(parts[0]) if len(parts) == 3 else 0)
        return secs
    if re.fullmatch(_SECONDS_KEY, t):
        value = float(t)
        return value if math.isfinite(value) else None
    if re.fullmatch(_SPOKEN, t, flags=re.IGNORECASE):
        scale = {"h": 3600.0, "m": 60.0, "s": 1.0}
        return sum(float(n) * scale[u[0]] for n, u in _SPOKEN_PART_RE.findall(t))
    return None


def _round_s(x: float) -> int:
    """Whole seconds, half-to-even (as the reference's ``int(round(x))``)."""
    return int(round(x))


def parse_interval(key: str | None) -> tuple[int, int] | None:
    """A claim key as a whole-second interval ``(start, end)``, or None when it cannot be used.

    Reference semantics: seconds rounded half-to-even, reversed ranges swapped, open-ended ranges
    (``"00:12-end"``) and unparseable keys dropped (None). Deliberate fix: ``inf``/``nan`` and other
    non-finite keys are dropped rather than raising.
    """
    if not isinstance(key, str) or not key.strip():
        return None
    parts = _KEY_SEP_RE.split(key.strip().strip("[]").strip())
    if len(parts) not in (1, 2):
        return None
    times = [parse_time(p) for p in parts]
    if any(t is None or not math.isfinite(t) for t in times):
        return None
    start, end = _round_s(times[0]), _round_s(times[-1])
    return (start, end) if start <= end else (end, start)


def _seconds_key(sec: int) -> str:
    if sec >= 3600:
        return f"{sec // 3600:02d}:{sec % 3600 // 60:02d}:{sec % 60:02d}"
    return f"{sec // 60:02d}:{sec % 60:02d}"


def interval_key(start: int, end: int) -> str:
    """Canonical key of a whole-second interval: ``"00:12"`` for a point, ``"00:12-00:15"`` for a range."""
    return _seconds_key(start) if start == end else f"{_seconds_key(start)}-{_seconds_key(end)}"


def find_timestamps(text: str | None) -> list[TimeMention]:
    """Every timestamp mentioned in free text, in order of appearance."""
    mentions: list[TimeMention] = []
    for m in _MENTION_RE.finditer(text or ""):
        start_tok, end_tok = m.group("start"), m.group("end")
        if end_tok is not None and re.fullmatch(_NUM, start_tok.strip()):
            start_tok = start_tok + " s"  # "12-15 seconds": the unit of the end applies to the start
        start = parse_time(start_tok)
        if start is None:
            continue
        if end_tok is None:
            end: float | None = start
        elif re.fullmatch(_OPEN, end_tok.strip(), flags=re.IGNORECASE):
            end = None
        else:
            end = parse_time(end_tok)
        mentions.append(TimeMention(start, end, m.span()))
    return mentions


# --------------------------------------------------------------------------------------------- claims


class Claim(NamedTuple):
    """A sanitised timestamp claim: whole-second interval, canonical key, sentence, and the key as given."""

    start: int
    end: int
    key: str
    text: str
    source_key: str

    @property
    def mid(self) -> float:
        """Interval midpoint (the reference's sort key)."""
        return (self.start + self.end) / 2


def claims_from_mapping(claims: Mapping[str, str] | None) -> list[Claim]:
    """Sanitised claims sorted by interval midpoint (stable: equal midpoints keep their input order).

    Drops unusable keys and empty or non-string sentences; when two keys normalise to the same canonical
    key the later one wins (as a dict built by the reference would).
    """
    out: dict[str, Claim] = {}
    for raw_key, sentence in (claims or {}).items():
        iv = parse_interval(raw_key)
        if iv is None or not isinstance(sentence, str) or not sentence.strip():
            continue
        key = interval_key(*iv)
        out.pop(key, None)  # a later duplicate wins and takes the later position
        out[key] = Claim(iv[0], iv[1], key, sentence.strip(), raw_key)
    return sorted(out.values(), key=lambda c: c.mid)


def sanitize_claims(claims: Mapping[str, str] | None) -> dict[str, str]:
    """Canonical key -> sentence for the usable claims of a mapping (see :func:`claims_from_mapping`)."""
    return {c.key: c.text for c in claims_from_mapping(claims)}


_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|\n+|;\s*")
_LEAD_FILLER_RE = re.compile(
    r"^(?:[\s,:;\-–—()\[\]]|\b(?:at|around|about|approximately|roughly|near|by|from|between|in|on|during|"
    r"the|mark|timestamp|second|seconds|moment|point|time|frame)\b)+",
    re.IGNORECASE,
)
_TRAIL_FILLER_RE = re.compile(
    r"(?:[\s,:;\-–—(\[]|\b(?:at|around|about|approximately|from|between|in|on|during|and|the|by|to|until|then|while|when)\b)+$",
    re.IGNORECASE,
)


def _clause(segment: str, max_words: int) -> str:
    segment = _TRAIL_FILLER_RE.sub("", _LEAD_FILLER_RE.sub("", segment)).strip(" .,")
    words = segment.split()
    return " ".join(words[:max_words])


def extract_timestamp_claims(reasoning: str | None, max_words: int = 10) -> dict[str, str]:
    """Rule-based claim extractor: each timestamp in the reasoning with the clause around it.

    Every mention becomes ``key -> clause``: the text between the previous mention (or the sentence start)
    and the next mention (or the sentence end), fillers such as "At"/"around" trimmed, at most ``max_words``
    words. Keys are written as found (``"00:12-end"`` stays open so that sanitising drops it, as the
    reference does). A later mention of the same key replaces the earlier one.
    """
    claims: dict[str, str] = {}
    for sentence in _SENTENCE_SPLIT_RE.split(reasoning or ""):
        mentions = find_timestamps(sentence)
        for i, mention in enumerate(mentions):
            left = mentions[i - 1].span[1] if i > 0 else 0
            right = mentions[i + 1].span[0] if i + 1 < len(mentions) else len(sentence)
            after = _clause(sentence[mention.span[1] : right], max_words)
            before = _clause(sentence[left : mention.span[0]], max_words)
            text = after if len(after.split()) >= 2 or not before else before
            if not text:
                continue
            start = _round_s(mention.start)
            key = _seconds_key(start) + ("-end" if mention.end is None else "")
            if mention.end is not None and _round_s(mention.end) != start:
                key = interval_key(*sorted((start, _round_s(mention.end))))
            claims.pop(key, None)
            claims[key] = text
    return claims

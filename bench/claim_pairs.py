"""Claim pairs: precision and recall of the reference TAR rule and of the checked rule (``rule="checked"``).

The set (``tests/data/claim_pairs.jsonl``) was built with ``--build`` before the checked rule was tuned, and is
committed; ``--build`` rewrites it identically (fixed seed). Each line is one predicted claim and one ground-truth
claim (``{"MM:SS": sentence}`` each), the clip's ``duration``, the pair's ``class`` and whether the two should
match (``match``):

* ``paraphrase`` (positives): the same event said otherwise — synonyms, another voice or word order;
* ``colour``, ``count``, ``object``, ``direction``, ``appearance``, ``motion``, ``negation`` (negatives): the two
  differ in that one closed attribute and nothing else;
* ``time`` (negatives): the same sentence a second or more away on a 4- or 8-second clip.

Two sources: the synthetic demo's vocabulary (colours, shapes, appear/disappear, moves left/right/up/down;
4- and 8-second clips) and Video-R2-style ``temporal_grounding`` phrasing (people, animals, vehicles, objects,
actions, counts, directions; 1–5-minute clips, predicted times up to a second off).

A pair is *paid* when the rule matches the predicted claim to the ground-truth claim (TAR 1, else 0). Positive =
should match. Prints per rule: precision, recall (= paraphrase recall), and per negative class the share paid.
Run: ``python bench/claim_pairs.py`` (the shipped all-MiniLM-L6-v2, offline); ``--build`` rewrites the set.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "tests" / "data" / "claim_pairs.jsonl"
CLOSED = ("colour", "count", "object", "direction", "appearance", "motion", "negation")
NEGATIVE = (*CLOSED, "time")

# ------------------------------------------------------------------------------------------------ building

SYN_COLOURS = ("red", "green", "blue", "yellow", "purple", "cyan")
SYN_SHAPES = ("circle", "square", "triangle")
SYN_DIRECTIONS = ("left", "right", "up", "down")

# (ground truth, paraphrase): the synthetic demo's events said otherwise ({c} colour, {s} shape, {d} direction).
SYN_PARAPHRASES = {
    "appears": (
        "A {c} {s} appears.",
        [
            "a {c} {s} shows up",
            "the {c} {s} comes into view",
            "{c} {s} appears",
            "a {c} {s} appears on the screen",
            "we see a {c} {s} appear",
            "a {c} {s} becomes visible",
            "a new {c} {s} appears",
            "the {c} {s} pops up",
        ],
    ),
    "disappears": (
        "The {c} {s} disappears.",
        [
            "the {c} {s} vanishes",
            "the {c} {s} is gone",
            "{c} {s} disappears",
            "the {c} {s} is no longer visible",
            "the {c} {s} fades out",
            "we see the {c} {s} disappear",
        ],
    ),
    "moves": (
        "The {c} {s} moves {d}.",
        [
            "the {c} {s} moves {d}",
            "the {c} {s} slides {d}",
            "the {c} {s} shifts {d}ward",
            "{c} {s} moves {d}",
            "the {c} {s} goes {d}",
            "the {c} {s} starts moving {d}",
        ],
    ),
}

# Video-R2-style ground truth and paraphrases, written by hand.
VR2_PARAPHRASES = [
    ("A man in a red shirt opens the door.", "the man wearing a red shirt opens a door"),
    ("Two people walk across the street.", "two persons cross the street on foot"),
    ("A woman picks up a cup from the table.", "the woman lifts a mug off the table"),
    ("The car turns left at the intersection.", "at the intersection the car makes a left turn"),
    ("A dog runs across the yard.", "a puppy is running through the yard"),
    ("The man enters the kitchen.", "a guy walks into the kitchen"),
    ("The bus arrives at the station.", "the bus pulls into the station"),
    ("The woman starts running.", "the lady begins to run"),
    ("The car stops at the red light.", "the car halts at a red traffic light"),
    ("The boy does not catch the ball.", "the boy fails to catch the ball"),
    ("Three children play with a ball.", "3 kids are playing with a ball"),
    ("A man places two cups on the table.", "the man puts 2 mugs onto the table"),
    ("The camera pans to the right.", "the camera view moves rightward"),
    ("A person leaves the room.", "someone exits the room"),
    ("A black cat jumps onto the sofa.", "a black kitten leaps onto the couch"),
    ("The woman puts down the phone.", "the woman sets her smartphone down"),
    ("A white truck drives by.", "a white lorry passes by"),
    ("The girl waves her hand.", "the girl is waving"),
    ("The man sits down on a chair.", "the man takes a seat on the chair"),
    ("Two dogs chase each other.", "a pair of dogs chase one another"),
    ("A red car parks in front of the house.", "a red automobile parks before the house"),
    ("The man picks up a book.", "a man grabs a book"),
    ("The woman opens the window.", "the lady opens a window"),
    ("The man walks up the stairs.", "the man climbs the stairs"),
    ("A bird flies away.", "the bird flies off"),
    ("The man throws the ball to the left.", "the man tosses the ball leftward"),
    ("The boy falls down.", "the boy tumbles to the ground"),
    ("A woman in a blue dress enters.", "a lady wearing a blue dress comes in"),
    ("The car reverses out of the driveway.", "the car backs out of the driveway"),
    ("Nobody is in the room.", "the room is empty"),
    ("The child starts crying.", "the kid begins to cry"),
    ("Four people sit around the table.", "four persons are seated around a table"),
    ("The woman hands a bag to the man.", "the woman gives the man a bag"),
    ("The dog disappears behind the car.", "the dog vanishes behind a car"),
    ("The man turns right.", "the man makes a right turn"),
    ("A man wearing a white shirt appears.", "a guy in a white shirt shows up"),
    ("The girl stops walking.", "the girl comes to a stop"),
    ("Two men shake hands.", "two guys shake hands"),
    ("The woman looks to the left.", "the woman glances left"),
    ("A man in a black jacket gets out of the car.", "a man in a black coat steps out of the car"),
]

# Video-R2-style negatives: (template, values); one value for the ground truth, another for the claim.
VR2_NEGATIVES = {
    "colour": [
        ("A man in a {} shirt opens the door.", ("red", "blue", "green", "white", "black", "yellow")),
        ("A {} car drives past the house.", ("red", "blue", "white", "black", "grey", "silver")),
        ("The woman picks up a {} bag.", ("red", "brown", "black", "pink", "white")),
        ("A {} ball rolls across the floor.", ("red", "blue", "yellow", "orange", "green")),
    ],
    "count": [
        ("{} people walk across the street.", ("two", "three", "four", "five")),
        ("The man places {} cups on the table.", ("two", "three", "four", "2", "3")),
        ("{} dogs run through the park.", ("two", "three", "four")),
        ("{} cars are parked outside.", ("two", "three", "five", "6")),
    ],
    "object": [
        ("A {} picks up a cup from the table.", ("man", "woman", "boy", "girl")),
        ("A {} runs across the yard.", ("dog", "cat", "horse")),
        ("The man opens the {}.", ("door", "window", "box", "laptop")),
        ("A {} drives past the house.", ("car", "truck", "bus", "motorcycle")),
        ("The woman hands a {} to the man.", ("book", "phone", "bottle", "bag")),
    ],
    "direction": [
        ("The car turns {} at the intersection.", ("left", "right")),
        ("The woman walks to the {} of the frame.", ("left", "right")),
        ("The ball rolls {} the hill.", ("up", "down")),
        ("The camera pans {}.", ("left", "right", "up", "down")),
        ("The man moves {} along the hallway.", ("forward", "backward")),
        ("The wheel spins {}.", ("clockwise", "counterclockwise")),
    ],
    "appearance": [
        ("A man {} the room.", ("enters", "leaves")),
        ("The bus {} at the stop.", ("arrives", "departs")),
        ("A dog {} behind the car.", ("appears", "disappears")),
        ("The woman {} the frame.", ("enters", "exits")),
    ],
    "motion": [
        ("The car {} moving.", ("starts", "stops")),
        ("The man {} running.", ("begins", "stops")),
        ("The music {} playing.", ("starts", "stops")),
        ("The train {} at the platform.", ("starts", "halts")),
    ],
    "negation": [
        ("The man {} the door.", ("opens", "does not open")),
        ("The dog {} at the stranger.", ("barks", "doesn't bark")),
        ("{} is holding a phone.", ("Someone", "No one")),
        ("The woman {} the ball.", ("catches", "never catches")),
        ("The car {} at the sign.", ("stops", "does not stop")),
    ],
}


def _number(word: str) -> int:
    return int(word) if word.isdigit() else ("zero one two three four five six".split().index(word.lower()))


def _clock(sec: int) -> str:
    return f"{sec // 60:02d}:{sec % 60:02d}"


def _pair(klass, pred, ref, pred_t, ref_t, duration, match, source):
    return {
        "class": klass,
        "source": source,
        "pred": {_clock(pred_t): pred},
        "ref": {_clock(ref_t): ref},
        "duration": duration,
        "match": match,
    }


def _lower(s: str) -> str:
    return s[0].lower() + s[1:].rstrip(".")


def build(seed: int = 0) -> list[dict]:
    """The pair set (deterministic for a seed)."""
    rng = random.Random(seed)
    out: list[dict] = []

    def syn_event(kind):
        return rng.choice(SYN_COLOURS), rng.choice(SYN_SHAPES), rng.choice(SYN_DIRECTIONS), kind

    # synthetic paraphrases (positives): 4- and 8-second clips, the right second
    for kind, (truth, variants) in SYN_PARAPHRASES.items():
        for v in variants:
            for _ in range(2 if kind != "appears" else 1):
                c, s, d, _ = syn_event(kind)
                t, dur = rng.randint(1, 3), rng.choice((4.0, 8.0))
                out.append(
                    _pair(
                        "paraphrase", v.format(c=c, s=s, d=d), truth.format(c=c, s=s, d=d), t, t, dur, True, "synthetic"
                    )
                )
    # Video-R2-style paraphrases: minutes-long clips, the time up to a second off
    for truth, para in VR2_PARAPHRASES:
        t, dur = rng.randint(5, 170), float(rng.choice((60, 90, 120, 180, 300)))
        out.append(_pair("paraphrase", para, truth, t + rng.choice((0, 0, 1, -1)), t, dur, True, "video-r2"))

    # synthetic negatives: one attribute differs
    def syn_neg(klass, n):
        for _ in range(n):
            kind = {"colour": rng.choice(("appears", "disappears")), "object": "appears"}.get(klass, "moves")
            c, s, d, _ = syn_event(kind)
            c2, s2, d2 = c, s, d
            if klass == "colour":
                c2 = rng.choice([x for x in SYN_COLOURS if x != c])
            elif klass == "object":
                s2 = rng.choice([x for x in SYN_SHAPES if x != s])
            elif klass == "direction":
                d2 = rng.choice([x for x in SYN_DIRECTIONS if x != d])
            truth = SYN_PARAPHRASES[kind][0]
            if klass == "appearance":
                kind2 = "disappears" if kind == "appears" else "appears"
                pred = _lower(SYN_PARAPHRASES[kind2][0]).format(c=c, s=s, d=d)
            else:
                pred = _lower(truth).format(c=c2, s=s2, d=d2)
            t, dur = rng.randint(1, 3), rng.choice((4.0, 8.0))
            out.append(_pair(klass, pred, truth.format(c=c, s=s, d=d), t, t, dur, False, "synthetic"))

    syn_neg("colour", 16)
    syn_neg("object", 12)
    syn_neg("direction", 12)
    for _ in range(10):  # appear vs disappear
        c, s, d, _ = syn_event("appears")
        kind, other = rng.choice((("appears", "disappears"), ("disappears", "appears")))
        truth, pred = SYN_PARAPHRASES[kind][0], _lower(SYN_PARAPHRASES[other][0])
        t, dur = rng.randint(1, 3), rng.choice((4.0, 8.0))
        out.append(_pair("appearance", pred.format(c=c, s=s), truth.format(c=c, s=s), t, t, dur, False, "synthetic"))

    # Video-R2-style negatives
    for klass, templates in VR2_NEGATIVES.items():
        want = 30 - sum(p["class"] == klass for p in out)
        for k in range(max(want, 14)):
            template, values = templates[k % len(templates)]
            a, b = rng.sample(values, 2)
            if klass == "count" and _number(a) == _number(b):  # "three" and "3" are one count: take the next value
                b = next(v for v in values[values.index(b) :] + values if _number(v) != _number(a))
            if klass == "negation" and rng.random() < 0.5:
                a, b = values[0], values[1]
            elif klass == "negation":
                a, b = values[1], values[0]
            truth, pred = template.format(a), template.format(b)
            pred = pred[0].lower() + pred[1:].rstrip(".")
            t, dur = rng.randint(5, 170), float(rng.choice((60, 90, 120, 180, 300)))
            out.append(_pair(klass, pred, truth, t + rng.choice((0, 0, 1, -1)), t, dur, False, "video-r2"))

    # time: the right sentence at a wrong second of a 4- or 8-second clip
    for _ in range(36):
        kind = rng.choice(("appears", "disappears", "moves"))
        c, s, d, _ = syn_event(kind)
        truth = SYN_PARAPHRASES[kind][0].format(c=c, s=s, d=d)
        t = rng.randint(1, 3)
        dur = rng.choice((4.0, 8.0))
        off = (
            rng.choice([x for x in range(1, 4) if x != t]) if dur == 4.0 else rng.choice((t + 1, t + 2, max(0, t - 1)))
        )
        out.append(_pair("time", _lower(truth), truth, off, t, dur, False, "synthetic"))
    for i, p in enumerate(out):
        p["id"] = i
    return out


def write(pairs: list[dict], path: Path = PAIRS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(p, sort_keys=True) + "\n" for p in pairs))
    tmp.replace(path)


def load(path: Path = PAIRS) -> list[dict]:
    """The committed pairs; a bad line is an error naming the file and line."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            p = json.loads(line)
            assert {"class", "pred", "ref", "duration", "match"} <= set(p), "missing keys"
        except (ValueError, AssertionError) as e:
            raise ValueError(f"{path}:{n}: not a claim pair ({e})") from None
        out.append(p)
    return out


# ------------------------------------------------------------------------------------------------ scoring


def paid(pairs: list[dict], rule: str, embedder) -> list[bool]:
    """Whether each pair's predicted claim matches its ground-truth claim under ``rule``."""
    from lit_videor2.rewards import temporal_alignment_score

    return [
        temporal_alignment_score(p["pred"], p["ref"], rule=rule, duration=p["duration"], embedder=embedder) > 0
        for p in pairs
    ]


def scores(pairs: list[dict], got: list[bool]) -> dict:
    """Precision, recall and, per class, the share paid."""
    tp = sum(g and p["match"] for p, g in zip(pairs, got))
    fp = sum(g and not p["match"] for p, g in zip(pairs, got))
    pos = sum(p["match"] for p in pairs)
    per = defaultdict(list)
    for p, g in zip(pairs, got):
        per[p["class"]].append(g)
    return {
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / pos if pos else float("nan"),
        "paid": {k: sum(v) / len(v) for k, v in per.items()},
        "n": {k: len(v) for k, v in per.items()},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", action="store_true", help=f"rewrite {PAIRS.relative_to(ROOT)} and exit")
    ap.add_argument("--pairs", type=Path, default=PAIRS)
    ap.add_argument("--show-misses", action="store_true", help="print the pairs each rule gets wrong")
    args = ap.parse_args(argv)
    if args.build:
        pairs = build()
        write(pairs, args.pairs)
        print(f"wrote {len(pairs)} pairs to {args.pairs}: {dict(Counter(p['class'] for p in pairs))}")
        return 0
    sys.path.insert(0, str(ROOT))
    from lit_videor2.rewards.embedding import SentenceTransformerEmbedder

    pairs = load(args.pairs)
    embedder = SentenceTransformerEmbedder()
    results = {
        rule: scores(pairs, got := paid(pairs, rule, embedder)) | {"got": got} for rule in ("reference", "checked")
    }
    classes = ["paraphrase", *NEGATIVE]
    print(f"{len(pairs)} claim pairs ({args.pairs.name}); paid = the rule matches the claim to its ground truth\n")
    print("| rule | precision | paraphrase recall | " + " | ".join(f"{c} paid" for c in NEGATIVE) + " |")
    print("|---|---|---|" + "---|" * len(NEGATIVE))
    for rule, r in results.items():
        cells = [f"{100 * r['precision']:.1f} %", f"{100 * r['recall']:.1f} %"]
        cells += [f"{100 * r['paid'].get(c, float('nan')):.0f} %" for c in NEGATIVE]
        print(f"| {rule} | " + " | ".join(cells) + " |")
    print("\npairs per class: " + ", ".join(f"{c} {results['reference']['n'].get(c, 0)}" for c in classes))
    if args.show_misses:
        for rule, r in results.items():
            for p, g in zip(pairs, r["got"]):
                if g != p["match"]:
                    print(f"{rule} {'paid' if g else 'missed'} [{p['class']}] {p['pred']} vs {p['ref']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

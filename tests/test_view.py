"""Trace viewer (``lit_videor2 view``): annotations, the build, and the page in a real headless Chromium.

The browser tests need Debian's ``chromium`` and the ``playwright`` package (dev extra); without them they are
skipped locally but FAIL when ``CI=1`` or ``LIT_VIDEOR2_REQUIRE_BROWSER=1`` (``.ci/run`` sets it), so CI never
passes without running them. Set ``LIT_VIDEOR2_VIEWER_SCREENSHOT=PATH`` to also save the screenshot there
(``docs/images/viewer.png`` is made that way).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch

from lit_videor2.evaluation.predictions import read_predictions
from lit_videor2.rewards.embedding import Embedder
from lit_videor2.rewards.temporal import temporal_alignment_score
from lit_videor2.text import (
    block_span,
    concluded_option,
    concluded_option_span,
    concluded_value,
    concluded_value_span,
    extract_answer,
    extract_think,
    extract_timestamp_claims,
)
from lit_videor2.view import ViewOptions, build_view
from lit_videor2.view.annotate import tar_pairing, text_segments
from lit_videor2.view.page import embed_json
from lit_videor2.view.sources import ViewError
from tests.view_data import SCRIPT, make_view_inputs

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class WordEmbedder(Embedder):
    """Deterministic stand-in for MiniLM: bag of lower-case words, L2-normalised (cosine = word overlap)."""

    def encode(self, sentences):
        vocab = sorted({w for s in sentences for w in s.lower().split()})
        index = {w: i for i, w in enumerate(vocab)}
        out = torch.zeros(len(sentences), max(1, len(vocab)))
        for r, s in enumerate(sentences):
            for w in s.lower().split():
                out[r, index[w]] += 1
        return torch.nn.functional.normalize(out, dim=1)


# ------------------------------------------------------------------------------------------------ pure parts


@pytest.mark.parametrize(
    "text",
    [
        "<think> At 00:02 a red circle appears. So the answer is C. </think>\n<answer> C </answer>",
        "<think>first</think><think>The blue option is B. Option C is correct.</think><answer>B</answer>",
        "<THINK>no conclusion</THINK>",
        "",
    ],
)
def test_spans_agree_with_the_parsers(text):
    think = block_span(text, "think")
    answer = block_span(text, "answer")
    assert (text[slice(*think)] if think else None) == extract_think(text)
    assert (text[slice(*answer)] if answer else None) == extract_answer(text)
    reasoning = extract_think(text)
    options = ["A. red", "B. blue", "C. green"]
    found = concluded_option_span(reasoning, options)
    assert (found[0] if found else None) == concluded_option(reasoning, options)
    if found:
        assert found[0] in reasoning[slice(*found[1])]
    value = concluded_value_span(reasoning)
    assert (value[0] if value else None) == concluded_value(reasoning)
    if value:
        assert reasoning[slice(*value[1])] == value[0]


def test_concluded_option_span_falls_back_to_option_text():
    assert concluded_option_span("I only see something blue", ["A. red", "B. blue"]) == ("B", (21, 25))


def test_text_segments_cover_the_text_and_mark_times_and_spans():
    text = "<think>At 00:02 x, then 1:05-1:07 y. So the answer is C.</think><answer>C</answer>"
    marks = {"concluded": (45, 60), "final": block_span(text, "answer")}
    segs = text_segments(text, marks)
    assert "".join(s["s"] for s in segs) == text
    times = [(s["s"], s["t"]) for s in segs if "t" in s]
    assert times == [("00:02", [2.0, 2.0]), ("1:05-1:07", [65.0, 67.0])]
    assert [s["s"] for s in segs if "final" in s.get("m", [])] == ["C"]


def test_embed_json_cannot_close_the_script_element():
    data = {"completion": "</script><script>alert(1)</script><!-- & \u2028"}
    text = str(embed_json(data))
    assert "</" not in text and "<!--" not in text and "<" not in text
    assert json.loads(text) == data


def test_tar_pairing_matches_the_reward():
    completion = "<think>At 00:02 a red circle appears. At 00:09 a blue square leaves. At 00:20 it ends.</think>"
    grounding = {"00:03": "A red circle appears.", "00:10": "A green star appears.", "00:40": "The end."}
    emb = WordEmbedder()
    p = tar_pairing(completion, grounding, embedder=emb, threshold=0.6)
    pred_claims = extract_timestamp_claims(extract_think(completion))
    assert p["score"] == temporal_alignment_score(pred_claims, grounding, embedder=emb, threshold=0.6)
    assert [(p["pred"][x["p"]]["key"], p["ref"][x["r"]]["key"]) for x in p["pairs"]] == [("00:02", "00:03")]
    assert p["pairs"][0]["sim"] >= 0.6
    unmatched = {p["pred"][u["p"]]["key"]: u["best"] for u in p["unmatched_pred"]}
    assert unmatched["00:20"] is None  # no reference claim within ±2 s
    assert unmatched["00:09"]["r"] == 1 and unmatched["00:09"]["sim"] < 0.6
    assert [p["ref"][j]["key"] for j in p["unmatched_ref"]] == ["00:10", "00:40"]
    assert tar_pairing(completion, grounding, embedder=None)["pairs"] is None
    assert tar_pairing(completion, {}, embedder=emb) is None


# ------------------------------------------------------------------------------------------------ the build


@pytest.fixture(scope="module")
def view_inputs(tmp_path_factory):
    return make_view_inputs(tmp_path_factory.mktemp("view"))


def test_build_writes_thumbnails_once(view_inputs, tmp_path):
    opts = ViewOptions(embedder=WordEmbedder())
    first = build_view(tmp_path, predictions=[view_inputs["sft"]], options=opts)
    assert first.items == 4 and first.frames_decoded > 0 and first.thumbnails_written > 0
    assert not first.videos_failed
    thumbs = sorted((tmp_path / "thumbs").glob("*.jpg"))
    assert len(thumbs) == first.thumbnails_written
    again = build_view(tmp_path, predictions=[view_inputs["sft"]], options=opts)
    assert (again.frames_decoded, again.thumbnails_written) == (0, 0)
    assert sorted((tmp_path / "thumbs").glob("*.jpg")) == thumbs
    page = (tmp_path / "index.html").read_text()
    assert "<script>window.__pwned" not in page  # the hostile completion is embedded escaped
    for name in ("static/viewer.js", "static/viewer.css"):
        assert (tmp_path / name).is_file()


def test_bad_inputs_name_the_file(tmp_path, view_inputs):
    with pytest.raises(ViewError, match="not found"):
        build_view(tmp_path, predictions=[tmp_path / "nope.jsonl"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')
    with pytest.raises(ViewError, match=r"bad.jsonl: row 1 has no completion"):
        build_view(tmp_path, predictions=[bad], options=ViewOptions(tar=False))
    with pytest.raises(ViewError, match="no completions at steps"):
        build_view(tmp_path, completions=view_inputs["completions"], options=ViewOptions(tar=False, steps={7}))


def test_missing_video_is_reported_not_fatal(tmp_path, view_inputs):
    rows = read_predictions(view_inputs["sft"])
    rows[0]["video"] = "videos/val/missing.mp4"
    f = tmp_path / "run" / "predictions.jsonl"
    f.parent.mkdir()
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = build_view(
        tmp_path / "out", predictions=[f], options=ViewOptions(tar=False, video_root=view_inputs["data"])
    )
    assert report.items == 4 and len(report.videos_failed) == 1 and "missing.mp4" in report.videos_failed[0]


# ------------------------------------------------------------------------------------------------ the browser


def _browser():
    """A headless system Chromium through Playwright; skip (or fail in CI) when either is missing."""
    required = os.environ.get("CI") == "1" or os.environ.get("LIT_VIDEOR2_REQUIRE_BROWSER") == "1"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if chromium is None or sync_playwright is None:
        why = "no chromium on PATH (apt-get install -y chromium)" if chromium is None else "playwright not installed"
        if required:
            pytest.fail(f"browser test required (CI=1 or LIT_VIDEOR2_REQUIRE_BROWSER=1) but {why}")
        pytest.skip(why)
    return sync_playwright, chromium


@pytest.fixture(scope="module")
def browser():
    sync_playwright, chromium = _browser()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, page_path: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on(
        "console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.goto(page_path.resolve().as_uri())
    page.wait_for_selector(".card")
    return page, errors


def _count(page) -> int:
    return int(page.text_content("#count-shown"))


def _set_filter(page, checkbox: str, on: bool) -> None:
    page.set_checked(checkbox, on)


@pytest.mark.slow
def test_page_in_browser_predictions(browser, view_inputs, tmp_path):
    runs = [read_predictions(view_inputs[k]) for k in ("sft", "grpo")]
    report = build_view(tmp_path, predictions=[view_inputs["sft"], view_inputs["grpo"]])  # the real MiniLM
    assert report.items == 4 and report.entries == 8 and not report.videos_failed
    page, errors = _open(browser, tmp_path / "index.html")

    # the number of samples shown
    assert _count(page) == 4 and int(page.text_content("#count-total")) == 4
    assert page.locator(".card").count() == 4 and page.locator(".entry").count() == 8

    # each filter changes the count to the right number (a sample shows when any run matches)
    def expected(pred) -> int:
        return sum(any(pred(run[i]) for run in runs) for i in range(4))

    gold_pairs = {}
    for run in runs:
        for r in run:
            claims = extract_timestamp_claims(extract_think(r["completion"]) or "")
            tar = temporal_alignment_score(claims, r["temporal_grounding"]) if claims else 1.0
            gold_pairs[(r["id"], r["completion"])] = tar < 1.0
    cases = {
        "#f-wrong": lambda r: r["correct"] < 1,
        "#f-inconsistent": lambda r: not r["consistent"],
        "#f-lowvas": lambda r: r["vas"] < 5,
        "#f-unmatched": lambda r: gold_pairs[(r["id"], r["completion"])],
    }
    for box, pred in cases.items():
        _set_filter(page, box, True)
        want = expected(pred)
        assert _count(page) == want, box
        assert page.locator(".card").count() == want
        _set_filter(page, box, False)
        assert _count(page) == 4
    for box in ("#f-wrong", "#f-inconsistent", "#f-unmatched"):  # per run the filters split the samples
        page.select_option("#f-run", "sft")
        _set_filter(page, box, True)
        want = sum(cases[box](r) for r in runs[0])
        assert 0 < want < 4 and _count(page) == want, box
        _set_filter(page, box, False)
    page.select_option("#f-run", "")
    page.fill("#f-vas-threshold", "100")
    page.dispatch_event("#f-vas-threshold", "change")
    _set_filter(page, "#f-lowvas", True)
    assert _count(page) == 4
    _set_filter(page, "#f-lowvas", False)
    for select, field in (("#f-benchmark", "benchmark"), ("#f-ptype", "problem_type")):
        values = sorted({r[field] for r in runs[0]})
        assert len(values) == 2
        for v in values:
            page.select_option(select, v)
            assert _count(page) == sum(r[field] == v for r in runs[0]), (select, v)
        page.select_option(select, "")
    page.fill("#search", runs[0][2]["id"])
    assert _count(page) == 1
    page.fill("#search", "")
    assert _count(page) == 4

    # clicking a cited timestamp highlights the frame at that time
    card = page.locator(".card").nth(1)
    for link in card.locator(".completion a.ts").all():
        start, end = float(link.get_attribute("data-start")), float(link.get_attribute("data-end"))
        link.click()
        lit = [float(t) for t in card.locator(".frame.hl").evaluate_all("fs => fs.map(f => f.dataset.t)")]
        assert lit, f"nothing highlighted for {start}"
        assert any(abs(t - start) < 1e-6 for t in lit), (start, lit)  # the frame at the cited time itself
        assert all(math.floor(start) <= t < math.floor(end) + 1 for t in lit)
        assert link.evaluate("a => a.classList.contains('active')")
    assert card.locator(".frame.cited-only").count() > 0  # a cited time no sampled frame shows was decoded
    assert card.locator(".frame img").first.evaluate("i => i.complete && i.naturalWidth > 0")

    # a completion with a <script> tag renders as text
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#list script").count() == 0 and page.locator("#list img[src=x]").count() == 0
    hostile = page.locator(".completion", has_text="<script>window.__pwned = 1</script>")
    assert hostile.count() >= 1
    assert SCRIPT in hostile.first.text_content()

    page.locator("a.ts").first.click()
    shot = tmp_path / "viewer.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("LIT_VIDEOR2_VIEWER_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["LIT_VIDEOR2_VIEWER_SCREENSHOT"])

    # no console errors
    assert errors == []
    page.close()


@pytest.mark.slow
def test_page_in_browser_completions(browser, view_inputs, tmp_path):
    report = build_view(tmp_path, completions=view_inputs["completions"], options=ViewOptions(tar=False))
    assert report.items == 4 and report.entries == 32
    page, errors = _open(browser, tmp_path / "index.html")
    assert _count(page) == 4
    assert page.locator(".card").first.locator(".entry").count() == 8
    assert page.locator(".card").first.locator(".badge.reward").count() == 8
    page.select_option("#f-step", "10")
    assert _count(page) == 2
    assert page.is_disabled("#f-unmatched")  # built with --no-tar
    link = page.locator(".card").first.locator(".completion a.ts").first
    link.click()
    assert page.locator(".card").first.locator(".frame.hl").count() >= 1
    assert page.evaluate("window.__pwned") is None
    assert errors == []
    page.close()


@pytest.mark.slow
def test_page_stays_usable_with_5000_samples(browser, view_inputs, tmp_path):
    rows = read_predictions(view_inputs["sft"])
    big = []
    for i in range(5000):
        r = dict(rows[i % len(rows)])
        r["id"] = f"s{i:05d}"
        big.append(r)
    f = tmp_path / "big" / "predictions.jsonl"
    f.parent.mkdir()
    f.write_text("".join(json.dumps(r) + "\n" for r in big))
    report = build_view(tmp_path / "out", predictions=[f], options=ViewOptions(tar=False, thumbnails=False))
    assert report.items == 5000
    page, errors = _open(browser, tmp_path / "out" / "index.html")
    assert _count(page) == 5000
    assert page.locator(".card").count() == 25  # one page rendered, not 5000 cards
    page.click("#next")
    assert page.locator(".card").first.get_attribute("data-key").endswith("s00025")
    _set_filter(page, "#f-wrong", True)
    assert _count(page) == sum(r["correct"] < 1 for r in big)
    assert errors == []
    page.close()


# ------------------------------------------------------------------------------------------- claim checks


def test_claim_checks_beside_the_ground_truth():
    from lit_videor2.claims import claim_verdicts
    from lit_videor2.view.annotate import claim_checks
    from lit_videor2.view.loading import annotate_entry

    truth = {"00:01": "A red circle appears.", "00:03": "The red circle moves left."}
    text = "<think>At 00:01 a red circle appears. At 00:03 the red circle moves right. At 00:02 a dot.</think>"
    checks = claim_checks(text, truth, duration=4.0)
    assert [c["verdict"] for c in checks] == ["true", "unverifiable", "contradicted"]
    assert checks[2]["truth"] == {"key": "00:03", "start": 3, "end": 3, "text": "The red circle moves left."}
    assert checks[2]["contradicted"] == ["direction"] and not checks[1]["timed"]
    assert checks == [v.as_dict() for v in claim_verdicts(text, truth, frame_times=[0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5])]
    assert claim_checks(text, None) is None
    entry = annotate_entry(
        {"completion": text, "duration": 4.0}, options=None, problem_type=None, grounding=truth, embedder=None
    )
    assert entry["claims_checked"] == checks


@pytest.mark.slow
def test_page_marks_each_claim(browser, view_inputs, tmp_path):
    from lit_videor2.view.annotate import claim_checks

    rows = read_predictions(view_inputs["sft"])
    build_view(tmp_path, predictions=[view_inputs["sft"]], options=ViewOptions(tar=False))
    page, errors = _open(browser, tmp_path / "index.html")
    want = [claim_checks(r["completion"], r["temporal_grounding"], frame_times=r["frame_times"]) or [] for r in rows]
    verdicts = page.locator(".claims-check td.sim .badge").all_text_contents()
    assert sorted(verdicts) == sorted(c["verdict"] for w in want for c in w)
    assert {"true", "unverifiable"} <= set(verdicts)
    truths = page.locator(".claims-check tr td:last-child").all_text_contents()
    assert any(c["truth"]["text"] in t for w in want for c in w if c["truth"] for t in truths)
    assert errors == []
    page.close()

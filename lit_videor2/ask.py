"""Single-video inference: ``lit_videor2 ask --model DIR --video FILE --question "..." [--options "A. x" ...]``.

Loads the policy and processor, samples frames with the project's :class:`FrameLoader`, builds the same
prompt as training and evaluation (:class:`VideoCollator` in ``prompt`` mode, system prompt and reasoning
instruction included), decodes greedily with the engine validation and ``test`` use, and prints three sections: the reasoning (``<think>``), the answer
(``<answer>``, with the option text when it names an option) and every timestamp the reasoning cites, with
the clause that cites it and a flag for times beyond the end of the video.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lit_videor2.data.decoding import BACKENDS, DEFAULT_BACKEND
from lit_videor2.text import TimeMention, extract_answer, extract_think, find_timestamps, resolve_option_letter

_LETTERED_RE = re.compile(r"^\s*\(?[A-Z][.):]\s")


@dataclass
class Citation:
    """A timestamp cited in the reasoning."""

    start: float
    """Seconds."""
    end: float | None
    """Seconds; equal to ``start`` for a point, None for an open range (``"00:12-end"``)."""
    text: str
    """The sentence that cites it."""
    beyond_video: bool = False
    """The time lies after the end of the video (a hallucinated timestamp)."""

    @property
    def label(self) -> str:
        if self.end is None:
            return f"{_clock(self.start)}-end"
        return _clock(self.start) if self.end == self.start else f"{_clock(self.start)}-{_clock(self.end)}"


@dataclass
class AskResult:
    """What :func:`ask` returns (and ``main`` prints)."""

    completion: str
    reasoning: str | None
    answer: str | None
    answer_letter: str | None
    options: list[str]
    citations: list[Citation] = field(default_factory=list)
    duration: float | None = None
    frame_times: list[float] = field(default_factory=list)


def _clock(seconds: float) -> str:
    """``MM:SS`` (``HH:MM:SS`` past an hour), tenths kept when not whole: ``01:05``, ``00:12.5``."""
    whole = int(seconds)
    frac = round(seconds - whole, 1)
    h, m, s = whole // 3600, whole % 3600 // 60, whole % 60
    base = f"{h:02d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
    return base + (f"{frac:.1f}"[1:] if frac else "")


def _sentence_around(text: str, span: tuple[int, int]) -> str:
    """The sentence of ``text`` that contains ``span``, whitespace collapsed."""
    bounds = [0] + [m.end() for m in re.finditer(r"[.!?\n](?=\s|$)", text)] + [len(text)]
    start = max(b for b in bounds if b <= span[0])
    end = min((b for b in bounds if b >= span[1]), default=len(text))
    return " ".join(text[start:end].split())


def cited_timestamps(reasoning: str | None, duration: float | None = None) -> list[Citation]:
    """Every timestamp the reasoning mentions, in order, with its sentence (and a flag past ``duration``)."""
    text = reasoning or ""
    out = []
    for m in find_timestamps(text):
        m: TimeMention
        last = m.start if m.end is None else max(m.start, m.end)
        beyond = duration is not None and last > duration + 0.5  # half a second of slack for rounding
        out.append(Citation(m.start, m.end, _sentence_around(text, m.span), beyond))
    return out


def lettered(options: Sequence[str]) -> list[str]:
    """Options as ``A. x`` lines; options already written with their letters are kept."""
    opts = [o.strip() for o in options if o.strip()]
    if all(_LETTERED_RE.match(o) for o in opts):
        return opts
    return [f"{chr(ord('A') + i)}. {o}" for i, o in enumerate(opts)]


def parse_completion(completion: str, options: Sequence[str], duration: float | None = None) -> AskResult:
    """Split a completion into reasoning, answer (+ option letter) and cited timestamps."""
    reasoning = extract_think(completion)
    answer = extract_answer(completion)
    letter = resolve_option_letter(answer, options) if options and answer is not None else None
    # Without a <think> block, timestamps are looked for in the whole completion (minus the answer).
    source = reasoning if reasoning is not None else re.sub(r"<answer>.*?</answer>", "", completion, flags=re.S | re.I)
    return AskResult(
        completion=completion,
        reasoning=reasoning,
        answer=answer,
        answer_letter=letter,
        options=list(options),
        citations=cited_timestamps(source, duration),
        duration=duration,
    )


def format_result(result: AskResult) -> str:
    """The three printed sections."""
    lines = ["== reasoning =="]
    if result.reasoning is not None:
        lines.append(result.reasoning or "(empty <think> block)")
    else:
        lines.append("(no <think> block; the raw completion follows)")
        lines.append(result.completion.strip() or "(empty completion)")
    lines += ["", "== answer =="]
    if result.answer is None:
        lines.append("(no <answer> block)")
    elif result.answer_letter is not None:
        option = next((o for o in result.options if o.lstrip("( ").startswith(result.answer_letter)), "")
        lines.append(f"{result.answer_letter}" + (f"  ({option})" if option else ""))
    else:
        lines.append(result.answer or "(empty <answer> block)")
    span = f" (video: {result.duration:.1f} s)" if result.duration is not None else ""
    lines += ["", f"== cited timestamps =={span}"]
    if not result.citations:
        lines.append("(none)")
    for c in result.citations:
        flag = "  [beyond the end of the video]" if c.beyond_video else ""
        lines.append(f"{c.label:<13} {c.text}{flag}")
    return "\n".join(lines)


def _device_and_dtype(device: str, dtype: str) -> tuple[Any, str]:
    import torch

    dev = torch.device(
        "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    )
    if dtype == "auto":
        dtype = "bfloat16" if dev.type == "cuda" else "float32"
    return dev, dtype


def ask(
    model: str,
    video: str | Path,
    question: str,
    options: Sequence[str] = (),
    *,
    fps: float = 2.0,
    max_frames: int = 32,
    min_pixels: int = 100_352,
    max_pixels: int = 151_200,
    max_new_tokens: int = 512,
    device: str = "auto",
    dtype: str = "auto",
    backend: str = "pyav",
) -> AskResult:
    """Answer ``question`` about ``video`` with the model in folder ``model``.

    Decoding is greedy, by the same engine as validation and ``test``
    (:func:`~lit_videor2.rollout.engine.generate_completions`): explicit positions, no ``generation_config``.
    """
    import torch

    from lit_videor2.data.collate import VideoCollator
    from lit_videor2.data.dataset import VideoSample
    from lit_videor2.data.frames import FrameLoader
    from lit_videor2.data.records import VideoRecord
    from lit_videor2.data.sampling import FrameSampling
    from lit_videor2.models.hub import load_processor
    from lit_videor2.models.policy import PolicySpec, load_policy
    from lit_videor2.rollout.engine import GenerationSettings, generate_completions

    video = Path(video)
    if not video.is_file():
        raise FileNotFoundError(f"video not found: {video}")
    dev, dtype = _device_and_dtype(device, dtype)
    processor = load_processor(model)
    policy = load_policy(PolicySpec(path=model, dtype=dtype, freeze_vision=True)).to(dev).eval()

    vp = getattr(processor, "video_processor", None)
    sampling = FrameSampling(
        fps=fps, min_frames=min(4, max_frames), max_frames=max_frames, min_pixels=min_pixels, max_pixels=max_pixels
    )
    loader = FrameLoader(
        sampling,
        size_factor=int(getattr(vp, "patch_size", 14)) * int(getattr(vp, "merge_size", 2)),
        temporal_patch=int(getattr(vp, "temporal_patch_size", 2)),
        backend=backend,
    )
    frames = loader(video)

    opts = lettered(options)
    text = question.strip() if not opts else question.strip() + "\nOptions:\n" + "\n".join(opts)
    record = VideoRecord(id="ask", video=str(video), question=text, answer="", options=opts, source="lit_videor2 ask")
    batch = VideoCollator(processor, mode="prompt")([VideoSample(record, frames)])
    batch = {k: v.to(dev) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    if "pixel_values_videos" in batch:
        batch["pixel_values_videos"] = batch["pixel_values_videos"].to(next(policy.parameters()).dtype)

    tokenizer = getattr(processor, "tokenizer", processor)
    settings = GenerationSettings(max_new_tokens=max_new_tokens, do_sample=False)
    texts = generate_completions(policy, tokenizer, batch, settings).texts
    result = parse_completion(texts[0], opts, duration=frames.duration)
    result.frame_times = list(frames.times)
    return result


def build_parser(prog: str = "lit_videor2 ask") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="model folder (or hub id) loadable by load_policy")
    p.add_argument("--video", required=True, type=Path, help="video file")
    p.add_argument("--question", required=True, help="the question")
    p.add_argument(
        "--options", nargs="+", default=[], help='answer options, e.g. "A. red" "B. blue" (letters added if absent)'
    )
    p.add_argument("--fps", type=float, default=2.0, help="frames sampled per second")
    p.add_argument("--max-frames", type=int, default=32, help="at most this many frames")
    p.add_argument("--min-pixels", type=int, default=100_352, help="minimum pixels per frame")
    p.add_argument("--max-pixels", type=int, default=151_200, help="maximum pixels per frame")
    p.add_argument("--max-new-tokens", type=int, default=512, help="generation budget (greedy)")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--backend", default=DEFAULT_BACKEND, choices=list(BACKENDS), help="video decoder")
    return p


def main(argv: Sequence[str] | None = None) -> AskResult:
    """``lit_videor2 ask``: print the reasoning, the answer and the cited timestamps; return the result."""
    a = build_parser().parse_args(argv)
    result = ask(
        a.model,
        a.video,
        a.question,
        a.options,
        fps=a.fps,
        max_frames=a.max_frames,
        min_pixels=a.min_pixels,
        max_pixels=a.max_pixels,
        max_new_tokens=a.max_new_tokens,
        device=a.device,
        dtype=a.dtype,
        backend=a.backend,
    )
    print(format_result(result))
    return result

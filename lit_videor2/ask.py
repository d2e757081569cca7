"""Single-video inference: ``lit_videor2 ask --model DIR --video FILE --question "..." [--options "A. x" ...]``.

Loads the policy, builds its one-prompt batch through the data module's own path
(:meth:`~lit_videor2.data.datamodule.VideoDataModule.prompt_batch`: the frame settings and prompt of training and
evaluation, system prompt and reasoning instruction included), decodes greedily with the engine validation and
``test`` use, and prints three sections: the reasoning (``<think>``), the answer (``<answer>``, with the option
text when it names an option) and every timestamp the reasoning cites, with the clause that cites it and a flag for
times beyond the end of the video.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lit_videor2.data.decoding import BACKENDS
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
    fps: float | None = None,
    max_frames: int | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    max_new_tokens: int = 512,
    device: str = "auto",
    dtype: str = "auto",
    backend: str | None = None,
) -> AskResult:
    """Answer ``question`` about ``video`` with the model in folder ``model``.

    The batch is built by the data module's own path
    (:meth:`~lit_videor2.data.datamodule.VideoDataModule.prompt_batch`): frames sampled by
    :class:`~lit_videor2.data.sampling.FrameSampling` (``fps``, ``max_frames``, ``min_pixels``, ``max_pixels``;
    None: its defaults, as in training) with the data module's decoder (``backend``; None: its default), and the
    prompt of training and evaluation. Decoding is greedy, by the same engine as validation and ``test``
    (:func:`~lit_videor2.rollout.engine.generate_completions`): explicit positions, no ``generation_config``.
    """
    import torch

    from lit_videor2.data.datamodule import VideoDataModule
    from lit_videor2.data.records import VideoRecord, question_with_options
    from lit_videor2.data.sampling import FrameSampling
    from lit_videor2.distributed.loading import load_policy
    from lit_videor2.models.policy import PolicySpec
    from lit_videor2.rollout.engine import GenerationSettings, generate_completions

    video = Path(video)
    if not video.is_file():
        raise FileNotFoundError(f"video not found: {video}")
    dev, dtype = _device_and_dtype(device, dtype)
    given = {"fps": fps, "max_frames": max_frames, "min_pixels": min_pixels, "max_pixels": max_pixels}
    given = {k: v for k, v in given.items() if v is not None}
    if max_frames is not None:  # a --max-frames below the default minimum lowers the minimum with it
        given["min_frames"] = min(FrameSampling.min_frames, max_frames)
    sampling = replace(FrameSampling(), **given)
    data = VideoDataModule(
        processor=model, mode="prompt", num_workers=0, sampling=sampling, **({"backend": backend} if backend else {})
    )
    processor = data.processor
    policy = load_policy(PolicySpec(path=model, dtype=dtype, freeze_vision=True)).to(dev).eval()

    opts = lettered(options)
    text = question_with_options(question.strip(), opts)
    record = VideoRecord(id="ask", video=str(video), question=text, answer="", options=opts, source="lit_videor2 ask")
    batch = data.prompt_batch([record])
    columns = batch["columns"]
    batch = {k: v.to(dev) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    if "pixel_values_videos" in batch:
        batch["pixel_values_videos"] = batch["pixel_values_videos"].to(next(policy.parameters()).dtype)

    tokenizer = getattr(processor, "tokenizer", processor)
    settings = GenerationSettings(max_new_tokens=max_new_tokens, do_sample=False)
    texts = generate_completions(policy, tokenizer, batch, settings).texts
    result = parse_completion(texts[0], opts, duration=columns["duration"][0])
    result.frame_times = list(columns["frame_times"][0])
    return result


def build_parser(prog: str = "lit_videor2 ask") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="model folder (or hub id) loadable by load_policy")
    p.add_argument("--video", required=True, type=Path, help="video file")
    p.add_argument("--question", required=True, help="the question")
    p.add_argument(
        "--options", nargs="+", default=[], help='answer options, e.g. "A. red" "B. blue" (letters added if absent)'
    )
    from lit_videor2.data.sampling import FrameSampling

    default = FrameSampling()  # the data module's frame settings: training's defaults
    p.add_argument("--fps", type=float, default=None, help=f"frames sampled per second (default {default.fps})")
    p.add_argument(
        "--max-frames", type=int, default=None, help=f"at most this many frames (default {default.max_frames})"
    )
    p.add_argument(
        "--min-pixels", type=int, default=None, help=f"minimum pixels per frame (default {default.min_pixels})"
    )
    p.add_argument(
        "--max-pixels", type=int, default=None, help=f"maximum pixels per frame (default {default.max_pixels})"
    )
    p.add_argument("--max-new-tokens", type=int, default=512, help="generation budget (greedy)")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument(
        "--backend",
        default=None,
        choices=list(BACKENDS),
        help="video decoder (default: the data module's)",
    )
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

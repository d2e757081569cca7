"""Which frames each video backend returns on files made by the ffmpeg command line: the table in docs/data.md.

    python bench/decode_accuracy.py [--backends pyav torchcodec decord] [--fps 8] [--workdir DIR]

Every clip of the matrix (``bench/video_matrix.py``: H.264 variants, HEVC, VP9, AV1, MPEG-4 Part 2 in AVI, ProRes,
MJPEG, an audio stream first, non-square pixels, a rotation tag, MPEG-TS, fragmented MP4, a WebM without duration,
an MP4 cut with ``-c copy``, two video streams, variable frame rates; then truncated, empty and non-video files) paints
its frame index into its pixels. Each backend decodes it through ``decode_video`` at the data module's target times
(``sample_times`` at ``--fps``) and each returned frame's painted index is checked against its reported time and its
target (``frame_problems``), as are the duration, the shown-frame count and the display size. A cell reads ``ok``,
``N/T wrong`` (frames), ``refused`` (the backend raises an error naming the file: with a fallback the next backend
takes over) or a short note. Broken files must fail with an error naming the file.

Needs Debian's ``ffmpeg`` (the command line) to make the clips. To measure a decord successor that installs under the
same module name (``decord2``), put it first on ``PYTHONPATH`` and run with ``--backends decord``.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.video_matrix import backend_outcome, broken_cases, cases, ffmpeg_available  # noqa: E402
from lit_videor2.data.decoding import BACKENDS  # noqa: E402
from lit_videor2.data.sampling import FrameSampling, sample_times  # noqa: E402


def check(case, path: Path, backend: str, sampling: FrameSampling) -> str:
    """One cell of the table: 'ok' or what is wrong."""
    out = backend_outcome(case, path, backend, lambda tl: sample_times(tl.num_frames, tl.duration, sampling))
    if out.kind == "error":
        if case.broken:
            return (
                "ok (error naming the file)"
                if out.error.startswith(f"{path}: ")
                else f"**error without the file**: {out.error}"
            )
        detail = out.error.split(f"{backend}: ", 1)[-1].rstrip(")")
        detail = re.sub(r"\[[\d:]+\] |\S+\.cc:\d+: |\[\S+\]|Check failed: ", "", detail).replace(str(path), "FILE")
        return f"refused ({detail[:48].strip()}…)"
    if case.broken:
        return "**no error**"
    wrong = [f"**{len(out.wrong_frames)}/{out.targets} wrong**"] if out.wrong_frames else []
    return "; ".join(wrong + out.notes) or "ok"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backends", nargs="+", default=list(BACKENDS))
    ap.add_argument("--fps", type=float, default=8.0, help="sampling rate of the target times")
    ap.add_argument("--workdir", default=None, help="make the clips here (default: a temporary folder)")
    args = ap.parse_args(argv)
    if not ffmpeg_available():
        sys.exit("needs the ffmpeg command line (Debian: apt-get install ffmpeg)")
    modules = {"pyav": "av"}
    backends = [b for b in args.backends if importlib.util.find_spec(modules.get(b, b)) is not None]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="lit_videor2_matrix_"))
    work.mkdir(parents=True, exist_ok=True)
    sampling = FrameSampling(fps=args.fps, max_frames=64)
    print(f"| file ({args.fps:g} fps targets) | " + " | ".join(backends) + " |")
    print("|---|" + "---|" * len(backends))
    for case in cases() + broken_cases():
        path = work / case.file
        if not path.is_file():
            case.make(path)
        print(f"| {case.name} | " + " | ".join(check(case, path, b, sampling) for b in backends) + " |", flush=True)


if __name__ == "__main__":
    main()

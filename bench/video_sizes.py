"""Time and peak memory of one sample's frames, on videos at the sizes users have: the table in docs/performance.md.

    python bench/video_sizes.py [--rows 720p-3min 1080p-1min 4k-10s phone-4k] [--big] [--runs 3] [--workdir DIR]

Rows (clips made by the ffmpeg command line: ``testsrc2``, x264 ``-preset veryfast``, its default keyframe spacing,
250 frames, B-frames; 30 fps):

* ``720p-3min``: 1280x720, 180 s; ``1080p-1min``: 1920x1080, 60 s; ``4k-10s``: 3840x2160, 10 s; all at the data
  module's default sampling (2 fps, at most 32 frames, 100,352-151,200 px, Qwen2.5-VL's factor 28);
* ``phone-4k``: 3840x2160 stored, shown portrait (a 90 degree rotation tag), a variable frame rate (frames 1/30 to
  3/30 s apart, 12.3 s), an AAC track;
* ``1080p-10min`` (``--big``): 1920x1080, 600 s, at the reference's SFT sampling (1 fps, at most 128 frames).

Columns, each run in a fresh process, interleaved (A B C D, A B C D, ...), medians of ``--runs``:

* **data path**: ``FrameLoader`` as the data module builds it (its defaults: PyAV, the 120 s decode time limit, so
  the decode runs in the loader's decoding process); the timeline scan (demuxing the file) is counted;
* **data path, torchcodec / decord**: the same with ``backend`` torchcodec / decord (scan counted for torchcodec);
* **plain decode** (:func:`plain_decode`): seek to the keyframe before each wanted frame, decode forward with PyAV,
  convert each wanted frame with swscale straight to the returned size; the wanted frames and keyframes come from a
  scan made before the clock starts (not counted). Same decoder threads (``DECODE_THREADS``) as the data path.

Peak memory growth: the peak resident memory (``VmHWM``, reset through ``/proc/self/clear_refs`` after imports and a
warm-up) minus the resident memory before the sample; for the data path, the decoding process's growth (measured the
same way inside it) is added to the loader's own. Needs Debian's ``ffmpeg`` (the command line) to make the clips.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lit_videor2.data import decode_process, decoding  # noqa: E402  (light: the decoding process imports them too)
from lit_videor2.data.sampling import FrameSampling  # noqa: E402

SFT = FrameSampling(fps=1.0, max_frames=128)
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
#: name -> (ffmpeg arguments after the input, sampling)
ROWS = {
    "720p-3min": (["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-t", "180", *X264], FrameSampling()),
    "1080p-1min": (["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30", "-t", "60", *X264], FrameSampling()),
    "4k-10s": (["-f", "lavfi", "-i", "testsrc2=size=3840x2160:rate=30", "-t", "10", *X264], FrameSampling()),
    "phone-4k": (  # made by make_clip: this, a display matrix patched in, an AAC track muxed
        [
            *["-t", "10", "-f", "lavfi", "-i", "testsrc2=size=3840x2160:rate=30"],
            *["-vf", "setpts='(N+floor(N/7)+floor(N/11))/30/TB'", "-fps_mode", "vfr", *X264],
        ],
        FrameSampling(),
    ),
    "1080p-10min": (["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30", "-t", "600", *X264], SFT),
}
BIG = {"1080p-10min"}
METHODS = ["data path", "plain decode", "data path, torchcodec", "data path, decord"]


def make_clip(name: str, workdir: Path) -> Path:
    """The row's clip (made once). ``phone-4k``: frames 1/30-3/30 s apart, shown turned 90 degrees clockwise (the
    ``tkhd`` matrix a phone writes; Debian's FFmpeg 5.1 cannot write it, so it is patched in), a 440 Hz AAC track."""
    from bench.video_matrix import clockwise_matrix, set_display_matrix

    path = workdir / f"{name}.mp4"
    if not path.is_file():
        tmp = path.with_suffix(".tmp.mp4")
        subprocess.run(["ffmpeg", "-y", "-v", "error", *ROWS[name][0], str(tmp)], check=True)
        if name == "phone-4k":
            set_display_matrix(tmp, clockwise_matrix(90, 3840, 2160))
            audio = ["-f", "lavfi", "-i", "sine=frequency=440", "-map", "0:v", "-map", "1:a", "-shortest"]
            muxed = path.with_suffix(".mux.mp4")
            cmd = ["ffmpeg", "-y", "-v", "error", "-i", str(tmp), *audio, "-c:v", "copy", "-c:a", "aac", str(muxed)]
            subprocess.run(cmd, check=True)
            muxed.rename(tmp)
        tmp.rename(path)
    return path


# ------------------------------------------------------------------------------------------------ one measurement


def _status(key: str) -> int:
    """``/proc/self/status`` field in bytes (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def reset_peak() -> int:
    """Reset this process's peak resident memory to its current one; returns the current one (bytes)."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def peak() -> int:
    return _status("VmHWM")


def plain_decode(path: str, wanted: list[int], keyframes: list[int], index: int, hw: tuple[int, int]) -> list:
    """PyAV at the wanted presentation timestamps (ascending, distinct): seek to the keyframe before a wanted frame
    when it lies past the frames decoded so far, decode forward, convert each wanted frame with swscale straight to
    ``hw`` (upright ``(height, width)``; turned afterwards when the tag says so)."""
    import av
    import numpy as np

    out = []
    with av.open(path) as container:
        stream = container.streams[index]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = decoding.DECODE_THREADS
        frames, position = None, None
        for w in wanted:
            key = max(k for k in keyframes if k <= w)
            if frames is None or position is None or key > position:
                container.seek(key, stream=stream, backward=True)
                frames = container.decode(stream)
            for frame in frames:
                position = frame.pts
                if frame.pts == w:
                    turn = round((frame.rotation or 0) / 90) % 4
                    h, wd = hw[::-1] if turn % 2 else hw
                    rgb = frame.reformat(wd, h, format="rgb24", interpolation="BICUBIC").to_ndarray()
                    out.append(np.rot90(rgb, k=turn) if turn else rgb)
                if frame.pts >= w:
                    break
    return out


def child_reset() -> int:
    """Run in the decoding process: reset its peak; its resident memory now."""
    return reset_peak()


def child_peak() -> int:
    return peak()


def measure(method: str, path: str, row: str) -> dict:
    """One sample by ``method`` in this (fresh) process: seconds and peak memory growth (bytes)."""
    from lit_videor2.data.frames import FrameLoader
    from lit_videor2.data.sampling import resized_hw, sample_times

    sampling = ROWS[row][1]
    backend = {"data path, torchcodec": "torchcodec", "data path, decord": "decord"}.get(method, "pyav")
    loader = FrameLoader(sampling, backend=backend)  # the data module's defaults: time limit on, factor 28
    resized_hw(64, 64, sampling)  # imports the size rule (transformers)
    if method == "plain decode":
        from lit_videor2.data.probe import probe

        scan = probe(path)  # not counted: the plain decode is handed its frames and keyframes
        idx = scan.timeline.indices_at(sample_times(scan.timeline.num_frames, scan.timeline.duration, sampling))
        wanted = sorted({int(scan.pts[i]) for i in idx})
        import av

        with av.open(path) as c:  # the display size, for the returned size
            s = c.streams[scan.index]
            f = next(c.decode(s))
            turn = round((f.rotation or 0) / 90) % 2
            dh, dw = (s.width, s.height) if turn else (s.height, s.width)
        hw = resized_hw(dh, dw, sampling)
        base = reset_peak()
        t = time.perf_counter()
        frames = plain_decode(path, wanted, scan.keyframes.tolist(), scan.index, hw)
        seconds = time.perf_counter() - t
        return {"seconds": seconds, "growth": peak() - base, "frames": len(frames)}
    proc = decode_process.decoder_process()
    child_base = proc.run(child_reset, (), (), 300, path)  # starts the decoding process, imports done
    base = reset_peak()
    t = time.perf_counter()
    out = loader(path)
    seconds = time.perf_counter() - t
    growth = peak() - base + proc.run(child_peak, (), (), 300, path) - child_base
    return {"seconds": seconds, "growth": growth, "frames": len(out.frames), "shape": list(out.frames.shape)}


# ------------------------------------------------------------------------------------------------------ the table


def run_fresh(method: str, path: Path, row: str) -> dict:
    code = (
        f"import json, sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        f"from bench.video_sizes import measure\nprint(json.dumps(measure({method!r}, {str(path)!r}, {row!r})))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", default=[r for r in ROWS if r not in BIG], choices=list(ROWS))
    ap.add_argument("--big", action="store_true", help="add the 10-minute 1080p row (128 frames)")
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "lit_videor2_video_sizes"))
    args = ap.parse_args()
    rows = list(args.rows) + (sorted(BIG) if args.big else [])
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"# decoder threads {decoding.DECODE_THREADS}; medians of {args.runs} interleaved fresh-process runs")
    print("| clip | frames returned | " + " | ".join(args.methods) + " | data path / plain: time, memory |")
    print("|---|---|" + "---|" * (len(args.methods) + 1))
    for row in rows:
        path = make_clip(row, workdir)
        runs: dict[str, list[dict]] = {m: [] for m in args.methods}
        for _ in range(args.runs):
            for m in args.methods:
                runs[m].append(run_fresh(m, path, row))
        cells, med = [], {}
        for m in args.methods:
            ok = [r for r in runs[m] if "error" not in r]
            if not ok:
                cells.append(f"error: {runs[m][0]['error'][:60]}")
                continue
            med[m] = (statistics.median(r["seconds"] for r in ok), statistics.median(r["growth"] for r in ok) / 2**20)
            cells.append(f"{med[m][0]:.2f} s / +{med[m][1]:.0f} MB")
        shape = next((r["shape"] for r in runs.get("data path", []) if "shape" in r), None)
        returned = f"{shape[0]} at {shape[3]}x{shape[2]}" if shape else "?"
        ratio = ""
        if "data path" in med and "plain decode" in med:
            (ta, ma), (tb, mb) = med["data path"], med["plain decode"]
            ratio = f"{ta / tb:.2f}x, {ma:.0f} MB vs 2x{mb:.0f}+48 = {2 * mb + 48:.0f} MB"
        print(f"| {row} | {returned} | " + " | ".join(cells) + f" | {ratio} |", flush=True)


if __name__ == "__main__":
    main()

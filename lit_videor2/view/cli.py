"""``lit_videor2 view``: write the trace viewer's static page (optionally serve it on 127.0.0.1)."""

from __future__ import annotations

import argparse
import functools
import http.server
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from lit_videor2.rewards.embedding import SentenceTransformerEmbedder
from lit_videor2.view.build import BuildReport, ViewOptions, build_view
from lit_videor2.view.loading import parse_steps

__all__ = ["build_parser", "main", "serve"]

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lit_videor2 view",
        description="Write a self-contained page (index.html, static/, thumbs/; opens from disk) showing each sample's "
        "frames, question, reasoning with clickable timestamps, TAC verdict, VAS and TAR pairing.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--predictions",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="predictions JSONL of `lit_videor2 test` (two to compare)",
    )
    src.add_argument(
        "--completions", type=Path, metavar="FILE", help="GRPO completions table (completions_rank0.jsonl)"
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (index.html, static/, thumbs/)")
    p.add_argument("--labels", nargs="+", help="names of the predictions runs (default: their folder names)")
    p.add_argument(
        "--config",
        type=Path,
        help="the run's config.yaml (video roots, frame sampling, training records); "
        "default: config.yaml next to the input or logs/*/config.yaml below its folder",
    )
    p.add_argument(
        "--video-root", type=Path, help="folder the rows' video paths are relative to (overrides the config)"
    )
    p.add_argument("--steps", help="GRPO steps to show: 0,10,50 or 0-30 (default: all)")
    p.add_argument("--no-tar", action="store_true", help="skip the TAR pairing (no sentence embedder; faster)")
    p.add_argument("--no-thumbs", action="store_true", help="decode no frames (strips show times only)")
    p.add_argument("--thumb-size", type=int, default=160, help="longest thumbnail side in pixels (default 160)")
    p.add_argument("--size-factor", type=int, default=28, help="frame size multiple: 28 Qwen2/2.5-VL, 32 Qwen3-VL")
    p.add_argument("--temporal-patch", type=int, default=2, help="frame-count multiple of the sampling (default 2)")
    p.add_argument("--low-vas", type=float, default=5.0, help="initial threshold of the 'low VAS' filter (0-10)")
    p.add_argument("--page-size", type=int, default=25, help="samples per page (default 25)")
    p.add_argument(
        "--serve", action="store_true", help="serve the page on 127.0.0.1 and rebuild when the input changes"
    )
    p.add_argument("--port", type=int, default=8765, help="port of --serve (default 8765; 0 picks a free one)")
    p.add_argument("--watch", type=float, default=10.0, help="seconds between input checks with --serve (default 10)")
    return p


def _options(args: argparse.Namespace) -> ViewOptions:
    return ViewOptions(
        config=args.config,
        video_root=args.video_root,
        labels=args.labels,
        steps=parse_steps(args.steps),
        tar=not args.no_tar,
        thumbnails=not args.no_thumbs,
        thumb_size=args.thumb_size,
        size_factor=args.size_factor,
        temporal_patch=args.temporal_patch,
        low_vas=args.low_vas,
        page_size=args.page_size,
    )


def _summary(report: BuildReport) -> str:
    failed = f", {len(report.videos_failed)} videos not decoded" if report.videos_failed else ""
    return (
        f"wrote {report.page} ({report.items} samples, {report.entries} completions; "
        f"{report.thumbnails_written} thumbnails written, {report.frames_decoded} frames decoded{failed}) "
        f"in {report.seconds:.1f} s"
    )


def serve(out: Path, port: int, rebuild=None, watch: Sequence[Path] = (), every: float = 10.0) -> None:
    """Serve ``out`` on 127.0.0.1:``port`` until interrupted; call ``rebuild()`` when a ``watch`` file changes."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    stop = threading.Event()

    def poll() -> None:
        stamp = [p.stat().st_mtime_ns if p.exists() else 0 for p in watch]
        while not stop.wait(every):
            now = [p.stat().st_mtime_ns if p.exists() else 0 for p in watch]
            if now != stamp and rebuild is not None:
                stamp = now
                try:
                    rebuild()
                except Exception as e:  # noqa: BLE001 - keep serving the last good page
                    log.warning("rebuild failed: %s", e)

    threading.Thread(target=poll, daemon=True).start()
    print(f"serving {out} on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()


def main(argv: Sequence[str] | None = None) -> BuildReport:
    """``lit_videor2 view``: parse ``argv``, build the page, print a summary (and serve with ``--serve``)."""
    args = build_parser().parse_args(argv)
    opts = _options(args)
    if opts.tar:  # load the embedder once, shared by rebuilds
        opts.embedder = SentenceTransformerEmbedder()

    def rebuild() -> BuildReport:
        report = build_view(args.out, predictions=args.predictions or (), completions=args.completions, options=opts)
        print(_summary(report), time.strftime("%H:%M:%S"), flush=True)
        return report

    report = rebuild()
    if args.serve:
        serve(
            args.out,
            args.port,
            rebuild,
            [*(args.predictions or []), *([args.completions] if args.completions else [])],
            args.watch,
        )
    return report

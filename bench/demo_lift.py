"""Check that the demo's GRPO stage lifts greedy validation accuracy over its SFT model, per seed and thread count.

For seeds 0, 1 and 2, at 1 and at 2 threads, runs ``configs/demo/grpo.yaml`` from the demo SFT model
(``models/demo-sft``; made first when missing, as the demo does) with its rewards (accuracy + format + gated TAR),
validating on all the demo's validation clips at both frame layouts at step 0 (the SFT model) and after the last
step, and prints per run::

    threads 2 seed 0: SFT 0.640 -> GRPO 0.870 on 200 clips, lift +0.230 (± 0.042) PASS (needs ≥ 0.15); 4fps: ...

PASS needs a lift of at least ``--min-lift`` at the training layout (2 fps, 8 frames) and, at the other layout
(4 fps, 16 frames), GRPO no more than ``--max-drop`` below the SFT model with format ≥ ``--min-format``. The thread
count changes float rounding, hence the sampled completions and the whole trajectory: both settings are checked.
Exit status 0 when every run passes. These are the ``gated_tar`` runs of ``bench/ablation.py`` (same folders, so
either script reuses the other's finished runs). Not a timed test: run it by hand (each run a few minutes on 2
quiet cores; with ``--jobs 2`` two 1-thread runs share the cores)::

    python bench/demo_lift.py [--out runs/ablation] [--seeds 0 1 2] [--threads 1 2] [--jobs 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ablation  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads per run (each setting)")
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--min-lift", type=float, default=0.15)
    p.add_argument("--max-drop", type=float, default=0.05)
    p.add_argument("--min-format", type=float, default=0.95)
    p.add_argument("--jobs", type=int, default=1, help="runs at once")
    args = p.parse_args(argv)
    status = 0
    for threads in args.threads:
        status |= ablation.main(
            ["--variants", "gated_tar", "--seeds", *map(str, args.seeds), "--out", args.out, "--jobs", str(args.jobs)]
            + ["--threads", str(threads), "--check-lift", str(args.min_lift)]
            + ["--max-drop", str(args.max_drop), "--min-format", str(args.min_format)]
        )
    return status


if __name__ == "__main__":
    sys.exit(main())

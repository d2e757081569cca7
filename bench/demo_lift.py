"""Check that the demo's GRPO stage makes the evidence true and lifts accuracy over its SFT model, per seed.

For seeds 0, 1 and 2 runs ``configs/demo/grpo.yaml`` from the demo SFT model (``models/demo-sft``; made first when
missing, as the demo does) with the demo's rewards (accuracy + format + the gated, checked temporal alignment reward:
``checked_tar``) and with the reference's temporal alignment reward in its place (``gated_tar``, the ablation),
validating on all the demo's validation clips at both frame layouts at step 0 (the SFT model), every 100 steps and
after the last, and prints per run::

    checked_tar threads 1 seed 0: accuracy SFT 0.600 -> GRPO 0.900 on 200 clips, lift +0.300 (± 0.042); claims true
    0.150 -> 0.700, with a claim 1.000 PASS (...); 4fps: ...

PASS needs, at the training layout (2 fps, 8 frames): an accuracy lift of at least ``--min-lift``; at least
``--min-claims`` of all timestamped claims true and complete (stating the time, the colour and the shape, all
three right: ``val/claims_complete``) and at
least ``--min-claims-lift`` above the SFT model's; at least ``--min-with-claim`` of completions with a timestamped
claim. At the other layout (4 fps, 16 frames): GRPO no more than ``--max-drop`` below the SFT model's accuracy
with format ≥ ``--min-format``. The exit status is that of the ``checked_tar`` runs (the demo); the ``gated_tar``
lines show what the reference reward does from the same SFT model. The runs are those of ``bench/ablation.py``
(same folders, so either script reuses the other's finished runs) and its table is printed once. The thread count
changes float rounding, hence the sampled completions and the whole trajectory (``--threads 1 2`` checks both).
Not a timed test: run it by hand (each run a few minutes on 2 quiet cores; with ``--jobs 2`` two 1-thread runs
share the cores)::

    python bench/demo_lift.py [--out runs/ablation] [--seeds 0 1 2] [--threads 1] [--jobs 1]
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
    p.add_argument("--threads", type=int, nargs="+", default=[2], help="torch threads per run (each setting)")
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--min-lift", type=float, default=0.15)
    p.add_argument("--min-claims", type=float, default=0.5)
    p.add_argument("--min-claims-lift", type=float, default=0.25)
    p.add_argument("--min-with-claim", type=float, default=0.95)
    p.add_argument("--max-drop", type=float, default=0.05)
    p.add_argument("--min-format", type=float, default=0.95)
    p.add_argument("--jobs", type=int, default=1, help="runs at once")
    args = p.parse_args(argv)
    status = 0
    for threads in args.threads:
        # runs (or reuses) both variants and prints their table once, then checks each variant
        ablation.main(
            ["--variants", *ablation.DEFAULT_VARIANTS, "--seeds", *map(str, args.seeds), "--out", args.out]
            + ["--jobs", str(args.jobs), "--threads", str(threads)]
        )
        for variant in ablation.DEFAULT_VARIANTS:
            ok = ablation.check_lift(
                Path(args.out), args.seeds, args.min_lift, threads, args.max_drop, args.min_format,
                variant, args.min_claims, args.min_claims_lift, args.min_with_claim,
            )  # fmt: skip
            if variant == "checked_tar" and not ok:
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())

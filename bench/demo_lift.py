"""Check that the demo's GRPO stage lifts greedy validation accuracy over its SFT model, per seed.

For seeds 0, 1 and 2, runs ``configs/demo/grpo.yaml`` from the demo SFT model (``models/demo-sft``; made first
when missing, as the demo does) with its rewards (accuracy + format + gated TAR), validating on all the demo's
validation clips at step 0 (the SFT model) and after the last step, and prints per seed::

    seed 0: SFT 0.640 -> GRPO 0.875 on 200 clips, lift +0.235 (± 0.041) PASS (needs ≥ 0.15)

Exit status 0 when every seed passes. These are the ``gated_tar`` runs of ``bench/ablation.py`` (same folders, so
either script reuses the other's finished runs). Not a timed test: run it by hand (a few minutes on 2 cores)::

    python bench/demo_lift.py [--out runs/ablation] [--min-lift 0.15] [--seeds 0 1 2]
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
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--min-lift", type=float, default=0.15)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    return ablation.main(
        ["--variants", "gated_tar", "--seeds", *map(str, args.seeds), "--out", args.out]
        + ["--threads", str(args.threads), "--check-lift", str(args.min_lift)]
    )


if __name__ == "__main__":
    sys.exit(main())

"""The paper's reward ablation, in small: GRPO from the demo's SFT model with and without the temporal reward.

Runs ``configs/demo/grpo.yaml`` (the demo's GRPO stage, from ``models/demo-sft``) once per seed and variant:

* ``checked_tar``: the demo's rewards as the config gives them: accuracy + format + the gated, *checked* temporal
  alignment reward (``TemporalAlignmentReward(rule="checked", complete=True)``: a time window of the clip's
  length, no match across a closed-attribute contradiction, nor for a claim leaving out an attribute of its
  truth), all weight 1;
* ``gated_tar``: the same with the reference's temporal alignment reward (``rule="reference"``: ±2 s, MiniLM
  cosine ≥ 0.75), the Video-R2 set: the ablation row that shows what the check does;
* ``acc_format`` (opt-in, ``--variants checked_tar gated_tar acc_format``): accuracy + format only (the TAR weight
  is 0: it is still computed and logged, never rewarded).

The tables also give claim truth (``claims_true``: the share of all timestamped claims true against the ground
truth; ``claims_complete``: true and stating every attribute the truth states, on the demo time, colour and shape;
``with_claim``: completions carrying a timestamped claim).

Each run validates on all the demo's validation clips before its first step (the SFT model) and after its last,
and every 100 steps, with greedy generation scored by accuracy (and its standard error), format, TAC (both
variants) and TAR, at the training layout (``val/*``) and at every other validated layout (``val/4fps/*``). Each run
has its folder ``<out>/<variant>-seed<seed>-threads<threads>`` (float rounding, hence sampling, hence the whole run,
depends on the thread count). The script writes a Markdown table (``<out>/ablation-threads<threads>.md``: mean and
spread over seeds after GRPO, the lowest TAC agreement seen during each run, then every run) and a PNG of the
validation curves.

``--check-lift D`` also prints, per seed of the ``--check-variant`` runs (default ``checked_tar``), PASS when, at the
training layout, the greedy validation accuracy after GRPO exceeds the SFT model's by at least ``D``, at least
``--min-claims`` of all timestamped claims are true and that share rose by at least ``--min-claims-lift``, and at
least ``--min-with-claim`` of completions carry a claim; at every other validated layout accuracy stays within
``--max-drop`` of the SFT model's with a format of at least ``--min-format`` (``bench/demo_lift.py`` is this check
with the demo's settings, for the demo's reward and the reference TAR).

Usage (from the repository root; the demo data, tiny model and SFT model are made first when missing)::

    python bench/ablation.py --seeds 0 1 2 --threads 2 --out runs/ablation --plot docs/images/ablation.png
    python bench/ablation.py --report-only --threads 2 --out runs/ablation   # tables and plot from finished runs
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

CONFIG = "configs/demo/grpo.yaml"
VARIANTS = {
    "gated_tar": {"accuracy": 1.0, "format": 1.0, "temporal": 1.0},
    "acc_format": {"accuracy": 1.0, "format": 1.0, "temporal": 0.0},
    "checked_tar": {"accuracy": 1.0, "format": 1.0, "temporal": 1.0},
}
DEFAULT_VARIANTS = ("checked_tar", "gated_tar")
#: Variants whose temporal reward is not the config's: the rewards block written to the run folder and passed after it.
REWARDS = {
    "gated_tar": {
        "accuracy": {"class_path": "lit_videor2.rewards.AccuracyReward"},
        "format": {"class_path": "lit_videor2.rewards.FormatReward"},
        # every checked-only option named: a YAML override merges into the config's init_args
        "temporal": {
            "class_path": "lit_videor2.rewards.TemporalAlignmentReward",
            "init_args": {"rule": "reference", "complete": False},
        },
    }
}
METRICS = (
    "accuracy",
    "format",
    "tac_consistency",
    "tac_agreement",
    "tar",
    "claims_true",
    "claims_complete",
    "with_claim",
)
LABELS = {
    "accuracy": "Acc %",
    "format": "format %",
    "tac_consistency": "TAC cons. %",
    "tac_agreement": "TAC agree %",
    "tar": "TAR",
    "claims_true": "claims true %",
    "claims_complete": "claims complete %",
    "with_claim": "with claim %",
}


def prepare_demo(config: str) -> None:
    """Make the demo data, tiny model and SFT model the GRPO config names, if missing (its PrepareDemoAssets)."""
    from lit_videor2.demo import PrepareDemoAssets

    cfg = yaml.safe_load(Path(config).read_text())
    for cb in cfg["trainer"].get("callbacks") or []:
        if cb["class_path"].endswith("PrepareDemoAssets"):
            PrepareDemoAssets(**cb.get("init_args", {})).prepare()


def run_folder(out: Path, variant: str, seed: int, threads: int) -> Path:
    """``<out>/<variant>-seed<seed>-threads<threads>``: float rounding, hence the run, depends on the thread count."""
    return out / f"{variant}-seed{seed}-threads{threads}"


def run_one(variant: str, seed: int, out: Path, steps: int | None, threads: int) -> Path:
    """One GRPO run; returns its folder (skipped when its metrics are already there)."""
    folder = run_folder(out, variant, seed, threads)
    if (folder / "done.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    override = []
    if variant in REWARDS:
        path = folder / "rewards.yaml"
        path.write_text(yaml.safe_dump({"model": {"init_args": {"rewards": {"rewards": REWARDS[variant]}}}}))
        override = ["--config", str(path)]
    cmd = [
        sys.executable, "-m", "lit_videor2", "fit", "--config", CONFIG, *override,
        "--seed_everything", str(seed),
        "--trainer.default_root_dir", str(folder),
        "--trainer.logger.init_args.save_dir", str(folder),
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_checkpointing", "false",
        "--trainer.callbacks", json.dumps([{"class_path": "lit_videor2.modules.callbacks.ValidateAtStart"}]),
        "--model.init_args.rewards.weights", json.dumps(VARIANTS[variant]),
        "--model.init_args.log_completions_every", "0",
    ]  # fmt: skip
    if steps is not None:
        cmd += ["--trainer.max_steps", str(steps), "--trainer.val_check_interval", str(steps)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(folder / "run.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
    (folder / "done.json").write_text(json.dumps({"seconds": time.perf_counter() - t0, "cmd": cmd}) + "\n")
    print(f"{folder}: {time.perf_counter() - t0:.0f} s", flush=True)
    return folder


def read_curve(folder: Path) -> list[dict[str, float]]:
    """``val/*`` (prefix dropped) of every validation of a run, in order, with ``step``; the first is step 0."""
    (path,) = sorted((folder / "logs").glob("version_*/metrics.csv"))[-1:]
    with path.open() as f:
        rows = [
            {k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f) if r.get("val/accuracy", "") != ""
        ]
    if len(rows) < 2:
        raise RuntimeError(f"{path}: expected a validation at the start and at the end, found {len(rows)}")
    return [
        {"step": r["step"], **{k.removeprefix("val/"): v for k, v in r.items() if k.startswith("val/")}} for r in rows
    ]


def read_validation(folder: Path) -> tuple[dict[str, float], dict[str, float]]:
    """``val/*`` of the first (step 0, the SFT model) and the last validation of a run."""
    curve = read_curve(folder)
    return curve[0], curve[-1]


def mean_spread(values: list[float]) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "–"
    m = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    digits = 3 if abs(m) < 2 else 1
    return f"{m:.{digits}f} ± {sd:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def other_layouts(curve: list[dict[str, float]]) -> list[str]:
    """Names of the extra validation sets of a run (``val/<name>/accuracy`` logged, e.g. ``4fps``)."""
    return sorted({k.removesuffix("/accuracy") for k in curve[0] if k.endswith("/accuracy")})


def _cell(m: str, v: float) -> str:
    return f"{v:.3f}" if m == "tar" else f"{v:.1f}"


def report(out: Path, seeds: list[int], plot: Path | None, threads: int) -> str:
    """The Markdown tables of the finished runs under ``out`` (and the plot)."""
    present = [v for v in VARIANTS if v in DEFAULT_VARIANTS or all(_done(out, v, s, threads) for s in seeds)]
    curves = {v: {s: read_curve(run_folder(out, v, s, threads)) for s in seeds} for v in present}
    results = {v: {s: (c[0], c[-1]) for s, c in curves[v].items()} for v in present}
    start = next(iter(results[present[0]].values()))[0]
    metrics = list(METRICS) + [f"{name}/{m}" for name in other_layouts([start]) for m in ("accuracy", "format")]
    labels = {**LABELS, **{m: f"{m.split('/')[0]} {LABELS[m.split('/')[1]]}" for m in metrics if "/" in m}}
    head = "| model | n | " + " | ".join(labels[m] for m in metrics) + " | lowest TAC agree % during the run |"
    lines = [
        f"Mean ± sample std (min–max) over seeds {', '.join(map(str, seeds))}, {threads} thread(s) per run; greedy, "
        f"{int(start['n'])} validation clips; standard error of one accuracy ≈ {start['accuracy_se']:.1f} points.",
        "",
        head,
        "|" + "---|" * (len(metrics) + 3),
        f"| SFT model (GRPO step 0) | {int(start['n'])} | "
        + " | ".join(_cell(m, start.get(m, math.nan)) for m in metrics)
        + " | – |",
    ]
    for v in present:
        ends = [results[v][s][1] for s in seeds]
        lines.append(
            f"| GRPO, {v} | {int(ends[0]['n'])} | "
            + " | ".join(mean_spread([e.get(m, math.nan) for e in ends]) for m in metrics)
            + f" | {mean_spread([min(r['tac_agreement'] for r in curves[v][s]) for s in seeds])} |"
        )
    lines += [
        "",
        "Per run (after GRPO; accuracy ± its standard error):",
        "",
        "| variant | seed | " + head.removeprefix("| model | "),
    ]
    lines.append("|" + "---|" * (len(metrics) + 4))
    for v in present:
        for s in seeds:
            e = results[v][s][1]
            cells = [f"{e['accuracy']:.1f} ± {e['accuracy_se']:.1f}"]
            cells += [_cell(m, e.get(m, math.nan)) for m in metrics[1:]]
            low = min(r["tac_agreement"] for r in curves[v][s])
            lines.append(f"| {v} | {s} | {int(e['n'])} | " + " | ".join(cells) + f" | {low:.1f} |")
    text = "\n".join(lines) + "\n"
    (out / f"ablation-threads{threads}.md").write_text(text)
    if plot is not None:
        _plot(curves, seeds, plot)
    return text


def _done(out: Path, variant: str, seed: int, threads: int) -> bool:
    return (run_folder(out, variant, seed, threads) / "done.json").is_file()


def _plot(curves, seeds, path: Path) -> None:
    """Validation curves over GRPO steps: accuracy, TAR and TAC agreement; thin lines seeds, thick the mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("accuracy", "greedy val accuracy %"), ("tar", "val TAR"), ("tac_agreement", "val TAC agreement %")]
    fig, axes = plt.subplots(1, len(panels), figsize=(12, 3.4))
    for ax, (m, label) in zip(axes, panels):
        for i, v in enumerate(curves):
            runs = [curves[v][s] for s in seeds]
            for run in runs:
                ax.plot([r["step"] for r in run], [r.get(m, math.nan) for r in run], color=f"C{i}", lw=0.7, alpha=0.5)
            steps = [r["step"] for r in runs[0]]
            mean = [statistics.fmean(run[k].get(m, math.nan) for run in runs) for k in range(len(steps))]
            ax.plot(steps, mean, "o-", color=f"C{i}", lw=2, label=v)
        ax.set(xlabel="GRPO step (0 = the SFT model)", title=label)
    axes[0].legend(fontsize="small", loc="lower right")
    fig.suptitle(f"GRPO from the demo SFT model, {len(seeds)} seeds (thin: seeds, thick: mean)", fontsize="medium")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def check_lift(
    out: Path,
    seeds: list[int],
    delta: float,
    threads: int,
    max_drop: float,
    min_format: float,
    variant: str = "checked_tar",
    min_claims: float = 0.5,
    min_claims_lift: float = 0.25,
    min_with_claim: float = 0.95,
) -> bool:
    """PASS/FAIL per seed of the ``variant`` runs (fractions throughout). At the training layout (``val/*``): greedy
    validation accuracy after GRPO − the SFT model's ≥ ``delta``; the share of all timestamped claims that are true
    and state every attribute their ground truth states (``claims_complete``: on the demo, the time, the colour and
    the shape, all right) ≥ ``min_claims`` and ≥ the SFT model's + ``min_claims_lift``; completions with a claim ≥
    ``min_with_claim``. At every other validated layout (``val/<name>/*``): accuracy at most ``max_drop`` below the
    SFT model's and format ≥ ``min_format``; its claim truth is printed beside."""
    ok = True
    for s in seeds:
        curve = read_curve(run_folder(out, variant, s, threads))
        first, last = curve[0], curve[-1]
        lift = (last["accuracy"] - first["accuracy"]) / 100
        se = math.hypot(first["accuracy_se"], last["accuracy_se"]) / 100
        c0, c1, with_claim = first["claims_complete"] / 100, last["claims_complete"] / 100, last["with_claim"] / 100
        passed = lift >= delta and c1 >= min_claims and c1 - c0 >= min_claims_lift and with_claim >= min_with_claim
        line = (
            f"{variant} threads {threads} seed {s}: accuracy SFT {first['accuracy'] / 100:.3f} -> GRPO "
            f"{last['accuracy'] / 100:.3f} on {int(last['n'])} clips, lift {lift:+.3f} (± {se:.3f}); claims true and complete "
            f"{c0:.3f} -> {c1:.3f}, with a claim {with_claim:.3f} {'PASS' if passed else 'FAIL'} (needs lift ≥ "
            f"{delta}, claims true ≥ {min_claims} and ≥ SFT + {min_claims_lift}, with a claim ≥ {min_with_claim})"
        )
        for name in other_layouts(curve):
            a0, a1, fmt = first[f"{name}/accuracy"] / 100, last[f"{name}/accuracy"] / 100, last[f"{name}/format"] / 100
            good = a1 - a0 >= -max_drop and fmt >= min_format
            passed &= good
            k0, k1 = (
                first.get(f"{name}/claims_complete", math.nan) / 100,
                last.get(f"{name}/claims_complete", math.nan) / 100,
            )
            line += (
                f"; {name}: accuracy {a0:.3f} -> {a1:.3f}, claims true {k0:.3f} -> {k1:.3f}, format {fmt:.3f} "
                f"{'PASS' if good else 'FAIL'} (needs accuracy ≥ SFT − {max_drop}, format ≥ {min_format})"
            )
        ok &= passed
        print(line)
    return ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(DEFAULT_VARIANTS))
    p.add_argument("--out", type=Path, default=Path("runs/ablation"))
    p.add_argument("--steps", type=int, default=None, help="GRPO steps (default: the config's)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (each on --threads threads)")
    p.add_argument("--threads", type=int, default=2, help="torch threads per run")
    p.add_argument("--plot", type=Path, default=None, help="PNG of the ablation (e.g. docs/images/ablation.png)")
    p.add_argument("--check-lift", type=float, default=None, help="print PASS/FAIL per seed for this accuracy lift")
    p.add_argument("--check-variant", default="checked_tar", choices=list(VARIANTS), help="--check-lift: runs checked")
    p.add_argument("--min-claims", type=float, default=0.5, help="--check-lift: lowest claims true after GRPO")
    p.add_argument("--min-claims-lift", type=float, default=0.25, help="--check-lift: lowest rise of claims true")
    p.add_argument("--min-with-claim", type=float, default=0.95, help="--check-lift: lowest share with a claim")
    p.add_argument("--max-drop", type=float, default=0.05, help="--check-lift: largest drop at other layouts")
    p.add_argument("--min-format", type=float, default=0.95, help="--check-lift: lowest format at other layouts")
    p.add_argument("--report-only", action="store_true", help="only tabulate finished runs")
    args = p.parse_args(argv)
    if not args.report_only:
        prepare_demo(CONFIG)
        jobs = [(v, s) for s in args.seeds for v in args.variants]
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(lambda vs: run_one(vs[0], vs[1], args.out, args.steps, args.threads), jobs))
    if set(DEFAULT_VARIANTS) <= set(args.variants):
        print(report(args.out, args.seeds, args.plot, args.threads))
    if args.check_lift is not None:
        ok = check_lift(
            args.out, args.seeds, args.check_lift, args.threads, args.max_drop, args.min_format,
            args.check_variant, args.min_claims, args.min_claims_lift, args.min_with_claim,
        )  # fmt: skip
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

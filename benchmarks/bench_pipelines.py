"""Benchmark: the three pipelines side by side over several seeds, with the paper's two ratios.

Runs a scenario (its own sweep replaced by one over ``--seeds``) and prints, per pipeline,
the mean and standard deviation over seeds of: average representation length, bits on air
per item, PSNR of semantic items, share meeting fidelity, semantic impact (all items and
semantic items), language complexity. Then the paper's comparisons: how much shorter the
contrastive representation is than the vanilla one (paper: 57.22%), and how much higher the
contrastive semantic impact is (paper: 71.9%).

Usage: python benchmarks/bench_pipelines.py scenarios/bench-digits.toml --seeds 1 2 3 [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from simulator.context import RunContext, default_cache_dir, resolve_device
from simulator.scenario import load_scenario, parse_scenario
from simulator.runner import run_scenario

METRICS = [("avg_representation_bits", "avg |Z| (bits)"), ("avg_bits_on_air", "bits on air / item"),
           ("avg_psnr_semantic_db", "PSNR semantic (dB)"), ("fidelity_share", "share meeting fidelity"),
           ("semantic_impact", "impact, all items"), ("semantic_impact_semantic", "impact, semantic items"),
           ("language_complexity_nats", "language complexity (nats)")]


def table(summary: pd.DataFrame) -> str:
    rows = []
    for pipeline, g in summary.groupby("pipeline", sort=False):
        row = {"pipeline": pipeline}
        for col, name in METRICS:
            row[name] = f"{g[col].mean():.4g} ± {g[col].std(ddof=1) if len(g) > 1 else 0.0:.2g}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("pipeline").T.to_string()


def ratios(summary: pd.DataFrame) -> str:
    s = summary.set_index(["seed", "pipeline"])
    out = []
    try:
        v = s.xs("vanilla-semantic", level="pipeline")
        c = s.xs("contrastive", level="pipeline")
    except KeyError:
        return "(both semantic pipelines are needed for the paper's ratios)"
    shorter = 100 * (1 - c["avg_representation_bits"] / v["avg_representation_bits"])
    higher = 100 * (c["semantic_impact"] / v["semantic_impact"] - 1)
    out.append(f"contrastive representation shorter than vanilla: {shorter.mean():.2f}% ± {shorter.std(ddof=1):.2f} "
               f"(per seed: {', '.join(f'{x:.1f}' for x in shorter)}; paper: 57.22%)")
    out.append(f"contrastive semantic impact higher than vanilla: {higher.mean():.2f}% ± {higher.std(ddof=1):.2f} "
               f"(per seed: {', '.join(f'{x:.1f}' for x in higher)}; paper: 71.9%)")
    if "classical" in summary["pipeline"].values:
        k = s.xs("classical", level="pipeline")
        vs = 100 * (c["semantic_impact"] / k["semantic_impact"] - 1)
        out.append(f"contrastive semantic impact vs classical: {vs.mean():+.2f}% ± {vs.std(ddof=1):.2f}")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    base = load_scenario(args.scenario)
    data = base.resolved()
    data["sweep"] = {"seed": args.seeds}
    scenario = parse_scenario(data, where=args.scenario)
    ctx = RunContext(seed=scenario.seed, device=resolve_device(scenario.device), cache_dir=default_cache_dir(), progress=False)
    t0 = time.perf_counter()
    out = run_scenario(scenario, ctx, out=Path(args.out) if args.out else Path("results") / "bench" / scenario.name,
                       fresh=True)
    wall = time.perf_counter() - t0
    summary = pd.read_csv(out / "summary.csv")
    print(f"{scenario.name}: seeds {args.seeds}, wall {wall:.0f} s, results {out}\n")
    print(table(summary))
    print()
    print(ratios(summary))


if __name__ == "__main__":
    main()

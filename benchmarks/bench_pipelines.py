"""Benchmark: the pipelines side by side over several seeds, with the paper's two ratios.

Runs a scenario (its own sweep replaced by one over ``--seeds``) and prints, per pipeline,
the mean and standard deviation over seeds of: average representation length (semantic items),
system bits per item (all items), bits on air per item, PSNR of semantic items, MS-SSIM, share
meeting fidelity, semantic impact (all items and per semantic representation), language
complexity per item. Then the paper's comparisons, contrastive against vanilla-semantic and
against vanilla-fallback: how much shorter the representation is (paper: 57.22%), and how
much higher the semantic impact (paper: 71.9%).

With ``--rd`` the run is ``semsim rd``'s (its default operating points,
:data:`simulator.rd.DEFAULT_VALUES` of ``fidelity.psnr_db``, for every seed): the tables are then at the scenario's own target and the BD-rate
table of the curves (mean over seeds) follows.

Usage: python benchmarks/bench_pipelines.py scenarios/bench-digits.toml --seeds 1 2 3 [--rd] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from simulator.context import RunContext, default_cache_dir, resolve_device
from simulator.rd import DEFAULT_KEY, DEFAULT_VALUES, run_rd
from simulator.runner import run_scenario
from simulator.scenario import load_scenario, parse_scenario

METRICS = [("avg_representation_bits", "avg |Z| (bits, semantic items)"),
           ("system_bits_per_item", "system bits / item (all items)"), ("avg_bits_on_air", "bits on air / item"),
           ("avg_psnr_semantic_db", "PSNR semantic (dB)"), ("psnr_all_db", "PSNR all items (dB)"),
           ("msssim_all", "MS-SSIM all items"), ("fidelity_share", "share meeting fidelity"),
           ("semantic_impact", "impact, all items"), ("semantic_impact_semantic", "impact per semantic repr."),
           ("language_complexity_per_item_nats", "language complexity / item (nats)")]


def table(summary: pd.DataFrame) -> str:
    rows = []
    for pipeline, g in summary.groupby("pipeline", sort=False):
        row = {"pipeline": pipeline}
        for col, name in METRICS:
            row[name] = f"{g[col].mean():.4g} ± {g[col].std(ddof=1) if len(g) > 1 else 0.0:.2g}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("pipeline").T.to_string()


def _pm(x: pd.Series) -> str:
    return f"{x.mean():+.2f}% ± {x.std(ddof=1) if len(x) > 1 else 0.0:.2f} (per seed: {', '.join(f'{v:+.1f}' for v in x)})"


def ratios(summary: pd.DataFrame) -> str:
    s = summary.set_index(["seed", "pipeline"])
    names = set(summary["pipeline"])
    if "contrastive" not in names:
        return "(the contrastive pipeline is needed for the paper's ratios)"
    c = s.xs("contrastive", level="pipeline")
    out = []
    for ref in ("vanilla-semantic", "vanilla-fallback", "classical"):
        if ref not in names:
            continue
        r = s.xs(ref, level="pipeline")
        out.append(f"contrastive against {ref}:")
        if ref != "classical":
            out.append("  representation shorter (semantic items; paper: 57.22%): "
                       + _pm(100 * (1 - c["avg_representation_bits"] / r["avg_representation_bits"])))
        out.append("  system bits per item shorter (all items):               "
                   + _pm(100 * (1 - c["system_bits_per_item"] / r["system_bits_per_item"])))
        out.append("  semantic impact higher (all items; paper: 71.9%):        "
                   + _pm(100 * (c["semantic_impact"] / r["semantic_impact"] - 1)))
        if ref != "classical":
            out.append("  impact per semantic representation higher:             "
                       + _pm(100 * (c["semantic_impact_semantic"] / r["semantic_impact_semantic"] - 1)))
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--rd", action="store_true", help="run over the operating points of semsim rd and print BD-rates")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    base = load_scenario(args.scenario)
    data = base.resolved()
    data["sweep"] = {"seed": args.seeds}
    scenario = parse_scenario(data, where=args.scenario)
    ctx = RunContext(seed=scenario.seed, device=resolve_device(scenario.device), cache_dir=default_cache_dir(), progress=False)
    t0 = time.perf_counter()
    where = Path(args.out) if args.out else Path("results") / "bench" / (scenario.name + ("-rd" if args.rd else ""))
    if args.rd:
        out = run_rd(scenario, ctx, DEFAULT_KEY, list(DEFAULT_VALUES), out=where)
    else:
        out = run_scenario(scenario, ctx, out=where, fresh=True)
    wall = time.perf_counter() - t0
    summary = pd.read_csv(out / "summary.csv")
    if args.rd:
        summary = summary[summary[DEFAULT_KEY] == base.fidelity.psnr_db]
    print(f"{scenario.name}: seeds {args.seeds}, wall {wall:.0f} s, results {out}\n")
    print(f"at fidelity.psnr_db = {base.fidelity.psnr_db:g} dB:")
    print(table(summary))
    print()
    print(ratios(summary))
    if args.rd:
        bd = pd.read_csv(out / "bd_rate.csv")
        print("\nBD-rate (rate = system bits per item; negative: the pipeline needs fewer bits than the reference)")
        print(bd.to_string(index=False))


if __name__ == "__main__":
    main()

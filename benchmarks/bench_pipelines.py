"""Benchmark: the pipelines side by side over several seeds on disjoint items, with the paper's
two ratios and 95 % intervals.

Each seed runs the scenario on its own part of the source (``source.folds`` = the number of
seeds, ``source.fold`` = the seed's position; ``--same-items`` runs every seed on the same
items instead, and its intervals, which resample each seed's items on their own, are then too
narrow), so seeds differ in their items as well as their randomness. Per pipeline it
prints the mean of: average representation length (semantic items), system bits per item
(all items), bits on air per item, PSNR of semantic items and over all items (PSNR of the
mean MSE), MS-SSIM, share meeting fidelity, semantic impact (all items, and per semantic
representation), each with a 95 % interval from a two-level bootstrap over seeds and the
items in them (:func:`simulator.paired.seeds_and_items_means`). Then the paper's comparisons,
contrastive against vanilla-semantic, vanilla-fallback and classical, with intervals from the
same bootstrap of the items both pipelines coded (paired: the same resampled items for both):
how much shorter the representation is (the paper's unpaired averages over each pipeline's
own semantic items, 57.22 % in the paper, and paired on the items both send semantically),
the system bits per item (paired, all items) and the semantic impact (paired, all items;
paper 71.9 %).

``--speeds F ...`` runs every seed again with both nodes at each FLOP/s (the models, streams
and codings come from the cache: only the link and the ledger run again) and prints the
impact comparisons at each speed, with ``impact_vs_speed.png`` in the output folder: where the
sign of "impact higher" changes.

With ``--rd`` each seed's run is ``semsim rd``'s (its default operating points,
:data:`simulator.rd.DEFAULT_VALUES` of ``fidelity.psnr_db``, or ``--targets``): the tables are
then at the scenario's own target (which must be among them) and the BD-rates of each seed
follow, with their mean and range and the operating points each was computed on.

Usage: python benchmarks/bench_pipelines.py scenarios/bench-digits.toml [--seeds 1 2 3 4 5]
       [--speeds 1e9 1e10 1e11 1e12] [--rd [--targets 14 17 ...]] [--same-items] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.context import RunContext, default_cache_dir, resolve_device
from simulator.metrics import psnr_from_mse
from simulator.paired import interval, seeds_and_items_means
from simulator.rd import DEFAULT_KEY, DEFAULT_VALUES, run_rd
from simulator.runner import run_scenario
from simulator.scenario import load_scenario, parse_scenario

RESAMPLES = 2000
REFERENCES = ("vanilla-semantic", "vanilla-fallback", "classical")


def _column(items: pd.DataFrame, what: str, header_bits: float) -> np.ndarray:
    """Per item, the value a summary metric averages (NaN: the item does not count in it)."""
    digital = (items["bits_on_air"] > 0) & items["sent"].astype(bool)
    semantic = items["route"] == "semantic"
    if what == "representation_bits":
        return np.where(semantic & digital, items["representation_bits"], np.nan)
    if what == "system_bits":
        return np.where(digital, items["representation_bits"] + header_bits * items["packets"], np.nan)
    if what == "psnr_semantic":
        ok = semantic & items["delivered"].astype(bool) & np.isfinite(items["psnr_db"])
        return np.where(ok, items["psnr_db"], np.nan)
    if what == "semantic_impact_semantic":
        return np.where(semantic, items["semantic_impact"], np.nan)
    return items[what].astype(float).to_numpy()


#: (label, items column or derived value, how the bootstrap means become the figure)
METRICS = [("avg |Z| (bits, semantic items)", "representation_bits", None),
           ("system bits / item (all items)", "system_bits", None),
           ("bits on air / item", "bits_on_air", None),
           ("PSNR semantic (dB)", "psnr_semantic", None),
           ("PSNR all items (dB, of the mean MSE)", "mse", "psnr"),
           ("MS-SSIM all items", "msssim", None),
           ("share meeting fidelity", "meets_fidelity", None),
           ("impact, all items", "semantic_impact", None),
           ("impact per semantic repr.", "semantic_impact_semantic", None)]


def _fmt(value: float, lo: float, hi: float) -> str:
    return f"{value:.4g} [{lo:.4g}, {hi:.4g}]"


def _psnr(v):
    return np.array([psnr_from_mse(x) for x in np.atleast_1d(v)])


def table(items: list[pd.DataFrame], header_bits: float, seed: int = 0) -> str:
    """Per pipeline and metric: the pooled mean over seeds and items with its 95 % interval."""
    names = list(dict.fromkeys(items[0]["pipeline"]))
    rows = {}
    for p, name in enumerate(names):
        groups = [np.stack([_column(it[it["pipeline"] == name], col, header_bits) for _, col, _ in METRICS], axis=1)
                  for it in items]
        boot = seeds_and_items_means(groups, np.random.default_rng([seed, p]), RESAMPLES)
        with warnings.catch_warnings():  # a column no item of the pipeline has (classical: |Z|) is NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            pooled = np.nanmean(np.concatenate(groups), axis=0)
        col = {}
        for m, (label, _, how) in enumerate(METRICS):
            v, b = pooled[m], boot[:, m]
            if how == "psnr":
                v, b = _psnr(v)[0], _psnr(b)
            col[label] = "-" if np.isnan(v) else _fmt(v, *interval(b))
        rows[name] = col
    return pd.DataFrame(rows).to_string()


def _pair(items: list[pd.DataFrame], test: str, ref: str, what: str, header_bits: float, *, both_semantic=False):
    """Per seed an ``(n, 2)`` array of the test's and the reference's values on the same items."""
    out = []
    for it in items:
        a = it[it["pipeline"] == test].set_index("item").sort_index()
        b = it[it["pipeline"] == ref].set_index("item").sort_index()
        x, y = _column(a, what, header_bits), _column(b, what, header_bits)
        if both_semantic:
            keep = ~np.isnan(x) & ~np.isnan(y)
            x, y = x[keep], y[keep]
        out.append(np.stack([x, y], axis=1))
    return out


#: The paper's comparisons: (label, items value, "shorter" or "higher", pairing). Pairing:
#: None = each pipeline's own semantic items (the paper's unpaired averages, resampled on the
#: same items), True = the items both send semantically, False = every item.
RATIOS = [("|Z| shorter, unpaired own semantic items (paper 57.22%)", "representation_bits", "shorter", None),
          ("|Z| shorter, paired on items both send semantically", "representation_bits", "shorter", True),
          ("system bits per item shorter (all items, paired)", "system_bits", "shorter", False),
          ("semantic impact higher (all items, paired; paper 71.9%)", "semantic_impact", "higher", False)]


def ratio(items: list[pd.DataFrame], ref: str, k: int, header_bits: float, seed: int = 0) -> tuple[float, float, float, int]:
    """Contrastive against ``ref`` on :data:`RATIOS` ``[k]``: ``(percent, low, high, item pairs)``,
    the interval from the seed-and-item bootstrap (its generator keyed by the reference and
    the ratio, so every report of the same ratio gives the same interval)."""
    _, what, sense, both = RATIOS[k]
    groups = _pair(items, "contrastive", ref, what, header_bits, both_semantic=bool(both))
    boot = seeds_and_items_means(groups, np.random.default_rng([seed, REFERENCES.index(ref), k]), RESAMPLES)
    pooled = np.nanmean(np.concatenate(groups), axis=0)
    sign = -1.0 if sense == "shorter" else 1.0
    lo, hi = sorted(sign * 100 * (v - 1) for v in interval(boot[:, 0] / boot[:, 1]))
    n = int(sum(np.sum(~np.isnan(g[:, 0])) for g in groups))  # the test pipeline's items in the figure
    return sign * 100 * (pooled[0] / pooled[1] - 1), lo, hi, n


def comparisons(items: list[pd.DataFrame], header_bits: float, seed: int = 0, only_impact: bool = False) -> str:
    """Contrastive against each reference: the paper's ratios with 95 % seed-and-item intervals."""
    names = set(items[0]["pipeline"])
    if "contrastive" not in names:
        return "(the contrastive pipeline is needed for the paper's ratios)"
    lines = []
    for ref in (x for x in REFERENCES if x in names):
        lines.append(f"contrastive against {ref}:")
        for k, (label, what, _, _) in enumerate(RATIOS):
            if (only_impact and what != "semantic_impact") or (ref == "classical" and what == "representation_bits"):
                continue
            rel, lo, hi, n = ratio(items, ref, k, header_bits, seed)
            lines.append(f"  {label:58s} {rel:+.2f}% [{lo:+.2f}, {hi:+.2f}]  ({n} items of contrastive)")
    return "\n".join(lines)


def impact_figure(rows: pd.DataFrame, path: Path) -> None:
    """Contrastive's semantic impact over each reference's (a ratio, log scale; above 1:
    contrastive's is higher) against the nodes' FLOP/s, with the 95 % intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for ref, g in rows.groupby("reference", sort=False):
        g = g.sort_values("flop_per_s")
        ax.plot(g["flop_per_s"], 1 + g["higher"] / 100, marker="o", label=f"against {ref}")
        ax.fill_between(g["flop_per_s"], 1 + g["low"] / 100, 1 + g["high"] / 100, alpha=0.2)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("teacher and apprentice speed (FLOP/s)")
    ax.set_ylabel("contrastive's impact / the reference's")
    ax.set_title("semantic impact against node speed\n(95 % intervals over seeds and items; above 1: contrastive higher)",
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _speed_rows(items: list[pd.DataFrame], speed: float, seed: int) -> list[dict]:
    names = set(items[0]["pipeline"])
    k = [r[1] for r in RATIOS].index("semantic_impact")
    rows = []
    for ref in (x for x in REFERENCES if x in names and "contrastive" in names):
        rel, lo, hi, _ = ratio(items, ref, k, 0.0, seed)
        rows.append({"flop_per_s": speed, "reference": ref, "higher": rel, "low": lo, "high": hi})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--same-items", action="store_true", help="every seed on the same items (default: disjoint parts)")
    ap.add_argument("--speeds", type=float, nargs="*", default=[], help="node FLOP/s at which to repeat the impact")
    ap.add_argument("--rd", action="store_true", help="run over the operating points of semsim rd and print BD-rates")
    ap.add_argument("--targets", type=float, nargs="+", default=list(DEFAULT_VALUES),
                    help="with --rd: the fidelity.psnr_db operating points (dB; default: semsim rd's)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    base = load_scenario(args.scenario)
    if args.rd and base.fidelity.psnr_db not in args.targets:
        ap.error("--targets must include the scenario's fidelity.psnr_db (the tables are read there)")
    where = Path(args.out) if args.out else Path("results") / "bench" / (base.name + ("-rd" if args.rd else ""))
    t0 = time.perf_counter()

    def scenario_of(j: int, seed: int, speed: float | None = None):
        data = base.resolved()
        data.pop("sweep", None)
        data["seed"] = seed
        if not args.same_items:
            data["source"] = {**data["source"], "folds": len(args.seeds), "fold": j}
        if speed is not None:
            data["nodes"] = {"teacher_flop_per_s": speed, "apprentice_flop_per_s": speed}
        return parse_scenario(data, where=args.scenario)

    items, bd = [], []
    for j, seed in enumerate(args.seeds):
        sc = scenario_of(j, seed)
        ctx = RunContext(seed=sc.seed, device=resolve_device(sc.device), cache_dir=default_cache_dir(), progress=False)
        if args.rd:
            out = run_rd(sc, ctx, DEFAULT_KEY, args.targets, out=where / f"seed-{seed}", fresh=True)
            it = pd.read_csv(out / "items.csv")
            it = it[it[DEFAULT_KEY] == base.fidelity.psnr_db]
            bd.append(pd.read_csv(out / "bd_rate.csv").assign(seed=seed))
        else:
            out = run_scenario(sc, ctx, out=where / f"seed-{seed}", fresh=True)
            it = pd.read_csv(out / "items.csv")
        items.append(it)
        print(f"seed {seed}: {len(it) // it['pipeline'].nunique()} items, {out}", flush=True)
    wall = time.perf_counter() - t0
    header = float(base.link.header_bits)
    split = "the same items" if args.same_items else f"disjoint parts (source.folds = {len(args.seeds)})"
    print(f"\n{base.name}: seeds {args.seeds} on {split}, wall {wall:.0f} s, results {where}\n")
    print(f"at fidelity.psnr_db = {base.fidelity.psnr_db:g} dB, nodes at {base.nodes.teacher_flop_per_s:.3g} FLOP/s;"
          " mean [95% interval over seeds and items]:")
    print(table(items, header))
    print()
    print(comparisons(items, header))
    if args.rd:
        bd = pd.concat(bd, ignore_index=True)
        print("\nBD-rate per seed (rate = system bits per item; negative: fewer bits than the reference)")
        groups = bd.assign(operating_points=bd["operating_points"].fillna("").astype(str)).groupby(
            ["pipeline", "reference", "metric"], sort=False)
        agg = groups["bd_rate_percent"].agg(["mean", "min", "max", "count"]).join(
            groups["operating_points"].agg(lambda x: " | ".join(dict.fromkeys(v for v in x if v))))
        print(agg.to_string())
    if args.speeds:
        rows = _speed_rows(items, base.nodes.teacher_flop_per_s, 0)
        for speed in args.speeds:
            at = []
            for j, seed in enumerate(args.seeds):
                sc = scenario_of(j, seed, speed)
                ctx = RunContext(seed=sc.seed, device=resolve_device(sc.device), cache_dir=default_cache_dir(),
                                 progress=False)
                out = run_scenario(sc, ctx, out=where / f"seed-{seed}-speed-{speed:.0e}", fresh=True)
                at.append(pd.read_csv(out / "items.csv"))
            rows += _speed_rows(at, speed, 0)
            print(f"\nnodes at {speed:.3g} FLOP/s:")
            print(comparisons(at, header, only_impact=True))
        table_ = pd.DataFrame(rows).drop_duplicates(["flop_per_s", "reference"]).sort_values(["reference", "flop_per_s"])
        table_.to_csv(where / "impact_vs_speed.csv", index=False)
        impact_figure(table_, where / "impact_vs_speed.png")
        print(f"\n{where / 'impact_vs_speed.png'}")


if __name__ == "__main__":
    main()

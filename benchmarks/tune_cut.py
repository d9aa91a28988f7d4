"""Choice of the auto cut's rule and constants on development sources that no benchmark evaluates.

The detection suites of ``bench_preprocess.py`` (the digits; the second half of each class of the
CIFAR-10 test split) and the pipeline benchmarks are the evaluation; this script is where the
cut's rule and its two constants (:data:`~simulator.preprocess.ranking.TOLERABLE_DOUBLINGS` and
:data:`~simulator.preprocess.ranking.ITEM_FACTOR`) are chosen, on two other sources:

* ``glyphs``: the synthetic 8x8 grey letters (:mod:`simulator.sources.glyphs`, all 1800), the
  development source of small grey images (the digits are evaluated);
* ``cifar-dev``: ``--detect-items`` of the first 500 items of each class of the CIFAR-10 test
  split (``take_per_class = 500``: the zoo's training half, which no benchmark evaluates), the
  development source of photos.

It fits the pre-processor as the detection suites do (the demo scenario's ``[preprocess]``,
``[semantic]`` and ``[classical]`` tables, so ``clusters = "auto"``) for the configurations
``none``, ``noise``, ``shuffled``, ``ood`` (CIFAR-10 among glyphs, glyphs among CIFAR-10),
``noise40`` and ``shuffled40``, and evaluates every candidate rule on the training items. The
confidence (the ranking) does not depend on the cut, so one fit serves every candidate.

Candidates (``--tolerances``, ``--factors``):

* ``tolerance T, factor F``: X_m is the clusters more than T doublings of cost from the typical
  cluster; inside the boundary cluster, the items more than F times the typical learnable item's
  atypicality from the typical item (F = 0: the whole boundary cluster);
* ``cost, factor F``: X_m is the prefix of the ranking (least confident clusters first) that
  maximises the saving ``sum (J - C)`` of routing it classically (J the scoring language's cost,
  C the X_m route's, bits), the boundary cluster refined by F the same way.

Criterion. A candidate is *admissible* when, on every development run, the share of X_m is <= 0.03
with nothing injected, |share - injected| <= 0.05 for noise and shuffled at 20 and 40 %, and the
precision is >= 0.90 wherever X_m is not empty (ood included). For each factor F the admissible
tolerances form intervals on the grid; T(F) is the middle, in log, of the widest one
(``sqrt(lo hi)``: as far as the runs allow from both the learnable clusters' spread and the
memorizable clusters' distance, which another source moves). The factor is the one whose T(F)
misroutes the smallest mean share of items (memorizable items left in X_l plus learnable items
sent to X_m, over all items) on the target runs (none, noise, shuffled at 20 and 40 %; ood, not a
target of the cut, is reported beside). The cost rule is taken only if it is admissible and
misroutes less. When no candidate is admissible, the one whose worst violation of the bounds is
smallest (then the one that misroutes least) is printed with the runs it fails, and the script
says so. ``patches`` is left out: part of a patch image is a real
image, and it is not a cut target.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tune_cut.py --cache-dir /tmp/tune_cache --out tune_cut.csv

``--scoring held-out`` chooses the constants of ``preprocess.scoring = "held-out"``
(:data:`~simulator.preprocess.ranking.CUT_CONSTANTS`); ``--glyph-items`` and ``--detect-items``
give the development sources' sizes (several: one run per size; a source named ``glyphs@360``
in the tables has 360 glyphs before the injection).

Each fitted run is stored in ``--runs-dir`` (default ``results/tune_cut``), so the grid can be
evaluated again (``--evaluate-only``) without fitting.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench_preprocess import CIFAR, HELD_OUT_SKIP, demo_tables, detection_items, make_ctx
from simulator.preprocess import fit_preprocessor
from simulator.preprocess.ranking import auto_cut, boundary_cut, fit_ranking, lexicographic_confidence
from simulator.preprocess.score import cost_profile, route_cost

TUNE_CONFIGS = ("none", "noise", "shuffled", "ood", "noise40", "shuffled40")
#: The development sources (none of them is evaluated by a benchmark).
DEV_SOURCES = ("glyphs", "cifar-dev")
#: configurations whose share is a target (|share - injected| <= 0.05)
TARGETS = ("noise", "shuffled", "noise40", "shuffled40")


def fit_run(source: str, size: int | None, config: str, seed: int, args) -> dict[str, np.ndarray]:
    """Fit the pre-processor on one development run of ``size`` items before the injection
    (None: all); the arrays the candidates need, ``(N,)`` each."""
    cfg, costs = demo_tables()
    cfg = cfg.model_copy(update={"scoring": args.scoring})
    cifar = f"imagefolder:{args.cifar_dir}"
    ctx = make_ctx(seed, args)
    if source == "glyphs":
        items = detection_items("glyphs", size, config, cifar, ctx)
    else:  # the first half of each class: what the held-out benchmarks skip
        items = detection_items(cifar, size, config, "glyphs", ctx, take_per_class=HELD_OUT_SKIP)
    t0 = time.perf_counter()
    pre = fit_preprocessor(items, cfg, ctx, costs)
    print(f"[{source} {size or 'all'} {config} seed {seed}] {len(items)} items fitted in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return dict(cluster=pre.train_cluster, cost=pre.train_cost, reference_cost=pre.train_reference_cost,
                route_cost=route_cost(items.images, costs), memorizable=items.memorizable,
                num_clusters=np.array(pre.num_clusters))


def cost_rule_clusters(ranking, cluster: np.ndarray, saving: np.ndarray) -> int:
    """The number k of least confident clusters whose classical routing saves the most
    ``sum saving`` (0 when no prefix saves anything)."""
    per_cluster = np.bincount(cluster, weights=saving, minlength=ranking.num_clusters)
    gain = np.concatenate([[0.0], np.cumsum(per_cluster[np.argsort(ranking.rank)])])
    return int(np.argmax(gain))


def rank_run(run: dict[str, np.ndarray]) -> dict:
    """The stored run with its cost profile, cluster ranking and training confidence added (the
    ranking does not depend on the cut: computed once per run)."""
    profile = cost_profile(run["cost"], run["reference_cost"])
    ranking = fit_ranking(profile, run["cluster"], int(run["num_clusters"]))
    return dict(run, profile=profile, ranking=ranking,
                confidence=lexicographic_confidence(ranking, run["cluster"], profile))


def evaluate(run: dict, rule: str, factor: float) -> tuple[float, float, float]:
    """``(share of X_m, precision, share of misrouted items)`` of one candidate on one ranked run
    (:func:`rank_run`; precision NaN when X_m is empty; misrouted: memorizable items left in X_l
    and learnable items sent to X_m, over all items)."""
    cluster, profile, ranking, conf = run["cluster"], run["profile"], run["ranking"], run["confidence"]
    if rule == "cost":
        k = cost_rule_clusters(ranking, cluster, run["cost"] - run["route_cost"])
        cut = boundary_cut(ranking, cluster, profile, conf, k, factor)
    else:
        cut, _ = auto_cut(ranking, cluster, profile, conf, tolerance=float(rule), item_factor=factor)
    pred = conf < cut
    mem = run["memorizable"]
    precision = float((pred & mem).sum() / pred.sum()) if pred.any() else float("nan")
    return float(pred.mean()), precision, float((pred != mem).mean())


def violation(config: str, injected: float, share: float, precision: float) -> float:
    """How far one run is outside the bounds of the criterion (0 inside)."""
    v = 0.0
    if config == "none":
        v = max(v, share - 0.03)
    if config in TARGETS:
        v = max(v, abs(share - injected) - 0.05)
    if not np.isnan(precision):
        v = max(v, 0.90 - precision)
    return max(v, 0.0)


def evaluate_all(runs: dict, rule: str, factor: float) -> list[dict]:
    """One row per run of one candidate: share, precision, error and violation of the bounds."""
    rows = []
    for (source, config, seed), run in runs.items():
        share, precision, misrouted = evaluate(run, rule, factor)
        injected = float(run["memorizable"].mean())
        rows.append(dict(rule=rule, factor=factor, source=source, config=config, seed=seed, injected=injected,
                         share_x_m=share, precision=precision, error=abs(share - injected), misrouted=misrouted,
                         violation=violation(config, injected, share, precision)))
    return rows


def summary(rows: pd.DataFrame) -> dict:
    """The criterion's figures of one candidate's rows."""
    target = rows[rows.config.isin(("none",) + TARGETS)]
    return dict(mean_misrouted=float(target.misrouted.mean()), worst_target_error=float(target.error.max()),
                min_precision=float(rows.precision.min()), worst_violation=float(rows.violation.max()),
                ood_share=float(rows[rows.config == "ood"].share_x_m.mean()))


def widest_interval(grid: list[float], ok: list[bool]) -> tuple[float | None, float | None]:
    """``(lo, hi)`` ends of the widest (in log) run of consecutive admissible grid values."""
    best, start = (None, None), None
    for i, good in enumerate(list(ok) + [False]):
        if good and start is None:
            start = i
        elif not good and start is not None:
            lo, hi = grid[start], grid[i - 1]
            if best[0] is None or np.log(hi / lo) > np.log(best[1] / best[0]):
                best = (lo, hi)
            start = None
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", nargs="+", default=list(DEV_SOURCES), choices=list(DEV_SOURCES))
    ap.add_argument("--configs", nargs="+", default=list(TUNE_CONFIGS), choices=list(TUNE_CONFIGS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[3, 4])
    ap.add_argument("--tolerances", nargs="+", type=float,
                    default=[round(0.25 + 0.05 * i, 2) for i in range(46)], help="the grid, doublings (sorted)")
    ap.add_argument("--factors", nargs="+", type=float, default=[0.0, 1.25, 1.5, 2.0, 3.0, 4.0])
    ap.add_argument("--cifar-dir", default=str(CIFAR))
    ap.add_argument("--detect-items", nargs="+", type=int, default=[4000],
                    help="cifar-dev items per run, before the injection (one run per size)")
    ap.add_argument("--glyph-items", nargs="+", type=int, default=[0],
                    help="glyphs per run, before the injection (0: all 1800; one run per size)")
    ap.add_argument("--scoring", default="held-out", choices=["in-sample", "held-out"],
                    help="preprocess.scoring of the runs: the constants are chosen for it")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--cache-dir", default=None, help="model cache (default: a fresh one per run)")
    ap.add_argument("--runs-dir", default="results/tune_cut", help="where the fitted runs are stored")
    ap.add_argument("--evaluate-only", action="store_true", help="evaluate the stored runs, fit nothing")
    ap.add_argument("--out", default=None, help="tidy CSV of every candidate on every run")
    args = ap.parse_args()
    args.log_epochs = False
    runs_dir = Path(args.runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    runs = {}
    sized = [(src, n or None) for src in args.sources
             for n in (args.glyph_items if src == "glyphs" else args.detect_items)]
    for (source, size), config, seed in itertools.product(sized, args.configs, args.seeds):
        name = source if size is None or (source == "cifar-dev" and size == 4000) else f"{source}@{size}"
        scoring = "" if args.scoring == "in-sample" else f"-{args.scoring}"
        path = runs_dir / f"{name}-{config}-s{seed}{scoring}.npz"
        if not path.exists():
            if args.evaluate_only:
                continue
            if source == "cifar-dev" or config == "ood":
                if not (Path(args.cifar_dir) / "airplane").is_dir():
                    print(f"skipping {source} {config}: {args.cifar_dir} not found")
                    continue
            arrays = fit_run(source, size, config, seed, args)
            tmp = path.with_name(path.stem + ".partial.npz")
            np.savez(tmp, **arrays)
            tmp.replace(path)
        with np.load(path) as f:
            runs[(name, config, seed)] = rank_run({k: f[k] for k in f.files})
    if not runs:
        raise SystemExit(f"no fitted runs in {runs_dir}")
    rows = []
    for factor in args.factors:
        for rule in [f"{t:g}" for t in args.tolerances] + ["cost"]:
            rows += evaluate_all(runs, rule, factor)
    df = pd.DataFrame(rows)
    verdict = df.groupby(["factor", "rule"])["violation"].max() == 0.0
    choices = []
    for factor in args.factors:
        ok = [verdict[(factor, f"{t:g}")] for t in args.tolerances]
        lo, hi = widest_interval(args.tolerances, ok)
        if lo is None:
            print(f"factor {factor:g}: no admissible tolerance")
            continue
        mid = float(np.sqrt(lo * hi))
        mid_rows = pd.DataFrame(evaluate_all(runs, f"{mid:.6g}", factor))
        choices.append(dict(rule="tolerance", factor=factor, tolerance=mid, admissible_from=lo, admissible_to=hi,
                            **summary(mid_rows)))
        df = pd.concat([df, mid_rows.assign(chosen_for_factor=True)], ignore_index=True)
        if verdict[(factor, "cost")]:
            choices.append(dict(rule="cost", factor=factor, tolerance=np.nan, admissible_from=np.nan,
                                admissible_to=np.nan, **summary(df[(df.rule == "cost") & (df.factor == factor)])))
        else:
            print(f"factor {factor:g}: the cost rule is not admissible")
    if not choices:
        # nothing meets every bound: the candidate that violates them least (then misroutes
        # least), reported as not admissible with the runs it fails
        worst = df.groupby(["factor", "rule"]).agg(worst=("violation", "max"), mis=("misrouted", "mean"))
        factor, rule = worst.sort_values(["worst", "mis"]).index[0]
        rows_of = df[(df.factor == factor) & (df.rule == rule)]
        print(f"\nno admissible candidate on the development runs; the least violating: "
              f"{'the cost rule' if rule == 'cost' else f'tolerance {rule} doublings'}, item factor {factor:g}, "
              f"worst violation {worst.loc[(factor, rule), 'worst']:.3f} on:")
        print(rows_of[rows_of.violation > 0][["source", "config", "seed", "injected", "share_x_m", "precision",
                                               "violation"]].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        best = pd.Series(dict(rule="cost" if rule == "cost" else "tolerance", factor=factor,
                              tolerance=np.nan if rule == "cost" else float(rule)))
    else:
        table = pd.DataFrame(choices).sort_values(["mean_misrouted", "admissible_to"], ascending=[True, False])
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        best = table.iloc[0]
        print(f"\nchosen: {'the cost rule' if best.rule == 'cost' else f'tolerance {best.tolerance:.3f} doublings'}"
              f" (admissible {best.admissible_from:g}..{best.admissible_to:g}), item factor {best.factor:g}")
    rule = "cost" if best.rule == "cost" else f"{best.tolerance:.6g}"
    chosen = pd.DataFrame(evaluate_all(runs, rule, best.factor))
    print(chosen.pivot_table(index=["source", "config"], columns="seed", values=["share_x_m", "precision"],
                             dropna=False).to_string(float_format=lambda v: f"{v:.3f}"))
    if args.out:
        df.to_csv(args.out, index=False)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

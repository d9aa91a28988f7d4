"""Benchmark of the contrastive pre-processor against raw-pixel k-means baselines.

Suites (``--suite``, default ``digits detect-digits detect``):

* ``digits``: all 1797 digits (structured only); ACC / NMI / ARI of our clusters and of k-means
  on raw pixels; training time and throughput. Targets: ACC >= 0.88, NMI >= 0.85, < 3 min.
* ``cifar``: the CIFAR-10 test split (structured only, ``--cifar-dir``); same metrics. With
  ``--preset paper`` the preset's recipe is kept (batch 32, SGD) and only the epochs are set
  (``--cifar-epochs``, warm-up 10 % of them as in the preset); ``--paper-batch B`` trains at
  batch B with lr 0.02 B / 32 instead. ``--preset paper --backbone resnet18 --device cuda``
  is the GPU run of the issue (``benchmarks/gpu_paper_resnet18.sh``; ``--log-epochs`` prints
  one line per epoch).
  With the ``fast`` preset, the suite trains in channels-last format at batch 256 with a bank of
  4096 keys and ``--cifar-recipe`` picks the rest (:data:`CIFAR_RECIPES`; docs/preprocess.md):

  - ``batch-bf16`` (default): eq. (2) with in-batch keys (``instance_keys = "batch"``, tau
    0.5), no cluster terms (``epsilon = marginal_weight = 0``: the clusters are the final
    spherical k-means of eq. (3)'s prototypes), bfloat16 autocast, 220 epochs on 2 threads
    (22-27 min of training per seed on the 2-core development machine);
  - ``batch``: in-batch keys with the cluster terms, float32, 80 epochs, 1 thread;
  - ``momentum``: the paper's momentum keys with one query view per step, 140 epochs, 1 thread.

  ``--cifar-set KEY=VALUE ...`` overrides any key, ``--cifar-epochs`` the epochs and
  ``--threads`` the recipe's thread count. Target: ACC >= 0.40 within 30 CPU-minutes. Slow:
  ~30 min per seed; run it with ``--seeds 0`` first.
* ``detect-digits``: all 1797 digits with 20 % memorizable items of each kind but ood, the
  ``fast`` preset with ``density_side = "sparse"``; same columns as ``detect``, plus the same
  model read from the dense side (``ours_dense_side``).
* ``detect``: CIFAR-10 with 20 % memorizable items of each kind (noise, shuffled, patches,
  ood = digits among CIFAR); AUROC of ``1 - confidence``, precision/recall of X_m at the
  fraction 0.2; baseline: distance of each item to its nearest k-means centroid (raw pixels,
  k = 10), cut at the same fraction. Also printed: the literal max-P confidence of eq. (3) and
  the shared-structure ranking (kappa, ``rank_by = "cluster"``) and the density read from
  the sparse side (``ours_sparse_side``) on the same model.
  Targets: AUROC >= 0.99 noise, >= 0.95 shuffled, >= 0.90 ood; beat the baseline.

Every run is repeated over ``--seeds`` (default 0 1 2); rows are printed and written as a tidy
CSV (``--out``). Timings depend on the machine load: torch uses ``--threads`` threads (1 is
much faster than 2 when other processes share two cores).

    .venv/bin/python benchmarks/bench_preprocess.py --suite digits detect --out bench_pre.csv
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

from simulator.context import RunContext, resolve_device
from simulator.metrics import clustering_scores, detection_scores
from simulator.preprocess import PreprocessConfig, fit_preprocessor
from simulator.preprocess.config import PRESETS
from simulator.registry import MEMORIZABLE_KINDS
from simulator.scenario import SourceConfig
from simulator.sources import load_items
from simulator.sources.digits import load_digits

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10" / "test"

#: ``--cifar-recipe``: [preprocess] keys on top of the fast preset (plus batch 256, a bank of 4096
#: keys, channels-last), the default epochs and torch threads. Measured in docs/preprocess.md.
CIFAR_RECIPES: dict[str, tuple[dict, int, int]] = {
    "batch-bf16": ({"instance_keys": "batch", "tau": 0.5, "epsilon": 0.0, "marginal_weight": 0.0,
                    "precision": "bfloat16"}, 220, 2),
    "batch": ({"instance_keys": "batch", "tau": 0.5}, 80, 1),
    "momentum": ({"instance_keys": "momentum", "symmetric": False}, 140, 1),
}
KINDS = tuple(MEMORIZABLE_KINDS.names())


def kmeans_pixels(images: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Baseline: k-means on raw pixels. Returns (labels, distance to the nearest centroid)."""
    x = images.reshape(len(images), -1).astype(np.float64) / 255.0
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
    return km.labels_, km.transform(x).min(axis=1)


def overrides(pairs: list[str]) -> dict:
    """``["epsilon=0", "augment=\"color\""]`` -> ``{"epsilon": 0, "augment": "color"}``, validated."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in PreprocessConfig.model_fields:
            raise SystemExit(f"--cifar-set {pair!r}: expected KEY=VALUE with KEY a [preprocess] key")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value  # a bare string, e.g. instance_keys=batch
    PreprocessConfig(**out)  # validates (pydantic error naming the key)
    return out


def make_ctx(seed: int, args, threads: int | None = None) -> RunContext:
    """A fresh context (empty model cache) on ``--device`` with ``--threads`` torch threads (else
    ``threads``, the recipe's, else 1)."""
    threads = args.threads or threads or 1
    return RunContext(seed=seed, device=resolve_device(args.device), cache_dir=Path(tempfile.mkdtemp()),
                      progress=args.log_epochs, num_threads=threads)


def run_clustering(name: str, items, cfg: PreprocessConfig, seed: int, args, rows: list,
                   threads: int | None = None) -> None:
    ctx = make_ctx(seed, args, threads)
    t0 = time.perf_counter()
    pre = fit_preprocessor(items, cfg, ctx)
    wall = time.perf_counter() - t0
    a = pre.assign(items.images)
    ours = clustering_scores(items.labels, a.cluster)
    base, _ = kmeans_pixels(items.images, cfg.clusters, seed)
    km = clustering_scores(items.labels, base)
    sizes = np.bincount(a.cluster, minlength=cfg.clusters)
    for metric in ("acc", "nmi", "ari"):
        rows.append(dict(suite=name, kind="structured", seed=seed, method="ours", metric=metric, value=ours[metric]))
        rows.append(dict(suite=name, kind="structured", seed=seed, method="kmeans_pixels", metric=metric, value=km[metric]))
    rows.append(dict(suite=name, kind="structured", seed=seed, method="ours", metric="train_s", value=pre.train_seconds))
    rows.append(dict(suite=name, kind="structured", seed=seed, method="ours", metric="fit_wall_s", value=wall))
    rows.append(dict(suite=name, kind="structured", seed=seed, method="ours", metric="images_per_s", value=pre.images_per_s))
    rows.append(dict(suite=name, kind="structured", seed=seed, method="ours", metric="min_cluster_size", value=float(sizes.min())))
    print(f"[{name} seed {seed}] ours ACC {ours['acc']:.3f} NMI {ours['nmi']:.3f} ARI {ours['ari']:.3f} | k-means ACC "
          f"{km['acc']:.3f} NMI {km['nmi']:.3f} | train {pre.train_seconds:.0f}s {pre.images_per_s:.0f} img/s "
          f"| cluster sizes {sizes.min()}..{sizes.max()}", flush=True)


def run_detection(suite: str, dataset: str, max_items: int | None, kind: str, args, cfg: PreprocessConfig, seed: int,
                  rows: list) -> None:
    ctx = make_ctx(seed, args)
    src = SourceConfig(dataset=dataset, max_items=max_items,
                       memorizable={"kind": kind, "fraction": 0.2, "ood_dataset": "digits"})
    items = load_items(src, ctx)
    pre = fit_preprocessor(items, cfg, ctx)
    a = pre.assign(items.images)
    mem = items.memorizable
    ours = detection_scores(mem, 1.0 - a.confidence, pre.split(a))
    lit_score = 1.0 - a.assignment_confidence  # the literal max P of eq. (3), cut at the same fraction
    lit = detection_scores(mem, lit_score, lit_score >= np.sort(lit_score)[::-1][int(round(0.2 * len(mem))) - 1])
    # the shared-structure ranking (kappa of the cluster, rank_by = "cluster"), same model from the cache
    pre_k = fit_preprocessor(items, cfg.model_copy(update={"rank_by": "cluster"}), ctx)
    a_k = pre_k.assign(items.images)
    kap = detection_scores(mem, 1.0 - a_k.confidence, pre_k.split(a_k))
    # the same model with the density ranking read from the other side
    other = "sparse" if pre.density_side == "dense" else "dense"
    pre_o = fit_preprocessor(items, cfg.model_copy(update={"density_side": other}), ctx)
    a_o = pre_o.assign(items.images)
    opp = detection_scores(mem, 1.0 - a_o.confidence, pre_o.split(a_o))
    _, dist = kmeans_pixels(items.images, cfg.clusters, seed)
    cut = np.sort(dist)[::-1][int(round(0.2 * len(dist))) - 1]
    base = detection_scores(mem, dist, dist >= cut)
    st = ~mem
    cl = clustering_scores(items.labels[st], a.cluster[st])
    for method, res in (("ours", ours), ("ours_assignment_conf", lit), ("ours_kappa", kap), (f"ours_{other}_side", opp),
                        ("kmeans_distance", base)):
        for metric, v in res.items():
            rows.append(dict(suite=suite, kind=kind, seed=seed, method=method, metric=metric, value=v))
    rows.append(dict(suite=suite, kind=kind, seed=seed, method="ours", metric="structured_acc", value=cl["acc"]))
    rows.append(dict(suite=suite, kind=kind, seed=seed, method="ours", metric="images_per_s", value=pre.images_per_s))
    rows.append(dict(suite=suite, kind=kind, seed=seed, method="ours", metric="train_s", value=pre.train_seconds))
    print(f"[{suite} {kind} seed {seed}] AUROC ours ({pre.density_side} side) {ours['auroc']:.3f} (P {ours['precision']:.2f} "
          f"R {ours['recall']:.2f}) | {other} side {opp['auroc']:.3f} "
          f"| max-P (eq. 3) {lit['auroc']:.3f} | kappa {kap['auroc']:.3f} | k-means distance {base['auroc']:.3f} "
          f"(P {base['precision']:.2f} R {base['recall']:.2f}) "
          f"| train {pre.train_seconds:.0f}s {pre.images_per_s:.0f} img/s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", nargs="+", default=["digits", "detect-digits", "detect"],
                    choices=["digits", "detect-digits", "cifar", "detect"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads per run (default 1; the cifar suite: the recipe's, 2 for batch-bf16)")
    ap.add_argument("--preset", default="fast", choices=["fast", "paper"])
    ap.add_argument("--digits-epochs", type=int, default=None, help="default: the preset's")
    ap.add_argument("--cifar-dir", default=str(CIFAR))
    ap.add_argument("--cifar-epochs", type=int, default=None,
                    help="default: the recipe's (batch-bf16 220, batch 80, momentum 140), 140 with --preset paper")
    ap.add_argument("--cifar-recipe", default="batch-bf16", choices=list(CIFAR_RECIPES),
                    help="cifar suite, fast preset: batch-bf16 (in-batch keys, no cluster terms, bfloat16, 2 threads), "
                         "batch (in-batch keys with the cluster terms) or momentum (the paper's momentum keys)")
    ap.add_argument("--cifar-set", nargs="+", default=[], metavar="KEY=VALUE",
                    help="cifar suite: override [preprocess] keys of its configuration (JSON values), "
                         "e.g. warmup_epochs=60 epsilon=0")
    ap.add_argument("--detect-items", type=int, default=4000, help="CIFAR items per detection run (None = all)")
    ap.add_argument("--detect-epochs", type=int, default=8)
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS),
                    help="kinds for the detect suites (ood is skipped on digits: it injects digits)")
    ap.add_argument("--backbone", default=None, choices=["cnn", "resnet18"])
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"],
                    help="torch device of training (the targets are CPU targets; cuda for the ResNet-18 runs)")
    ap.add_argument("--paper-batch", type=int, default=None,
                    help="cifar suite, --preset paper: this batch with lr 0.02 x batch / 32 instead of 32 / 0.02")
    ap.add_argument("--log-epochs", action="store_true", help="print one line per training epoch")
    ap.add_argument("--out", default=None, help="tidy CSV of every number")
    args = ap.parse_args()
    recipe_keys, recipe_epochs, recipe_threads = CIFAR_RECIPES[args.cifar_recipe]
    if args.cifar_epochs is None:
        args.cifar_epochs = recipe_epochs if args.preset == "fast" else 140
    if args.log_epochs:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    rows: list[dict] = []
    common = {"preset": args.preset} | ({"backbone": args.backbone} if args.backbone else {})
    if "digits" in args.suite:
        items = load_digits()
        cfg = PreprocessConfig(**common, **({"epochs": args.digits_epochs} if args.digits_epochs else {}))
        for seed in args.seeds:
            run_clustering("digits", items, cfg, seed, args, rows)
    if "detect-digits" in args.suite:
        cfg = PreprocessConfig(**common, density_side="sparse", memorizable_threshold={"fraction": 0.2},
                               **({"epochs": args.digits_epochs} if args.digits_epochs else {}))
        for kind in (k for k in args.kinds if k != "ood"):
            for seed in args.seeds:
                run_detection("detect-digits", "digits", None, kind, args, cfg, seed, rows)
    if ("cifar" in args.suite or "detect" in args.suite) and not (Path(args.cifar_dir) / "airplane").is_dir():
        print(f"skipping CIFAR suites: {args.cifar_dir} not found")
    else:
        if "cifar" in args.suite:
            items = load_items(SourceConfig(dataset=f"imagefolder:{args.cifar_dir}"), RunContext(seed=0))
            if args.preset == "paper":
                # the paper's recipe as it stands (batch 32, SGD lr 0.02, ...); only the number of
                # epochs is ours, with the preset's share of L_I-only warm-up (20 of 200 epochs)
                paper = PRESETS["paper"]
                scaled = {} if args.paper_batch is None else {  # linear scaling of the learning rate
                    "batch_size": args.paper_batch, "lr": paper["lr"] * args.paper_batch / paper["batch_size"]}
                warmup = max(1, round(args.cifar_epochs * paper["warmup_epochs"] / paper["epochs"]))
                cfg = PreprocessConfig(**common, epochs=args.cifar_epochs, **scaled, warmup_epochs=warmup)
            else:
                cfg = PreprocessConfig(**common, epochs=args.cifar_epochs, warmup_epochs=max(1, args.cifar_epochs // 5),
                                       batch_size=256, queue_size=4096, channels_last=True, **recipe_keys)
            cfg = cfg.model_copy(update=overrides(args.cifar_set))
            print(f"[cifar] {cfg.resolved()}", flush=True)
            for seed in args.seeds:
                run_clustering("cifar", items, cfg, seed, args, rows,
                               threads=recipe_threads if args.preset == "fast" else None)
        if "detect" in args.suite:
            cfg = PreprocessConfig(**common, epochs=args.detect_epochs, warmup_epochs=max(1, args.detect_epochs // 4),
                                   memorizable_threshold={"fraction": 0.2})
            for kind in args.kinds:
                for seed in args.seeds:
                    run_detection("detect", f"imagefolder:{args.cifar_dir}", args.detect_items, kind, args, cfg,
                                  seed, rows)
    df = pd.DataFrame(rows)
    if len(df):
        summary = df.groupby(["suite", "kind", "method", "metric"])["value"].agg(["mean", "std", "min", "max"])
        print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    if args.out:
        df.to_csv(args.out, index=False)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

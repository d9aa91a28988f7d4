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
* ``detect-digits`` and ``detect``: the split, on all 1797 digits (``--digits-items``: random
  subsets of these sizes, suites named ``detect-digits@N``) and on ``--detect-items`` (4000;
  other sizes: ``detect@N``; ``--scoring`` sets ``preprocess.scoring``) items of the second half of each class of the CIFAR-10 test split (``skip_per_class = 500``:
  the first half is the zoo's and ``tune_cut.py``'s), with **the demo scenario's**
  ``[preprocess]``, ``[semantic]`` and ``[classical]`` tables (only the source and its injection change; the ``fast`` preset
  sizes its epochs by the image size). Configurations (``--configs``): ``noise``, ``shuffled``,
  ``ood`` (CIFAR-10 images among digits, digits among CIFAR-10), ``patches`` at 20 %, ``none``
  (nothing injected), ``shuffled40`` and ``noise40`` (40 %). Reported per run: AUROC of
  ``1 - confidence`` (the cost-atypicality score, clusters first), share of items in X_m at
  the auto cut, its precision and recall; the candidates beside it (the semantic cost J read
  one-sided, clusters first and per item without the clusters; the complexity-corrected cost
  J - C, clusters first; the literal max-P of eq. (3)); the baseline, distance of each item to
  its nearest of L k-means centroids on raw pixels (L the pre-processor's number of clusters;
  AUROC, and P/R cut at the injected share); ACC and NMI of the clusters on the structured items
  (with the default ``clusters = "auto"``, 20 clusters over 10 classes, NMI is the measure);
  training time and the score's extra time (``score_s``: the scoring language and the costs). Targets (docs/preprocess.md): AUROC >= 0.97 noise, >= 0.95
  shuffled and ood; no X_m (share <= 0.03) with nothing injected; |share - injected| <= 0.05
  and precision >= 0.90 for shuffled and noise at 20 and 40 %.

Every run is repeated over ``--seeds`` (default 0 1 2); rows are printed and written as a tidy
CSV (``--out``). Timings depend on the machine load: torch uses ``--threads`` threads (1 is
much faster than 2 when other processes share two cores).

    .venv/bin/python benchmarks/bench_preprocess.py --suite digits detect --out bench_pre.csv
"""

from __future__ import annotations

import argparse
import itertools
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
from simulator.preprocess import PreprocessConfig, fit_encoder, fit_preprocessor
from simulator.preprocess.config import PRESETS
from simulator.scenario import SourceConfig
from simulator.sources import load_items
from simulator.sources.digits import load_digits

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10" / "test"
#: The detection suite draws its CIFAR-10 items from the second half of each class (the first
#: 500 are the zoo's training data and ``benchmarks/tune_cut.py``'s development source).
HELD_OUT_SKIP = 500

#: ``--cifar-recipe``: [preprocess] keys on top of the fast preset (plus batch 256, a bank of 4096
#: keys, channels-last), the default epochs and torch threads. Measured in docs/preprocess.md.
CIFAR_RECIPES: dict[str, tuple[dict, int, int]] = {
    "batch-bf16": ({"instance_keys": "batch", "tau": 0.5, "epsilon": 0.0, "marginal_weight": 0.0,
                    "precision": "bfloat16"}, 220, 2),
    "batch": ({"instance_keys": "batch", "tau": 0.5}, 80, 1),
    "momentum": ({"instance_keys": "momentum", "symmetric": False}, 140, 1),
}


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
    """A context on ``--device`` with ``--threads`` torch threads (else ``threads``, the recipe's,
    else 1), and a fresh, empty model cache unless ``--cache-dir`` names one."""
    threads = args.threads or threads or 1
    cache = Path(args.cache_dir) if args.cache_dir else Path(tempfile.mkdtemp())
    return RunContext(seed=seed, device=resolve_device(args.device), cache_dir=cache,
                      progress=args.log_epochs, num_threads=threads)


def run_clustering(name: str, items, cfg: PreprocessConfig, seed: int, args, rows: list,
                   threads: int | None = None) -> None:
    ctx = make_ctx(seed, args, threads)
    t0 = time.perf_counter()
    pre = fit_encoder(items, cfg, ctx)
    wall = time.perf_counter() - t0
    cluster = pre.clusters(items.images)
    ours = clustering_scores(items.labels, cluster)
    base, _ = kmeans_pixels(items.images, pre.num_clusters, seed)
    km = clustering_scores(items.labels, base)
    sizes = np.bincount(cluster, minlength=pre.num_clusters)
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


#: The detection configurations: (kind, injected share). ``none``: nothing injected.
CONFIGS = {"noise": ("noise", 0.2), "shuffled": ("shuffled", 0.2), "ood": ("ood", 0.2), "patches": ("patches", 0.2),
           "none": ("shuffled", 0.0), "shuffled40": ("shuffled", 0.4), "noise40": ("noise", 0.4)}


def demo_tables():
    """The demo scenario's [preprocess] table and cost model: the one set of settings every
    source of the detection suites runs with (only the source and its injection change)."""
    from simulator.preprocess.score import CostModel
    from simulator.scenario import load_scenario
    demo = load_scenario(ROOT / "scenarios" / "demo.toml")
    return demo.preprocess, CostModel.of(demo)


def one_sided_auroc(mem: np.ndarray, cluster: np.ndarray, item_score: np.ndarray) -> float:
    """AUROC of a one-sided score (higher = memorizable) ranked clusters first (by the cluster's
    mean score) and items inside their cluster."""
    means = np.array([item_score[cluster == l].mean() if (cluster == l).any() else -np.inf
                      for l in range(int(cluster.max()) + 1)])
    order = np.lexsort((item_score, means[cluster]))  # ascending: cluster mean, then item
    position = np.empty(len(order))
    position[order] = np.arange(len(order))
    return detection_scores(mem, position, mem)["auroc"]


def detection_items(dataset: str, max_items: int | None, config: str, ood_dataset: str, ctx: RunContext,
                    **source_keys):
    """The items of one detection run: ``dataset`` (at most ``max_items``; further ``[source]``
    keys in ``source_keys``, e.g. ``skip_per_class``) with the injection of ``config``
    (:data:`CONFIGS`; ``ood`` draws from ``ood_dataset``)."""
    kind, fraction = CONFIGS[config]
    return load_items(SourceConfig(dataset=dataset, max_items=max_items, **source_keys,
                                   memorizable={"kind": kind, "fraction": fraction, "ood_dataset": ood_dataset}), ctx)


def run_detection(suite: str, dataset: str, max_items: int | None, config: str, ood_dataset: str, args,
                  seed: int, rows: list, **source_keys) -> None:
    from simulator.preprocess.score import route_cost
    cfg, costs = demo_tables()
    cfg = cfg.model_copy(update={"scoring": args.scoring})
    ctx = make_ctx(seed, args)
    items = detection_items(dataset, max_items, config, ood_dataset, ctx, **source_keys)
    t0 = time.perf_counter()
    pre = fit_preprocessor(items, cfg, ctx, costs)
    wall = time.perf_counter() - t0
    a = pre.assign(items.images)
    mem = items.memorizable
    pred = pre.split(a)
    res = {"ours": detection_scores(mem, 1.0 - a.confidence, pred)}
    res["ours"]["share_x_m"] = float(pred.mean())
    # candidates measured beside the chosen score: the semantic cost J one-sided (clusters first;
    # per item without the clusters) and the complexity-corrected cost J - C (clusters first)
    res["rd_cost_items_only"] = {"auroc": detection_scores(mem, a.cost, pred)["auroc"]}
    c = route_cost(items.images, costs)
    res["rd_cost_one_sided"] = {"auroc": one_sided_auroc(mem, pre.train_cluster, pre.train_cost)}
    res["excess_cost"] = {"auroc": one_sided_auroc(mem, pre.train_cluster, pre.train_cost - c)}
    res["assignment_conf"] = {"auroc": detection_scores(mem, 1.0 - a.assignment_confidence, pred)["auroc"]}
    _, dist = kmeans_pixels(items.images, pre.num_clusters, seed)
    n_m = int(mem.sum())
    base_pred = dist >= np.sort(dist)[::-1][n_m - 1] if n_m else np.zeros(len(dist), bool)
    res["kmeans_distance"] = detection_scores(mem, dist, base_pred)  # cut at the injected share
    st = ~mem
    cl = clustering_scores(items.labels[st], a.cluster[st])
    for method, r in res.items():
        for metric, v in r.items():
            rows.append(dict(suite=suite, kind=config, seed=seed, method=method, metric=metric, value=v))
    extra = dict(structured_acc=cl["acc"], structured_nmi=cl["nmi"], clusters=float(pre.num_clusters),
                 train_s=pre.train_seconds, score_s=pre.score_seconds, fit_wall_s=wall,
                 x_m_clusters=float(len(pre.x_m_clusters)) if pre.x_m_clusters is not None else float("nan"),
                 injected_share=float(mem.mean()))
    for metric, v in extra.items():
        rows.append(dict(suite=suite, kind=config, seed=seed, method="ours", metric=metric, value=v))
    o, b = res["ours"], res["kmeans_distance"]
    print(f"[{suite} {config} seed {seed}] AUROC ours {o['auroc']:.3f} | share_x_m {o['share_x_m']:.3f} "
          f"(injected {mem.mean():.2f}) P {o['precision']:.2f} R {o['recall']:.2f} | J one-sided "
          f"{res['rd_cost_one_sided']['auroc']:.3f}, per item {res['rd_cost_items_only']['auroc']:.3f} | J - C "
          f"{res['excess_cost']['auroc']:.3f} | max-P (eq. 3) "
          f"{res['assignment_conf']['auroc']:.3f} | k-means distance {b['auroc']:.3f} | {pre.num_clusters} clusters, "
          f"ACC {cl['acc']:.3f} NMI {cl['nmi']:.3f} "
          f"| train {pre.train_seconds:.0f}s, score {pre.score_seconds:.0f}s", flush=True)


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
    ap.add_argument("--detect-items", nargs="+", type=int, default=[4000],
                    help="CIFAR items per detection run, before the injection (several: one suite per size)")
    ap.add_argument("--digits-items", nargs="+", type=int, default=[0],
                    help="digits per detect-digits run, before the injection (0: all 1797; several: one suite per size)")
    ap.add_argument("--scoring", default="held-out", choices=["in-sample", "held-out"],
                    help="preprocess.scoring of the detection runs")
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS),
                    help="detection configurations: a kind at 20 %%, none (nothing injected), shuffled40 / noise40 "
                         "(40 %%); ood is CIFAR-10 among digits and digits among CIFAR-10")
    ap.add_argument("--backbone", default=None, choices=["cnn", "resnet18"])
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"],
                    help="torch device of training (the targets are CPU targets; cuda for the ResNet-18 runs)")
    ap.add_argument("--paper-batch", type=int, default=None,
                    help="cifar suite, --preset paper: this batch with lr 0.02 x batch / 32 instead of 32 / 0.02")
    ap.add_argument("--log-epochs", action="store_true", help="print one line per training epoch")
    ap.add_argument("--out", default=None, help="tidy CSV of every number")
    ap.add_argument("--cache-dir", default=None,
                    help="model cache to reuse across runs (default: a fresh one per run, so every model is trained)")
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
        # ACC against the classes needs one cluster per class (the deep-clustering convention);
        # the scenarios' default, clusters = "auto", over-clusters (docs/preprocess.md)
        cfg = PreprocessConfig(**common, clusters=len(items.class_names),
                               **({"epochs": args.digits_epochs} if args.digits_epochs else {}))
        for seed in args.seeds:
            run_clustering("digits", items, cfg, seed, args, rows)
    have_cifar = (Path(args.cifar_dir) / "airplane").is_dir()
    if "detect-digits" in args.suite:
        for config in args.configs:
            if config == "ood" and not have_cifar:
                print(f"skipping digits ood (CIFAR-10 images among digits): {args.cifar_dir} not found")
                continue
            for n, seed in itertools.product(args.digits_items, args.seeds):
                run_detection("detect-digits" + (f"@{n}" if n else ""), "digits", n or None, config,
                              f"imagefolder:{args.cifar_dir}", args, seed, rows)
    if ("cifar" in args.suite or "detect" in args.suite) and not have_cifar:
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
                cfg = PreprocessConfig(**common, clusters=len(items.class_names), epochs=args.cifar_epochs, **scaled,
                                       warmup_epochs=warmup)
            else:
                cfg = PreprocessConfig(**common, clusters=len(items.class_names), epochs=args.cifar_epochs,
                                       warmup_epochs=max(1, args.cifar_epochs // 5),
                                       batch_size=256, queue_size=4096, channels_last=True, **recipe_keys)
            cfg = cfg.model_copy(update=overrides(args.cifar_set))
            print(f"[cifar] {cfg.resolved()}", flush=True)
            for seed in args.seeds:
                run_clustering("cifar", items, cfg, seed, args, rows,
                               threads=recipe_threads if args.preset == "fast" else None)
        if "detect" in args.suite:
            for config in args.configs:
                for n, seed in itertools.product(args.detect_items, args.seeds):
                    run_detection("detect" + ("" if n == 4000 else f"@{n}"), f"imagefolder:{args.cifar_dir}", n, config,
                                  "digits", args, seed, rows, skip_per_class=HELD_OUT_SKIP)
    df = pd.DataFrame(rows)
    if len(df):
        summary = df.groupby(["suite", "kind", "method", "metric"])["value"].agg(["mean", "std", "min", "max"])
        print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    if args.out:
        df.to_csv(args.out, index=False)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

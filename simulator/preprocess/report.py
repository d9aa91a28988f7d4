"""What ``semsim preprocess`` reports: split and clustering quality against the ground truth.

The ground truth (labels, kinds) is read here, by metrics only; the pre-processor never sees it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..metrics import clustering_scores, detection_scores
from ..sources.base import STRUCTURED, ItemSet
from .model import Preprocessor


def _mean(values: np.ndarray, sel: np.ndarray) -> float:
    return float(np.asarray(values)[sel].mean()) if sel.any() else float("nan")


def preprocess_report(items: ItemSet, pre: Preprocessor, title: str | None = None
                      ) -> tuple[dict[str, pd.DataFrame], Figure]:
    """Tables and a figure describing ``pre`` on ``items``; ``title`` (the scenario name)
    heads the figure beside the dataset, item count, clusters and cut.

    Returns ``(tables, fig)``:

    * ``quality`` (tidy: ``scope, metric, value``): NMI/ACC/ARI of the clusters on the
      structured items (scope ``structured``); AUROC of ``1 - confidence`` for detecting
      memorizable items, precision and recall of X_m at the cut, and the share of items in X_m
      (scope ``memorizable``, and one scope per injected kind, each against the structured
      items); the split itself (scope ``split``: ``score`` its name, ``cut`` the rule ``auto``,
      ``fraction`` or ``confidence``, ``cut_confidence`` the cut value, ``x_m_clusters`` how
      many clusters the auto cut sends to X_m, ``score_seconds`` the score's cost); training
      throughput and time (scope ``training``). Values are numbers except ``score`` and ``cut``.
    * ``clusters``: one row per cluster: rank by confidence (0 = least confident), size,
      mean routing confidence, atypicality A_l (doublings), mean cost J and reference cost Jref of
      its training items (bits), share routed to X_m, item counts per true kind, majority
      class and its share among the cluster's structured items.
    * ``items``: one row per item: index, cluster, confidence, cost (bits), memorizable
      (predicted), kind, label.
    * ``training``: per-epoch losses (empty when the model came from an old cache).

    The figure shows the distribution of the routing confidence by true kind (item counts in
    the legend), with the cut.
    """
    a = pre.assign(items.images)
    pred = pre.split(a)
    kinds = np.asarray(items.kinds, dtype=object)
    mem = kinds != STRUCTURED
    st = ~mem
    rows: list[tuple[str, str, object]] = []
    if st.sum() > 0:
        for k, v in clustering_scores(items.labels[st], a.cluster[st]).items():
            rows.append(("structured", k, v))
    score = 1.0 - a.confidence
    for k, v in detection_scores(mem, score, pred).items():
        rows.append(("memorizable", k, v))
    rows.append(("memorizable", "share_x_m", float(pred.mean())))
    rows.append(("memorizable", "share_true", float(mem.mean())))
    for kind in sorted(set(kinds[mem])):
        sel = st | (kinds == kind)
        for k, v in detection_scores(kinds[sel] == kind, score[sel], pred[sel]).items():
            rows.append((kind, k, v))
    rows.append(("split", "score", pre.score_name))
    rows.append(("split", "cut", pre.cut_rule))
    rows.append(("split", "cut_confidence", float(pre.cut)))
    if pre.x_m_clusters is not None:
        rows.append(("split", "x_m_clusters", float(len(pre.x_m_clusters))))
    rows.append(("split", "score_seconds", float(pre.score_seconds)))
    rows.append(("training", "images_per_s", pre.images_per_s))
    rows.append(("training", "train_seconds", pre.train_seconds))
    rows.append(("training", "flops_per_item", float(pre.flops_per_item)))
    quality = pd.DataFrame(rows, columns=["scope", "metric", "value"])

    present_kinds = [STRUCTURED] + sorted(set(kinds[mem]))
    crow = []
    for c in range(pre.num_clusters):
        sel = a.cluster == c
        row = {"cluster": c, "rank": int(pre.cluster_rank[c]), "size": int(sel.sum()),
               "confidence": float(a.confidence[sel].mean()) if sel.any() else float("nan"),
               "atypicality": float(pre.cluster_score[c]),
               "mean_cost_bits": _mean(pre.train_cost, pre.train_cluster == c),
               "mean_reference_cost_bits": _mean(pre.train_reference_cost, pre.train_cluster == c),
               "share_x_m": float(pred[sel].mean()) if sel.any() else float("nan")}
        for kind in present_kinds:
            row[f"n_{kind}"] = int((sel & (kinds == kind)).sum())
        lab = items.labels[sel & st]
        if len(lab):
            vals, counts = np.unique(lab, return_counts=True)
            top = int(vals[counts.argmax()])
            row["majority_class"] = items.class_names[top] if top < len(items.class_names) else str(top)
            row["purity"] = float(counts.max() / counts.sum())
        else:
            row["majority_class"], row["purity"] = "", float("nan")
        crow.append(row)
    clusters = pd.DataFrame(crow).sort_values("rank").reset_index(drop=True)

    item_table = pd.DataFrame({"index": np.arange(len(items)), "cluster": a.cluster, "confidence": a.confidence,
                               "cost_bits": a.cost,
                               "memorizable": pred, "kind": kinds.astype(str), "label": items.labels})
    training = pd.DataFrame(pre.history)

    fig = Figure(figsize=(6.8, 4.6))
    ax = fig.add_subplot(1, 1, 1)
    # one band of width 1/L per cluster, four bins per band
    bins = np.linspace(0.0, 1.0, 4 * pre.num_clusters + 1)
    for kind in present_kinds:
        sel = kinds == kind
        if sel.any():
            ax.hist(a.confidence[sel], bins=bins, alpha=0.55, density=True, label=f"{kind} ({int(sel.sum())} items)")
    ax.axvline(pre.cut, color="k", linestyle="--", linewidth=1,
               label=f"cut at {pre.cut:.3f} ({pre.cut_rule}): below it to X_m")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel(f"confidence (0..1; {pre.score_name}, clusters ranked first)")
    ax.set_ylabel("density (per unit of confidence)")
    dataset = str(items.name).split(":")[0] if items.name else ""
    parts = [p for p in (title, ", ".join(x for x in (dataset, f"{len(items)} items") if x),
                         f"L = {pre.num_clusters} clusters", f"{float(pred.mean()):.0%} of items to X_m") if p]
    ax.set_title(" · ".join(parts) + "\nPre-processor confidence by true kind", fontsize=9)
    ax.legend(loc="best", fontsize=8)
    fig.text(0.01, 0.01, "histograms normalised per kind (area 1); one band of 1/L per cluster, four bins a band",
             fontsize=7.5, color="0.3", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return {"quality": quality, "clusters": clusters, "items": item_table, "training": training}, fig

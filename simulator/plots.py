"""Plots drawn from the result tables (never from in-memory state, so ``semsim report`` can
redraw them from a results directory alone).

Figures are built with matplotlib's object API (:class:`matplotlib.figure.Figure`), never
through ``pyplot``, so drawing them neither selects a backend nor touches a notebook's
figures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .registry import PIPELINES

# One colour per registered pipeline, in registration order (the built-ins first).
PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd"]


def color(pipeline: str) -> str:
    """The plot colour of ``pipeline`` (grey if it is not registered)."""
    names = PIPELINES.names()
    return PALETTE[names.index(pipeline) % len(PALETTE)] if pipeline in names else "grey"

def pipeline_label(pipeline: str) -> str:
    """The legend name of ``pipeline``: an oracle says that it reads the ground truth."""
    if pipeline in PIPELINES.names() and PIPELINES.get(pipeline).reads_ground_truth:
        return f"{pipeline} (ground-truth split)"
    return pipeline


LABELS = {
    "avg_bits_on_air": "bits on air per item",
    "semantic_impact": "semantic impact (packets / (repr. x s))",
    "fidelity_share": "share meeting fidelity",
    "avg_delivery_time_s": "mean delivery time (s)",
    "avg_representation_bits": "avg representation length |Z| (bits)",
    "complexity_nats": "content complexity H (nats per item)",
    "system_bits_per_item": "system bits per item (all items, headers included)",
    "semantic_impact_semantic": "semantic impact per semantic representation",
}


def _pipelines(df: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(df["pipeline"]))


def overview(summary: pd.DataFrame) -> Figure:
    """Per pipeline, mean over sweep points (bars) with the spread over points (error bars)."""
    metrics = ["avg_bits_on_air", "semantic_impact", "fidelity_share", "avg_delivery_time_s"]
    fig = Figure(figsize=(4 * len(metrics), 3.6))
    axes = fig.subplots(1, len(metrics))
    names = _pipelines(summary)
    for ax, m in zip(axes, metrics):
        g = summary.groupby("pipeline", sort=False)[m]
        mean, std = g.mean().reindex(names), g.std().reindex(names).fillna(0.0)
        ax.bar(range(len(names)), mean.values, yerr=std.values, capsize=4,
               color=[color(p) for p in names])
        ax.set_xticks(range(len(names)), [pipeline_label(p) for p in names], rotation=15)
        ax.set_title(LABELS[m], fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Pipelines compared")
    fig.tight_layout()
    return fig


def delivery_cdf(items: pd.DataFrame) -> Figure:
    """Empirical CDF of the delivery time of delivered items, per pipeline."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for p in _pipelines(items):
        t = np.sort(items.loc[(items["pipeline"] == p) & items["delivered"].astype(bool), "delivery_time_s"].to_numpy())
        if len(t):
            ax.step(t, np.arange(1, len(t) + 1) / len(t), where="post", label=pipeline_label(p), color=color(p))
    ax.set_xscale("log")
    ax.set_xlabel("delivery time t_i (s)")
    ax.set_ylabel("share of items delivered by t")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Delivery time (arrival at teacher -> reconstruction)")
    fig.tight_layout()
    return fig


MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", ":", "-."]


def versus(summary: pd.DataFrame, x: str, y: str, pipelines: list[str] | None = None,
           group_keys: list[str] | None = None, curve_key: str | None = None) -> Figure:
    """``y`` against ``x`` per pipeline, one marker per group of sweep points.

    Points are grouped by ``group_keys`` (the swept keys other than the seed; default: by
    ``x``); each marker is the mean over the group (e.g. over seeds), the error bars its
    standard deviation, in y and, when x varies inside a group (complexity), in x too. With
    ``curve_key`` (e.g. ``source.classes``) each pipeline gets one curve per value of that key
    (marker and line style per value, colour per pipeline).
    """
    fig = Figure(figsize=(7.2, 4.6) if curve_key else (6.4, 4.2))
    ax = fig.subplots()
    keys = [k for k in (group_keys or []) if k in summary and k != x] or [x]
    for p in pipelines or _pipelines(summary):
        g = summary[summary["pipeline"] == p]
        if g.empty or g[y].isna().all():
            continue
        curves = sorted(g[curve_key].unique()) if curve_key else [None]
        for j, value in enumerate(curves):
            sub = g if value is None else g[g[curve_key] == value]
            agg = (sub.groupby(keys).agg(xm=(x, "mean"), xs=(x, "std"), ym=(y, "mean"), ys=(y, "std"))
                   .sort_values("xm"))
            tag = "" if value is None else f", {curve_key.split('.')[-1]} = {value}"
            ax.errorbar(agg["xm"], agg["ym"], yerr=agg["ys"].fillna(0.0), xerr=agg["xs"].fillna(0.0),
                        marker=MARKERS[j % len(MARKERS)], linestyle=LINESTYLES[j % len(LINESTYLES)], capsize=3,
                        label=pipeline_label(p) + tag, color=color(p), markersize=4 if curve_key else 6)
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7 if curve_key else 9, ncol=2 if curve_key else 1)
    fig.tight_layout()
    return fig


def cliff(summary: pd.DataFrame, others: list[str]) -> Figure:
    """PSNR against Es/N0, one line per pipeline and per value of the other swept keys (e.g.
    ``link.max_retx``): over all items with the undelivered ones filled in (solid) and over the
    delivered ones only (dashed, where it differs). Means over seeds."""
    fig = Figure(figsize=(7.2, 4.6))
    ax = fig.subplots()
    styles = ["-", "-.", ":", (0, (5, 1))]
    keys = [k for k in others if k in summary]
    for p in _pipelines(summary):
        g = summary[summary["pipeline"] == p]
        groups = g.groupby(keys, sort=True) if keys else [((), g)]
        for j, (values, sub) in enumerate(groups):
            values = values if isinstance(values, tuple) else (values,)
            tag = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(keys, values))
            agg = sub.groupby("esn0_db").agg(all=("psnr_all_db", "mean"), dlv=("psnr_delivered_db", "mean")).sort_index()
            label = pipeline_label(p) + (f" ({tag})" if tag else "")
            ax.plot(agg.index, agg["all"], marker="o", linestyle=styles[j % len(styles)], color=color(p), label=label)
            if not np.allclose(agg["all"], agg["dlv"], equal_nan=True):
                ax.plot(agg.index, agg["dlv"], linestyle="--", color=color(p), alpha=0.45, linewidth=1)
    ax.set_xlabel("Es/N0 (dB)")
    ax.set_ylabel("PSNR over all items, lost ones as the mean image (dB)")
    ax.set_title("Cliff effect: fidelity against channel SNR (dashed: delivered items only)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def all_plots(items: pd.DataFrame, summary: pd.DataFrame, sweep_keys: list[str]) -> dict[str, Figure]:
    """Every plot for a run: name (without .png) -> figure."""
    figs = {"overview": overview(summary), "delivery_time_cdf": delivery_cdf(items)}
    varying = [k for k in sweep_keys if k != "seed" and k in summary and summary[k].nunique() > 1]
    if summary["complexity_nats"].nunique() > 1:
        served = summary.groupby("pipeline", sort=False)["semantic_items"].sum()
        sem = [p for p in _pipelines(summary) if served[p] > 0]
        # one curve per class count when the class count is swept beside something else
        per = "source.classes" if "source.classes" in varying and len(varying) > 1 else None
        if sem:
            fig = versus(summary, "complexity_nats", "avg_representation_bits", sem, varying, per)
            fig.axes[0].set_title("Average representation length vs content complexity (paper Fig. 2)")
            figs["fig2_representation_vs_complexity"] = fig
        if "system_bits_per_item" in summary:
            fig = versus(summary, "complexity_nats", "system_bits_per_item", None, varying, per)
            fig.axes[0].set_title("System bits per item, every item and route, vs content complexity")
            figs["fig2b_system_bits_vs_complexity"] = fig
        fig = versus(summary, "complexity_nats", "semantic_impact", None, varying, per)
        fig.axes[0].set_title("Semantic impact vs content complexity (paper Fig. 3)")
        figs["fig3_impact_vs_complexity"] = fig
    snr = [k for k in varying if k == "link.snr_db"]
    if snr and "psnr_all_db" in summary:
        figs["cliff_psnr_vs_snr"] = cliff(summary, [k for k in varying if k != "link.snr_db"])
    for k in varying:
        if pd.api.types.is_numeric_dtype(summary[k]):
            others = [o for o in varying if o != k]
            figs[f"sweep_{k.replace('.', '_')}"] = versus(summary, k, "semantic_impact", None, [k] + others)
    return figs

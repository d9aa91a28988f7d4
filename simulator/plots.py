"""Plots drawn from the result tables (never from in-memory state, so ``semsim report`` can
redraw them from a results directory alone).

Figures are built with matplotlib's object API (:class:`matplotlib.figure.Figure`), never
through ``pyplot``, so drawing them neither selects a backend nor touches a notebook's
figures.

Every figure says what a reader needs without the code: a heading naming the scenario and
its fixed parameters (:func:`heading`), axis labels with units (:func:`axis_label` for swept
keys), a legend when more than one series is drawn, and a footnote saying what the error bars
are (min-max over the seeds or sweep points pooled in a marker; none, and "one seed", when a
marker holds a single run). Bars and error bars of positive quantities never reach below 0
(they span the observed min-max). An infinite PSNR (lossless) is drawn as an upward triangle
at the top of the axis, labelled "lossless", never dropped silently.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

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
    return str(pipeline)


LABELS = {
    "avg_bits_on_air": "bits on air per item (bits)",
    "semantic_impact": "semantic impact (packets / (repr. x s))",
    "fidelity_share": "share of items meeting fidelity (0..1)",
    "avg_delivery_time_s": "mean delivery time (s)",
    "avg_representation_bits": "mean representation length |Z| (bits per item)",
    "complexity_nats": "content complexity H (nats per item)",
    "system_bits_per_item": "system bits per item (bits; all items, headers included)",
    "semantic_impact_semantic": "semantic impact per semantic representation (packets / (repr. x s))",
    "psnr_all_db": "PSNR over all items (dB)",
    "psnr_delivered_db": "PSNR over delivered items (dB)",
    "delivered_share": "share of items delivered (0..1)",
    "esn0_db": "Es/N0 (dB)",
    "ebn0_db": "Eb/N0 (dB)",
}

# Human labels, with units, of the scenario keys a [sweep] table may hold (docs/scenarios.md).
SWEEP_LABELS = {
    "seed": "seed",
    "link.bandwidth_ratio": "bandwidth ratio (complex channel uses per source dimension)",
    "link.snr_db": "SNR (dB)",  # "Es/N0 (dB)" or "Eb/N0 (dB)" as link.snr_type says: see axis_label
    "link.max_retx": "max. retransmissions per packet",
    "link.header_bits": "header bits per packet (bits)",
    "link.code.k": "LDPC information bits k (bits)",
    "link.code.n": "LDPC codeword bits n (bits)",
    "link.symbol_rate": "symbol rate (symbols/s)",
    "link.ack_delay_s": "ACK delay (s)",
    "link.bler": "block error rate (0..1)",
    "link.decoder_iterations": "BP decoder iterations",
    "source.classes": "number of classes",
    "source.max_items": "items drawn",
    "source.memorizable.fraction": "injected memorizable share (0..1)",
    "fidelity.psnr_db": "PSNR target (dB)",
    "traffic.rate": "arrival rate (items/s)",
    "semantic.lambda": "rate-distortion trade-off λ",
    "semantic.own_dictionary": "dictionary clusters of a language",
    "semantic.latent_channels": "latent channels",
    "semantic.epochs": "language training epochs",
    "preprocess.clusters": "clusters L",
    "preprocess.epochs": "pre-processor training epochs",
    "classical.quality": "classical codec quality",
    "nodes.teacher_flop_per_s": "teacher compute (FLOP/s)",
    "nodes.apprentice_flop_per_s": "apprentice compute (FLOP/s)",
}

# Short names of swept keys for legends ("max. retx = 4").
SHORT_LABELS = {"link.bandwidth_ratio": "bandwidth", "jscc.snr_aware": "told the SNR",
                "link.snr_db": "SNR", "link.max_retx": "max. retx", "source.classes": "classes",
                "source.memorizable.fraction": "memorizable share", "fidelity.psnr_db": "PSNR target",
                "semantic.lambda": "λ", "traffic.rate": "arrival rate", "preprocess.clusters": "L"}

_UNIT_SUFFIXES = {"db": "dB", "s": "s", "bits": "bits", "nats": "nats", "hz": "Hz"}
MODULATIONS = {2: "QPSK", 4: "16-QAM", 6: "64-QAM", 8: "256-QAM"}
LOSSLESS_MARKER = "^"
LOSSLESS_LABEL = "lossless (PSNR = inf), drawn at the top"


def _snr_type(summary: pd.DataFrame | None, scenario: Mapping | None) -> str | None:
    link = (scenario or {}).get("link") or {}
    if link.get("snr_type") in ("esn0", "ebn0"):
        return link["snr_type"]
    if summary is not None and "link.snr_db" in summary:
        for col, kind in (("esn0_db", "esn0"), ("ebn0_db", "ebn0")):
            if col in summary and np.allclose(summary[col].to_numpy(float), summary["link.snr_db"].to_numpy(float),
                                              equal_nan=True):
                return kind
    return None


def axis_label(key: str, summary: pd.DataFrame | None = None, scenario: Mapping | None = None) -> str:
    """A human axis label, with its unit, for a result column or a swept scenario key.

    Known keys come from :data:`LABELS` and :data:`SWEEP_LABELS` (``link.snr_db`` reads
    "Es/N0 (dB)" or "Eb/N0 (dB)" as the scenario's ``link.snr_type``, or the summary's
    ``esn0_db``/``ebn0_db`` columns, say); any other key reads as its last dotted part with
    underscores as spaces and a unit suffix (``_db``, ``_s``, ``_bits``, ``_nats``) as the unit.
    """
    if key == "link.snr_db":
        kind = _snr_type(summary, scenario)
        return {"esn0": "Es/N0 (dB)", "ebn0": "Eb/N0 (dB)"}.get(kind or "", SWEEP_LABELS[key])
    if key in LABELS:
        return LABELS[key]
    if key in SWEEP_LABELS:
        return SWEEP_LABELS[key]
    words = key.split(".")[-1].split("_")
    unit = _UNIT_SUFFIXES.get(words[-1].lower()) if len(words) > 1 else None
    if unit:
        words = words[:-1]
    return " ".join(words) + (f" ({unit})" if unit else "")


def short_label(key: str) -> str:
    """A short name of a swept key for legends ("link.max_retx" -> "max. retx")."""
    if key in SHORT_LABELS:
        return SHORT_LABELS[key]
    label = axis_label(key)
    return label.split(" (")[0] if label.endswith(")") else label


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}"
    return str(v)


def _fixed(summary: pd.DataFrame | None, col: str) -> Any:
    """The value of ``col`` if it takes one value across the summary, else None."""
    if summary is None or col not in summary or summary[col].isna().all():
        return None
    vals = summary[col].dropna().unique()
    return vals[0] if len(vals) == 1 else None


def fixed_parameters(summary: pd.DataFrame | None = None, scenario: Mapping | None = None,
                     sweep_keys: list[str] | None = None) -> list[str]:
    """The scenario's fixed parameters as short phrases ("digits, 1797 items", "AWGN Es/N0 9 dB", ...).

    Read from ``scenario`` (the resolved scenario, as in ``meta.json``) where given, else from
    the summary's columns (items, esn0_db, code_rate, bits_per_symbol); swept keys are left
    out (they are on an axis or in the legend)."""
    sc = dict(scenario or {})
    swept = set(sweep_keys or []) | set((sc.get("sweep") or {}).keys())
    parts: list[str] = []
    # the source
    src = sc.get("source") or {}
    source = []
    if src.get("dataset"):
        source.append(str(src["dataset"]).split(":")[0])
    if src.get("classes") is not None and "source.classes" not in swept:
        source.append(f"{src['classes']} classes")
    n = _fixed(summary, "items")
    if n is not None:
        source.append(f"{int(n)} items")
    elif summary is not None and "items" in summary and len(summary):
        source.append(f"{int(summary['items'].min())}-{int(summary['items'].max())} items")
    mem = src.get("memorizable") or {}
    if mem.get("fraction") and "source.memorizable.fraction" not in swept:
        source.append(f"{float(mem['fraction']):.0%} {mem.get('kind', '')} memorizable".replace("  ", " "))
    if source:
        parts.append(", ".join(source))
    # the link
    link = sc.get("link") or {}
    phy = []
    if link.get("channel") and "link.channel" not in swept:
        phy.append(str(link["channel"]).upper() if link["channel"] == "awgn" else str(link["channel"]))
    kind = _snr_type(summary, sc) or "esn0"
    col, name = ("ebn0_db", "Eb/N0") if kind == "ebn0" else ("esn0_db", "Es/N0")
    snr = _fixed(summary, col)
    if snr is None and "link.snr_db" not in swept and link.get("snr_db") is not None and summary is None:
        snr = link["snr_db"]
    if snr is not None:
        phy.append(f"{name} {_fmt(float(snr))} dB")
    adaptive = link.get("mcs") == "adaptive" or "link.mcs" in swept  # the pair is chosen per point
    bps = _fixed(summary, "bits_per_symbol")
    mod = MODULATIONS.get(int(bps)) if bps is not None else None
    if not adaptive and "link.modulation" not in swept:
        mod = mod or ({"qpsk": "QPSK", "qam16": "16-QAM", "qam64": "64-QAM", "qam256": "256-QAM"}
                      .get(link.get("modulation")))
    if link.get("mcs") == "adaptive" and "link.mcs" not in swept:
        phy.append("adaptive MCS")
    elif mod:
        phy.append(mod)
    code = link.get("code") or {}
    names = {"qpsk": "QPSK", "qam16": "16-QAM", "qam64": "64-QAM", "qam256": "256-QAM"}
    if "link.mcs" in swept and link.get("modulation") in names and code.get("k") and code.get("n"):
        phy.append(f"fixed MCS {names[link['modulation']]}, LDPC k/n = {code['k']}/{code['n']}")
    elif adaptive:
        pass
    elif code.get("k") and code.get("n") and not swept & {"link.code.k", "link.code.n"}:
        phy.append(f"LDPC k/n = {code['k']}/{code['n']}")
    else:
        rate = _fixed(summary, "code_rate")
        if rate is not None:
            phy.append(f"code rate {float(rate):.3g}")
    if link.get("max_retx") is not None and "link.max_retx" not in swept:
        phy.append(f"max. {link['max_retx']} retx")
    if link.get("bandwidth_ratio") is not None and "link.bandwidth_ratio" not in swept:
        phy.append(f"bandwidth ratio {_fmt(float(link['bandwidth_ratio']))}")
    if phy:
        head = " ".join(phy[:2]) if snr is not None and link.get("channel") else phy[0]
        rest = phy[2:] if head != phy[0] else phy[1:]
        parts.append(", ".join([head, *rest]))
    fid = sc.get("fidelity") or {}
    if fid.get("psnr_db") is not None and "fidelity.psnr_db" not in swept:
        parts.append(f"PSNR target {_fmt(fid['psnr_db'])} dB")
    cls = sc.get("classical") or {}
    if cls.get("coder"):
        parts.append(f"classical coder {cls['coder']}")
    return parts


def heading(title: str | None, summary: pd.DataFrame | None = None, scenario: Mapping | None = None,
            sweep_keys: list[str] | None = None, width: int = 110) -> str:
    """The figure heading: the scenario name and its fixed parameters, " · "-separated,
    wrapped at ``width`` characters. The name is ``title``, else the scenario's ``name``, else a
    ``scenario`` column of the summary holding one value, else left out."""
    name = title or (scenario or {}).get("name") or _fixed(summary, "scenario")
    parts = ([str(name)] if name else []) + fixed_parameters(summary, scenario, sweep_keys)
    lines, line = [], ""
    for part in parts:
        if line and len(line) + 3 + len(part) > width:
            lines.append(line)
            line = part
        else:
            line = f"{line} · {part}" if line else part
    if line:
        lines.append(line)
    return "\n".join(lines)


def finish(fig: Figure, head: str, notes: list[str] | None = None, w_pad: float | None = None) -> Figure:
    """Lay ``fig`` out with ``head`` as its suptitle and ``notes`` as a footnote (small, grey,
    bottom left), leaving room for both."""
    h = fig.get_figheight()
    notes = [n for n in (notes or []) if n]
    bottom = (0.08 + 0.15 * len(notes)) / h if notes else 0.0
    if head:
        fig.suptitle(head, fontsize=9.5, y=1 - 0.06 / h, va="top")
    if notes:
        fig.text(0.01, 0.04 / h, "\n".join(notes), fontsize=7.5, color="0.3", ha="left", va="bottom")
    fig.tight_layout(rect=(0, bottom, 1, 1), w_pad=w_pad)  # tight_layout makes room for the suptitle itself
    return fig


def _pipelines(df: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(df["pipeline"]))


def _wrap(label: str, width: int = 20) -> str:
    label = str(label)
    return "\n".join(textwrap.wrap(label, width, break_on_hyphens=False)) or label


def draw_lossless(ax, xs, color_: str, label: str | None = LOSSLESS_LABEL, annotate: bool = True) -> None:
    """Upward triangles at the top of ``ax`` at ``xs``: points whose PSNR is infinite."""
    xs = np.asarray(xs, dtype=float)
    if not len(xs):
        return
    ax.plot(xs, np.ones_like(xs), linestyle="none", marker=LOSSLESS_MARKER, markersize=9, color=color_,
            markeredgecolor="k", transform=ax.get_xaxis_transform(), clip_on=False, zorder=5, label=label)
    if annotate:
        ax.annotate("lossless", (float(xs[0]), 1.0), xycoords=ax.get_xaxis_transform(), xytext=(6, -10),
                    textcoords="offset points", fontsize=7, color=color_, va="top")


def _lossless_proxy() -> Line2D:
    return Line2D([], [], linestyle="none", marker=LOSSLESS_MARKER, markersize=8, color="0.6", markeredgecolor="k",
                  label=LOSSLESS_LABEL)


def _minmax_err(mean: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Asymmetric error bars spanning [lo, hi] around ``mean`` (lengths >= 0; NaN -> 0)."""
    return np.nan_to_num(np.vstack([mean - lo, hi - mean]), nan=0.0).clip(min=0.0)


def _runs_note(n_max: int, what: str) -> str:
    if n_max <= 1:
        return f"one {what} per marker: no error bars"
    return f"markers: mean over the {what}s of a point; error bars: min-max over them (up to {n_max} {what}s)"


# --------------------------------------------------------------------------- figures


OVERVIEW = ["avg_bits_on_air", "semantic_impact", "fidelity_share", "avg_delivery_time_s"]
OVERVIEW_TITLES = {"avg_bits_on_air": "bits on air", "semantic_impact": "semantic impact",
                   "fidelity_share": "fidelity", "avg_delivery_time_s": "delivery time"}


def overview(summary: pd.DataFrame, title: str | None = None, scenario: Mapping | None = None,
             sweep_keys: list[str] | None = None) -> Figure:
    """Per pipeline (one horizontal bar each), the mean of four metrics over the run's sweep
    points, with whiskers spanning their min-max over the points (none with one point)."""
    names = _pipelines(summary)
    fig = Figure(figsize=(13.0, 1.9 + 0.42 * len(names)))
    axes = fig.subplots(1, len(OVERVIEW), sharey=True)
    y = np.arange(len(names))
    n_points = int(summary.groupby("pipeline", sort=False).size().max()) if len(summary) else 0
    for i, (ax, m) in enumerate(zip(axes, OVERVIEW)):
        g = summary.groupby("pipeline", sort=False)[m]
        mean = g.mean().reindex(names).to_numpy(float)
        lo, hi = g.min().reindex(names).to_numpy(float), g.max().reindex(names).to_numpy(float)
        label = LABELS[m]
        scale = 1.0
        if m == "avg_delivery_time_s" and np.nanmax(np.append(hi, 0)) < 1.0 and np.isfinite(hi).any():
            scale, label = 1e3, "mean delivery time (ms)"
        ok = np.isfinite(mean)
        ax.barh(y[ok], mean[ok] * scale, color=[color(p) for p, k in zip(names, ok) if k], height=0.6,
                xerr=_minmax_err(mean[ok], lo[ok], hi[ok]) * scale if n_points > 1 else None, capsize=3,
                error_kw={"elinewidth": 1})
        for j in np.flatnonzero(~ok):
            ax.text(0.02, y[j], "nothing delivered" if m == "avg_delivery_time_s" else "no value", va="center",
                    ha="left", fontsize=7.5, color="0.3", transform=ax.get_yaxis_transform())
        ax.set_xlabel(label, fontsize=8.5)
        ax.set_title(OVERVIEW_TITLES[m], fontsize=10)
        ax.set_xlim(left=0)
        if m == "fidelity_share":
            ax.set_xlim(0, 1.05)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, min_n_ticks=3))
        if i == 0:
            ax.set_yticks(y, [_wrap(pipeline_label(p), 22) for p in names])
            ax.invert_yaxis()
    notes = [("bars: the one sweep point of the run" if n_points <= 1 else
              f"bars: mean over the {n_points} sweep points of the run; whiskers: min-max over them")
             + "; delivery time: mean over delivered items"]
    head = heading(title, summary, scenario, sweep_keys)
    return finish(fig, "Pipelines compared" + (f"\n{head}" if head else ""), notes, w_pad=2.5)


def delivery_cdf(items: pd.DataFrame, title: str | None = None, summary: pd.DataFrame | None = None,
                 scenario: Mapping | None = None, sweep_keys: list[str] | None = None) -> Figure:
    """Empirical CDF of the delivery time per pipeline, as a share of all the pipeline's items
    (so a curve tops out at its delivered share), pooled over the run's sweep points. Pipelines
    that delivered nothing are named in the plot; if none delivered anything the panel says so."""
    fig = Figure(figsize=(6.6, 4.4))
    ax = fig.subplots()
    drawn, empty = 0, []
    for p in _pipelines(items):
        sel = items["pipeline"] == p
        ok = sel & items["delivered"].astype(bool)
        t = np.sort(items.loc[ok, "delivery_time_s"].to_numpy(dtype=float))
        if len(t):
            ax.step(t, np.arange(1, len(t) + 1) / int(sel.sum()), where="post", label=pipeline_label(p), color=color(p))
            drawn += 1
        else:
            empty.append(pipeline_label(p))
    ax.set_xlabel("delivery time, arrival at teacher to reconstruction (s)")
    ax.set_ylabel("share of items delivered by t (0..1)")
    ax.set_ylim(-0.02, 1.05)
    ax.grid(alpha=0.3)
    if drawn:
        ax.set_xscale("log")
        ax.legend(fontsize=8, loc="lower right")
        if empty:
            ax.text(0.02, 0.97, "nothing delivered: " + ", ".join(empty), transform=ax.transAxes, fontsize=8,
                    va="top", ha="left", color="0.25")
    else:
        ax.set_xticks([])
        ax.text(0.5, 0.5, "no item was delivered\n\nnothing delivered by:\n" + "\n".join(empty),
                transform=ax.transAxes, ha="center", va="center", fontsize=9,
                bbox={"facecolor": "white", "edgecolor": "0.7", "boxstyle": "round,pad=0.5"})
    ax.set_title("Delivery time", fontsize=10)
    n_points = items["point"].nunique() if "point" in items else 1
    note = f"pooled over the {n_points} sweep points of the run; " if n_points > 1 else ""
    return finish(fig, heading(title, summary, scenario, sweep_keys),
                  [note + "undelivered items count in the denominator: a curve ends at its delivered share"])


MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", ":", "-."]


def versus(summary: pd.DataFrame, x: str, y: str, pipelines: list[str] | None = None,
           group_keys: list[str] | None = None, curve_key: str | list[str] | None = None, *, title: str | None = None,
           scenario: Mapping | None = None, sweep_keys: list[str] | None = None, subject: str = "") -> Figure:
    """``y`` against ``x`` per pipeline, one marker per group of sweep points.

    Points are grouped by ``group_keys`` (the swept keys other than the seed; default: by
    ``x``); each marker is the mean over the group (e.g. over seeds), the error bars span its
    min-max, in y and, when x varies inside a group (complexity), in x too; none when every
    group holds one run. With ``curve_key`` (e.g. ``source.classes``) each pipeline gets one
    curve per value of that key (marker and line style per value, colour per pipeline); with a
    list of keys, one curve per combination of their values.
    ``subject`` titles the axes; the figure heading names the scenario.
    """
    fig = Figure(figsize=(7.4, 6.6) if curve_key else (6.6, 4.6))
    ax = fig.subplots()
    keys = [k for k in (group_keys or []) if k in summary] or [x]
    ckeys = [curve_key] if isinstance(curve_key, str) else list(curve_key or [])
    n_max, series = 1, 0
    inf_seen = False
    for p in pipelines or _pipelines(summary):
        g = summary[summary["pipeline"] == p]
        if g.empty or g[y].isna().all():
            continue
        curves = list(g.groupby(ckeys, sort=True)) if ckeys else [(None, g)]
        for j, (value, sub) in enumerate(curves):
            agg = (sub.groupby(keys).agg(xm=(x, "mean"), xlo=(x, "min"), xhi=(x, "max"), ym=(y, "mean"),
                                         ylo=(y, "min"), yhi=(y, "max"), n=(y, "size")).sort_values("xm"))
            n_max = max(n_max, int(agg["n"].max()))
            inf = np.isposinf(agg["ym"].to_numpy(float))
            fin = agg[~inf]
            values = value if isinstance(value, tuple) else (value,)
            tag = "".join(f", {short_label(k)} = {_fmt(v)}" for k, v in zip(ckeys, values))
            many = n_max > 1
            ax.errorbar(fin["xm"], fin["ym"],
                        yerr=_minmax_err(fin["ym"].to_numpy(float), fin["ylo"].to_numpy(float),
                                         fin["yhi"].to_numpy(float)) if many else None,
                        xerr=_minmax_err(fin["xm"].to_numpy(float), fin["xlo"].to_numpy(float),
                                         fin["xhi"].to_numpy(float)) if many else None,
                        marker=MARKERS[j % len(MARKERS)], linestyle=LINESTYLES[j % len(LINESTYLES)], capsize=3,
                        label=pipeline_label(p) + tag, color=color(p), markersize=4 if curve_key else 6)
            if inf.any():
                draw_lossless(ax, agg["xm"].to_numpy(float)[inf], color(p), label=None, annotate=False)
                inf_seen = True
            series += 1
    ax.set_xlabel(axis_label(x, summary, scenario))
    ax.set_ylabel(axis_label(y, summary, scenario))
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if inf_seen:
        handles.append(_lossless_proxy())
    if handles and len(handles) > 6:  # many curves: the legend goes under the axes, off the data
        ax.legend(handles=handles, fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    elif handles:
        ax.legend(handles=handles, fontsize=8)
    if subject:
        ax.set_title(subject, fontsize=10)
    if not series:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
    return finish(fig, heading(title, summary, scenario, sweep_keys), [_runs_note(n_max, "seed")])


def _psnr_mean(psnr_db: pd.Series) -> float:
    """The PSNR (dB, peak 255) of the mean MSE: inf only when every value is inf."""
    p = psnr_db.to_numpy(dtype=float)
    p = p[~np.isnan(p)]
    if not len(p):
        return float("nan")
    with np.errstate(over="ignore"):
        mse = float(np.mean(np.where(np.isposinf(p), 0.0, 255.0**2 * np.power(10.0, -p / 10.0))))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


#: The most panels :func:`cliff` draws (one per combination of the other swept keys).
CLIFF_PANELS = 6


def cliff(summary: pd.DataFrame, others: list[str], title: str | None = None, scenario: Mapping | None = None,
          sweep_keys: list[str] | None = None, metric: str = "psnr") -> Figure:
    """PSNR against Es/N0, one line per pipeline: over all items with the undelivered ones
    filled in (solid) and over the delivered ones only (thin dashed, where it differs). The
    other swept keys (e.g. ``link.bandwidth_ratio`` and ``link.channel``) give one panel per
    combination of their values when several pipelines are compared (at most
    :data:`CLIFF_PANELS`, shared axes), else one line per pipeline and value on one axis. Means
    over seeds, through the MSE; a lossless (infinite) PSNR is an upward triangle at the top of
    the axis. ``metric = "msssim"``: the mean MS-SSIM over all items instead (``msssim_all``,
    lost ones as the mean image; mean over seeds)."""
    if metric == "msssim":
        summary = summary.assign(psnr_all_db=summary["msssim_all"], psnr_delivered_db=summary["msssim_all"])
    keys = [k for k in others if k in summary]
    pipelines = _pipelines(summary)
    panel_keys = keys if len(pipelines) > 1 and keys else []
    panels = list(summary.groupby(panel_keys, sort=True)) if panel_keys else [((), summary)]
    if len(panels) > CLIFF_PANELS:
        panel_keys, panels = [], [((), summary)]
    line_keys = [k for k in keys if k not in panel_keys]
    cols = min(2, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(7.6, 5.0) if cols == 1 else (12.0, 0.6 + 4.2 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)).ravel()
    styles = ["-", "-.", ":", (0, (5, 1))]
    lossless: list[tuple[object, np.ndarray, str]] = []
    dashed = False
    n_max = 1
    for ax, (pvalues, psub) in zip(axes, panels):
        pvalues = pvalues if isinstance(pvalues, tuple) else (pvalues,)
        if panel_keys:
            ax.set_title(", ".join(f"{short_label(k)} = {_fmt(v)}" for k, v in zip(panel_keys, pvalues)), fontsize=9)
        for p in pipelines:
            g = psub[psub["pipeline"] == p]
            groups = g.groupby(line_keys, sort=True) if line_keys else [((), g)]
            for j, (values, sub) in enumerate(groups):
                if sub.empty:
                    continue
                values = values if isinstance(values, tuple) else (values,)
                tag = ", ".join(f"{short_label(k)} = {_fmt(v)}" for k, v in zip(line_keys, values))
                mean = "mean" if metric == "msssim" else _psnr_mean
                agg = sub.groupby("esn0_db").agg(all=("psnr_all_db", mean), dlv=("psnr_delivered_db", mean),
                                                 n=("psnr_all_db", "size")).sort_index()
                n_max = max(n_max, int(agg["n"].max()))
                label = pipeline_label(p) + (f" ({tag})" if tag else "")
                x, a, d = agg.index.to_numpy(float), agg["all"].to_numpy(float), agg["dlv"].to_numpy(float)
                fa = np.isfinite(a)
                ax.plot(x[fa], a[fa], marker=MARKERS[(j // len(styles)) % len(MARKERS)], markersize=4,
                        linestyle=styles[j % len(styles)], color=color(p), label=label)
                if np.isposinf(a).any():
                    lossless.append((ax, x[np.isposinf(a)], color(p)))
                if not np.allclose(a, d, equal_nan=True):
                    fd = np.isfinite(d)
                    ax.plot(x[fd], d[fd], linestyle="--", color=color(p), alpha=0.45, linewidth=1)
                    dashed = True
                    if np.isposinf(d).any() and not np.isposinf(a).any():
                        lossless.append((ax, x[np.isposinf(d)], color(p)))
        ax.grid(alpha=0.3)
    for ax, xs, c in lossless:
        draw_lossless(ax, xs, c, label=None, annotate=False)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    what = ("MS-SSIM over all items, lost ones as the mean image (0..1)" if metric == "msssim"
            else "PSNR over all items, lost ones as the mean image (dB)")
    for i, ax in enumerate(axes[:len(panels)]):
        if i % cols == 0:
            ax.set_ylabel(what if cols == 1 else what.replace(", lost", ",\nlost"))
        if i + cols >= len(panels):
            ax.set_xlabel("Es/N0 (dB)")
            ax.tick_params(labelbottom=True)
    subject = ("MS-SSIM against channel SNR" if metric == "msssim"
               else "Cliff effect: fidelity against channel SNR")
    if panel_keys:
        subject += ", one panel per " + " and ".join(short_label(k) for k in panel_keys)
    if not panel_keys:
        axes[0].set_title(subject, fontsize=10)
    handles, _ = axes[0].get_legend_handles_labels()
    if dashed:
        handles.append(Line2D([], [], linestyle="--", color="0.5", alpha=0.6, label="delivered items only"))
    if lossless:
        handles.append(_lossless_proxy())
    axes[0].legend(handles=handles, fontsize=7.5)
    how = "" if metric == "msssim" else " (through the MSE)"
    notes = [("one seed per point" if n_max <= 1 else f"mean over up to {n_max} seeds per point{how}")]
    head = heading(title, summary, scenario, sweep_keys)
    return finish(fig, f"{subject}\n{head}" if panel_keys else head, notes)


def link_curves(summary: pd.DataFrame, others: list[str], title: str | None = None, scenario: Mapping | None = None,
                sweep_keys: list[str] | None = None) -> Figure:
    """The link against Es/N0: goodput (delivered stream bits per channel use) and mean delivery
    time, one line per pipeline and per value of the other swept keys (e.g. ``link.harq``,
    ``link.mcs``: none / chase / ir, fixed / adaptive). Means over seeds."""
    fig = Figure(figsize=(11.5, 4.8))
    ax_t, ax_d = fig.subplots(1, 2)
    styles = ["-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1))]
    keys = [k for k in others if k in summary]
    n_max = 1
    nothing: list[str] = []
    pipelines = _pipelines(summary)
    # one pipeline: colour by the first other key's value, line style by the second's
    levels = [list(dict.fromkeys(summary[k])) for k in keys]
    for p in pipelines:
        g = summary[summary["pipeline"] == p]
        groups = g.groupby(keys, sort=True) if keys else [((), g)]
        for j, (values, sub_) in enumerate(groups):
            values = values if isinstance(values, tuple) else (values,)
            tag = ", ".join(f"{short_label(k)} = {_fmt(v)}" for k, v in zip(keys, values))
            if len(pipelines) == 1 and keys:
                label = tag
                shade = PALETTE[levels[0].index(values[0]) % len(PALETTE)]
                j = levels[1].index(values[1]) if len(keys) > 1 else j
            else:
                label = pipeline_label(p) + (f" ({tag})" if tag else "")
                shade = color(p)
            agg = sub_.groupby("esn0_db").agg(goodput=("goodput_bits_per_channel_use", "mean"),
                                              delay=("avg_delivery_time_s", "mean"),
                                              n=("goodput_bits_per_channel_use", "size")).sort_index()
            n_max = max(n_max, int(agg["n"].max()))
            x = agg.index.to_numpy(float)
            style = dict(marker=MARKERS[j % len(MARKERS)], markersize=4, linestyle=styles[j % len(styles)],
                         color=shade, label=label)
            ax_t.plot(x, agg["goodput"].to_numpy(float), **style)
            delay = agg["delay"].to_numpy(float) * 1e3
            if np.isfinite(delay).any():
                ax_d.plot(x[np.isfinite(delay)], delay[np.isfinite(delay)], **style)
            if not np.isfinite(delay).all():
                nothing.append(f"{label}: nothing delivered at Es/N0 "
                               + ", ".join(_fmt(v) for v in x[~np.isfinite(delay)]) + " dB")
    ax_t.set_xlabel("Es/N0 (dB)")
    ax_t.set_ylabel("goodput (delivered bits per complex channel use)")
    only = f" of {pipeline_label(pipelines[0])}" if len(pipelines) == 1 else ""
    ax_t.set_title(f"Throughput{only}", fontsize=10)
    ax_d.set_xlabel("Es/N0 (dB)")
    ax_d.set_ylabel("mean delivery time of delivered items (ms)")
    ax_d.set_yscale("log")
    ax_d.set_title(f"Delay{only}", fontsize=10)
    for ax in (ax_t, ax_d):
        ax.grid(alpha=0.3)
    handles, _ = ax_t.get_legend_handles_labels()
    if handles:
        ax_t.legend(handles=handles, fontsize=7, ncol=1)
    notes = [("one seed per point" if n_max <= 1 else f"mean over up to {n_max} seeds per point"),
             *nothing]
    return finish(fig, heading(title, summary, scenario, sweep_keys), notes)


def all_plots(items: pd.DataFrame, summary: pd.DataFrame, sweep_keys: list[str], title: str | None = None,
              scenario: Mapping | Any | None = None) -> dict[str, Figure]:
    """Every plot for a run: name (without .png) -> figure.

    Args:
        items, summary: the run's ``items.csv`` and ``summary.csv``.
        sweep_keys: the scenario's swept keys (``seed`` included).
        title: the scenario name, heading every figure; default: the ``name`` of ``scenario``,
            else a ``scenario`` column of the summary, else none.
        scenario: the resolved scenario (the ``scenario`` record of ``meta.json``, or a
            :class:`~simulator.scenario.Scenario`), for the fixed parameters in the heading
            (dataset, channel, SNR type, code, retransmissions, target); default: what the tables
            say (items, Es/N0, modulation, code rate).
    """
    if scenario is not None and not isinstance(scenario, Mapping):
        scenario = scenario.resolved()
    ctx = {"title": title, "scenario": scenario, "sweep_keys": sweep_keys}
    figs = {"overview": overview(summary, **ctx), "delivery_time_cdf": delivery_cdf(items, summary=summary, **ctx)}
    varying = [k for k in sweep_keys if k != "seed" and k in summary and summary[k].nunique() > 1]
    if summary["complexity_nats"].nunique() > 1:
        served = summary.groupby("pipeline", sort=False)["semantic_items"].sum()
        sem = [p for p in _pipelines(summary) if served[p] > 0]
        # one curve per class count when the class count is swept beside something else
        per = "source.classes" if "source.classes" in varying and len(varying) > 1 else None
        if sem:
            figs["fig2_representation_vs_complexity"] = versus(
                summary, "complexity_nats", "avg_representation_bits", sem, varying, per,
                subject="Mean representation length vs content complexity (paper Fig. 2)", **ctx)
        if "system_bits_per_item" in summary:
            figs["fig2b_system_bits_vs_complexity"] = versus(
                summary, "complexity_nats", "system_bits_per_item", None, varying, per,
                subject="System bits per item, every item and route, vs content complexity", **ctx)
        figs["fig3_impact_vs_complexity"] = versus(
            summary, "complexity_nats", "semantic_impact", None, varying, per,
            subject="Semantic impact vs content complexity (paper Fig. 3)", **ctx)
    snr = [k for k in varying if k == "link.snr_db"]
    if snr and "psnr_all_db" in summary:
        figs["cliff_psnr_vs_snr"] = cliff(summary, [k for k in varying if k != "link.snr_db"], **ctx)
    if snr and "msssim_all" in summary:
        figs["msssim_vs_snr"] = cliff(summary, [k for k in varying if k != "link.snr_db"], metric="msssim", **ctx)
    if snr and "link.bandwidth_ratio" in varying:
        at = summary["link.snr_db"].iloc[int((summary["link.snr_db"] - 10.0).abs().to_numpy().argmin())]
        others = [k for k in varying if k not in ("link.snr_db", "link.bandwidth_ratio")]
        figs["psnr_vs_bandwidth"] = versus(
            summary[summary["link.snr_db"] == at], "link.bandwidth_ratio", "psnr_all_db", None,
            ["link.bandwidth_ratio"] + others, others or None,
            subject=f"PSNR against bandwidth ratio at {short_label('link.snr_db')} = {_fmt(at)} dB", **ctx)
    if snr and "goodput_bits_per_channel_use" in summary:
        figs["link_throughput_delay_vs_snr"] = link_curves(summary, [k for k in varying if k != "link.snr_db"], **ctx)
    for k in varying:
        if pd.api.types.is_numeric_dtype(summary[k]):
            others = [o for o in varying if o != k]
            figs[f"sweep_{k.replace('.', '_')}"] = versus(
                summary, k, "semantic_impact", None, [k] + others, others or None,
                subject=f"Semantic impact vs {short_label(k)}", **ctx)
    return figs

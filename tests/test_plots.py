"""Figures a reviewer accepts: a heading naming the scenario and its fixed parameters, axis
labels with units (swept keys included), no overlapping tick labels, error bars that say what
they are and never reach below 0 for positive quantities, lossless points drawn as such, and a
clear panel when nothing was delivered. Synthetic tables with the real column sets."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from simulator.plots import all_plots, axis_label, delivery_cdf, overview
from simulator.rd import rd_figures

# the columns of a real run's summary.csv and items.csv (scenarios/demo.toml); swept keys go after seed
SUMMARY_COLUMNS = (
    "point,seed,pipeline,reads_ground_truth,items,semantic_items,complexity_nats,avg_representation_bits,"
    "avg_estimated_bits,avg_item_bits,system_bits_per_item,avg_bits_on_air,avg_packets,transmissions_per_packet,"
    "delivered_share,avg_delivery_time_s,avg_queue_wait_s,avg_psnr_semantic_db,msssim_all,fidelity_share,"
    "semantic_impact,semantic_impact_semantic,semantic_impact_at_16db,semantic_impact_at_18db,"
    "semantic_impact_at_20db,semantic_impact_at_22db,semantic_impact_at_24db,semantic_impact_at_26db,"
    "semantic_impact_at_28db,semantic_impact_at_30db,language_complexity_per_item_nats,model_bits,"
    "undelivered_items,psnr_delivered_db,psnr_all_db,quality_target_missed_items,esn0_db,ebn0_db,code_rate,"
    "bits_per_symbol,channel_uses_per_pixel,channel_uses_per_pixel_semantic,channel_uses_per_pixel_classical"
).split(",")
ITEM_COLUMNS = (
    "point,seed,pipeline,item,label,kind,route,cluster,predicted_memorizable,representation_bits,estimated_bits,"
    "packets,transmissions,retransmissions,bits_on_air,arrival_s,queue_wait_s,delivery_time_s,delivered,psnr_db,"
    "semantic_ok,meets_fidelity,equiv_classical_packets,semantic_impact,coder,quality,quality_target_missed,mse,"
    "msssim,rung,lossless_bits"
).split(",")
FIVE = ["classical", "vanilla-semantic", "vanilla-fallback", "contrastive", "contrastive-oracle"]
SCENARIO = {"name": "plot-scenario", "source": {"dataset": "digits", "classes": None,
                                                 "memorizable": {"kind": "shuffled", "fraction": 0.2}},
            "link": {"channel": "awgn", "snr_db": 9.0, "snr_type": "esn0", "modulation": "qam16",
                     "code": {"k": 256, "n": 512}, "max_retx": 4},
            "fidelity": {"psnr_db": 20.0}, "classical": {"coder": "png"}, "sweep": {}}


def tables(pipelines=("classical", "contrastive"), sweep: dict | None = None, seeds=(1,), n_items: int = 6,
           delivered: bool = True, spread: float = 0.0):
    """(items, summary) with the real columns: one summary row per point, seed and pipeline."""
    sweep = sweep or {}
    keys = list(sweep)
    srows, irows = [], []
    rng = np.random.default_rng(0)
    for point, (combo, seed) in enumerate(itertools.product(itertools.product(*sweep.values()), seeds)):
        setting = dict(zip(keys, combo))
        for j, p in enumerate(pipelines):
            row = {c: 1.0 for c in SUMMARY_COLUMNS}
            factor = 1.0 + spread * (seed % 3) - spread  # seeds spread around 1 (down to 1 - spread)
            snr = float(setting.get("link.snr_db", 9.0))
            row.update({"point": point, "seed": seed, "pipeline": p, "reads_ground_truth": p.endswith("oracle"),
                        "items": n_items, "semantic_items": 0 if p == "classical" else n_items,
                        "complexity_nats": 50.0 + 5 * setting.get("source.classes", 0) + seed,
                        "avg_representation_bits": (100.0 + 10 * j) * factor,
                        "system_bits_per_item": (400.0 + 50 * j) * factor, "avg_bits_on_air": (600 + 80 * j) * factor,
                        "semantic_impact": max((1000.0 + 300 * j) * factor, 1.0),
                        "fidelity_share": 0.8, "delivered_share": 1.0 if delivered else 0.0,
                        "avg_delivery_time_s": 5e-4 * (1 + j) if delivered else math.nan,
                        "psnr_all_db": math.inf if p == "classical" else 20.0 + snr,
                        "psnr_delivered_db": math.inf if p == "classical" else 21.0 + snr,
                        "esn0_db": snr, "ebn0_db": snr - 3.0, "code_rate": 0.5, "bits_per_symbol": 4})
            row.update(setting)
            srows.append(row)
            for i in range(n_items):
                irow = {c: 0 for c in ITEM_COLUMNS}
                irow.update({"point": point, "seed": seed, "pipeline": p, "item": i, "delivered": delivered,
                             "delivery_time_s": float(rng.uniform(1e-4, 1e-3)) if delivered else math.nan,
                             "psnr_db": math.inf if p == "classical" else 25.0})
                irows.append(irow)
    columns = SUMMARY_COLUMNS[:2] + keys + SUMMARY_COLUMNS[2:]
    return pd.DataFrame(irows, columns=ITEM_COLUMNS), pd.DataFrame(srows, columns=columns)


def texts(fig: Figure) -> str:
    """The heading and every axes title of ``fig``."""
    parts = [fig._suptitle.get_text() if fig._suptitle else ""] + [ax.get_title() for ax in fig.axes]
    return "\n".join(parts)


def strict_plots(*args, **kwargs) -> dict[str, Figure]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figs = all_plots(*args, **kwargs)
        for fig in figs.values():
            FigureCanvasAgg(fig).draw()
    return figs


def test_every_figure_names_the_scenario_and_its_fixed_parameters():
    sweep = {"source.classes": [4, 10], "source.memorizable.fraction": [0.0, 0.2]}
    items, summary = tables(sweep=sweep, seeds=(1, 2))
    figs = strict_plots(items, summary, [*sweep, "seed"], title="plot-scenario", scenario=SCENARIO)
    assert {"overview", "delivery_time_cdf", "fig3_impact_vs_complexity", "sweep_source_classes"} <= set(figs)
    for name, fig in figs.items():
        t = texts(fig)
        assert "plot-scenario" in t and "AWGN Es/N0 9 dB" in t and "16-QAM" in t and "6 items" in t, (name, t)
        assert "20% shuffled memorizable" not in t  # swept, so not a fixed parameter
    # from the tables alone: a scenario column names it, the link comes from the summary's columns
    summary["scenario"] = "from-table"
    for name, fig in strict_plots(items, summary, [*sweep, "seed"]).items():
        t = texts(fig)
        assert "from-table" in t and "Es/N0 9 dB" in t and "16-QAM" in t and "code rate 0.5" in t, (name, t)


def test_axes_have_labels_with_units_for_known_sweep_keys():
    expected = {"link.snr_db": "Es/N0 (dB)", "source.classes": "number of classes",
                "source.memorizable.fraction": "injected memorizable share (0..1)",
                "fidelity.psnr_db": "PSNR target (dB)", "link.max_retx": "max. retransmissions per packet"}
    for key, label in expected.items():
        items, summary = tables(sweep={key: [2, 4, 8]})
        figs = strict_plots(items, summary, [key], scenario=SCENARIO)
        fig = figs[f"sweep_{key.replace('.', '_')}"]
        assert fig.axes[0].get_xlabel() == label
        for name, f in figs.items():
            for ax in f.axes:  # the overview's y axis holds the pipelines' names, unlabelled
                for lab in (ax.get_xlabel(),) + (() if name == "overview" else (ax.get_ylabel(),)):
                    assert lab and "_" not in lab and "." not in lab.split(" (")[0].replace("max.", ""), lab
    assert axis_label("link.snr_db", scenario={"link": {"snr_type": "ebn0"}}) == "Eb/N0 (dB)"
    assert axis_label("traffic.rate") == "arrival rate (items/s)"
    assert axis_label("foo.some_new_knob_db") == "some new knob (dB)"
    assert axis_label("foo.count_of_things") == "count of things"


def _overlaps(boxes) -> list:
    return [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2) if ba.overlaps(bb)]


def test_overview_tick_labels_do_not_overlap_with_the_five_built_in_pipelines():
    items, summary = tables(pipelines=FIVE, sweep={"link.snr_db": [3.0, 9.0]}, seeds=(1, 2, 3), spread=0.5)
    fig = overview(summary, title="plot-scenario", scenario=SCENARIO, sweep_keys=["link.snr_db", "seed"])
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    def drawn(ax, axis):  # the tick labels drawn: visible, non-empty, inside the view limits
        lo, hi = sorted(ax.get_xlim() if axis == 0 else ax.get_ylim())
        ticks = ax.get_xticklabels() if axis == 0 else ax.get_yticklabels()
        return [t for t in ticks if t.get_visible() and t.get_text() and lo <= t.get_position()[axis] <= hi]

    labels = [t for ax in fig.axes for t in drawn(ax, 0) + drawn(ax, 1)]
    assert any("ground-truth split" in t.get_text() for t in labels)  # the oracle's long name is there
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
    assert not _overlaps(boxes)
    # nor do tick labels run into axis labels, titles or the figure's edge
    others = [t for ax in fig.axes for t in (ax.xaxis.label, ax.title)] + [fig._suptitle]
    for t, box in boxes:
        assert 0 <= box.x0 and box.x1 <= fig.bbox.width and 0 <= box.y0 and box.y1 <= fig.bbox.height, t
        for o in others:
            assert not box.overlaps(o.get_window_extent(renderer)), (t, o.get_text())


def _errorbar_segments(fig: Figure) -> list[np.ndarray]:
    segs = []
    for ax in fig.axes:
        for c in ax.containers:
            eb = c if isinstance(c, ErrorbarContainer) else getattr(c, "errorbar", None)
            if eb is not None:
                for coll in eb.lines[2]:
                    segs += [np.asarray(s) for s in coll.get_segments()]
    return segs


def test_error_bars_span_min_max_over_seeds_never_below_zero_and_are_explained():
    # a positive quantity with a large spread over seeds: mean - std would be negative
    items, summary = tables(sweep={"source.classes": [4, 10]}, seeds=(1, 2, 3), spread=0.95)
    figs = strict_plots(items, summary, ["source.classes", "seed"], scenario=SCENARIO)
    for name in ("overview", "sweep_source_classes", "fig3_impact_vs_complexity"):
        segs = _errorbar_segments(figs[name])
        assert segs, name
        assert min(float(s.min()) for s in segs) >= 0.0, name
        note = " ".join(t.get_text() for t in figs[name].texts)
        assert "min-max" in note, (name, note)
    ax = figs["sweep_source_classes"].axes[0]
    seg_y = [s[:, 1] for s in _errorbar_segments(figs["sweep_source_classes"]) if np.ptp(s[:, 0]) == 0]
    assert min(float(y.min()) for y in seg_y) == pytest.approx(summary["semantic_impact"].min())
    assert ax.get_legend() is not None
    # one seed: no error bars, and the figure says so
    items, summary = tables(sweep={"source.classes": [4, 10]}, seeds=(1,))
    figs = strict_plots(items, summary, ["source.classes", "seed"], scenario=SCENARIO)
    assert not _errorbar_segments(figs["sweep_source_classes"])
    assert "one seed" in " ".join(t.get_text() for t in figs["sweep_source_classes"].texts)
    items, summary = tables()  # one sweep point: the overview's bars have no whiskers either
    fig = strict_plots(items, summary, [], scenario=SCENARIO)["overview"]
    assert not _errorbar_segments(fig) and "the one sweep point" in " ".join(t.get_text() for t in fig.texts)


def test_infinite_psnr_is_drawn_at_the_top_and_labelled_lossless():
    snrs = [0.0, 2.0, 4.0, 6.0]
    items, summary = tables(sweep={"link.snr_db": snrs, "link.max_retx": [0, 4]})
    figs = strict_plots(items, summary, ["link.snr_db", "link.max_retx"], scenario=SCENARIO)
    panels = [ax for ax in figs["cliff_psnr_vs_snr"].axes if ax.get_visible()]
    # several pipelines: one panel per value of the other swept key, one line per pipeline
    assert sorted(ax.get_title() for ax in panels) == ["max. retx = 0", "max. retx = 4"]
    for ax in panels:
        tri = [ln for ln in ax.get_lines() if ln.get_marker() == "^"]
        assert tri and sorted(set(np.concatenate([ln.get_xdata() for ln in tri]))) == snrs
        assert all(np.allclose(ln.get_ydata(), 1.0) for ln in tri)  # at the top, in axes coordinates
    legend = [t.get_text() for t in panels[0].get_legend().get_texts()]
    assert any("lossless" in t for t in legend) and not any("retx" in t for t in legend)
    # the rd figure: classical lossless at every target
    rd = pd.DataFrame([{"pipeline": p, "key": "fidelity.psnr_db", "value": v, "system_bits_per_item": r,
                        "avg_bits_on_air": r, "psnr_all_db": q, "msssim_all": 0.9, "fidelity_share": 1.0, "points": 2,
                        "merged_with": ""}
                       for v in (14, 17, 20, 23)
                       for p, r, q in (("classical", 900.0, math.inf), ("contrastive", 20.0 * v, float(v)))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figs = rd_figures(rd, "plot-scenario", summary, SCENARIO)
        FigureCanvasAgg(figs["rd_psnr"]).draw()
    ax = figs["rd_psnr"].axes[0]
    assert "plot-scenario" in texts(figs["rd_psnr"]) and "PSNR target (dB)" in ax.get_title()
    assert [ln.get_xdata().tolist() for ln in ax.get_lines() if ln.get_marker() == "^"] == [[900.0]]
    assert any("lossless" in t.get_text() for t in ax.get_legend().get_texts())


def test_nothing_delivered_is_a_clear_panel_without_warnings():
    items, summary = tables(pipelines=FIVE, delivered=False)
    figs = strict_plots(items, summary, [], title="plot-scenario", scenario=SCENARIO)
    ax = figs["delivery_time_cdf"].axes[0]
    said = " ".join(t.get_text() for t in ax.texts)
    assert "no item was delivered" in said and all(p in said for p in FIVE)
    assert ax.get_legend() is None
    assert "nothing delivered" in " ".join(t.get_text() for a in figs["overview"].axes for t in a.texts)
    # one pipeline delivered nothing: it is named, the others are drawn
    items, _ = tables(pipelines=("classical", "contrastive"))
    items.loc[items.pipeline == "contrastive", "delivered"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = delivery_cdf(items, title="plot-scenario")
        FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    assert "nothing delivered: contrastive" in " ".join(t.get_text() for t in ax.texts)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["classical"]
    assert "plot-scenario" in texts(fig)

"""Rate-distortion curves and BD-rate: what ``semsim rd SCENARIO`` computes.

A scenario is run once per operating point: one numeric scenario key (by default
``fidelity.psnr_db``, the teacher's per-item target quality) is added to the scenario's
``[sweep]`` table with at least four values (:func:`with_operating_points`). A model whose
cache key does not involve that key (the semantic codec, for ``fidelity.psnr_db``) is trained
once and loaded at every other point; one that does (``semantic.lambda``) is trained per
point. The run goes through :func:`simulator.runner.run_scenario` (same resume and
file-safety rules as ``semsim run``), and before the run directory is moved into place three
more kinds of file are staged beside the usual tables (:func:`run_rd`):

* ``rd.csv`` (:func:`rd_table`): one row per pipeline and operating point, the rate
  (``system_bits_per_item``) and the distortion metrics, averaged over the other sweep
  points (seeds, ...); PSNR is averaged through the MSE. ``merged_with`` names the other
  targets of the pipeline that landed on the same operating point (e.g. two PSNR targets
  both served by the language's lowest rung); the BD-rate counts such a point once.
* ``bd_rate.csv`` (:func:`bd_rate_table`): the Bjøntegaard-delta rate of every pipeline
  against every other one, for PSNR and for MS-SSIM in dB, computed with the
  ``bjontegaard`` package (Akima interpolation of log10(rate) over the distortion). A pair
  that cannot be computed gets NaN and a one-phrase reason in ``note``.
* ``rd_psnr.png``, ``rd_msssim.png``, ``rd_fidelity.png`` (:func:`rd_figures`).

Everything but :func:`run_rd` is pure: it works on DataFrames and returns DataFrames or
figures (matplotlib's object API, never ``pyplot``). docs/rd.md is the reference.
"""

from __future__ import annotations

import math
import numbers
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .context import RunContext
from .errors import InputError
from .metrics import psnr_from_mse
from .plots import axis_label, color, draw_lossless, finish, heading, pipeline_label
from .scenario import Scenario, parse_scenario

DEFAULT_KEY = "fidelity.psnr_db"
DEFAULT_VALUES: tuple[float, ...] = (14, 17, 20, 23, 26)
MIN_POINTS = 4  # operating points a BD-rate needs (the usual convention; 4 fix a cubic)
MIN_OVERLAP = 0.75  # below this share of their distortion span in common, two curves get no BD-rate
# (the bjontegaard package's own default threshold)

RATE = "system_bits_per_item"
RD_METRICS = ["avg_bits_on_air", "psnr_all_db", "msssim_all", "fidelity_share"]
RD_COLUMNS = ["pipeline", "key", "value", RATE, *RD_METRICS, "points", "merged_with"]
SAME_RTOL = 1e-9  # two operating points whose rate and qualities agree this closely are one point
BD_COLUMNS = ["pipeline", "reference", "metric", "bd_rate_percent", "points", "note", "operating_points"]
FIGURES = {  # figure name -> (rd column, y-axis label)
    "rd_psnr": ("psnr_all_db", "PSNR over all items (dB)"),
    "rd_msssim": ("msssim_all", "MS-SSIM over all items (0..1)"),
    "rd_fidelity": ("fidelity_share", "share of items meeting fidelity (0..1)"),
}
PEAK = 255.0


# --------------------------------------------------------------------------- the scenario


def _get_dotted(data: dict[str, Any], key: str) -> Any:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def _number(v: Any, key: str) -> int | float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise InputError(f"{key}: operating point {v!r} is not a number", where="--sweep")
    v = v.item() if isinstance(v, np.generic) else v
    if not math.isfinite(v):
        raise InputError(f"{key}: operating point {v!r} is not a finite number", where="--sweep")
    return v


def with_operating_points(scenario: Scenario, key: str, values: Sequence[int | float]) -> Scenario:
    """``scenario`` with ``key`` swept over ``values`` (added last to its ``[sweep]`` table).

    Args:
        scenario: the scenario; its other sweep keys (e.g. ``seed``) stay, and the RD curves
            are means over them.
        key: a numeric scenario key, dotted as in TOML (``fidelity.psnr_db``,
            ``semantic.lambda``); it must not be swept by the scenario already.
        values: at least :data:`MIN_POINTS` distinct finite numbers, in the key's unit.

    Returns:
        The validated scenario (every sweep point checked), whose run id differs from the
        original's.

    Raises:
        InputError: the key is swept already, is not a scenario key or holds a flag, table or
            list, fewer than four values, a value repeats or is not a finite number, or a point
            does not validate (a key that takes no numbers, such as ``link.mode``, fails here).
    """
    data = scenario.resolved()
    if key in data["sweep"]:
        raise InputError(f"the scenario's [sweep] table already sweeps '{key}'; semsim rd sweeps the operating "
                         f"points itself: remove '{key}' from [sweep] or choose another --sweep key", where="--sweep")
    try:
        current = _get_dotted({k: v for k, v in data.items() if k != "sweep"}, key)
    except KeyError:
        raise InputError(f"'{key}' is not a scenario key", where="--sweep") from None
    if isinstance(current, (bool, dict, list)):  # a str (classical.quality = "target") may still take numbers
        raise InputError(f"'{key}' is not a numeric scenario key (its value is {current!r})", where="--sweep")
    values = [_number(v, key) for v in values]
    if len(values) < MIN_POINTS:
        raise InputError(f"{key}: BD-rate needs at least {MIN_POINTS} operating points (got {len(values)})",
                         where="--sweep")
    if len(set(values)) != len(values):
        raise InputError(f"{key}: operating points repeat (got {values})", where="--sweep")
    if key == "semantic.lambda" and scenario.semantic.rate_control != "lambda":
        raise InputError("semantic.lambda sets the pipelines' languages only with semantic.rate_control = "
                         "\"lambda\" (with target-quality they use the ladder): set it, or sweep fidelity.psnr_db",
                         where="--sweep")
    data["sweep"] = {**data["sweep"], key: values}
    return parse_scenario(data, where="--sweep")


# --------------------------------------------------------------------------- tables


def _mean(x: pd.Series) -> float:
    """Arithmetic mean; NaN if any value is NaN (nothing is skipped silently)."""
    return float(np.mean(x.to_numpy(dtype=float))) if len(x) else float("nan")


def _psnr_mean(psnr_db: pd.Series) -> float:
    """The PSNR (dB) of the mean MSE of PSNRs given in dB (peak 255): +inf (MSE 0) stays
    exact, NaN propagates."""
    p = psnr_db.to_numpy(dtype=float)
    if not len(p):
        return float("nan")
    with np.errstate(over="ignore"):
        mse = np.where(np.isposinf(p), 0.0, PEAK**2 * np.power(10.0, -p / 10.0))
    return psnr_from_mse(float(np.mean(mse)), PEAK)


def rd_table(summary: pd.DataFrame, key: str) -> pd.DataFrame:
    """The RD curves of a run: one row per pipeline and operating point.

    Args:
        summary: ``summary.csv`` of the run, one row per sweep point and pipeline, with the
            columns ``pipeline``, ``key`` (the operating point, named by its dotted key) and
            the metrics ``system_bits_per_item`` (bits per item handed to the link, all items,
            both routes, headers included), ``avg_bits_on_air`` (bits per item on air,
            retransmissions included), ``psnr_all_db`` (dB), ``msssim_all`` (0..1) and
            ``fidelity_share`` (0..1). A metric column the summary lacks is NaN.
        key: the swept operating-point key.

    Returns:
        Columns :data:`RD_COLUMNS`: ``pipeline, key, value, system_bits_per_item,
        avg_bits_on_air, psnr_all_db, msssim_all, fidelity_share, points``; pipelines in
        summary order, values ascending. Each metric is the mean over the ``points`` summary
        rows of that pipeline and value (the other sweep points: seeds, ...); ``psnr_all_db``
        is the PSNR of the mean MSE (``10 log10(255^2 / mean(255^2 10^(-psnr/10)))``), not the
        mean of dB. A NaN in a group gives NaN. ``merged_with`` lists (comma-separated) the
        pipeline's other values whose rate, PSNR and MS-SSIM equal this row's (relative
        tolerance :data:`SAME_RTOL`): targets that landed on one operating point; "" if none.

    Raises:
        InputError: ``summary`` has no ``pipeline`` or ``key`` column.
    """
    for col in ("pipeline", key):
        if col not in summary.columns:
            raise InputError(f"the summary has no column '{col}'", where="rd")
    rows = []
    for pipeline in dict.fromkeys(summary["pipeline"]):
        g = summary[summary["pipeline"] == pipeline]
        for value, sub in g.groupby(key, sort=True):
            row: dict[str, Any] = {"pipeline": pipeline, "key": key, "value": value}
            for col in (RATE, *RD_METRICS):
                if col not in sub.columns:
                    row[col] = float("nan")
                elif col == "psnr_all_db":
                    row[col] = _psnr_mean(sub[col])
                else:
                    row[col] = _mean(sub[col])
            row["points"] = len(sub)
            rows.append(row)
    rd = pd.DataFrame(rows, columns=RD_COLUMNS)
    rd["merged_with"] = ""
    for pipeline in dict.fromkeys(rd["pipeline"]):
        idx = rd.index[rd["pipeline"] == pipeline]
        for i in idx:
            same = [j for j in idx if j != i and all(_same(rd.at[i, c], rd.at[j, c])
                                                     for c in (RATE, "psnr_all_db", "msssim_all"))]
            rd.at[i, "merged_with"] = ",".join(f"{rd.at[j, 'value']:g}" if isinstance(rd.at[j, "value"], numbers.Real)
                                               else str(rd.at[j, "value"]) for j in same)
    return rd


def _same(a: Any, b: Any) -> bool:
    """Equal within :data:`SAME_RTOL` (NaN equals NaN, inf equals inf)."""
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=SAME_RTOL, abs_tol=SAME_RTOL)


def _psnr_db(rd: pd.DataFrame) -> np.ndarray:
    return rd["psnr_all_db"].to_numpy(dtype=float)


def _msssim_db(rd: pd.DataFrame) -> np.ndarray:
    """MS-SSIM in dB, -10 log10(1 - MS-SSIM) (+inf at MS-SSIM 1)."""
    m = rd["msssim_all"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -10.0 * np.log10(1.0 - m)


# BD-rate metric -> its values (dB) read from the rows of an rd table.
BD_METRICS: dict[str, Callable[[pd.DataFrame], np.ndarray]] = {"psnr_db": _psnr_db, "msssim_db": _msssim_db}


def _merge(rate: np.ndarray, dist: np.ndarray, values: list, key: str, metric: str
           ) -> tuple[np.ndarray, np.ndarray, list, str]:
    """Operating points with equal rate and equal ``metric`` (within :data:`SAME_RTOL`) made
    one, and a note naming the merged values ("" if none)."""
    groups: list[list[int]] = []
    for i in range(len(rate)):
        for grp in groups:
            j = grp[0]
            if _same(rate[i], rate[j]) and _same(dist[i], dist[j]):
                grp.append(i)
                break
        else:
            groups.append([i])
    merged = [grp for grp in groups if len(grp) > 1]
    if not merged:
        return rate, dist, values, ""
    keep = [grp[0] for grp in groups]
    note = "; ".join(f"{key}=" + ",".join(f"{values[i]:g}" for i in grp) for grp in merged)
    note += f" landed on one operating point (same rate and {metric}); merged"
    return rate[keep], dist[keep], [values[i] for i in keep], note


def _curve(g: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray, str, str]:
    """One pipeline's curve for ``metric``: (rate, distortion) sorted by rate, "" or why it
    cannot be used, and what was done to the operating points (left out, merged).

    An operating point whose rate or distortion is not finite (e.g. every item exact: PSNR
    inf, MS-SSIM 1) is left out of the curve and named. Operating points with the same rate
    and distortion (two targets served by one point, e.g. a language's lowest rung) count
    once, and are named. The rest is used if enough remain."""
    rate = g[RATE].to_numpy(dtype=float)
    dist = BD_METRICS[metric](g)
    values = g["value"].tolist()
    finite = np.isfinite(rate) & np.isfinite(dist)
    dropped = "" if finite.all() else (
        f"left out {g['key'].iloc[0]}=" + ",".join(f"{v:g}" for v, ok in zip(values, finite) if not ok)
        + f" ({metric} or rate not finite)")
    rate, dist, values = rate[finite], dist[finite], [v for v, ok in zip(values, finite) if ok]
    rate, dist, values, merged = _merge(rate, dist, values, str(g["key"].iloc[0]) if len(g) else "", metric)
    done = "; ".join(x for x in (dropped, merged) if x)
    why = _unusable(rate, dist, values, metric, g)
    if why:
        return rate, dist, why + (f"; {done}" if done else ""), ""
    order = np.lexsort((dist, rate))
    return rate[order], dist[order], "", done


def _unusable(rate: np.ndarray, dist: np.ndarray, values: list, metric: str, g: pd.DataFrame) -> str:
    """An empty string when the finite points make a usable curve, else why not."""
    if len(rate) < MIN_POINTS:
        return f"{len(rate)} usable operating point(s), needs {MIN_POINTS}"
    bad = [v for v, r in zip(values, rate) if r <= 0]
    if bad:
        return f"{RATE} not positive at {g['key'].iloc[0]}={bad[0]}"
    order = np.lexsort((dist, rate))
    if len(np.unique(dist)) < MIN_POINTS:
        return f"{len(np.unique(dist))} distinct {metric} value(s), needs {MIN_POINTS}"
    if np.any(np.diff(dist[order]) <= 0):
        return f"{metric} does not rise strictly with rate"
    return ""


def _bd_rate(ref: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], metric: str) -> tuple[float, str]:
    """BD-rate (%) of ``test`` against ``ref`` (both valid curves), or NaN and why not."""
    import bjontegaard as bd  # imported here: it imports matplotlib.pyplot

    (r_ref, d_ref), (r_test, d_test) = ref, test
    lo, hi = max(d_ref.min(), d_test.min()), min(d_ref.max(), d_test.max())
    span = max(d_ref.max(), d_test.max()) - min(d_ref.min(), d_test.min())
    overlap = max(hi - lo, 0.0) / span if span > 0 else 0.0
    if overlap <= 0:
        return float("nan"), (f"curves do not overlap in {metric} ([{d_ref.min():.4g}, {d_ref.max():.4g}] vs "
                              f"[{d_test.min():.4g}, {d_test.max():.4g}])")
    if overlap < MIN_OVERLAP:
        return float("nan"), f"curves share {overlap:.1%} of their {metric} span, needs {MIN_OVERLAP:.0%}"
    partial = f"over the shared {overlap:.1%} of the curves' {metric} span" if overlap < 1.0 else ""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = float(bd.bd_rate(r_ref, d_ref, r_test, d_test, method="akima", require_matching_points=False,
                                     min_overlap=0.0))  # the overlap was checked above
    except Exception as err:  # noqa: BLE001 - any library failure is a NaN with its reason
        return float("nan"), f"bjontegaard failed: {type(err).__name__}: {err}".replace("\n", " ")
    if caught:
        return float("nan"), f"bjontegaard warned: {caught[0].message}".replace("\n", " ")
    if not math.isfinite(value):
        return float("nan"), "bjontegaard gave a non-finite value"
    return value, partial


def bd_rate(ref: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], metric: str = "PSNR"
            ) -> tuple[float, str]:
    """BD-rate (%) of curve ``test`` against ``ref``, each ``(rate, quality)`` arrays of equal
    length (any order), or NaN and the reason: fewer than :data:`MIN_POINTS` points, a quality
    that does not rise strictly with rate, or too little shared quality span (the rules of
    :func:`bd_rate_table`)."""
    curves = []
    for rate, dist in (ref, test):
        rate, dist = np.asarray(rate, dtype=np.float64), np.asarray(dist, dtype=np.float64)
        order = np.argsort(rate)
        rate, dist = rate[order], dist[order]
        if len(rate) < MIN_POINTS:
            return float("nan"), f"{len(rate)} point(s), needs {MIN_POINTS}"
        if np.any(np.diff(dist) <= 0):
            return float("nan"), f"{metric} does not rise strictly with rate"
        curves.append((rate, dist))
    return _bd_rate(curves[0], curves[1], metric)


def bd_rate_table(rd: pd.DataFrame) -> pd.DataFrame:
    """The BD-rate of every pipeline against every other one, per distortion metric.

    Args:
        rd: an :func:`rd_table` (columns :data:`RD_COLUMNS`); rate = ``system_bits_per_item``
            (bits per item).

    Returns:
        Columns :data:`BD_COLUMNS`: ``pipeline`` (test), ``reference``, ``metric``
        (``psnr_db`` from ``psnr_all_db``; ``msssim_db`` = -10 log10(1 - ``msssim_all``)),
        ``bd_rate_percent`` (mean rate difference at equal quality, in %: negative means the
        test pipeline needs fewer bits), ``points`` (operating points on the shorter of the
        two curves) and ``note`` ("" when computed on every operating point as given; else why
        it is NaN, what was left out, or which targets landed on one operating point and were
        merged, the BD-rate then counting that point once), ``operating_points`` (the values of
        the swept key the BD-rate is computed on, comma-separated; "" when NaN). One row per
        ordered pair of different pipelines and metric, in rd (summary) pipeline order: test,
        then reference, then metric. Never raises for bad curves: such a row is NaN with a note.

    Which operating points: all that both pipelines have. Where the BD-rate cannot be
    computed on all of them (a curve whose quality does not rise with its rate, e.g. a
    language's rate falling at a low target, or curves sharing less than
    :data:`MIN_OVERLAP` of their quality span, e.g. one that saturates), the longest run of
    at least :data:`MIN_POINTS` consecutive operating points on which it can (both curves
    rise, their quality spans overlap enough) is used, the lowest such run among equally
    long ones; the note names the run and why all points could not be used. The rule looks
    only at the validity of the curves, never at the BD-rate's value.
    """
    pipelines = list(dict.fromkeys(rd["pipeline"]))
    rows = []
    for test in pipelines:
        for ref in pipelines:
            if ref == test:
                continue
            g_t, g_r = rd[rd["pipeline"] == test], rd[rd["pipeline"] == ref]
            for metric in BD_METRICS:
                value, points, note, used = _bd_pair(g_t, g_r, metric)
                rows.append({"pipeline": test, "reference": ref, "metric": metric, "bd_rate_percent": value,
                             "points": points, "note": note, "operating_points": used})
    return pd.DataFrame(rows, columns=BD_COLUMNS)


def _values_text(values: Sequence) -> str:
    return ",".join(f"{v:g}" if isinstance(v, numbers.Real) else str(v) for v in values)


def _bd_on(g_t: pd.DataFrame, g_r: pd.DataFrame, metric: str) -> tuple[float, int, str]:
    """BD-rate (%) of one pipeline's rd rows ``g_t`` against another's ``g_r`` on every row
    given, the points of the shorter curve and the note (:func:`bd_rate_table`)."""
    r_t, d_t, why_t, left_t = _curve(g_t, metric)
    r_r, d_r, why_r, left_r = _curve(g_r, metric)
    points = min(len(r_t), len(r_r))
    if why_t or why_r:
        return float("nan"), points, "; ".join(f"{who}: {why}" for who, why in (("test", why_t), ("reference", why_r))
                                               if why)
    value, note = _bd_rate((r_r, d_r), (r_t, d_t), metric)
    left = "; ".join(f"{who}: {x}" for who, x in (("test", left_t), ("reference", left_r)) if x)
    return value, points, "; ".join(x for x in (note, left) if x)


def _bd_pair(g_t: pd.DataFrame, g_r: pd.DataFrame, metric: str) -> tuple[float, int, str, str]:
    """The BD-rate of ``g_t`` against ``g_r`` on the operating points the rule of
    :func:`bd_rate_table` chooses: ``(percent, points, note, operating points used)``."""
    value, points, note = _bd_on(g_t, g_r, metric)
    common = sorted(set(g_t["value"]) & set(g_r["value"]))
    if math.isfinite(value) or len(common) <= MIN_POINTS:
        return value, points, note, _values_text(common) if math.isfinite(value) else ""
    for n in range(len(common) - 1, MIN_POINTS - 1, -1):  # the longest run first, then the lowest
        for i in range(len(common) - n + 1):
            run = common[i:i + n]
            v, p, why = _bd_on(g_t[g_t["value"].isin(run)], g_r[g_r["value"].isin(run)], metric)
            if math.isfinite(v):
                key = str(g_t["key"].iloc[0])
                chosen = (f"on {key}={_values_text(run)}, the longest run of consecutive operating points on "
                          f"which both curves qualify (on all {len(common)}: {note})")
                return v, p, "; ".join(x for x in (chosen, why) if x), _values_text(run)
    return value, points, f"{note}; nor on any run of {MIN_POINTS} or more consecutive operating points", ""


# --------------------------------------------------------------------------- figures


def rd_figures(rd: pd.DataFrame, title: str, summary: pd.DataFrame | None = None,
               scenario: Any = None) -> dict[str, Figure]:
    """The RD plots of an :func:`rd_table`: name (without ``.png``) -> figure.

    ``rd_psnr`` (``psnr_all_db``, dB), ``rd_msssim`` (``msssim_all``) and ``rd_fidelity``
    (``fidelity_share``) against ``system_bits_per_item`` (bits per item; log scale when the
    rates span a decade or more), one line with markers per pipeline through its finite points, in
    ascending rate. A lossless point (PSNR inf) is an upward triangle at the top of the axis,
    labelled "lossless". ``title`` (the scenario name) heads each figure with the scenario's
    fixed parameters (from ``summary``, the run's summary table, and ``scenario``, the
    resolved scenario or :class:`~simulator.scenario.Scenario`, where given); a footnote says
    what a marker averages and which targets landed on one operating point.
    """
    if scenario is not None and not isinstance(scenario, dict):
        scenario = scenario.resolved()
    figs = {}
    pipelines = list(dict.fromkeys(rd["pipeline"]))
    key = str(rd["key"].iloc[0]) if len(rd) else ""
    head = heading(title, summary, scenario, [key] if key else [])
    runs = int(rd["points"].max()) if len(rd) and "points" in rd else 1
    notes = [f"one operating point per value of {axis_label(key, summary, scenario) if key else 'the key'}; "
             + ("one run per point" if runs <= 1 else f"each point the mean over up to {runs} runs (seeds, ...)")
             + ("; PSNR averaged through the MSE" if runs > 1 else "")]
    if "merged_with" in rd:
        merged = []
        for p in pipelines:
            g = rd[(rd["pipeline"] == p) & (rd["merged_with"].fillna("").astype(str) != "")]
            groups = dict.fromkeys(tuple(sorted({f"{r.value:g}", *str(r.merged_with).split(",")}, key=float))
                                   for r in g.itertuples())
            merged += [f"{pipeline_label(p)} {','.join(grp)}" for grp in groups]
        if merged:
            notes.append("targets on one operating point (drawn once): " + "; ".join(merged))
    for name, (col, ylabel) in FIGURES.items():
        fig = Figure(figsize=(6.8, 4.8))
        ax = fig.subplots()
        drawn, lo, hi = 0, math.inf, 0.0
        lossless = []
        for p in pipelines:
            g = rd[rd["pipeline"] == p]
            x, y = g[RATE].to_numpy(dtype=float), g[col].to_numpy(dtype=float)
            ok = np.isfinite(x) & np.isfinite(y)
            inf = np.isfinite(x) & np.isposinf(y)
            if inf.any():
                lossless.append((np.unique(x[inf]), p))
                lo, hi = min(lo, float(x[inf].min())), max(hi, float(x[inf].max()))
            if not ok.any():
                continue
            order = np.argsort(x[ok], kind="stable")
            xs, ys = x[ok][order], y[ok][order]
            lo, hi = min(lo, float(xs.min())), max(hi, float(xs.max()))
            ax.plot(xs, ys, marker="o", color=color(p), label=pipeline_label(p))
            drawn += 1
        for xs, p in lossless:
            draw_lossless(ax, xs, color(p), label=f"{pipeline_label(p)}: lossless (PSNR = inf), at the top",
                          annotate=False)
        if (drawn or lossless) and lo > 0 and hi >= 10 * lo:  # log scale once the rates span a decade
            ax.set_xscale("log")
        if lossless and not drawn:
            ax.set_ylim(0, 60)
        if drawn or lossless:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no finite points", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("system bits per item (bits; handed to the link, all items, headers included)")
        ax.set_ylabel(ylabel)
        subject = f"Rate-distortion over {axis_label(key, summary, scenario)}" if key else "Rate-distortion"
        ax.set_title(f"{head}\n{subject}" if head else subject, fontsize=9)
        ax.grid(alpha=0.3, which="both")
        figs[name] = finish(fig, "", notes)
    return figs


# --------------------------------------------------------------------------- running


def run_rd(scenario: Scenario, ctx: RunContext, key: str, values: Sequence[int | float], *, out: Path | None = None,
           results_root: Path = Path("results"), fresh: bool = False, overwrite: bool = False,
           progress: Callable[[str, int, int], None] | None = None,
           on_point: Callable[[int, int, dict], None] | None = None) -> Path:
    """Run ``scenario`` over the operating points ``key = values`` and write its RD files.

    The run directory (default ``results_root/<name>/<run id of the augmented scenario>``)
    holds what ``semsim run`` writes plus ``rd.csv``, ``bd_rate.csv`` and ``rd_*.png``, all
    staged and moved into place together; resume, ``fresh`` and ``overwrite`` are those of
    :func:`simulator.runner.run_scenario`. Returns the run directory.

    Raises:
        InputError: bad scenario or operating points (before anything is written).
        OutputError: ``out`` may not be used or written.
    """
    from .results import RunDirectory
    from .runner import run_scenario

    swept = with_operating_points(scenario, key, values)

    def extra(rundir: RunDirectory, items: pd.DataFrame, summary: pd.DataFrame) -> None:
        rd = rd_table(summary, key)
        rundir.write_table("rd.csv", rd)
        rundir.write_table("bd_rate.csv", bd_rate_table(rd))
        for name, fig in rd_figures(rd, swept.name, summary, swept).items():
            rundir.write_figure(f"{name}.png", fig)

    return run_scenario(swept, ctx, out=out, results_root=results_root, fresh=fresh, progress=progress,
                        on_point=on_point, overwrite=overwrite, extra=extra, command="semsim rd")


__all__ = ["with_operating_points", "rd_table", "bd_rate_table", "rd_figures", "run_rd", "DEFAULT_KEY",
           "DEFAULT_VALUES", "RD_COLUMNS", "BD_COLUMNS"]

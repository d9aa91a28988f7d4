"""Paired comparisons of pipelines: lengths and bits on the same items.

The paper's "average representation length" of a pipeline averages |Z_i| over the items that
pipeline sends semantically, so two pipelines' averages describe different items (the
contrastive one only X_l, the vanilla one everything). A paired comparison takes, per sweep
point and pair of pipelines, the items both sent semantically (for |Z_i|) or all items (for
the bits each item costs), the per-item difference, and its mean with a 95% bootstrap
interval over items. The unpaired relative difference of the two averages is kept beside it
and labelled as such. Items that travelled as reals (a joint source-channel code, no bits:
``bits_on_air = 0``) are left out of these bit comparisons. docs/metrics.md defines every column of ``paired.csv``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Bootstrap resamples of the items per interval.
RESAMPLES = 1000
#: Two-sided level of the intervals.
LEVEL = 0.95

COLUMNS = ["point", "pipeline", "reference", "metric", "items", "mean", "mean_reference", "mean_difference",
           "difference_low", "difference_high", "relative_percent", "relative_low", "relative_high",
           "unpaired_relative_percent"]

#: metric -> (items column, which items): ``semantic`` = the items both pipelines sent
#: semantically, ``all`` = every item.
METRICS = {"representation_bits": ("representation_bits", "semantic"), "item_bits": ("representation_bits", "all")}


def bootstrap_means(test: np.ndarray, reference: np.ndarray, rng: np.random.Generator,
                    resamples: int = RESAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """Resampled means of the paired ``(n,)`` float arrays: ``(resamples,)`` means of the test
    and of the reference over the same resampled items."""
    n = len(test)
    pick = rng.integers(0, n, size=(resamples, n))
    return test[pick].mean(axis=1), reference[pick].mean(axis=1)


def seeds_and_items_means(groups: list[np.ndarray], rng: np.random.Generator, resamples: int = RESAMPLES
                          ) -> np.ndarray:
    """Two-level bootstrap over seeds and items: ``groups`` holds one ``(n_s, k)`` float array
    per seed (its items' k aligned values, e.g. two pipelines' bits on the same items; NaN
    where an item has no value for a column). Each resample draws the seeds with replacement,
    then within each drawn seed its items with replacement, and takes each column's mean over
    all drawn items (NaN skipped). Returns ``(resamples, k)``: the means to take intervals and
    ratios from, the spread of both the seeds and the items in them. Each seed's items are
    resampled on their own: seeds that share items (the same source, other randomness) are
    treated as independent, and the intervals then understate the items' share of the spread."""
    if not groups:
        raise ValueError("no seed to resample")
    k = groups[0].shape[1]
    sums = np.zeros((resamples, k))
    counts = np.zeros((resamples, k))
    picks = rng.integers(0, len(groups), size=(resamples, len(groups)))
    for r in range(resamples):
        for g in picks[r]:
            values = groups[g]
            drawn = values[rng.integers(0, len(values), size=len(values))]
            ok = ~np.isnan(drawn)
            sums[r] += np.where(ok, drawn, 0.0).sum(axis=0)
            counts[r] += ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def interval(values: np.ndarray) -> tuple[float, float]:
    """The two-sided :data:`LEVEL` percentile interval of bootstrap ``values`` (NaN skipped;
    ``(nan, nan)`` when no resample has a value)."""
    finite = values[~np.isnan(values)]
    return _interval(finite) if len(finite) else (float("nan"), float("nan"))


def _interval(values: np.ndarray) -> tuple[float, float]:
    tail = (1.0 - LEVEL) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def paired_table(items: pd.DataFrame, keys: list[str] | None = None, seed: int = 0) -> pd.DataFrame:
    """``paired.csv``: one row per sweep point, ordered pair of different pipelines (in the
    table's order: each pipeline against each earlier one) and metric of :data:`METRICS`.

    Args:
        items: the run's items table (``items.csv``).
        keys: swept keys to carry into the rows (after ``point``).
        seed: seeds the bootstrap (with the point), so the table is the same on every run.

    The difference is test minus reference, per item, averaged; ``relative_percent`` is
    ``100 (mean / mean_reference - 1)``, its interval from the same resamples. Metrics without
    a common item are left out. ``unpaired_relative_percent`` compares each pipeline's own
    average (its semantic items for ``representation_bits``: the paper's average).
    """
    keys = [k for k in (keys or []) if k in items and k not in ("point", "pipeline")]
    rows = []
    for point, at in items.groupby("point", sort=True):
        names = list(dict.fromkeys(at["pipeline"]))
        per = {p: at[at["pipeline"] == p].set_index("item") for p in names}
        front = {k: at[k].iloc[0] for k in keys}
        for j, test in enumerate(names):
            for i, ref in enumerate(names[:j]):
                a, b = per[test], per[ref]
                common = a.index.intersection(b.index)
                if "bits_on_air" in a and "bits_on_air" in b:  # analog items have no bits to compare
                    common = common[(a.loc[common, "bits_on_air"] > 0).to_numpy()
                                    & (b.loc[common, "bits_on_air"] > 0).to_numpy()]
                for m, (metric, (column, which)) in enumerate(METRICS.items()):
                    sel = common
                    if which == "semantic":
                        sel = common[(a.loc[common, "route"] == "semantic").to_numpy()
                                     & (b.loc[common, "route"] == "semantic").to_numpy()]
                    if not len(sel):
                        continue
                    x = a.loc[sel, column].to_numpy(dtype=np.float64)
                    y = b.loc[sel, column].to_numpy(dtype=np.float64)
                    rng = np.random.default_rng([int(seed), int(point), j, i, m])
                    mx, my = bootstrap_means(x, y, rng)
                    own = (lambda d: d.loc[d["route"] == "semantic", column]) if which == "semantic" else \
                        (lambda d: d[column])
                    ua, ub = own(a).mean(), own(b).mean()
                    rows.append({"point": point, **front, "pipeline": test, "reference": ref, "metric": metric,
                                 "items": len(sel), "mean": x.mean(), "mean_reference": y.mean(),
                                 "mean_difference": (x - y).mean(),
                                 **dict(zip(("difference_low", "difference_high"), _interval(mx - my))),
                                 "relative_percent": float(_relative(x.mean(), y.mean())),
                                 **dict(zip(("relative_low", "relative_high"), _interval(_relative(mx, my)))),
                                 "unpaired_relative_percent": float(_relative(ua, ub))})
    return pd.DataFrame(rows, columns=COLUMNS[:1] + keys + COLUMNS[1:])


def _relative(test, reference):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * (np.asarray(test, dtype=np.float64) / np.asarray(reference, dtype=np.float64) - 1.0)


__all__ = ["paired_table", "bootstrap_means", "seeds_and_items_means", "interval", "COLUMNS", "METRICS", "RESAMPLES",
           "LEVEL"]

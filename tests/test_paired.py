"""Paired comparisons (paired.csv): the same items, per-item differences, bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.paired import paired_table


def _items(values: dict[str, np.ndarray], routes: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    frames = []
    for name, bits in values.items():
        route = routes[name] if routes else np.array(["semantic"] * len(bits))
        frames.append(pd.DataFrame({"point": 0, "pipeline": name, "item": np.arange(len(bits)),
                                    "route": route, "representation_bits": bits}))
    return pd.concat(frames, ignore_index=True)


def test_identical_pipelines_differ_by_zero_with_an_interval_covering_zero():
    bits = np.random.default_rng(1).integers(50, 400, size=300).astype(float)
    table = paired_table(_items({"a": bits, "b": bits.copy()}), seed=3)
    assert set(table["metric"]) == {"representation_bits", "item_bits"}
    for _, row in table.iterrows():
        assert row["mean_difference"] == 0.0 and row["relative_percent"] == 0.0
        assert row["difference_low"] <= 0.0 <= row["difference_high"]
        assert row["relative_low"] <= 0.0 <= row["relative_high"]


def test_a_constant_shift_is_found_exactly_and_the_interval_matches_theory():
    rng = np.random.default_rng(2)
    ref = rng.normal(200.0, 30.0, size=2000)
    shifted = paired_table(_items({"ref": ref, "test": ref + 12.5}), seed=0).iloc[0]
    assert shifted["pipeline"] == "test" and shifted["reference"] == "ref"
    assert np.isclose(shifted["mean_difference"], 12.5) and np.isclose(shifted["difference_low"], 12.5)
    assert np.isclose(shifted["relative_percent"], 100 * (ref.mean() + 12.5) / ref.mean() - 100)
    # independent noise: the bootstrap interval of the mean difference is about +-1.96 sd / sqrt(n)
    noisy = ref + rng.normal(5.0, 20.0, size=ref.size)
    row = paired_table(_items({"ref": ref, "test": noisy}), seed=0).iloc[0]
    d = noisy - ref
    half = 1.96 * d.std(ddof=1) / np.sqrt(d.size)
    assert abs((row["difference_high"] - row["difference_low"]) / 2 - half) < 0.1 * half
    assert row["difference_low"] < d.mean() < row["difference_high"]


def test_lengths_are_paired_on_the_items_both_send_semantically():
    # test is shorter on every shared item but sends only the easy half semantically: the
    # unpaired averages (the paper's) say -50 %, the paired comparison -10 %
    ref = np.array([100.0, 100.0, 300.0, 300.0])
    test = np.array([90.0, 90.0, 0.0, 0.0])
    routes = {"ref": np.array(["semantic"] * 4), "test": np.array(["semantic", "semantic", "classical", "classical"])}
    table = paired_table(_items({"ref": ref, "test": test}, routes), seed=0).set_index("metric")
    row = table.loc["representation_bits"]
    assert row["items"] == 2 and row["mean"] == 90.0 and row["mean_reference"] == 100.0
    assert np.isclose(row["relative_percent"], -10.0) and np.isclose(row["unpaired_relative_percent"], -55.0)
    assert table.loc["item_bits", "items"] == 4


def test_the_table_is_the_same_on_every_call():
    bits = np.random.default_rng(4).integers(50, 400, size=100).astype(float)
    items = _items({"a": bits, "b": bits[::-1].copy(), "c": bits + 1})
    assert paired_table(items, seed=5).equals(paired_table(items, seed=5))
    assert len(paired_table(items, seed=5)) == 3 * 2  # pairs (b, a), (c, a), (c, b) x two metrics


def test_the_seed_and_item_bootstrap_covers_the_spread_of_seeds_and_of_items():
    from simulator.paired import interval, seeds_and_items_means

    rng = np.random.default_rng(5)
    # identical pipelines: every resampled difference is 0
    same = [np.repeat(rng.normal(100, 20, size=(150, 1)), 2, axis=1) for _ in range(5)]
    m = seeds_and_items_means(same, np.random.default_rng(0), 500)
    assert np.array_equal(m[:, 0], m[:, 1]) and interval(m[:, 0] - m[:, 1]) == (0.0, 0.0)
    # seeds far apart (sd 10 between seeds, 1 within): the interval is the seeds' bootstrap,
    # half-width about 1.96 sqrt((S - 1) / S) s / sqrt(S) over the S = 8 seed means
    offsets = rng.normal(0, 10, size=8)
    groups = [rng.normal(o, 1, size=(300, 1)) for o in offsets]
    lo, hi = interval(seeds_and_items_means(groups, np.random.default_rng(1), 4000)[:, 0])
    means = np.array([g.mean() for g in groups])
    half = 1.96 * np.sqrt(7 / 8) * means.std(ddof=1) / np.sqrt(8)
    assert abs((hi - lo) / 2 - half) < 0.2 * half and lo < means.mean() < hi
    # one seed: the items' bootstrap, half-width about 1.96 sd / sqrt(n)
    one = [rng.normal(0, 3, size=(2000, 1))]
    lo, hi = interval(seeds_and_items_means(one, np.random.default_rng(2), 2000)[:, 0])
    assert abs((hi - lo) / 2 - 1.96 * one[0].std(ddof=1) / np.sqrt(2000)) < 0.1 * 1.96 * 3 / np.sqrt(2000)
    # NaN: an item without a value in a column counts in no mean of that column
    with_gaps = [np.array([[1.0, np.nan], [3.0, 5.0]])]
    m = seeds_and_items_means(with_gaps, np.random.default_rng(3), 200)
    assert np.nanmax(m[:, 1]) == 5.0 and np.nanmin(m[:, 1]) == 5.0

"""BLER calibration: the cache (reuse, corrupt or mismatched files), the table's interpolation
and the abstraction's agreement with the bit-true link."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simulator.link import calibration as cal
from simulator.link.abstraction import AbstractionPhy
from simulator.link.calibration import (BlerPoint, BlerTable, CalibrationKey, calibrate, calibration_key,
                                             clopper_pearson, table_path)
from simulator.link.modes import build_phy
from simulator.context import RunContext
from simulator.errors import InputError
from simulator.scenario import LinkConfig, parse_scenario


CTX_SEED = 5  # the seed of this module's `ctx` (tests/conftest.py)


def small_link(**kw):
    """A cheap code and a 3-point grid so that measuring takes well under a second."""
    base = dict(mode="abstraction", code={"k": 64, "n": 128}, modulation="qpsk", snr_db=1.0, header_bits=16,
                calibration={"snr_grid_db": [0.0, 1.0, 2.0], "target_block_errors": 20, "max_blocks": 128})
    base.update(kw)
    return LinkConfig(**base)


def no_measuring(*args, **kwargs):
    raise AssertionError("calibration measured although a valid table was cached")


# --------------------------------------------------------------------------- cache


def test_second_call_measures_nothing(ctx, monkeypatch):
    link = small_link()
    seen = []
    first = calibrate(link, ctx, progress=seen.append)
    assert first.source == "measured" and len(seen) == len(first.points) >= 1
    assert table_path(ctx, first.key).is_file()
    monkeypatch.setattr(cal, "_measure", no_measuring)
    second = calibrate(link, ctx)
    assert second.source == "cache"
    assert second.points == first.points
    phy = build_phy(link, ctx)  # abstraction mode reads the same table
    assert isinstance(phy, AbstractionPhy) and phy.table.source == "cache"


def test_table_is_independent_of_the_run_seed(ctx, tmp_path):
    link = small_link()
    a = calibrate(link, ctx)
    b = calibrate(link, RunContext(seed=999, device="cpu", cache_dir=tmp_path / "other"))
    assert a.points == b.points


@pytest.mark.parametrize("damage", ["garbage", "truncated", "tampered-count", "other-key", "wrong-version"])
def test_corrupt_or_mismatched_table_is_remeasured(ctx, damage):
    link = small_link()
    good = calibrate(link, ctx)
    path = table_path(ctx, good.key)
    text = path.read_text()
    if damage == "garbage":
        path.write_bytes(b"\x00\xffnot json")
    elif damage == "truncated":
        path.write_text(text[: len(text) // 2])
    elif damage == "tampered-count":
        data = json.loads(text)
        data["points"][0][2] = max(0, data["points"][0][2] - 1)  # one error fewer, checksum kept
        path.write_text(json.dumps(data))
    elif damage == "other-key":
        other = calibrate(small_link(decoder_iterations=5), ctx)
        path.write_text(table_path(ctx, other.key).read_text())
    elif damage == "wrong-version":
        data = json.loads(text)
        data["version"] = 999
        path.write_text(json.dumps(data))
    again = calibrate(link, ctx)
    assert again.source == "measured" and "not trusted" in again.reason
    assert again.points == good.points  # same key -> same streams -> same table
    assert calibrate(link, ctx).source == "cache"  # and the rewritten file is trusted again


def test_key_covers_what_determines_the_table():
    base = calibration_key(small_link())
    variants = [small_link(modulation="qam16"), small_link(channel="rayleigh"), small_link(decoder_iterations=10),
                small_link(code={"k": 64, "n": 192}),
                small_link(calibration={"snr_grid_db": [0.0, 1.5], "target_block_errors": 20, "max_blocks": 128}),
                small_link(calibration={"snr_grid_db": [0.0, 1.0, 2.0], "target_block_errors": 21,
                                        "max_blocks": 128})]
    digests = {calibration_key(v).digest() for v in variants}
    assert base.digest() not in digests and len(digests) == len(variants)
    assert calibration_key(small_link(snr_db=7.0)).digest() == base.digest()  # operating point not in the key


def test_grid_in_ebn0_is_converted():
    link = small_link(modulation="qam16", snr_type="ebn0")  # Es/N0 = Eb/N0 + 10 log10(4 * 1/2)
    key = calibration_key(link)
    assert key.esn0_grid_db == pytest.approx(tuple(x + 10 * np.log10(2.0) for x in (0.0, 1.0, 2.0)))


@pytest.mark.parametrize("grid,fragment", [([1.0, 1.0, 2.0], "strictly increasing"), ([3.0, 2.0], "strictly increasing"),
                                           ([1.0], "at least 2"), ([0.0, float("nan")], "finite")])
def test_bad_grid_is_refused_by_the_schema_and_by_calibrate(ctx, grid, fragment):
    with pytest.raises(ValueError, match=fragment):
        calibrate(small_link(), ctx, snr_grid_db=grid)
    with pytest.raises(InputError, match=fragment) as err:
        parse_scenario({"name": "x", "link": {"calibration": {"snr_grid_db": grid}}})
    assert "link.calibration.snr_grid_db" in str(err.value) and "\n" not in str(err.value)


# --------------------------------------------------------------------------- table


def synthetic_table(points):
    key = CalibrationKey(k=64, n=128, modulation="qpsk", channel="awgn", decoder_iterations=20,
                         esn0_grid_db=tuple(p[0] for p in points), target_block_errors=1, max_blocks=1, min_bler=1e-9)
    return BlerTable(key, [BlerPoint(s, b, e, max(e, 3 * e)) for s, b, e in points])


def test_interpolation_is_log_linear_and_clamped():
    t = synthetic_table([(0.0, 100, 100), (1.0, 1000, 100), (2.0, 1000, 10), (3.0, 1000, 0)])
    assert t.bler_at(-5.0) == 1.0 and t.bler_at(9.0) == 0.0
    assert t.bler_at(1.5) == pytest.approx(10 ** -1.5)
    assert t.bler_at(1.0) == pytest.approx(0.1)
    assert t.bler_at(2.5) == pytest.approx(0.005)  # linear next to a zero-error point
    frame = t.to_frame()
    assert list(frame.columns) == ["esn0_db", "ebn0_db", "blocks", "block_errors", "bit_errors", "bler",
                                   "bler_ci_low", "bler_ci_high"]
    assert (frame.bler_ci_low <= frame.bler).all() and (frame.bler <= frame.bler_ci_high).all()


def test_sweep_stops_below_min_bler(ctx):
    link = small_link(calibration={"snr_grid_db": [0.0, 8.0, 9.0, 10.0], "target_block_errors": 20,
                                   "max_blocks": 100, "min_bler": 0.01})
    table = calibrate(link, ctx)
    assert [p.esn0_db for p in table.points] == [0.0, 8.0]  # no error at 8 dB -> stop


# --------------------------------------------------------------------------- abstraction vs bit-true


def test_abstraction_matches_bit_true_around_the_waterfall(ctx):
    """Packet error rates of both modes agree within 95% intervals at three SNRs between grid
    points. The abstraction's interval carries both its own draws and the table's
    measurement error (the interpolated Clopper-Pearson bounds of the neighbouring points)."""
    grid = [0.5 + 0.25 * i for i in range(13)]  # 0.5 .. 3.5 dB Es/N0
    calib = {"snr_grid_db": grid, "target_block_errors": 300, "max_blocks": 6000, "min_bler": 1e-3}
    for esn0 in (1.375, 2.125, 2.875):  # BLER about 0.3, 0.1, 0.02
        link = small_link(snr_db=esn0, calibration=calib)
        bits = ctx.rng(f"bits{esn0}").integers(0, 2, size=(3000, 64), dtype=np.uint8)
        _, ok_bt = build_phy(link.model_copy(update={"mode": "bit-true"}), ctx).transmit(bits)
        abstraction = build_phy(link, ctx)
        many = np.repeat(bits, 10, axis=0)
        decoded, ok_ab = abstraction.transmit(many)
        assert np.array_equal(ok_ab, (decoded == many).all(axis=1))
        p_bt, p_ab = 1 - ok_bt.mean(), 1 - ok_ab.mean()
        lo_bt, hi_bt = clopper_pearson(int((~ok_bt).sum()), ok_bt.size, 0.95)
        lo_draw, hi_draw = clopper_pearson(int((~ok_ab).sum()), ok_ab.size, 0.95)
        lo_tab, hi_tab = abstraction.table.bler_interval_at(esn0, 0.95)
        lo_ab, hi_ab = lo_tab - (p_ab - lo_draw), hi_tab + (hi_draw - p_ab)
        print(f"Es/N0 {esn0}: bit-true {p_bt:.4f} [{lo_bt:.4f}, {hi_bt:.4f}]  abstraction {p_ab:.4f} [{lo_ab:.4f}, {hi_ab:.4f}] table {abstraction.bler:.4f}")
        assert lo_bt <= hi_ab and lo_ab <= hi_bt, (esn0, p_bt, (lo_bt, hi_bt), p_ab, (lo_ab, hi_ab))

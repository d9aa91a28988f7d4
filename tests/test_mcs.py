"""Link adaptation (simulator.link.mcs): the MCS table, the choice per SNR measured bit-true,
its cache and the adapted link config (docs/phy.md, "Link adaptation (MCS)")."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.context import RunContext
from simulator.link import mcs
from simulator.link.calibration import clopper_pearson
from simulator.link.config import CODE_RATE_MAX, CODE_RATE_MIN, MODULATIONS, LinkConfig
from simulator.link.mcs import (MCS_COLUMNS, MCS_TABLE, PROGRESS_STEP, adapted, candidate_entries, choice_path,
                                choose_mcs, entry_code, mcs_key, summary_columns)
from simulator.link.phy import BitTruePhy

N = 480
SNRS = (0.0, 8.0, 16.0)


def scenario_link(snr_db: float, **kw) -> LinkConfig:
    base = dict(code={"k": 240, "n": N}, modulation="qam16", header_bits=16, snr_db=snr_db, channel="awgn",
                mcs="adaptive")
    base.update(kw)
    return LinkConfig(**base)


def no_measuring(*args, **kwargs):
    raise AssertionError("link adaptation measured although a valid choice was cached")


@pytest.fixture(scope="module")
def mctx(tmp_path_factory) -> RunContext:
    return RunContext(seed=0, device="cpu", cache_dir=tmp_path_factory.mktemp("mcs-cache"), progress=False,
                      num_threads=1)


@pytest.fixture(scope="module")
def choices(mctx):
    return {snr: choose_mcs(scenario_link(snr), mctx) for snr in SNRS}


# --------------------------------------------------------------------------- the table


def test_table_is_well_formed():
    idx = [e.index for e in MCS_TABLE]
    assert idx == sorted(idx) and len(set(idx)) == len(idx) == 26 and idx[0] == 2 and idx[-1] == 27
    order = list(MODULATIONS)
    assert [order.index(e.modulation) for e in MCS_TABLE] == sorted(order.index(e.modulation) for e in MCS_TABLE)
    for a, b in zip(MCS_TABLE, MCS_TABLE[1:]):
        assert b.spectral_efficiency > a.spectral_efficiency  # BLER rises with the index at a fixed SNR
        if a.modulation == b.modulation:
            assert b.rate > a.rate
    assert all(CODE_RATE_MIN <= e.rate <= CODE_RATE_MAX for e in MCS_TABLE)


@pytest.mark.parametrize("n_scenario", [240, 480, 1000, 2050])
def test_entry_codes_fit(n_scenario):
    for e in MCS_TABLE:
        k, n = entry_code(e, n_scenario)
        m = e.bits_per_symbol
        assert n % m == 0 and n_scenario - m < n <= n_scenario
        assert CODE_RATE_MIN <= k / n <= CODE_RATE_MAX
        assert abs(k / n - e.rate) <= 1.0 / n or k / n in (math.ceil(n / 5) / n, math.floor(CODE_RATE_MAX * n) / n)
    assert entry_code(MCS_TABLE[-1], 2050) == (round(948 / 1024 * 2048), 2048)


def test_entries_the_header_does_not_fit_are_left_out():
    link = scenario_link(8.0, code={"k": 100, "n": 120}, header_bits=60, modulation="qpsk")
    kept = candidate_entries(link)
    assert kept and all(k > 60 for _, k, _ in kept)
    assert len(kept) < len(MCS_TABLE)


# --------------------------------------------------------------------------- the choice


def test_choice_moves_up_with_snr(choices):
    got = [choices[s] for s in SNRS]
    assert [c.index for c in got] == sorted(c.index for c in got) and len({c.index for c in got}) == 3
    assert got[0].throughput < got[1].throughput < got[2].throughput
    for c in got:
        assert c.meets_target and c.bler <= c.target_bler == 0.1
        assert c.source == "measured" and c.n <= N and c.n % c.bits_per_symbol == 0
        assert c.throughput == pytest.approx(c.k / c.n * c.bits_per_symbol * (1 - c.bler))
        # the chosen entry is the best qualifying one among those measured
        ok = [x for x in c.candidates if x.bler <= c.target_bler]
        assert c.throughput == max(x.throughput for x in ok)
        # measured from the most robust entry up; the scan stopped after two clearly failing entries
        assert [x.index for x in c.candidates] == [e.index for e in MCS_TABLE[:len(c.candidates)]]
        if len(c.candidates) < len(MCS_TABLE):
            assert all(x.clearly_failing(0.1) for x in c.candidates[-2:])


def test_chosen_pair_meets_the_target_bit_true_on_fresh_seeds(choices, mctx):
    for snr, c in choices.items():
        link = adapted(scenario_link(snr), c)
        phy = BitTruePhy(link, mctx.with_seed(2024))
        bits = mctx.with_seed(2024).rng("test.mcs").integers(0, 2, size=(1000, phy.k), dtype=np.uint8)
        _, ok = phy.transmit(bits)
        errs = int((~ok).sum())
        lo, hi = clopper_pearson(errs, ok.size)
        assert lo < c.target_bler, (snr, c.index, errs)


def test_no_entry_meets_the_target(tmp_path):
    seen = []
    ctx = RunContext(seed=0, device="cpu", cache_dir=tmp_path, progress=False, num_threads=1,
                     on_step=lambda *a: seen.append(a))
    c = choose_mcs(scenario_link(-10.0), ctx)
    assert not c.meets_target and c.index == MCS_TABLE[0].index and c.bler > 0.1
    assert len(c.candidates) == 2 and all(x.clearly_failing(0.1) for x in c.candidates)
    assert [s[0] for s in seen] == [PROGRESS_STEP] * 2 and seen[-1][1] == seen[-1][2] == len(MCS_TABLE)
    # a damaged cache file is remeasured and rewritten
    path = choice_path(ctx, mcs_key(scenario_link(-10.0)))
    path.write_text(path.read_text().replace('"candidates": [', '"candidates": [[2, "qpsk", 1, 1, 1, 1, 1], '))
    again = choose_mcs(scenario_link(-10.0), ctx)
    assert again.source == "measured" and again.candidates == c.candidates


# --------------------------------------------------------------------------- cache and adapted config


def test_second_call_measures_nothing(choices, mctx, monkeypatch):
    monkeypatch.setattr(mcs, "_measure_entry", no_measuring)
    for snr, first in choices.items():
        second = choose_mcs(scenario_link(snr), mctx)
        assert second.source == "cache" and second.candidates == first.candidates and second.index == first.index
    # an Eb/N0 scenario at the same Es/N0 (converted with its own pair) is the same choice
    ebn0 = 8.0 - 10 * math.log10(4 * 240 / N)
    link = scenario_link(ebn0, snr_type="ebn0")
    assert link.esn0_db == pytest.approx(8.0)
    c = choose_mcs(link, mctx)
    assert c.source == "cache" and c.index == choices[8.0].index
    a = adapted(link, c)
    assert a.snr_type == "esn0" and a.esn0_db == pytest.approx(8.0)


def test_adapted_link_config(choices):
    for snr, c in choices.items():
        link = scenario_link(snr, mode="abstraction")
        a = adapted(link, c)
        assert isinstance(a, LinkConfig) and a.mcs == "fixed" and a.mode == "abstraction"
        assert (a.modulation, a.code.k, a.code.n) == (c.modulation, c.k, c.n)
        assert a.esn0_db == link.esn0_db and a.header_bits == link.header_bits
        assert LinkConfig.model_validate(a.model_dump()) == a
        row = summary_columns(c)
        assert list(row) == MCS_COLUMNS and row["mcs_index"] == c.index and row["mcs_bler"] == c.bler
    with pytest.raises(ValueError, match="Es/N0"):
        adapted(scenario_link(1.0), choices[0.0])
    assert math.isnan(summary_columns(None)["mcs_index"])

"""HARQ: chase combining and incremental redundancy (bit-true and abstracted), the unchanged
plain ARQ path, and the Sionna version the fast decoder is pinned to (docs/phy.md, "HARQ")."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder

from simulator.context import RunContext
from simulator.link import phy as phy_mod
from simulator.link.abstraction import AbstractionPhy
from simulator.link.arq import run_arq
from simulator.link.calibration import (HARQ_MAX_COMBINED, calibrate_harq, calibration_key, clopper_pearson,
                                        harq_calibration_key)
from simulator.link.config import LinkConfig
from simulator.link.fixed_bler import FixedBlerPhy
from simulator.link.modes import build_phy
from simulator.link.phy import (SIONNA_FAST_DECODER_VERSIONS, BitTrueLink, BitTruePhy, EarlyStopLDPC5GDecoder,
                                fast_decoder_supported, sionna_version)
from simulator.link.phy_base import RV_ORDER, harq_rv

# The HARQ setting of the tests and of docs/phy.md: a short rate-1/2 code, QPSK, AWGN, at an
# Es/N0 where one attempt fails about 4 times in 5; 4000 packets, one retransmission.
K, N, ESN0, BLOCKS = 40, 80, 0.0, 4000


def harq_link(harq: str = "none", **kw) -> LinkConfig:
    base = dict(code={"k": K, "n": N}, modulation="qpsk", channel="awgn", snr_db=ESN0, header_bits=16,
                max_retx=1, harq=harq)
    base.update(kw)
    return LinkConfig(**base)


def payloads(m: int = BLOCKS, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, (m, K), dtype=np.uint8)


def old_run_arq(phy, payloads, max_retx):
    """run_arq as it was before HARQ (the reference for harq = "none")."""
    m = len(payloads)
    attempts = np.zeros(m, dtype=np.int64)
    ok = np.zeros(m, dtype=bool)
    received, good = phy.transmit(payloads)
    if np.may_share_memory(received, payloads):
        received = received.copy()
    attempts += 1
    ok |= good
    pending = np.flatnonzero(~good)
    for _ in range(max_retx):
        if len(pending) == 0:
            break
        decoded, good = phy.transmit(payloads[pending])
        attempts[pending] += 1
        received[pending] = decoded
        ok[pending[good]] = True
        pending = pending[~good]
    return attempts, ok, received


@pytest.fixture(scope="module")
def bit_true_residuals():
    """Residual block errors after 1 and 2 attempts, bit-true, per HARQ mode (same packets)."""
    out = {}
    for harq in ("none", "chase", "ir"):
        phy = BitTruePhy(harq_link(harq), RunContext(seed=3, device="cpu"))
        res = run_arq(phy, payloads(), 1, harq=harq)
        assert np.array_equal(res.ok, (res.received == payloads()).all(axis=1))
        out[harq] = (int((res.attempts > 1).sum()), int((~res.ok).sum()))
    return out


def test_residual_bler_ir_below_chase_below_none(bit_true_residuals):
    """At an Es/N0 where one attempt fails often, the residual BLER after two attempts is
    ir < chase < none with non-overlapping 95% Clopper-Pearson intervals."""
    ci = {h: clopper_pearson(e2, BLOCKS) for h, (_, e2) in bit_true_residuals.items()}
    for h, (e1, e2) in bit_true_residuals.items():
        print(f"{h:5s}: first attempt {e1 / BLOCKS:.4f}, after two {e2 / BLOCKS:.4f} "
              f"[{ci[h][0]:.4f}, {ci[h][1]:.4f}]")
    first = [e1 for e1, _ in bit_true_residuals.values()]
    assert len(set(first)) == 1  # the first attempt is the same computation in every mode
    assert 0.5 <= first[0] / BLOCKS <= 0.95  # one attempt fails often
    assert ci["ir"][1] < ci["chase"][0], ci
    assert ci["chase"][1] < ci["none"][0], ci


def test_abstraction_agrees_with_bit_true(tmp_path, bit_true_residuals):
    """The HARQ table (residual BLER after 1 and 2 combined attempts, calibrated bit-true at
    the operating point with its own random streams) agrees with the bit-true ARQ run within
    the 95% intervals, and the abstraction's ARQ run reproduces the table's residual BLERs
    (conditional draws BLER_j / BLER_(j-1))."""
    ctx = RunContext(seed=5, device="cpu", cache_dir=tmp_path)
    for harq in ("chase", "ir"):
        # One grid point at the operating Es/N0 (the sweep stops there: BLER < min_bler).
        link = harq_link(harq, calibration={"snr_grid_db": [ESN0, ESN0 + 1.0], "target_block_errors": 100,
                                            "max_blocks": BLOCKS, "min_bler": 0.95})
        table = calibrate_harq(link, ctx)
        assert table.source == "measured" and table.key.harq_attempts == 2 and len(table.levels[0].points) == 1
        assert calibrate_harq(link, ctx).source == "cache"
        ab = AbstractionPhy(link, ctx)
        assert ab.table is ab.harq_tables[harq].levels[0]
        res = run_arq(ab, payloads(), 1, harq=harq)
        assert np.array_equal(res.ok, (res.received == payloads()).all(axis=1))
        counts = {1: int((res.attempts > 1).sum()), 2: int((~res.ok).sum())}
        for j in (1, 2):
            bt_ci = clopper_pearson(bit_true_residuals[harq][j - 1], BLOCKS)
            p = table.levels[j - 1].points[0]
            tab_ci = clopper_pearson(p.block_errors, p.blocks)
            ab_ci = clopper_pearson(counts[j], BLOCKS)
            print(f"{harq} after {j}: bit-true {bit_true_residuals[harq][j - 1] / BLOCKS:.4f} {bt_ci}, "
                  f"table {p.bler:.4f} {tab_ci} ({p.blocks} blocks), abstraction {counts[j] / BLOCKS:.4f} {ab_ci}")
            # The table agrees with bit-true, and the abstraction draws the table's residual BLER.
            assert tab_ci[0] <= bt_ci[1] and bt_ci[0] <= tab_ci[1]
            assert ab_ci[0] <= p.bler <= ab_ci[1]


def test_harq_none_is_the_old_arq():
    """harq = "none" runs exactly the code path before HARQ, bit for bit (fixed BLER and bit-true)."""
    pay = payloads(600, seed=7)
    for build in (lambda ctx: FixedBlerPhy(harq_link(mode="fixed-bler", bler=0.4), ctx),
                  lambda ctx: BitTruePhy(harq_link(snr_db=1.0), ctx)):
        a = run_arq(build(RunContext(seed=11, device="cpu")), pay, 3)
        b = old_run_arq(build(RunContext(seed=11, device="cpu")), pay, 3)
        assert np.array_equal(a.attempts, b[0]) and np.array_equal(a.ok, b[1]) and np.array_equal(a.received, b[2])


def test_first_harq_attempt_is_plain_transmit_and_state_is_failed_rows():
    pay = payloads(500, seed=2)
    plain = BitTruePhy(harq_link(), RunContext(seed=4, device="cpu")).transmit(pay)
    for harq in ("chase", "ir"):
        decoded, ok, state = BitTruePhy(harq_link(harq), RunContext(seed=4, device="cpu")).transmit_harq(
            pay, 0, None, harq)
        assert np.array_equal(decoded, plain[0]) and np.array_equal(ok, plain[1])
        assert state.llr.shape == (int((~ok).sum()), 1, N) and state.rvs == (0,)
    phy = BitTruePhy(harq_link("ir"), RunContext(seed=4, device="cpu"))
    _, ok, state = phy.transmit_harq(pay, 0, None, "ir")
    _, ok2, state2 = phy.transmit_harq(pay[~ok], 1, state, "ir")
    assert state2.rvs == (0, 2) and state2.llr.shape == (int((~ok2).sum()), 2, N)
    with pytest.raises(ValueError, match="HARQ state holds"):
        phy.transmit_harq(pay[:3], 1, state, "ir")


def test_rv_order():
    assert RV_ORDER == (0, 2, 3, 1)
    assert [harq_rv("ir", j) for j in range(6)] == [0, 2, 3, 1, 0, 2]
    assert [harq_rv("chase", j) for j in range(3)] == [0, 0, 0]


def test_chase_combining_sanity():
    """Sionna's rv combining adds the LLRs of repeated RVs (so chase = our sum), and doubled
    noise-free LLRs decode what one attempt decodes."""
    torch.manual_seed(0)
    link = harq_link()
    core = BitTrueLink(link, "cpu", torch.Generator().manual_seed(1))
    u = torch.randint(0, 2, (64, K)).float()
    c = core.encoder(u)
    assert torch.equal(core.encoder(u, rv=[0])[:, 0], c)
    llr = 4.0 * (2.0 * c - 1.0)  # noise-free logits
    noisy = llr + 3.0 * torch.randn(llr.shape)
    dec = LDPC5GDecoder(core.encoder, num_iter=20, harq_mode=True)
    assert torch.equal(dec(torch.stack([noisy, noisy], 1), rv=[0, 0]), dec(2.0 * noisy, rv=[0]))
    one = core.decode_combined(llr.unsqueeze(1), (0,))
    two = core.decode_combined(torch.stack([llr, llr], 1), (0,))
    assert torch.equal(one, u) and torch.equal(two, one)
    ir = core.decode_combined(torch.stack([llr, 4.0 * (2.0 * core.encoder(u, rv=[2])[:, 0] - 1.0)], 1), (0, 2))
    assert torch.equal(ir, u)


def test_fixed_bler_refuses_harq():
    ctx = RunContext(seed=0, device="cpu")
    link = harq_link(mode="fixed-bler", bler=0.1).model_copy(update={"harq": "chase"})
    with pytest.raises(ValueError, match="fixed-bler.*no HARQ|soft combining"):
        build_phy(link, ctx)
    with pytest.raises(ValueError, match="no HARQ model"):
        FixedBlerPhy(link, ctx)
    with pytest.raises(ValueError, match="transmit_harq"):
        run_arq(FixedBlerPhy(harq_link(mode="fixed-bler", bler=0.1), ctx), payloads(10), 1, harq="ir")


def test_harq_keys_leave_the_single_attempt_key_alone():
    link = harq_link("ir")
    plain = calibration_key(link)
    assert "harq" not in plain.to_dict() and "harq_attempts" not in plain.to_dict()
    assert plain == calibration_key(harq_link())
    k2 = harq_calibration_key(link, "ir", 2)
    assert k2.to_dict()["harq"] == "ir" and k2.digest() != plain.digest()
    assert harq_calibration_key(link, "chase", 2).digest() != k2.digest()
    with pytest.raises(ValueError):
        harq_calibration_key(link, "ir", HARQ_MAX_COMBINED + 1)
    with pytest.raises(ValueError):
        harq_calibration_key(link, "none", 2)


def test_sionna_version_is_pinned():
    lo, hi = SIONNA_FAST_DECODER_VERSIONS
    assert fast_decoder_supported(), (
        f"semsim's fast LDPC decoder relies on Sionna {lo} private attributes (_bp_iter, _v2c_perm, "
        f"_cn_gather_idx, ...); pin sionna-no-rt to >={lo},<{hi} (installed: {sionna_version()})")
    assert fast_decoder_supported("2.2.1") and not fast_decoder_supported("2.3.0")
    assert not fast_decoder_supported("1.2.0") and not fast_decoder_supported("garbage")


def test_other_sionna_falls_back_to_public_decoder(monkeypatch):
    monkeypatch.setattr(phy_mod, "sionna_version", lambda: "9.0.0")
    monkeypatch.setattr(phy_mod, "_warned_fallback", False)
    with pytest.warns(RuntimeWarning, match="pin sionna-no-rt"):
        core = BitTrueLink(harq_link(), "cpu", torch.Generator().manual_seed(0))
    assert type(core.decoder) is LDPC5GDecoder and not isinstance(core.decoder, EarlyStopLDPC5GDecoder)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one warning per process, not one per link
        BitTrueLink(harq_link(), "cpu", torch.Generator().manual_seed(0))


def test_abstraction_beyond_the_cap_and_without_retransmissions(tmp_path):
    """Attempts beyond the table's use its last conditional probability; with max_retx = 0 the
    HARQ modes draw from the single-attempt table (no HARQ table is measured)."""
    from simulator.link.calibration import BlerPoint, HarqBlerTable
    ctx = RunContext(seed=1, device="cpu", cache_dir=tmp_path)
    link = harq_link("ir", max_retx=6)
    key = harq_calibration_key(link, "ir", 2, snr_grid_db=[ESN0, ESN0 + 1.0])
    pts = [[BlerPoint(ESN0, 1000, 800, 8000), BlerPoint(ESN0 + 1.0, 1000, 400, 4000)],
           [BlerPoint(ESN0, 1000, 200, 2000), BlerPoint(ESN0 + 1.0, 1000, 40, 400)]]
    ab = AbstractionPhy(link, ctx, harq_table=HarqBlerTable(key, pts))
    assert ab.conditional_failure("ir") == pytest.approx([0.8, 0.25])
    res = run_arq(ab, payloads(20000), 6, harq="ir")
    # P(attempts > j) = 0.8 * 0.25^(j-1) for j >= 1
    for j, p in ((1, 0.8), (2, 0.2), (3, 0.05)):
        assert abs((res.attempts > j).mean() - p) < 4 * np.sqrt(p * (1 - p) / 20000)
    assert not any(tmp_path.rglob("*.json"))  # nothing was calibrated
    plain = AbstractionPhy(harq_link("none", max_retx=0), ctx, table=ab.table)
    again = AbstractionPhy(harq_link("ir", max_retx=0), ctx, table=ab.table)
    a = run_arq(plain, payloads(500), 0)
    b = run_arq(again, payloads(500), 0, harq="ir")
    assert np.array_equal(a.ok, b.ok) and np.array_equal(a.received, b.received)
    assert not again.harq_tables


def test_harq_table_json_round_trip_and_tampering():
    from simulator.link.calibration import BlerPoint, HarqBlerTable
    key = harq_calibration_key(harq_link("chase"), "chase", 2, snr_grid_db=[ESN0, ESN0 + 1.0])
    table = HarqBlerTable(key, [[BlerPoint(ESN0, 100, 80, 900)], [BlerPoint(ESN0, 100, 5, 50)]])
    back = HarqBlerTable.from_json(table.to_json(), key)
    assert back.source == "cache" and [t.points for t in back.levels] == [t.points for t in table.levels]
    assert list(back.to_frame().attempts) == [1, 2]
    with pytest.raises(ValueError, match="checksum"):
        HarqBlerTable.from_json(table.to_json().replace('"points": [\n  [\n   0.0,\n   100', '"points": [\n  [\n   0.0,\n   101'), key)
    with pytest.raises(ValueError, match="another key"):
        HarqBlerTable.from_json(table.to_json(), harq_calibration_key(harq_link("ir"), "ir", 2, [ESN0, ESN0 + 1]))

"""The packet PHY checked against independent references (closed-form BER, Sionna's published
5G LDPC curves) plus determinism and bad input. Statistical checks run with fixed seeds, so
they are deterministic; each asserts the theory value inside a 99% confidence interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from simulator.link.calibration import clopper_pearson
from simulator.link.fixed_bler import FixedBlerPhy
from simulator.link.phy_base import ebn0_to_esn0, esn0_to_ebn0
from simulator.link.modes import build_phy
from uncoded_modem import UncodedModem
from simulator.context import RunContext
from simulator.errors import InputError
from simulator.scenario import LinkConfig, parse_scenario


CTX_SEED = 1  # the seed of this module's `ctx` (tests/conftest.py)


def q(x):
    return norm.sf(x)


def ber_qpsk_awgn(esn0_db):
    return q(math.sqrt(10 ** (esn0_db / 10)))  # Q(sqrt(2 Eb/N0)), Es = 2 Eb


def ber_qam16_awgn(esn0_db):
    """Exact BER of Gray 16-QAM with nearest-point detection (two Gray 4-PAMs)."""
    a = math.sqrt(10 ** (esn0_db / 10) / 5)  # half the PAM spacing over the noise std per dim
    return 0.25 * (3 * q(a) + 2 * q(3 * a) - q(5 * a))


def ber_qpsk_rayleigh(ebn0_db):
    g = 10 ** (ebn0_db / 10)
    return 0.5 * (1 - math.sqrt(g / (1 + g)))


def random_bits(ctx, shape, stream="test.bits"):
    return ctx.rng(stream).integers(0, 2, size=shape, dtype=np.uint8)


# --------------------------------------------------------------------------- uncoded vs theory


@pytest.mark.parametrize("modulation,theory,snrs", [
    ("qpsk", ber_qpsk_awgn, [0.0, 4.0, 8.0]),
    ("qam16", ber_qam16_awgn, [6.0, 10.0, 14.0]),
])
def test_uncoded_awgn_ber_matches_closed_form(ctx, modulation, theory, snrs):
    modem = UncodedModem(modulation, "awgn", ctx)
    bits = random_bits(ctx, (500, 2400))
    for esn0 in snrs:
        errors = int((modem.transmit(bits, esn0) != bits).sum())
        lo, hi = clopper_pearson(errors, bits.size, level=0.99)
        assert lo <= theory(esn0) <= hi, (modulation, esn0, errors / bits.size, theory(esn0))


def test_uncoded_qpsk_rayleigh_block_fading_matches_closed_form(ctx):
    # One h per row (a fading block of 4 symbols); bit errors inside a block are dependent,
    # so the interval comes from the i.i.d. per-block error fractions (CLT), not a binomial.
    modem = UncodedModem("qpsk", "rayleigh", ctx)
    bits = random_bits(ctx, (100_000, 8))
    for ebn0 in [0.0, 5.0, 10.0]:
        per_block = (modem.transmit(bits, ebn0 + 10 * math.log10(2)) != bits).mean(axis=1)
        mean, half = per_block.mean(), 2.576 * per_block.std(ddof=1) / math.sqrt(per_block.size)
        assert mean - half <= ber_qpsk_rayleigh(ebn0) <= mean + half, (ebn0, mean, ber_qpsk_rayleigh(ebn0))


# --------------------------------------------------------------------------- coded vs Sionna's curves


def measured_bler(ctx, k, n, ebn0_db, blocks, channel="awgn", iters=20):
    link = LinkConfig(mode="bit-true", code={"k": k, "n": n}, modulation="qpsk", channel=channel,
                      snr_db=ebn0_db, snr_type="ebn0", decoder_iterations=iters, header_bits=16)
    phy = build_phy(link, ctx)
    _, ok = phy.transmit(random_bits(ctx, (blocks, k)))
    return int((~ok).sum()), blocks


@pytest.mark.parametrize("ebn0_db,published,blocks", [(2.0, 0.155, 3000), (3.0, 2.25e-2, 6000)])
def test_ldpc_k64_n128_matches_published_bp_curve(ctx, ebn0_db, published, blocks):
    errors, blocks = measured_bler(ctx, 64, 128, ebn0_db, blocks)
    lo, hi = clopper_pearson(errors, blocks, level=0.99)
    assert lo <= published <= hi, (ebn0_db, errors / blocks, published)


@pytest.mark.slow
def test_ldpc_rate_half_n1000_matches_published_bp_curve(ctx):
    errors, blocks = measured_bler(ctx, 500, 1000, 2.0, 60_000)
    lo, hi = clopper_pearson(errors, blocks, level=0.99)
    assert lo <= 2.8e-3 <= hi, (errors / blocks, 2.8e-3)


# --------------------------------------------------------------------------- interface and modes


def test_bit_true_interface_and_ideal_crc(ctx):
    link = LinkConfig(code={"k": 64, "n": 128}, modulation="qpsk", snr_db=1.0, header_bits=16)
    phy = build_phy(link, ctx)
    assert (phy.k, phy.n, phy.bits_per_symbol) == (64, 128, 2)
    bits = random_bits(ctx, (300, 64))
    decoded, ok = phy.transmit(bits)
    assert decoded.shape == bits.shape and decoded.dtype == np.uint8 and ok.dtype == bool
    assert np.array_equal(ok, (decoded == bits).all(axis=1))
    assert 0 < ok.mean() < 1  # Es/N0 1 dB is in the waterfall of this code


@pytest.mark.parametrize("modulation,channel", [("qam64", "awgn"), ("qam256", "rayleigh"), ("qam16", "rayleigh")])
def test_bit_true_high_snr_is_error_free(ctx, modulation, channel):
    link = LinkConfig(code={"k": 120, "n": 240}, modulation=modulation, channel=channel, snr_db=60.0,
                      header_bits=16)
    phy = build_phy(link, ctx)
    bits = random_bits(ctx, (50, 120))
    decoded, ok = phy.transmit(bits)
    assert ok.all() and np.array_equal(decoded, bits)


def test_bit_true_chunks_give_the_same_law(ctx):
    link = LinkConfig(code={"k": 64, "n": 128}, modulation="qpsk", snr_db=60.0, header_bits=16)
    phy = build_phy(link, ctx)
    phy._core.chunk_blocks = 7  # force several chunks in one call
    bits = random_bits(ctx, (30, 64))
    decoded, ok = phy.transmit(bits)
    assert ok.all() and np.array_equal(decoded, bits)


def test_same_seed_same_outputs_and_no_global_rng(tmp_path):
    import sionna.phy as sphy
    link = LinkConfig(code={"k": 64, "n": 128}, modulation="qpsk", channel="rayleigh", snr_db=4.0, header_bits=16)
    a = RunContext(seed=3, device="cpu", cache_dir=tmp_path)
    bits = random_bits(a, (400, 64))
    sionna_state = sphy.config.torch_rng("cpu").get_state().clone()
    torch_state = torch.get_rng_state().clone()
    np_state = np.random.get_state()[1].copy()
    d1, ok1 = build_phy(link, a).transmit(bits)
    d2, ok2 = build_phy(link, RunContext(seed=3, device="cpu", cache_dir=tmp_path)).transmit(bits)
    d3, ok3 = build_phy(link, RunContext(seed=4, device="cpu", cache_dir=tmp_path)).transmit(bits)
    assert np.array_equal(d1, d2) and np.array_equal(ok1, ok2)
    assert not np.array_equal(ok1, ok3)
    assert torch.equal(sionna_state, sphy.config.torch_rng("cpu").get_state())
    assert torch.equal(torch_state, torch.get_rng_state())
    assert np.array_equal(np_state, np.random.get_state()[1])


def test_fixed_bler_rate_and_determinism(ctx):
    link = LinkConfig(mode="fixed-bler", code={"k": 64, "n": 128}, modulation="qpsk", bler=0.2, header_bits=16)
    phy = build_phy(link, ctx)
    assert isinstance(phy, FixedBlerPhy)
    bits = random_bits(ctx, (20_000, 64))
    decoded, ok = phy.transmit(bits)
    assert np.array_equal(ok, (decoded == bits).all(axis=1))
    lo, hi = clopper_pearson(int((~ok).sum()), ok.size, level=0.99)
    assert lo <= 0.2 <= hi
    d2, ok2 = build_phy(link, RunContext(seed=ctx.seed, device="cpu", cache_dir=ctx.cache_dir)).transmit(bits)
    assert np.array_equal(decoded, d2) and np.array_equal(ok, ok2)


def test_snr_conversions_roundtrip():
    assert esn0_to_ebn0(ebn0_to_esn0(2.0, 4, 1024, 2048), 4, 1024, 2048) == pytest.approx(2.0)
    link = LinkConfig(code={"k": 1024, "n": 2048}, modulation="qam16", snr_db=2.0, snr_type="ebn0")
    assert link.esn0_db == pytest.approx(2.0 + 10 * math.log10(2.0))


# --------------------------------------------------------------------------- bad input


def scenario_with(link: dict) -> dict:
    return {"name": "t", "link": link}


@pytest.mark.parametrize("link,fragment", [
    ({"code": {"k": 100, "n": 1000}}, "outside the 5G LDPC range"),
    ({"code": {"k": 1000, "n": 1024}}, "outside the 5G LDPC range"),
    ({"modulation": "qam8"}, "link.modulation"),
    ({"channel": "rician"}, "link.channel"),
    ({"code": {"k": 500, "n": 1001}, "modulation": "qpsk"}, "multiple of the 2 bits per symbol"),
    ({"calibration": {"snr_grid_db": [1.0, 0.5, 2.0]}}, "strictly increasing"),
])
def test_bad_link_input_is_one_clear_line(link, fragment):
    with pytest.raises(InputError) as err:
        parse_scenario(scenario_with(link), where="s.toml")
    msg = str(err.value)
    assert fragment in msg and "\n" not in msg and msg.startswith("s.toml: ")


def test_the_phy_refuses_unknown_names_with_the_allowed_ones(ctx):
    """The schema names the key (test_bad_link_input_is_one_clear_line); the PHY layer below it
    raises ValueError with the registry's list."""
    with pytest.raises(ValueError, match="modulation 'bpsk'; allowed: qpsk, qam16"):
        UncodedModem("bpsk", "awgn", ctx)
    with pytest.raises(ValueError, match="allowed: awgn, rayleigh"):
        UncodedModem("qpsk", "rician", ctx)


def test_early_stop_decoder_agrees_with_sionna_bp():
    """Same LLRs into Sionna's fixed-iteration BP and ours: the decisions agree on (nearly)
    every codeword; a difference means BP would have left a valid codeword again."""
    from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
    from sionna.phy.mapping import Demapper, Mapper

    from simulator.link.phy import EarlyStopLDPC5GDecoder
    gen = torch.Generator().manual_seed(0)
    enc = LDPC5GEncoder(64, 128, num_bits_per_symbol=2)
    ref, ours = LDPC5GDecoder(enc, num_iter=20), EarlyStopLDPC5GDecoder(enc, num_iter=20)
    with torch.inference_mode():
        u = torch.randint(0, 2, (2000, 64), generator=gen).to(torch.float32)
        x = Mapper("qam", 2)(enc(u))
        no = 10 ** (-2.0 / 10)
        noise = torch.complex(torch.randn(x.shape, generator=gen), torch.randn(x.shape, generator=gen))
        llr = Demapper("app", "qam", 2)(x + math.sqrt(no / 2) * noise, torch.tensor(no))
        a, b = ref(llr), ours(llr)
    differ = int((a != b).any(dim=1).sum())
    assert differ <= 4, differ
    assert abs(int((a != u).any(dim=1).sum()) - int((b != u).any(dim=1).sum())) <= differ


def test_early_stop_can_be_turned_off(ctx):
    from sionna.phy.fec.ldpc import LDPC5GDecoder

    from simulator.link.phy import EarlyStopLDPC5GDecoder
    on = build_phy(LinkConfig(code={"k": 64, "n": 128}, modulation="qpsk", header_bits=16), ctx)
    off = build_phy(LinkConfig(code={"k": 64, "n": 128}, modulation="qpsk", header_bits=16,
                               decoder_early_stop=False), ctx)
    assert isinstance(on._core.decoder, EarlyStopLDPC5GDecoder)
    assert type(off._core.decoder) is LDPC5GDecoder


def test_scrambling_makes_the_block_error_rate_independent_of_the_payload():
    """Zero payloads (an item's padding) map, unscrambled, to one low-energy 16-QAM point and
    fail far more often than random bits; scrambled (TS 38.211 7.3.1.1), their BLER is the
    random bits' within the 99% intervals of both."""
    from simulator.link.phy import SCRAMBLING_C_INIT, BitTrueLink
    from sionna.phy.nr.utils import generate_prng_seq

    link = LinkConfig(modulation="qam16", code={"k": 512, "n": 1024})
    phy = BitTrueLink(link, "cpu", torch.Generator().manual_seed(1), torch.Generator().manual_seed(2),
                      compile_encoder=False)
    seq = generate_prng_seq(1024, SCRAMBLING_C_INIT)
    assert phy._scrambling.tolist() == seq.tolist() and 0.4 < seq.mean() < 0.6
    blocks = 1500
    rnd = torch.from_numpy(np.random.default_rng(0).integers(0, 2, size=(blocks, 512)).astype(np.float32))
    zero = torch.zeros(blocks, 512)
    errs = [int((phy.run(u, 6.8) != u).any(dim=1).sum()) for u in (rnd, zero)]
    (lo_r, hi_r), (lo_z, hi_z) = (clopper_pearson(e, blocks, level=0.99) for e in errs)
    assert errs[0] > 10 and lo_z <= hi_r and lo_r <= hi_z, errs

"""Transports: the analog transport's received noise against the configured SNR (confidence
intervals), per-item power normalisation, its timing, and the registry of transports."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from simulator.link.config import LinkConfig
from simulator.link.phy_base import noise_variance
from simulator.link.transport import Arrival, Handoff, carry, channel_uses_of
from simulator.registry import TRANSPORTS
from simulator.route import Route


def _handoff(payloads: list[np.ndarray]) -> Handoff:
    n = len(payloads)
    return Handoff(np.array([Route.SEMANTIC] * n, dtype=object), payloads, np.zeros(n), np.zeros(n), np.zeros(n))


def _normalised(reals: np.ndarray) -> np.ndarray:
    """What the transport sends for ``reals``: pairs as complex symbols at unit mean power."""
    padded = np.concatenate([reals, np.zeros(len(reals) % 2)]).astype(np.float64)
    power = (padded[0::2] ** 2 + padded[1::2] ** 2).mean()
    return (padded / np.sqrt(power))[: len(reals)]


def _variance_interval(samples: np.ndarray, level: float = 0.999) -> tuple[float, float]:
    """Chi-square interval of the variance of zero-mean Gaussian ``samples``."""
    n = samples.size
    ss = float((samples ** 2).sum())
    return ss / stats.chi2.ppf(0.5 + level / 2, n), ss / stats.chi2.ppf(0.5 - level / 2, n)


@pytest.mark.parametrize("snr_db", [0.0, 10.0])
def test_analog_awgn_error_variance_is_the_noise_variance(ctx, snr_db):
    rng = np.random.default_rng(0)
    # an identity encoder: the payload is the channel input, items at very different scales
    payloads = [rng.normal(0, scale, 1024).astype(np.float32) for scale in (0.01, 1.0, 300.0) for _ in range(20)]
    link = LinkConfig(channel="awgn", snr_db=snr_db, snr_type="esn0")
    out = carry("analog", _handoff(payloads), link, ctx)
    errors = np.concatenate([r - _normalised(p) for r, p in zip(out.received, payloads)])
    lo, hi = _variance_interval(errors)
    expected = noise_variance(snr_db) / 2  # per real dimension: Es = 1 per complex symbol
    assert lo <= expected <= hi, (lo, expected, hi)
    assert np.allclose(out.noise_variance, expected)
    assert out.channel_uses.tolist() == [512] * 60 and out.bits_on_air.sum() == 0


def test_analog_power_is_normalised_per_item(ctx):
    payloads = [np.full(6, 5.0, np.float32), np.array([3.0, 4.0, 0.0], np.float32), np.array([1e-3, 0, 0, 0], np.float32)]
    out = carry("analog", _handoff(payloads), LinkConfig(snr_db=150.0), ctx)  # no noise to speak of
    for r, p in zip(out.received, payloads):
        padded = np.concatenate([r, np.zeros(len(r) % 2)])
        assert np.isclose((padded ** 2).sum() / (len(padded) / 2), 1.0, atol=1e-5)  # E|x|^2 = 1 per channel use
        assert np.allclose(r, _normalised(p), atol=1e-5)
    assert [channel_uses_of(len(p)) for p in payloads] == out.channel_uses.tolist() == [3, 2, 2]


def test_analog_rayleigh_noise_after_equalisation(ctx):
    rng = np.random.default_rng(1)
    payloads = [rng.normal(0, 1, 256).astype(np.float32) for _ in range(200)]
    out = carry("analog", _handoff(payloads), LinkConfig(channel="rayleigh", snr_db=5.0), ctx)
    # per item the equalised noise has the reported variance N0 / |h|^2 / 2: standardised, variance 1
    z = np.concatenate([(r - _normalised(p)) / np.sqrt(v) for r, p, v in zip(out.received, payloads,
                                                                            out.noise_variance)])
    lo, hi = _variance_interval(z)
    assert lo <= 1.0 <= hi
    assert out.noise_variance.std() > 0  # one fading gain per item


def test_analog_delivery_time_is_channel_uses_over_the_symbol_rate(ctx):
    out = carry("analog", _handoff([np.ones(2000, np.float32), np.ones(10, np.float32)]),
                LinkConfig(symbol_rate=1e6, snr_db=20.0), ctx)
    assert isinstance(out, Arrival)
    assert np.allclose(out.timeline.received_s, [1000 / 1e6, 1000 / 1e6 + 5 / 1e6])
    assert out.transmissions.tolist() == [1, 1] and all(ok.all() for ok in out.intact)


def test_digital_transport_counts_channel_uses_and_bits_on_air(ctx):
    link = LinkConfig(mode="fixed-bler", bler=0.0, code={"k": 256, "n": 512}, header_bits=16, modulation="qpsk")
    bits = [np.ones(1000, np.uint8), np.zeros(10, np.uint8)]
    out = carry("digital", _handoff(bits), link, ctx)
    assert out.packets.tolist() == [5, 1] and out.transmissions.tolist() == [5, 1]
    assert out.channel_uses.tolist() == [5 * 256, 256] and out.bits_on_air.tolist() == [5 * 512, 512]
    with pytest.raises(ValueError, match="carries reals"):
        carry("analog", _handoff(bits), link, ctx, payload="bits")


def test_transports_are_registered():
    assert TRANSPORTS.names()[:2] == ["digital", "analog"]
    assert TRANSPORTS.get("digital").payload == "bits" and TRANSPORTS.get("analog").payload == "reals"

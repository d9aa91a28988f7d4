"""The summary's figures against hand computations on a small item table, and MS-SSIM
against the library on the enlarged images."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from pytorch_msssim import ms_ssim as library_ms_ssim

from simulator.ledger import ITEM_COLUMNS, summarize
from simulator.metrics import language_complexity_per_item, ms_ssim


def _items() -> pd.DataFrame:
    """Two pipelines of four items: one all classical (lossless), one mixing routes."""
    rows = []
    for pipeline, routes, bits, packets, psnr, meets, t in (
        ("classical", ["classical"] * 4, [500, 520, 480, 510], [3, 3, 2, 3], [math.inf] * 4, [True] * 4,
         [1e-3, 2e-3, 1e-3, 4e-3]),
        ("mixed", ["semantic", "semantic", "classical", "semantic"], [100, 140, 480, 90], [1, 1, 2, 1],
         [21.0, 17.5, math.inf, math.nan], [True, False, True, False], [5e-4, 6e-4, 1e-3, math.inf]),
    ):
        for i in range(4):
            rows.append({c: 0 for c in ITEM_COLUMNS} | {
                "pipeline": pipeline, "item": i, "route": routes[i], "representation_bits": bits[i],
                "estimated_bits": np.nan, "packets": packets[i], "transmissions": packets[i],
                "bits_on_air": 512 * packets[i], "channel_uses": 256 * packets[i], "delivered": not math.isnan(psnr[i]), "psnr_db": psnr[i],
                "meets_fidelity": meets[i], "delivery_time_s": t[i], "equiv_classical_packets": [3, 3, 2, 3][i],
                "semantic_impact": ([3, 3, 2, 3][i] / t[i]) if meets[i] else 0.0, "msssim": 1.0 if routes[i] ==
                "classical" else 0.9, "quality_target_missed": False, "lossless_bits": [500, 520, 480, 510][i],
                "mse": 0.0, "sent": True})
    return pd.DataFrame(rows)[ITEM_COLUMNS]


def test_summary_figures_against_a_hand_computation():
    s = summarize(_items(), 1.5, {"mixed": 1000.0}, link=None, thresholds_db=(16.0, 20.0)).set_index("pipeline")
    m = s.loc["mixed"]
    # system cost over all items; semantic-only length beside it
    assert m["avg_representation_bits"] == pytest.approx((100 + 140 + 90) / 3)
    assert m["avg_item_bits"] == pytest.approx((100 + 140 + 480 + 90) / 4)
    # impact over all items, per semantic representation, and at the thresholds (PSNR >= T)
    assert m["semantic_impact"] == pytest.approx((3 / 5e-4 + 2 / 1e-3) / 4)
    assert m["semantic_impact_semantic"] == pytest.approx((3 / 5e-4) / 3)
    assert m["semantic_impact_at_16db"] == pytest.approx((3 / 5e-4 + 3 / 6e-4 + 2 / 1e-3) / 4)
    assert m["semantic_impact_at_20db"] == pytest.approx((3 / 5e-4 + 2 / 1e-3) / 4)
    # language complexity per item: rate of every item + repair of the misses + the model
    by_hand = (100 + 140 + 480 + 90 + 520 + 510 + 1000) * math.log(2) / 4
    assert m["language_complexity_per_item_nats"] == pytest.approx(by_hand)
    assert m["model_bits"] == 1000.0
    c = s.loc["classical"]
    assert c["language_complexity_per_item_nats"] == pytest.approx((500 + 520 + 480 + 510) * math.log(2) / 4)
    assert c["msssim_all"] == 1.0 and m["msssim_all"] == pytest.approx((0.9 * 3 + 1.0) / 4)


def test_system_bits_count_the_packet_headers():
    class Link:  # what the unit columns read, and the header
        header_bits, symbols_per_packet, esn0_db, bits_per_symbol = 16, 256, 9.0, 2
        code = SimpleNamespace(k=256, n=512)

    s = summarize(_items(), 0.0, {}, link=Link(), pixels_per_item=64).set_index("pipeline")
    assert s.loc["mixed", "system_bits_per_item"] == pytest.approx((100 + 140 + 480 + 90 + 16 * (1 + 1 + 2 + 1)) / 4)
    assert s.loc["classical", "system_bits_per_item"] == pytest.approx((2010 + 16 * 11) / 4)


def test_goodput_and_channel_uses_against_a_hand_computation():
    class Link:  # QPSK, n = 512: 256 channel uses per codeword
        header_bits, symbols_per_packet, esn0_db, bits_per_symbol = 16, 256, 9.0, 2
        code = SimpleNamespace(k=256, n=512)

    s = summarize(_items(), 0.0, {}, link=Link(), pixels_per_item=64).set_index("pipeline")
    # mixed: items 0-2 delivered (100 + 140 + 480 bits) over 1 + 1 + 2 + 1 codewords of 256 uses
    assert s.loc["mixed", "goodput_bits_per_channel_use"] == pytest.approx(720 / (5 * 256))
    assert s.loc["classical", "goodput_bits_per_channel_use"] == pytest.approx(2010 / (11 * 256))
    assert s.loc["classical", "channel_uses_per_pixel"] == pytest.approx(11 * 256 / (4 * 64))


def test_language_complexity_cannot_fall_by_giving_up_fidelity():
    """Sending an item in 10 bits that miss fidelity costs its repair: more than sending it right."""
    right = language_complexity_per_item(np.array([100, 120]), np.array([True, True]), np.array([500, 500]), 0)
    cheap = language_complexity_per_item(np.array([100, 10]), np.array([True, False]), np.array([500, 500]), 0)
    assert cheap > right


@pytest.mark.parametrize("shape", [(6, 8, 8, 1), (4, 32, 32, 3)])
def test_ms_ssim_is_the_library_on_the_enlarged_items(shape):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 41, shape), 0, 255).astype(np.uint8)
    b[0] = a[0]  # an exact item scores 1
    got = ms_ssim(a, b)
    f = 5 if shape[1] == 8 else 2  # the smallest factor giving more than 32 pixels a side
    big = [torch.from_numpy(x.astype(np.float32)).permute(0, 3, 1, 2).repeat_interleave(f, 2).repeat_interleave(f, 3)
           for x in (a, b)]
    want = library_ms_ssim(*big, data_range=255.0, size_average=False, win_size=3).double().numpy()
    assert got[0] == 1.0
    np.testing.assert_allclose(got[1:], want[1:], rtol=1e-6)
    assert (got[1:] < 1).all() and (got >= 0).all()

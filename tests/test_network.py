"""The discrete-event link against queueing and ARQ theory, and exact event times."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.link.modes import build_phy
from simulator.link.arq import run_arq
from simulator.link.des import poisson_arrivals, simulate
from simulator.scenario import LinkConfig


def expected_transmissions(p: float, max_retx: int) -> float:
    """Mean attempts per packet with block error probability ``p``, truncated at ``1 + max_retx``.

    ``sum_{j=0}^{max_retx} p^j = (1 - p^(max_retx+1)) / (1 - p)``; the untruncated limit is
    the classical ``1 / (1 - p)``.
    """
    if p >= 1.0:
        return float(max_retx + 1)
    return (1.0 - p ** (max_retx + 1)) / (1.0 - p)


def test_exact_timeline_of_a_small_case():
    # airtime 1, ack 0.5. Item 0 arrives at 0 with packets taking [2, 1] attempts; item 1 arrives
    # at 1 with one packet taking 1 attempt; teacher compute 0.25 s each, apprentice 0.1 s.
    tl = simulate(np.array([0.0, 1.0]), [np.array([2, 1]), np.array([1])], airtime_s=1.0, ack_delay_s=0.5,
                  teacher_compute_s=np.array([0.25, 0.25]), apprentice_compute_s=np.array([0.1, 0.1]))
    # item 0: enqueued 0.25, attempts occupy 1.5 + 1.5 + airtime 1 -> received 4.25, link free 4.75.
    assert tl.enqueued_s.tolist() == [0.25, 1.25]
    assert tl.tx_start_s.tolist() == [0.25, 4.75]
    assert tl.received_s.tolist() == [4.25, 5.75]
    assert tl.done_s == pytest.approx([4.35, 5.85])
    assert tl.delivery_time_s == pytest.approx([4.35, 4.85])
    assert tl.queue_wait_s == pytest.approx([0.0, 3.5])


def test_md1_mean_waiting_time_matches_theory(ctx):
    # Poisson arrivals, fixed service D (one packet, no errors, no ACK delay): M/D/1,
    # mean wait in queue Wq = rho * D / (2 (1 - rho)).
    d, rho, n = 1e-3, 0.6, 200_000
    arrivals = poisson_arrivals(n, rho / d, ctx.rng("arrivals"))
    tl = simulate(arrivals, [np.ones(1, dtype=np.int64)] * n, airtime_s=d, ack_delay_s=0.0)
    theory = rho * d / (2 * (1 - rho))
    assert np.mean(tl.queue_wait_s) == pytest.approx(theory, rel=0.05)
    # and the delivery time is wait + service
    assert np.mean(tl.delivery_time_s) == pytest.approx(theory + d, rel=0.05)


@pytest.mark.parametrize("p,max_retx", [(0.1, 4), (0.3, 2), (0.5, 8)])
def test_arq_mean_transmissions_match_truncated_geometric(ctx, p, max_retx):
    link = LinkConfig(mode="fixed-bler", bler=p, max_retx=max_retx, code={"k": 64, "n": 128}, header_bits=8)
    phy = build_phy(link, ctx)
    payloads = ctx.rng("payload").integers(0, 2, size=(40_000, 64), dtype=np.uint8)
    out = run_arq(phy, payloads, max_retx)
    assert out.attempts.mean() == pytest.approx(expected_transmissions(p, max_retx), rel=0.02)
    assert out.attempts.max() == max_retx + 1
    # A packet is lost only if every attempt failed: probability p^(max_retx+1).
    assert (~out.ok).mean() == pytest.approx(p ** (max_retx + 1), abs=4 * np.sqrt(p ** (max_retx + 1) / 40_000) + 1e-4)
    # Delivered packets carry exactly the sent bits.
    assert np.array_equal(out.received[out.ok], payloads[out.ok])


def test_expected_transmissions_limits():
    assert expected_transmissions(0.0, 3) == 1.0
    assert expected_transmissions(0.2, 200) == pytest.approx(1 / 0.8)
    assert expected_transmissions(0.5, 0) == 1.0

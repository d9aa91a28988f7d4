"""The fast paths of issue 18 compute what they replace: Sionna's BP messages bit for bit
(message exchange), the same decisions (compiled node updates, sub-batches, demapper row
blocks), and the Store-based discrete-event loop's timeline bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy
import torch
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from sionna.phy.mapping import Demapper, Mapper

from simulator.link.phy import BitTrueLink, EarlyStopLDPC5GDecoder
from simulator.link.des import simulate
from simulator.scenario import LinkConfig


def _llrs(k, n, m, esn0_db, blocks, seed=0):
    gen = torch.Generator().manual_seed(seed)
    enc = LDPC5GEncoder(k, n, num_bits_per_symbol=m)
    with torch.inference_mode():
        u = torch.randint(0, 2, (blocks, k), generator=gen).to(torch.float32)
        x = Mapper("qam", m)(enc(u))
        no = 10 ** (-esn0_db / 10)
        noise = torch.complex(torch.randn(x.shape, generator=gen), torch.randn(x.shape, generator=gen))
        llr = Demapper("app", "qam", m)(x + math.sqrt(no / 2) * noise, torch.tensor(no))
    return enc, u, llr


@pytest.mark.parametrize("k,n,m", [(64, 128, 2), (256, 512, 4)])
def test_message_exchange_is_sionnas_bit_for_bit(k, n, m):
    enc, _, _ = _llrs(k, n, m, 5.0, 4)
    ref = LDPC5GDecoder(enc, num_iter=20)
    ours = EarlyStopLDPC5GDecoder(enc, num_iter=20, compile_updates=False)
    gen = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        llr = torch.randn(50, ref._num_vns, generator=gen) * 4
        v2c = llr[:, ref._vn_idx_t]
        a = (v2c, torch.zeros_like(v2c), llr)
        b = a
        for it in range(3):
            a = ref._bp_iter(a[0], a[1], llr, a[2], it)
            b = ours._bp_iter(b[0], b[1], llr, b[2], it)
            assert all(torch.equal(x, y) for x, y in zip(a, b)), it


def test_compiled_updates_sub_batches_and_early_stop_agree_with_sionna():
    enc, u, llr = _llrs(256, 512, 4, 6.5, 1500)
    ref = LDPC5GDecoder(enc, num_iter=20)
    eager = EarlyStopLDPC5GDecoder(enc, num_iter=20, compile_updates=False)
    fast = EarlyStopLDPC5GDecoder(enc, num_iter=20)
    fast.cpu_sub_batch_floats = 200 * fast._num_vns * fast._max_vn_degree  # several sub-batches of 200
    with torch.inference_mode():
        a, b, c = ref(llr), eager(llr), fast(llr)
        one = fast(llr[:1])
    errors = [int((x != u).any(dim=1).sum()) for x in (a, b, c)]
    assert 0 < errors[0] < 1500  # inside the waterfall, so the comparison means something
    assert int((a != b).any(dim=1).sum()) <= 3  # early stop vs fixed iterations (test_phy bounds it too)
    assert int((b != c).any(dim=1).sum()) <= 2  # compiled vs eager node updates: float rounding only
    assert torch.equal(one, c[:1])  # a batch of one gives the row's decision in a batch


def test_demapper_row_blocks_give_the_same_llrs():
    link = LinkConfig(code={"k": 256, "n": 512}, modulation="qam16", snr_db=7.0)
    core = BitTrueLink(link, "cpu", torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(2)
    with torch.inference_mode():
        y = torch.complex(torch.randn(3000, 128, generator=gen), torch.randn(3000, 128, generator=gen))
        no = torch.tensor(0.2)
        assert torch.equal(core._demap(y, no), core.demapper(y, no))
        no_rows = torch.rand(3000, 1, generator=gen) + 0.1  # Rayleigh: one noise variance per row
        assert torch.equal(core._demap(y, no_rows), core.demapper(y, no_rows))


def _store_loop(arrival, attempts, airtime, ack, t_cmp, a_cmp):
    """The textbook three-process loop with simpy Stores (the design the fast loop replaces)."""
    n = len(arrival)
    t_cmp = np.zeros(n) if t_cmp is None else t_cmp
    a_cmp = np.zeros(n) if a_cmp is None else a_cmp
    enq, start, recv, done = (np.full(n, np.nan) for _ in range(4))
    env = simpy.Environment()
    txq, rxq = simpy.Store(env), simpy.Store(env)
    step = airtime + ack

    def teacher():
        for i in range(n):
            if arrival[i] > env.now:
                yield env.timeout(arrival[i] - env.now)
            if t_cmp[i] > 0:
                yield env.timeout(t_cmp[i])
            enq[i] = env.now
            txq.put(i)

    def link():
        while True:
            i = yield txq.get()
            start[i] = env.now
            for a in attempts[i][:-1]:
                yield env.timeout(a * step)
            yield env.timeout((attempts[i][-1] - 1) * step + airtime)
            recv[i] = env.now
            rxq.put(i)
            if ack > 0:
                yield env.timeout(ack)

    def apprentice():
        while True:
            i = yield rxq.get()
            if a_cmp[i] > 0:
                yield env.timeout(a_cmp[i])
            done[i] = env.now

    for p in (teacher, link, apprentice):
        env.process(p())
    env.run()
    return enq, start, recv, done


@pytest.mark.parametrize("case", range(12))
def test_event_loop_timeline_is_the_store_loops_bit_for_bit(case):
    rng = np.random.default_rng(case)
    n = int(rng.integers(1, 300))
    arrival = np.cumsum(rng.exponential(rng.uniform(1e-4, 1e-2), n))
    if case % 4 == 0:
        arrival[: n // 3] = 0.0  # simultaneous arrivals at t = 0
    attempts = [rng.integers(1, 4, size=int(rng.integers(1, 6))) for _ in range(n)]
    airtime, ack = float(rng.uniform(1e-4, 2e-3)), float(rng.choice([0.0, 1e-4, 3e-4]))
    t_cmp = None if case % 3 == 0 else rng.choice([0.0, 1e-3], n) * rng.uniform(0, 3, n)
    a_cmp = [None, np.zeros(n), rng.uniform(0, 2e-3, n) * (rng.random(n) < 0.7)][case % 3]
    tl = simulate(arrival, attempts, airtime, ack, t_cmp, a_cmp)
    want = _store_loop(arrival, attempts, airtime, ack, t_cmp, a_cmp)
    for got, ref in zip((tl.enqueued_s, tl.tx_start_s, tl.received_s, tl.done_s), want):
        assert got.tobytes() == ref.tobytes()

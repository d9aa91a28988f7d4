"""The discrete-event run (simpy): teacher, link and apprentice as processes on one ``env``.

- **teacher**: items arrive at their arrival times; the teacher processes them one at a time
  in arrival order (FIFO), spending each item's modelled compute time, then puts the item's
  packets in the link's transmit queue.
- **link**: a FIFO queue served by one transmitter with stop-and-wait ARQ. Each attempt of a
  packet occupies the channel for ``airtime_s``; the transmitter then waits ``ack_delay_s``
  for the ACK/NACK before its next attempt or packet. A packet is received at the end of its
  last attempt's airtime.
- **apprentice**: when the last packet of an item is received, the apprentice decodes it,
  one item at a time (FIFO), spending the item's modelled compute time.

All times are seconds of simulated time; nothing depends on wall-clock time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy


@dataclass
class Timeline:
    """Per item (index = item order), seconds: arrival, link queue entry, first bit on air,
    last packet received, reconstruction done (``done_s - arrival_s`` is the delivery time)."""

    arrival_s: np.ndarray
    enqueued_s: np.ndarray
    tx_start_s: np.ndarray
    received_s: np.ndarray
    done_s: np.ndarray

    @property
    def delivery_time_s(self) -> np.ndarray:
        return self.done_s - self.arrival_s

    @property
    def queue_wait_s(self) -> np.ndarray:
        """Time in the link's transmit queue (the M/D/1 waiting time when service is fixed)."""
        return self.tx_start_s - self.enqueued_s


def poisson_arrivals(n: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """``(n,)`` arrival times (s) of a Poisson process of ``rate`` items/s starting at 0."""
    return np.cumsum(rng.exponential(1.0 / rate, size=n))


def simulate(arrival_s: np.ndarray, attempts: list[np.ndarray], airtime_s: float, ack_delay_s: float,
             teacher_compute_s: np.ndarray | None = None, apprentice_compute_s: np.ndarray | None = None) -> Timeline:
    """Run the discrete-event model for N items.

    Args:
        arrival_s: ``(N,)`` nondecreasing arrival times at the teacher (s).
        attempts: N arrays; ``attempts[i]`` is ``(P_i,)`` int, the attempts each packet of item i takes.
        airtime_s: channel time of one codeword (s).
        ack_delay_s: wait for ACK/NACK after each attempt (s).
        teacher_compute_s, apprentice_compute_s: ``(N,)`` per-item compute times (s), default 0.
    Returns:
        the :class:`Timeline` of every item.
    """
    n = len(arrival_s)
    zero = np.zeros(n)
    t_cmp = zero if teacher_compute_s is None else np.asarray(teacher_compute_s, dtype=np.float64)
    a_cmp = zero if apprentice_compute_s is None else np.asarray(apprentice_compute_s, dtype=np.float64)
    arrival = np.asarray(arrival_s, dtype=np.float64)
    if n and np.any(np.diff(arrival) < 0):
        raise ValueError("arrival times must be nondecreasing")
    enq, start, recv, done = (np.full(n, np.nan) for _ in range(4))
    env = simpy.Environment()
    tx_queue = simpy.Store(env)
    rx_queue = simpy.Store(env)
    step = airtime_s + ack_delay_s

    def teacher():
        for i in range(n):
            if arrival[i] > env.now:
                yield env.timeout(arrival[i] - env.now)
            if t_cmp[i] > 0:
                yield env.timeout(t_cmp[i])
            enq[i] = env.now
            tx_queue.put(i)

    def link():
        while True:
            i = yield tx_queue.get()
            start[i] = env.now
            att = attempts[i]
            for a in att[:-1]:
                yield env.timeout(a * step)
            yield env.timeout((att[-1] - 1) * step + airtime_s)
            recv[i] = env.now
            rx_queue.put(i)
            if ack_delay_s > 0:
                yield env.timeout(ack_delay_s)

    def apprentice():
        while True:
            i = yield rx_queue.get()
            if a_cmp[i] > 0:
                yield env.timeout(a_cmp[i])
            done[i] = env.now

    env.process(teacher())
    env.process(link())
    env.process(apprentice())
    env.run()
    return Timeline(arrival.copy(), enq, start, recv, done)

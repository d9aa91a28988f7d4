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

The two queues are FIFO and only ever hold item indices in order, so each is kept as a counter
(items put so far) with the event its consumer sleeps on while it is empty; a consumer that
finds work waiting takes it without an event. Per packet the loop schedules one timeout per
attempt group (plus the ACK wait), the teacher one per arrival, and a wake-up only when a
process was idle: about half the events of a textbook simpy queue (a process per customer and
a ``Resource``), with event times computed by the same float operations (the timeline is bit
for bit that of the Store-based loop it replaces).
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


def _link_delays(attempts: list[np.ndarray], airtime_s: float | np.ndarray,
                 ack_delay_s: float) -> tuple[list[float], list[int]]:
    """The channel-time delays of every item's attempts, flattened, and each item's offset.

    Packet j of an item, taking ``a_j`` attempts, holds the channel ``a_j (airtime + ack)``,
    except the item's last packet, which is received ``(a_last - 1)(airtime + ack) + airtime``
    after it starts (its last ACK wait follows the reception). Returns ``(delays, offsets)``
    with ``delays[offsets[i]:offsets[i + 1]]`` the delays (s) of item i; each is computed with
    exactly the float operations of the event loop it replaces, so event times are bit for bit
    the same. ``airtime_s`` is one codeword's channel time, or ``(N,)`` one per item (each of
    an item's packets takes its item's).
    """
    counts = np.fromiter((len(a) for a in attempts), dtype=np.int64, count=len(attempts))
    if np.any(counts == 0):
        raise ValueError("every item needs at least one packet")
    offsets = np.zeros(len(attempts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = np.concatenate(attempts).astype(np.int64, copy=False) if len(attempts) else np.zeros(0, np.int64)
    if np.ndim(airtime_s):
        airtime_s = np.repeat(np.asarray(airtime_s, dtype=np.float64), counts)
        if len(airtime_s) != len(flat):
            raise ValueError("airtime_s must be a number or one value per item")
    step = airtime_s + ack_delay_s
    delays = flat * step
    last = offsets[1:] - 1
    delays[last] = (flat[last] - 1) * (step[last] if np.ndim(step) else step) + (
        airtime_s[last] if np.ndim(airtime_s) else airtime_s)
    return delays.tolist(), offsets.tolist()


class _Handoff:
    """Items handed from one process to the next, in order: how many so far, and the event the
    consumer sleeps on while it waits for the next one (a queue reduced to a counter)."""

    __slots__ = ("count", "_waiting")

    def __init__(self) -> None:
        self.count = 0
        self._waiting = None

    def put(self, count: int) -> None:
        """``count`` items are available now; wake the consumer if it waits."""
        self.count = count
        if self._waiting is not None:
            wake, self._waiting = self._waiting, None
            wake.succeed()

    def wait(self, new_event):
        """The event to yield until the next :meth:`put` (``new_event``: ``env.event``)."""
        self._waiting = new_event()
        return self._waiting


def simulate(arrival_s: np.ndarray, attempts: list[np.ndarray], airtime_s: float | np.ndarray, ack_delay_s: float,
             teacher_compute_s: np.ndarray | None = None, apprentice_compute_s: np.ndarray | None = None) -> Timeline:
    """Run the discrete-event model for N items.

    Args:
        arrival_s: ``(N,)`` nondecreasing arrival times at the teacher (s).
        attempts: N arrays; ``attempts[i]`` is ``(P_i,)`` int, the attempts each packet of item i
            takes (``P_i >= 1``).
        airtime_s: channel time of one codeword (s), or ``(N,)`` one per item.
        ack_delay_s: wait for ACK/NACK after each attempt (s).
        teacher_compute_s, apprentice_compute_s: ``(N,)`` per-item compute times (s), default 0.
    Returns:
        the :class:`Timeline` of every item.

    The queues between the processes are FIFO and hold item indices in order, so they are
    kept as counters: a process waits on an event only when the queue it reads is empty, and
    the producer wakes it. An apprentice with no compute time finishes each item when it is
    received, so it needs no process.
    """
    n = len(arrival_s)
    arrival = np.asarray(arrival_s, dtype=np.float64)
    if n and np.any(np.diff(arrival) < 0):
        raise ValueError("arrival times must be nondecreasing")
    if len(attempts) != n:
        raise ValueError(f"attempts must have one array per item ({n}); got {len(attempts)}")
    t_cmp = [0.0] * n if teacher_compute_s is None else np.asarray(teacher_compute_s, dtype=np.float64).tolist()
    a_cmp = None if apprentice_compute_s is None else np.asarray(apprentice_compute_s, dtype=np.float64)
    if a_cmp is not None and not np.any(a_cmp > 0):
        a_cmp = None
    delays, offsets = _link_delays(attempts, airtime_s, ack_delay_s)
    arr = arrival.tolist()
    enq, start, recv, done = ([0.0] * n for _ in range(4))
    env = simpy.Environment()
    timeout, event = env.timeout, env.event
    queued, received_so_far = _Handoff(), _Handoff()  # teacher -> link, link -> apprentice

    def teacher():
        for i in range(n):
            if arr[i] > env.now:
                yield timeout(arr[i] - env.now)
            if t_cmp[i] > 0:
                yield timeout(t_cmp[i])
            enq[i] = env.now
            queued.put(i + 1)

    def link():
        for i in range(n):
            if queued.count <= i:
                yield queued.wait(event)
            start[i] = env.now
            for j in range(offsets[i], offsets[i + 1]):
                yield timeout(delays[j])
            recv[i] = env.now
            received_so_far.put(i + 1)
            if ack_delay_s > 0:
                yield timeout(ack_delay_s)

    def apprentice():
        cmp = a_cmp.tolist()
        for i in range(n):
            if received_so_far.count <= i:
                yield received_so_far.wait(event)
            if cmp[i] > 0:
                yield timeout(cmp[i])
            done[i] = env.now

    env.process(teacher())
    env.process(link())
    if a_cmp is not None:
        env.process(apprentice())
    env.run()
    as_array = lambda v: np.array(v, dtype=np.float64)  # noqa: E731
    received = as_array(recv)
    return Timeline(arrival.copy(), as_array(enq), as_array(start), received,
                    as_array(done) if a_cmp is not None else received.copy())

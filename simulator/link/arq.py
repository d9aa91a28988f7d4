"""Stop-and-wait ARQ over the packet PHY: how many attempts each packet took.

Block errors of successive attempts are independent of when they happen, so the attempts are
drawn before the discrete-event run, in rounds: every pending packet is sent once through the
PHY, the ones received intact are done, the others are sent again, up to ``1 + max_retx``
attempts. The discrete-event run then only places these attempts in time.

HARQ (``harq = "chase" | "ir"``): the rounds are the same, but each round calls
``phy.transmit_harq`` (:class:`~simulator.link.phy_base.HarqPhy`) with the attempt index and
the soft state of the pending packets, so that the receiver decodes each packet from all its
attempts so far. The state the PHY returns holds the failed packets only, in the order of
``pending``; a packet's soft values are dropped once it is received or out of attempts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .phy_base import HARQ_MODES


@dataclass
class ArqOutcome:
    """Per packet: ``attempts (M,) int64`` >= 1, ``ok (M,) bool``, ``received (M, k) uint8``."""

    attempts: np.ndarray
    ok: np.ndarray
    received: np.ndarray


def run_arq(phy, payloads: np.ndarray, max_retx: int, on_round=None, harq: str = "none") -> ArqOutcome:
    """Send ``payloads (M, k) uint8`` through ``phy.transmit`` with up to ``max_retx`` retransmissions.

    ``received`` holds, for a packet that got through, the decoded bits of its good attempt,
    and for a lost packet those of its last attempt. ``on_round(sent)`` is called after each
    round with the number of codewords sent (for progress). ``harq``: ``"none"`` (each attempt
    decoded on its own, ``phy.transmit``), ``"chase"`` or ``"ir"`` (``phy.transmit_harq``;
    ``ValueError`` for a PHY without it, e.g. the fixed-BLER mode).
    """
    send = _sender(phy, harq)
    m = len(payloads)
    attempts = np.zeros(m, dtype=np.int64)
    ok = np.zeros(m, dtype=bool)
    if m == 0:
        return ArqOutcome(attempts, ok, np.array(payloads, dtype=np.uint8, copy=True))
    # First round on the whole array (no gather copy); its output becomes `received`.
    received, good, state = send(payloads, 0, None)
    if np.may_share_memory(received, payloads):
        received = received.copy()
    attempts += 1
    ok |= good
    if on_round is not None:
        on_round(m)
    pending = np.flatnonzero(~good)
    for j in range(1, max_retx + 1):
        if len(pending) == 0:
            break
        decoded, good, state = send(payloads[pending], j, state)
        attempts[pending] += 1
        received[pending] = decoded
        ok[pending[good]] = True
        if on_round is not None:
            on_round(len(pending))
        pending = pending[~good]
    del state  # HARQ: the soft values of the packets lost after the last attempt
    return ArqOutcome(attempts, ok, received)


def _sender(phy, harq: str):
    """``send(bits, attempt, state) -> (decoded, ok, state)``: one round through ``phy``, each
    attempt decoded on its own (``"none"``, ``phy.transmit``, no state) or combined with the
    earlier attempts of the same packets (``phy.transmit_harq``)."""
    if harq == "none":
        return lambda bits, attempt, state: (*phy.transmit(bits), None)
    if harq not in HARQ_MODES:
        raise ValueError(f"unknown HARQ mode {harq!r}; allowed: {', '.join(HARQ_MODES)}")
    if not callable(getattr(phy, "transmit_harq", None)):
        raise ValueError(f"harq = {harq!r} needs a PHY with soft values (transmit_harq): the bit-true or the "
                         f"abstraction mode; {type(phy).__name__} has none (use harq = 'none')")
    return lambda bits, attempt, state: phy.transmit_harq(bits, attempt, state, harq)

"""The ``fixed-bler`` link mode: block errors i.i.d. with probability ``link.bler`` (no Sionna).

For validating everything above the PHY (ARQ, timing, accounting) against closed forms.
Failed blocks are corrupted by :func:`~simulator.link.phy_base.corrupt_failed`, so ``ok``
is exactly ``decoded == bits`` as in the other modes.

HARQ: not modelled. Soft combining changes the error probability of each retransmission, and
a single ``link.bler`` says nothing about it, so ``link.harq`` other than ``"none"`` is
refused (``ValueError``); the PHY has no ``transmit_harq``.
"""

from __future__ import annotations

import numpy as np

from ..context import RunContext
from .config import LinkConfig
from .phy_base import FAILED_BLOCK_FLIP_PROB, check_bits, corrupt_failed


class FixedBlerPhy:
    """Block errors i.i.d. with probability ``link.bler`` (ctx stream ``phy.bler``).

    Args:
        link: the link configuration (``k``, ``n``, modulation and ``bler``).
        ctx: run context.
        bler: overrides ``link.bler`` (in [0, 1)).
    """

    def __init__(self, link: LinkConfig, ctx: RunContext, bler: float | None = None):
        self.link = link
        if getattr(link, "harq", "none") != "none":
            raise ValueError(f"mode 'fixed-bler' has no HARQ model (link.harq = {link.harq!r}); use harq = 'none', "
                             f"or mode 'bit-true' or 'abstraction' for chase/ir")
        self.bler = float(link.bler if bler is None else bler)
        if not 0.0 <= self.bler < 1.0:
            raise ValueError(f"the block error probability must be in [0, 1) (got {self.bler})")
        self.k, self.n, self.bits_per_symbol = link.code.k, link.code.n, link.bits_per_symbol
        self._rng = ctx.rng("phy.bler")

    def transmit(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bits = check_bits(bits, self.k)
        failed = self._rng.random(bits.shape[0]) < self.bler
        return corrupt_failed(bits, failed, self._rng, FAILED_BLOCK_FLIP_PROB), ~failed


__all__ = ["FixedBlerPhy"]

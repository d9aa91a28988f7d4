"""Link abstraction: packet errors drawn from a BLER table measured bit-true.

:class:`AbstractionPhy` has the interface of the bit-true PHY (``k``, ``n``,
``bits_per_symbol``, ``transmit``) but runs no Sionna: each codeword fails independently with
probability ``table.bler_at(link.esn0_db)`` (interpolated, see
:meth:`~simulator.link.calibration.BlerTable.bler_at`). A failed codeword gets each
information bit flipped with the bit-error fraction measured within failed blocks at that SNR
(at least one flip), so ``ok`` is exactly ``decoded == bits`` as in the bit-true mode.

Fading is i.i.d. across codewords and attempts in both modes, so one i.i.d. draw per codeword
is the same law as the bit-true link's (up to the table's measurement error).
"""

from __future__ import annotations

import numpy as np

from ..context import RunContext
from .calibration import BlerTable, calibrate
from .config import LinkConfig
from .phy_base import check_bits, corrupt_failed

__all__ = ["AbstractionPhy"]


class AbstractionPhy:
    """Block errors drawn from the calibrated BLER table (ctx stream ``phy.abstraction``).

    Args:
        link: link configuration; ``link.esn0_db`` is the operating point.
        ctx: run context (cache directory, device for a first calibration, seed).
        table: a table to use instead of :func:`calibrate` (which measures on first use
            and reads the cache afterwards).
    """

    def __init__(self, link: LinkConfig, ctx: RunContext, table: BlerTable | None = None, progress=None):
        self.link = link
        self.k, self.n, self.bits_per_symbol = link.code.k, link.code.n, link.bits_per_symbol
        self.table = table if table is not None else calibrate(link, ctx, progress=progress)
        self.esn0_db = float(link.esn0_db)
        self.bler = self.table.bler_at(self.esn0_db)
        self.flip_prob = self.table.bit_error_fraction_at(self.esn0_db)
        self._rng = ctx.rng("phy.abstraction")

    def transmit(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bits = check_bits(bits, self.k)
        failed = self._rng.random(bits.shape[0]) < self.bler
        return corrupt_failed(bits, failed, self._rng, self.flip_prob), ~failed

"""Link abstraction: packet errors drawn from a BLER table measured bit-true.

:class:`AbstractionPhy` has the interface of the bit-true PHY (``k``, ``n``,
``bits_per_symbol``, ``transmit``, ``transmit_harq``) but runs no Sionna: each codeword fails
independently with probability ``table.bler_at(link.esn0_db)`` (interpolated, see
:meth:`~simulator.link.calibration.BlerTable.bler_at`). A failed codeword gets each
information bit flipped with the bit-error fraction measured within failed blocks at that SNR
(at least one flip), so ``ok`` is exactly ``decoded == bits`` as in the bit-true mode.

Fading is i.i.d. across codewords and attempts in both modes, so one i.i.d. draw per codeword
is the same law as the bit-true link's (up to the table's measurement error).

HARQ (``transmit_harq``): attempt j (0-based) of a packet whose earlier attempts all failed
fails with the conditional probability BLER_(j+1) / BLER_j of the HARQ table
(:class:`~simulator.link.calibration.HarqBlerTable`, residual BLER after j combined attempts,
BLER_0 = 1), so the residual BLER after j attempts is the table's. Attempts beyond the
table's (at most :data:`~simulator.link.calibration.HARQ_MAX_COMBINED`) use its last
conditional probability. Failed blocks are corrupted with the bit-error fraction of their level.
"""

from __future__ import annotations

import numpy as np

from ..context import RunContext
from ..errors import InputError
from .calibration import BlerTable, HarqBlerTable, calibrate, calibrate_harq
from .config import LinkConfig
from .phy_base import HarqState, check_bits, check_harq, corrupt_failed

__all__ = ["AbstractionPhy"]


def _check_covered(table: BlerTable, esn0_db: float) -> None:
    """Refuse an operating point outside the table's grid where holding the edge point's BLER
    would be wrong: above a last point still in the waterfall (BLER at or above ``min_bler``),
    or below a first point that is not yet all errors."""
    first, last = table.points[0], table.points[-1]
    if esn0_db > last.esn0_db and last.bler >= table.key.min_bler:
        raise InputError(f"Es/N0 {esn0_db:g} dB lies above the calibration grid, whose last point ({last.esn0_db:g} dB) "
                         f"still has BLER {last.bler:.3g}; extend the grid to cover it (or leave it unset for the "
                         "automatic grid)", where="link.calibration.snr_grid_db")
    if esn0_db < first.esn0_db and first.bler < 0.99:
        raise InputError(f"Es/N0 {esn0_db:g} dB lies below the calibration grid, whose first point ({first.esn0_db:g} dB) "
                         f"has BLER {first.bler:.3g} only; extend the grid to cover it (or leave it unset for the "
                         "automatic grid)", where="link.calibration.snr_grid_db")


class AbstractionPhy:
    """Block errors drawn from the calibrated BLER table (ctx stream ``phy.abstraction``).

    Args:
        link: link configuration; ``link.esn0_db`` is the operating point.
        ctx: run context (cache directory, device for a first calibration, seed).
        table: a table to use instead of :func:`calibrate` (which measures on first use
            and reads the cache afterwards).
        harq_table: a HARQ table to use instead of :func:`calibrate_harq` for its mode.

    With ``link.harq = "chase" | "ir"`` and ``link.max_retx >= 1`` the HARQ table of that mode
    is calibrated (or read) at construction and ``table`` is its single-attempt level (no
    separate single-attempt table is measured); other HARQ modes asked of
    :meth:`transmit_harq` are calibrated on first use.
    """

    def __init__(self, link: LinkConfig, ctx: RunContext, table: BlerTable | None = None, progress=None,
                 harq_table: HarqBlerTable | None = None):
        self.link = link
        self.k, self.n, self.bits_per_symbol = link.code.k, link.code.n, link.bits_per_symbol
        self._ctx, self._progress = ctx, progress
        self._harq: dict[str, tuple[list[float], list[float]]] = {}
        self.harq_tables: dict[str, HarqBlerTable] = {}
        self.esn0_db = float(link.esn0_db)
        if harq_table is not None:
            self._add_harq_table(harq_table)
        elif table is None and link.harq != "none" and link.max_retx >= 1:
            self._add_harq_table(calibrate_harq(link, ctx, progress=progress))
        if table is None and link.harq in self.harq_tables:
            table = self.harq_tables[link.harq].levels[0]
        self.table = table if table is not None else calibrate(link, ctx, progress=progress)
        _check_covered(self.table, self.esn0_db)
        self.bler = self.table.bler_at(self.esn0_db)
        self.flip_prob = self.table.bit_error_fraction_at(self.esn0_db)
        self._rng = ctx.rng("phy.abstraction")

    def _add_harq_table(self, table: HarqBlerTable) -> None:
        self.harq_tables[table.key.harq] = table
        self._harq[table.key.harq] = (table.conditional_failure_at(self.esn0_db),
                                      [t.bit_error_fraction_at(self.esn0_db) for t in table.levels])

    def transmit(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bits = check_bits(bits, self.k)
        failed = self._rng.random(bits.shape[0]) < self.bler
        return corrupt_failed(bits, failed, self._rng, self.flip_prob), ~failed

    def conditional_failure(self, harq: str) -> list[float]:
        """P(attempt j fails | attempts before it failed), j = 0 .. table attempts - 1, at ``link.esn0_db``."""
        return list(self._harq_params(harq)[0])

    def _harq_params(self, harq: str) -> tuple[list[float], list[float]]:
        check_harq(harq)
        if harq not in self._harq:
            self._add_harq_table(calibrate_harq(self.link, self._ctx, harq=harq, progress=self._progress))
        return self._harq[harq]

    def transmit_harq(self, bits: np.ndarray, attempt: int, state: HarqState | None,
                      harq: str) -> tuple[np.ndarray, np.ndarray, None]:
        """Attempt ``attempt`` of packets whose earlier attempts all failed: each fails with the
        table's conditional probability (:class:`~simulator.link.phy_base.HarqPhy`; no soft
        state, the returned state is ``None``). With ``link.max_retx = 0`` and no HARQ table
        loaded, the single attempt is :meth:`transmit`'s draw (no HARQ table is calibrated)."""
        if attempt == 0 and self.link.max_retx == 0 and harq not in self._harq:
            check_harq(harq)
            decoded, ok = self.transmit(bits)
            return decoded, ok, None
        cond, flips = self._harq_params(harq)
        bits = check_bits(bits, self.k)
        j = min(int(attempt), len(cond) - 1)
        failed = self._rng.random(bits.shape[0]) < cond[j]
        return corrupt_failed(bits, failed, self._rng, flips[j]), ~failed, None

"""The bandwidth budget of a digital pipeline: ``[link] bandwidth_ratio`` (docs/jscc.md).

A ratio ``rho`` (complex channel uses per real source dimension) gives each item of shape
``(H, W, C)`` a budget of ``U = floor(rho H W C)`` complex channel uses. A digital pipeline
spends it on **one codeword per item** that fills the budget exactly:

* ``n = m U`` coded bits (``m``: the modulation's bits per symbol), so the codeword's channel
  uses are ``U`` whatever the modulation;
* ``k = floor(R n + 1/2)`` information bits, ``R`` the scenario's code rate ``code.k / code.n``
  (``mcs = "fixed"``) or the rate of the MCS entry chosen for the SNR (``mcs = "adaptive"``,
  :func:`~simulator.link.mcs.choose_mcs` with codewords of ``U`` symbols), held in the 5G LDPC
  range ``[ceil(n/5), floor(948 n / 1024)]``;
* ``k - header_bits`` bits carry the item (:attr:`Budget.item_bits`): the rate control
  ``"budget"`` of the languages and codecs picks per item the best operating point whose
  stream fits them. No retransmission (it would exceed the budget): the scenario refuses
  ``max_retx > 0`` or HARQ with a budget.

An item that no operating point fits is not coded: the teacher sends an empty stream (the one
codeword carries only its header) and the apprentice scores the item as not delivered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import ValidationError

from .config import CODE_RATE_MAX, LinkConfig

__all__ = ["Budget", "budget_uses", "budget_code"]


def budget_uses(ratio: float, shape: tuple[int, int, int]) -> int:
    """``floor(ratio H W C)`` complex channel uses per item of ``shape = (H, W, C)``."""
    h, w, c = shape
    return int(math.floor(float(ratio) * h * w * c + 1e-9))


def budget_code(rate: float, bits_per_symbol: int, uses: int) -> tuple[int, int]:
    """``(k, n)`` of a codeword of ``uses`` channel uses at ``bits_per_symbol`` and code rate
    ``rate`` (module doc), the same rule as an MCS entry's (:func:`~simulator.link.mcs.entry_code`)."""
    n = int(bits_per_symbol) * int(uses)
    k = math.floor(rate * n + 0.5)
    k = max(k, -(-n // 5))  # the 5G LDPC range's lowest rate, 1/5 (exact in integers)
    return min(k, math.floor(CODE_RATE_MAX * n)), n


@dataclass(frozen=True)
class Budget:
    """The budget of items of one shape at one ratio.

    Attributes:
        ratio: complex channel uses per real source dimension.
        uses: ``U``, complex channel uses per item (and per codeword).
    """

    ratio: float
    uses: int

    @classmethod
    def of(cls, link: LinkConfig, shape: tuple[int, int, int]) -> "Budget | None":
        """The budget of ``link`` for items of ``shape``; ``None`` without ``bandwidth_ratio``."""
        if link.bandwidth_ratio is None:
            return None
        return cls(float(link.bandwidth_ratio), budget_uses(link.bandwidth_ratio, shape))

    def fixed_link(self, link: LinkConfig) -> LinkConfig:
        """``link`` with its modulation and code rate and one codeword of :attr:`uses` channel
        uses. Raises ``ValueError`` naming the key when the codeword is not a 5G LDPC code
        semsim runs (k above 8448, the header too long for k)."""
        k, n = budget_code(link.code.rate, link.bits_per_symbol, self.uses)
        try:
            return LinkConfig.model_validate({**link.model_dump(), "code": {"k": k, "n": n}})
        except ValidationError as err:
            msg = err.errors()[0]["msg"].removeprefix("Value error, ")
            raise ValueError(f"link.bandwidth_ratio = {self.ratio:.6g} gives each item {self.uses} channel uses, one "
                             f"codeword of k/n = {k}/{n} at {link.modulation} and rate {link.code.rate:.4f}, which "
                             f"is not a code semsim runs ({msg}); change the ratio, the modulation or the rate") from None

    def item_bits(self, link: LinkConfig) -> int:
        """Bits of one item's stream that fit the budget on ``link`` (a budget link:
        :meth:`fixed_link` or adapted to an MCS entry): ``k - header_bits``."""
        if link.code.n != link.bits_per_symbol * self.uses:
            raise ValueError(f"the link's codeword ({link.code.n} bits) does not fill the budget of {self.uses} "
                             "channel uses")
        return link.payload_bits

"""The link modes, registered in :data:`~simulator.registry.LINK_MODES`, and the factory that
builds a scenario's PHY from its mode.

- ``bit-true``: :class:`~simulator.link.phy.BitTruePhy`, every codeword through Sionna's
  5G LDPC encoder, QAM mapper, channel, APP demapper and BP decoder.
- ``abstraction``: :class:`~simulator.link.abstraction.AbstractionPhy`, block errors
  drawn from a BLER table measured bit-true (:mod:`simulator.link.calibration`).
- ``fixed-bler``: :class:`~simulator.link.fixed_bler.FixedBlerPhy`, block errors i.i.d.
  with probability ``link.bler`` (no Sionna); the only mode that reads ``link.bler``.

Every PHY has ``k``, ``n``, ``bits_per_symbol`` and ``transmit(bits (B, k) uint8) ->
(decoded (B, k) uint8, ok (B,) bool)`` (see :class:`~simulator.link.phy_base.Phy`). The modes
with ``supports_harq`` (bit-true, abstraction) also have ``transmit_harq``
(:class:`~simulator.link.phy_base.HarqPhy`) for ``link.harq = "chase" | "ir"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..context import RunContext
from ..registry import LINK_MODES
from .abstraction import AbstractionPhy
from .config import LinkConfig
from .fixed_bler import FixedBlerPhy
from .phy_base import Phy


@dataclass(frozen=True)
class LinkMode:
    """A link mode: ``build(link, ctx)`` returns its PHY; ``uses_bler``: it is configured by
    ``link.bler`` (and only such a mode accepts that key); ``supports_harq``: its PHY has
    ``transmit_harq``, so ``link.harq`` may be ``"chase"`` or ``"ir"``."""

    build: Callable[[LinkConfig, RunContext], Phy]
    description: str
    uses_bler: bool = False
    supports_harq: bool = True


def _bit_true(link: LinkConfig, ctx: RunContext) -> Phy:
    """:class:`~simulator.link.phy.BitTruePhy` (Sionna is imported when a bit-true link is built)."""
    from .phy import BitTruePhy

    return BitTruePhy(link, ctx)


LINK_MODES.register("bit-true", LinkMode(_bit_true, "every codeword through the Sionna 5G LDPC + QAM chain"))
LINK_MODES.register("abstraction", LinkMode(AbstractionPhy, "block errors drawn from a bit-true BLER table"))
LINK_MODES.register("fixed-bler", LinkMode(FixedBlerPhy, "block errors i.i.d. with probability link.bler",
                                           uses_bler=True, supports_harq=False))


def build_phy(link: LinkConfig, ctx: RunContext):
    """The PHY of ``link.mode`` (a name of :data:`~simulator.registry.LINK_MODES`); ``ValueError``
    for ``link.harq`` other than ``"none"`` with a mode without HARQ."""
    mode = LINK_MODES.get(link.mode)
    if link.harq != "none" and not mode.supports_harq:
        raise ValueError(f"link.harq = {link.harq!r} needs a mode with soft combining "
                         f"({', '.join(repr(m) for m in LINK_MODES.names() if LINK_MODES.get(m).supports_harq)}); "
                         f"mode {link.mode!r} has none")
    return mode.build(link, ctx)


__all__ = ["LinkMode", "build_phy"]

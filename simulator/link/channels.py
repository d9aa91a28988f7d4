"""The channels of the bit-true link, registered in :data:`~simulator.registry.CHANNELS`.

A channel is built once per link (``ChannelKind.build(device, noise_gen, fading_gen)``) and
applied per chunk of codewords: ``apply(x, no)`` takes the symbols ``x`` ``[B, S]`` complex64
(unit energy) and the noise variance ``no`` and returns ``(y, no_eff)``, the equalized
received symbols and the per-row noise variance the demapper uses.

- ``awgn``: ``y = x + w``, ``w ~ CN(0, no)``.
- ``rayleigh``: block fading, one ``h ~ CN(0, 1)`` per codeword (row), perfect CSI:
  ``y = (h x + w) / h`` (zero-forcing with the true h), ``no_eff = no / |h|^2``.

Randomness: no global state. Sionna's blocks draw from Sionna's global RNG; ours are
subclasses whose ``torch_rng`` is a generator of the :class:`~simulator.context.RunContext`,
so the same seed gives identical outputs and nothing global is seeded or consumed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from ..registry import CHANNELS


@functools.cache
def _seeded_blocks() -> tuple[type, type]:
    """Sionna's ``AWGN`` and single-antenna ``RayleighBlockFading`` as subclasses whose
    ``torch_rng`` is the generator given to them instead of Sionna's global one. Sionna is
    imported here, on the first channel built, so that reading the registry (validating a
    scenario) does not load it."""
    from sionna.phy.channel import AWGN, RayleighBlockFading

    class SeededAWGN(AWGN):
        def __init__(self, generator: torch.Generator, **kwargs):
            super().__init__(**kwargs)
            self._generator = generator

        @property
        def torch_rng(self) -> torch.Generator:
            return self._generator

    class SeededRayleigh(RayleighBlockFading):
        def __init__(self, generator: torch.Generator, **kwargs):
            super().__init__(num_rx=1, num_rx_ant=1, num_tx=1, num_tx_ant=1, **kwargs)
            self._generator = generator

        @property
        def torch_rng(self) -> torch.Generator:
            return self._generator

    return SeededAWGN, SeededRayleigh


class Channel(Protocol):
    """What the PHY uses of a channel: ``apply(x [B, S] complex64 unit-energy symbols, no
    noise variance) -> (y equalized symbols, no_eff noise variance the demapper assumes)``."""

    def apply(self, x: torch.Tensor, no: float) -> tuple[torch.Tensor, torch.Tensor]: ...


class AwgnChannel:
    """Additive white Gaussian noise (see the module doc)."""

    def __init__(self, device: str, noise_gen: torch.Generator, fading_gen: torch.Generator | None = None):
        self.awgn = _seeded_blocks()[0](noise_gen, precision="single", device=device)

    def apply(self, x: torch.Tensor, no: float) -> tuple[torch.Tensor, torch.Tensor]:
        no_t = torch.tensor(no, dtype=torch.float32, device=x.device)
        return self.awgn(x, no_t), no_t


class RayleighBlockChannel(AwgnChannel):
    """Rayleigh block fading, one coefficient per row, perfect CSI (see the module doc)."""

    def __init__(self, device: str, noise_gen: torch.Generator, fading_gen: torch.Generator | None = None):
        super().__init__(device, noise_gen)
        if fading_gen is None:
            raise ValueError("the rayleigh channel needs a fading generator")
        self.fading = _seeded_blocks()[1](fading_gen, precision="single", device=device)

    def apply(self, x: torch.Tensor, no: float) -> tuple[torch.Tensor, torch.Tensor]:
        no_t = torch.tensor(no, dtype=torch.float32, device=x.device)
        b = x.shape[0]
        h = self.fading(b, 1)[0].reshape(b, 1)
        y = self.awgn(h * x, no_t) / h
        return y, no_t / h.abs().square()


@dataclass(frozen=True)
class ChannelKind:
    """A registered channel: ``build(device, noise_gen, fading_gen)`` returns an object with
    ``apply(x, no) -> (y, no_eff)``; ``fading``: its BLER falls slowly with SNR (the
    calibration then spans a wider SNR grid)."""

    build: Callable[[str, torch.Generator, torch.Generator | None], Channel]
    description: str
    fading: bool = False


CHANNELS.register("awgn", ChannelKind(AwgnChannel, "additive white Gaussian noise"))
CHANNELS.register("rayleigh", ChannelKind(RayleighBlockChannel,
                                          "Rayleigh block fading, one h ~ CN(0,1) per codeword, perfect CSI",
                                          fading=True))


def build_channel(name: str, device: str, noise_gen: torch.Generator, fading_gen: torch.Generator | None):
    """The channel registered as ``name`` (``ValueError`` listing the allowed ones)."""
    return CHANNELS.get(name).build(device, noise_gen, fading_gen)


__all__ = ["Channel", "AwgnChannel", "RayleighBlockChannel", "ChannelKind", "build_channel"]

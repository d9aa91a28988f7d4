"""Uncoded QAM through Sionna's Mapper, the registered channels and Demapper: the reference
the PHY tests check against closed-form bit error rates (not part of semsim's link)."""

from __future__ import annotations

import numpy as np
import torch
from sionna.phy.mapping import Demapper, Mapper

from simulator.context import RunContext
from simulator.link.channels import build_channel
from simulator.link.config import MODULATIONS
from simulator.link.phy_base import noise_variance, torch_device
from simulator.registry import CHANNELS


class UncodedModem:
    """Uncoded QAM through Sionna's Mapper, channel and Demapper, with hard decisions.

    Each row of ``bits`` is one fading block (for ``channel="rayleigh"``: one h ~ CN(0,1) per
    row, perfect CSI). Hard decisions use the max-log demapper, i.e. the nearest constellation
    point (symbol-wise ML), which is what the closed-form BER expressions describe.

    Args:
        modulation: ``qpsk | qam16 | qam64 | qam256``.
        channel: a name of :data:`~simulator.registry.CHANNELS`.
        ctx: run context (device and the streams ``phy.uncoded.noise`` / ``.fading``).

    :meth:`transmit` takes ``bits`` ``(B, m)`` uint8 with ``m`` a multiple of the bits per
    symbol and an Es/N0 in dB, returns the hard-decided bits ``(B, m)`` uint8.
    """

    def __init__(self, modulation: str, channel: str, ctx: RunContext):
        if modulation not in MODULATIONS:
            raise ValueError(f"unknown modulation {modulation!r}; allowed: {', '.join(MODULATIONS)}")
        CHANNELS.check(channel)
        self.bits_per_symbol = MODULATIONS[modulation]
        dev = torch_device(ctx.device)
        self.device = dev
        self.mapper = Mapper("qam", self.bits_per_symbol, precision="single", device=dev)
        self.demapper = Demapper("maxlog", "qam", self.bits_per_symbol, hard_out=True,
                                 precision="single", device=dev)
        self.channel = build_channel(channel, dev, ctx.torch_generator("phy.uncoded.noise", device=dev),
                                     ctx.torch_generator("phy.uncoded.fading", device=dev))

    @torch.inference_mode()
    def transmit(self, bits: np.ndarray, esn0_db: float) -> np.ndarray:
        bits = np.asarray(bits, dtype=np.uint8)
        if bits.ndim != 2 or bits.shape[1] % self.bits_per_symbol:
            raise ValueError(f"bits must be (B, m) with m a multiple of {self.bits_per_symbol}; got {bits.shape}")
        c = torch.from_numpy(bits).to(self.device).to(torch.float32)
        y, no_eff = self.channel.apply(self.mapper(c), noise_variance(esn0_db))
        return self.demapper(y, no_eff).to(torch.uint8).cpu().numpy()

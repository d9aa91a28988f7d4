"""Scenario section ``[link]``: the 5G LDPC code, modulation, channel, link physics and
retransmissions (docs/phy.md).

The link's derived quantities live here with their definitions: bits per symbol, payload
bits per packet, symbols and airtime per codeword, and Es/N0 from the given SNR (Es/N0 or
Eb/N0). Names are checked against :data:`~simulator.registry.LINK_MODES` and
:data:`~simulator.registry.CHANNELS`.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from ..registry import CHANNELS, LINK_MODES
from ..section import Section
from .packets import min_header_bits

MODULATIONS = {"qpsk": 2, "qam16": 4, "qam64": 6, "qam256": 8}


# 5G NR LDPC (TS 38.212) code-rate range supported by the Sionna encoder without repetition:
# R = k/n from 1/5 up to 948/1024 (the highest MCS rate of TS 38.214).
CODE_RATE_MIN = 1.0 / 5.0
CODE_RATE_MAX = 948.0 / 1024.0


def check_snr_grid(grid) -> list[float]:
    """An SNR grid in dB: at least 2 finite numbers, strictly increasing. Raises ValueError."""
    try:
        v = [float(x) for x in grid]
    except (TypeError, ValueError):
        raise ValueError(f"must be a list of numbers in dB (got {grid!r})") from None
    if len(v) < 2:
        raise ValueError(f"needs at least 2 SNR points in dB (got {v!r})")
    if not all(math.isfinite(x) for x in v):
        raise ValueError(f"SNR points must be finite numbers in dB (got {v!r})")
    if any(b <= a for a, b in zip(v, v[1:])):
        raise ValueError(f"must be strictly increasing (got {v!r})")
    return v


class CalibrationConfig(Section):
    """How the BLER table of ``link.mode = "abstraction"`` is measured (docs/phy.md).

    The grid is in the unit of ``link.snr_type`` (Es/N0 or Eb/N0, dB); ``None`` picks a grid
    from the code, modulation and channel. Each grid point runs bit-true blocks until
    ``target_block_errors`` block errors or ``max_blocks`` blocks; the sweep stops after the
    first point whose BLER is below ``min_bler``.
    """

    snr_grid_db: list[float] | None = None
    target_block_errors: int = Field(default=100, ge=1, le=10**7)
    max_blocks: int = Field(default=2000, ge=1, le=10**9)
    min_bler: float = Field(default=1e-3, gt=0.0, lt=1.0)

    @field_validator("snr_grid_db")
    @classmethod
    def _grid(cls, v: list[float] | None) -> list[float] | None:
        return None if v is None else check_snr_grid(v)


class CodeConfig(Section):
    """5G LDPC code: k information bits per codeword of n bits, rate k/n in [1/5, 948/1024]."""

    k: int = Field(default=1024, ge=12, le=8448)
    n: int = Field(default=2048, ge=1, le=316 * 384)

    @model_validator(mode="after")
    def _k_le_n(self) -> "CodeConfig":
        if self.k > self.n:
            raise ValueError(f"k must not exceed n (got k={self.k}, n={self.n})")
        rate = self.k / self.n
        if not CODE_RATE_MIN <= rate <= CODE_RATE_MAX:
            raise ValueError(f"code rate k/n = {self.k}/{self.n} = {rate:.4f} is outside the 5G LDPC range "
                             f"[1/5, 948/1024] = [0.2, {CODE_RATE_MAX:.4f}]")
        return self

    @property
    def rate(self) -> float:
        return self.k / self.n


class LinkConfig(Section):
    """The coded wireless link between teacher and apprentice."""

    mode: Annotated[str, AfterValidator(LINK_MODES.check)] = "bit-true"
    snr_db: float = 10.0
    snr_type: Literal["esn0", "ebn0"] = "esn0"
    channel: Annotated[str, AfterValidator(CHANNELS.check)] = "awgn"
    modulation: Literal["qpsk", "qam16", "qam64", "qam256"] = "qam16"
    code: CodeConfig = Field(default_factory=CodeConfig)
    decoder_iterations: int = Field(default=20, ge=1, le=200)
    decoder_early_stop: bool = True
    charge_decoding: bool = Field(
        default=False, description="charge the apprentice the LDPC decoder's FLOPs for every codeword received: "
                                   "decoder_iterations x the edges of its graph x 8 (docs/metrics.md, Compute time)")
    header_bits: int = Field(default=32, ge=0)
    symbol_rate: float = Field(default=1e6, ge=1.0, le=1e12)
    max_retx: int = Field(default=4, ge=0, le=64)
    ack_delay_s: float = Field(default=1e-4, ge=0.0, le=3600.0)
    bler: float | None = Field(default=None, ge=0.0, lt=1.0)
    harq: Literal["none", "chase", "ir"] = "none"
    mcs: Literal["fixed", "adaptive"] = "fixed"
    target_bler: float = Field(default=0.1, gt=0.0, lt=1.0)
    bandwidth_ratio: float | None = Field(
        default=None, gt=0.0, le=64.0,
        description="complex channel uses per real source dimension (H W C values of an item); the budget of a "
                    "joint source-channel coder (docs/jscc.md); twice it is the real-symbol form")
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)

    @model_validator(mode="after")
    def _header_fits(self) -> "LinkConfig":
        uses_bler = LINK_MODES.get(self.mode).uses_bler
        if uses_bler and self.bler is None:
            raise ValueError(f"mode = '{self.mode}' needs link.bler, the block error probability in [0, 1)")
        if self.bler is not None and not uses_bler:
            takers = ", ".join(f"'{m}'" for m in LINK_MODES.names() if LINK_MODES.get(m).uses_bler)
            raise ValueError(f"link.bler is a setting of mode {takers} only (got it with mode = '{self.mode}')")
        if self.harq != "none" and not getattr(LINK_MODES.get(self.mode), "supports_harq", False):
            takers = ", ".join(f"'{m}'" for m in LINK_MODES.names() if getattr(LINK_MODES.get(m), "supports_harq", False))
            raise ValueError(f"harq = '{self.harq}' needs mode {takers}; mode '{self.mode}' has no HARQ model")
        if self.mcs == "adaptive" and LINK_MODES.get(self.mode).uses_bler:
            raise ValueError(f"mcs = 'adaptive' chooses a code by its measured BLER; mode '{self.mode}' fixes the BLER "
                             "at link.bler instead: use mode 'bit-true' or 'abstraction'")
        if self.header_bits >= self.code.k:
            raise ValueError(f"header_bits must be smaller than code.k (got {self.header_bits} >= {self.code.k})")
        need = min_header_bits(self.code.k)
        if self.header_bits < need:
            raise ValueError(f"header_bits must be at least {need} for k = {self.code.k} (route, last-packet flag "
                             f"and fill count; docs/phy.md) (got {self.header_bits})")
        if not math.isfinite(self.snr_db):
            raise ValueError("snr_db must be finite")
        bps = MODULATIONS[self.modulation]
        if self.code.n % bps:
            raise ValueError(f"code.n must be a multiple of the {bps} bits per symbol of {self.modulation} "
                             f"(got n={self.code.n})")
        return self

    @property
    def bits_per_symbol(self) -> int:
        return MODULATIONS[self.modulation]

    @property
    def payload_bits(self) -> int:
        """Information bits per packet available to the item (k - header_bits)."""
        return self.code.k - self.header_bits

    @property
    def symbols_per_packet(self) -> int:
        return math.ceil(self.code.n / self.bits_per_symbol)

    @property
    def airtime_s(self) -> float:
        """Seconds one codeword occupies the channel."""
        return self.symbols_per_packet / self.symbol_rate

    @property
    def esn0_db(self) -> float:
        """Es/N0 in dB, whatever snr_type the scenario gave."""
        if self.snr_type == "esn0":
            return self.snr_db
        return self.snr_db + 10.0 * math.log10(self.bits_per_symbol * self.code.k / self.code.n)


__all__ = ["MODULATIONS", "CODE_RATE_MIN", "CODE_RATE_MAX", "check_snr_grid", "CalibrationConfig", "CodeConfig",
           "LinkConfig"]

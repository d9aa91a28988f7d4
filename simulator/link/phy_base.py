"""What every PHY of the link shares: the interface, SNR conversions, bit checks and the
corruption of failed blocks.

SNR conventions: unit-energy constellations (Es = 1), so the complex noise variance is
``N0 = 10^(-Es/N0 / 10)``; ``Eb/N0 = Es/N0 - 10 log10(bits_per_symbol * k / n)`` (information
bits per channel symbol). The 5G code-rate range and the modulations are in
:mod:`simulator.link.config`. Errors here are ``ValueError``; naming scenario keys is
the scenario layer's job.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch

#: In the fixed-BLER and abstraction modes a failed block has each information bit flipped
#: independently with a probability (0.5 in the fixed-BLER mode, the measured fraction in the
#: abstraction); at least one bit is always flipped, so ``ok`` stays exact.
FAILED_BLOCK_FLIP_PROB = 0.5


class Phy(Protocol):
    """What the link layer uses of a PHY.

    ``transmit(bits)`` sends each row of ``bits`` (``(B, k)`` uint8) once and returns
    ``(decoded, ok)``: ``decoded`` ``(B, k)`` uint8 and ``ok`` ``(B,)`` bool, with ideal error
    detection: ``ok[i]`` is ``True`` iff ``decoded[i] == bits[i]`` (an ideal CRC).
    """

    k: int
    n: int
    bits_per_symbol: int

    def transmit(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def esn0_to_ebn0(esn0_db: float, bits_per_symbol: int, k: int, n: int) -> float:
    """Eb/N0 (dB) of an Es/N0 (dB) for a rate-k/n code and ``bits_per_symbol`` bits per symbol."""
    return esn0_db - 10.0 * math.log10(bits_per_symbol * k / n)


def ebn0_to_esn0(ebn0_db: float, bits_per_symbol: int, k: int, n: int) -> float:
    """Es/N0 (dB) of an Eb/N0 (dB); the inverse of :func:`esn0_to_ebn0`."""
    return ebn0_db + 10.0 * math.log10(bits_per_symbol * k / n)


def noise_variance(esn0_db: float) -> float:
    """Complex noise variance N0 for unit symbol energy: ``10^(-Es/N0 / 10)``."""
    return 10.0 ** (-esn0_db / 10.0)


def torch_device(device: str) -> str:
    """Sionna's spelling of a device: ``"cuda"`` becomes ``"cuda:<current>"``."""
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but no CUDA device is visible")
        return f"cuda:{torch.cuda.current_device()}"
    return device


def check_bits(bits: np.ndarray, k: int) -> np.ndarray:
    """``bits`` as a ``(B, k)`` uint8 array (``ValueError`` for another shape)."""
    bits = np.asarray(bits)
    if bits.ndim != 2 or bits.shape[1] != k:
        raise ValueError(f"bits must have shape (B, {k}); got {bits.shape}")
    if bits.dtype != np.uint8:
        bits = bits.astype(np.uint8)
    return bits


def corrupt_failed(bits: np.ndarray, failed: np.ndarray, rng: np.random.Generator, flip_prob: float) -> np.ndarray:
    """``bits`` with each row in ``failed`` corrupted: bits flipped i.i.d. with ``flip_prob``,
    at least one flip per failed row (so a failed row always differs from the input)."""
    out = bits.copy()
    idx = np.flatnonzero(failed)
    if idx.size == 0:
        return out
    k = bits.shape[1]
    flips = rng.random((idx.size, k), dtype=np.float32) < np.float32(flip_prob)
    none = ~flips.any(axis=1)
    if none.any():
        flips[np.flatnonzero(none), rng.integers(0, k, size=int(none.sum()))] = True
    out[idx] ^= flips.astype(np.uint8)
    return out


__all__ = ["FAILED_BLOCK_FLIP_PROB", "Phy", "esn0_to_ebn0", "ebn0_to_esn0", "noise_variance", "torch_device",
           "check_bits", "corrupt_failed"]

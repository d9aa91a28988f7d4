"""What every PHY of the link shares: the interface, SNR conversions, bit checks and the
corruption of failed blocks.

HARQ (``link.harq``): a PHY that supports it also has ``transmit_harq`` (:class:`HarqPhy`);
:data:`RV_ORDER` and :func:`harq_rv` say which redundancy version an attempt sends.

SNR conventions: unit-energy constellations (Es = 1), so the complex noise variance is
``N0 = 10^(-Es/N0 / 10)``; ``Eb/N0 = Es/N0 - 10 log10(bits_per_symbol * k / n)`` (information
bits per channel symbol). The 5G code-rate range and the modulations are in
:mod:`simulator.link.config`. Errors here are ``ValueError``; naming scenario keys is
the scenario layer's job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

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


#: ``link.harq`` values: ``none`` (plain ARQ, every attempt decoded on its own), ``chase``
#: (every attempt sends RV 0, the receiver adds the LLRs of all attempts), ``ir`` (incremental
#: redundancy: attempt j sends ``RV_ORDER[j % 4]``, the receiver combines all RVs received).
HARQ_MODES = ("none", "chase", "ir")

#: Redundancy version of attempt j (0-based) with incremental redundancy: ``RV_ORDER[j % 4]``,
#: the usual 3GPP order (TS 38.321 / 38.214: 0, 2, 3, 1).
RV_ORDER = (0, 2, 3, 1)


def harq_rv(harq: str, attempt: int) -> int:
    """The redundancy version attempt ``attempt`` (0-based) sends: RV 0 for ``none`` and
    ``chase``, ``RV_ORDER[attempt % 4]`` for ``ir`` (``ValueError`` for another mode)."""
    if harq not in HARQ_MODES:
        raise ValueError(f"unknown HARQ mode {harq!r}; allowed: {', '.join(HARQ_MODES)}")
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0 (got {attempt})")
    return RV_ORDER[attempt % len(RV_ORDER)] if harq == "ir" else 0


def check_harq(harq: str) -> str:
    """``harq`` if it is ``chase`` or ``ir`` (the modes ``transmit_harq`` serves), else ``ValueError``."""
    if harq not in HARQ_MODES[1:]:
        raise ValueError(f"transmit_harq needs harq 'chase' or 'ir' (got {harq!r}; 'none' is plain transmit)")
    return harq


@dataclass
class HarqState:
    """The receiver's soft values of the packets still pending after an attempt.

    ``llr``: ``(P, a, n)`` float32 channel LLRs (a torch tensor on the PHY's device, Sionna's
    logit convention log p(1)/p(0)), row i for the i-th pending packet in the order the
    failed rows came out of the last call; ``rvs``: the redundancy version of each of the
    ``a`` slices. Chase combining keeps one slice (the running sum, ``rvs == (0,)``); IR keeps
    one slice per attempt. Nothing else refers to it, so a packet's soft values are released
    when it leaves the state (received or out of attempts).
    """

    llr: Any
    rvs: tuple[int, ...]

    def __len__(self) -> int:
        return int(self.llr.shape[0])


class HarqPhy(Phy, Protocol):
    """A :class:`Phy` with HARQ (optional: the ARQ loop needs it only for ``harq != "none"``).

    ``transmit_harq(bits, attempt, state, harq)`` sends attempt ``attempt`` (0-based; the same
    for every row) of the packets ``bits (P, k) uint8`` with HARQ mode ``harq`` (``chase`` or
    ``ir``) and decodes each packet from all its attempts so far. ``state`` is ``None`` for
    the first attempt and otherwise the state returned by the previous call, whose rows are
    exactly the packets of ``bits`` (the previous call's failed rows, in order). Returns
    ``(decoded (P, k) uint8, ok (P,) bool, state)``, the new state holding the soft values of
    the rows with ``ok == False`` only (``None`` for a PHY without soft values, e.g. the
    abstraction).
    """

    def transmit_harq(self, bits: np.ndarray, attempt: int, state: HarqState | None,
                      harq: str) -> tuple[np.ndarray, np.ndarray, HarqState | None]: ...


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


def sionna_version() -> str:
    """The installed ``sionna-no-rt`` version (``sionna.__version__`` without package metadata)."""
    try:
        from importlib.metadata import version
        return version("sionna-no-rt")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        import sionna
        return str(getattr(sionna, "__version__", "unknown"))


__all__ = ["FAILED_BLOCK_FLIP_PROB", "Phy", "HarqPhy", "HarqState", "HARQ_MODES", "RV_ORDER", "harq_rv",
           "check_harq", "esn0_to_ebn0", "ebn0_to_esn0", "noise_variance", "torch_device",
           "check_bits", "corrupt_failed", "sionna_version"]

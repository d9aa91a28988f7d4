"""Bytes as bit arrays and back: the unit every stage counts lengths in."""

from __future__ import annotations

import numpy as np


def bytes_to_bits(data: bytes) -> np.ndarray:
    """``(8 * len(data),)`` uint8 bits, most significant first."""
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))


def bits_to_bytes(bits: np.ndarray, n_bytes: int) -> bytes:
    """The first ``n_bytes`` bytes of a bit array from :func:`bytes_to_bits`."""
    return np.packbits(bits[: 8 * n_bytes]).tobytes()


__all__ = ["bytes_to_bits", "bits_to_bytes"]

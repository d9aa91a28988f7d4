"""Packetization: an item's bitstream split into channel codewords (design.md "Packets").

A packet carries one codeword of ``k`` information bits, of which ``header_bits`` are
overhead; the remaining ``payload_bits = k - header_bits`` carry the item. The last packet is
zero-padded. The header bits are filled with the item and packet numbers (repeated), so
every one of the ``k`` bits is a real bit on the link.
"""

from __future__ import annotations

import math

import numpy as np


def packets_needed(n_bits: int, payload_bits: int) -> int:
    """Packets for an ``n_bits`` stream (at least one: an empty item still sends a header)."""
    return max(1, math.ceil(n_bits / payload_bits))


def bytes_to_bits(data: bytes) -> np.ndarray:
    """``(8 * len(data),)`` uint8 bits, most significant first."""
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))


def bits_to_bytes(bits: np.ndarray, n_bytes: int) -> bytes:
    """The first ``n_bytes`` bytes of a bit array from :func:`bytes_to_bits`."""
    return np.packbits(bits[: 8 * n_bytes]).tobytes()


def packetize(bits: np.ndarray, k: int, header_bits: int, item: int = 0) -> np.ndarray:
    """Split ``bits`` (uint8) into ``(P, k)`` codeword payloads: header then data, zero-padded."""
    payload = k - header_bits
    p = packets_needed(len(bits), payload)
    out = np.zeros((p, k), dtype=np.uint8)
    data = np.zeros(p * payload, dtype=np.uint8)
    data[: len(bits)] = bits
    out[:, header_bits:] = data.reshape(p, payload)
    if header_bits:
        for j in range(p):
            word = np.unpackbits(np.array([item, j], dtype=">u4").view(np.uint8))
            out[j, :header_bits] = np.resize(word, header_bits)
    return out


def depacketize(packets: np.ndarray, header_bits: int, n_bits: int) -> np.ndarray:
    """The first ``n_bits`` data bits of ``(P, k)`` received packets."""
    return packets[:, header_bits:].reshape(-1)[:n_bits]

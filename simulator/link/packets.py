"""Packetization: an item's bitstream split into channel codewords (design.md "Packets").

A packet carries one codeword of ``k`` information bits, of which ``header_bits`` are the
packet header; the remaining ``payload_bits = k - header_bits`` carry the item. The last
packet is zero-padded. The header is what the apprentice reads to rebuild the item (it
never sees the teacher's objects), most significant bit first:

=========  =====================  ====================================================
bits       field                  meaning
=========  =====================  ====================================================
1          ``route``              0: classical stream, 1: semantic representation
1          ``last``               1 in the item's last packet
``w``      ``fill``               data bits used in this packet (``w`` = bit length of
                                  ``payload_bits``; ``payload_bits`` in all but the last)
the rest   ``seq``                the packet's index within its item, modulo 2^rest
=========  =====================  ====================================================

So ``header_bits`` must be at least :func:`min_header_bits` (the scenario checks it). The
item a packet belongs to is the link layer's framing (each item's packets travel as one
sequence through the ARQ), as in a MAC with per-flow queues.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..bits import bits_to_bytes, bytes_to_bits  # noqa: F401 - the link's bit helpers, re-exported


def packets_needed(n_bits: int, payload_bits: int) -> int:
    """Packets for an ``n_bits`` stream (at least one: an empty item still sends a header)."""
    return max(1, math.ceil(n_bits / payload_bits))


def fill_field_bits(payload_bits: int) -> int:
    """Width of the ``fill`` field: enough for 0..``payload_bits``."""
    return int(payload_bits).bit_length()


def min_header_bits(k: int) -> int:
    """The smallest header that fits route, last and fill for codewords of ``k`` bits.

    The fill field's width depends on the payload, i.e. on the header itself, so this is the
    smallest ``h`` with ``2 + bit_length(k - h) <= h``.
    """
    h = 2
    while 2 + fill_field_bits(k - h) > h:
        h += 1
    return h


def _field(value: int, width: int) -> np.ndarray:
    """``value`` as ``width`` bits, most significant first (uint8)."""
    return ((int(value) >> np.arange(width - 1, -1, -1)) & 1).astype(np.uint8)


def _value(bits: np.ndarray) -> int:
    return int(bits.astype(np.int64) @ (1 << np.arange(len(bits) - 1, -1, -1, dtype=np.int64))) if len(bits) else 0


@dataclass(frozen=True)
class Header:
    """One packet's header fields (see the module doc)."""

    route: int
    last: bool
    fill: int
    seq: int


def packetize(bits: np.ndarray, k: int, header_bits: int, route: int) -> np.ndarray:
    """Split ``bits`` (uint8) into ``(P, k)`` codeword payloads: header then data, zero-padded.

    Args:
        bits: ``(L,)`` uint8 stream of one item.
        k: information bits per codeword.
        header_bits: header length (at least :func:`min_header_bits` of ``k``).
        route: the header's route bit, :attr:`simulator.route.Route.header_bit`.
    """
    payload = k - header_bits
    w = fill_field_bits(payload)
    if 2 + w > header_bits:
        raise ValueError(f"header_bits = {header_bits} cannot hold route, last and a {w}-bit fill "
                         f"(need at least {min_header_bits(k)} for k = {k})")
    p = packets_needed(len(bits), payload)
    out = np.zeros((p, k), dtype=np.uint8)
    data = np.zeros(p * payload, dtype=np.uint8)
    data[: len(bits)] = bits
    out[:, header_bits:] = data.reshape(p, payload)
    seq_bits = header_bits - 2 - w
    for j in range(p):
        last = j == p - 1
        fill = len(bits) - j * payload if last else payload
        out[j, :header_bits] = np.concatenate([[route, int(last)], _field(fill, w),
                                               _field(j % (1 << seq_bits), seq_bits)])
    return out


def read_header(packet: np.ndarray, header_bits: int) -> Header:
    """The header of one received ``(k,)`` packet."""
    k = len(packet)
    w = fill_field_bits(k - header_bits)
    h = packet[:header_bits]
    return Header(route=int(h[0]), last=bool(h[1]), fill=_value(h[2:2 + w]), seq=_value(h[2 + w:header_bits]))


def reassemble(packets: np.ndarray, header_bits: int) -> tuple[int, np.ndarray]:
    """An item's route and stream from its received ``(P, k)`` packets, read from the headers.

    Raises:
        ValueError: the headers disagree (route changes, ``last`` not on the last packet, a
            sequence gap, or a fill larger than the payload).
    """
    k = packets.shape[1]
    payload = k - header_bits
    headers = [read_header(p, header_bits) for p in packets]
    seq_mod = 1 << (header_bits - 2 - fill_field_bits(payload))
    for j, h in enumerate(headers):
        if h.route != headers[0].route or h.last != (j == len(headers) - 1) or h.seq != j % seq_mod:
            raise ValueError(f"inconsistent packet header at packet {j}")
        if h.fill > payload or (not h.last and h.fill != payload):
            raise ValueError(f"bad fill {h.fill} at packet {j}")
    n_bits = (len(headers) - 1) * payload + headers[-1].fill
    return headers[0].route, packets[:, header_bits:].reshape(-1)[:n_bits]

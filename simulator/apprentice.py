"""The apprentice: rebuilds each item from the packets that arrived.

It knows only what arrives: for each item the link hands over its packets and whether each
one was received intact (ARQ gave up on the others). From the packet headers
(:mod:`simulator.link.packets`) it reads the route and the stream length, then decodes
the stream with the classical coder or the language. An item with a lost packet, or whose
stream does not decode or is empty (the teacher sent nothing: a bandwidth budget no operating
point fits), is not delivered. Scoring (PSNR, fidelity, impact) is the ledger's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .classical import source_coding
from .classical.mosaic import groups, picture_shape, tiles
from .classical.streams import classical_file
from .bits import bits_to_bytes
from .link.packets import reassemble
from .route import Route


@dataclass
class Reconstruction:
    """Per item (N).

    Attributes:
        delivered: ``(N,)`` bool, every packet arrived and the stream decoded.
        images: ``(N, H, W, C)`` uint8 reconstructions (zeros where not delivered).
        route: ``(N,)`` object: the :class:`~simulator.route.Route` read from the headers
            (``""`` where nothing arrived).
        n_bits: ``(N,)`` int64 stream length read from the headers (-1 where nothing arrived).
    """

    delivered: np.ndarray
    images: np.ndarray
    route: np.ndarray
    n_bits: np.ndarray


def reconstruct(shape: tuple[int, int, int], packets: list[np.ndarray], packet_ok: list[np.ndarray],
                header_bits: int, coder: str, *, language=None, container: str = "file",
                mosaic: int = 1) -> Reconstruction:
    """Rebuild N items of ``shape = (H, W, C)`` from what the link delivered.

    Args:
        shape: the item shape ``(H, W, C)``, agreed when the link was set up.
        packets: N arrays ``(P_i, k)`` uint8, the received codeword payloads (headers included).
        packet_ok: N arrays ``(P_i,)`` bool, whether each packet arrived intact.
        header_bits: packet header length.
        coder: the classical coder's name.
        container: ``classical.container``: the classical items arrive as the codec's whole
            file, or as minimal header and payload, which the apprentice rebuilds into the file
            from the link's configuration (:func:`~simulator.classical.streams.classical_file`).
        language: the language that decodes semantic items (``None``: no semantic item may arrive).
        mosaic: ``classical.mosaic`` of the classical items: ``N > 1``, each item carries a chunk
            of its picture's stream (:mod:`simulator.classical.mosaic`); a picture is rebuilt,
            and its items delivered, only when every one of its items arrived.
    """
    n = len(packets)
    images = np.zeros((n, *shape), dtype=np.uint8)
    delivered = np.zeros(n, dtype=bool)
    route = np.full(n, "", dtype=object)
    n_bits = np.full(n, -1, dtype=np.int64)
    sem_idx, sem_streams = [], []
    chunks: dict[int, np.ndarray] = {}
    for i in range(n):
        if not packet_ok[i].all():
            continue
        try:
            flag, bits = reassemble(packets[i], header_bits)
        except ValueError:
            continue
        n_bits[i] = len(bits)
        stream = bits_to_bytes(bits, (len(bits) + 7) // 8)
        route[i] = Route.from_header_bit(flag)
        if mosaic > 1 and route[i] is Route.CLASSICAL:
            chunks[i] = bits  # rebuilt with its picture below
            continue
        if not len(bits):  # the teacher sent no stream (a bandwidth budget no operating point fits)
            continue
        if route[i] is Route.SEMANTIC:
            if language is None:
                raise ValueError(f"item {i} arrived on the semantic route but the apprentice has no language")
            sem_idx.append(i)
            sem_streams.append(stream)
            continue
        try:
            images[i] = source_coding.decode(classical_file(bits, coder, container, shape), coder, shape)
        except source_coding.CorruptStream:
            continue
        delivered[i] = True
    for idx in (groups(n, mosaic) if chunks else []):
        if not all(int(i) in chunks for i in idx):
            continue
        whole = np.concatenate([chunks[int(i)] for i in idx])
        if not len(whole):
            continue
        pshape = picture_shape(shape, len(idx), mosaic)
        try:
            picture = source_coding.decode(classical_file(whole, coder, container, pshape), coder, pshape)
        except source_coding.CorruptStream:
            continue
        images[idx] = tiles(picture, mosaic) if len(idx) > 1 else picture[None]
        delivered[idx] = True
    if sem_idx:
        decoded, _ = language.decode(sem_streams)
        images[sem_idx] = decoded
        delivered[sem_idx] = True
    return Reconstruction(delivered, images, route, n_bits)

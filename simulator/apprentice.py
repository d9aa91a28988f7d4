"""The apprentice: reassembles each item from its received packets, decodes, reconstructs.

An item whose packets all arrived intact is decoded (classical coder or the language's
decoder); an item with a lost packet (ARQ gave up) cannot be reconstructed. Fidelity is then
scored against the original (design.md "Fidelity").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .classical import source_coding
from .classical.packets import bits_to_bytes, depacketize
from .metrics import psnr_db
from .teacher import SEMANTIC


@dataclass
class Reconstruction:
    """Per item (N): ``delivered (N,) bool`` every packet arrived and the stream decoded;
    ``images (N, H, W, C) uint8`` (zeros where not delivered); ``psnr_db (N,)`` (inf when
    exact, NaN when not delivered); ``decoded_cluster (N,) int64`` (header cluster, -1 none)."""

    delivered: np.ndarray
    images: np.ndarray
    psnr_db: np.ndarray
    decoded_cluster: np.ndarray


def reconstruct(originals: np.ndarray, route: np.ndarray, n_bits: np.ndarray, packets: list[np.ndarray],
                packet_ok: list[np.ndarray], header_bits: int, coder: str, language=None) -> Reconstruction:
    """Rebuild N items from what the link delivered.

    Args:
        originals: ``(N, H, W, C)`` uint8, only for scoring fidelity.
        route: ``(N,)`` str route of each item.
        n_bits: ``(N,)`` bits of each item's stream.
        packets: N arrays ``(P_i, k)`` uint8, the received codeword payloads.
        packet_ok: N arrays ``(P_i,)`` bool.
        header_bits: packet header length.
        coder: the classical coder name.
        language: the language that decodes semantic items.
    """
    n = len(originals)
    shape = originals.shape[1:]
    images = np.zeros_like(originals)
    delivered = np.zeros(n, dtype=bool)
    psnr = np.full(n, np.nan)
    cluster = np.full(n, -1, dtype=np.int64)
    sem_idx, sem_streams = [], []
    for i in range(n):
        if not packet_ok[i].all():
            continue
        bits = depacketize(packets[i], header_bits, int(n_bits[i]))
        stream = bits_to_bytes(bits, (int(n_bits[i]) + 7) // 8)
        if route[i] == SEMANTIC:
            sem_idx.append(i)
            sem_streams.append(stream)
            continue
        try:
            images[i] = source_coding.decode(stream, coder, shape)
        except source_coding.CorruptStream:
            continue
        delivered[i] = True
    if sem_idx:
        decoded, clusters = language.decode(sem_streams)
        images[sem_idx] = decoded
        cluster[sem_idx] = clusters
        delivered[sem_idx] = True
    for i in np.flatnonzero(delivered):
        psnr[i] = psnr_db(originals[i], images[i])
    return Reconstruction(delivered, images, psnr, cluster)

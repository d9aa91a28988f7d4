"""Classical streams: every item of a sweep point coded with one classical coder, once, and
shared by the pipelines (the ``classical`` pipeline's coder, the coder of X_m) and the
pre-processor's cost model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..bits import bits_to_bytes, bytes_to_bits
from ..registry import CODERS
from . import payload, source_coding
from .quality import best_to_target, encode_at_quality, encode_to_target

#: ``classical.container``: what the link carries for a classical item.
CONTAINERS = ("none", "file")


@dataclass
class ClassicalStreams:
    """Every item of a sweep point coded with one classical coder (shared by the pipelines).

    Attributes:
        coder: the coder's registered name.
        bits: N uint8 bit arrays, what the link carries per item: with ``container = "file"``
            the codec's whole stream (container and headers included); with ``"none"`` the
            minimal header and the payload (:func:`~simulator.classical.payload.item_bits`).
        quality: ``(N,)`` float64 codec quality used (NaN for a lossless coder).
        met: ``(N,)`` bool, the decode meets the PSNR target (always True for a lossless coder;
            False where no quality reaches it and the highest was sent).
    """

    coder: str
    bits: list[np.ndarray]
    quality: np.ndarray
    met: np.ndarray
    container: str = "file"


def classical_file(bits: np.ndarray, coder: str, container: str, shape: tuple[int, int, int]) -> bytes:
    """The codec's whole stream from what the link carried for one item (``bits``, uint8);
    :class:`~simulator.classical.source_coding.CorruptStream` if the bits do not form one."""
    if container == "none":
        try:
            return payload.item_stream(coder, bits, shape)
        except ValueError as err:
            raise source_coding.CorruptStream(str(err)) from None
    return bits_to_bytes(bits, len(bits) // 8)


def encode_classical(images: np.ndarray, coder: str, quality: str | int = "target",
                     psnr_db: float | None = None, *, on_item: Callable[[int, int], None] | None = None,
                     container: str = "file") -> ClassicalStreams:
    """Code each ``(H, W, C)`` uint8 image of ``images`` ``(N, H, W, C)`` with ``coder``.

    A lossless coder ignores ``quality``. A lossy one codes at the integer ``quality``, or
    with ``quality = "target"`` at the shortest stream whose decode meets ``psnr_db`` (dB)
    (:func:`~simulator.classical.quality.encode_to_target`). ``on_item(done, n)`` is told
    after each item (progress). ``container``: ``"file"`` (the link carries the codec's whole
    stream) or ``"none"`` (its minimal header and payload, docs/codecs.md).
    """
    if container not in CONTAINERS:
        raise ValueError(f"container must be one of {', '.join(CONTAINERS)} (got {container!r})")
    n = len(images)
    spec = CODERS.get(coder)
    q = np.full(n, np.nan)
    met = np.ones(n, dtype=bool)

    def each(fn):
        out = []
        for img in images:
            out.append(fn(img))
            if on_item is not None:
                on_item(len(out), n)
        return out

    shape = tuple(images.shape[1:])
    if spec.lossless:
        streams = each(lambda img: source_coding.encode(img, coder))
    elif coder == "best":
        if quality != "target" or psnr_db is None:
            raise ValueError("the 'best' coder codes each item to a PSNR target: quality = \"target\" and psnr_db")
        size = None if container == "file" else (lambda m, s, qm: len(payload.item_bits(m, s, shape, qm)))
        results = each(lambda img: best_to_target(img, psnr_db, size))
        streams = [r.stream for r in results]
        q[:] = [np.nan if r.quality is None else r.quality for r in results]
    elif quality == "target":
        if psnr_db is None:
            raise ValueError("a quality target needs psnr_db")
        results = each(lambda img: encode_to_target(coder, img, psnr_db))
        streams = [r.stream for r in results]
        q[:] = [r.quality for r in results]
        met[:] = [r.met for r in results]
    else:
        results = each(lambda img: encode_at_quality(coder, img, int(quality)))
        streams = [r.stream for r in results]
        q[:] = int(quality)
        if psnr_db is not None:
            met[:] = [r.psnr_db >= psnr_db for r in results]
    if container == "none":
        bits = [payload.item_bits(coder, b, shape, None if np.isnan(qi) else int(qi)) for b, qi in zip(streams, q)]
    else:
        bits = [bytes_to_bits(b) for b in streams]
    return ClassicalStreams(coder, bits, q, met, container)


__all__ = ["ClassicalStreams", "encode_classical", "classical_file", "CONTAINERS"]

"""Classical streams: every item of a sweep point coded with one classical coder, once, and
shared by the pipelines (the ``classical`` pipeline's coder, the coder of X_m) and the
pre-processor's cost model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..bits import bytes_to_bits
from ..registry import CODERS
from . import source_coding
from .quality import encode_at_quality, encode_to_target


@dataclass
class ClassicalStreams:
    """Every item of a sweep point coded with one classical coder (shared by the pipelines).

    Attributes:
        coder: the coder's registered name.
        bits: N uint8 bit arrays, the codec's real streams (headers included).
        quality: ``(N,)`` float64 codec quality used (NaN for a lossless coder).
        met: ``(N,)`` bool, the decode meets the PSNR target (always True for a lossless coder;
            False where no quality reaches it and the highest was sent).
    """

    coder: str
    bits: list[np.ndarray]
    quality: np.ndarray
    met: np.ndarray


def encode_classical(images: np.ndarray, coder: str, quality: str | int = "target",
                     psnr_db: float | None = None, *, on_item: Callable[[int, int], None] | None = None
                     ) -> ClassicalStreams:
    """Code each ``(H, W, C)`` uint8 image of ``images`` ``(N, H, W, C)`` with ``coder``.

    A lossless coder ignores ``quality``. A lossy one codes at the integer ``quality``, or
    with ``quality = "target"`` at the shortest stream whose decode meets ``psnr_db`` (dB)
    (:func:`~simulator.classical.quality.encode_to_target`). ``on_item(done, n)`` is told
    after each item (progress).
    """
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

    if spec.lossless:
        streams = each(lambda img: source_coding.encode(img, coder))
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
    return ClassicalStreams(coder, [bytes_to_bits(b) for b in streams], q, met)


__all__ = ["ClassicalStreams", "encode_classical"]

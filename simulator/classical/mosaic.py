"""Mosaics: ``N x N`` images coded as one picture (``classical.mosaic = N``, docs/jscc.md), as
the published separation baselines code CIFAR-10 with BPG.

Items are grouped in arrival order into pictures of ``N^2`` consecutive items
(:func:`groups`; the last ``n mod N^2`` items are coded one by one). A picture is coded at the
budget of its items together, and its stream is cut into one chunk per item, each carried by
that item's codeword; the apprentice rebuilds the picture only when every chunk arrived, so a
picture is delivered or lost as a whole.
"""

from __future__ import annotations

import numpy as np


def mosaic(images: np.ndarray, side: int) -> np.ndarray:
    """``(N, H, W, C)`` images, ``N`` a multiple of ``side^2`` -> ``(N / side^2, side H, side W, C)``
    pictures, row-major: image ``j`` of a picture sits at row ``j // side``, column ``j % side``."""
    n, h, w, c = images.shape
    if n % (side * side):
        raise ValueError(f"{n} images do not fill {side}x{side} mosaics")
    return (images.reshape(n // side ** 2, side, side, h, w, c).transpose(0, 1, 3, 2, 4, 5)
            .reshape(n // side ** 2, side * h, side * w, c))


def tiles(picture: np.ndarray, side: int) -> np.ndarray:
    """The inverse of :func:`mosaic` for one ``(side H, side W, C)`` picture -> ``(side^2, H, W, C)``."""
    hh, ww, c = picture.shape
    h, w = hh // side, ww // side
    return picture.reshape(side, h, side, w, c).transpose(0, 2, 1, 3, 4).reshape(side * side, h, w, c)


def groups(n: int, side: int) -> list[np.ndarray]:
    """The pictures of ``n`` items: runs of ``side^2`` consecutive item indices, then the
    remaining items one per picture (``side = 1``: every item alone)."""
    full = (n // (side * side)) * side * side if side > 1 else 0
    out = [np.arange(s, s + side * side) for s in range(0, full, side * side)]
    return out + [np.array([i]) for i in range(full, n)]


def picture_of(images: np.ndarray, idx: np.ndarray, side: int) -> np.ndarray:
    """The picture of the items ``idx`` of ``images`` ``(N, H, W, C)``: one item itself, or the
    ``side x side`` mosaic of ``side^2`` items."""
    return images[idx[0]] if len(idx) == 1 else mosaic(images[idx], side)[0]


def picture_shape(shape: tuple[int, int, int], count: int, side: int) -> tuple[int, int, int]:
    """``(H, W, C)`` of the picture of ``count`` items of ``shape`` (a mosaic when ``count = side^2 > 1``)."""
    h, w, c = shape
    return (side * h, side * w, c) if count > 1 else (h, w, c)


__all__ = ["mosaic", "tiles", "groups", "picture_of", "picture_shape"]

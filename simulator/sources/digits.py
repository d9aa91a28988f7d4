"""The embedded default source: scikit-learn's handwritten digits (1797 items, 8x8 grey)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits as _sk_load_digits

from .base import STRUCTURED, ItemSet


def load_digits() -> ItemSet:
    """All 1797 digits as ``(1797, 8, 8, 1)`` uint8 (0..16 scaled to 0..255), classes '0'..'9'."""
    data = _sk_load_digits()
    images = np.rint(data.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = data.target.astype(np.int64)
    return ItemSet(images, labels, np.full(len(labels), STRUCTURED, dtype=object),
                   [str(i) for i in range(10)], name="digits")

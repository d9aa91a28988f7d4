"""The two-fold split that keeps a fitted model from coding the items it was fitted on.

With ``fit_on = "disjoint"`` a model fitted on the items (a language's post-distribution, a
fine-tuned DeepJSCC network) is fitted twice, once per half of the items drawn at random, and
each item is coded by the model fitted on the other half (2-fold cross-fitting).
"""

from __future__ import annotations

import numpy as np


def two_folds(n: int, disjoint: bool, rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """``(folds, fold)``: 2 folds (``fold``: ``(n,)`` int64, half the items drawn by ``rng`` in
    fold 1) when ``disjoint`` and ``n >= 2``, else 1 fold (every item in fold 0)."""
    fold = np.zeros(n, dtype=np.int64)
    if not (disjoint and n >= 2):
        return 1, fold
    fold[rng.permutation(n)[n // 2:]] = 1
    return 2, fold


__all__ = ["two_folds"]

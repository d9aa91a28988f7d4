"""The dictionary a language forms by itself, without the contrastive pre-processor.

A language's header names a content element and its decoder adds that element's prototype
(:mod:`~simulator.semantic.codec`). The contrastive pipelines take the elements from the
pre-processor's clusters; a language without pre-processing (``vanilla-semantic``,
``vanilla-fallback``) forms them here, from the raw pixels alone: k-means with
``semantic.own_dictionary`` clusters (1: a single prototype, the mean item). It never sees the
pre-processor, its clusters or the ground truth.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from ..cluster_count import auto_clusters
from ..context import RunContext

N_INIT = 4
"""k-means restarts (the lowest inertia is kept)."""


def own_dictionary(images: np.ndarray, size: int | str, ctx: RunContext) -> tuple[np.ndarray, int]:
    """Cluster raw items into at most ``size`` content elements.

    Args:
        images: ``(N, H, W, C)`` uint8 items.
        size: the dictionary size asked for (``semantic.own_dictionary``); ``"auto"``:
            :func:`~simulator.cluster_count.auto_clusters` of the number of items.
        ctx: the seed of the k-means initialisation (stream ``"semantic.dictionary"``).
    Returns:
        ``((N,) int64 element of each item, alphabet size)``; the alphabet is
        ``min(size, N)`` (1 for an empty or one-item source).

    k-means (Lloyd, k-means++ seeding, :data:`N_INIT` restarts) on the pixels scaled to
    ``[0, 1]``; deterministic for the same items, size and seed: the fit runs on one thread,
    since Lloyd's per-thread partial sums would otherwise be added in the threads' order.
    """
    n = len(images)
    k = max(1, min(auto_clusters(n) if size == "auto" else int(size), n))
    if k == 1:
        return np.zeros(n, dtype=np.int64), 1
    x = np.asarray(images, dtype=np.float32).reshape(n, -1) / 255.0
    seed = int(ctx.rng("semantic.dictionary").integers(0, 2**31 - 1))
    with threadpool_limits(limits=1):
        km = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed, algorithm="lloyd").fit(x)
    return km.labels_.astype(np.int64), k


__all__ = ["own_dictionary", "N_INIT"]

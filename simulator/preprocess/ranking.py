"""Confidence ranking of clusters and items, and the split into X_l / X_m.

With the final prototypes mu_l (unit rows) and an item's representation z_i:

* Assignment: ``c_i = argmax_l P_il`` with P from eq. (3); its *assignment confidence* is
  ``max_l P_il``. (We measured that this literal reading ranks memorizable items the wrong way
  round: pure noise or digits among CIFAR form their own cluster that the encoder is
  *most* sure about; see docs/preprocess.md.)
* Shared-structure confidence of a cluster: ``kappa_l = (1 + mean_{l' != l} mu_l . mu_l') / 2``,
  how much the cluster shares with the rest of the source. Memorizable items share no structure
  with the structured content, so their clusters sit apart from all others. Clusters are
  ranked by kappa (rank 0 = least confident).
* Shared-structure confidence of an item: ``beta_i = (1 + mean_{l != c_i} z_i . mu_l) / 2``.
* k-NN density in the representation: ``d_i`` is the mean cosine similarity of z_i to its k
  nearest training items (itself excluded); a cluster's density is the mean ``d_i`` of its
  training items. Memorizable items (noise, pixel-shuffled images, another source's images)
  carry no structure the encoder can generalise from, so their density is *atypical* for the
  source, but the side depends on the source and the encoder: on CIFAR-10 the encoder cannot
  tell them apart and packs them together (the densest clusters); on 8x8 digits the real
  items of a class are near-copies of each other, and noise items are the ones spread out
  (the sparsest clusters).
* Which side (``density_side``, default ``dense``) is a property of the source and encoder
  that no label-free rule measured here decides reliably (docs/preprocess.md, "Which side");
  scenarios on 8x8 digits set ``sparse``.
* Oriented density score (:func:`density_score`), in [0, 1], low = memorizable-like:
  ``(1 - d) / 2`` (distinctiveness) on the dense side, ``(1 + d) / 2`` on the sparse side.
* Routing confidence (``rank_by``), all in [0, 1]:
  ``density`` (default): ``0.99 s(cluster density of c_i) + 0.01 s(d_i)`` with the oriented
  score s (clusters first, items ordered inside a cluster by their own density);
  ``cluster``: ``0.99 kappa_{c_i} + 0.01 beta_i`` (clusters first, items ordered
  inside a cluster by their own score); ``item``: beta_i; ``product``: kappa_{c_i} beta_i;
  ``assignment``: max_l P_il.
* Split: ``confidence = c`` sends items with confidence below c to X_m; ``fraction = f`` turns
  f into a confidence cut once, on the training items (the ``round(f N)`` least confident go
  to X_m), so that items routed one at a time in the discrete-event run meet the same cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Assignment:
    """The pre-processor's verdict on a batch of items.

    Attributes:
        cluster: ``(N,)`` int64 cluster id in ``0..L-1``.
        confidence: ``(N,)`` float64 in [0, 1], the routing confidence (``rank_by``).
        item_confidence: ``(N,)`` float64 in [0, 1], the item's shared-structure score beta_i.
        item_distinctiveness: ``(N,)`` float64 in [0, 1], delta_i = (1 - d_i) / 2 with d_i the k-NN
            density (whatever the side; the routing uses :func:`density_score`).
        assignment_confidence: ``(N,)`` float64 ``max_l P_il`` (eq. (3)).
        probabilities: ``(N, L)`` float64 P of eq. (3).
    """

    cluster: np.ndarray
    confidence: np.ndarray
    item_confidence: np.ndarray
    assignment_confidence: np.ndarray
    probabilities: np.ndarray
    item_distinctiveness: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.cluster)


def cluster_shared_structure(mu: np.ndarray) -> np.ndarray:
    """``(L,)`` kappa_l = (1 + mean over the other clusters of mu_l . mu_l') / 2, in [0, 1]."""
    mu = np.asarray(mu, dtype=np.float64)
    sim = mu @ mu.T
    l = len(mu)
    return np.clip((1.0 + (sim.sum(axis=1) - np.diag(sim)) / (l - 1)) / 2.0, 0.0, 1.0)


def item_shared_structure(z: np.ndarray, mu: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    """``(N,)`` beta_i = (1 + mean over the clusters other than c_i of z_i . mu_l) / 2, in [0, 1]."""
    sim = np.asarray(z, dtype=np.float64) @ np.asarray(mu, dtype=np.float64).T
    own = sim[np.arange(len(sim)), cluster]
    return np.clip((1.0 + (sim.sum(axis=1) - own) / (sim.shape[1] - 1)) / 2.0, 0.0, 1.0)


def knn_density(z: np.ndarray, reference: np.ndarray, k: int, self_excluded: bool = False,
                chunk: int = 1024) -> np.ndarray:
    """``(N,)`` d_i: mean cosine similarity of each unit row of ``z`` to its ``k`` nearest rows of
    ``reference`` (unit rows). ``self_excluded=True`` means ``z`` *is* ``reference`` and row i
    skips itself; otherwise one exact copy of the query (similarity >= 1 - 1e-5), if present,
    is skipped (an item of the training set routed again meets the same neighbours)."""
    z = np.asarray(z, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    k = max(1, min(int(k), len(ref) - 1))
    out = np.empty(len(z))
    for s in range(0, len(z), chunk):
        sim = z[s:s + chunk] @ ref.T
        if self_excluded:
            sim[np.arange(len(sim)), np.arange(s, s + len(sim))] = -np.inf
            top = -np.sort(-sim, axis=1)[:, :k]
        else:
            top = -np.sort(-sim, axis=1)[:, :k + 1]
            top = np.where((top[:, :1] >= 1.0 - 1e-5), top[:, 1:], top[:, :k])
        out[s:s + chunk] = top.mean(axis=1)
    return np.clip(out, -1.0, 1.0)


def cluster_density(density: np.ndarray, cluster: np.ndarray, clusters: int) -> np.ndarray:
    """``(L,)`` mean k-NN density of each cluster's items, in [-1, 1]; a cluster without items
    gets the mean over all items."""
    density = np.asarray(density, dtype=np.float64)
    cluster = np.asarray(cluster, dtype=np.int64)
    counts = np.bincount(cluster, minlength=clusters)
    sums = np.bincount(cluster, weights=density, minlength=clusters)
    fallback = float(density.mean()) if len(density) else 0.0
    return np.clip(np.where(counts > 0, sums / np.maximum(counts, 1), fallback), -1.0, 1.0)


def cluster_distinctiveness(density: np.ndarray, cluster: np.ndarray, clusters: int) -> np.ndarray:
    """``(L,)`` delta_l = (1 - mean density of the cluster's items) / 2, in [0, 1]."""
    return density_score(cluster_density(density, cluster, clusters), "dense")


def density_score(density: np.ndarray, side: str) -> np.ndarray:
    """Oriented density score in [0, 1], low = memorizable-like: ``(1 - d) / 2`` when memorizable
    items sit on the ``dense`` side, ``(1 + d) / 2`` on the ``sparse`` side. ``density``: any
    shape, cosine similarities in [-1, 1]."""
    d = np.asarray(density, dtype=np.float64)
    if side == "dense":
        return np.clip((1.0 - d) / 2.0, 0.0, 1.0)
    if side == "sparse":
        return np.clip((1.0 + d) / 2.0, 0.0, 1.0)
    raise ValueError(f"unknown density side {side!r}")


def routing_confidence(rank_by: str, cluster: np.ndarray, kappa: np.ndarray, beta: np.ndarray,
                       assignment: np.ndarray, cluster_score: np.ndarray | None = None,
                       item_score: np.ndarray | None = None) -> np.ndarray:
    """The confidence the split uses, per item (see the module docstring). For ``rank_by =
    "density"``: ``cluster_score`` ``(L,)`` and ``item_score`` ``(N,)`` are the oriented density
    scores (:func:`density_score`) of the clusters and of the items."""
    if rank_by == "density":
        if cluster_score is None or item_score is None:
            raise ValueError("rank_by 'density' needs cluster_score and item_score")
        return 0.99 * np.asarray(cluster_score)[cluster] + 0.01 * np.asarray(item_score)
    if rank_by == "cluster":
        return 0.99 * kappa[cluster] + 0.01 * beta
    if rank_by == "item":
        return beta
    if rank_by == "product":
        return kappa[cluster] * beta
    if rank_by == "assignment":
        return assignment
    raise ValueError(f"unknown rank_by {rank_by!r}")


def confidence_cut(train_confidence: np.ndarray, fraction: float | None, confidence: float | None) -> float:
    """The confidence below which an item is memorizable.

    With ``fraction`` f: the ``round(f N)``-th smallest training confidence (so that exactly
    that many training items fall strictly below it, barring ties); 0 for f = 0 and just above
    the largest confidence for f = 1.
    """
    if confidence is not None:
        return float(confidence)
    conf = np.sort(np.asarray(train_confidence, dtype=np.float64))
    k = int(round(float(fraction) * len(conf)))
    if k <= 0:
        return 0.0
    if k >= len(conf):
        return float(np.nextafter(conf[-1], np.inf))
    return float(conf[k])

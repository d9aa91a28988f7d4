"""Confidence ranking of clusters and items, and the cut into X_l / X_m.

The contrastive clustering forms the clusters; what ranks them is how *atypical* their cost
profile is for the source, in either direction, so that no setting says on which side the
memorizable items lie. An item's cost profile (:mod:`~simulator.preprocess.score`) is
``x_i = (log2(1 + J_i), log2(1 + Jref_i))``: its cost ``J = R + lambda D`` (bits) under the
scoring language trained on the source (a cluster's mean J is its share of eq. (1)) and under
a fixed, untrained transform coder at the same lambda (the complexity reference).

* Cluster atypicality: ``A_l = || m_l - centre ||_2`` with ``m_l`` the mean profile of the
  cluster's training items and ``centre`` the median of the training items' profiles (per
  feature): how many doublings of cost the cluster sits from the typical item, in either
  direction (both features in the same unit, log2 bits). The median of the items, not of the
  clusters' means, is the robust centre: with 40 % memorizable items some clusters mix
  memorizable and learnable items, and a median over clusters can land on such a mixed cluster,
  when every learnable cluster then sits far from it; the median over items stays inside the
  learnable majority. Memorizable items share no structure with the rest and form clusters
  whose cost sits far from the typical item's: far above it (noise, pixel-shuffled images: the language
  cannot express them), or off in the language/reference balance (another source's images:
  8x8 CIFAR-10 among digits cost the digit language as much as digits but the reference far
  less; digits among CIFAR-10 cost the CIFAR-10 language far less than its own items).
  Clusters are ranked by A: rank 0 is the most atypical (least confident) cluster; a cluster
  without training items ranks last (most confident).
* Item atypicality ``a_i = || x_i - centre ||_2`` and its position inside its cluster
  ``w_i = 1/2 - arctan((a_i - abar_l) / scale) / pi`` in (0, 1), ``abar_l`` the mean a of the
  cluster's training items, ``scale`` the MAD of a over all training items (1 if 0): more
  atypical items sit lower in their cluster.
* Confidence (lexicographic, clusters first): ``confidence_i = (rank_{c_i} + w_i) / L`` in
  [0, 1). Every item of a less confident cluster ranks below every item of a more confident
  one, whatever its own profile; the item term only orders items inside a cluster.
* Cut (``memorizable_threshold``): ``"auto"`` takes X_m as the ``k`` clusters whose
  atypicality exceeds the tolerable deviation, :data:`TOLERABLE_DOUBLINGS` = 0.9 doublings of
  cost (a cluster whose mean costs about 1.9 times, or about half, what the typical item costs,
  on either feature or both), the k least confident (k = 0, no X_m, when no cluster does). Then
  items: inside the k-th cluster, the boundary, which may mix memorizable and learnable items,
  the items whose own atypicality exceeds :data:`ITEM_FACTOR` = 1.5 times the typical learnable
  item's come first; the cut is the confidence of the first item left in X_l (``k / L`` when the
  whole cluster goes). ``{fraction = f}`` takes the ``round(f N)`` least confident training
  items; ``{confidence = c}`` is the cut value itself.
  The cut is fixed once, on the training items, so that items routed one at a time in the
  discrete-event run meet the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Assignment:
    """The pre-processor's verdict on a batch of N items.

    Attributes:
        cluster: ``(N,)`` int64 cluster id in ``0..L-1`` (the contrastive clustering).
        confidence: ``(N,)`` float64 in [0, 1), the lexicographic routing confidence.
        cost: ``(N,)`` float64 the item's cost ``J_i = R_i + lambda D_i`` (bits) under the
            scoring language.
        reference_cost: ``(N,)`` float64 its cost under the reference transform coder (bits).
        assignment_confidence: ``(N,)`` float64 ``max_l P_il`` (eq. (3); reported, not routed on).
        probabilities: ``(N, L)`` float64 P of eq. (3).
    """

    cluster: np.ndarray
    confidence: np.ndarray
    cost: np.ndarray
    reference_cost: np.ndarray
    assignment_confidence: np.ndarray
    probabilities: np.ndarray

    def __len__(self) -> int:
        return len(self.cluster)


def log_cost(cost: np.ndarray) -> np.ndarray:
    """``log2(1 + J)`` of costs in bits (any shape, >= 0)."""
    return np.log2(1.0 + np.maximum(np.asarray(cost, dtype=np.float64), 0.0))


@dataclass(frozen=True)
class ClusterRanking:
    """What the confidence of a new item needs, fitted on the training items' cost profiles.

    Attributes:
        score: ``(L,)`` float64 atypicality A_l of each cluster (``-inf``: no training item).
        rank: ``(L,)`` int64, 0 = least confident (most atypical) cluster.
        centre: ``(F,)`` the median of the training items' profiles, per feature (log2 bits).
        a_centre: ``(L,)`` mean item atypicality of each cluster's training items (0 if empty).
        a_scale: MAD of the training items' atypicality (> 0).
        a_typical: median of the training items' atypicality (doublings).
    """

    score: np.ndarray
    rank: np.ndarray
    centre: np.ndarray
    a_centre: np.ndarray
    a_scale: float
    a_typical: float

    @property
    def num_clusters(self) -> int:
        return len(self.rank)

    def item_atypicality(self, profile: np.ndarray) -> np.ndarray:
        """``(N,)`` a_i = ``|| profile_i - centre ||_2`` (log2 bits: doublings of cost)."""
        d = np.asarray(profile, dtype=np.float64) - self.centre
        return np.sqrt((d ** 2).sum(axis=1))


def fit_ranking(profile: np.ndarray, cluster: np.ndarray, num_clusters: int) -> ClusterRanking:
    """The cluster ranking of training items with cost profiles ``profile`` ``(N, F)`` (log2
    bits, :func:`~simulator.preprocess.score.cost_profile`) and clusters ``cluster`` ``(N,)`` in
    ``0..num_clusters-1`` (module docstring)."""
    x = np.asarray(profile, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    cluster = np.asarray(cluster, dtype=np.int64)
    counts = np.bincount(cluster, minlength=num_clusters)
    present = counts > 0
    means = np.stack([np.bincount(cluster, weights=x[:, f], minlength=num_clusters) for f in range(x.shape[1])], 1)
    means /= np.maximum(counts, 1)[:, None]
    centre = np.median(x, axis=0)
    atyp = np.sqrt(((means - centre) ** 2).sum(axis=1))
    score = np.where(present, atyp, -np.inf)
    a = np.sqrt(((x - centre) ** 2).sum(axis=1))
    a_centre = np.bincount(cluster, weights=a, minlength=num_clusters) / np.maximum(counts, 1)
    a_mad = float(np.median(np.abs(a - np.median(a)))) if len(a) else 0.0
    # rank 0 = the highest score; ties broken by cluster id (stable)
    order = np.lexsort((np.arange(num_clusters), -score))
    rank = np.empty(num_clusters, dtype=np.int64)
    rank[order] = np.arange(num_clusters)
    return ClusterRanking(score, rank, centre, a_centre, a_mad if a_mad > 0 else 1.0,
                          float(np.median(a)) if len(a) else 0.0)


def lexicographic_confidence(ranking: ClusterRanking, cluster: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """``(N,)`` confidence in [0, 1) of items with clusters ``cluster`` ``(N,)`` and cost profiles
    ``profile`` ``(N, F)``: ``(rank + w) / L`` (module docstring)."""
    cluster = np.asarray(cluster, dtype=np.int64)
    x = np.asarray(profile, dtype=np.float64)
    a = ranking.item_atypicality(x[:, None] if x.ndim == 1 else x)
    w = 0.5 - np.arctan((a - ranking.a_centre[cluster]) / ranking.a_scale) / np.pi
    w = np.clip(w, 0.0, np.nextafter(1.0, 0.0))
    return (ranking.rank[cluster] + w) / ranking.num_clusters


#: The tolerable deviation of the auto cut: a cluster whose mean cost profile sits more than this
#: many doublings (log2 bits) from the typical item's is memorizable. Chosen, with
#: :data:`ITEM_FACTOR`, by ``benchmarks/tune_cut.py`` on development sources that no benchmark
#: evaluates (the synthetic glyphs; the first half of each CIFAR-10 test class), with the
#: label-free number of clusters: no candidate met every bound there, and this is the one that
#: violates them least (docs/preprocess.md).
TOLERABLE_DOUBLINGS = 0.9
#: Inside the boundary cluster, an item goes to X_m when it sits more than this many times the
#: typical learnable item's atypicality (the median a_i over the clusters that stay in X_l) from
#: the typical item.
ITEM_FACTOR = 1.5


#: The auto cut's default ``(tolerance, item_factor)`` per ``preprocess.scoring``, each pair
#: chosen by ``benchmarks/tune_cut.py`` (``--scoring``) on development sources: in-sample on the
#: glyphs and 4000 ``cifar-dev`` images; held-out on 900 and 1800 glyphs and 600 and 4000
#: ``cifar-dev`` images. docs/preprocess.md.
CUT_CONSTANTS = {"in-sample": (TOLERABLE_DOUBLINGS, ITEM_FACTOR), "held-out": (1.2, 3.0)}


def auto_cut(ranking: ClusterRanking, cluster: np.ndarray, profile: np.ndarray, confidence: np.ndarray,
             tolerance: float = TOLERABLE_DOUBLINGS, item_factor: float = ITEM_FACTOR) -> tuple[float, int]:
    """The ``"auto"`` cut, clusters first and then items: ``(cut, k)``.

    Clusters: the k clusters whose atypicality A_l exceeds ``tolerance`` (doublings), the k least
    confident (k = 0, cut 0, when no cluster does). Items: :func:`boundary_cut` inside the k-th.
    ``profile`` ``(N, F)``, ``confidence`` ``(N,)``: of the training items.
    """
    k = int((ranking.score > tolerance).sum())
    return boundary_cut(ranking, cluster, profile, confidence, k, item_factor), k


def boundary_cut(ranking: ClusterRanking, cluster: np.ndarray, profile: np.ndarray, confidence: np.ndarray,
                 k: int, item_factor: float = ITEM_FACTOR) -> float:
    """The cut that sends the ``k`` least confident clusters to X_m, the k-th (the boundary, which
    may hold learnable items too) only in part: its items whose own atypicality a_i exceeds
    ``item_factor`` times the typical learnable item's (the median a_i of the training items of
    the clusters that stay in X_l, rank >= k) come first in confidence order; the cut is the
    confidence of the first one left in X_l (``k / L`` when all go; 0 when ``k = 0``).
    ``cluster``, ``confidence`` ``(N,)`` and ``profile`` ``(N, F)``: of the training items.

    The typical item is taken from the clusters that stay, not from all items: with a large
    memorizable share the median over all items moves toward the memorizable ones, and a pure
    memorizable boundary cluster was then only half sent.
    """
    if k <= 0:
        return 0.0
    cluster = np.asarray(cluster, dtype=np.int64)
    confidence = np.asarray(confidence, dtype=np.float64)
    boundary = int(np.flatnonzero(ranking.rank == k - 1)[0])
    members = np.flatnonzero(cluster == boundary)
    members = members[np.argsort(confidence[members], kind="stable")]
    x = np.asarray(profile, dtype=np.float64)
    a_all = ranking.item_atypicality(x if x.ndim == 2 else x[:, None])
    kept = ranking.rank[cluster] >= k
    typical = float(np.median(a_all[kept])) if kept.any() else ranking.a_typical
    j = int((a_all[members] > item_factor * typical).sum())
    return k / ranking.num_clusters if j == len(members) else float(confidence[members[j]])


def fraction_cut(train_confidence: np.ndarray, fraction: float) -> float:
    """The cut that puts the ``round(f N)`` least confident training items in X_m: the
    ``round(f N)``-th smallest training confidence (strictly below it: that many items, barring
    ties); 0 for f = 0, just above the largest confidence for f = 1."""
    conf = np.sort(np.asarray(train_confidence, dtype=np.float64))
    k = int(round(float(fraction) * len(conf)))
    if k <= 0:
        return 0.0
    if k >= len(conf):
        return float(np.nextafter(conf[-1], np.inf))
    return float(conf[k])

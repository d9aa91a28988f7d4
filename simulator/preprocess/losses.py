"""The losses of section III (eqs. (2)-(4)) and our anti-collapse term.

Notation: z_i is the unit representation of the query view of item i (encoder psi_kappa),
k_i^+ the key of its other view (momentum encoder), k_1..k_K the stale keys of the bank, each
tagged with a cluster C_l, l = 1..L.

* eq. (2), instance discrimination (InfoNCE over cosine similarity / tau)::

      L_I = -1/B sum_i log( exp(z_i.k_i^+ / tau) / (exp(z_i.k_i^+ / tau) + sum_j exp(z_i.k_j / tau)) )

* eq. (3), cluster probabilities from the bank entries of each cluster: the prototype of C_l
  is the normalised mean of the bank keys tagged l, ``mu_l = normalize(sum_{j in C_l} k_j)``,
  and ``P_il = exp(z_i.mu_l / tau_c) / sum_l' exp(z_i.mu_l' / tau_c)``.
* eq. (4), cluster discrimination: ``L_D = 1/B sum_i H(P_i) = -1/B sum_i sum_l P_il ln P_il``.
* anti-collapse (our deviation, as in Contrastive Clustering and SCAN): with the batch
  marginal ``pbar_l = 1/B sum_i P_il``, ``L_M = ln L - H(pbar) >= 0`` (zero when the batch
  spreads evenly over the clusters). Eq. (4) alone is minimised by one cluster taking all.

* eq. (2) with in-batch keys (``instance_keys = "batch"``, our option for short CPU budgets, as
  in SimCLR's NT-Xent): both views z^1, z^2 of the B items come from the encoder itself (with
  gradient), the positive of z^a_i is z^b_i of the other view, and the negatives are the other
  2B - 2 representations of the batch instead of the bank::

      L_I = -1/(2B) sum_{a, i} log( exp(z^a_i.z^b_i / tau) / sum_{(c, j) != (a, i)} exp(z^a_i.z^c_j / tau) )

Total: ``eta L_I + epsilon L_D + marginal_weight L_M``.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def instance_loss(z: torch.Tensor, k_pos: torch.Tensor, bank: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. (2). ``z, k_pos``: ``(B, D)`` unit rows; ``bank``: ``(K, D)`` unit rows. Scalar."""
    pos = (z * k_pos).sum(dim=1, keepdim=True)
    neg = z @ bank.t()
    logits = torch.cat([pos, neg], dim=1) / tau
    return F.cross_entropy(logits, torch.zeros(len(z), dtype=torch.long, device=z.device))


def batch_instance_loss(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. (2) with in-batch keys (module docstring). ``z1, z2``: ``(B, D)`` unit rows, row i of
    both the two views of item i. Scalar."""
    b = len(z1)
    z = torch.cat([z1, z2])
    logits = (z @ z.t() / tau).fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(logits, target)


def prototypes(keys: torch.Tensor, tags: torch.Tensor, clusters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster prototypes from tagged bank keys.

    Returns ``(mu (L, D) unit rows, present (L,) bool)``; a cluster without keys has a zero
    prototype and ``present = False``. Rows tagged ``-1`` are ignored.
    """
    d = keys.shape[1]
    sums = torch.zeros(clusters, d, dtype=keys.dtype, device=keys.device)
    ok = tags >= 0
    sums.index_add_(0, tags[ok], keys[ok])
    counts = torch.bincount(tags[ok], minlength=clusters)
    return F.normalize(sums, dim=1), counts > 0


def cluster_probabilities(z: torch.Tensor, mu: torch.Tensor, cluster_tau: float,
                          present: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. (3): ``(B, L)`` softmax over clusters of ``z_i.mu_l / tau_c`` (absent clusters get 0)."""
    logits = z @ mu.t() / cluster_tau
    if present is not None:
        logits = logits.masked_fill(~present, float("-inf"))
    return torch.softmax(logits, dim=1)


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * torch.log(p.clamp_min(1e-12))).sum(dim=-1)


def cluster_loss(p: torch.Tensor) -> torch.Tensor:
    """Eq. (4): the mean entropy of the rows of ``p`` (``(B, L)``). Scalar in [0, ln L]."""
    return _entropy(p).mean()


def marginal_loss(p: torch.Tensor) -> torch.Tensor:
    """Anti-collapse term ``ln L - H(mean_i P_i)``. Scalar in [0, ln L]."""
    return math.log(p.shape[1]) - _entropy(p.mean(dim=0))


@torch.no_grad()
def fill_empty_clusters(sim: torch.Tensor, labels: torch.Tensor, clusters: int) -> None:
    """Give every empty cluster one item, in place: the item least similar to its own cluster.

    Args:
        sim: ``(N, L)`` cosine similarities of items to prototypes (modified: a moved item's
            row is pinned to its new cluster so it is not moved twice).
        labels: ``(N,)`` int64 assignments (modified).
        clusters: L.
    """
    counts = torch.bincount(labels, minlength=clusters)
    for l in torch.nonzero(counts == 0).flatten().tolist():
        far = int(sim.max(dim=1).values.argmin())
        labels[far] = l
        sim[far] = -2.0
        sim[far, l] = 2.0


def spherical_kmeans(x: torch.Tensor, clusters: int, gen: torch.Generator, iters: int = 30,
                     init: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Spherical k-means on unit rows ``x`` (``(N, D)``), k-means++ seeding from ``gen``.

    Returns ``(centres (L, D) unit rows, labels (N,) int64)``. An emptied cluster is re-seeded
    with the point farthest from its centre, so every cluster keeps at least one point
    (requires ``N >= L``).
    """
    n = x.shape[0]
    if init is None:
        first = int(torch.randint(n, (1,), generator=gen))
        centres = [x[first]]
        best = 1 - x @ x[first]
        for _ in range(1, clusters):
            w = best.clamp_min(0).cpu().double()
            idx = int(torch.multinomial(w / w.sum(), 1, generator=gen)) if w.sum() > 0 else int(torch.randint(n, (1,), generator=gen))
            centres.append(x[idx])
            best = torch.minimum(best, 1 - x @ x[idx])
        mu = torch.stack(centres)
    else:
        mu = init.clone()
    labels = torch.zeros(n, dtype=torch.long, device=x.device)
    for _ in range(iters):
        sim = x @ mu.t()
        labels = sim.argmax(dim=1)
        fill_empty_clusters(sim, labels, clusters)
        new, _ = prototypes(x, labels, clusters)
        if torch.allclose(new, mu):
            break
        mu = new
    return mu, labels

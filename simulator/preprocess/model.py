"""The trained pre-processor and ``fit_preprocessor`` (train or load from the cache)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from ..context import RunContext
from ..errors import InputError
from ..sources.base import ItemSet
from .. import model_cache
from .config import PreprocessConfig, ResolvedPreprocess
from .losses import cluster_probabilities
from .nets import Encoder, count_flops
from .ranking import (Assignment, cluster_density, cluster_shared_structure, confidence_cut,
                      density_score, item_shared_structure, knn_density, routing_confidence)
from .trainer import TrainResult, embed, train

FORMAT = "semsim-preprocess-v3"
"""Part of the cache key and stored in the file: bump when training or the model changes."""

log = logging.getLogger("semsim.preprocess")


class Preprocessor:
    """A trained contrastive pre-processor: clusters items, ranks them by confidence and splits
    them into X_l (learnable) and X_m (memorizable).

    Build it with :func:`fit_preprocessor`. Attributes:
        num_clusters: L.
        from_cache: True when the model was loaded from the cache instead of trained.
        flops_per_item: forward FLOPs of the encoder (plus eq. (3)) for one item.
        cluster_confidence: ``(L,)`` confidence of each cluster: its oriented density score for
            ``rank_by = "density"`` (delta_l on the dense side), else its shared-structure
            confidence kappa_l.
        cluster_shared_structure: ``(L,)`` kappa_l; cluster_distinctiveness: ``(L,)`` delta_l.
        density_side: ``"dense"`` or ``"sparse"``: the side of the k-NN density where memorizable
            items are expected (the ``density_side`` key, see ranking.py).
        cluster_score: ``(L,)`` the oriented density score of each cluster (ranking.density_score).
        cluster_rank: ``(L,)`` rank of each cluster by confidence (0 = least confident).
        train_embeddings: ``(N, D)`` representations of the training items (the k-NN reference).
        cut: the confidence below which an item goes to X_m.
        history: per-epoch training losses (empty when loaded without history).
        images_per_s, train_seconds: training throughput and time (as measured when trained).
        cache_file: where the model is stored.
    """

    def __init__(self, result: TrainResult, resolved: ResolvedPreprocess, cfg: PreprocessConfig,
                 shape: tuple[int, int, int], device: str, from_cache: bool, cache_file: Path | None,
                 train_images: np.ndarray | None = None, train_cluster: np.ndarray | None = None,
                 train_beta: np.ndarray | None = None, train_assign: np.ndarray | None = None,
                 train_z: np.ndarray | None = None, train_density: np.ndarray | None = None):
        self.resolved = resolved
        self.cfg = cfg
        self.shape = tuple(int(s) for s in shape)
        self.device = device
        self.encoder = result.encoder.to(device).eval()
        self.prototypes = result.prototypes.float()
        self.mean, self.std = result.mean, result.std
        self.history = list(result.history)
        self.images_per_s = float(result.images_per_s)
        self.train_seconds = float(result.train_seconds)
        self.from_cache = bool(from_cache)
        self.cache_file = cache_file
        self.num_clusters = int(self.prototypes.shape[0])
        self.flops_per_item = count_flops(self.encoder, self.shape) + 2 * self.num_clusters * self.prototypes.shape[1]
        self.cluster_shared_structure = cluster_shared_structure(self.prototypes.double().numpy())
        self.density_side = resolved.density_side
        if train_cluster is None:
            train_z = embed(self.encoder, train_images, self.mean, self.std, self.device).numpy()
            train_density = knn_density(train_z, train_z, resolved.density_k, self_excluded=True)
            self.train_embeddings = np.asarray(train_z, dtype=np.float32)
            self.cluster_score = np.zeros(self.num_clusters)  # only the clusters are used from this pass
            train = self._assign_z(train_z, density=train_density)
            train_cluster, train_beta, train_assign = train.cluster, train.item_confidence, train.assignment_confidence
        self.train_embeddings = np.asarray(train_z, dtype=np.float32)
        self.train_cluster = np.asarray(train_cluster, dtype=np.int64)
        self.train_beta = np.asarray(train_beta, dtype=np.float64)
        self.train_assignment_confidence = np.asarray(train_assign, dtype=np.float64)
        self.train_density = np.asarray(train_density, dtype=np.float64)
        mean_density = cluster_density(self.train_density, self.train_cluster, self.num_clusters)
        self.cluster_distinctiveness = density_score(mean_density, "dense")
        self.cluster_score = density_score(mean_density, self.density_side)
        self.cluster_confidence = (self.cluster_score if resolved.rank_by == "density"
                                   else self.cluster_shared_structure)
        self.cluster_rank = np.argsort(np.argsort(self.cluster_confidence, kind="stable"), kind="stable")
        train_conf = routing_confidence(resolved.rank_by, self.train_cluster, self.cluster_shared_structure,
                                        self.train_beta, self.train_assignment_confidence,
                                        self.cluster_score, density_score(self.train_density, self.density_side))
        t = cfg.memorizable_threshold
        self.cut = confidence_cut(train_conf, t.fraction, t.confidence)

    def _assign(self, images: np.ndarray) -> Assignment:
        return self._assign_z(embed(self.encoder, images, self.mean, self.std, self.device).numpy())

    def _assign_z(self, z: np.ndarray, density: np.ndarray | None = None) -> Assignment:
        p = cluster_probabilities(torch.as_tensor(z), self.prototypes, self.resolved.cluster_tau).double().numpy()
        cluster = p.argmax(axis=1).astype(np.int64)
        assign_conf = p.max(axis=1).astype(np.float64)
        beta = item_shared_structure(z, self.prototypes.double().numpy(), cluster)
        if density is None:
            density = knn_density(z, self.train_embeddings, self.resolved.density_k)
        conf = routing_confidence(self.resolved.rank_by, cluster, self.cluster_shared_structure, beta, assign_conf,
                                  self.cluster_score, density_score(density, self.density_side))
        return Assignment(cluster, np.clip(conf, 0.0, 1.0), beta, assign_conf, p, density_score(density, "dense"))

    def embed(self, images: np.ndarray) -> np.ndarray:
        """``(N, D)`` float32 unit representations z of uint8 ``(N, H, W, C)`` items."""
        self._check(images)
        return embed(self.encoder, images, self.mean, self.std, self.device).numpy()

    def _check(self, images: np.ndarray) -> None:
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
            raise InputError("items must be uint8 arrays of shape (N, H, W, C)", where="preprocess.assign")
        if tuple(images.shape[1:]) != self.shape:
            raise InputError(f"items of shape {tuple(images.shape[1:])} do not match the pre-processor's "
                             f"training items {self.shape}", where="preprocess.assign")

    def assign(self, images: np.ndarray) -> Assignment:
        """Cluster and confidence of each item (``(N, H, W, C)`` uint8); see :class:`Assignment`."""
        self._check(images)
        return self._assign(images)

    def split(self, a: Assignment) -> np.ndarray:
        """``(N,)`` bool, True = memorizable (X_m): confidence strictly below :attr:`cut`."""
        return np.asarray(a.confidence) < self.cut


def _validate(images: np.ndarray, cfg: PreprocessConfig, r: ResolvedPreprocess) -> None:
    n = len(images)
    if images.dtype != np.uint8 or images.ndim != 4 or n == 0:
        raise InputError(f"items must be a non-empty uint8 array (N, H, W, C) (got {images.dtype} {images.shape})",
                         where="source")
    if not 2 <= cfg.clusters <= n:
        raise InputError(f"must be between 2 and the number of items ({n}) (got {cfg.clusters})",
                         where="preprocess.clusters")
    if r.batch_size > n:
        raise InputError(f"batch of {r.batch_size} is larger than the {n} items; lower preprocess.batch_size",
                         where="preprocess.batch_size")
    if min(r.queue_size, n - r.batch_size) < cfg.clusters:
        raise InputError(f"the memory bank would hold {min(r.queue_size, n - r.batch_size)} keys (min of queue_size "
                         f"and items - batch_size), fewer than the {cfg.clusters} clusters; lower batch_size or "
                         "raise queue_size", where="preprocess.batch_size")
    if min(images.shape[1:3]) < 4:
        raise InputError(f"items must be at least 4x4 pixels (got {images.shape[1]}x{images.shape[2]})",
                         where="source")


def fit_preprocessor(items: ItemSet, cfg: PreprocessConfig, ctx: RunContext) -> Preprocessor:
    """Train the pre-processor on ``items.images`` (labels and kinds are never read), or load it
    from the cache when a model with the same data, hyper-parameters and seed exists.

    Raises :class:`InputError` for impossible settings (clusters < 2 or > N, a batch larger
    than the data) and for a corrupt or foreign cache file.
    """
    images = items.images
    r = cfg.resolved()
    _validate(images, cfg, r)
    key = model_cache.digest(FORMAT, images, r.to_json(), int(ctx.seed), f"threads={ctx.training_threads()}")
    path = ctx.cache_path("preprocess", f"{key[:32]}.pt")
    shape = tuple(images.shape[1:])

    def rebuild(payload: dict) -> Preprocessor:
        encoder = Encoder(shape, r.backbone, r.width, r.feature_dim)
        encoder.load_state_dict(payload["state"])
        result = TrainResult(encoder, payload["prototypes"], payload["mean"], payload["std"],
                             json.loads(payload["history"]), payload["images_per_s"], payload["train_seconds"])
        log.info("loaded cached model %s", path)
        return Preprocessor(result, r, cfg, shape, ctx.device, True, path,
                            train_cluster=payload["train_cluster"].numpy(), train_beta=payload["train_beta"].numpy(),
                            train_assign=payload["train_assign"].numpy(), train_z=payload["train_z"].numpy(),
                            train_density=payload["train_density"].numpy())

    def fit() -> tuple[Preprocessor, dict]:
        result = train(images, r, ctx)
        pre = Preprocessor(result, r, cfg, shape, ctx.device, False, path, train_images=images)
        return pre, {
            "config": r.to_json(), "seed": int(ctx.seed),
            "state": {k: v.detach().cpu() for k, v in result.encoder.state_dict().items()},
            "prototypes": result.prototypes.cpu(), "mean": result.mean.cpu(), "std": result.std.cpu(),
            "train_cluster": torch.as_tensor(pre.train_cluster), "train_beta": torch.as_tensor(pre.train_beta),
            "train_assign": torch.as_tensor(pre.train_assignment_confidence),
            "train_z": torch.as_tensor(pre.train_embeddings), "train_density": torch.as_tensor(pre.train_density),
            "history": json.dumps(result.history), "images_per_s": float(result.images_per_s),
            "train_seconds": float(result.train_seconds),
        }

    return model_cache.load_or_train(path, key, FORMAT, "pre-processor model", rebuild, fit)[0]

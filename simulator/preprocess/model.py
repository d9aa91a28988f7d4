"""The trained pre-processor and ``fit_preprocessor`` (train or load from the cache)."""

from __future__ import annotations

import json
import logging
import time
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
from .ranking import CUT_CONSTANTS, Assignment, auto_cut, fit_ranking, fraction_cut, lexicographic_confidence
from .score import (SCORE_NAME, SCORING_HALVES, CostModel, cost_profile, fit_scoring_language, held_out_halves,
                    item_digest, reference_cost, semantic_cost)
from .trainer import TrainResult, embed, train

FORMAT = "semsim-preprocess-v4"
"""Part of the cache key and stored in the file: bump when training or the model changes."""

log = logging.getLogger("semsim.preprocess")


class Preprocessor:
    """A trained contrastive pre-processor: clusters items (the contrastive encoder), ranks
    clusters and items by how atypical their cost profile is (ranking.py) and splits them into
    X_l (learnable) and X_m (memorizable).

    Build it with :func:`fit_preprocessor`. Attributes:
        num_clusters: L.
        from_cache: True when the encoder was loaded from the cache instead of trained.
        flops_per_item: forward FLOPs per routed item: the encoder, eq. (3) and the scoring
            language's encoder and decoder.
        language: the scoring language (:mod:`~simulator.preprocess.score`); with
            ``scoring = "held-out"`` the first of :attr:`languages`, which scores new items.
        languages: the scoring languages: one (``"in-sample"``) or one per half
            (``"held-out"``: ``languages[f]`` trained on the items outside half f, scoring half f).
        train_half: ``(N,)`` int64 half of each training item (``"held-out"``; zeros otherwise).
        score_name: the score's name (``"cost-atypicality"``).
        train_cluster, train_cost, train_reference_cost, train_confidence: ``(N,)`` of the
            training items: cluster, J and Jref (bits), lexicographic confidence.
        ranking: the :class:`~simulator.preprocess.ranking.ClusterRanking`; ``cluster_rank``
            ``(L,)`` (0 = least confident) and ``cluster_score`` ``(L,)`` (atypicality A_l).
        cut: the confidence below which an item goes to X_m; ``cut_rule``: ``"auto"``,
            ``"fraction"`` or ``"confidence"``; ``x_m_clusters``: the clusters the auto cut sends
            to X_m (None for the explicit cuts).
        history: per-epoch training losses (empty when loaded without history).
        images_per_s, train_seconds: training throughput and time (as measured when trained).
        score_seconds: time to fit the scoring language (or load it) and cost the training items.
        cache_file: where the encoder is stored.
    """

    def __init__(self, result: TrainResult, resolved: ResolvedPreprocess, cfg: PreprocessConfig,
                 shape: tuple[int, int, int], device: str, *, from_cache: bool, cache_file: Path | None,
                 train_cluster: np.ndarray, train_assign: np.ndarray):
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
        self.encoder_flops = count_flops(self.encoder, self.shape) + 2 * self.num_clusters * self.prototypes.shape[1]
        self.flops_per_item = self.encoder_flops
        self.train_cluster = np.asarray(train_cluster, dtype=np.int64)
        self.train_assignment_confidence = np.asarray(train_assign, dtype=np.float64)
        self.score_name = SCORE_NAME
        self.language = None
        self.languages: tuple = ()
        self._half_of: dict[bytes, int] = {}
        self.costs: CostModel | None = None
        self.score_seconds = 0.0

    def _fit_split(self, images: np.ndarray, costs: CostModel, ctx: RunContext) -> None:
        t0 = time.perf_counter()
        self.costs = costs
        if self.cfg.scoring == "held-out":
            self.train_half, self._half_of = held_out_halves(images, self.train_cluster, ctx)
            other = [self.train_half != h for h in range(SCORING_HALVES)]  # each language's training items
            self.languages = tuple(fit_scoring_language(images[o], self.train_cluster[o], self.num_clusters, costs, ctx)
                                   for o in other)
        else:
            self.train_half = np.zeros(len(images), dtype=np.int64)
            self.languages = (fit_scoring_language(images, self.train_cluster, self.num_clusters, costs, ctx),)
        self.language = self.languages[0]
        # one scoring language codes each item, whichever half it is in
        self.flops_per_item = self.encoder_flops + self.language.flops_encode + self.language.flops_decode
        self.train_cost = self._cost(images, self.train_cluster, self.train_half)
        self.train_reference_cost = reference_cost(images, costs.lam)
        profile = cost_profile(self.train_cost, self.train_reference_cost)
        self.ranking = fit_ranking(profile, self.train_cluster, self.num_clusters)
        self.cluster_rank, self.cluster_score = self.ranking.rank, self.ranking.score
        self.train_confidence = lexicographic_confidence(self.ranking, self.train_cluster, profile)
        t = self.cfg.memorizable_threshold
        self.x_m_clusters = None
        if t.auto:
            self.cut_rule = "auto"
            tolerance, item_factor = CUT_CONSTANTS[self.cfg.scoring]
            self.cut, k = auto_cut(self.ranking, self.train_cluster, profile, self.train_confidence,
                                   tolerance if t.tolerance is None else t.tolerance,
                                   item_factor if t.item_factor is None else t.item_factor)
            self.x_m_clusters = np.sort(np.flatnonzero(self.ranking.rank < k))
        elif t.fraction is not None:
            self.cut_rule = "fraction"
            self.cut = fraction_cut(self.train_confidence, t.fraction)
        else:
            self.cut_rule = "confidence"
            self.cut = float(t.confidence)
        self.score_seconds = time.perf_counter() - t0

    def _cost(self, images: np.ndarray, cluster: np.ndarray, half: np.ndarray) -> np.ndarray:
        """``(N,)`` J of ``(N, H, W, C)`` uint8 items under the language of each one's ``(N,)`` half."""
        cost = np.empty(len(images))
        for h, language in enumerate(self.languages):
            at = np.flatnonzero(half == h)
            if len(at):
                cost[at] = semantic_cost(language, images[at], cluster[at], self.costs.lam)
        return cost

    def halves(self, images: np.ndarray) -> np.ndarray:
        """``(N,)`` int64 half whose language scores each ``(N, H, W, C)`` uint8 item: a training
        item's own half (by content: identical images share a half), 0 for any other item (the
        first language was trained on half of the training items, none of them this item)."""
        if not self._half_of:  # in-sample: one language
            return np.zeros(len(images), dtype=np.int64)
        return np.array([self._half_of.get(item_digest(img), 0) for img in images], dtype=np.int64)

    def _check(self, images: np.ndarray) -> None:
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
            raise InputError("items must be uint8 arrays of shape (N, H, W, C)", where="preprocess.assign")
        if tuple(images.shape[1:]) != self.shape:
            raise InputError(f"items of shape {tuple(images.shape[1:])} do not match the pre-processor's "
                             f"training items {self.shape}", where="preprocess.assign")

    def embed(self, images: np.ndarray) -> np.ndarray:
        """``(N, D)`` float32 unit representations z of uint8 ``(N, H, W, C)`` items."""
        self._check(images)
        return embed(self.encoder, images, self.mean, self.std, self.device).numpy()

    def _probabilities(self, images: np.ndarray) -> np.ndarray:
        z = torch.as_tensor(self.embed(images))
        return cluster_probabilities(z, self.prototypes, self.resolved.cluster_tau).double().numpy()

    def clusters(self, images: np.ndarray) -> np.ndarray:
        """``(N,)`` int64 cluster ``argmax_l P_il`` of uint8 ``(N, H, W, C)`` items (no scoring)."""
        return self._probabilities(images).argmax(axis=1).astype(np.int64)

    def assign(self, images: np.ndarray) -> Assignment:
        """Cluster, cost and confidence of each item (``(N, H, W, C)`` uint8); see :class:`Assignment`."""
        if self.language is None:
            raise RuntimeError("this pre-processor has no split: build it with fit_preprocessor, not fit_encoder")
        p = self._probabilities(images)
        cluster = p.argmax(axis=1).astype(np.int64)
        cost = self._cost(images, cluster, self.halves(images))
        ref = reference_cost(images, self.costs.lam)
        conf = lexicographic_confidence(self.ranking, cluster, cost_profile(cost, ref))
        return Assignment(cluster, conf, cost, ref, p.max(axis=1).astype(np.float64), p)

    def split(self, a: Assignment) -> np.ndarray:
        """``(N,)`` bool, True = memorizable (X_m): confidence strictly below :attr:`cut`."""
        return np.asarray(a.confidence) < self.cut


def _validate(images: np.ndarray, cfg: PreprocessConfig) -> None:
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
        raise InputError(f"items must be a non-empty uint8 array (N, H, W, C) (got {images.dtype} {images.shape})",
                         where="source")
    check_preprocess(len(images), images.shape[1:], cfg)


def check_preprocess(n: int, shape: tuple[int, ...], cfg: PreprocessConfig) -> None:
    """Refuse settings the pre-processor cannot train with on ``n`` items of ``(H, W, C)``
    ``shape`` (what :func:`fit_encoder` would refuse; ``semsim validate`` asks before loading)."""
    r = cfg.resolved(tuple(shape), n)
    if not 2 <= r.clusters <= n:
        raise InputError(f"must be between 2 and the number of items ({n}) (got {r.clusters})",
                         where="preprocess.clusters")
    if r.batch_size > n:
        raise InputError(f"batch of {r.batch_size} is larger than the {n} items; lower preprocess.batch_size",
                         where="preprocess.batch_size")
    if min(r.queue_size, n - r.batch_size) < r.clusters:
        raise InputError(f"the memory bank would hold {min(r.queue_size, n - r.batch_size)} keys (min of queue_size "
                         f"and items - batch_size), fewer than the {r.clusters} clusters; lower batch_size or "
                         "raise queue_size", where="preprocess.batch_size")
    if min(shape[:2]) < 4:
        raise InputError(f"items must be at least 4x4 pixels (got {shape[0]}x{shape[1]})", where="source")


def fit_preprocessor(items: ItemSet, cfg: PreprocessConfig, ctx: RunContext,
                     costs: CostModel | None = None) -> Preprocessor:
    """Train the pre-processor on ``items.images`` (labels and kinds are never read), or load its
    encoder from the cache (:func:`fit_encoder`); then fit the split: the scoring language
    (trained or loaded), the cost of every item, the ranking and the cut.

    Args:
        costs: how the costs are measured (default :class:`CostModel`: the default
            ``[semantic]``); :meth:`CostModel.of` a scenario.

    Raises :class:`InputError` for impossible settings (clusters < 2 or > N, a batch larger
    than the data) and for a corrupt or foreign cache file.
    """
    pre = fit_encoder(items, cfg, ctx)
    pre._fit_split(items.images, costs or CostModel(), ctx)
    return pre


def fit_encoder(items: ItemSet, cfg: PreprocessConfig, ctx: RunContext) -> Preprocessor:
    """The contrastive clustering alone: train the encoder on ``items.images`` or load it from
    the cache when one with the same data, hyper-parameters and seed exists. The result's
    :meth:`Preprocessor.clusters` works; :meth:`~Preprocessor.assign` and
    :meth:`~Preprocessor.split` need the split of :func:`fit_preprocessor`."""
    images = items.images
    r = cfg.resolved(images.shape[1:] if images.ndim == 4 else None, len(images))
    _validate(images, cfg)
    key = model_cache.digest(FORMAT, images, r.to_json(), int(ctx.seed), f"threads={ctx.training_threads()}")
    path = ctx.cache_path("preprocess", f"{key[:32]}.pt")
    shape = tuple(images.shape[1:])

    def rebuild(payload: dict) -> Preprocessor:
        encoder = Encoder(shape, r.backbone, r.width, r.feature_dim)
        encoder.load_state_dict(payload["state"])
        result = TrainResult(encoder, payload["prototypes"], payload["mean"], payload["std"],
                             json.loads(payload["history"]), payload["images_per_s"], payload["train_seconds"])
        log.info("loaded cached model %s", path)
        return Preprocessor(result, r, cfg, shape, ctx.device, from_cache=True, cache_file=path,
                            train_cluster=payload["train_cluster"].numpy(), train_assign=payload["train_assign"].numpy())

    def fit() -> tuple[Preprocessor, dict]:
        result = train(images, r, ctx)
        z = torch.as_tensor(embed(result.encoder, images, result.mean, result.std, ctx.device))
        p = cluster_probabilities(z, result.prototypes.float(), r.cluster_tau).double().numpy()
        cluster, assign = p.argmax(axis=1).astype(np.int64), p.max(axis=1).astype(np.float64)
        pre = Preprocessor(result, r, cfg, shape, ctx.device, from_cache=False, cache_file=path, train_cluster=cluster,
                           train_assign=assign)
        return pre, {
            "config": r.to_json(), "seed": int(ctx.seed),
            "state": {k: v.detach().cpu() for k, v in result.encoder.state_dict().items()},
            "prototypes": result.prototypes.cpu(), "mean": result.mean.cpu(), "std": result.std.cpu(),
            "train_cluster": torch.as_tensor(cluster), "train_assign": torch.as_tensor(assign),
            "history": json.dumps(result.history), "images_per_s": float(result.images_per_s),
            "train_seconds": float(result.train_seconds),
        }

    return model_cache.load_or_train(path, key, FORMAT, "pre-processor model", rebuild, fit)[0]

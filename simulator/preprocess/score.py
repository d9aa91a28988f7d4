"""The label-free score of the split: what an item costs, in bits, on each route and under a
fixed reference coder.

* Semantic route: ``J_i = R_i + lambda D_i`` under a *scoring language* trained on the
  source's items (``preprocess.scoring = "in-sample"``: all of them; ``"held-out"``: two languages,
  each trained on one half of the items and scoring the other half, so that no item is scored by
  a language that saw it: :func:`held_out_halves`), with the contrastive clusters as its header
  and one operating point (the language of eq. (1) before any split, at ``semantic.lambda``
  whatever ``semantic.rate_control`` says; the pipelines' languages are variable-rate and the
  vanilla ones form their own dictionary, so none of them is this model). ``R_i``: the entropy
  model's estimated bits of the item's representation, header included; ``D_i``: the sum of
  squared errors of its decode on the 0..255 scale; ``lambda``: ``semantic.lambda``, the
  language's own trade-off. Items the language cannot express cheaply (no structure shared with
  the rest of the source) cost the most, whatever the source.
* Reference: ``Jref_i = min_step (R_ref + lambda SSE_ref)`` under a fixed transform coder that
  learns nothing from the source (:func:`reference_cost`): an orthonormal 8x8 DCT per channel
  (the whole image when a side is not a multiple of 8), uniform quantisation with one step for
  the item from a ladder of powers of 2^(1/4), and the order-0 Exp-Golomb length of each
  quantised coefficient plus a sign bit. It measures how complex the item is in general, so
  that the pair (J, Jref) tells an item the language expresses as well as it expresses the
  source from one it merely finds simple or hard.
* X_m route: ``C_i = bits_i + lambda SSE_i`` of the item coded with ``classical.memorizable_coder``
  (SSE = 0 for a lossless coder).

:mod:`~simulator.preprocess.ranking` ranks clusters and items by how atypical their profile
``(log2(1 + J), log2(1 + Jref))`` is, and cuts beyond the tolerable deviation. ``C`` is not
part of the split; the benchmark reports the complexity-corrected ``J - C`` beside it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..context import RunContext
from ..semantic import SemanticConfig, SemanticLanguage, fit_language
from .ranking import log_cost

#: The score's name in reports (``semsim preprocess``, the benchmark).
SCORE_NAME = "cost-atypicality"


@dataclass(frozen=True)
class CostModel:
    """How the costs are measured (from the scenario: :meth:`of`): the scoring language's settings
    and lambda, and the X_m route's coder (for :func:`route_cost`).

    Attributes:
        semantic: the scoring language's settings (``[semantic]``; lambda in bits per unit SSE).
        coder: the X_m route's classical coder (``classical.memorizable_coder``).
        quality: its quality (``classical.quality``: ``"target"`` or an integer; lossy coders only).
        psnr_db: the fidelity target of ``quality = "target"`` (dB).
        container: ``classical.container`` (how the X_m route's bits are counted).
        search: ``classical.search`` (the quality search of ``quality = "target"``).
    """

    semantic: SemanticConfig = field(default_factory=SemanticConfig)
    coder: str = "best"
    quality: str | int = "target"
    psnr_db: float | None = 20.0
    container: str = "none"
    search: str = "bisect"

    @classmethod
    def of(cls, scenario) -> "CostModel":
        """The cost model of a :class:`~simulator.scenario.Scenario`."""
        cl = scenario.classical
        # under a bandwidth budget (quality "budget") the split still weighs each item's cost at
        # the fidelity target: the budget depends on the link, the split on the items
        quality = "target" if cl.quality == "budget" else cl.quality
        return cls(scenario.semantic, cl.memorizable_coder, quality, scenario.fidelity.psnr_db, cl.container,
                   cl.search)

    @property
    def lam(self) -> float:
        return float(self.semantic.lambda_)


def fit_scoring_language(images: np.ndarray, clusters: np.ndarray, num_clusters: int, model: CostModel,
                         ctx: RunContext) -> SemanticLanguage:
    """The scoring language: trained (or loaded from the cache) on all ``(N, H, W, C)`` uint8
    items with their ``(N,)`` clusters as the header."""
    # one operating point, semantic.lambda: the cost J is eq. (1)'s at that trade-off
    # (always the factorized language: the scoring language is trained on the point's items)
    cfg = model.semantic.model_copy(update={"rate_control": "lambda", "architecture": "factorized"})
    return fit_language(images, clusters, num_clusters, cfg, ctx, tag="scoring")


#: The halves of ``preprocess.scoring = "held-out"``: each half's items are scored by a language
#: trained on the other half's.
SCORING_HALVES = 2


def item_digest(image: np.ndarray) -> bytes:
    """A 16-byte digest of one item's pixels (identical images, identical digests)."""
    return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest()


def held_out_halves(images: np.ndarray, clusters: np.ndarray, ctx: RunContext) -> tuple[np.ndarray, dict[bytes, int]]:
    """The halves of ``scoring = "held-out"`` for ``(N, H, W, C)`` uint8 items with ``(N,)``
    clusters: ``(N,)`` int64 in ``0..SCORING_HALVES-1`` and the map from each distinct item's
    :func:`item_digest` to its half.

    Stratified by cluster: the distinct images of each cluster, in a random order
    (``ctx.rng("scoring-halves")``), are dealt to the halves alternately, the deal running on
    from one cluster to the next; so every cluster of two or more distinct images is in both
    halves (each language learns the header of every such cluster), the halves differ in size by
    at most one distinct image, and the copies of an image share a half: the language that
    scores an item has seen no copy of it."""
    digests = [item_digest(img) for img in images]
    first: dict[bytes, int] = {}  # each distinct image's first index, in order of appearance
    for i, d in enumerate(digests):
        first.setdefault(d, i)
    distinct = list(first)
    of = np.array([int(clusters[i]) for i in first.values()], dtype=np.int64)
    rng = ctx.rng("scoring-halves")
    order = np.concatenate([rng.permutation(np.flatnonzero(of == c)) for c in np.unique(of)]) if len(of) else of
    half_of = {distinct[j]: int(pos % SCORING_HALVES) for pos, j in enumerate(order)}
    return np.array([half_of[d] for d in digests], dtype=np.int64), half_of


def semantic_cost(language: SemanticLanguage, images: np.ndarray, clusters: np.ndarray, lam: float) -> np.ndarray:
    """``(N,)`` float64 ``J_i = R_i + lam * SSE_i`` (bits) of ``(N, H, W, C)`` uint8 items under
    ``language`` with header clusters ``(N,)``."""
    if len(images) == 0:
        return np.zeros(0)
    latents = language.quantize(images, clusters)
    rate = np.asarray(language.estimated_bits(latents), dtype=np.float64)
    recon = language.reconstruct(latents, clusters)
    sse = ((recon.astype(np.float64) - images.astype(np.float64)) ** 2).reshape(len(images), -1).sum(axis=1)
    return rate + lam * sse


def route_cost(images: np.ndarray, model: CostModel, streams=None) -> np.ndarray:
    """``(N,)`` float64 ``C_i = bits_i + lambda SSE_i`` of the items on the X_m route.

    ``streams``: the items already coded with ``model.coder``
    (:class:`~simulator.classical.streams.ClassicalStreams`), else they are coded here.
    """
    from ..classical import source_coding
    from ..registry import CODERS
    from ..classical.streams import classical_file, encode_classical

    if streams is None:
        streams = encode_classical(images, model.coder, model.quality, model.psnr_db, container=model.container,
                                   search=model.search)
    bits = np.array([len(b) for b in streams.bits], dtype=np.float64)
    if CODERS.get(model.coder).lossless:
        return bits
    shape = tuple(images.shape[1:])
    sse = np.array([((source_coding.decode(classical_file(b, model.coder, streams.container, shape), model.coder,
                                           shape).astype(np.float64)
                      - img.astype(np.float64)) ** 2).sum() for b, img in zip(streams.bits, images)])
    return bits + model.lam * sse


#: The reference coder's block side and its quantiser steps (powers of 2^(1/4), 0.5 .. 2^8.75).
REFERENCE_BLOCK = 8
REFERENCE_STEPS = 2.0 ** np.arange(-1.0, 9.0, 0.25)


def dct_matrix(n: int) -> np.ndarray:
    """``(n, n)`` float64 orthonormal DCT-II matrix (rows: frequencies)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


def exp_golomb_bits(q: np.ndarray) -> np.ndarray:
    """Bits of each integer of ``q`` (any shape) in order-0 Exp-Golomb of ``|q|`` plus a sign bit
    for ``q != 0``: ``2 floor(log2(|q| + 1)) + 1 + [q != 0]``."""
    a = np.abs(q)
    return 2.0 * np.floor(np.log2(a + 1.0)) + 1.0 + (a > 0)


def reference_cost(images: np.ndarray, lam: float, chunk: int = 2048) -> np.ndarray:
    """``(N,)`` float64 ``Jref_i`` (bits) of ``(N, H, W, C)`` uint8 items: the lowest
    ``R + lam * SSE`` over :data:`REFERENCE_STEPS` of the fixed DCT coder (module docstring)."""
    n, h, w, c = images.shape
    b = REFERENCE_BLOCK if h % REFERENCE_BLOCK == 0 and w % REFERENCE_BLOCK == 0 else None
    bh, bw = (b, b) if b else (h, w)
    dh, dw = dct_matrix(bh), dct_matrix(bw)
    out = np.empty(n)
    for s in range(0, n, chunk):
        x = images[s:s + chunk].astype(np.float64) - 128.0
        m = len(x)
        blocks = x.reshape(m, h // bh, bh, w // bw, bw, c).transpose(0, 1, 3, 5, 2, 4)
        coef = (dh @ blocks @ dw.T).reshape(m, -1)  # orthonormal: coefficient SSE = pixel SSE
        best = np.full(m, np.inf)
        for step in REFERENCE_STEPS:
            q = np.round(coef / step)
            cost = exp_golomb_bits(q).sum(axis=1) + lam * ((coef - q * step) ** 2).sum(axis=1)
            best = np.minimum(best, cost)
        out[s:s + m] = best
    return out


def cost_profile(cost: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``(N, 2)`` float64 ``(log2(1 + J), log2(1 + Jref))`` of ``(N,)`` costs in bits."""
    return np.column_stack([log_cost(cost), log_cost(reference)])

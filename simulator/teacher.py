"""The teacher: decides a route per item and encodes it into the bits it hands to the link.

Routes (:class:`~simulator.route.Route`): ``classical`` (a classical source coder's stream,
:mod:`simulator.classical.streams`) or ``semantic`` (a
learned language's entropy-coded representation, cluster header included). Which items go
which way is the pipeline's choice (see :mod:`simulator.pipelines`); the teacher never reads
ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bits import bytes_to_bits
from .flops import ENTROPY_COST
from .route import Route


@dataclass
class Encoded:
    """What the teacher sends, per item (N items).

    Attributes:
        route: ``(N,)`` object array of :class:`~simulator.route.Route`.
        bits: N uint8 bit arrays; ``len(bits[i])`` is the representation length in bits
            (the actual coded stream, header included).
        est_bits: ``(N,)`` float, the entropy model's estimate (-sum log2 p + header) for
            semantic items, NaN for classical ones.
        cluster: ``(N,)`` int64, the header cluster of the item in its language's dictionary
            (the pre-processor's or the language's own; -1: none).
        compute_s: ``(N,)`` float, the teacher's modelled compute time per item (s).
        rung: ``(N,)`` int64 operating point of each semantic item (-1: classical).
        missed: ``(N,)`` bool, a semantic item whose decode misses the target at every
            operating point, sent at the highest one (under a bandwidth budget: that fits
            no operating point, not sent).
        sent: ``(N,)`` bool, the teacher coded the item (False: under a bandwidth budget no
            operating point fits, and its stream is empty; :mod:`simulator.link.budget`).
    """

    route: np.ndarray
    bits: list[np.ndarray]
    est_bits: np.ndarray
    cluster: np.ndarray
    compute_s: np.ndarray
    rung: np.ndarray
    missed: np.ndarray
    sent: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.sent is None:
            self.sent = np.ones(len(self.bits), dtype=bool)

    @property
    def n_bits(self) -> np.ndarray:
        return np.array([len(b) for b in self.bits], dtype=np.int64)


def semantic_coding(language, images: np.ndarray, clusters: np.ndarray, psnr_target_db: float | None,
                    search: str = "scan"):
    """The language's representations of ``(M, H, W, C)`` uint8 items with ``(M,)`` header clusters
    (under a bandwidth budget the sweep point picks from the language's ``encode_ladder``
    instead: :func:`~simulator.point.semantic_codings`).

    With a target (``rate_control = "target-quality"``): per item the shortest operating point
    whose decode meets ``psnr_target_db``, found by ``search`` (``semantic.search``;
    :meth:`~simulator.semantic.SemanticLanguage.encode_to_target`). Without (``"lambda"``): the
    language's only operating point, unchecked (``met`` all True, no decode by the teacher).
    Returns a :class:`~simulator.semantic.TargetCoding`.
    """
    from .semantic import TargetCoding

    if psnr_target_db is None:
        reps = language.encode(images, clusters)
        return TargetCoding(reps, np.ones(len(reps), dtype=bool), np.full(len(reps), np.nan),
                            np.zeros(len(reps), dtype=np.int64))
    return language.encode_to_target(images, clusters, psnr_target_db, search=search)


def encode_items(images: np.ndarray, semantic: np.ndarray, classical_bits: list[np.ndarray], *, language=None,
                 cluster: np.ndarray | None = None, flops_per_s: float = 1.0,
                 extra_flops_per_item: int = 0, coding=None, on_miss: str = "highest",
                 classical_sent: np.ndarray | None = None, classical_flops: np.ndarray | None = None,
                 rungs_coded: int = 1) -> Encoded:
    """Encode N items: those with ``semantic[i]`` through ``language``, the others classically.

    Args:
        images: ``(N, H, W, C)`` uint8.
        semantic: ``(N,)`` bool, the items the pipeline offers to its language.
        classical_bits: N bit arrays, every item coded with the pipeline's classical coder
            (:func:`~simulator.classical.streams.encode_classical`, computed once per sweep
            point and shared by the pipelines).
        language: a trained language if any item is semantic.
        cluster: ``(N,)`` int64 header clusters (required for semantic items).
        flops_per_s: the teacher's compute speed (FLOP/s) for the compute-time model.
        extra_flops_per_item: FLOPs spent on every item before routing (the pre-processor).
        coding: the :func:`semantic_coding` of the offered items, in order (default: computed
            here without a target).
        on_miss: an offered item whose coding missed the target goes ``"classical"`` or is sent
            anyway at the ``"highest"`` operating point (then ``Encoded.missed``).
        classical_sent: given when the items are coded to a bandwidth budget (``coding`` and
            ``classical_bits`` were): ``(N,)`` bool, the item's classical picture fits. Then an
            offered item that fits no operating point goes ``"classical"`` or, with
            ``"highest"``, is not sent, and a classical item is sent where ``classical_sent``.
        classical_flops: ``(N,)`` FLOP-equivalents of coding each item classically (its codec
            search, :attr:`~simulator.classical.streams.ClassicalStreams.teacher_flops`);
            default 0.
        rungs_coded: operating points the rate control entropy-codes per offered item (all of
            them for ``"target-quality"`` and ``"budget"``, one for ``"lambda"``).

    Compute time per item (:mod:`simulator.flops`, one rule for every pipeline): the
    pre-processor's FLOPs; for an offered item the encoder at ``rungs_coded`` operating points
    (its part that runs per rung: ``language.flops_per_extra_rung``), their entropy coding, and
    one decode per operating point the rate control tried
    (the teacher's own check); for an item sent classically its codec search.
    """
    n = len(images)
    budget = classical_sent is not None
    offered = np.asarray(semantic, dtype=bool)
    cluster = np.full(n, -1, dtype=np.int64) if cluster is None else np.asarray(cluster, dtype=np.int64)
    bits: list[np.ndarray] = [None] * n  # type: ignore[list-item]
    est = np.full(n, np.nan)
    rung = np.full(n, -1, dtype=np.int64)
    missed = np.zeros(n, dtype=bool)
    flops = np.full(n, float(extra_flops_per_item))
    sem = np.zeros(n, dtype=bool)
    off_idx = np.flatnonzero(offered)
    if len(off_idx):
        if language is None:
            raise ValueError("semantic items need a language")
        if coding is None:
            coding = semantic_coding(language, images[off_idx], cluster[off_idx], None)
        if len(coding.reps) != len(off_idx):
            raise ValueError(f"coding holds {len(coding.reps)} items, {len(off_idx)} are offered")
        flops[off_idx] += (language.flops_encode + (rungs_coded - 1) * language.flops_per_extra_rung
                           + ENTROPY_COST.encode(language.symbols_per_item, rungs_coded)
                           + np.asarray(coding.rungs_tried, dtype=np.float64) * language.flops_decode)
        for i, rep, ok in zip(off_idx, coding.reps, coding.met):
            if not ok and on_miss == Route.CLASSICAL:
                continue
            sem[i] = True
            missed[i] = not ok
            if budget and not ok:  # nothing fits: not sent
                bits[i] = np.zeros(0, dtype=np.uint8)
                continue
            bits[i] = bytes_to_bits(rep.bitstream)[: rep.n_bits]
            est[i] = rep.est_bits
            rung[i] = rep.rung
    for i in np.flatnonzero(~sem):
        bits[i] = classical_bits[i]
    if classical_flops is not None:
        flops[~sem] += np.asarray(classical_flops, dtype=np.float64)[~sem]
    route = np.array([Route.SEMANTIC if s_ else Route.CLASSICAL for s_ in sem], dtype=object)
    sent = np.ones(n, dtype=bool)
    if budget:  # a semantic item with an empty stream fitted nothing; a mosaic's item may carry
        sent = np.array([len(b) > 0 for b in bits], dtype=bool)  # an empty chunk of a sent picture
        sent[~sem] = np.asarray(classical_sent, dtype=bool)[~sem]
    return Encoded(route, bits, est, cluster, flops / flops_per_s, rung, missed, sent)

"""The teacher: decides a route per item and encodes it into the bits it hands to the link.

Routes: ``classical`` (a classical source coder, see :func:`encode_classical`) or ``semantic`` (a
learned language's entropy-coded representation, cluster header included). Which items go
which way is the pipeline's choice (see :mod:`simulator.pipelines`); the teacher never reads
ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .classical import source_coding
from .link.packets import bytes_to_bits
from .classical.quality import encode_at_quality, encode_to_target
from .registry import CODERS

CLASSICAL, SEMANTIC = "classical", "semantic"


@dataclass
class Encoded:
    """What the teacher sends, per item (N items).

    Attributes:
        route: ``(N,)`` str, ``"classical"`` or ``"semantic"``.
        bits: N uint8 bit arrays; ``len(bits[i])`` is the representation length in bits
            (the actual coded stream, header included).
        est_bits: ``(N,)`` float, the entropy model's estimate (-sum log2 p + header) for
            semantic items, NaN for classical ones.
        cluster: ``(N,)`` int64, the header cluster of the item in its language's dictionary
            (the pre-processor's or the language's own; -1: none).
        compute_s: ``(N,)`` float, the teacher's modelled compute time per item (s).
        rung: ``(N,)`` int64 operating point of each semantic item (-1: classical).
        missed: ``(N,)`` bool, a semantic item whose decode misses the target at every
            operating point, sent at the highest one.
    """

    route: np.ndarray
    bits: list[np.ndarray]
    est_bits: np.ndarray
    cluster: np.ndarray
    compute_s: np.ndarray
    rung: np.ndarray
    missed: np.ndarray

    @property
    def n_bits(self) -> np.ndarray:
        return np.array([len(b) for b in self.bits], dtype=np.int64)


@dataclass
class ClassicalStreams:
    """Every item of a sweep point coded with one classical coder (shared by the pipelines).

    Attributes:
        coder: the coder's registered name.
        bits: N uint8 bit arrays, the codec's real streams (headers included).
        quality: ``(N,)`` float64 codec quality used (NaN for a lossless coder).
        met: ``(N,)`` bool, the decode meets the PSNR target (always True for a lossless coder;
            False where no quality reaches it and the highest was sent).
    """

    coder: str
    bits: list[np.ndarray]
    quality: np.ndarray
    met: np.ndarray


def encode_classical(images: np.ndarray, coder: str, quality: str | int = "target",
                     psnr_db: float | None = None, *, on_item: Callable[[int, int], None] | None = None
                     ) -> ClassicalStreams:
    """Code each ``(H, W, C)`` uint8 image of ``images`` ``(N, H, W, C)`` with ``coder``.

    A lossless coder ignores ``quality``. A lossy one codes at the integer ``quality``, or
    with ``quality = "target"`` at the shortest stream whose decode meets ``psnr_db`` (dB)
    (:func:`~simulator.classical.quality.encode_to_target`). ``on_item(done, n)`` is told
    after each item (progress).
    """
    n = len(images)
    spec = CODERS.get(coder)
    q = np.full(n, np.nan)
    met = np.ones(n, dtype=bool)

    def each(fn):
        out = []
        for img in images:
            out.append(fn(img))
            if on_item is not None:
                on_item(len(out), n)
        return out

    if spec.lossless:
        streams = each(lambda img: source_coding.encode(img, coder))
    elif quality == "target":
        if psnr_db is None:
            raise ValueError("a quality target needs psnr_db")
        results = each(lambda img: encode_to_target(coder, img, psnr_db))
        streams = [r.stream for r in results]
        q[:] = [r.quality for r in results]
        met[:] = [r.met for r in results]
    else:
        results = each(lambda img: encode_at_quality(coder, img, int(quality)))
        streams = [r.stream for r in results]
        q[:] = int(quality)
        if psnr_db is not None:
            met[:] = [r.psnr_db >= psnr_db for r in results]
    return ClassicalStreams(coder, [bytes_to_bits(b) for b in streams], q, met)


def semantic_coding(language, images: np.ndarray, clusters: np.ndarray, psnr_target_db: float | None):
    """The language's representations of ``(M, H, W, C)`` uint8 items with ``(M,)`` header clusters.

    With a target (``rate_control = "target-quality"``): per item the shortest operating point
    whose decode meets ``psnr_target_db``
    (:meth:`~simulator.semantic.SemanticLanguage.encode_to_target`). Without (``"lambda"``): the
    language's only operating point, unchecked (``met`` all True, no decode by the teacher).
    Returns a :class:`~simulator.semantic.TargetCoding`.
    """
    from .semantic import TargetCoding

    if psnr_target_db is None:
        reps = language.encode(images, clusters)
        return TargetCoding(reps, np.ones(len(reps), dtype=bool), np.full(len(reps), np.nan),
                            np.zeros(len(reps), dtype=np.int64))
    return language.encode_to_target(images, clusters, psnr_target_db)


def encode_items(images: np.ndarray, semantic: np.ndarray, classical_bits: list[np.ndarray], language=None,
                 cluster: np.ndarray | None = None, flops_per_s: float = 1.0,
                 extra_flops_per_item: int = 0, coding=None, on_miss: str = "highest") -> Encoded:
    """Encode N items: those with ``semantic[i]`` through ``language``, the others classically.

    Args:
        images: ``(N, H, W, C)`` uint8.
        semantic: ``(N,)`` bool, the items the pipeline offers to its language.
        classical_bits: N bit arrays, every item coded with the pipeline's classical coder
            (:func:`encode_classical`, computed once per sweep point and shared by the pipelines).
        language: a trained language if any item is semantic.
        cluster: ``(N,)`` int64 header clusters (required for semantic items).
        flops_per_s: the teacher's compute speed (FLOP/s) for the compute-time model.
        extra_flops_per_item: FLOPs spent on every item before routing (the pre-processor).
        coding: the :func:`semantic_coding` of the offered items, in order (default: computed
            here without a target).
        on_miss: an offered item whose coding missed the target goes ``"classical"`` or is sent
            anyway at the ``"highest"`` operating point (then ``Encoded.missed``).

    Compute time per item: the pre-processor's FLOPs, plus for an offered item the encoder and
    one decode per operating point the rate control tried (the teacher's own check).
    """
    n = len(images)
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
        flops[off_idx] += language.flops_encode + np.asarray(coding.rungs_tried, dtype=np.float64) * language.flops_decode
        for i, rep, ok in zip(off_idx, coding.reps, coding.met):
            if not ok and on_miss == "classical":
                continue
            sem[i] = True
            missed[i] = not ok
            bits[i] = bytes_to_bits(rep.bitstream)[: rep.n_bits]
            est[i] = rep.est_bits
            rung[i] = rep.rung
    for i in np.flatnonzero(~sem):
        bits[i] = classical_bits[i]
    route = np.where(sem, SEMANTIC, CLASSICAL).astype(object)
    return Encoded(route, bits, est, cluster, flops / flops_per_s, rung, missed)

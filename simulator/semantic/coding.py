"""What every semantic language shares: the representation of an item, the rate control's
result and search, and the conversion of items to and from the networks' scale.

* :class:`Representation`: what the teacher sends for one item;
* :class:`TargetCoding`: the rate control's choice for N items, and :func:`search_target`,
  the search both languages run; :class:`LadderCoding`: every item at every operating point,
  from which a bandwidth budget chooses (:func:`fit_budget`);
* ``to_net`` / ``to_uint8``: ``(N, H, W, C)`` uint8 <-> ``(N, C, H, W)`` float32 in
  ``[-1/2, 1/2]``; ``check_items``: items and clusters checked with one clear message.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..metrics import psnr_from_mse
from ..model_cache import pack_ragged, unpack_ragged

@dataclass(frozen=True)
class Representation:
    """What the teacher sends for one item.

    Attributes:
        bitstream: the entropy-coded header and latent (bytes).
        n_bits: ``8 * len(bitstream)``, the actual length sent, header included.
        est_bits: estimated rate ``header_bits - sum log2 p(latent)`` (float).
        cluster: the cluster id carried in the header.
        rung: the operating point carried in the header (index into ``lambdas``; 0 with one).
    """

    bitstream: bytes
    n_bits: int
    est_bits: float
    cluster: int
    rung: int = 0


@dataclass(frozen=True)
class TargetCoding:
    """What :meth:`SemanticLanguage.encode_to_target` chose for N items.

    Attributes:
        reps: N :class:`Representation` s: the shortest rung meeting the target, else the
            highest rung.
        met: ``(N,)`` bool, the chosen decode meets the target (False: no rung does).
        psnr_db: ``(N,)`` float64 PSNR of the chosen decode (dB; inf when exact; NaN when the
            teacher did not decode).
        rungs_tried: ``(N,)`` int64 operating points the teacher decoded per item (the rate
            control's compute).
    """

    reps: list[Representation]
    met: np.ndarray
    psnr_db: np.ndarray
    rungs_tried: np.ndarray

    def to_payload(self) -> dict:
        """Plain tensors that :meth:`from_payload` turns back into an equal coding (the cache)."""
        return {"streams": pack_ragged([np.frombuffer(r.bitstream, dtype=np.uint8) for r in self.reps], np.uint8),
                "n_bits": torch.tensor([r.n_bits for r in self.reps], dtype=torch.int64),
                "est_bits": torch.tensor([r.est_bits for r in self.reps], dtype=torch.float64),
                "cluster": torch.tensor([r.cluster for r in self.reps], dtype=torch.int64),
                "rung": torch.tensor([r.rung for r in self.reps], dtype=torch.int64),
                "met": torch.from_numpy(np.asarray(self.met, dtype=bool)),
                "psnr_db": torch.from_numpy(np.asarray(self.psnr_db, dtype=np.float64)),
                "rungs_tried": torch.from_numpy(np.asarray(self.rungs_tried, dtype=np.int64))}

    @classmethod
    def from_payload(cls, p: dict) -> "TargetCoding":
        reps = [Representation(s.tobytes(), int(nb), float(e), int(c), int(r))
                for s, nb, e, c, r in zip(unpack_ragged(p["streams"]), p["n_bits"].tolist(), p["est_bits"].tolist(),
                                          p["cluster"].tolist(), p["rung"].tolist())]
        return cls(reps, p["met"].numpy().copy(), p["psnr_db"].numpy().copy(), p["rungs_tried"].numpy().copy())


@dataclass(frozen=True)
class LadderCoding:
    """Every item coded at every operating point of a language (``encode_ladder``): what the
    rate control ``"budget"`` chooses from, the same whatever the budget, so a sweep over the
    SNR or the channel codes its items once (:meth:`fit`).

    Attributes:
        reps: ``K`` lists of ``N`` :class:`Representation` s: ``reps[r][i]`` is item ``i`` at
            operating point ``r``.
    """

    reps: list[list[Representation]]

    @property
    def bits(self) -> np.ndarray:
        """``(K, N)`` int64 stream length of each item at each operating point."""
        k = len(self.reps)
        n = len(self.reps[0]) if k else 0
        return np.array([[r.n_bits for r in row] for row in self.reps], dtype=np.int64).reshape(k, n)

    def fit(self, max_bits: int) -> TargetCoding:
        """The rate control under a bandwidth budget (:func:`fit_budget`): per item the highest
        operating point whose stream is at most ``max_bits`` long (none: operating point 0 with
        ``met = False``, not sent)."""
        chosen, met, psnr, tried = fit_budget(self.bits, max_bits)
        return TargetCoding([self.reps[int(r)][i] for i, r in enumerate(chosen)], met, psnr, tried)

    def to_payload(self) -> dict:
        """Plain tensors that :meth:`from_payload` turns back into an equal coding (the cache)."""
        flat = [rep for row in self.reps for rep in row]
        n = len(self.reps[0]) if self.reps else 0
        return {"rungs": torch.tensor([len(self.reps), n], dtype=torch.int64),
                **TargetCoding(flat, np.zeros(len(flat), dtype=bool), np.zeros(len(flat)),
                               np.zeros(len(flat), dtype=np.int64)).to_payload()}

    @classmethod
    def from_payload(cls, p: dict) -> "LadderCoding":
        k, n = (int(v) for v in p["rungs"].tolist())
        flat = TargetCoding.from_payload(p).reps
        return cls([flat[r * n:(r + 1) * n] for r in range(k)])


def to_net(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, C)`` uint8 -> ``(N, C, H, W)`` float32 in ``[-1/2, 1/2]``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return x / 255.0 - 0.5


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Inverse of :func:`to_net`, rounded and clipped to 0..255; ``(N, H, W, C)``."""
    px = torch.clamp(torch.round((x + 0.5) * 255.0), 0, 255).to(torch.uint8)
    return px.permute(0, 2, 3, 1).contiguous().numpy()


def check_items(images, clusters, num_clusters: int | None, where: str) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise InputError(f"images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}", where=where)
    clusters = np.asarray(clusters)
    if clusters.shape != (len(images),) or not np.issubdtype(clusters.dtype, np.integer):
        raise InputError(f"clusters must be ({len(images)},) integers, got {clusters.dtype} {clusters.shape}",
                         where=where)
    clusters = clusters.astype(np.int64)
    if num_clusters is not None and len(clusters) and (clusters.min() < 0 or clusters.max() >= num_clusters):
        raise InputError(f"cluster ids must be in [0, {num_clusters}), got [{clusters.min()}, {clusters.max()}]",
                         where=where)
    return images, clusters


#: ``semantic.search``: how the rate control visits a language's operating points.
SEARCHES = ("scan", "bisect")


def search_target(bits: np.ndarray, decode, images: np.ndarray, psnr_db: float, search: str = "scan"
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rate control's search, shared by every language.

    Args:
        bits: ``(K, N)`` stream length of each item at each operating point.
        decode: ``decode(rungs (M,), items (M,)) -> (M, H, W, C)`` uint8, the apprentice's
            decode of items ``items`` at ``rungs``.
        images: ``(N, H, W, C)`` uint8 originals.
        psnr_db: the target.
        search: ``"scan"`` decodes the operating points from the shortest stream up until one
            meets the target, so an item costs one decode more than the number of shorter
            streams that miss it, and the answer is the shortest stream meeting the target.
            ``"bisect"`` bisects the streams ordered by length as if PSNR rose with it: at
            most ``ceil(log2 K) + 1`` decodes (for K = 31 always 5, for K = 17 4 or 5),
            counting the longest stream's when the bisection settles on it undecoded; the
            answer always meets the target when the longest stream does, and is the scan's
            whenever PSNR rises with the stream length.
    Returns:
        ``(chosen, met, psnr, tried)``, each ``(N,)``: per item the operating point chosen
        (the stream the search found, ties between equal lengths to the lower rung; an item
        no decoded stream serves gets the highest rung), whether it meets the target, its PSNR
        (NaN if not decoded) and how many operating points were decoded.

    Raises:
        ValueError: a ``search`` that is not one of :data:`SEARCHES`.
    """
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {', '.join(SEARCHES)} (got {search!r})")
    k, n = bits.shape
    order = np.lexsort((np.broadcast_to(np.arange(k)[:, None], (k, n)), bits), axis=0)  # (K, N) shortest first
    ref = images.astype(np.float64).reshape(n, -1)
    items = np.arange(n)
    seen = np.full((k, n), np.nan)  # PSNR by position in ``order``
    tried = np.zeros(n, dtype=np.int64)

    def meets(pos: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """Decode items ``sel`` at their ``pos``-th shortest stream; ``(M,)`` bool: meets the target."""
        rec = decode(order[pos, sel], sel).astype(np.float64).reshape(len(sel), -1)
        mse = ((rec - ref[sel]) ** 2).mean(axis=1)
        seen[pos, sel] = [psnr_from_mse(float(m)) for m in mse]  # the ledger's own PSNR
        tried[sel] += 1
        return seen[pos, sel] >= psnr_db

    if search == "scan":
        at = np.full(n, k - 1, dtype=np.int64)  # the position the search stops at
        pending = np.arange(n)
        for j in range(k):
            if not len(pending):
                break
            ok = meets(np.full(len(pending), j), pending)
            at[pending[ok]] = j
            pending = pending[~ok]
    else:
        lo, at = np.zeros(n, dtype=np.int64), np.full(n, k - 1, dtype=np.int64)  # the answer is in [lo, at]
        act = np.flatnonzero(lo < at)
        while len(act):
            mid = (lo[act] + at[act]) // 2
            ok = meets(mid, act)
            at[act[ok]] = mid[ok]
            lo[act[~ok]] = mid[~ok] + 1
            act = act[lo[act] < at[act]]
        unseen = np.flatnonzero(np.isnan(seen[at, items]))  # the longest stream, never decoded
        if len(unseen):
            meets(at[unseen], unseen)
    met = seen[at, items] >= psnr_db
    chosen = np.where(met, order[at, items], k - 1)
    top = np.argmax(order == k - 1, axis=0)  # the highest rung's position
    unchecked = np.flatnonzero(~met & np.isnan(seen[top, items]))  # bisect stopped elsewhere: check it
    if len(unchecked):
        meets(top[unchecked], unchecked)
    psnr = np.where(met, seen[at, items], seen[top, items])
    return chosen, met, psnr, tried


def fit_budget(bits: np.ndarray, max_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rate control under a bandwidth budget: per item the highest operating point (the
    ladder rises in quality) whose stream of ``bits`` ``(K, N)`` is at most ``max_bits`` long;
    an item none fits gets operating point 0 and ``met = False`` (the teacher does not send
    it). Returns ``(chosen, met, psnr, tried)`` as :func:`search_target` does, with PSNR NaN and
    no decode tried (the teacher needs none)."""
    k, n = bits.shape
    fits = bits <= int(max_bits)
    met = fits.any(axis=0)
    chosen = np.where(met, k - 1 - np.argmax(fits[::-1], axis=0), 0).astype(np.int64)
    return chosen, met, np.full(n, np.nan), np.zeros(n, dtype=np.int64)


def rungs_of(rung, n: int, num_rungs: int, tag: str) -> np.ndarray:
    """``(n,)`` int64 operating points from an int, an array or ``None`` (the highest rung);
    :class:`InputError` naming the language ``tag`` for one outside ``[0, num_rungs)``."""
    r = np.full(n, num_rungs - 1, dtype=np.int64) if rung is None else \
        np.broadcast_to(np.asarray(rung, dtype=np.int64), (n,)).copy()
    if n and (r.min() < 0 or r.max() >= num_rungs):
        raise InputError(f"operating points must be in [0, {num_rungs})", where=f"semantic language {tag!r}")
    return r

"""Classical streams: every item of a sweep point coded with one classical coder, once, and
shared by the pipelines (the ``classical`` pipeline's coder, the coder of X_m) and the
pre-processor's cost model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..bits import bits_to_bytes, bytes_to_bits
from ..registry import CODERS
from . import payload, source_coding
from .mosaic import groups, picture_of
from .quality import (best_to_budget, best_to_target, decode_flops, encode_at_quality, encode_flops, encode_to_budget,
                      encode_to_target)

if TYPE_CHECKING:
    from ..context import RunContext

#: ``classical.container``: what the link carries for a classical item.
CONTAINERS = ("none", "file")


@dataclass
class ClassicalStreams:
    """Every item of a sweep point coded with one classical coder (shared by the pipelines).

    Attributes:
        coder: the coder's registered name.
        bits: N uint8 bit arrays, what the link carries per item: with ``container = "file"``
            the codec's whole stream (container and headers included); with ``"none"`` the
            minimal header and the payload (:func:`~simulator.classical.payload.item_bits`).
        quality: ``(N,)`` float64 codec quality used (NaN for a lossless coder).
        met: ``(N,)`` bool, the decode meets the PSNR target (always True for a lossless coder;
            False where no quality reaches it and the highest was sent); with
            ``quality = "budget"``: the item's picture fits the budget (False: not sent).
        container: ``classical.container``.
        mosaic: ``N``: ``N x N`` items per picture, each item's bits a chunk of its picture's
            stream (:mod:`simulator.classical.mosaic`); 1: every item alone.
        teacher_flops: ``(N,)`` float64 FLOP-equivalents the teacher spent coding each item:
            every encode and decode of its quality search (:mod:`simulator.flops`); a mosaic's
            whole search on its first item (exact when its items arrive together: the picture
            is coded as the first is handled), 0 on the others.
        apprentice_flops: ``(N,)`` float64 FLOP-equivalents of the apprentice's decode of
            each item's stream (0 for an item not sent); a mosaic's decode on its last item.
    """

    coder: str
    bits: list[np.ndarray]
    quality: np.ndarray
    met: np.ndarray
    teacher_flops: np.ndarray
    apprentice_flops: np.ndarray
    container: str = "file"
    mosaic: int = 1


def _budget_streams(images: np.ndarray, coder: str, container: str, budget_bits: int, side: int,
                    on_item: Callable[[int, int], None] | None, search: str) -> ClassicalStreams:
    """:func:`encode_classical` with ``quality = "budget"``: per picture of :func:`groups`
    (single items when ``side = 1``) the best decode whose link bits fit the picture's items'
    budgets together (found by ``search``), cut into one chunk per item (empty chunks: nothing
    fits, or the picture needed fewer codewords)."""
    n = len(images)
    q = np.full(n, np.nan)
    met = np.zeros(n, dtype=bool)
    t_flops, a_flops = np.zeros(n), np.zeros(n)
    bits: list[np.ndarray] = [np.zeros(0, dtype=np.uint8)] * n
    for idx in groups(n, side):
        picture = picture_of(images, idx, side)
        pshape = tuple(picture.shape)

        def size(stream: bytes, qq: int | None, member: str = coder, pshape=pshape) -> int:
            return 8 * len(stream) if container == "file" else len(payload.item_bits(member, stream, pshape, qq))

        budget = budget_bits * len(idx)
        r = (best_to_budget(picture, budget, lambda m, st, qq: size(st, qq, m), search) if coder == "best"
             else encode_to_budget(coder, picture, budget, size, search))
        # no chunk leaves before the picture's search, and the picture decodes once its last
        # chunk is in: the first item carries the search, the last one the decode
        t_flops[idx[0]] = r.flops
        a_flops[idx[-1]] = decode_flops(coder, r.stream, picture.size)
        if r.met:
            whole = (bytes_to_bits(r.stream) if container == "file"
                     else payload.item_bits(coder, r.stream, pshape, r.quality))
            for j, i in enumerate(idx):
                bits[i] = whole[j * budget_bits:(j + 1) * budget_bits]
            met[idx] = True
            q[idx] = np.nan if r.quality is None else r.quality
        if on_item is not None:
            on_item(int(idx[-1]) + 1, n)
    return ClassicalStreams(coder, bits, q, met, t_flops, a_flops, container, side)


def classical_file(bits: np.ndarray, coder: str, container: str, shape: tuple[int, int, int]) -> bytes:
    """The codec's whole stream from what the link carried for one item (``bits``, uint8);
    :class:`~simulator.classical.source_coding.CorruptStream` if the bits do not form one."""
    if container == "none":
        try:
            return payload.item_stream(coder, bits, shape)
        except ValueError as err:
            raise source_coding.CorruptStream(str(err)) from None
    return bits_to_bytes(bits, len(bits) // 8)


def encode_classical(images: np.ndarray, coder: str, quality: str | int = "target",
                     psnr_db: float | None = None, *, on_item: Callable[[int, int], None] | None = None,
                     container: str = "file", budget_bits: int | None = None, mosaic: int = 1,
                     search: str = "scan") -> ClassicalStreams:
    """Code each ``(H, W, C)`` uint8 image of ``images`` ``(N, H, W, C)`` with ``coder``.

    A lossless coder ignores ``quality``. A lossy one codes at the integer ``quality``, or
    with ``quality = "target"`` at the shortest stream whose decode meets ``psnr_db`` (dB)
    (:func:`~simulator.classical.quality.encode_to_target`, its quality ``search``: ``"scan"`` or
    ``"bisect"``, also the search of ``quality = "budget"``). ``on_item(done, n)`` is told
    after each item (progress). ``container``: ``"file"`` (the link carries the codec's whole
    stream) or ``"none"`` (its minimal header and payload, docs/codecs.md).

    With ``quality = "budget"`` (a bandwidth budget, :mod:`simulator.link.budget`) every coder,
    lossless ones included, codes each item at the best decode whose link bits fit
    ``budget_bits`` (:func:`~simulator.classical.quality.encode_to_budget`); an item nothing
    fits gets an empty bit array with ``met = False`` (it is not sent). ``mosaic = N > 1``
    (budget only): ``N x N`` consecutive items are coded as one picture at their budgets
    together and its stream is cut into one chunk of at most ``budget_bits`` per item
    (:mod:`simulator.classical.mosaic`).
    """
    if container not in CONTAINERS:
        raise ValueError(f"container must be one of {', '.join(CONTAINERS)} (got {container!r})")
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

    shape = tuple(images.shape[1:])
    if quality == "budget":
        if budget_bits is None:
            raise ValueError('quality = "budget" needs budget_bits (the item bits a bandwidth budget carries)')
        return _budget_streams(images, coder, container, int(budget_bits), mosaic, on_item, search)
    if mosaic != 1:
        raise ValueError('mosaics are coded at a bandwidth budget: quality = "budget"')
    samples = int(np.prod(shape))
    if spec.lossless:
        streams = each(lambda img: source_coding.encode(img, coder))
        t_flops = np.full(n, encode_flops(coder, samples))
    elif coder == "best":
        if quality != "target" or psnr_db is None:
            raise ValueError("the 'best' coder codes each item to a PSNR target: quality = \"target\" and psnr_db")
        size = None if container == "file" else (lambda m, s, qm: len(payload.item_bits(m, s, shape, qm)))
        results = each(lambda img: best_to_target(img, psnr_db, size, search))
        q[:] = [np.nan if r.quality is None else r.quality for r in results]
    elif quality == "target":
        if psnr_db is None:
            raise ValueError("a quality target needs psnr_db")
        results = each(lambda img: encode_to_target(coder, img, psnr_db, search))
        q[:] = [r.quality for r in results]
        met[:] = [r.met for r in results]
    else:
        results = each(lambda img: encode_at_quality(coder, img, int(quality)))
        q[:] = int(quality)
        if psnr_db is not None:
            met[:] = [r.psnr_db >= psnr_db for r in results]
    if not spec.lossless:
        streams = [r.stream for r in results]
        t_flops = np.array([r.flops for r in results], dtype=np.float64)
    a_flops = np.array([decode_flops(coder, st, samples) for st in streams], dtype=np.float64)
    if container == "none":
        bits = [payload.item_bits(coder, b, shape, None if np.isnan(qi) else int(qi)) for b, qi in zip(streams, q)]
    else:
        bits = [bytes_to_bits(b) for b in streams]
    return ClassicalStreams(coder, bits, q, met, t_flops, a_flops, container)


#: Bump when the coding of :func:`encode_classical` or the cached file's layout changes.
STREAMS_VERSION = "semsim-classical-streams/4"


def _codec_versions() -> str:
    from importlib.metadata import version

    import imagecodecs
    import pillow_heif

    return (f"imagecodecs {imagecodecs.__version__}; pillow-heif {pillow_heif.__version__} "
            f"(libheif {pillow_heif.libheif_version()}); pillow {version('pillow')}")


def _costs() -> str:
    """Every registered coder's cost (:attr:`~simulator.classical.source_coding.Coder.cost`):
    the cached FLOP-equivalents follow a remeasured table."""
    return repr(sorted((name, CODERS.get(name).cost) for name in CODERS.names()))


def cached_classical(images: np.ndarray, coder: str, quality: str | int, psnr_db: float | None, ctx: RunContext, *,
                     on_item: Callable[[int, int], None] | None = None, container: str = "file",
                     budget_bits: int | None = None, mosaic: int = 1, search: str = "scan") -> ClassicalStreams:
    """:func:`encode_classical`, kept on disk: a sweep whose points code the same items the same
    way (the SNR and the channel do not change a codec's streams) codes them once.

    ``ctx``: the :class:`~simulator.context.RunContext` whose cache holds the file
    (``<cache_dir>/classical/``). The key hashes the items, every argument that changes the streams, the
    codec libraries' versions, the coders' costs and :data:`STREAMS_VERSION` (:mod:`simulator.model_cache`: a
    corrupt or foreign file is refused with its name, never silently used)."""
    import torch

    from .. import model_cache

    searched = quality in ("target", "budget") and not CODERS.get(coder).lossless  # the codings ``search`` changes
    key = model_cache.digest(STREAMS_VERSION, _codec_versions(), _costs(), coder, quality,
                             None if psnr_db is None else float(psnr_db), container, budget_bits, mosaic,
                             search if searched else None, images)

    def rebuild(payload: dict) -> ClassicalStreams:
        return ClassicalStreams(payload["coder"], model_cache.unpack_ragged(payload["bits"]),
                                payload["quality"].numpy().copy(), payload["met"].numpy().copy(),
                                payload["teacher_flops"].numpy().copy(), payload["apprentice_flops"].numpy().copy(),
                                payload["container"], int(payload["mosaic"]))

    def code():
        s = encode_classical(images, coder, quality, psnr_db, on_item=on_item, container=container,
                             budget_bits=budget_bits, mosaic=mosaic, search=search)
        return s, {"coder": s.coder, "container": s.container, "mosaic": s.mosaic,
                   "bits": model_cache.pack_ragged(s.bits, np.uint8),
                   "quality": torch.from_numpy(s.quality.astype(np.float64)),
                   "met": torch.from_numpy(s.met.astype(bool)),
                   "teacher_flops": torch.from_numpy(s.teacher_flops.astype(np.float64)),
                   "apprentice_flops": torch.from_numpy(s.apprentice_flops.astype(np.float64))}

    streams, _ = model_cache.load_or_train(ctx.cache_path("classical", f"{key[:32]}.pt"), key, STREAMS_VERSION,
                                           "classical streams", rebuild, code)
    return streams


__all__ = ["ClassicalStreams", "encode_classical", "cached_classical", "classical_file", "CONTAINERS",
           "STREAMS_VERSION"]

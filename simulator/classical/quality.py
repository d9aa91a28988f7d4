"""Encoding one image at a fixed codec quality or at the shortest stream that meets a PSNR target.

PSNR is :func:`simulator.metrics.psnr_db`: in dB, over all pixels and channels of the
``(H, W, C)`` uint8 image on the 0..255 scale, ``inf`` when the decode equals the original.

**The search** (:func:`encode_to_target`). Neither stream length nor PSNR is monotone in the
quality of these codecs on small images (measured on CIFAR-10: a PSNR drop from one quality
to the next occurs several times per image and curve; and JPEG re-encoding of JPEG sources
reaches a PSNR spike at the source's own quality), so the default search (``search =
"scan"``) is not a binary search; ``search = "bisect"`` is one, cheaper and not always the
shortest (:func:`encode_to_target`). The scan:

- an **exhaustive scan** of every quality for codecs that are cheap to run (``jpeg``,
  about 30 microseconds per encode of a 32x32 image) and for any lossy coder not listed in
  :data:`SEARCH_GRIDS` (a user-registered one);
- an exhaustive scan for every codec on images of at most :data:`SMALL_IMAGE_PIXELS` pixels
  (16x16; e.g. the 8x8 digits), whose quality curves are the most erratic;
- otherwise, for ``webp``, ``avif`` and ``heif``, a **coarse grid then refinement**
  (:data:`SEARCH_GRIDS`): every ``step``-th quality from the lowest (and the highest), then
  every quality within ``window - 1`` of the lowest grid quality that meets the target (if
  none does: of the highest). About 30 to 38 encodes instead of 101.

Among all qualities evaluated, the answer is the shortest stream that meets the target; ties
go to the higher PSNR, then to the lower quality. That is exactly the rule of a brute-force
scan, and on 100 CIFAR-10 test images x 121 targets (20 to 50 dB in 0.25 dB steps) the grid
search returned a stream as short as the brute force's in every case (docs/codecs.md);
``tests/test_codecs.py`` checks it against the brute force on digits and synthetic images.
When no evaluated quality meets the target, the result is the highest quality with
``met = False``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..metrics import psnr_db
from ..registry import CODERS
from . import codecs  # noqa: F401  (registers the codecs)
from .source_coding import Coder, check_quality

#: ``codec -> (step, window)`` of the coarse-then-refine search; codecs not listed are
#: scanned exhaustively.
SEARCH_GRIDS: dict[str, tuple[int, int]] = {"webp": (10, 15), "avif": (8, 16), "heif": (10, 15)}

#: Images of at most this many pixels (H x W) are scanned exhaustively by every codec: there
#: the container and side information dominate the stream and PSNR jumps erratically with the
#: quality (AVIF on an 8x8 digit: 31 dB at quality 22, 26 dB at 24), and each encode is cheap.
SMALL_IMAGE_PIXELS = 256


@dataclass(frozen=True)
class TargetResult:
    """One encoded image.

    Attributes:
        stream: the codec's bytes (headers included), as ``Coder.decode`` takes them.
        quality: the codec quality used (an int in the codec's ``qualities``); ``None`` for a
            lossless coder.
        psnr_db: PSNR in dB of the decode against the original (``inf`` when identical).
        met: :func:`encode_to_target`: ``psnr_db >=`` the target; :func:`encode_at_quality`
            (no target): True.
        encodes: how many encodes the search ran.
        flops: FLOP-equivalents of every encode and decode the coding ran (the teacher's
            compute, :mod:`simulator.flops`): a search's every encode and its decodes for the
            PSNR check; a lossless coder or a fixed quality: one encode.
    """

    stream: bytes
    quality: int | None
    psnr_db: float
    met: bool
    encodes: int = 1
    flops: float = 0.0

    @property
    def bits(self) -> int:
        """Length of :attr:`stream` in bits."""
        return 8 * len(self.stream)


def _coder(coder_name: str) -> Coder:
    return CODERS.get(coder_name)  # ValueError listing the registered names


def encode_flops(coder_name: str, samples: int, encodes: int = 1, decodes: int = 0) -> float:
    """FLOP-equivalents of ``encodes`` encodes and ``decodes`` decodes of an item of ``samples``
    (``H * W * C``) by ``coder_name`` (its :attr:`~simulator.classical.source_coding.Coder.cost`;
    0 for a coder registered without one)."""
    cost = _coder(coder_name).cost
    if cost is None:
        return 0.0
    return cost.encode(samples, encodes) + cost.decode(samples, decodes)


def decode_flops(coder_name: str, stream: bytes, samples: int) -> float:
    """FLOP-equivalents of the receiver's decode of ``stream`` (an item of ``samples``): for
    ``best`` and ``best-lossless`` the member its tag names; 0 for an empty stream (not sent)."""
    from .codecs import best_lossless_tag, best_tag

    if not stream:
        return 0.0
    if coder_name in ("best", "best-lossless"):
        member = best_tag(stream) if coder_name == "best" else best_lossless_tag(stream)
        return decode_flops(member, stream[1:], samples)
    cost = _coder(coder_name).cost
    return 0.0 if cost is None else cost.decode(samples)


def _image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"expected an (H, W, C) uint8 image with C = 1 or 3, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def _decode_psnr(coder: Coder, stream: bytes, image: np.ndarray) -> float:
    raw = coder.decode(stream, image.shape)
    if len(raw) != image.size:
        raise ValueError(f"decoded {len(raw)} bytes, expected {image.size}")
    return psnr_db(image, np.frombuffer(raw, dtype=np.uint8).reshape(image.shape))


def encode_at_quality(coder_name: str, image: np.ndarray, quality: int | None) -> TargetResult:
    """Encode ``image`` (``(H, W, C)`` uint8, C = 1 or 3) with ``coder_name`` at ``quality``.

    A lossless coder takes ``quality=None``. ``met`` is True (there is no target); ``psnr_db``
    is measured on the decode.

    Raises:
        ValueError: see :func:`check_quality`; or an image that is not ``(H, W, 1|3)`` uint8.
    """
    q = check_quality(coder_name, quality)
    coder = _coder(coder_name)
    image = _image(image)
    stream = coder.encode(image) if q is None else coder.encode_at(image, q)
    return TargetResult(stream, q, _decode_psnr(coder, stream, image), True, 1, encode_flops(coder_name, image.size))


#: ``classical.search``: how the target search visits a lossy codec's qualities.
SEARCHES = ("scan", "bisect")


def encode_to_target(coder_name: str, image: np.ndarray, psnr_db: float, search: str = "scan") -> TargetResult:
    """The ``coder_name`` stream of ``image`` whose decode has PSNR >= ``psnr_db`` (dB): with
    ``search = "scan"`` the shortest such stream (module docstring); with ``"bisect"`` the lowest
    quality that meets the target found by bisection, as if PSNR rose with the quality: the
    highest quality, then about log2(number of qualities) more, each encoded and decoded once
    (8 for a 0..100 codec). The bisection's answer always meets the target when the highest
    quality does, but it may be longer than the scan's (docs/codecs.md measures by how much).

    ``image``: ``(H, W, C)`` uint8, C = 1 or 3. If no quality meets the target the result is the
    highest quality with ``met=False``. A lossless coder returns its only stream,
    ``quality=None``, ``psnr_db=inf`` and ``met=True``.

    Raises:
        ValueError: an unknown coder (lists the registered names) or search, a target that is
            not a finite number or an image of the wrong shape or dtype.
    """
    coder = _coder(coder_name)
    image = _image(image)
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {', '.join(SEARCHES)} (got {search!r})")
    if coder_name == "best":
        return best_to_target(image, psnr_db, search=search)
    if isinstance(psnr_db, bool) or not isinstance(psnr_db, (int, float, np.floating, np.integer)) \
            or not math.isfinite(psnr_db):
        raise ValueError(f"the PSNR target must be a finite number of dB (got {psnr_db!r})")
    target = float(psnr_db)
    if coder.lossless or coder.encode_at is None:
        stream = coder.encode(image)
        p = _decode_psnr(coder, stream, image)  # a lossless coder's is not charged: it is exact
        return TargetResult(stream, None, p, p >= target, 1, encode_flops(coder_name, image.size))

    lo, hi = coder.qualities
    psnr = _PsnrMemo(coder_name, image)
    if search == "bisect":
        return _bisect(coder, image, target, psnr)

    def centre(tried: dict[int, bytes]) -> int:  # the lowest coarse quality meeting the target
        meeting = [q for q in sorted(tried) if psnr(q, tried[q]) >= target]
        return meeting[0] if meeting else hi

    tried = _visit(coder, coder_name, image, centre)
    ok = [q for q, st in tried.items() if psnr(q, st) >= target]
    flops = psnr.flops(len(tried))
    if not ok:
        return TargetResult(tried[hi], hi, psnr(hi, tried[hi]), False, len(tried), flops)
    best = min(ok, key=lambda q: (len(tried[q]), -psnr(q, tried[q]), q))
    return TargetResult(tried[best], best, psnr(best, tried[best]), True, len(tried), flops)


def _bisect(coder: Coder, image: np.ndarray, target: float, psnr: "_PsnrMemo") -> TargetResult:
    """:func:`encode_to_target` with ``search = "bisect"``: ``b`` is always a quality whose
    decode was seen to meet the target (at first the highest), ``a`` the lowest still possible."""
    lo, hi = coder.qualities
    tried: dict[int, bytes] = {hi: coder.encode_at(image, hi)}

    def meets(q: int) -> bool:
        if q not in tried:
            tried[q] = coder.encode_at(image, q)
        return psnr(q, tried[q]) >= target

    if not meets(hi):
        return TargetResult(tried[hi], hi, psnr(hi, tried[hi]), False, len(tried),
                            psnr.flops(len(tried)))
    a, b = lo, hi
    while a < b:
        m = (a + b) // 2
        if meets(m):
            b = m
        else:
            a = m + 1
    return TargetResult(tried[b], b, psnr(b, tried[b]), True, len(tried),
                        psnr.flops(len(tried)))


class _PsnrMemo:
    """``psnr(quality, stream)``: the decode's PSNR (dB) against ``image``, decoded once per
    quality; ``flops(encodes)``: the search's cost, those encodes and the decodes run so far."""

    def __init__(self, coder_name: str, image: np.ndarray):
        self.name, self.coder, self.image, self.done = coder_name, _coder(coder_name), image, {}

    def __call__(self, q: int, stream: bytes) -> float:
        if q not in self.done:
            self.done[q] = _decode_psnr(self.coder, stream, self.image)
        return self.done[q]

    def flops(self, encodes: int) -> float:
        return encode_flops(self.name, self.image.size, encodes, len(self.done))


def _visit(coder: Coder, coder_name: str, image: np.ndarray,
           centre_of: Callable[[dict[int, bytes]], int]) -> dict[int, bytes]:
    """``quality -> stream`` at every quality the search visits (module doc): all of them when
    the scan is exhaustive, else the coarse grid, then the window around
    ``centre_of(coarse streams)``."""
    lo, hi = coder.qualities
    tried: dict[int, bytes] = {}

    def run(q: int) -> None:
        if q not in tried:
            tried[q] = coder.encode_at(image, q)

    grid = SEARCH_GRIDS.get(coder_name)
    if grid is None or image.shape[0] * image.shape[1] <= SMALL_IMAGE_PIXELS:
        for q in range(lo, hi + 1):
            run(q)
        return tried
    _, window = grid
    for q in coarse_grid(coder_name):
        run(q)
    centre = centre_of(tried)
    for q in range(max(lo, centre - window + 1), min(hi, centre + window - 1) + 1):
        run(q)
    return tried


def coarse_grid(coder_name: str) -> list[int]:
    """Every ``step``-th quality of the codec's range from the lowest, and the highest
    (``step`` of :data:`SEARCH_GRIDS`, else 10): the scan's coarse grid, and the qualities a
    budget's bisection tries when the lowest quality does not fit."""
    lo, hi = _coder(coder_name).qualities
    step = SEARCH_GRIDS.get(coder_name, (10, 0))[0]
    return sorted(set(range(lo, hi + 1, step)) | {hi})


def encode_to_budget(coder_name: str, image: np.ndarray, max_bits: int,
                     size: Callable[[bytes, int | None], int] | None = None, search: str = "scan") -> TargetResult:
    """The ``coder_name`` stream of ``image`` of highest PSNR whose link bits fit ``max_bits``
    (a bandwidth budget, :mod:`simulator.link.budget`).

    ``size(stream, quality)``: the bits the link carries for a stream (default ``8 * len``).
    With ``search = "scan"`` a lossy codec visits the qualities as :func:`encode_to_target`
    does, the refinement window centred on the highest coarse quality that fits (none: the
    lowest); among the visited ones that fit, the highest PSNR wins (ties: fewer bits, then the
    lower quality). With ``"bisect"`` it takes the highest quality that fits, found by
    bisection as if the bits rose with the quality (the lowest and the highest quality, then
    about log2(number of qualities) more, each encoded once; only the answer is decoded); when
    the lowest quality does not fit, every quality of :func:`coarse_grid` is tried and the
    bisection runs from the highest that fits to the next one of the grid. The answer fits, and
    the quality above it does not. A lossless coder's only stream fits or not. When nothing
    fits: an empty stream, ``quality = None``, ``psnr_db = NaN``, ``met = False`` (the item is
    not sent).
    """
    coder = _coder(coder_name)
    image = _image(image)
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {', '.join(SEARCHES)} (got {search!r})")
    if coder_name == "best":  # a member-aware size goes to best_to_budget itself
        if size is not None:
            raise ValueError("best: give best_to_budget a size(member, stream, quality)")
        return best_to_budget(image, max_bits, search=search)
    size = size or (lambda stream, q: 8 * len(stream))
    if coder.lossless or coder.encode_at is None:
        stream = coder.encode(image)
        flops = encode_flops(coder_name, image.size)
        if size(stream, None) > max_bits:
            return TargetResult(b"", None, float("nan"), False, 1, flops)
        return TargetResult(stream, None, _decode_psnr(coder, stream, image), True, 1, flops)
    lo, hi = coder.qualities
    bits: dict[int, int] = {}
    psnr = _PsnrMemo(coder_name, image)

    def fits(q: int, stream: bytes) -> bool:
        if q not in bits:
            bits[q] = size(stream, q)
        return bits[q] <= max_bits

    if search == "bisect":
        seen: dict[int, bytes] = {}

        def fits_at(q: int) -> bool:
            if q not in seen:
                seen[q] = coder.encode_at(image, q)
            return fits(q, seen[q])

        if fits_at(lo):
            a, b = (hi, hi) if fits_at(hi) else (lo, hi)  # a fits, b = a or does not fit
        else:  # the bits need not rise with the quality: look for a higher one that fits
            grid = coarse_grid(coder_name)
            ok = [q for q in grid if fits_at(q)]
            if not ok:
                return TargetResult(b"", None, float("nan"), False, len(seen), psnr.flops(len(seen)))
            a = max(ok)
            b = next((q for q in grid if q > a), a)
        while a < b - 1:
            m = (a + b) // 2
            a, b = (m, b) if fits_at(m) else (a, m)
        return TargetResult(seen[a], a, psnr(a, seen[a]), True, len(seen), psnr.flops(len(seen)))

    def centre(tried: dict[int, bytes]) -> int:  # the highest coarse quality that fits
        ok = [q for q in sorted(tried) if fits(q, tried[q])]
        return ok[-1] if ok else lo

    tried = _visit(coder, coder_name, image, centre)
    ok = [q for q, st in tried.items() if fits(q, st)]  # only these are decoded
    if not ok:
        return TargetResult(b"", None, float("nan"), False, len(tried), encode_flops(coder_name, image.size, len(tried)))
    best = min(ok, key=lambda q: (-psnr(q, tried[q]), bits[q], q))
    return TargetResult(tried[best], best, psnr(best, tried[best]), True, len(tried),
                        psnr.flops(len(tried)))


def best_to_budget(image: np.ndarray, max_bits: int, size: Callable[[str, bytes, int | None], int] | None = None,
                   search: str = "scan") -> TargetResult:
    """The ``best`` coder at a budget: per item the member stream of highest PSNR among each
    member's :func:`encode_to_budget` at ``max_bits`` less the 8-bit tag (its ``search``),
    prefixed by the tag (``size(member, stream, quality)``: as in :func:`best_to_target`; ties:
    the lower tag, so a ``best-lossless`` stream that fits wins and the lossy members are not
    run). Nothing fits: an empty stream with ``met = False``."""
    from .codecs import BEST_MEMBERS

    size = size or (lambda member, stream, q: 8 * len(stream))
    best = None
    tried, flops = 0, 0.0
    for tag, member in enumerate(BEST_MEMBERS):
        r = encode_to_budget(member, image, max_bits - 8, lambda st, q, m=member: size(m, st, q), search)
        tried, flops = tried + r.encodes, flops + r.flops
        if r.met and (best is None or r.psnr_db > best[1].psnr_db):
            best = (tag, r)
        if best is not None and best[1].psnr_db == float("inf"):
            break  # exact: nothing decodes better
    if best is None:
        return TargetResult(b"", None, float("nan"), False, tried, flops)
    tag, r = best
    return TargetResult(bytes([tag]) + r.stream, r.quality, r.psnr_db, True, tried, flops)


def best_to_target(image: np.ndarray, psnr_db: float, size: Callable[[str, bytes, int | None], int] | None = None,
                   search: str = "scan") -> TargetResult:
    """The ``best`` coder: per item the shortest of each lossy codec's stream at the target
    (:func:`encode_to_target`; only those that meet it) and the ``best-lossless`` stream,
    prefixed by its 1-byte tag (:data:`~simulator.classical.codecs.BEST_MEMBERS`); ``search``:
    each member's, as :func:`encode_to_target`'s.

    ``size(member, stream, quality)``: the bits the link would carry for a member's stream
    (default: the whole file, ``8 * len``); the choice minimizes it (ties: the lower tag).
    ``quality`` of the result is the member's (``None`` for best-lossless); ``encodes`` counts
    every encode of every member and ``flops`` their cost with their decodes (the search's).
    """
    from .codecs import BEST_MEMBERS

    size = size or (lambda member, stream, q: 8 * len(stream))
    best = None
    tried, flops = 0, 0.0
    for tag, member in enumerate(BEST_MEMBERS):
        r = encode_to_target(member, image, psnr_db, search)
        tried, flops = tried + r.encodes, flops + r.flops
        if not r.met:
            continue
        bits = size(member, r.stream, r.quality)
        if best is None or bits < best[0]:
            best = (bits, tag, r)
    _, tag, r = best  # best-lossless always meets the target
    return TargetResult(bytes([tag]) + r.stream, r.quality, r.psnr_db, True, tried, flops)

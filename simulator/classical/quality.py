"""Encoding one image at a fixed codec quality or at the shortest stream that meets a PSNR target.

PSNR is :func:`simulator.metrics.psnr_db`: in dB, over all pixels and channels of the
``(H, W, C)`` uint8 image on the 0..255 scale, ``inf`` when the decode equals the original.

**The search** (:func:`encode_to_target`). Neither stream length nor PSNR is monotone in the
quality of these codecs on small images (measured on CIFAR-10: a PSNR drop from one quality
to the next occurs several times per image and curve; and JPEG re-encoding of JPEG sources
reaches a PSNR spike at the source's own quality), so a binary search is not used. Instead:

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
    """

    stream: bytes
    quality: int | None
    psnr_db: float
    met: bool
    encodes: int = 1

    @property
    def bits(self) -> int:
        """Length of :attr:`stream` in bits."""
        return 8 * len(self.stream)


def _coder(coder_name: str) -> Coder:
    return CODERS.get(coder_name)  # ValueError listing the registered names


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
    return TargetResult(stream, q, _decode_psnr(coder, stream, image), True, 1)


def encode_to_target(coder_name: str, image: np.ndarray, psnr_db: float) -> TargetResult:
    """The shortest ``coder_name`` stream of ``image`` whose decode has PSNR >= ``psnr_db`` (dB).

    ``image``: ``(H, W, C)`` uint8, C = 1 or 3. A lossy codec searches its quality range
    (module docstring); if no quality meets the target the result is the highest quality with
    ``met=False``. A lossless coder returns its only stream, ``quality=None``, ``psnr_db=inf``
    and ``met=True``.

    Raises:
        ValueError: an unknown coder (lists the registered names), a target that is not a
            finite number or an image of the wrong shape or dtype.
    """
    coder = _coder(coder_name)
    image = _image(image)
    if coder_name == "best":
        return best_to_target(image, psnr_db)
    if isinstance(psnr_db, bool) or not isinstance(psnr_db, (int, float, np.floating, np.integer)) \
            or not math.isfinite(psnr_db):
        raise ValueError(f"the PSNR target must be a finite number of dB (got {psnr_db!r})")
    target = float(psnr_db)
    if coder.lossless or coder.encode_at is None:
        stream = coder.encode(image)
        p = _decode_psnr(coder, stream, image)
        return TargetResult(stream, None, p, p >= target, 1)

    lo, hi = coder.qualities
    tried: dict[int, tuple[bytes, float]] = {}

    def run(q: int) -> None:
        if q not in tried:
            stream = coder.encode_at(image, q)
            tried[q] = (stream, _decode_psnr(coder, stream, image))

    grid = SEARCH_GRIDS.get(coder_name)
    if grid is None or image.shape[0] * image.shape[1] <= SMALL_IMAGE_PIXELS:
        for q in range(lo, hi + 1):
            run(q)
    else:
        step, window = grid
        coarse = sorted(set(range(lo, hi + 1, step)) | {hi})
        for q in coarse:
            run(q)
        meeting = [q for q in coarse if tried[q][1] >= target]
        centre = meeting[0] if meeting else hi
        for q in range(max(lo, centre - window + 1), min(hi, centre + window - 1) + 1):
            run(q)

    ok = [q for q, (_, p) in tried.items() if p >= target]
    if not ok:
        stream, p = tried[hi]
        return TargetResult(stream, hi, p, False, len(tried))
    best = min(ok, key=lambda q: (len(tried[q][0]), -tried[q][1], q))
    stream, p = tried[best]
    return TargetResult(stream, best, p, True, len(tried))


def best_to_target(image: np.ndarray, psnr_db: float, size: Callable[[str, bytes, int | None], int] | None = None
                   ) -> TargetResult:
    """The ``best`` coder: per item the shortest of each lossy codec's stream at the target
    (:func:`encode_to_target`; only those that meet it) and the ``best-lossless`` stream,
    prefixed by its 1-byte tag (:data:`~simulator.classical.codecs.BEST_MEMBERS`).

    ``size(member, stream, quality)``: the bits the link would carry for a member's stream
    (default: the whole file, ``8 * len``); the choice minimizes it (ties: the lower tag).
    ``quality`` of the result is the member's (``None`` for best-lossless); ``encodes`` counts
    every encode of every member (the search's cost).
    """
    from .codecs import BEST_MEMBERS

    size = size or (lambda member, stream, q: 8 * len(stream))
    best = None
    tried = 0
    for tag, member in enumerate(BEST_MEMBERS):
        r = encode_to_target(member, image, psnr_db)
        tried += r.encodes
        if not r.met:
            continue
        bits = size(member, r.stream, r.quality)
        if best is None or bits < best[0]:
            best = (bits, tag, r)
    _, tag, r = best  # best-lossless always meets the target
    return TargetResult(bytes([tag]) + r.stream, r.quality, r.psnr_db, True, tried)

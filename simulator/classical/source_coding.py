"""Classical source coders, registered in :data:`~simulator.registry.CODERS`: ``raw`` (8 bit/pixel),
``png`` (lossless) and ``zlib``.

Each coder maps one ``(H, W, C)`` uint8 image to bytes and back. ``png`` and ``zlib`` are
lossless and deterministic (fixed compression level); decoding a corrupted stream raises
:class:`CorruptStream`, which the apprentice counts as a failed reconstruction.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

from ..flops import CodecCost, codec_cost
from ..registry import CODERS


class CorruptStream(Exception):
    """The received bytes do not decode to an image of the expected shape."""


@dataclass(frozen=True)
class Coder:
    """A classical source coder.

    Attributes:
        encode: ``(H, W, C)`` uint8 image -> bytes (a lossy coder: at ``default_quality``).
        decode: ``(bytes, (H, W, C))`` -> the raw pixel bytes (``H * W * C`` of them).
        lossless: the decode is the original exactly.
        description: one line for docs and messages.
        encode_at: lossy coders: ``(image, quality) -> bytes`` at an integer quality.
        qualities: lossy coders: the valid ``(lowest, highest)`` quality, higher = better.
        default_quality: lossy coders: the quality of :attr:`encode`.
        cost: FLOP-equivalents of one encode and one decode (:mod:`simulator.flops`, units:
            samples ``H * W * C``), measured by ``benchmarks/measure_op_costs.py``; ``None``
            (a coder registered without one, or ``best``, whose cost is its members'): not charged.
    """

    encode: Callable[[np.ndarray], bytes]
    decode: Callable[[bytes, tuple[int, int, int]], bytes]
    lossless: bool = True
    description: str = ""
    encode_at: Callable[[np.ndarray, int], bytes] | None = None
    qualities: tuple[int, int] | None = None
    default_quality: int | None = None
    cost: CodecCost | None = None


def _png_encode(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image, mode="L" if image.shape[-1] == 1 else "RGB")
    pil.save(buf, format="PNG", optimize=False, compress_level=9)
    return buf.getvalue()


def _png_decode(data: bytes, shape) -> bytes:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im, dtype=np.uint8).tobytes()


# costs: benchmarks/measure_op_costs.py on the reference machine (simulator.flops)
CODERS.register("raw", Coder(lambda img: img.tobytes(), lambda data, shape: data,
                             description="8 bits per pixel and channel, no compression",
                             cost=codec_cost(encode=(1.69e4, 0.825), decode=(1.14e4, 0))))
CODERS.register("png", Coder(_png_encode, _png_decode, description="PNG (lossless, compression level 9)",
                             cost=codec_cost(encode=(2.42e6, 3.6e3), decode=(3.74e6, 943))))
CODERS.register("zlib", Coder(lambda img: zlib.compress(img.tobytes(), 9), lambda data, shape: zlib.decompress(data),
                              description="zlib (DEFLATE level 9) of the raw pixels",
                              cost=codec_cost(encode=(2.68e5, 1.37e3), decode=(2.77e4, 457))))


def quality_in_range(name: str, quality, qualities: tuple[int, int]) -> int:
    """``quality`` as an int if it is an integer in ``qualities = (lo, hi)`` of codec ``name``;
    else ``ValueError`` naming the codec and its range. The one check of a codec quality."""
    lo, hi = qualities
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not lo <= quality <= hi:
        raise ValueError(f"codec {name!r}: quality must be an integer in {lo}..{hi} (got {quality!r})")
    return int(quality)


def check_quality(coder_name: str, quality) -> int | None:
    """``quality`` as an int if valid for the registered coder (``None`` for a lossless one).

    Raises:
        ValueError: unknown coder (lists the registered names), a lossless coder given a
            quality, or a quality outside the codec's range (:func:`quality_in_range`).
    """
    coder = CODERS.get(coder_name)
    if coder.lossless or coder.encode_at is None:
        if quality is not None:
            raise ValueError(f"codec {coder_name!r} is lossless and takes no quality (got {quality!r})")
        return None
    return quality_in_range(coder_name, quality, coder.qualities)


def encode(image: np.ndarray, coder: str) -> bytes:
    """Encode one ``(H, W, C)`` uint8 image (C = 1 or 3) with the registered ``coder``."""
    return CODERS.get(coder).encode(np.ascontiguousarray(image, dtype=np.uint8))


def decode(data: bytes, coder: str, shape: tuple[int, int, int]) -> np.ndarray:
    """Decode bytes from :func:`encode` to a ``shape = (H, W, C)`` uint8 image.

    Raises:
        CorruptStream: the bytes do not decode, or not to ``shape``.
        ValueError: ``coder`` is not registered.
    """
    spec = CODERS.get(coder)
    try:
        raw = spec.decode(data, shape)
    except (OSError, zlib.error, SyntaxError, ValueError) as err:
        raise CorruptStream(str(err)) from None
    if len(raw) != int(np.prod(shape)):
        raise CorruptStream(f"decoded {len(raw)} bytes, expected {int(np.prod(shape))}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape).copy()

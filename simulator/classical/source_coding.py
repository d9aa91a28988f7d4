"""Classical source coders: ``raw`` (8 bit/pixel), ``png`` (lossless) and ``zlib``.

Each coder maps one ``(H, W, C)`` uint8 image to bytes and back. ``png`` and ``zlib`` are
lossless and deterministic (fixed compression level); decoding a corrupted stream raises
:class:`CorruptStream`, which the apprentice counts as a failed reconstruction.
"""

from __future__ import annotations

import io
import zlib

import numpy as np
from PIL import Image

CODERS = ("raw", "png", "zlib")


class CorruptStream(Exception):
    """The received bytes do not decode to an image of the expected shape."""


def encode(image: np.ndarray, coder: str) -> bytes:
    """Encode one ``(H, W, C)`` uint8 image (C = 1 or 3) with ``coder``."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if coder == "raw":
        return image.tobytes()
    if coder == "zlib":
        return zlib.compress(image.tobytes(), 9)
    if coder == "png":
        buf = io.BytesIO()
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image, mode="L" if image.shape[-1] == 1 else "RGB")
        pil.save(buf, format="PNG", optimize=False, compress_level=9)
        return buf.getvalue()
    raise ValueError(f"unknown coder {coder!r}; allowed: {', '.join(CODERS)}")


def decode(data: bytes, coder: str, shape: tuple[int, int, int]) -> np.ndarray:
    """Decode bytes from :func:`encode` to a ``shape = (H, W, C)`` uint8 image."""
    try:
        if coder == "raw":
            raw = data
        elif coder == "zlib":
            raw = zlib.decompress(data)
        elif coder == "png":
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                raw = np.asarray(im, dtype=np.uint8).tobytes()
        else:
            raise ValueError(f"unknown coder {coder!r}; allowed: {', '.join(CODERS)}")
    except (OSError, zlib.error, SyntaxError, ValueError) as err:
        if isinstance(err, ValueError) and "unknown coder" in str(err):
            raise
        raise CorruptStream(str(err)) from None
    if len(raw) != int(np.prod(shape)):
        raise CorruptStream(f"decoded {len(raw)} bytes, expected {int(np.prod(shape))}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape).copy()

"""Image codecs from well-kept libraries, registered in :data:`~simulator.registry.CODERS`.

Lossy (``Coder(lossless=False)``, integer quality, higher = better; docs/codecs.md):

- ``jpeg``: baseline JPEG by libjpeg-turbo (``imagecodecs.jpeg8``), optimized Huffman tables,
  4:4:4 (no chroma subsampling) for RGB, one component for grey; quality 1..100, default 75.
- ``webp``: lossy WebP (VP8 intra) by libwebp, ``method=6`` (slowest, smallest); 4:2:0 is
  fixed by the format; grey images are sent as R = G = B; quality 0..100, default 75.
- ``avif``: AVIF (AV1 intra) by libavif + libaom, speed 6, one thread, 4:4:4 for RGB and
  4:0:0 (luma only) for grey; quality 0..100 (100 is lossless), default 60.
- ``heif``: HEIF (HEVC intra, the codec inside BPG) by libheif + x265 (``pillow_heif``),
  x265 preset ``slow``, one frame thread, 4:4:4 for RGB, monochrome for grey, no ``nclx``
  colour box; quality 0..100, default 50.

Why 4:4:4 where the format allows it: with 4:2:0, JPEG and HEIF cannot reach high PSNR
targets on saturated colour edges at any quality (on CIFAR-10 at 45 dB: JPEG 4:2:0 95 % of
images, HEIF 4:2:0 40 %, both 100 % with 4:4:4), while 4:4:4 costs under 1 % more bits at
30 dB (measured on 100 CIFAR-10 test images; docs/codecs.md). WebP lossy is 4:2:0 by format.

Lossless (``Coder(lossless=True)``):

- ``webp-lossless``: WebP lossless (VP8L), ``method=4``; grey as R = G = B.
- ``jpegxl-lossless``: JPEG XL lossless (libjxl), effort 7, one thread, bare codestream.
- ``brotli``: Brotli (quality 11) of the raw pixel bytes.
- ``best-lossless``: per image the shortest of :data:`BEST_LOSSLESS_MEMBERS`; the stream is a
  1-byte tag (the member's index in that tuple) followed by the member's stream.

Every stream is the library's own bytes, container and headers included. Each encoder takes
an ``(H, W, C)`` uint8 image, C = 1 (grey) or 3 (RGB); each decoder returns the raw pixel
bytes of ``(H, W, C)`` and raises ``ValueError`` (which
:func:`simulator.classical.source_coding.decode` turns into ``CorruptStream``) for a stream
that does not decode to that shape. All encoders are deterministic: fixed settings, one
encoder thread.
"""

from __future__ import annotations

import io
from functools import partial
from typing import Callable

import imagecodecs
import numpy as np
import pillow_heif

from ..flops import CodecCost, OpCost, codec_cost
from ..registry import CODERS
from .source_coding import Coder, quality_in_range

JPEG_SUBSAMPLING = "444"
WEBP_LOSSY_METHOD = 6
AVIF_SPEED = 6
AVIF_PIXELFORMAT_RGB = "yuv444"
HEIF_CHROMA_RGB = "444"
HEIF_ENC_PARAMS = {"preset": "slow", "x265:frame-threads": "1"}
WEBP_LOSSLESS_METHOD = 4
JPEGXL_EFFORT = 7
BROTLI_LEVEL = 11

#: The members of ``best-lossless``; a member's index is its 1-byte tag. Append only: the tag
#: of an existing member never changes.
BEST_LOSSLESS_MEMBERS = ("raw", "zlib", "png", "webp-lossless", "jpegxl-lossless", "brotli")


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3) or 0 in image.shape:
        raise ValueError(f"expected an (H, W, C) uint8 image with C = 1 or 3, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def _grey(image: np.ndarray) -> np.ndarray:
    """``(H, W, 1)`` -> ``(H, W)``; RGB unchanged."""
    return image[..., 0] if image.shape[-1] == 1 else image


def _rgb(image: np.ndarray) -> np.ndarray:
    """Grey replicated to R = G = B (for codecs without a grey mode); RGB unchanged."""
    return np.ascontiguousarray(np.repeat(image, 3, axis=-1)) if image.shape[-1] == 1 else image


def _to_shape(decoded: np.ndarray, shape, name: str) -> bytes:
    """The decoder's array as the raw bytes of ``shape``; an RGB decode of a grey image is
    brought back to grey by the rounded mean of its channels."""
    h, w, c = (int(s) for s in shape)
    arr = np.asarray(decoded)
    if arr.dtype != np.uint8:
        raise ValueError(f"{name}: decoded dtype {arr.dtype}, expected uint8")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[:2] != (h, w):
        raise ValueError(f"{name}: decoded shape {arr.shape}, expected {(h, w, c)}")
    if arr.shape[-1] == 4:  # an alpha plane nobody asked for
        arr = arr[..., :3]
    if c == 1 and arr.shape[-1] == 3:
        arr = np.rint(arr.astype(np.float32).mean(axis=-1, keepdims=True)).astype(np.uint8)
    if arr.shape[-1] != c:
        raise ValueError(f"{name}: decoded {arr.shape[-1]} channels, expected {c}")
    return np.ascontiguousarray(arr).tobytes()


def _decoder(name: str, lib_decode: Callable[[bytes], np.ndarray]):
    """A ``decode(data, shape) -> bytes`` that raises ``ValueError`` for any failure."""

    def decode(data: bytes, shape) -> bytes:
        try:
            if not data:
                raise ValueError("empty stream")
            decoded = lib_decode(bytes(data))
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
        except Exception as err:  # the libraries' own error types (RuntimeError subclasses, ...)
            raise ValueError(f"{name}: {type(err).__name__}: {err}") from None
        return _to_shape(decoded, shape, name)

    return decode


# --- lossy encoders: (image, quality) -> bytes ---------------------------------------------

def _jpeg(image: np.ndarray, quality: int) -> bytes:
    image = _check_image(image)
    return bytes(imagecodecs.jpeg8_encode(_grey(image), level=quality, optimize=True,
                                          subsampling=JPEG_SUBSAMPLING if image.shape[-1] == 3 else None))


def _webp(image: np.ndarray, quality: int) -> bytes:
    image = _check_image(image)
    return bytes(imagecodecs.webp_encode(_rgb(image), level=quality, lossless=False, method=WEBP_LOSSY_METHOD,
                                         numthreads=1))


def _avif(image: np.ndarray, quality: int) -> bytes:
    image = _check_image(image)
    # imagecodecs encodes a 2-D (grey) array losslessly only, so grey goes in as R = G = B with
    # a luma-only (4:0:0) pixel format: the stream holds one plane and decodes to grey.
    pixelformat = "yuv400" if image.shape[-1] == 1 else AVIF_PIXELFORMAT_RGB
    return bytes(imagecodecs.avif_encode(_rgb(image), level=quality, speed=AVIF_SPEED, pixelformat=pixelformat,
                                         codec="aom", numthreads=1))


def _heif(image: np.ndarray, quality: int, chroma: str = HEIF_CHROMA_RGB) -> bytes:
    image = _check_image(image)
    grey = image.shape[-1] == 1
    heif = pillow_heif.from_bytes("L" if grey else "RGB", (image.shape[1], image.shape[0]), image.tobytes())
    buf = io.BytesIO()
    heif.save(buf, quality=quality, save_nclx_profile=False, **({} if grey else {"chroma": chroma}),
              enc_params=dict(HEIF_ENC_PARAMS))
    return buf.getvalue()


def _heif_decode(data: bytes) -> np.ndarray:
    heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
    return np.asarray(heif)


def _lossy(name: str, encode_at, decode, lo: int, hi: int, default: int, description: str,
           cost: CodecCost) -> Coder:
    def at(image: np.ndarray, quality: int) -> bytes:
        return encode_at(image, quality_in_range(name, quality, (lo, hi)))

    return Coder(encode=partial(at, quality=default), decode=_decoder(name, decode), lossless=False,
                 description=description, encode_at=at, qualities=(lo, hi), default_quality=default, cost=cost)


# Each coder's cost (simulator.flops): FLOP-equivalents per call and per sample of an encode
# and a decode, measured by benchmarks/measure_op_costs.py on the reference machine (one core;
# 64 / 3072 / 12288-sample items, lossy coders averaged over qualities 10 to 90).
LOSSY = {
    "jpeg": _lossy("jpeg", _jpeg, imagecodecs.jpeg8_decode, 1, 100, 75,
                   f"JPEG (libjpeg-turbo), optimized Huffman, {JPEG_SUBSAMPLING[0]}:{JPEG_SUBSAMPLING[1]}:"
                   f"{JPEG_SUBSAMPLING[2]} chroma, quality 1..100",
                   codec_cost(encode=(4.3e5, 261), decode=(3.81e5, 129))),
    "webp": _lossy("webp", _webp, imagecodecs.webp_decode, 0, 100, 75,
                   f"WebP lossy (libwebp, VP8 intra, 4:2:0), method {WEBP_LOSSY_METHOD}, quality 0..100",
                   codec_cost(encode=(7.15e6, 8.71e3), decode=(1.21e6, 270))),
    "avif": _lossy("avif", _avif, imagecodecs.avif_decode, 0, 100, 60,
                   f"AVIF (libavif + libaom, AV1 intra, 4:4:4), speed {AVIF_SPEED}, quality 0..100",
                   codec_cost(encode=(4.2e7, 2.42e4), decode=(2.08e6, 532))),
    "heif": _lossy("heif", _heif, _heif_decode, 0, 100, 50,
                   f"HEIF (libheif + x265, HEVC intra as in BPG, {HEIF_CHROMA_RGB[0]}:{HEIF_CHROMA_RGB[1]}:"
                   f"{HEIF_CHROMA_RGB[2]}), preset slow, quality 0..100",
                   codec_cost(encode=(3.37e8, 4.15e4), decode=(2.47e7, 315))),
    "heif-420": _lossy("heif-420", partial(_heif, chroma="420"), _heif_decode, 0, 100, 50,
                       "HEIF with 4:2:0 chroma, BPG's default (bpgenc -f 420); otherwise as heif",
                       codec_cost(encode=(3.34e8, 3.32e4), decode=(2.51e7, 0))),
}


# --- lossless ------------------------------------------------------------------------------

def _webp_lossless(image: np.ndarray) -> bytes:
    image = _check_image(image)
    return bytes(imagecodecs.webp_encode(_rgb(image), level=100, lossless=True, method=WEBP_LOSSLESS_METHOD,
                                         numthreads=1))


def _jpegxl_lossless(image: np.ndarray) -> bytes:
    image = _check_image(image)
    return bytes(imagecodecs.jpegxl_encode(_grey(image), lossless=True, effort=JPEGXL_EFFORT, numthreads=1))


def _brotli(image: np.ndarray) -> bytes:
    return bytes(imagecodecs.brotli_encode(_check_image(image).tobytes(), level=BROTLI_LEVEL))


LOSSLESS = {
    "webp-lossless": Coder(_webp_lossless, _decoder("webp-lossless", imagecodecs.webp_decode),
                           description=f"WebP lossless (libwebp VP8L), method {WEBP_LOSSLESS_METHOD}",
                           cost=codec_cost(encode=(6.73e6, 2.79e4), decode=(2.15e6, 681))),
    "jpegxl-lossless": Coder(_jpegxl_lossless,
                             _decoder("jpegxl-lossless", partial(imagecodecs.jpegxl_decode, numthreads=1)),
                             description=f"JPEG XL lossless (libjxl), effort {JPEGXL_EFFORT}",
                             cost=codec_cost(encode=(7.79e6, 4.85e4), decode=(9.24e6, 4.98e3))),
    "brotli": Coder(_brotli, lambda data, shape: _brotli_decode(data),
                    description=f"Brotli (quality {BROTLI_LEVEL}) of the raw pixels",
                    cost=codec_cost(encode=(3.2e7, 1.09e5), decode=(3.49e5, 795))),
}


def _brotli_decode(data: bytes) -> bytes:
    try:
        return bytes(imagecodecs.brotli_decode(bytes(data)))
    except Exception as err:
        raise ValueError(f"brotli: {type(err).__name__}: {err}") from None


def best_lossless_encode(image: np.ndarray) -> bytes:
    """The shortest member stream, prefixed by its 1-byte tag (ties: the lowest tag)."""
    image = _check_image(image)
    best = None
    for tag, member in enumerate(BEST_LOSSLESS_MEMBERS):
        stream = CODERS.get(member).encode(image)
        if best is None or len(stream) < len(best) - 1:
            best = bytes([tag]) + stream
    return best


def best_lossless_tag(data: bytes) -> str:
    """The member that a ``best-lossless`` stream names in its first byte (ValueError if none)."""
    if not data:
        raise ValueError("best-lossless: empty stream")
    if data[0] >= len(BEST_LOSSLESS_MEMBERS):
        raise ValueError(f"best-lossless: unknown tag {data[0]} (allowed 0..{len(BEST_LOSSLESS_MEMBERS) - 1}: "
                         f"{', '.join(BEST_LOSSLESS_MEMBERS)})")
    return BEST_LOSSLESS_MEMBERS[data[0]]


def best_lossless_decode(data: bytes, shape) -> bytes:
    return CODERS.get(best_lossless_tag(data)).decode(bytes(data[1:]), shape)


#: The members of ``best``; a member's index is its 1-byte tag. Append only.
BEST_MEMBERS = ("best-lossless", "jpeg", "webp", "avif", "heif")


def best_tag(data: bytes) -> str:
    """The member that a ``best`` stream names in its first byte (ValueError if none)."""
    if not data:
        raise ValueError("best: empty stream")
    if data[0] >= len(BEST_MEMBERS):
        raise ValueError(f"best: unknown tag {data[0]} (allowed 0..{len(BEST_MEMBERS) - 1}: {', '.join(BEST_MEMBERS)})")
    return BEST_MEMBERS[data[0]]


def best_decode(data: bytes, shape) -> bytes:
    return CODERS.get(best_tag(data)).decode(bytes(data[1:]), shape)


def _best_needs_target(image: np.ndarray) -> bytes:
    raise ValueError("the 'best' coder codes each item to a PSNR target: use quality = \"target\"")


for _name, _coder in {**LOSSY, **LOSSLESS}.items():
    CODERS.register(_name, _coder)
CODERS.register("best-lossless", Coder(
    best_lossless_encode, best_lossless_decode,
    description="per image the shortest of " + ", ".join(BEST_LOSSLESS_MEMBERS) + " (1-byte tag first)",
    # every member encodes; a decode is the tagged member's (simulator.classical.quality.decode_flops)
    cost=CodecCost(OpCost(*(sum(getattr(CODERS.get(m).cost.encode, f) for m in BEST_LOSSLESS_MEMBERS)
                            for f in ("per_call", "per_unit"))), OpCost(0.0, 0.0))))
CODERS.register("best", Coder(
    _best_needs_target, best_decode, lossless=False,
    description="per item the shortest of the lossy codecs at the PSNR target and best-lossless (1-byte tag first)"))

"""simulator.classical.payload: the container-free payload of each codec's stream.

The independent check: from the payload alone, plus what the session configures (the shape,
the coder) and the minimal header (:data:`payload.MINIMAL_HEADER_BITS`), the test rebuilds the
original file with its own small writers and readers (written from the format
specifications, not with the module's parser) and requires it to be byte-identical to the
stream, and its decode identical to the stream's decode. JPEG, JPEG XL, AVIF and HEIF use a
reference file of *another* image of the same shape for what the session configures: at the
same quality for JPEG (the quality is the 7-bit header), at a fixed quality for HEIF (0 bits)
and AVIF (1 bit: lossless or not), so the test also proves that nothing else dropped depends
on the image or the quality.

The module's own receiver, :func:`payload.rebuild`, is held to the same bar at the end of the
file: byte-identical streams for every coder, and for a corrupted payload a ``ValueError``, a
decode, or a ``CorruptStream``, never a hang.
"""

from __future__ import annotations

import contextlib
import io
import signal
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import simulator.classical.codecs  # noqa: F401  (registers the codecs)
from simulator.classical import payload as P
from simulator.classical.codecs import BEST_LOSSLESS_MEMBERS
from simulator.classical.source_coding import Coder, CorruptStream, decode
from simulator.registry import CODERS
from simulator.sources import load_dataset

ALL = ["raw", "zlib", "png", "brotli", "jpeg", "webp", "avif", "heif", "heif-420", "webp-lossless",
       "jpegxl-lossless", "best-lossless"]


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_dataset("digits").images[:4]


def _synthetic(seed: int, shape=(32, 32, 3)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w, c = shape
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)), ((xx + yy) * 4) % 256][:c], -1)
    noise = rng.integers(-40, 41, size=shape)
    return np.clip(base + noise * (seed % 2), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def images(digits) -> list[np.ndarray]:
    """4 digits, 3 synthetic 32x32 RGB images, and two odd shapes (not multiples of 8)."""
    return [*digits, _synthetic(0), _synthetic(1), _synthetic(2), _synthetic(3, (5, 7, 3)), _synthetic(5, (13, 9, 1))]


def _other(image: np.ndarray) -> np.ndarray:
    """Another image of the same shape: the session's reference (seeded noise)."""
    return np.random.default_rng(99).integers(0, 256, size=image.shape, dtype=np.uint8)


def _decode(name: str, stream: bytes, shape) -> bytes:
    return CODERS.get(name).decode(stream, shape)


# --- small writers/readers, from the specifications ---------------------------------------------

def _riff_webp(fourcc: bytes, body: bytes) -> bytes:
    chunk = fourcc + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def rebuild_webp(payload: bytes, shape) -> bytes:
    """RIFF + VP8 chunk: frame tag (kept), start code and 14-bit sizes (from the shape), partitions."""
    h, w, _ = shape
    return _riff_webp(b"VP8 ", payload[:3] + b"\x9d\x01\x2a" + struct.pack("<HH", w, h) + payload[3:])


def rebuild_webp_lossless(payload: bytes, shape) -> bytes:
    h, w, _ = shape
    return _riff_webp(b"VP8L", b"\x2f" + struct.pack("<I", (w - 1) | (h - 1) << 14) + payload)


def _zlib_from_deflate(deflate: bytes) -> bytes:
    """The zlib stream of level 9 (header 78 DA) around raw DEFLATE data; the Adler-32 is
    recomputed from the inflated bytes, as a receiver would."""
    inflater = zlib.decompressobj(-15)
    raw = inflater.decompress(deflate)
    assert inflater.eof and not inflater.unused_data
    return b"\x78\xda" + deflate + struct.pack(">I", zlib.adler32(raw))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def rebuild_png(payload: bytes, shape) -> bytes:
    h, w, c = shape
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0 if c == 1 else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", _zlib_from_deflate(payload))
            + _png_chunk(b"IEND", b""))


def _jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, whole segment) from SOI up to and including SOS."""
    out, pos = [(0xD8, data[:2])], 2
    while True:
        marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2:pos + 4])[0]
        out.append((marker, data[pos:pos + 2 + length]))
        pos += 2 + length
        if marker == 0xDA:
            return out


def rebuild_jpeg(payload: bytes, reference: bytes, channels: int) -> bytes:
    """The reference's SOI/APP0/DQT/SOF and SOS (same quality and shape), one DHT segment per
    table of the payload (libjpeg: DC and AC per table set: 2 tables for grey, 4 for colour),
    then the payload's scan data and EOI."""
    tables, pos = [], 0
    for _ in range(2 if channels == 1 else 4):
        n = 17 + sum(payload[pos + 1:pos + 17])
        tables.append(payload[pos:pos + n])
        pos += n
    ref = _jpeg_segments(reference)
    head = b"".join(seg for marker, seg in ref if marker not in (0xC4, 0xDA))
    dht = b"".join(b"\xff\xc4" + struct.pack(">H", 2 + len(t)) + t for t in tables)
    sos = [seg for marker, seg in ref if marker == 0xDA][0]
    return head + dht + sos + payload[pos:] + b"\xff\xd9"


def _top_boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    out, pos = [], start
    while pos < end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        out.append((kind, pos, pos + size))
        pos += size
    return out


def _iloc_single_extent(data: bytes) -> tuple[int, int, int, int]:
    """(offset of the extent_length field, its size, extent offset, extent length) of the one
    item of a file with a single item and extent (what libavif/libheif write here)."""
    (meta,) = [b for b in _top_boxes(data, 0, len(data)) if b[0] == b"meta"]
    (iloc,) = [b for b in _top_boxes(data, meta[1] + 12, meta[2]) if b[0] == b"iloc"]
    p = iloc[1] + 8
    version = data[p]
    p += 4
    sizes = struct.unpack(">H", data[p:p + 2])[0]
    off_size, len_size, base_size = sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15
    p += 2
    count = struct.unpack(">H", data[p:p + 2])[0]
    assert count == 1 and version in (0, 1)
    p += 2 + 2 + (2 if version == 1 else 0) + 2  # item_count, item_ID, construction method, data_reference_index
    base = int.from_bytes(data[p:p + base_size], "big")
    p += base_size
    assert struct.unpack(">H", data[p:p + 2])[0] == 1
    p += 2
    offset = base + int.from_bytes(data[p:p + off_size], "big")
    p += off_size
    return p, len_size, offset, int.from_bytes(data[p:p + len_size], "big")


def _av1_obus(item: bytes) -> list[tuple[int, bytes]]:
    """(type, whole OBU) of a low-overhead AV1 bitstream; every OBU must have a size field."""
    out, p = [], 0
    while p < len(item):
        head = item[p]
        assert not head & 0x80 and head & 2, f"bad OBU header {head:#x}"
        q = p + 1 + ((head >> 2) & 1)
        size = shift = 0
        while True:
            size |= (item[q] & 0x7F) << shift
            shift += 7
            q += 1
            if not item[q - 1] & 0x80:
                break
        assert q + size <= len(item)
        out.append(((head >> 3) & 15, item[p:q + size]))
        p = q + size
    return out


def rebuild_isobmff(payload: bytes, reference: bytes, kind: str) -> bytes:
    """The reference file (another image of the same shape) with its item replaced: AVIF, the
    reference's temporal delimiter and sequence header OBUs + the payload's OBUs; HEIF, a
    4-byte NAL length + the payload's one NAL unit; the iloc extent length and mdat size
    patched."""
    field, len_size, offset, length = _iloc_single_extent(reference)
    mdat = [b for b in _top_boxes(reference, 0, len(reference)) if b[0] == b"mdat"][-1]
    assert mdat[2] == len(reference) and offset == mdat[1] + 8 and offset + length == len(reference)
    if kind == "avif":
        prefix = b"".join(obu for t, obu in _av1_obus(reference[offset:]) if t in (1, 2))
        item = prefix + payload
    else:
        item = struct.pack(">I", len(payload)) + payload
    head = bytearray(reference[:mdat[1]])
    head[field:field + len_size] = len(item).to_bytes(len_size, "big")
    return bytes(head) + struct.pack(">I", 8 + len(item)) + b"mdat" + item


def _check_payload_units(name: str, payload: bytes) -> None:
    """The payload is AV1 frame OBUs / one HEVC VCL NAL unit with valid headers."""
    if name == "avif":
        obus = _av1_obus(payload)
        assert obus and all(t in (3, 4, 6) for t, _ in obus), [t for t, _ in obus]
    else:
        assert not payload[0] & 0x80 and payload[1] & 7, payload[:2].hex()
        assert (payload[0] >> 1) & 63 < 32  # a VCL NAL unit (x265 intra: IDR)


# --- the tests -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_every_byte_is_accounted_for(name, images):
    for image in images:
        stream = CODERS.get(name).encode(image)
        segs = P.segments(name, stream, image.shape)
        assert segs[0].start == 0 and segs[-1].stop == len(stream)
        assert all(a.stop == b.start for a, b in zip(segs, segs[1:]))
        kept = sum(s.stop - s.start for s in segs if s.kept)
        dropped = sum(s.stop - s.start for s in segs if not s.kept)
        assert kept + dropped == len(stream)
        payload = P.payload_bytes(name, stream, image.shape)
        assert len(payload) == kept > 0
        assert P.payload_bits(name, stream, image.shape) == 8 * kept + P.header_bits(name)


def test_minimal_header_bits():
    assert {n: P.header_bits(n) for n in ALL} == {
        "raw": 0, "zlib": 0, "png": 0, "brotli": 0, "jpeg": 7, "webp": 0, "avif": 1, "heif": 0,
        "heif-420": 0, "webp-lossless": 0, "jpegxl-lossless": 0, "best-lossless": 0}
    with pytest.raises(ValueError, match="unknown classical coder"):
        P.header_bits("no-such-coder")


@pytest.mark.parametrize("quality", [1, 10, 50, 75, 95, 100])
def test_jpeg_rebuilds_from_quality_tables_and_payload(quality, images):
    coder = CODERS.get("jpeg")
    for image in images:
        stream = coder.encode_at(image, quality)
        payload = P.payload_bytes("jpeg", stream, image.shape)
        rebuilt = rebuild_jpeg(payload, coder.encode_at(_other(image), quality), image.shape[-1])
        assert rebuilt == stream
        assert _decode("jpeg", rebuilt, image.shape) == _decode("jpeg", stream, image.shape)


def test_jpeg_quality_tables_differ_between_qualities(digits):
    """The DQT is the quality's: the 7-bit header is needed (and enough, test above)."""
    coder = CODERS.get("jpeg")
    dqt = {q: [s for m, s in _jpeg_segments(coder.encode_at(digits[0], q)) if m == 0xDB][0] for q in (20, 50, 75, 90)}
    assert len(set(dqt.values())) == 4
    # the optimized Huffman tables are the image's: they differ between images (so they count)
    tables = {P.payload_bytes("jpeg", s, digits[0].shape)[:40] for s in (coder.encode(d) for d in digits)}
    assert len(tables) > 1


QUALITIES = list(range(0, 101, 4)) + [99, 100]


def test_webp_rebuilds_from_the_shape_alone_at_every_quality(images):
    coder = CODERS.get("webp")
    for image in images:
        for quality in QUALITIES:
            stream = coder.encode_at(image, quality)
            rebuilt = rebuild_webp(P.payload_bytes("webp", stream, image.shape), image.shape)
            assert rebuilt == stream, (image.shape, quality)
        assert _decode("webp", rebuilt, image.shape) == _decode("webp", stream, image.shape)


@pytest.mark.parametrize("name", ["avif", "heif", "heif-420"])
def test_isobmff_rebuilds_from_a_reference_at_another_quality(name, images):
    """HEIF: one reference (quality 50) serves every quality: 0 header bits. AVIF: one
    reference for the lossy qualities (60), one for lossless (100): 1 header bit."""
    coder = CODERS.get(name)
    for image in images[::2] + [images[7]]:
        refs = {q: coder.encode_at(_other(image), q) for q in (50, 60, 100)}
        for quality in QUALITIES:
            stream = coder.encode_at(image, quality)
            payload = P.payload_bytes(name, stream, image.shape)
            _check_payload_units(name, payload)
            ref = refs[50] if name.startswith("heif") else refs[100 if quality == 100 else 60]
            rebuilt = rebuild_isobmff(payload, ref, name)
            assert rebuilt == stream, (image.shape, quality)
        assert _decode(name, rebuilt, image.shape) == _decode(name, stream, image.shape)


def test_avif_lossless_needs_its_own_sequence_header(digits):
    """Why AVIF's header bit: quality 100 (lossless) changes the sequence header."""
    coder = CODERS.get("avif")
    seq = {q: [obu for t, obu in _av1_obus(_item(coder.encode_at(digits[0], q))) if t == 1][0] for q in (60, 100)}
    assert seq[60] != seq[100]


def _item(data: bytes) -> bytes:
    _, _, offset, length = _iloc_single_extent(data)
    return data[offset:offset + length]


def test_png_and_zlib_rebuild_from_deflate_data(images):
    for image in images:
        stream = CODERS.get("png").encode(image)
        rebuilt = rebuild_png(P.payload_bytes("png", stream, image.shape), image.shape)
        assert rebuilt == stream
        with Image.open(io.BytesIO(rebuilt)) as im:
            assert np.array_equal(np.asarray(im).reshape(image.shape), image)
        stream = CODERS.get("zlib").encode(image)
        assert _zlib_from_deflate(P.payload_bytes("zlib", stream, image.shape)) == stream


def test_webp_lossless_rebuilds_from_the_shape(images):
    for image in images:
        stream = CODERS.get("webp-lossless").encode(image)
        rebuilt = rebuild_webp_lossless(P.payload_bytes("webp-lossless", stream, image.shape), image.shape)
        assert rebuilt == stream
        assert _decode("webp-lossless", rebuilt, image.shape) == image.tobytes()


def test_jpegxl_payload_starts_at_the_frame_header(images):
    """The image header is the shape's (the same for another image of that shape: the
    rebuild is byte-identical), and the payload starts with a FrameHeader: all_default = 0,
    frame_type = 0 (regular), encoding = 1 (modular), the 4 low bits of its first byte."""
    coder = CODERS.get("jpegxl-lossless")
    for image in images:
        stream, ref = coder.encode(image), coder.encode(_other(image))
        payload = P.payload_bytes("jpegxl-lossless", stream, image.shape)
        ref_header = ref[:len(ref) - len(P.payload_bytes("jpegxl-lossless", ref, image.shape))]
        assert ref_header + payload == stream
        assert payload[0] & 0x0F == 0b1000
        assert _decode("jpegxl-lossless", ref_header + payload, image.shape) == image.tobytes()


def test_raw_and_brotli_are_their_own_payload(images):
    for image in images:
        for name in ("raw", "brotli"):
            stream = CODERS.get(name).encode(image)
            assert P.payload_bytes(name, stream, image.shape) == stream


def test_best_lossless_is_the_tag_plus_the_member_payload(images):
    for image in images:
        stream = CODERS.get("best-lossless").encode(image)
        member = simulator.classical.codecs.best_lossless_tag(stream)
        assert P.payload_bytes("best-lossless", stream, image.shape) == stream[:1] + P.payload_bytes(
            member, stream[1:], image.shape)


def test_a_coder_unknown_to_the_module_counts_its_whole_stream(monkeypatch, digits):
    coder = Coder(lambda img: b"\x01" + img.tobytes(), lambda data, shape: data[1:], description="test")
    monkeypatch.setitem(CODERS._user, "payload-test-coder", coder)  # removed again after the test
    stream = coder.encode(digits[0])
    assert P.payload_bytes("payload-test-coder", stream, digits[0].shape) == stream
    assert P.header_bits("payload-test-coder") == 0
    assert P.payload_bits("payload-test-coder", stream, digits[0].shape) == 8 * len(stream)


@pytest.mark.parametrize("name", ALL)
def test_garbage_truncated_or_misshaped_streams_raise(name, images):
    image = images[4]
    stream = CODERS.get(name).encode(image)
    with pytest.raises(ValueError, match=name):
        P.payload_bytes(name, b"\x00garbage" * 5, image.shape)
    with pytest.raises(ValueError, match=name):
        P.payload_bytes(name, stream[:len(stream) * 2 // 3], image.shape)
    with pytest.raises(ValueError, match=name):
        P.payload_bytes(name, stream, (16, 16, 3))
    with pytest.raises(ValueError, match="shape"):
        P.payload_bytes(name, stream, (32, 32))


def test_cifar_jpegs(cifar_test_dir):
    """A few real photos: every codec's payload rebuilds the file (optional: needs the data)."""
    files = [cifar_test_dir / c / "0007.jpg" for c in ("airplane", "cat", "truck")]
    for f in files:
        with Image.open(f) as im:
            image = np.asarray(im.convert("RGB"), dtype=np.uint8)
        other = _other(image)
        s = CODERS.get("jpeg").encode(image)
        assert rebuild_jpeg(P.payload_bytes("jpeg", s, image.shape), CODERS.get("jpeg").encode(other), 3) == s
        s = CODERS.get("webp").encode(image)
        assert rebuild_webp(P.payload_bytes("webp", s, image.shape), image.shape) == s
        for name, q in (("avif", 60), ("heif", 50)):
            s = CODERS.get(name).encode_at(image, 37)
            assert rebuild_isobmff(P.payload_bytes(name, s, image.shape), CODERS.get(name).encode_at(other, q),
                                   name) == s
        s = CODERS.get("png").encode(image)
        assert rebuild_png(P.payload_bytes("png", s, image.shape), image.shape) == s
        s = CODERS.get("webp-lossless").encode(image)
        assert rebuild_webp_lossless(P.payload_bytes("webp-lossless", s, image.shape), image.shape) == s
        for name in ALL:  # the module's receiver too
            coder = CODERS.get(name)
            quality = None if coder.lossless else 37
            s = coder.encode(image) if quality is None else coder.encode_at(image, quality)
            assert P.rebuild(name, P.payload_bytes(name, s, image.shape), image.shape, quality) == s, name



# --- the receiver: payload.rebuild -------------------------------------------------------------------
#
# rebuild(coder, payload, shape, quality) gets nothing of the original image or stream: the
# tests below require its output to be the original stream byte for byte (and to decode to the
# same pixels), for every coder the module knows.

REBUILD_QUALITIES = {  # the extremes and at least 5 spread over the range, per lossy codec
    "jpeg": [1, 10, 25, 50, 75, 90, 99, 100],
    "webp": [0, 10, 25, 50, 75, 90, 99, 100],
    "avif": [0, 10, 25, 50, 60, 75, 90, 99, 100],
    "heif": [0, 10, 25, 50, 75, 90, 99, 100],
    "heif-420": [0, 25, 50, 75, 100],
}
LOSSLESS = ["raw", "zlib", "png", "brotli", "webp-lossless", "jpegxl-lossless", "best-lossless"]


@pytest.fixture(scope="module")
def rebuild_images(images) -> list[np.ndarray]:
    """The module's images (digits, 32x32 RGB, 5x7 RGB, 13x9 grey), flat ones, and tiny odd shapes."""
    return images + [np.zeros((32, 32, 3), np.uint8), np.full((3, 17, 1), 255, np.uint8),
                     _synthetic(1, (1, 1, 3)), _synthetic(7, (2, 3, 1))]


def _quality(name: str) -> int | None:
    coder = CODERS.get(name)
    return None if coder.lossless else coder.default_quality


@contextlib.contextmanager
def _deadline(seconds: float):
    """Fails the test (TimeoutError) instead of hanging, where SIGALRM exists."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("name", list(REBUILD_QUALITIES))
def test_rebuild_lossy_is_byte_identical_at_every_tested_quality(name, rebuild_images):
    coder = CODERS.get(name)
    for image in rebuild_images:
        for quality in REBUILD_QUALITIES[name]:
            stream = coder.encode_at(image, quality)
            rebuilt = P.rebuild(name, P.payload_bytes(name, stream, image.shape), image.shape, quality)
            assert rebuilt == stream, (image.shape, quality)
            assert _decode(name, rebuilt, image.shape) == _decode(name, stream, image.shape)


@pytest.mark.parametrize("name", LOSSLESS)
def test_rebuild_lossless_is_byte_identical(name, rebuild_images):
    coder = CODERS.get(name)
    for image in rebuild_images:
        stream = coder.encode(image)
        rebuilt = P.rebuild(name, P.payload_bytes(name, stream, image.shape), image.shape, None)
        assert rebuilt == stream, image.shape
        assert _decode(name, rebuilt, image.shape) == image.tobytes()


def test_rebuild_best_lossless_knows_the_member_from_the_tag(images):
    """Every member, forced by its tag (the coder itself picks mostly zlib and JPEG XL)."""
    for image in images[::2]:
        for tag, member in enumerate(BEST_LOSSLESS_MEMBERS):
            stream = bytes([tag]) + CODERS.get(member).encode(image)
            payload = P.payload_bytes("best-lossless", stream, image.shape)
            assert P.rebuild("best-lossless", payload, image.shape, None) == stream, member
            assert _decode("best-lossless", stream, image.shape) == image.tobytes()


def test_rebuild_png_with_several_idat_chunks():
    """A PNG over Pillow's 64 KiB encoder buffer has one IDAT chunk per buffer."""
    image = _synthetic(1, (160, 200, 3))
    stream = CODERS.get("png").encode(image)
    assert stream.count(b"IDAT") > 1
    assert P.rebuild("png", P.payload_bytes("png", stream, image.shape), image.shape, None) == stream


def test_rebuild_uses_only_what_the_minimal_header_carries(digits):
    """WebP and HEIF (0 header bits): any quality, or None, rebuilds the stream. AVIF (1 bit):
    any lossy quality rebuilds a lossy stream, and only 100 a lossless one. JPEG (7 bits): only
    the stream's own quality."""
    image, shape = digits[1], digits[1].shape
    for name in ("webp", "heif", "avif"):
        stream = CODERS.get(name).encode_at(image, 37)
        payload = P.payload_bytes(name, stream, shape)
        for told in [0, 37, 80, 99] + ([None] if name != "avif" else []):
            assert P.rebuild(name, payload, shape, told) == stream, (name, told)
    lossless = CODERS.get("avif").encode_at(image, 100)
    payload = P.payload_bytes("avif", lossless, shape)
    assert P.rebuild("avif", payload, shape, 100) == lossless
    assert P.rebuild("avif", payload, shape, 99) != lossless
    stream = CODERS.get("jpeg").encode_at(image, 40)
    payload = P.payload_bytes("jpeg", stream, shape)
    assert P.rebuild("jpeg", payload, shape, 40) == stream
    assert P.rebuild("jpeg", payload, shape, 41) != stream


def test_rebuild_arguments_are_checked(digits):
    image = digits[0]
    payloads = {n: P.payload_bytes(n, CODERS.get(n).encode(image), image.shape) for n in ("jpeg", "avif", "png")}
    for name in ("jpeg", "avif"):  # the header bits are needed
        with pytest.raises(ValueError, match=f"{name}: rebuild needs the quality"):
            P.rebuild(name, payloads[name], image.shape, None)
    with pytest.raises(ValueError, match="lossless and takes no quality"):
        P.rebuild("png", payloads["png"], image.shape, 75)
    with pytest.raises(ValueError, match="quality must be an integer in 1..100"):
        P.rebuild("jpeg", payloads["jpeg"], image.shape, 0)
    with pytest.raises(ValueError, match="shape"):
        P.rebuild("png", payloads["png"], (8, 8), None)
    with pytest.raises(ValueError, match="unknown classical coder"):
        P.rebuild("no-such-coder", b"x", image.shape, None)
    with pytest.raises(ValueError, match="best-lossless: unknown tag"):
        P.rebuild("best-lossless", b"\xff" + payloads["png"], image.shape, None)


def test_rebuild_of_a_coder_unknown_to_the_module_returns_the_payload(monkeypatch, digits):
    coder = Coder(lambda img: b"\x01" + img.tobytes(), lambda data, shape: data[1:], description="test")
    monkeypatch.setitem(CODERS._user, "payload-test-coder", coder)  # removed again after the test
    stream = coder.encode(digits[0])
    payload = P.payload_bytes("payload-test-coder", stream, digits[0].shape)
    assert P.rebuild("payload-test-coder", payload, digits[0].shape, None) == stream


def test_rebuild_references_are_cached_in_a_bounded_lru(digits):
    assert P._template.cache_info().maxsize == 256
    stream = CODERS.get("jpeg").encode_at(digits[2], 63)
    payload = P.payload_bytes("jpeg", stream, digits[2].shape)
    P.rebuild("jpeg", payload, digits[2].shape, 63)
    hits = P._template.cache_info().hits
    assert P.rebuild("jpeg", payload, digits[2].shape, 63) == stream
    assert P._template.cache_info().hits == hits + 1


def _corruptions(payload: bytes, seed: int) -> list[bytes]:
    """Truncations, flipped bytes at fixed places, random 3-byte changes, random bytes."""
    n, rng = len(payload), np.random.default_rng(seed)
    out = [payload[:k] for k in sorted({0, 1, 2, n // 2, n - 1})]
    for pos in sorted({0, 1, 2, 3, n // 4, n // 2, 3 * n // 4, n - 1}):
        for mask in (0xFF, 0x01, 0x80):
            b = bytearray(payload)
            b[pos] ^= mask
            out.append(bytes(b))
    for _ in range(6):
        b = bytearray(payload)
        for pos, value in zip(rng.integers(0, n, 3), rng.integers(0, 256, 3)):
            b[pos] = value
        out.append(bytes(b))
    return out + [rng.integers(0, 256, n, dtype=np.uint8).tobytes()]


@pytest.mark.parametrize("name", ALL)
def test_rebuild_of_a_corrupted_payload_raises_or_decodes(name, images):
    """A corrupted payload: rebuild raises ValueError, or its stream decodes to an image of the
    shape or is refused as CorruptStream (the apprentice's failed reconstruction); never
    another error, a crash or a hang."""
    coder, quality = CODERS.get(name), _quality(name)
    outcomes, tried = {"ValueError": 0, "decoded": 0, "CorruptStream": 0}, 0
    with _deadline(15):
        for image in (images[0], images[4], images[8]):
            payload = P.payload_bytes(name, coder.encode(image), image.shape)
            for corrupted in _corruptions(payload, len(payload)):
                tried += 1
                try:
                    stream = P.rebuild(name, corrupted, image.shape, quality)
                except ValueError:
                    outcomes["ValueError"] += 1
                    continue
                try:
                    assert decode(stream, name, image.shape).shape == image.shape
                    outcomes["decoded"] += 1
                except CorruptStream:
                    outcomes["CorruptStream"] += 1
    assert sum(outcomes.values()) == tried > 90, outcomes

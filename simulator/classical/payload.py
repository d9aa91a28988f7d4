"""Container-free payload of the classical codecs' streams (docs/codecs.md, "Payload without
containers").

Every stream of :data:`~simulator.registry.CODERS` is the library's whole file: container,
headers and tables included. For tiny images (8x8 digits, 32x32 CIFAR) the container is most
of it. A link configures once when it is set up what is the same for every item (the coder, the
image size, the chroma format, the codec's fixed settings) and could send only what differs
from item to item. This module cuts a stream into the bytes that differ (the *payload*) and
the bytes a receiver can rebuild from the link's configuration plus a minimal per-item
header (:data:`MINIMAL_HEADER_BITS`). It parses the real bytes by the formats'
specifications; it never skips a constant number of bytes.

    payload_bytes(coder_name, stream, shape) -> bytes      # the kept bytes, in stream order
    payload_bits(coder_name, stream, shape)  -> int        # 8 * len(payload) + header_bits
    header_bits(coder_name) -> int                         # MINIMAL_HEADER_BITS, 0 if unknown
    segments(coder_name, stream, shape) -> list[Segment]   # every byte, kept or dropped, and why
    rebuild(coder_name, payload, shape, quality) -> bytes  # the receiver: the whole stream again

``shape`` is the image's ``(H, W, C)``; each parser checks the stream's own geometry against
it. The payload's length is taken as known to the receiver (the link delivers whole items), so
length fields that the payload length implies are dropped.

What is kept, per coder (everything else is dropped; :func:`segments` names each piece):

- ``jpeg``: the Huffman tables of every DHT segment (each table's class/id byte, 16 code-length
  counts and symbols; the encoder optimizes them per image, so they count) and the
  entropy-coded scan data (stuffed ``0xFF 0x00`` bytes and any RST markers included). Dropped:
  SOI, APP/COM segments, the DQT segments (libjpeg's tables are a fixed function of the
  quality, so the 7-bit quality in the minimal header replaces them), SOF (size, chroma
  format), the DHT segments' marker and length, the SOS header (component and table
  selectors: fixed by the chroma format), DRI, EOI. Minimal header: 7 bits (quality 1..100).
- ``webp`` (VP8): the VP8 frame tag (3 bytes: key frame, version, and the size of the first
  partition, which the decoder needs to find the token partition) and both compressed
  partitions. Dropped: the RIFF header, every chunk header, the VP8 key-frame start code and
  the 14-bit width and height (with their 2-bit scale, which must be 0), the RIFF pad byte,
  VP8X (flags and canvas size) and metadata chunks (ICCP, EXIF, XMP). An ALPH chunk's data
  would be kept (the coder never writes one). Minimal header: 0 bits: nothing dropped depends
  on the quality (the quantizers are in the first partition).
- ``avif``: the AV1 OBUs of the primary item that code the picture (frame, frame header, tile
  group OBUs), each with its OBU header and ``obu_size``. Dropped: ftyp, the whole ``meta``
  box (item info, ``iloc``, the properties ``ispe``, ``pixi``, ``av1C``, ``colr``), the mdat
  box header, the temporal delimiter OBU, the sequence header OBU (profile, size, bit depth,
  colour configuration: a copy of it is also in ``av1C``; for one shape and channel count it
  takes two values, lossy and lossless), metadata and padding OBUs. Minimal header: 1 bit
  (lossless or not: quality 100 is lossless, with its own sequence header, ``av1C``, ``colr``,
  and for grey ``pixi``; every lossy quality has the same container).
- ``heif``: the HEVC VCL NAL units of the primary item (2-byte NAL header + slice), with the
  4-byte length field of every NAL unit but the last (for x265 intra: one IDR slice, so no
  length field). Dropped: ftyp, ``meta`` (item info, ``iloc``, ``ispe``, ``clap``, ``pixi``,
  and ``hvcC`` with the VPS/SPS/PPS parameter sets: link configuration), the mdat
  header, in-band parameter sets, SEI, AUD and filler NAL units. Minimal header: 0 bits:
  the parameter sets and properties do not depend on the quality (the slice header carries
  the QP).
- ``png`` and ``zlib``: the raw DEFLATE data. Dropped: the 2-byte zlib header (method,
  window and level: fixed by the coder's settings) and the 4-byte Adler-32 (an integrity
  check the link's CRC makes redundant; a receiver can recompute it after inflating); for PNG
  also the signature, IHDR (geometry), the IDAT chunk headers and CRCs, ancillary chunks and
  IEND.
- ``raw``: the whole stream (it is the pixels; its length is checked). ``brotli``: the whole
  stream (no container; its window bits are part of the first bits of the stream), checked by
  decoding it.
- ``webp-lossless`` (VP8L): the VP8L bitstream after its 5-byte header. Dropped: RIFF and
  chunk headers, pad byte, VP8X and metadata chunks, and the VP8L header (signature, 14-bit
  width and height, alpha hint (must be 0), version).
- ``jpegxl-lossless``: the codestream from the first frame on (frame header, TOC, sections).
  Dropped: the signature ``FF 0A``, the SizeHeader, ImageMetadata and CustomTransformData
  bundles and the zero padding to the byte boundary before the frame (all a function of the
  shape and channels). Streams with an ICC profile, preview, or extra channels (which the
  coder never writes) raise ``ValueError``. The frames themselves are not parsed (no TOC
  reader here): the stream is checked by decoding it with libjxl.
- ``best-lossless``: the 1-byte member tag plus the member's payload.
- a registered coder this module does not know (a user's): the whole stream, header 0 bits.

``ValueError`` (with the coder's name) for a stream that does not parse as its format, or
whose geometry is not ``shape``; ``ValueError`` from the registry for an unregistered name.

The receiver, :func:`rebuild`, writes the whole stream again from the payload, the shape and
the quality (the minimal header's content), byte-identical to the sender's for every coder
above. What the shape alone fixes it writes from the specifications (RIFF/VP8/VP8L headers);
the rest (JPEG's DQT/SOF/SOS, PNG's IHDR and zlib header, the AVIF/HEIF boxes with the
sequence header OBUs and ``hvcC``, the JPEG XL image header) it takes from a *reference*: the
registered coder's stream of seeded noise of that shape, encoded by the receiver itself once
per (coder, shape, reference quality) and kept in a 256-entry LRU cache. Lengths, sizes, CRCs
and the Adler-32 it recomputes.
"""

from __future__ import annotations

import functools
import struct
import zlib
from dataclasses import dataclass

import imagecodecs
import numpy as np
from PIL import ImageFile

from ..bits import bits_to_bytes, bytes_to_bits
from ..registry import CODERS
from .codecs import best_lossless_tag, best_tag
from .source_coding import check_quality

#: The minimal per-item header a link still sends besides the payload, in bits (see the module
#: docstring). A coder not listed (a user's) is counted as its whole file: 0 bits.
MINIMAL_HEADER_BITS: dict[str, int] = {
    "jpeg": 7,   # the quality 1..100: it selects the DQT tables
    "webp": 0,
    "avif": 1,   # lossless (quality 100) or not: each has its own sequence header and properties
    "heif": 0, "heif-420": 0,
    "raw": 0, "zlib": 0, "png": 0, "brotli": 0, "webp-lossless": 0, "jpegxl-lossless": 0,
    "best-lossless": 0,  # the member tag is the payload's first byte
    "best": 0,  # the member tag is the payload's first byte; the member's own header follows it
}


@dataclass(frozen=True)
class Segment:
    """Bytes ``stream[start:stop]``: ``kept`` in the payload or dropped; ``what`` says what
    they are (e.g. ``"DQT segment"``, ``"scan data"``)."""

    start: int
    stop: int
    what: str
    kept: bool


def header_bits(coder_name: str) -> int:
    """The minimal per-item header of ``coder_name`` (registered; 0 for a coder this module
    does not know)."""
    CODERS.check(coder_name)
    return MINIMAL_HEADER_BITS.get(coder_name, 0)


def segments(coder_name: str, stream: bytes, shape: tuple[int, int, int]) -> list[Segment]:
    """Every byte of ``stream`` in order, each segment kept (payload) or dropped, tiling
    ``0..len(stream)`` exactly. ``ValueError`` if the stream does not parse."""
    CODERS.check(coder_name)
    data = bytes(stream)
    h, w, c = _shape(shape)
    parser = _PARSERS.get(coder_name)
    if parser is None:
        segs = [Segment(0, len(data), "whole stream (coder unknown to payload.py)", True)]
    else:
        try:
            segs = parser(data, (h, w, c))
        except (IndexError, struct.error) as err:
            raise ValueError(f"{coder_name}: truncated or malformed stream ({type(err).__name__}: {err})") from None
        except ValueError as err:
            raise ValueError(f"{coder_name}: {err}") from None
    return _tiled(segs, len(data), coder_name)


def payload_bytes(coder_name: str, stream: bytes, shape: tuple[int, int, int]) -> bytes:
    """The payload of a ``coder_name`` stream for an image of ``shape = (H, W, C)``: the kept
    segments, concatenated in stream order."""
    data = bytes(stream)
    return b"".join(data[s.start:s.stop] for s in segments(coder_name, data, shape) if s.kept)


def payload_bits(coder_name: str, stream: bytes, shape: tuple[int, int, int]) -> int:
    """``8 * len(payload_bytes(...)) + header_bits(coder_name)`` (for ``best``: plus its
    member's header bits)."""
    extra = header_bits(best_tag(stream)) if coder_name == "best" else 0
    return 8 * len(payload_bytes(coder_name, stream, shape)) + header_bits(coder_name) + extra


# --- helpers -----------------------------------------------------------------------------------

def _shape(shape) -> tuple[int, int, int]:
    try:
        h, w, c = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be (H, W, C), got {shape!r}") from None
    if h < 1 or w < 1 or c not in (1, 3):
        raise ValueError(f"shape must be (H, W, C) with H, W >= 1 and C = 1 or 3, got {shape!r}")
    return h, w, c


def _tiled(segs: list[Segment], n: int, name: str) -> list[Segment]:
    """The segments sorted, empty ones removed; ``ValueError`` unless they tile 0..n."""
    out = sorted((s for s in segs if s.stop > s.start), key=lambda s: s.start)
    pos = 0
    for s in out:
        if s.start != pos:
            raise ValueError(f"{name}: bytes {min(pos, s.start)}..{max(pos, s.start)} are "
                             f"{'unaccounted for' if s.start > pos else 'claimed twice'}")
        pos = s.stop
    if pos != n:
        raise ValueError(f"{name}: segments end at byte {pos} of {n}")
    return out


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _map(pieces: list[tuple[int, int, str, bool]], ranges: list[tuple[int, int]]) -> list[Segment]:
    """Segments of a byte string made of the file ranges ``ranges`` (concatenated), mapped to
    file offsets (a piece may straddle two ranges)."""
    out = []
    base = 0
    for f0, f1 in ranges:
        for p0, p1, what, kept in pieces:
            lo, hi = max(p0, base), min(p1, base + f1 - f0)
            if lo < hi:
                out.append(Segment(f0 + lo - base, f0 + hi - base, what, kept))
        base += f1 - f0
    return out


def _zlib_pieces(z: bytes, what: str, size: int) -> list[tuple[int, int, str, bool]]:
    """A complete zlib stream of ``size`` bytes once inflated: header and Adler-32 dropped, the
    raw DEFLATE data kept (checked by inflating: it must end exactly before a correct Adler-32)."""
    _need(len(z) >= 7, f"zlib stream of {len(z)} bytes is too short")
    cmf, flg = z[0], z[1]
    _need(cmf & 15 == 8 and cmf >> 4 <= 7 and (cmf * 256 + flg) % 31 == 0, f"bad zlib header {z[:2].hex()}")
    _need(not flg & 0x20, "zlib stream with a preset dictionary")
    inflater = zlib.decompressobj(-15)
    try:
        out = inflater.decompress(z[2:]) + inflater.flush()
    except zlib.error as err:
        raise ValueError(f"DEFLATE data does not inflate: {err}") from None
    _need(inflater.eof, "DEFLATE data is truncated")
    _need(len(inflater.unused_data) == 4, f"{len(inflater.unused_data)} bytes after the DEFLATE data, expected the "
                                          "4-byte Adler-32")
    _need(struct.unpack(">I", inflater.unused_data)[0] == zlib.adler32(out), "Adler-32 does not match")
    _need(len(out) == size, f"inflates to {len(out)} bytes, expected {size}")
    end = len(z) - 4
    return [(0, 2, f"{what}zlib header", False), (2, end, f"{what}DEFLATE data", True),
            (end, len(z), f"{what}Adler-32", False)]


# --- lossless without container ----------------------------------------------------------------

def _raw(data: bytes, shape) -> list[Segment]:
    h, w, c = shape
    _need(len(data) == h * w * c, f"{len(data)} bytes, expected {h * w * c} for shape {shape}")
    return [Segment(0, len(data), "pixels", True)]


def _zlib(data: bytes, shape) -> list[Segment]:
    h, w, c = shape
    return _map(_zlib_pieces(data, "", h * w * c), [(0, len(data))])


def _brotli(data: bytes, shape) -> list[Segment]:
    h, w, c = shape
    try:
        out = imagecodecs.brotli_decode(data)
    except Exception as err:
        raise ValueError(f"does not decode as Brotli: {type(err).__name__}: {err}") from None
    _need(len(out) == h * w * c, f"decodes to {len(out)} bytes, expected {h * w * c} for shape {shape}")
    return [Segment(0, len(data), "Brotli stream", True)]


# --- PNG -----------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png(data: bytes, shape) -> list[Segment]:
    h, w, c = shape
    _need(data[:8] == PNG_SIGNATURE, "no PNG signature")
    segs = [Segment(0, 8, "PNG signature", False)]
    pos, idat, seen_iend, first = 8, [], False, True
    while pos < len(data):
        _need(not seen_iend, "bytes after IEND")
        _need(pos + 12 <= len(data), "truncated chunk")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        _need(end <= len(data), f"chunk {kind!r} runs past the end")
        _need(zlib.crc32(data[pos + 4:end - 4]) == struct.unpack(">I", data[end - 4:end])[0],
              f"chunk {kind!r}: CRC does not match")
        body = data[pos + 8:end - 4]
        if first:
            _need(kind == b"IHDR" and length == 13, "the first chunk is not IHDR")
            width, height, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", body)
            _need((height, width) == (h, w), f"IHDR says {width}x{height}, shape says {w}x{h}")
            _need(depth == 8 and ctype == {1: 0, 3: 2}[c],
                  f"IHDR bit depth {depth} colour type {ctype}, expected 8-bit {'grey' if c == 1 else 'RGB'}")
            _need(comp == 0 and filt == 0 and interlace == 0, "IHDR: only non-interlaced PNG is supported")
            segs.append(Segment(pos, end, "IHDR chunk", False))
            first = False
        elif kind == b"IDAT":
            segs += [Segment(pos, pos + 8, "IDAT chunk header", False), Segment(end - 4, end, "IDAT CRC", False)]
            idat.append((pos + 8, end - 4))
        elif kind == b"IEND":
            segs.append(Segment(pos, end, "IEND chunk", False))
            seen_iend = True
        else:
            _need(bool(kind[0] & 0x20), f"critical chunk {kind!r} is not supported")
            segs.append(Segment(pos, end, f"ancillary chunk {kind.decode('latin-1')}", False))
        pos = end
    _need(seen_iend and idat, "no IDAT or no IEND")
    z = b"".join(data[a:b] for a, b in idat)
    return segs + _map(_zlib_pieces(z, "IDAT ", h * (1 + w * c)), idat)  # a filter byte per row


# --- WebP (RIFF) -------------------------------------------------------------------------------

def _riff_chunks(data: bytes):
    """``(fourcc, header_start, data_start, data_end, chunk_end)`` of each chunk; chunk_end
    includes the pad byte."""
    _need(len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP", "not a RIFF/WEBP file")
    riff_end = 8 + struct.unpack("<I", data[4:8])[0]
    _need(riff_end <= len(data), f"RIFF size {riff_end - 8} runs past the end ({len(data)} bytes)")
    pos, out = 12, []
    while pos < riff_end:
        _need(pos + 8 <= riff_end, "truncated chunk header")
        kind, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        end = pos + 8 + size
        _need(end <= riff_end, f"chunk {kind!r} runs past the RIFF end")
        out.append((kind, pos, pos + 8, end, min(end + (size & 1), riff_end)))
        pos = out[-1][4]
    return out, riff_end


def _webp(data: bytes, shape, bitstream: bytes) -> list[Segment]:
    h, w, c = shape
    chunks, riff_end = _riff_chunks(data)
    segs = [Segment(0, 12, "RIFF header", False)]
    if riff_end < len(data):
        segs.append(Segment(riff_end, len(data), "bytes after the RIFF data", False))
    found = 0
    for kind, head, start, end, chunk_end in chunks:
        name = kind.decode("latin-1")
        segs.append(Segment(head, start, f"{name} chunk header", False))
        segs.append(Segment(end, chunk_end, "RIFF pad byte", False))
        if kind in (b"ANIM", b"ANMF"):
            raise ValueError("animated WebP is not supported")
        if kind in (b"VP8 ", b"VP8L"):
            _need(kind == bitstream, f"holds a {name} chunk, expected {bitstream.decode()}")
            found += 1
            segs += (_vp8 if kind == b"VP8 " else _vp8l)(data, start, end, (h, w))
        elif kind == b"ALPH":
            segs.append(Segment(start, end, "ALPH data (coded alpha)", True))
        else:  # VP8X (flags, canvas size), ICCP, EXIF, XMP, unknown chunks: not needed to decode
            segs.append(Segment(start, end, f"{name} chunk data", False))
    _need(found == 1, f"{found} {bitstream.decode()} chunks, expected 1")
    return segs


def _vp8(data: bytes, start: int, end: int, hw) -> list[Segment]:
    _need(end - start >= 10, "VP8 data shorter than its key-frame header")
    tag = data[start] | data[start + 1] << 8 | data[start + 2] << 16
    _need(not tag & 1, "VP8 frame is not a key frame")
    _need((tag >> 1) & 7 <= 3 and (tag >> 4) & 1, "VP8 frame: bad version or not shown")
    _need(10 + (tag >> 5) <= end - start, "VP8 first partition runs past the chunk")
    _need(data[start + 3:start + 6] == b"\x9d\x01\x2a", "no VP8 start code")
    width, height = struct.unpack("<HH", data[start + 6:start + 10])
    _need(width >> 14 == 0 and height >> 14 == 0, "VP8 scaling bits are set")
    _need((height, width) == tuple(hw), f"VP8 frame is {width}x{height}, shape says {hw[1]}x{hw[0]}")
    return [Segment(start, start + 3, "VP8 frame tag (first partition size)", True),
            Segment(start + 3, start + 10, "VP8 start code and dimensions", False),
            Segment(start + 10, end, "VP8 partitions", True)]


def _vp8l(data: bytes, start: int, end: int, hw) -> list[Segment]:
    _need(end - start >= 6 and data[start] == 0x2F, "no VP8L signature")
    bits = struct.unpack("<I", data[start + 1:start + 5])[0]
    width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    _need((height, width) == tuple(hw), f"VP8L image is {width}x{height}, shape says {hw[1]}x{hw[0]}")
    _need(not (bits >> 28) & 1, "VP8L alpha hint is set (the coder never writes alpha)")
    _need(bits >> 29 == 0, f"VP8L version {bits >> 29}")
    return [Segment(start, start + 5, "VP8L header (signature, dimensions, alpha hint, version)", False),
            Segment(start + 5, end, "VP8L bitstream", True)]


# --- JPEG ------------------------------------------------------------------------------------------

_SOF_HUFFMAN = {0xC0, 0xC1, 0xC2}


def _jpeg(data: bytes, shape) -> list[Segment]:
    h, w, c = shape
    _need(data[:2] == b"\xff\xd8", "no SOI marker")
    segs = [Segment(0, 2, "SOI", False)]
    pos, sof, scans = 2, False, 0
    while True:
        _need(pos < len(data) and data[pos] == 0xFF, f"no marker at byte {pos}")
        fill = pos
        while pos + 1 < len(data) and data[pos + 1] == 0xFF:
            pos += 1
        segs.append(Segment(fill, pos, "fill bytes", False))
        marker = data[pos + 1]
        if marker == 0xD9:
            _need(scans > 0, "EOI before any scan")
            segs.append(Segment(pos, pos + 2, "EOI", False))
            segs.append(Segment(pos + 2, len(data), "bytes after EOI", False))
            return segs
        _need(marker not in (0x00, 0x01, 0xD8) and not 0xD0 <= marker <= 0xD7, f"unexpected marker FF{marker:02X}")
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        end = pos + 2 + length
        _need(length >= 2 and end <= len(data), f"marker FF{marker:02X}: bad length {length}")
        body = pos + 4
        if marker == 0xC4:
            segs.append(Segment(pos, body, "DHT marker and length", False))
            p = body
            while p < end:
                _need(data[p] >> 4 <= 1 and data[p] & 15 <= 3, f"DHT: bad table class/id {data[p]:#x}")
                n = sum(data[p + 1:p + 17])
                _need(p + 17 + n <= end and n <= 256, "DHT: table runs past the segment")
                p += 17 + n
            _need(p == end, "DHT: tables do not fill the segment")
            segs.append(Segment(body, end, "DHT Huffman tables", True))
        elif marker in _SOF_HUFFMAN:
            _need(not sof, "two SOF segments")
            precision, height, width, ncomp = struct.unpack(">BHHB", data[body:body + 6])
            _need(precision == 8, f"SOF: {precision}-bit samples")
            _need((height, width, ncomp) == (h, w, c), f"SOF says {width}x{height}x{ncomp}, shape says {w}x{h}x{c}")
            _need(length == 8 + 3 * ncomp, "SOF: bad length")
            sof = True
            segs.append(Segment(pos, end, f"SOF{marker - 0xC0} segment", False))
        elif marker == 0xDB or marker == 0xDD or 0xE0 <= marker <= 0xEF or marker == 0xFE:
            what = {0xDB: "DQT segment", 0xDD: "DRI segment", 0xFE: "COM segment"}.get(marker, f"APP{marker - 0xE0} "
                                                                                                 "segment")
            segs.append(Segment(pos, end, what, False))
        elif marker == 0xDA:
            _need(sof, "SOS before SOF")
            segs.append(Segment(pos, end, "SOS header", False))
            p = end
            while True:  # entropy-coded data: up to a marker other than a stuffed 0x00 or RSTn
                p = data.find(b"\xff", p)
                _need(p >= 0 and p + 1 < len(data), "scan data runs to the end (no EOI)")
                nxt = data[p + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                    p += 2
                    continue
                break
            segs.append(Segment(end, p, "scan data", True))
            scans += 1
            pos = p
            continue
        else:
            raise ValueError(f"marker FF{marker:02X} is not supported (baseline/progressive Huffman JPEG only)")
        pos = end


# --- ISOBMFF (AVIF, HEIF) ---------------------------------------------------------------------

_CONTAINERS = {b"meta": 4, b"iprp": 0, b"ipco": 0, b"dinf": 0}  # box -> FullBox header bytes


def _boxes(data: bytes, start: int, end: int):
    """``(type, box_start, body_start, box_end)`` of the boxes in ``data[start:end]``."""
    pos, out = start, []
    while pos < end:
        _need(pos + 8 <= end, f"truncated box header at byte {pos}")
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        head = 8
        if size == 1:
            _need(pos + 16 <= end, "truncated large box header")
            size, head = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        _need(size >= head and pos + size <= end, f"box {kind!r} at byte {pos}: bad size {size}")
        out.append((kind, pos, pos + head, pos + size))
        pos += size
    return out


def _box_segments(data: bytes, boxes, path: str, segs: list[Segment], index: dict) -> None:
    """Dropped segments for every box (containers opened), and ``index[path/type]`` ->
    ``[(box_start, body_start, box_end), ...]``."""
    for kind, start, body, end in boxes:
        name = f"{path}{kind.decode('latin-1')}"
        index.setdefault(name, []).append((start, body, end))
        if kind == b"mdat":
            segs.append(Segment(start, body, "mdat box header", False))
        elif kind in _CONTAINERS:
            inner = body + _CONTAINERS[kind]
            segs.append(Segment(start, inner, f"{name} box header", False))
            _box_segments(data, _boxes(data, inner, end), name + "/", segs, index)
        else:
            segs.append(Segment(start, end, f"{name} box", False))


class _Reader:
    """Big-endian fields of one box body."""

    def __init__(self, data: bytes, pos: int, end: int):
        self.data, self.pos, self.end = data, pos, end

    def uint(self, n: int) -> int:
        _need(self.pos + n <= self.end, "box body is truncated")
        v = int.from_bytes(self.data[self.pos:self.pos + n], "big") if n else 0
        self.pos += n
        return v


def _one(index: dict, name: str) -> tuple[int, int, int]:
    boxes = index.get(name, [])
    _need(len(boxes) == 1, f"{len(boxes)} {name} boxes, expected 1")
    return boxes[0]


def _isobmff(data: bytes, shape, item_type: bytes, config: bytes, parse_item) -> list[Segment]:
    segs, conf, extents, mdats, _ = _isobmff_item(data, shape, item_type, config)
    item = b"".join(data[a:b] for a, b, _, _ in extents)
    segs += _map(parse_item(item, data, conf), [(a, b) for a, b, _, _ in extents])
    for m0, m1 in mdats:  # mdat bytes of no extent (other items): dropped
        pos = m0
        for a, b in sorted((e[0], e[1]) for e in extents if m0 <= e[0] < m1):
            _need(a >= pos, "item extents overlap")
            segs.append(Segment(pos, a, "mdat data of other items", False))
            pos = b
        segs.append(Segment(pos, m1, "mdat data of other items", False))
    return segs


def _isobmff_item(data: bytes, shape, item_type: bytes, config: bytes):
    """The boxes' dropped segments, the primary item's configuration property
    ``(box_start, body_start, box_end)``, its extents ``(start, stop, length_field_pos,
    length_field_size)``, the mdat bodies ``(start, stop)`` and the top-level boxes."""
    h, w, c = shape
    top = _boxes(data, 0, len(data))
    _need(top and top[0][0] == b"ftyp", "not an ISOBMFF file (no ftyp)")
    segs: list[Segment] = []
    index: dict = {}
    _box_segments(data, top, "", segs, index)
    # the primary item, its type and its properties
    _, body, end = _one(index, "meta/pitm")
    r = _Reader(data, body, end)
    version = r.uint(1)
    r.uint(3)
    primary = r.uint(2 if version == 0 else 4)
    types = _item_types(data, _one(index, "meta/iinf"))
    _need(types.get(primary) == item_type, f"primary item {primary} is {types.get(primary)!r}, expected {item_type!r}")
    props = _properties(data, index, primary)
    ispe = props.get(b"ispe")
    _need(ispe is not None, "no ispe property")
    width, height = struct.unpack(">II", data[ispe[1] + 4:ispe[1] + 12])
    clap = props.get(b"clap")
    if clap is not None:  # the coded picture is cropped: the crop is the image
        wn, wd, hn, hd = struct.unpack(">IIII", data[clap[1]:clap[1] + 16])
        _need(wd and hd and wn % wd == 0 and hn % hd == 0, "clap with a fractional size")
        width, height = wn // wd, hn // hd
    _need((height, width) == (h, w), f"image is {width}x{height}, shape says {w}x{h}")
    conf = props.get(config)
    _need(conf is not None, f"no {config.decode()} property")
    # the primary item's bytes (iloc construction method 0: offsets in this file)
    extents = _item_extents(data, _one(index, "meta/iloc"), primary)
    mdats = [(body, end) for _, body, end in index.get("mdat", [])]
    for a, b, _, _ in extents:
        _need(any(m0 <= a and b <= m1 for m0, m1 in mdats), f"item extent {a}..{b} is not inside an mdat box")
    return segs, conf, extents, mdats, top


def _item_types(data: bytes, iinf) -> dict[int, bytes]:
    _, body, end = iinf
    r = _Reader(data, body, end)
    version = r.uint(1)
    r.uint(3)
    count = r.uint(2 if version == 0 else 4)
    out = {}
    for kind, _start, b, e in _boxes(data, r.pos, end)[:count]:
        _need(kind == b"infe", f"{kind!r} in iinf")
        ri = _Reader(data, b, e)
        v = ri.uint(1)
        ri.uint(3)
        _need(v >= 2, f"infe version {v}")
        item_id = ri.uint(2 if v == 2 else 4)
        ri.uint(2)
        out[item_id] = data[ri.pos:ri.pos + 4]
    return out


def _properties(data: bytes, index: dict, item: int) -> dict[bytes, tuple[int, int, int]]:
    """type -> (box_start, body_start, box_end) of the properties associated with ``item``."""
    ipco_start, ipco_body, ipco_end = _one(index, "meta/iprp/ipco")
    children = _boxes(data, ipco_body, ipco_end)
    _, body, end = _one(index, "meta/iprp/ipma")
    r = _Reader(data, body, end)
    version, flags = r.uint(1), r.uint(3)
    out = {}
    for _ in range(r.uint(4)):
        item_id = r.uint(2 if version < 1 else 4)
        for _ in range(r.uint(1)):
            prop = r.uint(2) & 0x7FFF if flags & 1 else r.uint(1) & 0x7F
            if item_id == item and prop:
                _need(prop <= len(children), f"ipma names property {prop} of {len(children)}")
                kind, start, b, e = children[prop - 1]
                out[kind] = (start, b, e)
    return out


def _item_extents(data: bytes, iloc, item: int) -> list[tuple[int, int, int, int]]:
    """``(start, stop, length_field_pos, length_field_size)`` of each extent of ``item``."""
    _, body, end = iloc
    r = _Reader(data, body, end)
    version = r.uint(1)
    r.uint(3)
    _need(version <= 2, f"iloc version {version}")
    sizes = r.uint(2)
    offset_size, length_size, base_size = sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15
    index_size = sizes & 15 if version else 0
    for n in (offset_size, length_size, base_size, index_size):
        _need(n in (0, 4, 8), f"iloc field size {n}")
    for _ in range(r.uint(2 if version < 2 else 4)):
        item_id = r.uint(2 if version < 2 else 4)
        method = r.uint(2) & 15 if version else 0
        ref = r.uint(2)
        base = r.uint(base_size)
        extents = []
        for _ in range(r.uint(2)):
            r.uint(index_size)
            off = base + r.uint(offset_size)
            field = r.pos
            length = r.uint(length_size)
            extents.append((off, off + length if length else len(data), field, length_size))
        if item_id == item:
            _need(method == 0 and ref == 0, f"item data by construction method {method} / data reference {ref} "
                                            "is not supported")
            _need(bool(extents), "the primary item has no extent")
            return extents
    raise ValueError(f"iloc has no entry for item {item}")


def _leb128(b: bytes, p: int) -> tuple[int, int]:
    v = 0
    for i in range(8):
        _need(p < len(b), "truncated leb128")
        v |= (b[p] & 0x7F) << (7 * i)
        p += 1
        if not b[p - 1] & 0x80:
            return v, p
    raise ValueError("leb128 longer than 8 bytes")


_OBU_KEPT = {3: "AV1 frame header OBU", 4: "AV1 tile group OBU", 6: "AV1 frame OBU"}
_OBU_DROPPED = {1: "AV1 sequence header OBU", 2: "AV1 temporal delimiter OBU", 5: "AV1 metadata OBU",
                7: "AV1 redundant frame header OBU", 15: "AV1 padding OBU"}


def _av1_obus(item: bytes, data: bytes, conf) -> list[tuple[int, int, str, bool]]:
    start, body, end = conf
    _need(end - body >= 4 and data[body] == 0x81, f"av1C marker/version byte {data[body]:#x}")
    return _obu_pieces(item)


def _obu_pieces(item: bytes) -> list[tuple[int, int, str, bool]]:
    """The OBUs of an AV1 item (low-overhead bitstream format), kept or dropped."""
    pieces, p, frames = [], 0, 0
    while p < len(item):
        head = item[p]
        kind, ext, has_size = (head >> 3) & 15, (head >> 2) & 1, (head >> 1) & 1
        _need(not head & 0x80, "OBU forbidden bit set")
        q = p + 1 + ext
        if has_size:
            size, q = _leb128(item, q)
        else:
            size = len(item) - q
        _need(q + size <= len(item), "OBU runs past the item")
        if kind in _OBU_KEPT:
            frames += 1
            pieces.append((p, q + size, _OBU_KEPT[kind], True))
        elif kind in _OBU_DROPPED:
            pieces.append((p, q + size, _OBU_DROPPED[kind], False))
        else:
            raise ValueError(f"OBU type {kind} is not supported")
        p = q + size
    _need(frames > 0, "no frame OBU in the item")
    return pieces


def _hevc_nals(item: bytes, data: bytes, conf) -> list[tuple[int, int, str, bool]]:
    start, body, end = conf
    _need(end - body >= 23 and data[body] == 1, "bad hvcC")
    length_size = (data[body + 21] & 3) + 1
    _need(length_size in (1, 2, 4), f"hvcC NAL length size {length_size}")
    p = body + 23
    for _ in range(data[body + 22]):  # the parameter-set arrays must fill the box exactly
        count = struct.unpack(">H", data[p + 1:p + 3])[0]
        p += 3
        for _ in range(count):
            p += 2 + struct.unpack(">H", data[p:p + 2])[0]
        _need(p <= end, "hvcC arrays run past the box")
    _need(p == end, "hvcC arrays do not fill the box")
    nals, p = [], 0
    while p < len(item):
        _need(p + length_size + 2 <= len(item), "truncated NAL unit")
        n = int.from_bytes(item[p:p + length_size], "big")
        q = p + length_size
        _need(n >= 2 and q + n <= len(item), "NAL unit runs past the item")
        b0, b1 = item[q], item[q + 1]
        _need(not b0 & 0x80 and b1 & 7, f"bad NAL unit header {item[q:q + 2].hex()}")
        nals.append((p, q, q + n, (b0 >> 1) & 63))
        p = q + n
    vcl = [i for i, nal in enumerate(nals) if nal[3] < 32]
    _need(bool(vcl), "no VCL NAL unit in the item")
    names = {32: "VPS", 33: "SPS", 34: "PPS", 35: "AUD", 36: "end of sequence", 37: "end of bitstream", 38: "filler",
             39: "prefix SEI", 40: "suffix SEI"}
    pieces = []
    for i, (p, q, e, kind) in enumerate(nals):
        if kind < 32:
            pieces.append((p, q, "NAL length field", i != vcl[-1]))
            pieces.append((q, e, f"HEVC VCL NAL unit (type {kind})", True))
        else:
            pieces.append((p, e, f"HEVC {names.get(kind, f'type {kind}')} NAL unit with length", False))
    return pieces


def _avif(data: bytes, shape) -> list[Segment]:
    return _isobmff(data, shape, b"av01", b"av1C", _av1_obus)


def _heif(data: bytes, shape) -> list[Segment]:
    return _isobmff(data, shape, b"hvc1", b"hvcC", _hevc_nals)


# --- JPEG XL codestream ----------------------------------------------------------------------------

class _Bits:
    """JPEG XL's bit reader: least significant bit first."""

    def __init__(self, data: bytes, pos_bits: int = 0):
        self.data, self.pos = data, pos_bits

    def u(self, n: int) -> int:
        v = 0
        for i in range(n):
            byte = self.pos >> 3
            _need(byte < len(self.data), "JPEG XL header runs past the stream")
            v |= ((self.data[byte] >> (self.pos & 7)) & 1) << i
            self.pos += 1
        return v

    def u32(self, *dists) -> int:
        """``U32``: a 2-bit selector, then the chosen distribution: an int (a constant) or
        ``(bits, offset)``."""
        d = dists[self.u(2)]
        return d if isinstance(d, int) else self.u(d[0]) + d[1]

    def u64(self) -> int:
        sel = self.u(2)
        if sel == 0:
            return 0
        if sel == 1:
            return 1 + self.u(4)
        if sel == 2:
            return 17 + self.u(8)
        value, shift = self.u(12), 12
        while self.u(1):
            if shift == 60:
                return value | self.u(4) << 60
            value |= self.u(8) << shift
            shift += 8
        return value

    def enum(self) -> int:
        return self.u32(0, 1, (4, 2), (6, 18))


_SIZE = ((9, 1), (13, 1), (18, 1), (30, 1))
_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}


def _jxl_size(b: _Bits) -> tuple[int, int]:
    small = b.u(1)
    ysize = (b.u(5) + 1) * 8 if small else b.u32(*_SIZE)
    ratio = b.u(3)
    if ratio == 0:
        xsize = (b.u(5) + 1) * 8 if small else b.u32(*_SIZE)
    else:
        num, den = _RATIOS[ratio]
        xsize = ysize * num // den
    return ysize, xsize


def _jxl_header_bits(data: bytes) -> tuple[int, tuple[int, int], bool]:
    """Bits of signature + SizeHeader + ImageMetadata + CustomTransformData; the size (H, W);
    whether the colour space is grey. ICC, preview, animation and extra channels raise."""
    _need(data[:2] == b"\xff\x0a", "not a bare JPEG XL codestream (no FF 0A signature)")
    b = _Bits(data, 16)
    size = _jxl_size(b)
    grey, xyb = False, True
    if not b.u(1):  # ImageMetadata.all_default
        extra = b.u(1)
        if extra:
            b.u(3)  # orientation
            if b.u(1):
                _jxl_size(b)  # intrinsic size
            _need(not b.u(1), "JPEG XL preview is not supported")
            _need(not b.u(1), "JPEG XL animation is not supported")
        if b.u(1):  # BitDepth: float
            b.u32(32, 16, 24, (6, 1))
            b.u(4)
        else:
            b.u32(8, 10, 12, (6, 1))
        b.u(1)  # modular_16_bit_buffer_sufficient
        _need(b.u32(0, 1, (4, 2), (12, 1)) == 0, "JPEG XL extra channels are not supported")
        xyb = bool(b.u(1))
        if not b.u(1):  # ColourEncoding.all_default
            _need(not b.u(1), "JPEG XL ICC profile is not supported")
            space = b.enum()
            grey = space == 1
            if space != 2:  # white point unless XYB
                if b.enum() == 2:
                    b.u32(*_XY), b.u32(*_XY)
            if space not in (1, 2):  # primaries unless grey or XYB
                if b.enum() == 2:
                    for _ in range(6):
                        b.u32(*_XY)
            if space != 2:  # transfer function
                if b.u(1):
                    b.u(24)
                else:
                    b.enum()
            b.enum()  # rendering intent
        if extra and not b.u(1):  # ToneMapping.all_default
            b.u(16), b.u(16), b.u(1), b.u(16)
        _jxl_extensions(b)
    if not b.u(1):  # CustomTransformData.all_default
        if xyb and not b.u(1):  # OpsinInverseMatrix.all_default
            b.u(16 * 16)
        mask = b.u(3)
        for bit, n in ((1, 15), (2, 55), (4, 210)):
            if mask & bit:
                b.u(16 * n)
    return b.pos, size, grey


_XY = ((19, 0), (19, 524288), (20, 1048576), (21, 2097152))


def _jxl_extensions(b: _Bits) -> None:
    ext = b.u64()
    total = sum(b.u64() for i in range(64) if ext >> i & 1)
    _need(total < 1 << 20, "JPEG XL extension too long")
    b.u(total)


def _jxl(data: bytes, shape) -> list[Segment]:
    h, w, c = shape
    bits, size, grey = _jxl_header_bits(data)
    _need(size == (h, w), f"codestream is {size[1]}x{size[0]}, shape says {w}x{h}")
    _need(grey == (c == 1), f"codestream is {'grey' if grey else 'colour'}, shape has {c} channels")
    start = (bits + 7) // 8
    b = _Bits(data, bits)
    _need(b.u(start * 8 - bits) == 0, "nonzero padding after the JPEG XL image header")
    _need(start < len(data), "no frame after the JPEG XL image header")
    try:  # the frames: checked by the decoder (no parser of the TOC and sections here)
        decoded = imagecodecs.jpegxl_decode(data, numthreads=1)
    except Exception as err:
        raise ValueError(f"the codestream does not decode: {type(err).__name__}: {err}") from None
    _need(decoded.shape[:2] == (h, w), f"decodes to {decoded.shape}, shape says {shape}")
    return [Segment(0, start, "JPEG XL signature and image header (SizeHeader, ImageMetadata, transform data, "
                              "padding)", False),
            Segment(start, len(data), "JPEG XL frames (frame header, TOC, sections)", True)]


# --- best-lossless ---------------------------------------------------------------------------------

def _best_lossless(data: bytes, shape) -> list[Segment]:
    member = best_lossless_tag(data)
    inner = segments(member, data[1:], shape)
    return [Segment(0, 1, "best-lossless tag", True)] + [
        Segment(s.start + 1, s.stop + 1, f"{member}: {s.what}", s.kept) for s in inner]


def _best(data: bytes, shape) -> list[Segment]:
    member = best_tag(data)
    inner = segments(member, data[1:], shape)
    return [Segment(0, 1, "best tag", True)] + [
        Segment(s.start + 1, s.stop + 1, f"{member}: {s.what}", s.kept) for s in inner]


_PARSERS = {
    "raw": _raw, "zlib": _zlib, "png": _png, "brotli": _brotli,
    "jpeg": _jpeg,
    "webp": lambda data, shape: _webp(data, shape, b"VP8 "),
    "webp-lossless": lambda data, shape: _webp(data, shape, b"VP8L"),
    "avif": _avif, "heif": _heif, "heif-420": _heif,
    "jpegxl-lossless": _jxl,
    "best-lossless": _best_lossless,
    "best": _best,
}


# --- the receiver: rebuild the stream from the payload ----------------------------------------------

#: AVIF: the quality that is lossless (its own sequence header and properties); every other
#: quality shares the container of the coder's default quality.
AVIF_LOSSLESS_QUALITY = 100
#: Seed of the reference image (seeded noise of the link's item shape) a receiver encodes once to
#: learn the container of (coder, shape, quality).
REFERENCE_SEED = 0


def rebuild(coder_name: str, payload: bytes, shape: tuple[int, int, int], quality: int | None) -> bytes:
    """The complete ``coder_name`` stream that the registered coder's ``decode(stream, shape)``
    accepts, rebuilt from the item's ``payload`` (:func:`payload_bytes`), the link's
    ``shape = (H, W, C)`` and ``quality``, the content of the minimal header (``None`` for a
    lossless coder).

    It uses only what a receiver knows: the shape, the codec's fixed settings, and what it
    computes itself from (shape, quality): the container and headers of a *reference* stream,
    the registered coder's encoding of seeded noise of that shape (cached per coder, shape and
    reference quality, :func:`_template`, at most 256 entries). Never the original image or
    stream. Of the quality it uses only what the minimal header carries: ``jpeg`` the quality
    (it selects the DQT tables; required), ``avif`` whether it is 100 (lossless; required),
    ``webp`` and ``heif`` nothing (may be ``None``; checked if given).

    Byte-identical to the original stream for every coder this module knows (``jpeg``, ``webp``,
    ``avif``, ``heif``, ``png``, ``zlib``, ``raw``, ``brotli``, ``webp-lossless``,
    ``jpegxl-lossless``, ``best-lossless``): each container is a fixed function of the link's configuration
    (shape, fixed settings) and the header; the recomputed fields (lengths, sizes, PNG CRCs,
    the zlib Adler-32) are those the encoder wrote. For a coder this module does not know the
    payload is the stream: returned unchanged.

    ``ValueError`` (naming the coder) for an unregistered coder, a bad shape or quality, or a
    payload that does not fit the format (e.g. truncated tables, OBUs or DEFLATE data). A
    corrupted payload that still fits is rebuilt; its decode may then fail or differ.
    """
    CODERS.check(coder_name)
    h, w, c = _shape(shape)
    payload = bytes(payload)
    build = _BUILDERS.get(coder_name)
    if build is None:
        return payload
    coder = CODERS.get(coder_name)
    if quality is not None or coder_name in ("jpeg", "avif"):
        if quality is None:
            raise ValueError(f"{coder_name}: rebuild needs the quality (the minimal header)")
        quality = check_quality(coder_name, quality)
    try:
        return build(coder_name, coder, payload, (h, w, c), quality)
    except (IndexError, struct.error) as err:
        raise ValueError(f"{coder_name}: payload does not fit the format ({type(err).__name__}: {err})") from None
    except ValueError as err:
        message = str(err)
        raise ValueError(message if message.startswith(f"{coder_name}: ") else f"{coder_name}: {message}") from None


def _reference_stream(coder, shape, quality: int | None) -> bytes:
    image = np.random.default_rng(REFERENCE_SEED).integers(0, 256, size=shape, dtype=np.uint8)
    return bytes(coder.encode(image) if quality is None else coder.encode_at(image, quality))


@functools.lru_cache(maxsize=256)
def _template(coder_name: str, coder, shape: tuple[int, int, int], quality: int | None) -> tuple:
    """What a receiver learns once per (coder, shape, reference quality) from its own reference
    stream: the container pieces its builder fills with a payload. ``coder`` (the registered
    object) is part of the key, so a replaced coder gets its own entry."""
    ref = _reference_stream(coder, shape, quality)
    try:
        return _TEMPLATES[coder_name](ref, shape)
    except (IndexError, struct.error, ValueError) as err:
        raise ValueError(f"the reference stream does not have the supported layout: {err}") from None


# --- templates from a reference stream --------------------------------------------------------------

def _jpeg_template(ref: bytes, shape) -> tuple:
    """``(pieces, sos_and_tail)``: ``pieces`` are the bytes from SOI up to SOS, each either a
    literal segment or the number of tables of a DHT segment (filled from the payload)."""
    _jpeg(ref, shape)  # checks the layout
    pieces, pos = [ref[:2]], 2
    while True:
        _need(ref[pos] == 0xFF and ref[pos + 1] != 0xFF, "fill bytes before a marker")
        marker = ref[pos + 1]
        end = pos + 2 + struct.unpack(">H", ref[pos + 2:pos + 4])[0]
        if marker == 0xDA:
            break
        if marker == 0xC4:
            p, n = pos + 4, 0
            while p < end:
                p += 17 + sum(ref[p + 1:p + 17])
                n += 1
            pieces.append(n)
        else:
            pieces.append(ref[pos:end])
        pos = end
    scan = [s for s in segments("jpeg", ref, shape) if s.what == "scan data"]
    _need(len(scan) == 1 and ref[scan[0].stop:] == b"\xff\xd9", "more than one scan, or not EOI after the scan")
    return tuple(pieces), ref[pos:scan[0].start]


def _deflate_template(ref: bytes, shape) -> tuple:
    """zlib: ``(zlib header,)``."""
    _zlib(ref, shape)
    return (ref[:2],)


def _png_template(ref: bytes, shape) -> tuple:
    """``(bytes before the first IDAT, zlib header, bytes after the last IDAT)``."""
    segs = _png(ref, shape)
    idat = [s for s in segs if s.what.startswith("IDAT")]
    first, last = min(s.start for s in idat), max(s.stop for s in idat)
    _need(all(s.what.startswith("IDAT") or s.kept for s in segs if first <= s.start < last),
          "chunks between the IDAT chunks")
    return ref[:first], ref[first + 8:first + 10], ref[last:]


def _isobmff_template(ref: bytes, shape, item_type: bytes, config: bytes, parse_item) -> tuple:
    """``(head, (iloc_length_field_pos, size), mdat_header_size, mdat_before_item, entries)``:
    ``head`` is the file up to the mdat box that ends with the primary item (one extent, the
    last bytes of the file); ``entries`` rebuild the item in order: bytes (dropped OBUs / NAL
    units, as they are), ``"payload"`` (AVIF: the kept OBUs, contiguous), ``"nal"`` (HEIF: a VCL
    NAL unit with its length field, both in the payload), ``"last nal"`` (HEIF: the last VCL
    NAL unit, the rest of the payload; its length field is rewritten); the HEIF ones as
    ``(kind, length_field_size)``."""
    _, conf, extents, _, top = _isobmff_item(ref, shape, item_type, config)
    _need(len(extents) == 1, f"the primary item has {len(extents)} extents")
    start, stop, field, size = extents[0]
    kind, m_start, m_body, m_end = top[-1]
    _need(kind == b"mdat" and m_body <= start and stop == m_end == len(ref),
          "the primary item is not at the end of the last box (an mdat)")
    _need(size in (4, 8) and m_body - m_start in (8, 16), "iloc without an extent length field")
    item = ref[start:stop]
    entries: list = []
    for p0, p1, what, kept in parse_item(item, ref, conf):
        if what == "NAL length field":  # HEVC: kept (the payload has it) unless the last VCL NAL's
            entries.append(("nal" if kept else "last nal", p1 - p0))
        elif not kept:
            entries.append(item[p0:p1])
        elif item_type == b"av01":
            _need(not entries or entries[-1] == "payload" or "payload" not in entries,
                  "the primary item's frame OBUs are not contiguous")
            if not entries or entries[-1] != "payload":
                entries.append("payload")
    if item_type == b"hvc1":
        kinds = [e[0] for e in entries if isinstance(e, tuple)]
        _need(kinds.count("last nal") == 1 and kinds[-1] == "last nal", "unexpected NAL unit layout")
    return ref[:m_start], (field, size), m_body - m_start, ref[m_body:start], tuple(entries)


def _jxl_template(ref: bytes, shape) -> tuple:
    """``(signature and image header,)``."""
    (head, _frames) = _jxl(ref, shape)
    return (ref[:head.stop],)


_TEMPLATES = {
    "jpeg": _jpeg_template, "zlib": _deflate_template, "png": _png_template,
    "avif": lambda ref, shape: _isobmff_template(ref, shape, b"av01", b"av1C", _av1_obus),
    "heif": lambda ref, shape: _isobmff_template(ref, shape, b"hvc1", b"hvcC", _hevc_nals),
    "heif-420": lambda ref, shape: _isobmff_template(ref, shape, b"hvc1", b"hvcC", _hevc_nals),
    "jpegxl-lossless": _jxl_template,
}


# --- builders: (name, coder, payload, shape, quality) -> stream -------------------------------------

def _b_whole(name, coder, payload: bytes, shape, quality) -> bytes:
    if name == "raw":
        h, w, c = shape
        _need(len(payload) == h * w * c, f"{len(payload)} bytes, expected {h * w * c} for shape {shape}")
    return payload


def _inflate_exactly(deflate: bytes, size: int) -> bytes:
    """The raw DEFLATE data inflated (at most ``size`` + 1 bytes: no bomb), which must end the
    payload and be ``size`` bytes."""
    inflater = zlib.decompressobj(-15)
    try:
        out = inflater.decompress(deflate, size + 1)
    except zlib.error as err:
        raise ValueError(f"DEFLATE data does not inflate: {err}") from None
    _need(len(out) == size, f"DEFLATE data inflates to {len(out)}{'+' if len(out) > size else ''} bytes, "
                            f"expected {size}")
    _need(inflater.eof and not inflater.unused_data and not inflater.unconsumed_tail,
          "DEFLATE data is truncated or has trailing bytes")
    return out


def _b_zlib(name, coder, payload: bytes, shape, quality) -> bytes:
    (header,) = _template(name, coder, shape, None)
    h, w, c = shape
    raw = _inflate_exactly(payload, h * w * c)
    return header + payload + struct.pack(">I", zlib.adler32(raw))


def _b_png(name, coder, payload: bytes, shape, quality) -> bytes:
    head, header, tail = _template(name, coder, shape, None)
    h, w, c = shape
    filtered = _inflate_exactly(payload, h * (w * c + 1))
    z = header + payload + struct.pack(">I", zlib.adler32(filtered))
    step = max(ImageFile.MAXBLOCK, w * 4)  # Pillow's encoder buffer: one IDAT chunk per buffer
    chunks = [z[i:i + step] for i in range(0, len(z), step)]
    return head + b"".join(struct.pack(">I", len(d)) + b"IDAT" + d + struct.pack(">I", zlib.crc32(b"IDAT" + d))
                           for d in chunks) + tail


def _riff_webp(fourcc: bytes, body: bytes) -> bytes:
    chunk = fourcc + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def _b_webp(name, coder, payload: bytes, shape, quality) -> bytes:
    h, w, c = shape
    _need(w < 1 << 14 and h < 1 << 14, f"shape {shape} is too large for VP8")
    _need(len(payload) >= 3, "payload shorter than the VP8 frame tag")
    tag = payload[0] | payload[1] << 8 | payload[2] << 16
    _need(not tag & 1 and (tag >> 1) & 7 <= 3 and (tag >> 4) & 1, "VP8 frame tag: not a shown key frame")
    _need(3 + (tag >> 5) <= len(payload), "VP8 first partition runs past the payload")
    return _riff_webp(b"VP8 ", payload[:3] + b"\x9d\x01\x2a" + struct.pack("<HH", w, h) + payload[3:])


def _b_webp_lossless(name, coder, payload: bytes, shape, quality) -> bytes:
    h, w, c = shape
    _need(w <= 1 << 14 and h <= 1 << 14, f"shape {shape} is too large for VP8L")
    _need(len(payload) > 0, "empty payload")
    return _riff_webp(b"VP8L", b"\x2f" + struct.pack("<I", (w - 1) | (h - 1) << 14) + payload)


def _b_jpeg(name, coder, payload: bytes, shape, quality) -> bytes:
    pieces, sos = _template(name, coder, shape, quality)
    out, p = [], 0
    for piece in pieces:
        if isinstance(piece, bytes):
            out.append(piece)
            continue
        start = p
        for _ in range(piece):
            _need(p + 17 <= len(payload), "payload ends inside the Huffman tables")
            _need(payload[p] >> 4 <= 1 and payload[p] & 15 <= 3, f"bad Huffman table class/id {payload[p]:#x}")
            n = sum(payload[p + 1:p + 17])
            _need(n <= 256 and p + 17 + n <= len(payload), "Huffman table runs past the payload")
            p += 17 + n
        out.append(b"\xff\xc4" + struct.pack(">H", 2 + p - start) + payload[start:p])
    _need(p < len(payload), "no scan data after the Huffman tables")
    return b"".join(out) + sos + payload[p:] + b"\xff\xd9"


def _b_isobmff(name, coder, payload: bytes, shape, quality) -> bytes:
    if name == "avif":  # 1 header bit: lossless or not
        ref_quality = AVIF_LOSSLESS_QUALITY if quality == AVIF_LOSSLESS_QUALITY else coder.default_quality
    else:  # heif: 0 header bits, every quality has the container of the default one
        ref_quality = coder.default_quality
    head, (field, size), mdat_head, before, entries = _template(name, coder, shape, ref_quality)
    item, p = [], 0
    if name == "avif":
        for _, _, what, kept in _obu_pieces(payload):
            _need(kept, f"{what} in the payload")
    for entry in entries:
        if isinstance(entry, bytes):
            item.append(entry)
        elif entry == "payload":
            item.append(payload)
        elif entry[0] == "nal":
            n = entry[1]
            _need(p + n <= len(payload), "payload ends inside a NAL length field")
            end = p + n + int.from_bytes(payload[p:p + n], "big")
            _need(end <= len(payload), "NAL unit runs past the payload")
            item.append(payload[p:end])
            p = end
        else:  # "last nal"
            nal = payload[p:]
            _need(len(nal) >= 2 and not nal[0] & 0x80 and nal[1] & 7 and (nal[0] >> 1) & 63 < 32,
                  "the payload does not end with a VCL NAL unit")
            _need(len(nal) < 1 << (8 * entry[1]), "NAL unit too long for its length field")
            item.append(len(nal).to_bytes(entry[1], "big") + nal)
    item_bytes = b"".join(item)
    data = bytearray(head)
    data[field:field + size] = len(item_bytes).to_bytes(size, "big")
    body_size = len(before) + len(item_bytes)
    if mdat_head == 8:
        _need(8 + body_size < 1 << 32, "item too large for a 32-bit mdat size")
        mdat = struct.pack(">I4s", 8 + body_size, b"mdat")
    else:
        mdat = struct.pack(">I4sQ", 1, b"mdat", 16 + body_size)
    return bytes(data) + mdat + before + item_bytes


def _b_jxl(name, coder, payload: bytes, shape, quality) -> bytes:
    (head,) = _template(name, coder, shape, None)
    _need(len(payload) > 0, "empty payload")
    return head + payload


def _b_best_lossless(name, coder, payload: bytes, shape, quality) -> bytes:
    member = best_lossless_tag(payload)
    return payload[:1] + rebuild(member, payload[1:], shape, None)


def _b_best(name, coder, payload: bytes, shape, quality) -> bytes:
    member = best_tag(payload)
    return payload[:1] + rebuild(member, payload[1:], shape, quality)


_BUILDERS = {
    "raw": _b_whole, "brotli": _b_whole, "zlib": _b_zlib, "png": _b_png,
    "jpeg": _b_jpeg, "webp": _b_webp, "webp-lossless": _b_webp_lossless,
    "avif": _b_isobmff, "heif": _b_isobmff, "heif-420": _b_isobmff,
    "jpegxl-lossless": _b_jxl, "best-lossless": _b_best_lossless, "best": _b_best,
}


# --- an item on the link without its container -------------------------------------------------

def item_bits(coder_name: str, stream: bytes, shape: tuple[int, int, int], quality: int | None) -> np.ndarray:
    """What the link carries for one item with ``classical.container = "none"``: the minimal
    header (:func:`header_bits` bits: ``jpeg`` the quality 1..100 in 7 bits, ``avif`` 1 bit,
    set when lossless) then the payload bytes, as a uint8 bit array of length
    :func:`payload_bits`."""
    if coder_name == "best":  # the tag, then the member's own item
        member = best_tag(stream)
        return np.concatenate([bytes_to_bits(bytes(stream[:1])), item_bits(member, stream[1:], shape, quality)])
    nh = header_bits(coder_name)
    head = np.zeros(nh, dtype=np.uint8)
    if nh:
        value = int(quality) if coder_name == "jpeg" else int(quality == 100)
        head[:] = [(value >> (nh - 1 - k)) & 1 for k in range(nh)]
    return np.concatenate([head, bytes_to_bits(payload_bytes(coder_name, stream, shape))])


def item_stream(coder_name: str, bits: np.ndarray, shape: tuple[int, int, int]) -> bytes:
    """The receiver's side of :func:`item_bits`: the codec's whole stream rebuilt from the
    header and payload bits (:func:`rebuild`). ``ValueError`` if they do not form one."""
    bits = np.asarray(bits, dtype=np.uint8)
    if coder_name == "best":
        if len(bits) < 8:
            raise ValueError(f"best: {len(bits)} bits hold no tag")
        tag = bits_to_bytes(bits[:8], 1)
        return tag + item_stream(best_tag(tag), bits[8:], shape)
    nh = header_bits(coder_name)
    if len(bits) < nh or (len(bits) - nh) % 8:
        raise ValueError(f"{coder_name}: {len(bits)} bits are not a {nh}-bit header and whole payload bytes")
    value = 0
    for b in bits[:nh]:
        value = (value << 1) | int(b)
    quality = None
    if coder_name == "jpeg":
        quality = value
    elif coder_name == "avif":
        quality = 100 if value else 60
    body = bits_to_bytes(bits[nh:], (len(bits) - nh) // 8)
    return rebuild(coder_name, body, shape, quality)

"""Image codecs at a PSNR target on the CIFAR-10 test split (docs/codecs.md).

For each codec: mean bits per image, mean PSNR and the PSNR of the mean MSE, mean SSIM, the
share of images meeting the target, the header share, and the encode time per image (the
whole quality search, and one encode at the quality found).

    .venv/bin/python benchmarks/bench_codecs.py [--dir D] [--images 1000] [--target 30]

Images: the first ``N / 10`` files (sorted by name) of each class, classes in sorted order
(round robin over the classes, so every class counts the same; N not a multiple of 10 gives
the first classes one more). Each is read as 32x32 RGB uint8.

SSIM: ``pytorch_msssim.ssim`` (Gaussian window 11, sigma 1.5, ``data_range=255``) on the
RGB image. MS-SSIM cannot run on 32x32 images: ``pytorch_msssim.ms_ssim`` needs the smaller
side above ``(win_size - 1) * 16`` (160 for the standard window 11, 32 for the smallest
useful window 3), as its five scales halve the image four times.

Header bytes: what is not the codec's entropy-coded payload, parsed from each stream. JPEG:
every marker segment before the scan data (SOI, APP0/JFIF, DQT, SOF, DHT, SOS) plus EOI; WebP:
the RIFF and VP8 chunk headers and the 10-byte VP8 key-frame header (30 bytes); AVIF and HEIF:
everything but the payload of the ``mdat`` box (ftyp, meta with its item properties such as
``av1C`` / ``hvcC`` holding the codec parameter sets, and the mdat box header); PNG:
everything but the IDAT payloads; ``best-lossless``: the 1-byte tag plus the member's header
(JPEG XL lossless and Brotli streams are counted as all payload).

Exit status 1 if the modern intra codec (the better of avif and heif) does not need fewer
bits per image than JPEG at the target, or JPEG not fewer than PNG.
"""

from __future__ import annotations

import argparse
import math
import platform
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pytorch_msssim import ssim

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import simulator.classical.codecs as codecs  # noqa: E402  (registers the codecs)
from simulator.classical import quality as Q  # noqa: E402
from simulator.classical import source_coding as sc  # noqa: E402
from simulator.registry import CODERS  # noqa: E402

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "test"
CODECS = ["jpeg", "webp", "avif", "heif", "png", "best-lossless"]


def load_images(root: Path, n: int) -> np.ndarray:
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    if not classes:
        raise SystemExit(f"no class folders under {root}")
    per_class = [sorted(c.glob("*.jpg")) + sorted(c.glob("*.png")) for c in classes]
    files = []
    for i in range(max(len(f) for f in per_class)):
        for f in per_class:
            if i < len(f) and len(files) < n:
                files.append(f[i])
    out = []
    for f in files:
        with Image.open(f) as im:
            out.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
    return np.stack(out)


def _isobmff_header(data: bytes) -> int:
    pos, payload = 0, 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif size == 0:
            size = len(data) - pos
        if kind == b"mdat":
            payload += size - head
        pos += size
    return len(data) - payload


def _jpeg_header(data: bytes) -> int:
    pos = 2  # SOI
    while pos + 4 <= len(data):
        marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2:pos + 4])[0]
        pos += 2 + length
        if marker == 0xDA:  # SOS: entropy-coded data follows
            return pos + 2  # + EOI
    return len(data)


def _png_header(data: bytes) -> int:
    pos, payload = 8, 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            payload += length
        pos += 12 + length
    return len(data) - payload


def header_bytes(name: str, data: bytes) -> int:
    if name == "jpeg":
        return _jpeg_header(data)
    if name == "webp":
        return 30
    if name in ("avif", "heif"):
        return _isobmff_header(data)
    if name == "png":
        return _png_header(data)
    if name == "webp-lossless":
        return 25  # RIFF + VP8L chunk header + 5-byte VP8L header
    if name == "zlib":
        return 6
    if name == "best-lossless":
        return 1 + header_bytes(codecs.best_lossless_tag(data), data[1:])
    return 0


def run_codec(name: str, images: np.ndarray, target: float) -> dict:
    coder = CODERS.get(name)
    bits, psnr, mse, met, head, search_ms, encode_ms, decoded = [], [], [], [], [], [], [], []
    for image in images:
        t0 = time.perf_counter()
        res = Q.encode_to_target(name, image, target)
        search_ms.append(1e3 * (time.perf_counter() - t0))
        t0 = time.perf_counter()
        again = coder.encode(image) if res.quality is None else coder.encode_at(image, res.quality)
        encode_ms.append(1e3 * (time.perf_counter() - t0))
        assert again == res.stream, name  # deterministic
        out = sc.decode(res.stream, name, image.shape)
        decoded.append(out)
        bits.append(res.bits)
        psnr.append(res.psnr_db)
        mse.append(float(np.mean((out.astype(np.float64) - image) ** 2)))
        met.append(res.met)
        head.append(8 * header_bytes(name, res.stream))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    y = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).float()
    s = ssim(x, y, data_range=255, size_average=False).numpy()
    finite = [p for p in psnr if math.isfinite(p)]
    m = float(np.mean(mse))
    return {
        "codec": name, "bits": float(np.mean(bits)),
        "psnr": float(np.mean(finite)) if finite else math.inf,
        "psnr_of_mse": math.inf if m == 0 else 10 * math.log10(255 ** 2 / m),
        "ssim": float(np.mean(s)), "met": float(np.mean(met)),
        "header_share": float(np.sum(head) / np.sum(bits)), "header_bits": float(np.mean(head)),
        "search_ms": float(np.mean(search_ms)), "encode_ms": float(np.mean(encode_ms)),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="CIFAR-10 test split as <class>/<image>")
    ap.add_argument("--images", type=int, default=1000, help="number of images (N/10 per class)")
    ap.add_argument("--target", type=float, default=30.0, help="PSNR target in dB")
    ap.add_argument("--codecs", default=",".join(CODECS), help="comma-separated registered coders")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    images = load_images(args.dir, args.images)
    print(f"{len(images)} images from {args.dir}, target {args.target:g} dB, {platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}", flush=True)
    rows = []
    t0 = time.perf_counter()
    for name in args.codecs.split(","):
        rows.append(run_codec(name, images, args.target))
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    print(f"| codec | bits/image | mean PSNR (dB) | PSNR of mean MSE (dB) | SSIM | meets {args.target:g} dB "
          f"| header bits (share) | search ms/image | encode ms/image |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['codec']} | {r['bits']:.0f} | {r['psnr']:.2f} | {r['psnr_of_mse']:.2f} | {r['ssim']:.4f} "
              f"| {100 * r['met']:.1f} % | {r['header_bits']:.0f} ({100 * r['header_share']:.1f} %) "
              f"| {r['search_ms']:.2f} | {r['encode_ms']:.3f} |")
    by = {r["codec"]: r["bits"] for r in rows}
    ok = True
    modern = [by[c] for c in ("avif", "heif") if c in by]
    if "jpeg" in by and modern and not min(modern) < by["jpeg"]:
        print("FAIL: neither avif nor heif needs fewer bits than jpeg at the target")
        ok = False
    if "jpeg" in by and "png" in by and not by["jpeg"] < by["png"]:
        print("FAIL: jpeg does not need fewer bits than png")
        ok = False
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

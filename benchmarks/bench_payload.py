"""Mean file bits and container-free payload bits per image of each codec (docs/codecs.md,
"Payload without containers").

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_payload.py [--digits 300] [--dir D]
        [--first 500] [--per-class 20]

Images: the first ``--digits`` sklearn digits (8x8 grey) and, of the CIFAR-10 test split in
``--dir``, the files ``<class>/0500.jpg`` .. ``<class>/0519.jpg`` of each class (classes in
sorted order; 200 images), read with PIL as 32x32 RGB uint8. Each lossy codec at a fixed
quality (jpeg 75, webp 75, avif 60, heif 50), each lossless coder as registered.

*PSNR dB*: of the lossy codecs, the PSNR of the mean MSE over the images
(``simulator.metrics.psnr_from_mse``): the table compares each codec with itself (file vs
payload); across codecs the fidelity differs.
*file bits*: 8 x the whole stream. *payload bits*: ``payload.payload_bits`` = 8 x the payload
bytes + the minimal per-item header (``payload.MINIMAL_HEADER_BITS``).

Two rows are not registered coders. *jpeg, standard Huffman tables*: libjpeg at quality 75
with ``optimize=False`` (the fixed tables of the standard's Annex K, which a link configures
once; the decoded pixels are those of ``jpeg``), counted as its scan data + the 7-bit
quality. *min member payload + tag*: per image the shortest payload of the ``best-lossless``
members plus the 8-bit tag (``best-lossless`` itself picks its member by file size).

Prints a markdown table; the CIFAR columns are left out (with a note) when the folder is
missing.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import imagecodecs
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import simulator.classical.codecs as codecs  # noqa: E402  (registers the codecs)
from simulator.classical import payload as P  # noqa: E402
from simulator.classical import source_coding as sc  # noqa: E402
from simulator.metrics import psnr_from_mse  # noqa: E402
from simulator.registry import CODERS  # noqa: E402
from simulator.sources import load_dataset  # noqa: E402

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "test"
LOSSY = {"jpeg": 75, "webp": 75, "avif": 60, "heif": 50}
LOSSLESS = ["raw", "zlib", "png", "brotli", "webp-lossless", "jpegxl-lossless", "best-lossless"]
BEST = "min member payload + tag"
STD_JPEG = "jpeg, standard Huffman tables"


def cifar_images(root: Path, first: int, per_class: int) -> np.ndarray:
    out = []
    for cls in sorted(p for p in root.iterdir() if p.is_dir()):
        for i in range(first, first + per_class):
            with Image.open(cls / f"{i:04d}.jpg") as im:
                out.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
    return np.stack(out)


def measure(images: np.ndarray) -> dict[str, tuple[float, float, float]]:
    """codec -> (mean file bits, mean payload bits) per image, and the PSNR of the mean MSE (dB)."""
    rows = {}
    for name in [*LOSSY, *LOSSLESS]:
        coder = CODERS.get(name)
        file_bits, payload_bits, mse = [], [], []
        for image in images:
            stream = coder.encode_at(image, LOSSY[name]) if name in LOSSY else coder.encode(image)
            file_bits.append(8 * len(stream))
            payload_bits.append(P.payload_bits(name, stream, image.shape))
            if name in LOSSY:
                diff = image.astype(np.float64) - sc.decode(stream, name, image.shape)
                mse.append(float(np.mean(diff ** 2)))
        rows[name] = (float(np.mean(file_bits)), float(np.mean(payload_bits)),
                      psnr_from_mse(float(np.mean(mse))) if mse else float("inf"))
    best = [8 + min(P.payload_bits(m, CODERS.get(m).encode(image), image.shape) for m in codecs.BEST_LOSSLESS_MEMBERS)
            for image in images]
    rows[BEST] = (float("nan"), float(np.mean(best)), float("inf"))
    std = []
    for image in images:
        stream = bytes(imagecodecs.jpeg8_encode(image[..., 0] if image.shape[-1] == 1 else image, level=LOSSY["jpeg"],
                                                optimize=False,
                                                subsampling=codecs.JPEG_SUBSAMPLING if image.shape[-1] == 3 else None))
        scan = sum(s.stop - s.start for s in P.segments("jpeg", stream, image.shape) if s.what == "scan data")
        std.append(8 * scan + P.header_bits("jpeg"))
    rows[STD_JPEG] = (float("nan"), float(np.mean(std)), rows["jpeg"][2])  # same pixels as jpeg
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--digits", type=int, default=300)
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--first", type=int, default=500, help="first CIFAR file number per class")
    ap.add_argument("--per-class", type=int, default=20)
    args = ap.parse_args()

    t0 = time.perf_counter()
    sets = {f"{args.digits} digits (8x8 grey)": load_dataset("digits").images[:args.digits]}
    if (args.dir / "airplane").is_dir():
        cifar = cifar_images(args.dir, args.first, args.per_class)
        sets[f"{len(cifar)} CIFAR-10 test (32x32 RGB)"] = cifar
    else:
        print(f"(CIFAR-10 test split not found at {args.dir}: digits only)\n")
    results = {label: measure(images) for label, images in sets.items()}

    head = "| codec | quality | header bits |"
    rule = "|---|---:|---:|"
    for label in results:
        head += f" {label}: PSNR dB | file bits | payload bits | payload / file |"
        rule += "---:|---:|---:|---:|"
    print(head)
    print(rule)
    for name in [*LOSSY, STD_JPEG, *LOSSLESS, BEST]:
        quality = str(LOSSY.get(name, 75 if name == STD_JPEG else "lossless"))
        header = {BEST: "8 (tag)", STD_JPEG: "7"}.get(name) or str(P.header_bits(name))
        line = f"| {name if name in (BEST, STD_JPEG) else f'`{name}`'} | {quality} | {header} |"
        for rows in results.values():
            file_bits, payload_bits, psnr = rows[name]
            line += f" {psnr:.2f} |" if np.isfinite(psnr) else " lossless |"
            if np.isnan(file_bits):
                line += f" | {payload_bits:.0f} | |"
            else:
                line += f" {file_bits:.0f} | {payload_bits:.0f} | {100 * payload_bits / file_bits:.1f} % |"
        print(line)
    print(f"\nMean bits per image. Python {platform.python_version()}, {platform.machine()}; "
          f"{time.perf_counter() - t0:.1f} s.")


if __name__ == "__main__":
    main()

"""The two target searches of ``classical.search`` side by side: per image the stream each
returns (container-free payload bits) and the FLOP-equivalents of the encodes and decodes it
ran (simulator.flops), at 20, 26 and 32 dB.

Images: every 37th of the source from the 6th (a sample neither search was tuned on).

Usage: OMP_NUM_THREADS=1 python benchmarks/compare_search.py digits [--images 40] [--coders webp best]
       OMP_NUM_THREADS=1 python benchmarks/compare_search.py imagefolder:../shared/data/cifar10/test --images 30
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from simulator.classical import payload
from simulator.classical.quality import best_to_target, encode_to_target
from simulator.sources import load_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source")
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--coders", nargs="+", default=["webp", "best"])
    args = ap.parse_args()
    images = load_dataset(args.source).images[5::37][: args.images]
    shape = images.shape[1:]

    def size(member, stream, quality):
        return len(payload.item_bits(member, stream, shape, quality))

    for coder in args.coders:
        for target in (20.0, 26.0, 32.0):
            bits, flops, secs = {}, {}, {}
            for search in ("scan", "bisect"):
                t0 = time.perf_counter()
                rs = [best_to_target(im, target, size, search) if coder == "best"
                      else encode_to_target(coder, im, target, search) for im in images]
                secs[search] = (time.perf_counter() - t0) / len(images)
                bits[search] = np.array([size(coder, r.stream, r.quality) for r in rs], dtype=np.float64)
                flops[search] = np.mean([r.flops for r in rs])
            extra = bits["bisect"] / bits["scan"] - 1
            print(f"{coder} {target:g} dB: payload bits scan {bits['scan'].mean():.1f}, bisect {bits['bisect'].mean():.1f} "
                  f"(+{100 * extra.mean():.2f} % mean, {100 * (extra > 0).mean():.0f} % of images longer, "
                  f"max +{100 * extra.max():.1f} %); FLOP-equivalents per image scan {flops['scan']:.3g}, "
                  f"bisect {flops['bisect']:.3g}; wall {1e3 * secs['scan']:.1f} / {1e3 * secs['bisect']:.1f} ms")


if __name__ == "__main__":
    main()

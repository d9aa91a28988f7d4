"""Measure the FLOP-equivalent costs of the operations that have no FLOP count: each
classical coder's encode and decode, and the entropy coder's per-symbol work.

The compute-time model charges every stage a node runs in FLOPs (docs/metrics.md, "Compute
time"). A network's FLOPs are counted (:mod:`simulator.flops`); a codec call or an
entropy-coded symbol has no such count, so its cost is measured here in seconds on one core
and converted to FLOP-equivalents with the same core's measured throughput on semsim's own
networks (the natural-RGB hyperprior language's analysis and synthesis transforms, batch 64,
32x32x3): one second of that core is ``REFERENCE_FLOP_PER_S`` FLOPs. A node of
``nodes.teacher_flop_per_s = REFERENCE_FLOP_PER_S`` therefore spends, on every stage, about the
time the reference core does.

Each cost is ``per_call + per_sample * samples`` (``samples = H * W * C``), fitted by
non-negative least squares on relative errors to the median time per call at three item
shapes (8x8x1 digits, 32x32x3 and 64x64x3 photos); a lossy coder's time is averaged over qualities 10, 30, 50, 70 and 90. The script
prints the ``CodecCost`` of each registered coder and the entropy coder's cost, the values
``simulator/classical/*.py`` and ``simulator/flops.py`` hold.

Usage: OMP_NUM_THREADS=1 python benchmarks/measure_op_costs.py [--dir ../shared/data/cifar10/test]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from simulator.classical import codecs  # noqa: F401  (registers the codecs)
from simulator.flops import forward_flops
from simulator.registry import CODERS

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "test"
QUALITIES = (10, 30, 50, 70, 90)


def _median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def reference_flop_per_s() -> float:
    """FLOP/s of one core on the natural-RGB language's transforms (batch 64, 32x32x3)."""
    from simulator.semantic.hyperprior import HyperpriorCodec, HyperShape
    from simulator.zoo import entry

    arch = HyperShape(**entry("natural-rgb").arch)
    codec = HyperpriorCodec(arch, (0.01,), generator=torch.Generator().manual_seed(0)).eval()
    x = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    r = torch.zeros(64, dtype=torch.long)

    def run():
        with torch.no_grad():
            y = torch.round(codec.analysis(x) * codec.gain(r))
            codec.synthesis(y, r, r, (32, 32))

    flops = forward_flops(run)
    run()
    return flops / _median_s(run, 7)


def images(folder: Path) -> dict[tuple[int, int, int], np.ndarray]:
    """Eight items per shape: digits (8x8x1), photos (32x32x3) and 2x2 mosaics of them (64x64x3)."""
    from simulator.sources import load_dataset

    digits = load_dataset("digits").images[:8]
    if folder.is_dir():
        photos = load_dataset(f"imagefolder:{folder}").images[:32]
    else:  # seeded smooth synthetic photos
        g = np.random.default_rng(0)
        base = g.integers(0, 256, size=(32, 4, 4, 3)).astype(np.float64)
        photos = np.clip(np.kron(base, np.ones((1, 8, 8, 1))) + g.normal(0, 12, (32, 32, 32, 3)), 0, 255)
        photos = photos.astype(np.uint8)
    big = np.stack([np.concatenate([np.concatenate([photos[4 * i], photos[4 * i + 1]], axis=1),
                                    np.concatenate([photos[4 * i + 2], photos[4 * i + 3]], axis=1)], axis=0)
                    for i in range(8)])
    return {(8, 8, 1): digits, (32, 32, 3): photos[:8], (64, 64, 3): big}


def fit(samples: list[int], seconds: list[float]) -> tuple[float, float]:
    """Non-negative ``seconds = a + b * samples`` with the smallest relative errors (each row
    weighted by 1 / its time, so the 8x8 items are fitted as closely as the 64x64 ones)."""
    from scipy.optimize import nnls

    t = np.maximum(np.asarray(seconds, dtype=np.float64), 1e-9)
    a_mat = np.stack([np.ones(len(samples)), np.asarray(samples, dtype=np.float64)], axis=1) / t[:, None]
    (a, b), _ = nnls(a_mat, np.ones(len(t)))
    return float(a), float(b)


def coder_seconds(name: str, items: np.ndarray, repeats: int) -> tuple[float, float]:
    """Median seconds per encode and per decode call of coder ``name`` over ``items``."""
    coder = CODERS.get(name)
    enc, dec = [], []
    shape = items.shape[1:]
    for img in items:
        calls = [None] if coder.lossless else list(QUALITIES)
        for q in calls:
            def encode(q=q, img=img):
                return coder.encode(img) if q is None else coder.encode_at(img, q)

            stream = encode()
            enc.append(_median_s(encode, repeats))
            dec.append(_median_s(lambda: coder.decode(stream, shape), repeats))
    return float(np.mean(enc)), float(np.mean(dec))


def entropy_seconds(repeats: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(per_call, per_symbol)`` seconds of entropy encoding and decoding (Gaussian tables)."""
    from simulator.semantic.entropy import decode_item, encode_item, gaussian_table

    table = gaussian_table(np.geomspace(0.2, 20.0, 32))
    g = np.random.default_rng(0)
    sizes = (64, 512, 4096)
    enc, dec = [], []
    for j in sizes:
        row = g.integers(0, 32, size=j)
        sym = np.round(g.normal(0, 1, size=j) * np.geomspace(0.2, 20.0, 32)[row]).astype(np.int64)
        data = encode_item(sym, 0, 1, table, row)
        enc.append(_median_s(lambda: encode_item(sym, 0, 1, table, row), repeats))
        dec.append(_median_s(lambda: decode_item(data, 1, table, row), repeats))
    return fit(list(sizes), enc), fit(list(sizes), dec)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="CIFAR-10 image folder (else synthetic photos)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    ref = reference_flop_per_s()
    print(f"REFERENCE_FLOP_PER_S = {ref:.3g}  # one core, natural-RGB language transforms")
    shapes = images(args.dir)
    for name in CODERS.names():
        if name in ("best", "best-lossless"):  # composed of their members' costs (codecs.py)
            continue
        per = {s: coder_seconds(name, items, args.repeats) for s, items in shapes.items()}
        samples = [int(np.prod(s)) for s in per]
        e = fit(samples, [v[0] for v in per.values()])
        d = fit(samples, [v[1] for v in per.values()])
        print(f'"{name}": CodecCost(encode=({e[0] * ref:.3g}, {e[1] * ref:.3g}), '
              f'decode=({d[0] * ref:.3g}, {d[1] * ref:.3g})),  '
              f"# s/call at 64/3072/12288 samples: enc "
              + "/".join(f"{v[0] * 1e3:.3f}" for v in per.values()) + " ms, dec "
              + "/".join(f"{v[1] * 1e3:.3f}" for v in per.values()) + " ms")
    (ea, eb), (da, db) = entropy_seconds(args.repeats)
    print(f"ENTROPY_COST = CodecCost(encode=({ea * ref:.3g}, {eb * ref:.3g}), decode=({da * ref:.3g}, {db * ref:.3g}))"
          "  # per call, per symbol")


if __name__ == "__main__":
    main()

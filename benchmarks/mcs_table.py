"""Link adaptation: the MCS chosen at a few Es/N0 values, with every entry measured on the way
(docs/phy.md, "Link adaptation (MCS)").

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mcs_table.py            # n = 480, AWGN, 0/8/16 dB
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mcs_table.py --n 2048 --snr 4 12 20 --verify 4000

Prints one line per measured entry and the choice; ``--verify B`` then sends B fresh blocks
(another seed) with the chosen pair through the bit-true PHY and prints their BLER and 95%
Clopper-Pearson interval. Uses a private cache directory unless ``--cache`` is given.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from simulator.context import RunContext
from simulator.link.calibration import clopper_pearson
from simulator.link.config import LinkConfig
from simulator.link.mcs import MCS_TABLE_NAME, adapted, choose_mcs
from simulator.link.phy import BitTruePhy


def verify(link: LinkConfig, ctx: RunContext, blocks: int) -> tuple[int, int]:
    phy = BitTruePhy(link, ctx)
    rng = ctx.rng("mcs.verify")
    errs = done = 0
    while done < blocks:
        b = min(1000, blocks - done)
        _, ok = phy.transmit(rng.integers(0, 2, size=(b, phy.k), dtype=np.uint8))
        errs += int((~ok).sum())
        done += b
    return errs, done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=480, help="scenario codeword length code.n")
    ap.add_argument("--snr", type=float, nargs="+", default=[0.0, 8.0, 16.0], help="Es/N0 values, dB")
    ap.add_argument("--channel", default="awgn")
    ap.add_argument("--target-bler", type=float, default=0.1)
    ap.add_argument("--header-bits", type=int, default=16)
    ap.add_argument("--verify", type=int, default=2000, help="fresh blocks sent with each choice (0: none)")
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(1)
    cache = a.cache or Path(tempfile.mkdtemp(prefix="semsim-mcs-"))
    ctx = RunContext(seed=0, device=a.device, cache_dir=cache, progress=False, num_threads=1)
    print(f"table: {MCS_TABLE_NAME}; n = {a.n}, {a.channel}, target BLER {a.target_bler}, cache {cache}")
    for snr in a.snr:
        link = LinkConfig(code={"k": a.n // 2, "n": a.n}, modulation="qam16", header_bits=a.header_bits,
                          snr_db=snr, channel=a.channel, mcs="adaptive", target_bler=a.target_bler)
        t = time.perf_counter()
        choice = choose_mcs(link, ctx)
        dt = time.perf_counter() - t
        print(f"\nEs/N0 {snr:g} dB: {len(choice.candidates)} entries measured in {dt:.1f} s ({choice.source})")
        for c in choice.candidates:
            lo, hi = c.bler_interval
            print(f"  MCS {c.index:2d} {c.modulation:6s} k/n={c.k:4d}/{c.n}  {c.block_errors:4d}/{c.blocks:4d}  "
                  f"BLER {c.bler:.4f} [{lo:.4f}, {hi:.4f}]  {c.throughput:.3f} bit/symbol")
        print(f"  chosen: {choice}")
        if a.verify:
            errs, blocks = verify(adapted(link, choice), ctx.with_seed(12345), a.verify)
            lo, hi = clopper_pearson(errs, blocks)
            print(f"  fresh blocks: {errs}/{blocks} block errors, BLER {errs / blocks:.4f} [{lo:.4f}, {hi:.4f}]")


if __name__ == "__main__":
    main()

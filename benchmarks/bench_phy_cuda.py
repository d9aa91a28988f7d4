"""The PHY benchmark of bench_phy.py on a CUDA device, naming the card.

    .venv/bin/python benchmarks/bench_phy_cuda.py [--published] [--batch 4096] [same options]

Without a CUDA device it prints a message and exits 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> int:
    if not torch.cuda.is_available():
        print("bench_phy_cuda: no CUDA device visible (torch.cuda.is_available() is False); nothing to measure.")
        return 0
    import bench_phy
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a.startswith("--batch") and not a.startswith("--batches") for a in argv):
        argv += ["--batch", "4096"]  # a GPU needs larger batches to be busy
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    header = (f"device: cuda:{torch.cuda.current_device()} {props.name} ({props.total_memory / 2**30:.0f} GiB), "
              f"torch {torch.__version__}, CUDA {torch.version.cuda}")
    return bench_phy.main(argv, device="cuda", header=header)


if __name__ == "__main__":
    sys.exit(main())

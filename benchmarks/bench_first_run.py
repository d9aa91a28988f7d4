"""First-run benchmark: ``make demo`` on a clean clone, install and first run timed apart.

Clones the repository's committed HEAD into a temporary folder (nothing of this checkout's
.venv or caches comes along), then times ``make install`` (virtual environment and every
package) and ``make demo`` (the demo on the embedded digits, with an empty model cache)
separately. Prints both, their total, and the ratio of the total to the target.

    .venv/bin/python benchmarks/bench_first_run.py               # target 150 s (2 min 30 s)
    .venv/bin/python benchmarks/bench_first_run.py --target 240

Exit status 1 if the total is above the target. What pip downloads depends on the machine's
package cache: say which (warm or cold) when quoting the numbers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", type=float, default=150.0, help="seconds for install + demo (default 150)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="semsim-first-run-") as tmp:
        clone = Path(tmp) / "semsim"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = {**os.environ, "SEMSIM_CACHE": str(Path(tmp) / "cache")}
        install = timed(["make", "install"], clone, env)
        demo = timed(["make", "demo"], clone, env)
    total = install + demo
    print(f"make install: {install:.1f} s   make demo (first run, empty model cache): {demo:.1f} s   "
          f"total {total:.1f} s")
    print(f"ratio total / target: {total / args.target:.3f} (target {args.target:.0f} s, ratio <= 1)")
    return 0 if total <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())

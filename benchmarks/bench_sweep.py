"""Benchmark: wall time of a sweep scenario with the serial and the Ray executor, in one run.

Each executor starts from an empty model cache (so both train everything) and writes its own
results; the script checks that both summaries are byte-identical, then prints the wall
times, the speed-up, and the share of point time spent in the learning phase (training the
pre-processor and languages) versus the simulation (encoding, PHY, discrete-event run,
decoding, ledger), from each point's meta.

Usage: python benchmarks/bench_sweep.py [scenarios/paper-digits.toml] [--executors serial ray]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from simulator.context import RunContext, resolve_device
from simulator.scenario import load_scenario
from simulator.runner import run_scenario


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default="scenarios/paper-digits.toml")
    ap.add_argument("--executors", nargs="+", default=["serial", "ray"], choices=["serial", "ray"])
    ap.add_argument("--work", default=None, help="folder for caches and results (default: a temporary one)")
    args = ap.parse_args()
    scenario = load_scenario(args.scenario)
    work = Path(args.work or tempfile.mkdtemp(prefix="semsim-bench-sweep-"))
    rows = []
    for ex in args.executors:
        ctx = RunContext(seed=scenario.seed, device=resolve_device(scenario.device), cache_dir=work / f"cache-{ex}",
                         progress=False, num_threads=1)
        t0 = time.perf_counter()
        out = run_scenario(scenario, ctx, out=work / f"results-{ex}", fresh=True, executor=ex)
        wall = time.perf_counter() - t0
        points = json.loads((out / "meta.json").read_text())["points"]
        learn = sum(p.get("learning_s", 0.0) for p in points)
        sim = sum(p.get("simulation_s", 0.0) for p in points)
        rows.append((ex, wall, learn, sim, (out / "summary.csv").read_bytes()))
        print(f"{ex:>6}: wall {wall:7.1f} s over {len(points)} points; point time: learning {learn:7.1f} s "
              f"({100 * learn / (learn + sim):.0f}%), simulation {sim:7.1f} s ({100 * sim / (learn + sim):.0f}%)",
              flush=True)
    if len(rows) == 2:
        same = rows[0][4] == rows[1][4]
        print(f"speed-up {rows[0][0]} -> {rows[1][0]}: {rows[0][1] / rows[1][1]:.2f}x; summaries identical: {same}")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()

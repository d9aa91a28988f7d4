"""Print the contrastive comparisons of a paper sweep (markdown) beside the paper's 57.22 % /
71.9 %: contrastive against vanilla-semantic and against vanilla-fallback (each that the run
has), on the representation length of semantic items (the paper's unpaired averages over each
pipeline's own semantic items), the system bits per item over all items (paired) and the
semantic impact over all items (paired).

Each figure is the ratio of the pooled means, with a 95 % interval from the two-level bootstrap
of ``benchmarks/bench_pipelines.py`` (:func:`simulator.paired.seeds_and_items_means`): per
sweep cell (the swept keys but the seed) over its seeds and the items in them; on the last
line over all of the sweep's points and their items, the points drawn as the seeds are. The
seeds of a cell draw their items from the same source, so the intervals understate the items'
share of the spread (``seeds_and_items_means``). H is the cell's mean content complexity.

Usage: python benchmarks/paper_table.py results/paper-digits/<run id>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from bench_pipelines import RATIOS, ratio

REFERENCES = ["vanilla-semantic", "vanilla-fallback"]
#: (column title, :data:`bench_pipelines.RATIOS` index)
COLUMNS = [("\\|Z\\| shorter by (unpaired, the paper's)", 0), ("system bits shorter by (paired)", 2),
           ("impact higher by (paired)", 3)]
assert [RATIOS[k][1] for _, k in COLUMNS] == ["representation_bits", "system_bits", "semantic_impact"]


def _cell(items: list[pd.DataFrame], reference: str, header_bits: float) -> str:
    out = []
    for _, k in COLUMNS:
        rel, lo, hi, _ = ratio(items, reference, k, header_bits)
        rel, lo, hi = (round(v, 2) + 0.0 for v in (rel, lo, hi))  # no "-0.00"
        out.append(f"{rel:.2f}% [{lo:.2f}, {hi:.2f}]")
    return " | ".join(out)


def comparison(summary: pd.DataFrame, items: pd.DataFrame, reference: str, header_bits: float) -> str:
    """The markdown table of contrastive against ``reference``: one row per sweep cell, then the
    pooled line over all points."""
    keys = [c for c in summary.columns[: list(summary.columns).index("pipeline")] if c not in ("point", "seed")]
    points = [g for _, g in items.groupby("point", sort=True)]
    lines = [f"contrastive against {reference}:", "",
             "| " + " | ".join(keys) + " | H (nats) | " + " | ".join(n for n, _ in COLUMNS) + " |",
             "|" + "---|" * (len(keys) + 1 + len(COLUMNS))]
    complexity = summary[summary.pipeline == "contrastive"].groupby(keys)["complexity_nats"].mean()
    for key, cell in items.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        seeds = [g for _, g in cell.groupby("point", sort=True)]
        lines.append("| " + " | ".join(str(k) for k in key) + f" | {complexity.loc[key]:.1f} | "
                     + _cell(seeds, reference, header_bits) + " |")
    lines.append(f"| **all {len(points)} points, pooled** |" + " |" * (len(keys) - 1) + " | "
                 + " | ".join(f"**{c}**" for c in _cell(points, reference, header_bits).split(" | ")) + " |")
    lines.append("| paper |" + " |" * (len(keys) - 1) + " | 57.22% | | 71.9% |")
    return "\n".join(lines)


def main() -> None:
    run = Path(sys.argv[1])
    summary = pd.read_csv(run / "summary.csv")
    items = pd.read_csv(run / "items.csv", low_memory=False)
    header_bits = float(json.loads((run / "meta.json").read_text())["scenario"]["link"]["header_bits"])
    for ref in REFERENCES:
        if ref in set(summary["pipeline"]):
            print(comparison(summary, items, ref, header_bits))
            print()


if __name__ == "__main__":
    main()

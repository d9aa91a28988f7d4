"""Print the contrastive-vs-vanilla comparison of a paper sweep (markdown), per sweep point
(mean ± std over seeds) and over all points, beside the paper's 57.22% / 71.9%.

Usage: python benchmarks/paper_table.py results/paper-digits/<run id>
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def main() -> None:
    root = Path(sys.argv[1])
    s = pd.read_csv(root / "summary.csv")
    keys = [c for c in s.columns[: list(s.columns).index("pipeline")] if c not in ("point", "seed")]
    idx = keys + ["seed"]
    v = s[s.pipeline == "vanilla-semantic"].set_index(idx)
    c = s[s.pipeline == "contrastive"].set_index(idx)
    r = pd.DataFrame({
        "H": c["complexity_nats"],
        "shorter": 100 * (1 - c["avg_representation_bits"] / v["avg_representation_bits"]),
        "higher": 100 * (c["semantic_impact"] / v["semantic_impact"] - 1),
    })
    g = r.groupby(level=keys).agg(["mean", "std"])
    print("| " + " | ".join(keys) + " | H (nats) | contrastive \\|Z\\| shorter by | contrastive impact higher by |")
    print("|" + "---|" * (len(keys) + 3))
    for key, row in g.iterrows():
        key = key if isinstance(key, tuple) else (key,)
        print("| " + " | ".join(str(k) for k in key) + f" | {row[('H', 'mean')]:.2f} | "
              f"{row[('shorter', 'mean')]:.2f}% ± {row[('shorter', 'std')]:.2f} | "
              f"{row[('higher', 'mean')]:.2f}% ± {row[('higher', 'std')]:.2f} |")
    print(f"| **all {len(r)} points** |" + " |" * (len(keys) - 1) + f" | **{r['shorter'].mean():.2f}% ± "
          f"{r['shorter'].std():.2f}** | **{r['higher'].mean():.2f}% ± {r['higher'].std():.2f}** |")
    print("| paper |" + " |" * (len(keys) - 1) + " | 57.22% | 71.9% |")


if __name__ == "__main__":
    main()

"""Print the contrastive comparisons of a paper sweep (markdown), per sweep point (mean ± std
over seeds) and over all points, beside the paper's 57.22% / 71.9%: contrastive against
vanilla-semantic and against vanilla-fallback (each that the run has), on the representation
length of semantic items, the system bits per item over all items, and the semantic impact
over all items.

Usage: python benchmarks/paper_table.py results/paper-digits/<run id>
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

REFERENCES = ["vanilla-semantic", "vanilla-fallback"]


def comparison(s: pd.DataFrame, reference: str) -> str:
    keys = [c for c in s.columns[: list(s.columns).index("pipeline")] if c not in ("point", "seed")]
    idx = keys + ["seed"]
    v = s[s.pipeline == reference].set_index(idx)
    c = s[s.pipeline == "contrastive"].set_index(idx)
    r = pd.DataFrame({
        "H": c["complexity_nats"],
        "shorter": 100 * (1 - c["avg_representation_bits"] / v["avg_representation_bits"]),
        "system": 100 * (1 - c["system_bits_per_item"] / v["system_bits_per_item"]),
        "higher": 100 * (c["semantic_impact"] / v["semantic_impact"] - 1),
    })
    g = r.groupby(level=keys).agg(["mean", "std"])
    cols = [("shorter", "\\|Z\\| shorter by"), ("system", "system bits shorter by"), ("higher", "impact higher by")]
    lines = [f"contrastive against {reference}:", "",
             "| " + " | ".join(keys) + " | H (nats) | " + " | ".join(n for _, n in cols) + " |",
             "|" + "---|" * (len(keys) + 1 + len(cols))]
    for key, row in g.iterrows():
        key = key if isinstance(key, tuple) else (key,)
        lines.append("| " + " | ".join(str(k) for k in key) + f" | {row[('H', 'mean')]:.1f} | "
                     + " | ".join(f"{row[(c_, 'mean')]:.2f}% ± {row[(c_, 'std')]:.2f}" for c_, _ in cols) + " |")
    lines.append(f"| **all {len(r)} points** |" + " |" * (len(keys) - 1) + " | "
                 + " | ".join(f"**{r[c_].mean():.2f}% ± {r[c_].std():.2f}**" for c_, _ in cols) + " |")
    lines.append("| paper |" + " |" * (len(keys) - 1) + " | 57.22% | | 71.9% |")
    return "\n".join(lines)


def main() -> None:
    s = pd.read_csv(Path(sys.argv[1]) / "summary.csv")
    for ref in REFERENCES:
        if ref in set(s["pipeline"]):
            print(comparison(s, ref))
            print()


if __name__ == "__main__":
    main()

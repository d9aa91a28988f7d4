"""The learned language against the image codecs on items no model was trained on (docs/semantic.md).

For every operating point of each language and every quality of each codec, per image: bits
and PSNR. Then, per PSNR target (18..34 dB): per image the shortest stream meeting it (the
language's rate control; the codec's shortest quality; for ``best4`` the shortest payload of
the four codecs), and the BD-rate of each language against each codec over 20..32 dB.

Languages:

* ``pretrained``: the zoo's pre-distribution as shipped (``fine_tune_steps = 0``): cost 0;
* ``fine-tuned``: the default: two post-distributions, each fine-tuned on one half of the items
  and coding the other half (``fit_on = "disjoint"``), each sent only where it pays for its own
  bits (``fine_tune_keep = "shorter"``); ``fine-tuned-sent``: the same, always sent
  (``"always"``). The model cost (bits of the parameter changes) is reported per item, and the
  ``+cost`` rows add it to every item;
* ``scratch`` (``--scratch``): the same architecture from a random start, trained on one half
  and coding the other (``pretrained = "none"``);
* ``factorized-on-items``: the small factorized language trained on all the items it codes
  (its model bits are reported, not added).

Codecs: ``jpeg``, ``webp``, ``avif``, ``heif`` at every quality, counted as payload (the coded
data and the minimal header of :mod:`simulator.classical.payload`) and as whole files;
``best4``: per image the shortest payload of the four.

    .venv/bin/python benchmarks/bench_language.py --source cifar10 [--dir D] [--images 100] [--scratch]
    .venv/bin/python benchmarks/bench_language.py --source digits

Items: CIFAR-10 test images 500.. of each class (the zoo's natural-image model trained on
0..499), ``images / 10`` per class; the first ``images`` of digits 900..1796 (the zoo's
digits model trained on 0..899). Writes ``<out>/curves.csv``, ``<out>/targets.csv`` and ``<out>/rd.png``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import simulator.classical.codecs  # noqa: E402,F401  (registers the codecs)
from simulator.classical.payload import payload_bits  # noqa: E402
from simulator.context import RunContext  # noqa: E402
from simulator.registry import CODERS  # noqa: E402
from simulator.rd import bd_rate  # noqa: E402
from simulator.semantic import SemanticConfig, fit_language  # noqa: E402

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "test"
CODECS = ("jpeg", "webp", "avif", "heif")
TARGETS = tuple(range(16, 35, 2))
BD_RANGE = (20.0, 32.0)
BPG_MOSAIC = ((0.5, 24.1), (1.0, 27.8), (1.5, 30.5))  # published BPG on CIFAR-10 mosaics (bpp, dB)


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per item PSNR (dB) of ``(N, ...)`` uint8 arrays, capped at 100 dB."""
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(axis=1)
    return np.minimum(100.0, 10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10)))


def load_items(source: str, root: Path, n: int) -> np.ndarray:
    """The held-out items, ``(N, H, W, C)`` uint8."""
    if source == "digits":
        from simulator.sources import load_dataset

        return load_dataset("digits").images[900: 900 + n]
    from PIL import Image

    classes = sorted(p for p in root.iterdir() if p.is_dir())
    if not classes:
        raise SystemExit(f"no class folders under {root}")
    per = -(-n // len(classes))
    out = []
    for c in classes:
        files = sorted(c.iterdir())[500: 500 + per]
        out += [np.asarray(Image.open(f).convert("RGB"), dtype=np.uint8) for f in files]
    return np.stack(out[:n])


def codec_table(items: np.ndarray) -> pd.DataFrame:
    """Every item at every quality of every codec: ``codec, item, quality, file_bits, payload_bits, psnr``."""
    rows = []
    for name in CODECS:
        coder = CODERS.get(name)
        lo, hi = coder.qualities
        t0 = time.time()
        for i, im in enumerate(items):
            for q in range(lo, hi + 1):
                s = coder.encode_at(im, q)
                rec = np.frombuffer(coder.decode(s, im.shape), dtype=np.uint8).reshape(im.shape)
                rows.append((name, i, q, 8 * len(s), payload_bits(name, s, im.shape), float(psnr(rec[None], im[None])[0])))
        print(f"  {name}: {len(items)} items x {hi - lo + 1} qualities in {time.time() - t0:.0f} s", flush=True)
    return pd.DataFrame(rows, columns=["codec", "item", "quality", "file_bits", "payload_bits", "psnr"])


def language_table(name: str, cfg: SemanticConfig, items: np.ndarray, ctx: RunContext) -> tuple[pd.DataFrame, dict]:
    """Every item at every operating point: ``codec, item, quality (rung), bits, psnr``, and facts."""
    cl = np.zeros(len(items), dtype=np.int64)
    t0 = time.time()
    lang = fit_language(items, cl, 1, cfg, ctx, name)
    fit_s = time.time() - t0
    rows = []
    for r in range(lang.num_rungs):
        reps = lang.encode(items, cl, r)
        rec, _ = lang.decode([x.bitstream for x in reps])
        p = psnr(rec, items)
        rows += [(name, i, r, x.n_bits, x.n_bits, float(p[i])) for i, x in enumerate(reps)]
    facts = {"language": name, "fit_s": round(fit_s, 1), "model_bits": int(lang.parameter_bits()),
             "model_bits_per_item": lang.parameter_bits() / len(items), "flops_encode": lang.flops_encode,
             "flops_decode": lang.flops_decode, "rungs": lang.num_rungs}
    print(f"  {name}: fitted in {fit_s:.0f} s, model cost {facts['model_bits_per_item']:.1f} bits/item", flush=True)
    return pd.DataFrame(rows, columns=["codec", "item", "quality", "file_bits", "payload_bits", "psnr"]), facts


def at_targets(table: pd.DataFrame, bits: str) -> pd.DataFrame:
    """Per codec and target: per item the shortest ``bits`` meeting it (else the best PSNR);
    means over items, and the share that met."""
    return pd.concat([best_of(g, bits, codec) for codec, g in table.groupby("codec", sort=False)], ignore_index=True)


def best_of(table: pd.DataFrame, bits: str, label: str) -> pd.DataFrame:
    """Per quality target: per item the shortest ``bits`` over the table's rows that meet it
    (else the row with the best PSNR), as one coder named ``label``."""
    rows = []
    for t in TARGETS:
        ok = table[table.psnr >= t]
        best = ok.loc[ok.groupby("item")[bits].idxmin()] if len(ok) else ok
        miss = table[~table.item.isin(best.item)]
        fall = miss.loc[miss.groupby("item").psnr.idxmax()] if len(miss) else miss
        chosen = pd.concat([best, fall])
        rows.append({"codec": label, "target_db": t, "bits": chosen[bits].mean(), "psnr": chosen.psnr.mean(),
                     "met": len(best) / table.item.nunique()})
    return pd.DataFrame(rows)


def bd(curves: pd.DataFrame, ref: str, test: str) -> tuple[float, str]:
    def curve(name):
        c = curves[(curves.codec == name) & curves.target_db.between(*BD_RANGE) & (curves.met > 0.5)]
        c = c.sort_values("bits").drop_duplicates("psnr")
        return c.bits.to_numpy(), c.psnr.to_numpy()

    return bd_rate(curve(ref), curve(test), "PSNR")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", choices=("cifar10", "digits"), default="cifar10")
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--scratch", action="store_true")
    ap.add_argument("--fine-tune-steps", type=int, default=SemanticConfig().fine_tune_steps)
    ap.add_argument("--out", type=Path, default=Path("results/bench_language"))
    ap.add_argument("--cache-dir", type=Path, default=None)
    a = ap.parse_args()
    items = load_items(a.source, a.dir, a.images)
    px = items.shape[1] * items.shape[2]
    print(f"{len(items)} held-out {a.source} items {items.shape[1:]}", flush=True)
    ctx = RunContext(seed=0, num_threads=1, **({"cache_dir": a.cache_dir} if a.cache_dir else {}))
    hyper = {"architecture": "hyperprior"}
    langs = {"pretrained": SemanticConfig(**hyper, fit_on="all", fine_tune_steps=0),
             "fine-tuned": SemanticConfig(**hyper, fit_on="disjoint", fine_tune_steps=a.fine_tune_steps),
             "fine-tuned-sent": SemanticConfig(**hyper, fit_on="disjoint", fine_tune_steps=a.fine_tune_steps,
                                               fine_tune_keep="always")}
    if a.scratch:
        langs["scratch"] = SemanticConfig(**hyper, pretrained="none", fit_on="disjoint")
    langs["factorized-on-items"] = SemanticConfig(architecture="factorized")
    tables, facts = [], []
    for name, cfg in langs.items():
        t, f = language_table(name, cfg, items, ctx)
        tables.append(t)
        facts.append(f)
    lang_table = pd.concat(tables)
    codecs = codec_table(items)
    curves = pd.concat([at_targets(lang_table, "payload_bits"), at_targets(codecs, "payload_bits"),
                        best_of(codecs, "payload_bits", "best4"),
                        at_targets(codecs, "file_bits").assign(codec=lambda d: d.codec + " file")])
    cost = {f["language"]: f["model_bits_per_item"] for f in facts}
    for name in ("fine-tuned", "fine-tuned-sent"):
        ft = curves[curves.codec == name].copy()
        ft["bits"] += cost[name]
        curves = pd.concat([curves, ft.assign(codec=f"{name}+cost")], ignore_index=True)
    curves["bpp"] = curves.bits / px
    a.out.mkdir(parents=True, exist_ok=True)
    curves.to_csv(a.out / "targets.csv", index=False)
    pd.concat([lang_table, codecs]).to_csv(a.out / "curves.csv", index=False)

    print("\n## Mean bits per item at each PSNR target (share of items meeting it)\n")
    wide = curves.pivot(index="codec", columns="target_db", values="bits").round(0)
    met = curves.pivot(index="codec", columns="target_db", values="met")
    print("| coder | " + " | ".join(f"{t} dB" for t in TARGETS) + " |")
    print("|---" * (len(TARGETS) + 1) + "|")
    for c in wide.index:
        print(f"| {c} | " + " | ".join(f"{wide.loc[c, t]:.0f} ({met.loc[c, t]:.0%})" for t in TARGETS) + " |")
    print(f"\n## BD-rate over {BD_RANGE[0]:.0f}-{BD_RANGE[1]:.0f} dB (negative: fewer bits than the reference)\n")
    refs = [c for c in ("webp", "jpeg", "avif", "heif", "best4", "webp file") if c in set(curves.codec)]
    print("| language | " + " | ".join(refs) + " |")
    print("|---" * (len(refs) + 1) + "|")
    for name in list(langs) + ["fine-tuned+cost", "fine-tuned-sent+cost"]:
        cells = []
        for r in refs:
            v, why = bd(curves, r, name)
            cells.append(f"{v:+.1f}%" if math.isfinite(v) else f"n/a ({why})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n## Languages\n")
    keys = list(facts[0])
    print("| " + " | ".join(keys) + " |")
    print("|---" * len(keys) + "|")
    for f in facts:
        print("| " + " | ".join(f"{f[k]:.1f}" if isinstance(f[k], float) else str(f[k]) for k in keys) + " |")
    if a.source == "cifar10":
        print("\n## PSNR at the published BPG mosaic rates (every item at one operating point)\n")
        for name in langs:
            g = lang_table[lang_table.codec == name].groupby("quality").agg(bits=("payload_bits", "mean"),
                                                                          psnr=("psnr", "mean"))
            cells = [f"{np.interp(b * px, g.bits, g.psnr):.2f} dB at {b} bpp (BPG {d})" for b, d in BPG_MOSAIC]
            print(f"- {name}: " + "; ".join(cells))
    _plot(curves, a.out / "rd.png", a.source)
    print(f"\nwrote {a.out}/targets.csv, curves.csv, rd.png")
    return 0


def _plot(curves: pd.DataFrame, path: Path, source: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    ax.set_prop_cycle(color=plt.cm.tab20.colors)
    for name, g in curves.groupby("codec", sort=False):
        if name.endswith(" file"):
            continue
        style = "-o" if name.startswith(("pretrained", "fine-tuned", "scratch", "factorized")) else "--s"
        ax.plot(g.bpp, g.psnr, style, ms=3, label=name)
    ax.set_xlabel("bits per pixel (mean over items, coded to each target)")
    ax.set_ylabel("PSNR (dB, mean over items)")
    ax.set_title(f"learned language vs codec payloads, held-out {source}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())

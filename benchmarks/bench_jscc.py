"""Quality against SNR at a matched bandwidth: separation (a codec, 5G LDPC and QAM), the
ideal-code bound, and the zoo's DeepJSCC, on CIFAR-10 test images no model trained on.

Protocol: docs/jscc.md (and :mod:`simulator.jscc.separation`). Evaluated: ``--images`` of the
held-out images (500..999 of each class of the test split) in a fixed shuffled order; the MCS
of each SNR is chosen on ``--dev`` of the training images (0..499 of each class).

    python benchmarks/bench_jscc.py --data imagefolder:../shared/data/cifar10/test --images 512 \\
        --snrs 0 5 10 15 --ratio 1/6 --side 8 --per-image --jscc deepjscc-1-6 --out jscc.csv

Prints one row per (method, coding, SNR) and writes them as CSV. ``--plot F.png --from A.csv
B.csv ...`` draws PSNR against SNR from such files, one line per method and coding.
"""

from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.jscc.codec import JsccCodec  # noqa: E402
from simulator.jscc.model import awgn, rayleigh_block  # noqa: E402
from simulator.jscc.separation import (Separation, at_budget, capacity_bits, choose_entry, mean_psnr, mosaic,  # noqa: E402
                                       rd_curve)
from simulator.metrics import ms_ssim, psnr_from_mse  # noqa: E402
from simulator.sources import load_dataset  # noqa: E402


def split(labels: np.ndarray, per_class: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, held-out indices), each in a fixed shuffled order."""
    train = np.sort(np.concatenate([np.flatnonzero(labels == k)[:per_class] for k in np.unique(labels)]))
    held = np.setdiff1d(np.arange(len(labels)), train)
    rng = np.random.default_rng(seed)
    return rng.permutation(train), rng.permutation(held)


def curves(images: np.ndarray, side: int, coder: str, qualities, echo) -> list:
    pics = mosaic(images, side)
    out = []
    t0 = time.monotonic()
    for i, p in enumerate(pics):
        out.append(rd_curve(coder, p, side, qualities, msssim=True))
        if (i + 1) % max(1, len(pics) // 8) == 0:
            echo(f"  {coder} {side}x{side}: {i + 1}/{len(pics)} pictures coded ({time.monotonic() - t0:.0f} s)")
    return out


def received(cs: list, fill: tuple[np.ndarray, np.ndarray], arrives) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-image MSE and MS-SSIM over the pictures of ``cs``: ``arrives(curve)`` gives the
    quality index a picture arrives at, or ``None`` (lost or not sent: its images are the
    fill-in, ``fill = (mse, msssim)``, each ``(P, side^2)``); and the delivered share."""
    mse, ssim, got = [], [], 0
    for i, c in enumerate(cs):
        q = arrives(c)
        if q is not None:
            mse.append(c.mse[q])
            ssim.append(c.msssim[q])
            got += 1
        else:
            mse.append(fill[0][i])
            ssim.append(fill[1][i])
    return np.concatenate(mse), np.concatenate(ssim), got / len(cs)


def separation(cs: list, entry, uses_img: int, side: int, channel: str, snr: float,
               fill: tuple[np.ndarray, np.ndarray], seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`received` for the pictures of ``cs`` sent bit-true with MCS ``entry``."""
    sep = Separation(entry, uses_img, channel, snr, seed)
    budget = sep.capacity(uses_img * side * side)

    def arrives(c):
        q = at_budget(c, budget)
        return q if q is not None and sep.delivered(c.payload(q)) else None
    return received(cs, fill, arrives)


def fill_mse(images: np.ndarray, side: int) -> np.ndarray:
    """``(P, side^2)``: per picture of ``side^2`` consecutive images, each image's MSE against the
    fill-in (the set's mean image)."""
    ref = images.astype(np.float64)
    return ((ref - ref.mean(axis=0)) ** 2).reshape(len(ref), -1).mean(axis=1).reshape(-1, side * side)


def fill_in(images: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mse, msssim)``, each ``(P, side^2)``: :func:`fill_mse` and each image's MS-SSIM against
    the fill-in rounded to uint8 (the ledger's rule)."""
    shown = np.broadcast_to(np.round(images.mean(axis=0)).astype(np.uint8), images.shape)
    return fill_mse(images, side), ms_ssim(images, shown).reshape(-1, side * side)


#: Published PSNR (dB) on the CIFAR-10 test set, AWGN, bandwidth ratio 1/6, against SNR (dB):
#: kmsiapps/Semantic-Communications-with-a-Vision-Transformer (TensorBoard logs of a CNN JSCC,
#: 600 epochs; bpg-ldpc.ipynb: BPG 4:4:4 on 8x8 mosaics, 5G LDPC, best code and modulation).
PUBLISHED_1_6 = {
    "snr_db": [0, 2, 5, 7, 10, 12, 15],
    "published CNN JSCC": [25.34, 26.86, 29.02, 30.46, 32.44, 33.59, 34.91],
    "published BPG + 5G LDPC, 8x8": [22.32, 24.13, 25.43, 27.86, 29.73, 30.49, 32.83],
    "published BPG at capacity, 8x8": [24.13, 25.65, 28.24, 29.72, 31.59, 32.83, 34.54],
}


def plot(csvs: list[str], out: str, published: bool = False) -> None:
    """PSNR (left) and MS-SSIM (right, where the CSVs have it) against SNR, one line per
    (method, coding, channel, bandwidth ratio) of the CSVs; ``published``: the published 1/6
    AWGN PSNR columns (:data:`PUBLISHED_1_6`) as black markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = pd.concat([pd.read_csv(c) for c in csvs], ignore_index=True)
    df = df[df["snr_db"].notna()]  # the codec's own rate-distortion rows have no channel
    panels = [("psnr_db", "PSNR, mean over images (dB)")]
    if "msssim" in df and df["msssim"].notna().any():
        panels.append(("msssim", "MS-SSIM, mean over images"))
    fig, axes = plt.subplots(1, len(panels), figsize=(8 * len(panels), 5.5), squeeze=False, sharex=True)
    for ax, (column, label) in zip(axes[0], panels):
        for (method, coding, channel, ratio), g in df.groupby(["method", "coding", "channel", "bandwidth_ratio"],
                                                              sort=True):
            g = g[g[column].notna()].sort_values("snr_db")
            if g.empty:
                continue
            style = "--" if "capacity" in method else (":" if "@" in method else "-")
            ax.plot(g["snr_db"], g[column], style, marker="o", ms=3,
                    label=f"{method}, {coding}, {channel}, {Fraction(ratio).limit_denominator(64)}")
        if published and column == "psnr_db":
            for (name, values), marker in zip(list(PUBLISHED_1_6.items())[1:], ["*", "x", "+"]):
                ax.plot(PUBLISHED_1_6["snr_db"], values, linestyle="none", marker=marker, color="black", ms=7,
                        label=name + ", awgn, 1/6")
        ax.set_xlabel("channel SNR, Es/N0 (dB)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("CIFAR-10 held-out images: quality against SNR at a matched bandwidth "
                 "(bandwidth ratio = complex channel uses per real source dimension)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="imagefolder:../shared/data/cifar10/test")
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--dev", type=int, default=128)
    p.add_argument("--snrs", type=float, nargs="+", default=[0, 5, 10, 15])
    p.add_argument("--ratio", default="1/6")
    p.add_argument("--side", type=int, default=8)
    p.add_argument("--coder", default="heif", help="heif: HEVC intra 4:4:4, as the published BPG 4:4:4 baseline")
    p.add_argument("--qmax", type=int, default=85, help="highest codec quality coded (higher ones exceed every budget)")
    p.add_argument("--channel", default="awgn", choices=["awgn", "rayleigh"])
    p.add_argument("--per-image", action="store_true", help="also code each image alone")
    p.add_argument("--no-separation", action="store_true", help="evaluate only the --jscc models")
    p.add_argument("--jscc", nargs="*", default=[], help="zoo DeepJSCC entries to evaluate")
    p.add_argument("--mismatch", type=float, default=None,
                   help="also evaluate DeepJSCC told this fixed SNR whatever the channel's (a single-SNR model)")
    p.add_argument("--fixed-at", type=float, default=None,
                   help="also send separation at every SNR with the MCS chosen for this SNR (a fixed MCS: the cliff)")
    p.add_argument("--rd-bpp", type=float, nargs="*", default=[],
                   help="also report the codec's PSNR at these payload bits per pixel (no channel)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--blocks", type=int, default=8192,
                   help="random codewords per MCS entry that estimate its block error rate for the choice")
    p.add_argument("--out")
    p.add_argument("--plot", help="draw PSNR against SNR from the --from CSVs into this PNG, and stop")
    p.add_argument("--from", dest="sources", nargs="*", default=[])
    p.add_argument("--published", action="store_true", help="with --plot: the published 1/6 AWGN columns too")
    a = p.parse_args(argv)
    if a.plot:
        plot(a.sources, a.plot, a.published)
        print(f"wrote {a.plot}")
        return 0
    echo = lambda s: print(s, flush=True)  # noqa: E731
    torch.set_num_threads(1)
    items = load_dataset(a.data)
    train_idx, held_idx = split(items.labels)
    shape = items.shape
    ratio = float(Fraction(a.ratio))
    uses_img = int(round(ratio * shape[0] * shape[1] * shape[2]))
    if not a.no_separation and (a.images % a.side ** 2 or a.dev % a.side ** 2):
        p.error(f"--images and --dev must be multiples of {a.side ** 2} ({a.side}x{a.side} mosaics)")
    ev, dev = items.images[held_idx[: a.images]], items.images[train_idx[: a.dev]]
    echo(f"{len(ev)} held-out images, {len(dev)} development images, {uses_img} complex channel uses per image "
         f"(bandwidth ratio {a.ratio}: {ratio:.4f} complex, {2 * ratio:.4f} real per source dimension)")
    rows = []

    def row(method, coding, snr, mse, ssim, delivered, mcs="", extra=None):
        r = {"method": method, "coding": coding, "channel": a.channel, "bandwidth_ratio": ratio,
             "real_per_dimension": 2 * ratio, "channel_uses_per_image": uses_img, "snr_db": snr, "mcs": mcs,
             "images": len(mse), "psnr_db": mean_psnr(mse), "psnr_of_mean_mse_db": psnr_from_mse(float(np.mean(mse))),
             "msssim": float(np.mean(ssim)), "delivered_share": delivered, **(extra or {})}
        rows.append(r)
        if a.out:  # written as the rows come: an interrupted run keeps what it measured
            pd.DataFrame(rows).to_csv(a.out, index=False)
        echo(f"  {method:<12} {coding:<9} {snr:5.1f} dB  {r['psnr_db']:6.2f} dB  MS-SSIM {r['msssim']:.4f}  "
             f"delivered {delivered:.3f}  {mcs}")

    sides = [] if a.no_separation else [a.side] + ([1] if a.per_image and a.side != 1 else [])
    qualities = range(0, a.qmax + 1)
    for side in sides:
        coding = f"{side}x{side}" if side > 1 else "per-image"
        cs, dcs = curves(ev, side, a.coder, qualities, echo), curves(dev, side, a.coder, qualities, echo)
        fill, dfill = fill_in(ev, side), fill_mse(dev, side)  # the MCS choice reads MSE only
        for bpp in a.rd_bpp:  # the codec's rate-distortion points (payload, no channel)
            budget = bpp * shape[0] * shape[1] * side * side
            mse, ssim, _ = received(cs, fill, lambda c: at_budget(c, budget))
            row(f"{a.coder}-payload", coding, float("nan"), mse, ssim, 1.0, extra={"bits_per_pixel": bpp})
        fixed = None
        if a.fixed_at is not None:
            fixed, _ = choose_entry(dcs, uses_img, side, a.channel, a.fixed_at, dfill, blocks=a.blocks,
                                    seed=a.seed + 1)
        for snr in a.snrs:
            if fixed is not None:
                mse, ssim, share = separation(cs, fixed, uses_img, side, a.channel, snr, fill, a.seed)
                row(f"{a.coder}+ldpc@{a.fixed_at:g}dB", coding, snr, mse, ssim, share,
                    f"MCS {fixed.index} ({fixed.modulation}, R={fixed.rate:.3f}) fixed")
            if a.channel == "awgn":  # the AWGN capacity; a fading block has none (an outage instead)
                cap = capacity_bits(uses_img * side * side, snr)
                mse, ssim, _ = received(cs, fill, lambda c: at_budget(c, cap))
                if any(c.bits[-1] <= cap for c in cs):
                    echo(f"  warning: quality {a.qmax} fits the capacity at {snr:g} dB: raise --qmax")
                row(f"{a.coder}-capacity", coding, snr, mse, ssim, 1.0)
            e, expected = choose_entry(dcs, uses_img, side, a.channel, snr, dfill, blocks=a.blocks, seed=a.seed + 1)
            mse, ssim, share = separation(cs, e, uses_img, side, a.channel, snr, fill, a.seed)
            row(f"{a.coder}+ldpc", coding, snr, mse, ssim, share, f"MCS {e.index} ({e.modulation}, R={e.rate:.3f})",
                extra={"development_expected_psnr_db": expected})
    for name in a.jscc:
        codec = JsccCodec.from_zoo(name)
        if abs(codec.bandwidth_ratio(shape) - ratio) > 1e-9:
            echo(f"  {name}: bandwidth ratio {codec.bandwidth_ratio(shape):.4f}, not {ratio:.4f}; skipped")
            continue
        gen = torch.Generator().manual_seed(a.seed)
        for snr in a.snrs:
            for told in ([None] + ([a.mismatch] if a.mismatch is not None else [])):
                s = np.full(len(ev), snr if told is None else told, dtype=np.float32)
                x = torch.from_numpy(codec.encode(ev, s))
                if a.channel == "awgn":
                    eff = torch.full((len(ev),), float(snr))
                    y = awgn(x, eff, gen)
                else:
                    y, eff = rayleigh_block(x, torch.full((len(ev),), float(snr)), gen)
                dec_snr = eff.numpy() if told is None else s
                rec = codec.decode(y.numpy(), dec_snr, shape)
                mse = ((rec.astype(np.float64) - ev) ** 2).reshape(len(ev), -1).mean(axis=1)
                row(name if told is None else f"{name}@{told:g}dB", "per-image", snr, mse, ms_ssim(ev, rec), 1.0)
    df = pd.DataFrame(rows)
    if a.out:
        df.to_csv(a.out, index=False)
        echo(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

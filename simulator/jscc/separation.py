"""Separation at a bandwidth budget: an image codec's payload, then 5G LDPC and QAM; and the
ideal-code bound (the codec at the channel's capacity).

The protocol (docs/jscc.md):

* **Budget.** A bandwidth ratio ``rho`` (complex channel uses per real source dimension)
  gives every picture ``B = rho H W C`` complex channel uses (an 8x8 mosaic: 64 times an
  image's). Physical-layer accounting only: no packet headers, no retransmission.
* **Mosaics.** ``side = N`` codes ``N x N`` images as one picture (:func:`mosaic`), as the
  published BPG baselines do; ``side = 1`` codes each image alone. A lost picture loses all
  its images.
* **Codec at a budget** (:func:`rd_curve`, :func:`at_budget`): every quality of the codec is
  encoded once; the payload (:func:`~simulator.classical.payload.payload_bits`: coded data
  plus semsim's minimal header, no container) and the MSE of every image of the decoded
  picture are kept; for a budget of ``b`` bits the quality with the least mean MSE whose
  payload fits is used (no monotonicity of the codec is assumed). Nothing fits: the picture
  is not sent and every image is the fill-in.
* **Channel code.** An MCS entry (TS 38.214 table 2: modulation ``m`` bits per symbol, rate
  ``R``) splits the budget into codewords of ``n = m U`` coded bits, ``U`` the channel uses
  of one image (``B / N^2``), ``k = round(R n)`` information bits each; the picture's payload
  bits travel in the first ``ceil(payload / k)`` codewords (zero-padded), through Sionna's 5G
  LDPC encoder, QAM mapper, the channel, APP demapper and BP decoder
  (:class:`~simulator.link.phy.BitTrueLink`). A picture is delivered when every one of its
  bits comes back right.
* **Best code and modulation** (:func:`choose_entry`). Per SNR, for each MCS entry worth
  trying (:func:`candidates`), its codeword error rate is measured on random bits
  (:meth:`Separation.block_errors`) and estimated as ``p = (errors + 1/2) / (blocks + 1)``
  (never 0: a picture of 64 codewords is not assumed safe from a few thousand clean ones;
  8192 blocks by default: with 2048, 0 to 2 errors left a picture's loss anywhere in 0 to
  15 % and, at 5 dB, chose an entry that lost 2 of 8 mosaics),
  and the expected mean PSNR on *development*
  pictures (other images than the evaluated ones) is computed: a picture whose payload needs
  ``c`` codewords arrives with probability ``(1 - p)^c``, otherwise its images are the
  fill-in. The entry of the highest expectation is then used on the evaluated pictures, each
  sent bit-true.
* **Capacity.** ``B log2(1 + SNR)`` bits, delivered without error.
* **Fill-in.** An image not delivered is scored as the mean image of the evaluated set (the
  ledger's rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..classical.mosaic import mosaic, tiles
from ..classical.payload import item_bits, payload_bits
from ..registry import CODERS
from ..classical import codecs  # noqa: F401  (registers the codecs)
from ..link.config import LinkConfig
from ..link.mcs import MCS_TABLE, McsEntry, entry_code
from ..link.phy import BitTrueLink
from ..metrics import ms_ssim, psnr_from_mse


@dataclass(frozen=True)
class RdCurve:
    """A picture coded at every quality of a codec.

    Attributes:
        qualities: ``(Q,)`` int codec qualities.
        bits: ``(Q,)`` int64 payload bits (minimal header included, no container).
        mse: ``(Q, T)`` float64 MSE (0..255 scale) of each of the picture's ``T`` images.
        streams: Q codec files (what the receiver rebuilds from the payload).
        coder: the codec's name.
        shape: ``(side H, side W, C)`` of the picture.
        msssim: ``(Q, T)`` float64 MS-SSIM of each image (:func:`~simulator.metrics.ms_ssim`),
            or ``None`` when not measured.
    """

    qualities: np.ndarray
    bits: np.ndarray
    mse: np.ndarray
    streams: tuple[bytes, ...]
    coder: str
    shape: tuple[int, int, int]
    msssim: np.ndarray | None = None

    def payload(self, q: int) -> np.ndarray:
        """The ``(bits[q],)`` uint8 bits the link carries at quality index ``q`` (minimal header,
        then payload: :func:`~simulator.classical.payload.item_bits`)."""
        return item_bits(self.coder, self.streams[q], self.shape, int(self.qualities[q]))


def rd_curve(coder: str, picture: np.ndarray, side: int, qualities=None, msssim: bool = False) -> RdCurve:
    """Code ``picture`` ``(side H, side W, C)`` uint8 with ``coder`` at every quality (default:
    the codec's whole range) and measure each image's MSE (and, with ``msssim``, its MS-SSIM)."""
    c = CODERS.get(coder)
    lo, hi = c.qualities
    qs = np.arange(lo, hi + 1) if qualities is None else np.asarray(qualities)
    picture = np.ascontiguousarray(picture)
    ref8 = tiles(picture, side)
    ref = ref8.astype(np.float64)
    bits, mse, streams, recs = [], [], [], []
    for q in qs:
        stream = c.encode_at(picture, int(q))
        rec = tiles(np.frombuffer(c.decode(stream, picture.shape), dtype=np.uint8).reshape(picture.shape), side)
        bits.append(payload_bits(coder, stream, picture.shape))
        mse.append(((rec.astype(np.float64) - ref) ** 2).reshape(len(ref), -1).mean(axis=1))
        streams.append(stream)
        if msssim:
            recs.append(rec)
    ssim = None
    if msssim:  # every quality's images in one call: (Q T, H, W, C) against the references repeated
        ssim = ms_ssim(np.tile(ref8, (len(qs), 1, 1, 1)), np.concatenate(recs)).reshape(len(qs), len(ref8))
    return RdCurve(qs, np.asarray(bits, dtype=np.int64), np.asarray(mse), tuple(streams), coder, picture.shape,
                   ssim)


def at_budget(curve: RdCurve, budget_bits: float) -> int | None:
    """Index of the quality of least mean MSE whose payload fits ``budget_bits`` (ties: fewer
    bits, then the lower quality), or ``None`` when none fits."""
    fits = np.flatnonzero(curve.bits <= budget_bits)
    if not len(fits):
        return None
    mean = curve.mse[fits].mean(axis=1)
    order = np.lexsort((curve.qualities[fits], curve.bits[fits], mean))
    return int(fits[order[0]])


def capacity_bits(uses: float, snr_db: float) -> float:
    """Bits an ideal code carries in ``uses`` complex channel uses at Es/N0 ``snr_db``:
    ``uses log2(1 + 10^(snr/10))``."""
    return uses * math.log2(1.0 + 10.0 ** (snr_db / 10.0))


def entry_link(entry: McsEntry, uses_per_codeword: int, channel: str, esn0_db: float) -> LinkConfig:
    """The link of ``entry`` with codewords of ``uses_per_codeword`` channel uses."""
    k, n = entry_code(entry, 0, uses_per_codeword)
    return LinkConfig.model_validate({"channel": channel, "modulation": entry.modulation, "code": {"k": k, "n": n},
                                      "snr_type": "esn0", "snr_db": float(esn0_db), "header_bits": 32})


class Separation:
    """Sends payloads through one MCS entry's 5G LDPC code and QAM (module doc).

    Args:
        entry: the MCS entry.
        uses_per_codeword: complex channel uses per codeword (one image's share of the budget).
        channel: ``"awgn"`` or ``"rayleigh"`` (one gain per codeword, perfect CSI).
        esn0_db: the channel's Es/N0 (dB).
        seed: seeds the noise and fading generators.
    """

    def __init__(self, entry: McsEntry, uses_per_codeword: int, channel: str, esn0_db: float, seed: int):
        self.entry, self.esn0_db, self.seed = entry, float(esn0_db), int(seed)
        self.link = entry_link(entry, uses_per_codeword, channel, esn0_db)
        self.k, self.n = self.link.code.k, self.link.code.n
        self.phy = BitTrueLink(self.link, "cpu", torch.Generator().manual_seed(seed),
                               torch.Generator().manual_seed(seed + 1), compile_encoder=False)

    def codewords(self, budget_uses: int) -> int:
        """Codewords that fit ``budget_uses`` channel uses."""
        return int(budget_uses) * self.entry.bits_per_symbol // self.n

    def capacity(self, budget_uses: int) -> int:
        """Information bits that fit ``budget_uses`` channel uses."""
        return self.codewords(budget_uses) * self.k

    def block_errors(self, blocks: int) -> int:
        """How many of ``blocks`` codewords of uniformly random information bits (seeded by
        ``seed``) come back with an error."""
        rng = np.random.default_rng([self.seed, 2])
        u = torch.from_numpy(rng.integers(0, 2, size=(int(blocks), self.k)).astype(np.float32))
        out = self.phy.run(u, self.esn0_db)
        return int((out != u).any(dim=1).sum())

    def delivered(self, bits: np.ndarray) -> bool:
        """Send ``(P,)`` uint8 payload bits (``P <=`` :meth:`capacity`) in ``ceil(P / k)``
        codewords; True when every bit comes back right."""
        rows = max(1, -(-len(bits) // self.k))
        u = np.zeros(rows * self.k, dtype=np.float32)
        u[: len(bits)] = bits
        u = torch.from_numpy(u.reshape(rows, self.k))
        out = self.phy.run(u, self.esn0_db)
        return bool(torch.equal(out.reshape(-1)[: len(bits)], u.reshape(-1)[: len(bits)]))


def candidates(esn0_db: float, channel: str = "awgn", spectral_floor: float = 0.25) -> list[McsEntry]:
    """The MCS entries worth trying at ``esn0_db``: nominal spectral efficiency ``R m`` at most
    the AWGN capacity (no code decodes above it, on a fading channel neither) and, on AWGN, at
    least ``spectral_floor`` of it (the others waste most of the budget); on a fading channel
    every entry below the capacity (the robust ones are the point there). Never empty: below
    every entry's threshold, the most robust entry (it will fail: the fill-in)."""
    cap = math.log2(1.0 + 10.0 ** (esn0_db / 10.0))
    floor = spectral_floor * cap if channel == "awgn" else 0.0
    return [e for e in MCS_TABLE if floor <= e.spectral_efficiency <= cap] or [MCS_TABLE[0]]


def choose_entry(dev: list[RdCurve], uses_per_image: int, side: int, channel: str, esn0_db: float,
                 fill: np.ndarray, *, blocks: int = 8192, seed: int = 0) -> tuple[McsEntry, float]:
    """The MCS entry of the highest expected mean PSNR over the development pictures ``dev``
    (module doc) and that expectation (dB). ``fill``: ``(P, side^2)`` per-image MSE of the
    fill-in for each of the ``P`` pictures."""
    best: tuple[McsEntry | None, float] = (None, float("nan"))
    fill = np.asarray(fill, dtype=np.float64).reshape(len(dev), side * side)
    fill_psnr = np.array([[psnr_from_mse(float(m)) for m in row] for row in fill])
    for e in candidates(esn0_db, channel):
        sep = Separation(e, uses_per_image, channel, esn0_db, seed)
        p = (sep.block_errors(blocks) + 0.5) / (blocks + 1)
        budget = sep.capacity(uses_per_image * side * side)
        psnrs = []
        for i, c in enumerate(dev):
            q = at_budget(c, budget)
            if q is None:
                psnrs.append(fill_psnr[i])
                continue
            ok = (1.0 - p) ** max(1, -(-int(c.bits[q]) // sep.k))
            psnrs.append(ok * np.array([psnr_from_mse(float(m)) for m in c.mse[q]]) + (1 - ok) * fill_psnr[i])
        score = float(np.mean(np.concatenate(psnrs)))
        if best[0] is None or score > best[1]:
            best = (e, score)
    return best  # type: ignore[return-value]  (candidates is never empty)


def mean_psnr(mse: np.ndarray) -> float:
    """Mean over images of the per-image PSNR (dB) of ``(T,)`` MSEs (0..255 scale)."""
    return float(np.mean([psnr_from_mse(float(m)) for m in mse]))


__all__ = ["mosaic", "tiles", "RdCurve", "rd_curve", "at_budget", "capacity_bits", "entry_link",
           "Separation", "candidates", "choose_entry", "mean_psnr"]

"""The DeepJSCC network: an image straight to real channel symbols and back.

The model class of Bourtsoulatze, Kurka and Gunduz, "Deep joint source-channel coding for
wireless image transmission" (IEEE TCCN 2019), with GDN normalisation (Balle et al.) and
the attention-feature SNR adaptation of Xu et al., "Wireless image transmission using deep
source channel coding with attention modules" (IEEE TCSVT 2021), written for semsim:

* **encoder**: ``(B, C, H, W)`` pixels as ``x / 255 - 1/2`` -> two 5x5 stride-2
  convolutions and two 3x3 convolutions, GDN and PReLU between them, an attention-feature
  module after each -> ``(B, c, H/4, W/4)`` reals, flattened to ``L = c H W / 16`` reals per
  item: ``L / 2`` complex channel uses, so the bandwidth ratio (complex channel uses per real
  source dimension) is ``c / 32`` for RGB (``c = 16``: 1/6; ``c = 8``: 1/12).
* **power**: every item's symbols are scaled to unit average power per complex channel use
  (``E|x|^2 = 1``, i.e. ``1/2`` per real), exactly as :class:`~simulator.link.transport.AnalogTransport`
  does, so the network is trained on the domain the link delivers.
* **decoder**: the mirror (transposed convolutions, inverse GDN), a sigmoid to ``[0, 1]``.
* **SNR adaptation**: each attention-feature module scales its feature map's channels by
  ``sigmoid(MLP([mean over space, snr_db]))``; both halves see the channel SNR in dB (the
  sender's knowledge of it, the receiver's estimate), clamped to :data:`SNR_RANGE_DB`
  (-5..25 dB, a little wider than the -2..22 dB the zoo's models train on). A single-SNR
  model is the same network always given its design SNR.

Items of any size are padded (edge replication) to a multiple of 4 and cropped back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..semantic.hyperprior import GDN

SNR_RANGE_DB = (-5.0, 25.0)
"""The SNR (Es/N0, dB) range the attention modules are told; values outside are clamped
(the zoo's recipes train on -2..22 dB, :mod:`simulator.jscc.pretrain`)."""


@dataclass(frozen=True)
class JsccShape:
    """A DeepJSCC architecture (stored with its weights in the zoo).

    Attributes:
        channels: image channels C (1 grey, 3 RGB).
        hidden: width of the convolutions.
        symbols: output channels c per 4x4 block of pixels (``c/2`` complex uses per 16 pixels).
    """

    channels: int
    hidden: int
    symbols: int

    def as_dict(self) -> dict:
        return asdict(self)

    def reals(self, h: int, w: int) -> int:
        """Reals per item of ``h x w`` pixels (``2 x`` the complex channel uses): ``c`` per 4x4
        block of the item padded to a multiple of 4."""
        return self.symbols * (-(-h // 4)) * (-(-w // 4))

    def bandwidth_ratio(self, h: int = 4, w: int = 4) -> float:
        """Complex channel uses per real source dimension on ``h x w`` items: ``(c / 2) / (16 C)``
        when both are multiples of 4 (the default)."""
        return self.reals(h, w) / 2 / (h * w * self.channels)


class AttentionFeature(nn.Module):
    """Channel scaling by ``sigmoid(MLP([spatial mean, snr_db]))`` (Xu et al. 2021)."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc1 = nn.Linear(channels + 1, channels // 4 + 1)
        self.fc2 = nn.Linear(channels // 4 + 1, channels)

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        ctx = torch.cat([x.mean(dim=(2, 3)), snr_db[:, None] / 10.0], dim=1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(ctx))))[:, :, None, None]


class DeepJSCC(nn.Module):
    """Encoder, power normalisation and decoder (module doc)."""

    def __init__(self, arch: JsccShape, generator: torch.Generator | None = None):
        super().__init__()
        self.arch = arch
        c, n, s = arch.channels, arch.hidden, arch.symbols
        self.enc = nn.ModuleList([nn.Conv2d(c, n, 5, 2, 2), nn.Conv2d(n, n, 5, 2, 2),
                                  nn.Conv2d(n, n, 3, 1, 1), nn.Conv2d(n, s, 3, 1, 1)])
        self.enc_norm = nn.ModuleList([GDN(n), GDN(n), GDN(n)])
        self.enc_act = nn.ModuleList([nn.PReLU(n) for _ in range(3)])
        self.enc_af = nn.ModuleList([AttentionFeature(n) for _ in range(3)])
        self.dec = nn.ModuleList([nn.Conv2d(s, n, 3, 1, 1), nn.Conv2d(n, n, 3, 1, 1),
                                  nn.ConvTranspose2d(n, n, 5, 2, 2, output_padding=1),
                                  nn.ConvTranspose2d(n, c, 5, 2, 2, output_padding=1)])
        self.dec_norm = nn.ModuleList([GDN(n, inverse=True), GDN(n, inverse=True), GDN(n, inverse=True)])
        self.dec_act = nn.ModuleList([nn.PReLU(n) for _ in range(3)])
        self.dec_af = nn.ModuleList([AttentionFeature(n) for _ in range(3)])
        if generator is not None:
            with torch.no_grad():
                for p in self.parameters():
                    if p.dim() > 1:
                        bound = 1.0 / math.sqrt(p[0].numel())
                        p.copy_(torch.rand(p.shape, generator=generator) * 2 * bound - bound)

    @staticmethod
    def _snr(snr_db: torch.Tensor) -> torch.Tensor:
        return snr_db.float().clamp(*SNR_RANGE_DB)

    def padded(self, h: int, w: int) -> tuple[int, int]:
        return -(-h // 4) * 4, -(-w // 4) * 4

    def reals(self, h: int, w: int) -> int:
        """Reals per item of ``h x w`` pixels (:meth:`JsccShape.reals`)."""
        return self.arch.reals(h, w)

    def encode(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` pixels in ``[-1/2, 1/2]``, ``(B,)`` SNR in dB -> ``(B, L)`` reals of
        unit average power per complex use (``sum x^2 = L / 2``)."""
        h, w = x.shape[2:]
        ph, pw = self.padded(h, w)
        if (ph, pw) != (h, w):
            x = F.pad(x, (0, pw - w, 0, ph - h), mode="replicate")
        snr = self._snr(snr_db)
        for i, conv in enumerate(self.enc):
            x = conv(x)
            if i < 3:
                x = self.enc_af[i](self.enc_act[i](self.enc_norm[i](x)), snr)
        z = x.flatten(1)
        return normalise(z)

    def decode(self, y: torch.Tensor, snr_db: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``(B, L)`` received reals, ``(B,)`` SNR in dB -> ``(B, C, H, W)`` pixels in ``[-1/2, 1/2]``."""
        h, w = size
        ph, pw = self.padded(h, w)
        x = y.reshape(len(y), self.arch.symbols, ph // 4, pw // 4)
        snr = self._snr(snr_db)
        for i, conv in enumerate(self.dec):
            x = conv(x)
            if i < 3:
                x = self.dec_af[i](self.dec_act[i](self.dec_norm[i](x)), snr)
        return torch.sigmoid(x)[:, :, :h, :w] - 0.5


def normalise(z: torch.Tensor) -> torch.Tensor:
    """``(B, L)`` reals scaled per row to unit average power per complex channel use: the
    mean of ``x^2`` over the row is ``1/2`` (a row of zeros stays zero)."""
    power = z.square().mean(dim=1, keepdim=True) * 2.0
    return z / torch.sqrt(torch.where(power > 0, power, torch.ones_like(power)))


def awgn(x: torch.Tensor, snr_db: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(B, L)`` unit-power reals plus white Gaussian noise of variance ``N0 / 2`` per real,
    ``N0 = 10^(-snr_db / 10)`` (Es/N0 with ``Es = 1`` per complex use)."""
    sigma = torch.sqrt(0.5 * torch.pow(10.0, -snr_db.float() / 10.0))[:, None]
    return x + sigma * torch.randn(x.shape, generator=generator, device=x.device)


def rayleigh_block(x: torch.Tensor, snr_db: torch.Tensor, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """One complex Rayleigh gain ``h ~ CN(0, 1)`` per item, AWGN, and zero-forcing with
    perfect CSI: returns the equalised ``(B, L)`` reals and ``(B,)`` the effective SNR in dB
    (``snr_db + 10 log10 |h|^2``), as :class:`~simulator.link.transport.AnalogTransport`
    equalises."""
    g = torch.randn((len(x), 2), generator=generator, device=x.device) * math.sqrt(0.5)
    gain = g.square().sum(dim=1).clamp_min(1e-12)
    eff = snr_db.float() + 10.0 * torch.log10(gain)
    return awgn(x, eff, generator), eff


__all__ = ["JsccShape", "DeepJSCC", "AttentionFeature", "SNR_RANGE_DB", "normalise", "awgn", "rayleigh_block"]

"""The hyperprior language: GDN transforms, a mean-scale hyperprior, gained variable rate.

The model class of Balle et al., "Variational image compression with a scale hyperprior"
(ICLR 2018) with the mean-and-scale Gaussian conditional of Minnen et al. (NeurIPS 2018),
written for semsim (CompressAI's ``models/google.py`` was read, not copied):

* **analysis** ``g_a``: ``d`` stages of 5x5 stride-2 convolutions, GDN between them:
  ``(B, C, H, W)`` -> latent ``y`` ``(B, M, H/2^d, W/2^d)``;
* **gain** of the operating point r: ``y <- y * g_r`` (one positive number per latent
  channel, learned; a gained variable-rate codec, Cui et al. CVPR 2021), inverted before
  synthesis, so one network serves every rung of the ladder;
* **hyper-analysis** ``h_a``: ``y`` -> side latent ``z`` ``(B, Nz, H/2^(d+e), W/2^(d+e))``
  (``e`` stride-2 stages), quantized and coded under a learned factorized density per channel
  (:class:`~simulator.semantic.entropy.FactorizedDensity`);
* **hyper-synthesis** ``h_s``: ``zhat`` -> mean ``mu`` and scale ``sigma`` of every element
  of ``y``; ``y`` is coded as ``q = round(y - mu)`` under a discretized Gaussian of scale
  ``sigma`` (bucketed to :data:`SCALES` for the coder) and reconstructed as ``yhat = q + mu``;
* **synthesis** ``g_s``: ``yhat / g_r`` -> image, inverse GDN between stages; the item's
  cluster (the semantic header) adds a learned bias ``b_k`` to the first feature map (zero at
  start: a freshly conditioned model is exactly its pre-distribution).

Items of any size are padded (edge replication) to a multiple of ``2^(d+e)`` and the
reconstruction is cropped back. Pixels enter as ``x / 255 - 1/2``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .entropy import FactorizedDensity

SCALE_MIN = 0.11
"""Smallest Gaussian scale of the conditional (training and coding)."""

SCALES = np.exp(np.linspace(math.log(SCALE_MIN), math.log(256.0), 64))
"""The 64 scales the coder has tables for (log-spaced 0.11..256); an element's scale is
rounded up to the next one."""


@dataclass(frozen=True)
class HyperShape:
    """The architecture of a hyperprior codec (stored with its weights in the zoo).

    Attributes:
        channels: image channels C (1 grey, 3 RGB).
        hidden: width N of the transforms.
        latent: channels M of ``y``.
        side: channels Nz of ``z``.
        stages: stride-2 stages d of ``g_a`` (>= 1).
        side_stages: stride-2 stages e of ``h_a`` (>= 0).
    """

    channels: int
    hidden: int
    latent: int
    side: int
    stages: int
    side_stages: int

    @property
    def multiple(self) -> int:
        """Items are padded to a multiple of this (``2^(d+e)``)."""
        return 1 << (self.stages + self.side_stages)

    def as_dict(self) -> dict:
        return asdict(self)


class GDN(nn.Module):
    """Generalized divisive normalization (Balle et al. 2016) over channels.

    ``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)``, or ``x_i * sqrt(...)`` when
    ``inverse``. ``beta = b^2 + 1e-6`` and ``gamma = g^2`` keep both positive.
    """

    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.b = nn.Parameter(torch.ones(channels))
        self.g = nn.Parameter(math.sqrt(0.1) * torch.eye(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = self.b * self.b + 1e-6
        gamma = (self.g * self.g)[:, :, None, None]
        norm = torch.sqrt(F.conv2d(x * x, gamma, beta))
        return x * norm if self.inverse else x / norm


def _down(cin: int, cout: int, k: int = 5) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=2, padding=k // 2)


def _up(cin: int, cout: int, k: int = 5) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k // 2, output_padding=1)


class HyperpriorCodec(nn.Module):
    """Transforms, hyperprior and gains of one hyperprior language.

    Args:
        arch: the architecture.
        lambdas: the operating points (lambda per rung).
        num_clusters: header alphabet size; with more than one, each cluster has a learned bias
            of the synthesis' first feature map (zero at start).
        generator: torch generator for the initialization (no global RNG).
    """

    def __init__(self, arch: HyperShape, lambdas: tuple[float, ...], num_clusters: int = 1,
                 generator: torch.Generator | None = None):
        super().__init__()
        if arch.stages < 1 or arch.side_stages < 0:
            raise ValueError("a hyperprior codec needs >= 1 analysis stage and >= 0 side stages")
        self.arch = arch
        c, n, m, nz = arch.channels, arch.hidden, arch.latent, arch.side
        ga: list[nn.Module] = []
        gs: list[nn.Module] = []
        cin = c
        for i in range(arch.stages):
            last = i == arch.stages - 1
            ga += [_down(cin, m if last else n)] + ([] if last else [GDN(n)])
            cin = n
        for i in range(arch.stages):
            last = i == arch.stages - 1
            gs += [_up(m if i == 0 else n, c if last else n)] + ([] if last else [GDN(n, inverse=True)])
        self.g_a = nn.Sequential(*ga)
        self.g_s = nn.ModuleList(gs)
        ha: list[nn.Module] = [nn.Conv2d(m, n, 3, padding=1)]
        hs: list[nn.Module] = []
        cin = n
        for i in range(arch.side_stages):
            last = i == arch.side_stages - 1
            ha += [nn.LeakyReLU(0.2), _down(n, nz if last else n)]
        if arch.side_stages == 0:
            ha += [nn.LeakyReLU(0.2), nn.Conv2d(n, nz, 3, padding=1)]
            hs += [nn.Conv2d(nz, n, 3, padding=1), nn.LeakyReLU(0.2)]
        for i in range(arch.side_stages):
            hs += [_up(nz if i == 0 else n, n), nn.LeakyReLU(0.2)]
        hs += [nn.Conv2d(n, 2 * m, 3, padding=1)]
        self.h_a = nn.Sequential(*ha)
        self.h_s = nn.Sequential(*hs)
        self.side_density = FactorizedDensity(nz, (3, 3, 3), generator=generator)
        self.lambdas = tuple(float(v) for v in lambdas)
        self.num_rungs = len(self.lambdas)
        mid = math.exp(sum(math.log(v) for v in self.lambdas) / self.num_rungs)
        start = torch.tensor([0.5 * math.log(v / mid) for v in self.lambdas], dtype=torch.float32)
        self.log_gain = nn.Parameter(start[:, None].repeat(1, m))
        self.num_clusters = int(num_clusters)
        self.cluster_bias = (nn.Parameter(torch.zeros(self.num_clusters, n if arch.stages > 1 else c))
                             if self.num_clusters > 1 else None)
        self._init(generator)

    def _init(self, gen: torch.Generator | None) -> None:
        for mod in self.modules():
            if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_uniform_(mod.weight, a=math.sqrt(5), generator=gen)
                bound = 1.0 / math.sqrt(max(1, mod.weight[0].numel()))
                with torch.no_grad():
                    mod.bias.uniform_(-bound, bound, generator=gen)

    # ------------------------------------------------------------------ shapes
    def padded(self, h: int, w: int) -> tuple[int, int]:
        f = self.arch.multiple
        return -(-h // f) * f, -(-w // f) * f

    def latent_shape(self, h: int, w: int) -> tuple[int, int, int]:
        ph, pw = self.padded(h, w)
        d = self.arch.stages
        return self.arch.latent, ph >> d, pw >> d

    def side_shape(self, h: int, w: int) -> tuple[int, int, int]:
        ph, pw = self.padded(h, w)
        d = self.arch.stages + self.arch.side_stages
        return self.arch.side, ph >> d, pw >> d

    # ------------------------------------------------------------------ nets
    def gain(self, rung: torch.Tensor, inverse: bool = False) -> torch.Tensor:
        """``(B, M, 1, 1)`` gain of each item's operating point ``rung`` ``(B,)``."""
        g = self.log_gain[rung]
        return torch.exp(-g if inverse else g)[:, :, None, None]

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized items ``(B, C, H, W)`` -> ``y`` ``(B, M, h, w)`` before the gain (padded)."""
        ph, pw = self.padded(x.shape[2], x.shape[3])
        if (ph, pw) != tuple(x.shape[2:]):
            x = F.pad(x, (0, pw - x.shape[3], 0, ph - x.shape[2]), mode="replicate")
        return self.g_a(x)

    def hyper(self, zhat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``zhat`` -> ``(mu, sigma)``, each ``(B, M, h, w)``; ``sigma >= SCALE_MIN``."""
        out = self.h_s(zhat)
        mu, raw = out.chunk(2, dim=1)
        return mu, torch.clamp(F.softplus(raw), min=SCALE_MIN)

    def synthesis(self, yhat: torch.Tensor, rung: torch.Tensor, clusters: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``yhat`` (gained domain) -> normalized reconstruction ``(B, C, H, W)`` cropped to ``size``."""
        h = yhat * self.gain(rung, inverse=True)
        for i, layer in enumerate(self.g_s):
            h = layer(h)
            if i == 0 and self.cluster_bias is not None:
                h = h + self.cluster_bias[clusters][:, :, None, None]
        return h[:, :, : size[0], : size[1]]

    def receiver_names(self) -> list[str]:
        """Names of what the apprentice holds: synthesis, hyper-synthesis, side density, gains,
        cluster biases (not the analysis transforms, which only the teacher runs)."""
        return [n for n, _ in self.named_parameters() if not n.startswith(("g_a.", "h_a."))]


def gaussian_likelihood(v: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Mass of the integer bin around ``v`` under ``N(0, sigma)``: ``Phi((v+1/2)/s) - Phi((v-1/2)/s)``,
    computed on the lower tail for accuracy; same shape as ``v``."""
    a = torch.abs(v)
    upper = 0.5 * torch.erfc((a - 0.5) / (sigma * math.sqrt(2.0)))
    lower = 0.5 * torch.erfc((a + 0.5) / (sigma * math.sqrt(2.0)))
    return upper - lower


def train_step_terms(codec: HyperpriorCodec, x: torch.Tensor, clusters: torch.Tensor, rung: torch.Tensor,
                     noise: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Rate and distortion of a training batch with additive uniform noise for quantization.

    Returns ``(bits (B,), sse (B,))``: bits of ``y`` and ``z`` under the model (likelihoods
    bounded below by 1e-9), SSE of the reconstruction on the 0..255 scale.
    """
    y = codec.analysis(x) * codec.gain(rung)
    z = codec.h_a(y)
    z_noisy = z + torch.rand(z.shape, generator=noise, device=z.device) - 0.5
    b = z.shape[0]
    zl = z_noisy.permute(1, 0, 2, 3).reshape(z.shape[1], -1)
    z_bits = codec.side_density.bits(zl).reshape(z.shape[1], b, -1).sum(dim=(0, 2))
    mu, sigma = codec.hyper(z_noisy)
    y_noisy = y + torch.rand(y.shape, generator=noise, device=y.device) - 0.5
    lik = torch.clamp(gaussian_likelihood(y_noisy - mu, sigma), min=1e-9)
    y_bits = -torch.log2(lik).sum(dim=(1, 2, 3))
    # the synthesis sees the rounded value it will see at run time (straight-through gradient)
    y_hat = y + (torch.round(y - mu) + mu - y).detach()
    rec = codec.synthesis(y_hat, rung, clusters, (x.shape[2], x.shape[3]))
    sse = ((rec - x) ** 2).sum(dim=(1, 2, 3)) * (255.0 ** 2)
    return z_bits + y_bits, sse


@torch.no_grad()
def rd_cost(codec: HyperpriorCodec, x: torch.Tensor, clusters: torch.Tensor, batch: int = 256) -> float:
    """``sum_i mean_r (bits_ir + lambda_r * SSE_ir)`` (bits) of normalized items ``x``
    ``(N, C, H, W)`` with rounding (run-time quantization) over every operating point: the
    training objective as the coder would pay it, for choosing between two models."""
    total = 0.0
    k = codec.num_rungs
    for s in range(0, len(x), batch):
        xb, cb = x[s: s + batch], clusters[s: s + batch]
        y0 = codec.analysis(xb)
        for r in range(k):
            rung = torch.full((len(xb),), r, dtype=torch.long)
            y = y0 * codec.gain(rung)
            z = torch.round(codec.h_a(y))
            zl = z.permute(1, 0, 2, 3).reshape(z.shape[1], -1)
            bits = codec.side_density.bits(zl).sum()
            mu, sigma = codec.hyper(z)
            q = torch.round(y - mu)
            bits = bits - torch.log2(torch.clamp(gaussian_likelihood(q, sigma), min=1e-9)).sum()
            rec = codec.synthesis(q + mu, rung, cb, (xb.shape[2], xb.shape[3]))
            sse = ((torch.round((rec + 0.5) * 255).clamp(0, 255) - torch.round((xb + 0.5) * 255)) ** 2).sum()
            total += float(bits + codec.lambdas[r] * sse) / k
    return total

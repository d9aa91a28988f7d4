"""The semantic encoder/decoder networks and their forward-FLOP count.

The encoder maps an item and its cluster prototype to a latent ``y`` of shape
``(latent_channels, H / 2^d, W / 2^d)``; the decoder maps the quantized latent and the
item's cluster (the semantic header) to a reconstruction. The cluster conditions the decoder
twice: a learned prototype image per cluster (the paper's "dictionary", content element ->
prototype) is added to the decoder's output, and a learned cluster code shifts the decoder's
first feature map. The latent therefore only has to carry what the prototype does not.

A variable-rate language (``rate_control = "target-quality"``, K operating points of the
``ladder``) scales the latent by a learned per-channel gain of the chosen operating point before
rounding and by its inverse before decoding (a gained variable-rate codec: one encoder, decoder
and prior for every rung). With one operating point there is no gain.

Pixels enter the networks as ``x / 255 - 1/2``; every parameter is initialized from an explicit
torch generator (no global RNG).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..flops import forward_flops
from .config import SemanticConfig
from .entropy import FactorizedDensity


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2)


class Encoder(nn.Module):
    """``(B, 2C, H, W)`` (item and its prototype, normalized) -> latent ``(B, L, H/2^d, W/2^d)``."""

    def __init__(self, in_ch: int, hidden: int, latent: int, downsample: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(2 * in_ch, hidden, 3, padding=1), _act()]
        for _ in range(downsample):
            layers += [nn.Conv2d(hidden, hidden, 3, stride=2, padding=1), _act()]
        layers += [nn.Conv2d(hidden, latent, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """Latent ``(B, L, h, w)`` and cluster code ``(B, E)`` -> residual image ``(B, C, H, W)``."""

    def __init__(self, out_ch: int, hidden: int, latent: int, downsample: int, embed: int):
        super().__init__()
        self.head = nn.Conv2d(latent, hidden, 3, padding=1)
        self.cond = nn.Linear(embed, hidden, bias=False) if embed > 0 else None
        layers: list[nn.Module] = [_act()]
        for _ in range(downsample):
            layers += [nn.ConvTranspose2d(hidden, hidden, 4, stride=2, padding=1), _act()]
        layers += [nn.Conv2d(hidden, out_ch, 3, padding=1)]
        self.body = nn.Sequential(*layers)

    def forward(self, y: torch.Tensor, code: torch.Tensor | None) -> torch.Tensor:
        h = self.head(y)
        if self.cond is not None and code is not None:
            h = h + self.cond(code)[:, :, None, None]
        return self.body(h)


class SemanticCodec(nn.Module):
    """Encoder, decoder, cluster dictionary and factorized prior of one language.

    Args:
        shape: ``(H, W, C)`` of the items.
        num_clusters: number of content clusters (header alphabet).
        cfg: the semantic configuration.
        generator: torch generator for the initialization.
    """

    def __init__(self, shape: tuple[int, int, int], num_clusters: int, cfg: SemanticConfig,
                 generator: torch.Generator):
        super().__init__()
        h, w, c = shape
        d = cfg.downsample
        self.shape = (int(h), int(w), int(c))
        self.num_clusters = int(num_clusters)
        self.latent_shape = (cfg.latent_channels, h >> d, w >> d)
        self.encoder = Encoder(c, cfg.hidden_channels, cfg.latent_channels, d)
        self.decoder = Decoder(c, cfg.hidden_channels, cfg.latent_channels, d, cfg.cluster_embedding)
        self.prototypes = nn.Parameter(torch.zeros(num_clusters, c, h, w))
        self.codes = nn.Parameter(torch.zeros(num_clusters, cfg.cluster_embedding)) if cfg.cluster_embedding else None
        lc, lh, lw = self.latent_shape
        self.per_element = cfg.prior == "element"
        n_dens = lc * lh * lw if self.per_element else lc
        self.density = FactorizedDensity(n_dens, tuple(cfg.density_filters), generator=generator)
        self.lambdas = tuple(float(v) for v in cfg.lambdas())
        self.num_rungs = len(self.lambdas)
        if self.num_rungs > 1:
            # log gain per (rung, latent channel); start at sqrt(lambda / lambda_mid): at high rate
            # MSE ~ step^2 and lambda ~ 1 / MSE, so the step shrinks like 1 / sqrt(lambda)
            mid = math.exp(sum(math.log(v) for v in self.lambdas) / self.num_rungs)
            start = torch.tensor([0.5 * math.log(v / mid) for v in self.lambdas], dtype=torch.float32)
            self.log_gain = nn.Parameter(start[:, None].repeat(1, lc))
        else:
            self.log_gain = None
        self._init(generator)

    # ------------------------------------------------------------------ init
    def _init(self, gen: torch.Generator) -> None:
        for m in list(self.encoder.modules()) + list(self.decoder.modules()):
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.kaiming_uniform_(m.weight, a=0.2, nonlinearity="leaky_relu", generator=gen)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if self.codes is not None:
            with torch.no_grad():
                self.codes.copy_(torch.randn(self.codes.shape, generator=gen) * 0.1)

    @torch.no_grad()
    def init_prototypes(self, x: torch.Tensor, clusters: torch.Tensor) -> None:
        """Start each prototype at the mean normalized item of its cluster (0 if empty)."""
        for k in range(self.num_clusters):
            sel = clusters == k
            if bool(sel.any()):
                self.prototypes[k] = x[sel].mean(dim=0)

    # ------------------------------------------------------------------ layout helpers
    @property
    def num_elements(self) -> int:
        return int(np.prod(self.latent_shape))

    def element_rows(self) -> np.ndarray:
        """``(J,)`` density index of each latent element (flattened channel-major)."""
        lc, lh, lw = self.latent_shape
        if self.per_element:
            return np.arange(lc * lh * lw)
        return np.repeat(np.arange(lc), lh * lw)

    def to_density_layout(self, y: torch.Tensor) -> torch.Tensor:
        """``(B, L, h, w)`` -> ``(D, M)`` for the factorized prior."""
        b = y.shape[0]
        if self.per_element:
            return y.reshape(b, -1).t()
        return y.permute(1, 0, 2, 3).reshape(y.shape[1], -1)

    def bits_per_item(self, y: torch.Tensor) -> torch.Tensor:
        """``(B,)`` rate in bits of each item's (noisy or rounded) latent under the prior."""
        bits = self.density.bits(self.to_density_layout(y))
        b = y.shape[0]
        if self.per_element:
            return bits.sum(dim=0)
        return bits.reshape(bits.shape[0], b, -1).sum(dim=(0, 2))

    # ------------------------------------------------------------------ nets
    def analysis(self, x: torch.Tensor, clusters: torch.Tensor) -> torch.Tensor:
        """Normalized items ``(B, C, H, W)`` -> the encoder's output ``(B, L, h, w)`` before any gain."""
        return self.encoder(torch.cat([x, self.prototypes[clusters]], dim=1))

    def gain(self, rung: torch.Tensor | None, inverse: bool = False) -> torch.Tensor | None:
        """``(B, L, 1, 1)`` gain of each item's operating point (``None`` with one rung)."""
        if self.log_gain is None:
            return None
        if rung is None:
            raise ValueError("a variable-rate codec needs the operating point (rung) of every item")
        g = self.log_gain[rung]
        return torch.exp(-g if inverse else g)[:, :, None, None]

    def encode(self, x: torch.Tensor, clusters: torch.Tensor, rung: torch.Tensor | None = None) -> torch.Tensor:
        """Normalized items ``(B, C, H, W)`` -> continuous latent ``(B, L, h, w)`` at operating
        point ``rung`` ``(B,)`` int64 (ignored with one rung)."""
        y = self.analysis(x, clusters)
        g = self.gain(rung)
        return y if g is None else y * g

    def decode(self, y: torch.Tensor, clusters: torch.Tensor, rung: torch.Tensor | None = None) -> torch.Tensor:
        """Latent ``(B, L, h, w)`` at operating point ``rung`` -> normalized reconstruction ``(B, C, H, W)``."""
        code = self.codes[clusters] if self.codes is not None else None
        g = self.gain(rung, inverse=True)
        return self.prototypes[clusters] + self.decoder(y if g is None else y * g, code)

    def receiver_parameters(self) -> list[torch.Tensor]:
        """What the apprentice must hold: decoder, prototypes, cluster codes, gains, prior."""
        out = list(self.decoder.parameters()) + [self.prototypes]
        if self.codes is not None:
            out.append(self.codes)
        if self.log_gain is not None:
            out.append(self.log_gain)
        return out + list(self.density.parameters())


# --------------------------------------------------------------------------- FLOPs


def count_flops(codec: SemanticCodec) -> tuple[int, int]:
    """Forward FLOPs per item ``(encode, decode)`` of the networks (:mod:`simulator.flops`:
    2 per multiply-accumulate of the convolutions and linear layers; entropy coding, a table
    look-up, is not counted)."""
    h, w, c = codec.shape
    x = torch.zeros(1, c, h, w)
    cl = torch.zeros(1, dtype=torch.long)
    rung = torch.zeros(1, dtype=torch.long) if codec.num_rungs > 1 else None
    with torch.no_grad():
        y = torch.round(codec.encode(x, cl, rung))
    return forward_flops(lambda: codec.encode(x, cl, rung)), forward_flops(lambda: codec.decode(y, cl, rung))


def param_count(params: list[torch.Tensor]) -> int:
    return int(sum(math.prod(p.shape) for p in params))

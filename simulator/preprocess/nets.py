"""Encoders psi_kappa: a backbone sized for the data and a projection to the unit sphere.

Two backbones:

* ``cnn`` (default): stages of ``conv3x3-BN-ReLU`` with a 2x2 max-pool between stages, until
  the feature map is 4x4 or smaller, then global average pooling. Channels start at ``width``
  and double per stage (capped at 8x). 8x8 digits get 2 stages, 32x32 CIFAR 4.
* ``resnet18``: the CIFAR variant of ResNet-18 (3x3 stem, no max-pool, 4 stages of 2 basic
  blocks, 64..512 channels); meant for GPU runs.

The projection is ``Linear-BN-ReLU-Linear`` to ``feature_dim`` followed by L2 normalisation
(the cosine similarity of eq. (2) is then a dot product).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from ..flops import forward_flops


def _conv_bn(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SmallCNN(nn.Module):
    """A small VGG-style CNN for 8x8 .. 64x64 images.

    Args:
        in_channels: 1 (grey) or 3 (RGB).
        size: the image side (the smaller of H, W).
        width: channels of the first stage.
    Input: ``(B, C, H, W)`` float. Output: ``(B, out_dim)`` float.
    """

    def __init__(self, in_channels: int, size: int, width: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        cin, cout, side = in_channels, width, size
        layers += _conv_bn(cin, cout)
        cin = cout
        while side > 4:
            layers.append(nn.MaxPool2d(2))
            side //= 2
            cout = min(cin * 2, width * 8)
            layers += _conv_bn(cin, cout)
            cin = cout
        if size <= 8:  # tiny images: one more conv at the last resolution for capacity
            layers += _conv_bn(cin, cin)
        self.body = nn.Sequential(*layers)
        self.out_dim = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.body(x), 1).flatten(1)


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = nn.Sequential()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.b1(self.c1(x)))
        return F.relu(self.b2(self.c2(out)) + self.short(x))


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18 (He et al. 2016; 3x3 stem, no max-pool). Output ``(B, 512)``."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(in_channels, 64))
        blocks: list[nn.Module] = []
        cin = 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [_BasicBlock(cin, cout, stride), _BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.out_dim = 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1).flatten(1)


class Encoder(nn.Module):
    """psi_kappa: backbone + projection head; returns unit-norm representations z.

    Args:
        shape: ``(H, W, C)`` of the items.
        backbone: ``"cnn"`` or ``"resnet18"``.
        width: first-stage channels of the CNN (ignored by ResNet-18).
        feature_dim: dimension of z.
    Input: ``(B, C, H, W)`` float (normalised pixels). Output: ``(B, feature_dim)`` float32, unit
    rows (also under bfloat16 autocast: the projection is normalised in float32).
    """

    def __init__(self, shape: tuple[int, int, int], backbone: str = "cnn", width: int = 32, feature_dim: int = 64):
        super().__init__()
        h, w, c = shape
        if backbone == "cnn":
            self.backbone: nn.Module = SmallCNN(c, min(h, w), width)
        elif backbone == "resnet18":
            self.backbone = ResNet18(c)
        else:
            raise ValueError(f"unknown backbone {backbone!r}")
        d = self.backbone.out_dim
        self.head = nn.Sequential(nn.Linear(d, d), nn.BatchNorm1d(d), nn.ReLU(inplace=True), nn.Linear(d, feature_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.backbone(x)).float(), dim=1)


def momentum_copy(encoder: nn.Module) -> nn.Module:
    """The key encoder kappa~: a frozen copy (no gradients) of ``encoder``."""
    key = copy.deepcopy(encoder)
    for p in key.parameters():
        p.requires_grad_(False)
    return key


@torch.no_grad()
def momentum_update(key: nn.Module, query: nn.Module, omega: float) -> None:
    """``kappa~ <- omega kappa~ + (1 - omega) kappa`` for every parameter; buffers (BN running
    statistics) are copied from the query encoder."""
    for pk, pq in zip(key.parameters(), query.parameters()):
        pk.mul_(omega).add_(pq.detach(), alpha=1.0 - omega)
    for bk, bq in zip(key.buffers(), query.buffers()):
        bk.copy_(bq)


def count_flops(encoder: nn.Module, shape: tuple[int, int, int]) -> int:
    """Forward FLOPs of ``encoder`` for one item of ``shape = (H, W, C)`` (:mod:`simulator.flops`)."""
    h, w, c = shape
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    try:
        return forward_flops(lambda: encoder(torch.zeros(1, c, h, w, device=device)))
    finally:
        encoder.train(was_training)

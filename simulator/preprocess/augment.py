"""The random perturbations chi_1, chi_2 of section III, torch-native and batched.

One call perturbs a whole batch: a random resized crop (plus a flip for colour images and a
small rotation for grey ones) is one ``affine_grid``/``grid_sample``, then photometric jitter
and pixel noise. All randomness comes from the ``torch.Generator`` passed in, so a fixed seed
gives the same perturbations on the CPU.

Policies (``augment`` key):

* ``grey`` (default for 1-channel items, e.g. digits): crop of 55-100 % of the area,
  rotation up to 15 degrees, no flip (it changes digits), brightness/contrast jitter, noise.
* ``color`` (default for 3-channel items, e.g. CIFAR): crop of 20-100 % of the area,
  horizontal flip, brightness/contrast/saturation jitter (p = 0.8), greyscale (p = 0.2).
* ``none``: identity (for tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class Policy:
    """Ranges of one augmentation policy (see the module docstring)."""

    crop_area: tuple[float, float]
    ratio: tuple[float, float]
    flip: bool
    max_rotation_deg: float
    jitter_p: float
    brightness: float
    contrast: float
    saturation: float
    grey_p: float
    noise_std: float


POLICIES = {
    "grey": Policy((0.55, 1.0), (0.8, 1.25), False, 15.0, 0.8, 0.4, 0.4, 0.0, 0.0, 0.05),
    "color": Policy((0.2, 1.0), (0.75, 4 / 3), True, 0.0, 0.8, 0.4, 0.4, 0.4, 0.2, 0.0),
}


def policy_for(name: str, channels: int) -> Policy | None:
    """The policy for ``augment = name`` (``auto`` picks by channel count); ``None`` = identity."""
    if name == "none":
        return None
    if name == "auto":
        name = "grey" if channels == 1 else "color"
    return POLICIES[name]


def to_float(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``(N, H, W, C)`` uint8 -> ``(N, C, H, W)`` float32 in [0, 1]."""
    x = torch.as_tensor(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    return x.permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def augment(x: torch.Tensor, policy: Policy | None, gen: torch.Generator) -> torch.Tensor:
    """One random perturbation of each image of a batch.

    Args:
        x: ``(B, C, H, W)`` float in [0, 1], on any device (the trainer keeps the items on the
            training device, so the resampling and jitter run there).
        policy: what to draw (``None`` returns ``x`` unchanged).
        gen: CPU torch generator: every random draw is made on the CPU, so a seed gives the same
            perturbations on every device.
    Returns:
        ``(B, C, H, W)`` float in [0, 1].
    """
    if policy is None:
        return x
    b, c = x.shape[0], x.shape[1]
    # geometry: output coords -> input coords, normalised to [-1, 1]
    area = _uniform(b, *policy.crop_area, gen)
    log_r = _uniform(b, math.log(policy.ratio[0]), math.log(policy.ratio[1]), gen)
    ratio = torch.exp(log_r)
    sw = torch.sqrt(area * ratio).clamp(max=1.0)
    sh = torch.sqrt(area / ratio).clamp(max=1.0)
    tx = (2 * torch.rand(b, generator=gen) - 1) * (1 - sw)
    ty = (2 * torch.rand(b, generator=gen) - 1) * (1 - sh)
    angle = (2 * torch.rand(b, generator=gen) - 1) * math.radians(policy.max_rotation_deg)
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0) if policy.flip else torch.ones(b)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([sw * cos * flip, -sh * sin, tx], 1),
                         torch.stack([sw * sin * flip, sh * cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid.to(x.device), mode="bilinear", padding_mode="zeros", align_corners=False)
    # photometric jitter
    apply = (torch.rand(b, generator=gen) < policy.jitter_p).float()
    view = (b, 1, 1, 1)

    def factor(strength: float) -> torch.Tensor:
        f = _uniform(b, 1 - strength, 1 + strength, gen)
        return (apply * f + (1 - apply)).view(view).to(x.device)

    if policy.brightness:
        out = out * factor(policy.brightness)
    if policy.contrast:
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = (out - mean) * factor(policy.contrast) + mean
    if c == 3 and (policy.saturation or policy.grey_p):
        grey = (0.299 * out[:, 0] + 0.587 * out[:, 1] + 0.114 * out[:, 2]).unsqueeze(1)
        if policy.saturation:
            out = grey + (out - grey) * factor(policy.saturation)
        if policy.grey_p:
            to_grey = (torch.rand(b, generator=gen) < policy.grey_p).view(view).to(x.device)
            grey = (0.299 * out[:, 0] + 0.587 * out[:, 1] + 0.114 * out[:, 2]).unsqueeze(1)
            out = torch.where(to_grey, grey.expand_as(out), out)
    if policy.noise_std:
        out = out + policy.noise_std * torch.randn(out.shape, generator=gen).to(x.device)
    return out.clamp_(0.0, 1.0)

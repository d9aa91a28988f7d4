"""A DeepJSCC network ready for the link: items to real channel symbols and received symbols
back to items, with the network's FLOPs for the compute-time model.

The teacher calls :meth:`JsccCodec.encode` (``uint8`` items -> ``float32`` reals of unit
average power per complex channel use, what :class:`~simulator.link.transport.AnalogTransport`
carries); the apprentice calls :meth:`JsccCodec.decode` with the received reals and the SNR
it estimates from the link (``Arrival.noise_variance``: ``snr = 1 / (2 sigma^2)`` per real).
Both run in fixed batches of :data:`BATCH` items (zero-padded), so the kernels' shapes do not
change with the number of items: an item's symbols equal those it gets in any other run up to
float32 rounding (the convolution kernels may sum in another order), and the same items give
the same symbols exactly.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import zoo
from ..errors import InputError
from ..flops import forward_flops
from ..semantic.coding import to_net, to_uint8
from .model import DeepJSCC, JsccShape

#: Items per forward pass (padded with zeros).
BATCH = 64


class JsccCodec:
    """A DeepJSCC network (module doc).

    Attributes:
        model: the network (eval mode, CPU).
        name: the zoo entry it came from.
        sha256: the zoo file's digest (``""`` when not from the zoo).
    """

    def __init__(self, model: DeepJSCC, name: str, sha256: str = ""):
        self.model = model.cpu().eval()
        self.name, self.sha256 = name, sha256

    @classmethod
    def from_zoo(cls, name: str) -> "JsccCodec":
        """The zoo's DeepJSCC entry ``name`` (sha256 checked)."""
        e = zoo.entry(name, "deepjscc")
        model = DeepJSCC(JsccShape(**e.arch))
        model.load_state_dict(zoo.load_state(e))
        return cls(model, name, e.sha256)

    @property
    def arch(self) -> JsccShape:
        return self.model.arch

    def bandwidth_ratio(self, shape: tuple[int, int, int]) -> float:
        """Complex channel uses per real source dimension for items of ``shape = (H, W, C)``."""
        return self.arch.bandwidth_ratio(shape[0], shape[1])

    def channel_uses(self, shape: tuple[int, int, int]) -> int:
        """Complex channel uses per item of ``shape`` (half the reals)."""
        return self.model.reals(shape[0], shape[1]) // 2

    def _check(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != self.arch.channels:
            raise InputError(f"DeepJSCC model {self.name!r} takes (N, H, W, {self.arch.channels}) uint8 items "
                             f"(got {images.dtype} {images.shape})", where="jscc.model")
        return images

    @torch.no_grad()
    def encode(self, images: np.ndarray, snr_db: np.ndarray) -> np.ndarray:
        """``(N, H, W, C)`` uint8 items and ``(N,)`` the SNR (dB) the encoder is told ->
        ``(N, L)`` float32 reals, unit average power per complex use."""
        images = self._check(images)
        x = to_net(images)
        snr = torch.as_tensor(np.broadcast_to(np.asarray(snr_db, dtype=np.float32), (len(images),)).copy())
        out = np.zeros((len(images), self.model.reals(*images.shape[1:3])), dtype=np.float32)
        for s in range(0, len(images), BATCH):
            xb, sb = _padded(x[s:s + BATCH]), _padded(snr[s:s + BATCH])
            out[s:s + BATCH] = self.model.encode(xb, sb)[: min(BATCH, len(images) - s)].numpy()
        return out

    @torch.no_grad()
    def decode(self, received: np.ndarray, snr_db: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
        """``(N, L)`` float32 received reals and ``(N,)`` the SNR (dB) the decoder is told ->
        ``(N, H, W, C)`` uint8 items of ``shape``."""
        y = torch.as_tensor(np.asarray(received, dtype=np.float32))
        snr = torch.as_tensor(np.broadcast_to(np.asarray(snr_db, dtype=np.float32), (len(y),)).copy())
        h, w, c = shape
        out = np.zeros((len(y), h, w, c), dtype=np.uint8)
        for s in range(0, len(y), BATCH):
            rec = self.model.decode(_padded(y[s:s + BATCH]), _padded(snr[s:s + BATCH]), (h, w))
            out[s:s + BATCH] = to_uint8(rec[: min(BATCH, len(y) - s)])
        return out

    def flops(self, shape: tuple[int, int, int]) -> tuple[int, int]:
        """Forward FLOPs per item (encoder, decoder) for items of ``shape`` (simulator.flops)."""
        h, w, c = shape
        x = torch.zeros(1, c, h, w)
        snr = torch.zeros(1)
        with torch.no_grad():
            z = self.model.encode(x, snr)
        return (forward_flops(lambda: self.model.encode(x, snr)),
                forward_flops(lambda: self.model.decode(z, snr, (h, w))))


def _padded(t: torch.Tensor) -> torch.Tensor:
    if len(t) == BATCH:
        return t
    pad = torch.zeros((BATCH - len(t), *t.shape[1:]), dtype=t.dtype)
    return torch.cat([t, pad])


def snr_from_noise(noise_variance: np.ndarray) -> np.ndarray:
    """``(N,)`` SNR in dB (Es/N0, unit symbol energy) from the noise variance per real
    dimension that the link reports (``N0 / 2``); ``inf`` variance gives ``-inf``."""
    v = np.asarray(noise_variance, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(1.0 / (2.0 * v))


def matching(bandwidth_ratio: float, channels: int) -> str | None:
    """The zoo's DeepJSCC entry for ``channels``-channel items at ``bandwidth_ratio`` (within
    1e-9), or ``None``."""
    for n in zoo.names("deepjscc"):
        e = zoo.entry(n, "deepjscc")
        shape = JsccShape(**e.arch)
        if shape.channels == channels and math.isclose(shape.bandwidth_ratio(), bandwidth_ratio, rel_tol=1e-9):
            return n
    return None


def zoo_model(model: str, ratio: float | None, shape: tuple[int, int, int]) -> str:
    """The zoo DeepJSCC entry that ``jscc.model = model`` names for items of ``shape = (H, W, C)``
    at ``link.bandwidth_ratio = ratio`` (``None``: not set): ``"auto"`` picks the entry for
    ``C`` channels at ``ratio``. Reads only the manifest (cheap: checked before a run starts).

    Raises:
        InputError: no entry fits, the entry is for other items, or its bandwidth on ``shape``
            is not ``ratio``.
    """
    name = model
    if name == "auto":
        name = matching(ratio, shape[2]) if ratio is not None else None
        if name is None:
            have = ", ".join(f"{n} ({JsccShape(**zoo.entry(n, 'deepjscc').arch).bandwidth_ratio():.6g})"
                             for n in zoo.names("deepjscc")) or "none"
            raise InputError(f"no zoo DeepJSCC model for {shape[2]}-channel items at bandwidth ratio {ratio:.6g}; the "
                             f"zoo has: {have}", where="link.bandwidth_ratio")
    arch = JsccShape(**zoo.entry(name, "deepjscc").arch)
    if arch.channels != shape[2]:
        raise InputError(f"zoo DeepJSCC model {name!r} is for {arch.channels}-channel items, the source has "
                         f"{shape[2]}", where="jscc.model")
    h, w, c = shape
    got = arch.bandwidth_ratio(h, w)
    if ratio is not None and abs(got - ratio) > 1e-9 * ratio:
        raise InputError(f"zoo DeepJSCC model {name!r} uses {got:.6g} complex channel uses per source dimension on "
                         f"{h}x{w}x{c} items, not link.bandwidth_ratio = {ratio:.6g}", where="jscc.model")
    return name


__all__ = ["JsccCodec", "BATCH", "snr_from_noise", "matching", "zoo_model"]

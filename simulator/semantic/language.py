"""The trained semantic language: training, cache, encoding to bitstreams, decoding, complexity.

:func:`fit_language` trains (or loads from the cache) a :class:`SemanticLanguage`: the
encoder, decoder, cluster dictionary and learned factorized prior of
:mod:`~simulator.semantic.codec`, trained on ``R + lambda * D`` (R: bits per item under the
prior with additive uniform noise U(-1/2, 1/2); D: sum of squared errors per item on the 0..255
scale). At run time the latent is rounded and entropy-coded with the tables of
:mod:`~simulator.semantic.entropy`.

Representation of item i (docs/semantic.md has the full definitions):

* ``bitstream``: one ANS stream holding the header (cluster id, uniform over ``num_clusters``)
  and the quantized latent, as bytes.
* ``n_bits = 8 * len(bitstream)``: what is sent, header included.
* ``est_bits = log2(num_clusters) + sum_j -log2 max(p_j(yhat_j), 1e-9)``: the estimated rate.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..context import RunContext
from .. import model_cache
from ..errors import InputError
from .codec import SemanticCodec, count_flops, param_count
from .config import SemanticConfig
from .entropy import CodingTable, build_table, coded_parameter_bits, decode_item, encode_item

log = logging.getLogger(__name__)

CODE_VERSION = "semantic-v2"
"""Part of the cache key: bump when training, architecture or coding changes."""

_BATCH = 512  # items per network call at run time


@dataclass(frozen=True)
class Representation:
    """What the teacher sends for one item.

    Attributes:
        bitstream: the entropy-coded header and latent (bytes).
        n_bits: ``8 * len(bitstream)``, the actual length sent, header included.
        est_bits: estimated rate ``log2(num_clusters) - sum log2 p(latent)`` (float).
        cluster: the cluster id carried in the header.
    """

    bitstream: bytes
    n_bits: int
    est_bits: float
    cluster: int


def _to_net(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, C)`` uint8 -> ``(N, C, H, W)`` float32 in ``[-1/2, 1/2]``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return x / 255.0 - 0.5


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """Inverse of :func:`_to_net`, rounded and clipped to 0..255; ``(N, H, W, C)``."""
    px = torch.clamp(torch.round((x + 0.5) * 255.0), 0, 255).to(torch.uint8)
    return px.permute(0, 2, 3, 1).contiguous().numpy()


def _check_items(images, clusters, num_clusters: int | None, where: str) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise InputError(f"images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}", where=where)
    clusters = np.asarray(clusters)
    if clusters.shape != (len(images),) or not np.issubdtype(clusters.dtype, np.integer):
        raise InputError(f"clusters must be ({len(images)},) integers, got {clusters.dtype} {clusters.shape}",
                         where=where)
    clusters = clusters.astype(np.int64)
    if num_clusters is not None and len(clusters) and (clusters.min() < 0 or clusters.max() >= num_clusters):
        raise InputError(f"cluster ids must be in [0, {num_clusters}), got [{clusters.min()}, {clusters.max()}]",
                         where=where)
    return images, clusters


class SemanticLanguage:
    """A trained semantic language (encoder side and decoder side of one process).

    Attributes:
        cfg: the :class:`SemanticConfig` it was trained with.
        shape: ``(H, W, C)`` of the items it serves.
        num_clusters: header alphabet size.
        tag: ``"vanilla"``, ``"contrastive"``... (names and logs only).
        key: the cache key (hex).
        from_cache: whether it was loaded rather than trained.
        history: per-epoch training means ``{"epoch", "loss", "bits", "sse"}``.
        flops_encode, flops_decode: forward FLOPs per item (see :func:`codec.count_flops`).
        header_bits: ``log2(num_clusters)``, the header's share of ``est_bits``.
    """

    def __init__(self, codec: SemanticCodec, cfg: SemanticConfig, tag: str, key: str,
                 from_cache: bool, history: list[dict]):
        self.codec = codec.cpu().eval()
        for p in self.codec.parameters():
            p.requires_grad_(False)
        self.cfg = cfg
        self.tag = tag
        self.key = key
        self.from_cache = from_cache
        self.history = history
        self.shape = codec.shape
        self.num_clusters = codec.num_clusters
        self.header_bits = math.log2(self.num_clusters)
        self.table: CodingTable = build_table(codec.density, cfg.tail_mass, cfg.max_support)
        self._rows = codec.element_rows()
        self.flops_encode, self.flops_decode = count_flops(self.codec)
        self._param_bits: int | None = None
        self._codec64 = copy.deepcopy(self.codec).double()  # est_bits in float64

    def __repr__(self) -> str:
        return (f"SemanticLanguage(tag={self.tag!r}, shape={self.shape}, latent={self.codec.latent_shape}, "
                f"clusters={self.num_clusters}, from_cache={self.from_cache})")

    # ------------------------------------------------------------------ encoder side
    @torch.no_grad()
    def quantize(self, images: np.ndarray, clusters: np.ndarray) -> np.ndarray:
        """The rounded latent of each item, ``(N, J)`` int64 (J = latent elements)."""
        images, clusters = self._check(images, clusters)
        out = []
        for s in range(0, len(images), _BATCH):
            x = _to_net(images[s: s + _BATCH])
            c = torch.from_numpy(clusters[s: s + _BATCH])
            y = self.codec.encode(x, c)
            out.append(torch.round(y).reshape(len(x), -1).to(torch.int64).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.codec.num_elements), dtype=np.int64)

    @torch.no_grad()
    def estimated_bits(self, latents: np.ndarray) -> np.ndarray:
        """``(N,)`` est_bits of rounded latents ``(N, J)``, header included."""
        out = []
        for s in range(0, len(latents), _BATCH):
            y = torch.from_numpy(latents[s: s + _BATCH]).double().reshape(-1, *self.codec.latent_shape)
            out.append(self._codec64.bits_per_item(y).numpy())
        bits = np.concatenate(out) if out else np.zeros(0)
        return bits + self.header_bits

    def encode(self, images: np.ndarray, clusters: np.ndarray) -> list[Representation]:
        """Encode items; one :class:`Representation` per item, in order."""
        images, clusters = self._check(images, clusters)
        latents = self.quantize(images, clusters)
        est = self.estimated_bits(latents)
        reps = []
        for i in range(len(images)):
            data = encode_item(latents[i], int(clusters[i]), self.num_clusters, self.table, self._rows)
            reps.append(Representation(data, 8 * len(data), float(est[i]), int(clusters[i])))
        return reps

    # ------------------------------------------------------------------ decoder side
    def decode_latents(self, bitstreams: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Bitstreams -> (rounded latents ``(N, J)`` int64, clusters ``(N,)`` int64)."""
        lat = np.zeros((len(bitstreams), self.codec.num_elements), dtype=np.int64)
        cl = np.zeros(len(bitstreams), dtype=np.int64)
        for i, data in enumerate(bitstreams):
            cl[i], lat[i] = decode_item(data, self.num_clusters, self.table, self._rows)
        return lat, cl

    @torch.no_grad()
    def reconstruct(self, latents: np.ndarray, clusters: np.ndarray) -> np.ndarray:
        """Rounded latents ``(N, J)`` and clusters -> ``(N, H, W, C)`` uint8 reconstructions."""
        h, w, c = self.shape
        out = []
        for s in range(0, len(latents), _BATCH):
            y = torch.from_numpy(np.asarray(latents[s: s + _BATCH])).float().reshape(-1, *self.codec.latent_shape)
            cl = torch.from_numpy(np.asarray(clusters[s: s + _BATCH], dtype=np.int64))
            out.append(_to_uint8(self.codec.decode(y, cl)))
        return np.concatenate(out) if out else np.zeros((0, h, w, c), dtype=np.uint8)

    def decode(self, bitstreams: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Bitstreams -> (``(N, H, W, C)`` uint8 reconstructions, ``(N,)`` int64 header clusters)."""
        lat, cl = self.decode_latents(bitstreams)
        return self.reconstruct(lat, cl), cl

    # ------------------------------------------------------------------ complexity
    def parameter_bits(self) -> int:
        """Coded size (bits) of what the receiver holds: decoder, prototypes, codes, prior.

        Parameters quantized to ``cfg.param_step`` and entropy-coded per tensor, see
        :func:`entropy.coded_parameter_bits`.
        """
        if self._param_bits is None:
            self._param_bits, _ = coded_parameter_bits(self.codec.receiver_parameters(), self.cfg.param_step)
        return self._param_bits

    def complexity_breakdown(self, images: np.ndarray, clusters: np.ndarray) -> dict:
        """Language complexity and its parts (nats), see :meth:`complexity_nats`."""
        images, clusters = self._check(images, clusters)
        est = self.estimated_bits(self.quantize(images, clusters))
        rep = float(est.sum()) * math.log(2)
        par = self.parameter_bits() * math.log(2)
        return {"representation_nats": rep, "parameter_nats": par, "total_nats": rep + par,
                "num_items": int(len(images)),
                "num_receiver_parameters": param_count(self.codec.receiver_parameters())}

    def complexity_nats(self, images: np.ndarray, clusters: np.ndarray) -> float:
        """Language complexity (nats) over the given items.

        ``sum_i est_bits_i * ln 2`` (the representation cross-entropy ``-ln p(Z_i | X_i)``:
        header ``ln num_clusters`` plus the latent's ``-ln p`` under the learned prior) plus
        ``parameter_bits() * ln 2`` (the coded size of the decoder, cluster dictionary and
        entropy model).
        """
        return self.complexity_breakdown(images, clusters)["total_nats"]

    # ------------------------------------------------------------------ helpers
    def _check(self, images, clusters) -> tuple[np.ndarray, np.ndarray]:
        images, clusters = _check_items(images, clusters, self.num_clusters, f"semantic language {self.tag!r}")
        if tuple(images.shape[1:]) != self.shape:
            raise InputError(f"items are {tuple(images.shape[1:])}, the language serves {self.shape}",
                             where=f"semantic language {self.tag!r}")
        return images, clusters


# --------------------------------------------------------------------------- training


def cache_key(images: np.ndarray, clusters: np.ndarray, num_clusters: int, cfg: SemanticConfig, seed: int,
              threads: int = 1) -> str:
    """sha256 of everything that determines a trained language (``threads``: torch's thread
    count during training, which changes float reductions)."""
    meta = json.dumps({"num_clusters": int(num_clusters), "seed": int(seed), "torch": torch.__version__.split("+")[0],
                       "threads": int(threads), "cfg": cfg.model_dump(mode="json", by_alias=True)}, sort_keys=True)
    return model_cache.digest(CODE_VERSION, meta, images, np.asarray(clusters, dtype=np.int64))


def _build(shape, num_clusters: int, cfg: SemanticConfig, ctx: RunContext) -> SemanticCodec:
    # module constructors draw their default init from torch's global RNG; keep it untouched
    with torch.random.fork_rng(devices=[]):
        return SemanticCodec(shape, num_clusters, cfg, ctx.torch_generator("semantic.init", device="cpu"))


def fit_language(images: np.ndarray, clusters: np.ndarray, num_clusters: int, cfg: SemanticConfig,
                 ctx: RunContext, tag: str = "semantic") -> SemanticLanguage:
    """Train a semantic language on items, or load it from the cache.

    Args:
        images: ``(N, H, W, C)`` uint8 training items.
        clusters: ``(N,)`` integer content cluster of each item (the semantic header).
        num_clusters: header alphabet size (cluster ids in ``[0, num_clusters)``).
        cfg: hyper-parameters.
        ctx: seed, device, cache directory.
        tag: a name for logs (not part of the cache key).
    Returns:
        the trained :class:`SemanticLanguage`; ``lang.from_cache`` says whether it was loaded.
    Raises:
        InputError: bad items, cluster ids, or an image size the encoder cannot downsample.

    Identical inputs, config and seed give identical parameters and bitstreams on the CPU.
    """
    where = f"semantic ({tag})"
    if int(num_clusters) < 1:
        raise InputError(f"num_clusters must be >= 1 (got {num_clusters})", where=where)
    images, clusters = _check_items(images, clusters, int(num_clusters), where)
    if len(images) == 0:
        raise InputError("no items to train the language on", where=where)
    n, h, w, c = images.shape
    f = 1 << cfg.downsample
    if h % f or w % f:
        raise InputError(f"item size {h}x{w} must be divisible by 2^downsample = {f}; lower semantic.downsample",
                         where="semantic.downsample")
    key = cache_key(images, clusters, num_clusters, cfg, ctx.seed, ctx.training_threads())
    path = ctx.cache_path("semantic", f"{key[:32]}.pt")

    def rebuild(blob: dict) -> SemanticLanguage:
        codec = _build((h, w, c), int(num_clusters), cfg, ctx)
        codec.load_state_dict(blob["state"])
        log.info("semantic language %s loaded from %s", tag, path)
        return SemanticLanguage(codec, cfg, tag, key, True, json.loads(blob["history"]))

    def train() -> tuple[SemanticLanguage, dict]:
        codec = _build((h, w, c), int(num_clusters), cfg, ctx)
        with ctx.threads():
            history = _train(codec, images, clusters, cfg, ctx, tag)
        return (SemanticLanguage(codec, cfg, tag, key, False, history),
                {"history": json.dumps(history), "state": {k: v.detach().cpu() for k, v in codec.state_dict().items()}})

    return model_cache.load_or_train(path, key, CODE_VERSION, "semantic language", rebuild, train)[0]


def _train(codec: SemanticCodec, images: np.ndarray, clusters: np.ndarray, cfg: SemanticConfig,
           ctx: RunContext, tag: str) -> list[dict]:
    device = ctx.device
    x_all = _to_net(images).to(device)
    c_all = torch.from_numpy(clusters).to(device)
    codec.init_prototypes(x_all.cpu(), c_all.cpu())
    codec.to(device).train()
    opt = torch.optim.Adam(codec.parameters(), lr=cfg.lr)
    order_rng = ctx.rng("semantic.order")
    noise = ctx.torch_generator("semantic.noise", device=device)
    n = len(images)
    bsz = min(cfg.batch_size, n)
    steps_per_epoch = math.ceil(n / bsz)
    epochs = cfg.epochs_for(n)
    total = epochs * steps_per_epoch
    lam = cfg.lambda_
    scale = 255.0 ** 2
    history = []
    step = 0
    for epoch in range(epochs):
        perm = torch.from_numpy(order_rng.permutation(n)).to(device)
        sums = np.zeros(3)
        for s in range(0, n, bsz):
            idx = perm[s: s + bsz]
            x, cl = x_all[idx], c_all[idx]
            lr = cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / total)))
            for g in opt.param_groups:
                g["lr"] = lr
            y = codec.encode(x, cl)
            y_noisy = y + torch.rand(y.shape, generator=noise, device=device) - 0.5
            bits = codec.bits_per_item(y_noisy).mean()
            sse = ((codec.decode(y_noisy, cl) - x) ** 2).sum(dim=(1, 2, 3)).mean() * scale
            loss = bits + lam * sse
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad_norm:
                torch.nn.utils.clip_grad_norm_(codec.parameters(), cfg.clip_grad_norm)
            opt.step()
            step += 1
            sums += np.array([loss.item(), bits.item(), sse.item()]) * len(idx)
        m = sums / n
        if not np.isfinite(m).all():
            raise InputError(f"training diverged at epoch {epoch + 1} (loss {m[0]}); lower semantic.lr or set "
                             "semantic.clip_grad_norm", where=f"semantic language {tag!r}")
        history.append({"epoch": epoch + 1, "loss": float(m[0]), "bits": float(m[1]), "sse": float(m[2])})
        if ctx.progress and (epoch + 1) % max(1, epochs // 5) == 0:
            log.info("semantic %s epoch %d/%d: loss %.1f, %.1f bits/item, SSE %.0f", tag, epoch + 1, epochs,
                     *m)
    codec.cpu().eval()
    return history

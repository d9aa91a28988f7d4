"""The trained semantic language: training, cache, encoding to bitstreams, decoding, complexity.

:func:`fit_language` trains (or loads from the cache) a :class:`SemanticLanguage`: the
encoder, decoder, cluster dictionary and learned factorized prior of
:mod:`~simulator.semantic.codec`, trained on ``R + lambda * D`` (R: bits per item under the
prior with additive uniform noise U(-1/2, 1/2); D: sum of squared errors per item on the 0..255
scale). At run time the latent is rounded and entropy-coded with the tables of
:mod:`~simulator.semantic.entropy`.

Representation of item i (docs/semantic.md has the full definitions):

* ``bitstream``: one ANS stream holding the header (cluster id and operating point, uniform
  over ``num_clusters x num_rungs``) and the quantized latent, as bytes.
* ``n_bits = 8 * len(bitstream)``: what is sent, header included.
* ``est_bits = log2(num_clusters x num_rungs) + sum_j -log2 max(p_j(yhat_j), 1e-9)``: the
  estimated rate.

Rate control (``rate_control = "target-quality"``): the language is trained over the ``ladder``
of lambdas (each training item at a random rung, loss ``R + lambda_rung * D``), and
:meth:`SemanticLanguage.encode_to_target` gives each item the shortest bitstream over the rungs
whose decode, computed by the teacher on its own copy, meets the PSNR target.
"""

from __future__ import annotations

import copy
import json
import logging
import math

import numpy as np
import torch

from ..context import RunContext
from .. import model_cache
from ..errors import InputError
from ..progress import StepMeter
from .codec import SemanticCodec, count_flops, param_count
from .config import SemanticConfig
from .coding import (LadderCoding, Representation, TargetCoding, check_items, rungs_of, search_target, to_net,
                     to_uint8)
from .entropy import CodingTable, build_table, coded_parameter_bits, decode_item, encode_item

log = logging.getLogger(__name__)

CODE_VERSION = "semantic-v3"
"""Part of the cache key: bump when training, architecture or coding changes."""

_BATCH = 512  # items per encoder call at run time
_DECODE_BATCH = 64  # items per decoder call, always exactly (padded): see SemanticLanguage.reconstruct


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
        symbols_per_item: entropy-coded symbols per item (the latent's elements), for the
            entropy coder's cost (:data:`simulator.flops.ENTROPY_COST`).
        flops_per_extra_rung: FLOPs each operating point beyond the first adds when the rate
            control codes several (0: the gains are element-wise).
        lambdas: the operating points (lambda per rung; one without rate control).
        num_rungs: ``len(lambdas)``.
        header_bits: ``log2(num_clusters * num_rungs)``, the header's share of ``est_bits``.
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
        self.lambdas = codec.lambdas
        self.num_rungs = codec.num_rungs
        self.header_alphabet = self.num_clusters * self.num_rungs
        self.header_bits = math.log2(self.header_alphabet)
        self.table: CodingTable = build_table(codec.density, cfg.tail_mass, cfg.max_support)
        self._rows = codec.element_rows()
        self.flops_encode, self.flops_decode = count_flops(self.codec)
        self.symbols_per_item = int(codec.num_elements)
        self.flops_per_extra_rung = 0  # one analysis pass serves every rung (the gains are element-wise)
        self._param_bits: int | None = None
        self._codec64 = copy.deepcopy(self.codec).double()  # est_bits in float64

    def __repr__(self) -> str:
        return (f"SemanticLanguage(tag={self.tag!r}, shape={self.shape}, latent={self.codec.latent_shape}, "
                f"clusters={self.num_clusters}, from_cache={self.from_cache})")

    # ------------------------------------------------------------------ encoder side
    def _rungs(self, rung, n: int) -> np.ndarray:
        """``(n,)`` int64 operating points from an int, an array or ``None`` (the highest rung)."""
        return rungs_of(rung, n, self.num_rungs, self.tag)

    def _rung_tensor(self, rungs: np.ndarray) -> torch.Tensor | None:
        return torch.from_numpy(rungs) if self.num_rungs > 1 else None

    @torch.no_grad()
    def quantize(self, images: np.ndarray, clusters: np.ndarray, rung=None) -> np.ndarray:
        """The rounded latent of each item at operating point ``rung`` (int or ``(N,)``;
        default the highest), ``(N, J)`` int64 (J = latent elements)."""
        images, clusters = self._check(images, clusters)
        rungs = self._rungs(rung, len(images))
        out = []
        for s in range(0, len(images), _BATCH):
            x = to_net(images[s: s + _BATCH])
            c = torch.from_numpy(clusters[s: s + _BATCH])
            y = self.codec.encode(x, c, self._rung_tensor(rungs[s: s + _BATCH]))
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

    def _code(self, latents: np.ndarray, clusters: np.ndarray, rungs: np.ndarray) -> list[bytes]:
        return [encode_item(latents[i], int(rungs[i]) * self.num_clusters + int(clusters[i]), self.header_alphabet,
                            self.table, self._rows) for i in range(len(latents))]

    def encode(self, images: np.ndarray, clusters: np.ndarray, rung=None) -> list[Representation]:
        """Encode items at operating point ``rung`` (int or ``(N,)``; default the highest);
        one :class:`Representation` per item, in order."""
        images, clusters = self._check(images, clusters)
        rungs = self._rungs(rung, len(images))
        latents = self.quantize(images, clusters, rungs)
        est = self.estimated_bits(latents)
        streams = self._code(latents, clusters, rungs)
        return [Representation(d, 8 * len(d), float(est[i]), int(clusters[i]), int(rungs[i]))
                for i, d in enumerate(streams)]

    @torch.no_grad()
    def _latents_per_rung(self, images: np.ndarray, clusters: np.ndarray) -> np.ndarray:
        """``(K, N, J)`` int64 rounded latents of every item at every operating point (one
        analysis pass; the gains are applied per rung)."""
        n, k = len(images), self.num_rungs
        out = np.zeros((k, n, self.codec.num_elements), dtype=np.int64)
        for s in range(0, n, _BATCH):
            x = to_net(images[s: s + _BATCH])
            y = self.codec.analysis(x, torch.from_numpy(clusters[s: s + _BATCH]))
            for r in range(k):
                g = self.codec.gain(torch.full((len(x),), r, dtype=torch.long)) if k > 1 else None
                out[r, s: s + len(x)] = torch.round(y if g is None else y * g).reshape(len(x), -1).to(torch.int64).numpy()
        return out

    def encode_to_target(self, images: np.ndarray, clusters: np.ndarray, psnr_db: float | None,
                         budget_bits: int | None = None, search: str = "scan") -> TargetCoding:
        """Per item, the shortest bitstream over the operating points whose decode meets ``psnr_db``.

        Every rung's stream is entropy-coded (one analysis pass; coding is cheap); with ``search
        = "scan"`` the rungs are then decoded from the shortest stream up (``n_bits``; ties: the
        lower rung) until one's PSNR against the original is ``>= psnr_db``: that is the shortest
        stream meeting the target, found with as few decodes as the item needs; ``"bisect"``
        bisects the same order instead (:func:`~simulator.semantic.coding.search_target`). The
        decode is :meth:`reconstruct`,
        the apprentice's. An item no rung serves gets the highest rung with ``met = False``; the
        pipeline decides what to do with it. ``images`` ``(N, H, W, C)`` uint8, ``clusters``
        ``(N,)`` int.

        With ``budget_bits`` (a bandwidth budget) the choice is instead the highest operating
        point whose stream fits it, with no decode (:meth:`encode_ladder`, then
        :meth:`~simulator.semantic.coding.LadderCoding.fit`).
        """
        if budget_bits is not None:
            return self.encode_ladder(images, clusters).fit(budget_bits)
        images, clusters = self._check(images, clusters)
        n, k = len(images), self.num_rungs
        lat = self._latents_per_rung(images, clusters)
        streams = [self._code(lat[r], clusters, np.full(n, r)) for r in range(k)]
        bits = np.array([[8 * len(d) for d in streams[r]] for r in range(k)], dtype=np.int64).reshape(k, n)
        chosen, met, psnr, tried = search_target(
            bits, lambda r, sel: self.reconstruct(lat[r, sel], clusters[sel], r), images, psnr_db, search)
        est = {r: self.estimated_bits(lat[r][chosen == r]) for r in np.unique(chosen)}
        pos = {r: 0 for r in est}
        reps = []
        for i in range(n):
            r = int(chosen[i])
            reps.append(Representation(streams[r][i], int(bits[r, i]), float(est[r][pos[r]]), int(clusters[i]), r))
            pos[r] += 1
        return TargetCoding(reps, met, psnr, tried)

    def encode_ladder(self, images: np.ndarray, clusters: np.ndarray) -> LadderCoding:
        """Every item of ``images`` ``(N, H, W, C)`` uint8 (``clusters`` ``(N,)``) at every
        operating point (one analysis pass; :class:`~simulator.semantic.coding.LadderCoding`)."""
        images, clusters = self._check(images, clusters)
        n, k = len(images), self.num_rungs
        lat = self._latents_per_rung(images, clusters)
        ladder = []
        for r in range(k):
            est = self.estimated_bits(lat[r])
            ladder.append([Representation(d, 8 * len(d), float(est[i]), int(clusters[i]), r)
                           for i, d in enumerate(self._code(lat[r], clusters, np.full(n, r)))])
        return LadderCoding(ladder)

    # ------------------------------------------------------------------ decoder side
    def decode_latents(self, bitstreams: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bitstreams -> (rounded latents ``(N, J)`` int64, clusters ``(N,)`` int64, rungs ``(N,)`` int64)."""
        lat = np.zeros((len(bitstreams), self.codec.num_elements), dtype=np.int64)
        cl = np.zeros(len(bitstreams), dtype=np.int64)
        rung = np.zeros(len(bitstreams), dtype=np.int64)
        for i, data in enumerate(bitstreams):
            header, lat[i] = decode_item(data, self.header_alphabet, self.table, self._rows)
            rung[i], cl[i] = divmod(header, self.num_clusters)
        return lat, cl, rung

    @torch.no_grad()
    def reconstruct(self, latents: np.ndarray, clusters: np.ndarray, rung=None) -> np.ndarray:
        """Rounded latents ``(N, J)``, clusters and operating points (int or ``(N,)``; default
        the highest) -> ``(N, H, W, C)`` uint8 reconstructions.

        The decoder always runs on batches of exactly :data:`_DECODE_BATCH` items (the last one
        padded), so every call has the same shape and an item's reconstruction does not depend
        on which other items share the call: the teacher's check and the apprentice's decode
        agree bit for bit (tested)."""
        h, w, c = self.shape
        n = len(latents)
        rungs = self._rungs(rung, n)
        clusters = np.asarray(clusters, dtype=np.int64)
        out = np.zeros((n, h, w, c), dtype=np.uint8)
        lat = np.asarray(latents, dtype=np.int64).reshape(n, -1)
        b = _DECODE_BATCH
        for s in range(0, n, b):
            m = min(b, n - s)
            y = np.zeros((b, lat.shape[1]), dtype=np.float32)
            y[:m] = lat[s: s + m]
            cl = np.zeros(b, dtype=np.int64)
            cl[:m] = clusters[s: s + m]
            r = np.zeros(b, dtype=np.int64)
            r[:m] = rungs[s: s + m]
            x = self.codec.decode(torch.from_numpy(y).reshape(b, *self.codec.latent_shape), torch.from_numpy(cl),
                                  self._rung_tensor(r))
            out[s: s + m] = to_uint8(x)[:m]
        return out

    def decode(self, bitstreams: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Bitstreams -> (``(N, H, W, C)`` uint8 reconstructions, ``(N,)`` int64 header clusters)."""
        lat, cl, rung = self.decode_latents(bitstreams)
        return self.reconstruct(lat, cl, rung), cl

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

        ``sum_i est_bits_i * ln 2`` at the highest operating point (the representation
        cross-entropy ``-ln p(Z_i | X_i)``: header ``ln(num_clusters x num_rungs)`` plus the
        latent's ``-ln p`` under the learned prior) plus
        ``parameter_bits() * ln 2`` (the coded size of the decoder, cluster dictionary and
        entropy model).
        """
        return self.complexity_breakdown(images, clusters)["total_nats"]

    # ------------------------------------------------------------------ helpers
    def _check(self, images, clusters) -> tuple[np.ndarray, np.ndarray]:
        images, clusters = check_items(images, clusters, self.num_clusters, f"semantic language {self.tag!r}")
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
                       "threads": int(threads), "cfg": cfg.training_dump()}, sort_keys=True)
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
    With ``cfg.architecture = "hyperprior"`` this is
    :func:`~simulator.semantic.hyper_language.fit_hyper_language`.
    """
    if cfg.architecture == "hyperprior":
        from .hyper_language import fit_hyper_language

        return fit_hyper_language(images, clusters, num_clusters, cfg, ctx, tag)
    where = f"semantic ({tag})"
    if int(num_clusters) < 1:
        raise InputError(f"num_clusters must be >= 1 (got {num_clusters})", where=where)
    images, clusters = check_items(images, clusters, int(num_clusters), where)
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
    x_all = to_net(images).to(device)
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
    lams = torch.tensor(codec.lambdas, dtype=torch.float32, device=device)
    meter = StepMeter(ctx, f"learning: {tag} language", total)
    rung_rng = ctx.torch_generator("semantic.rung", device=device)
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
            # each item at a random operating point (the only one without rate control)
            rung = (torch.randint(len(lams), (len(idx),), generator=rung_rng, device=device)
                    if len(lams) > 1 else torch.zeros(len(idx), dtype=torch.long, device=device))
            y = codec.encode(x, cl, rung if len(lams) > 1 else None)
            y_noisy = y + torch.rand(y.shape, generator=noise, device=device) - 0.5
            item_bits = codec.bits_per_item(y_noisy)
            item_sse = ((codec.decode(y_noisy, cl, rung if len(lams) > 1 else None) - x) ** 2).sum(dim=(1, 2, 3)) * scale
            bits, sse = item_bits.mean(), item_sse.mean()
            loss = (item_bits + lams[rung] * item_sse).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad_norm:
                torch.nn.utils.clip_grad_norm_(codec.parameters(), cfg.clip_grad_norm)
            opt.step()
            step += 1
            sums += np.array([loss.item(), bits.item(), sse.item()]) * len(idx)
            if meter.due(step):  # the detail only when shown
                meter(step, f"epoch {epoch + 1}/{epochs}, loss {loss.item():.4g}, {bits.item():.0f} bits/item")
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

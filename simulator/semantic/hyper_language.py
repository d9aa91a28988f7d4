"""The hyperprior language: a zoo pre-distribution fine-tuned per pipeline (docs/semantic.md).

:func:`fit_hyper_language` starts from the zoo's pre-distribution zeta (``semantic.pretrained``;
from a random start when the zoo has none for the items), fine-tunes it on the pipeline's
items into the post-distribution Lambda, and returns a :class:`HyperLanguage` with the same
interface as :class:`~simulator.semantic.language.SemanticLanguage`.

* **Held-out coding** (``semantic.fit_on = "disjoint"``, the default): the training items are
  split in two folds (stream ``semantic.folds``); one post-distribution is fine-tuned on each
  fold and an item is coded by the one that did not see it (2-fold cross-fitting). Items the
  language was not trained on use fold 0's. The fold is in the header. ``"all"``: one
  post-distribution fine-tuned on all items, which then codes them.
* **Model cost** (:meth:`HyperLanguage.parameter_bits`): what the apprentice needs beyond the
  pre-distribution it already holds. After fine-tuning, every receiver tensor is snapped to
  ``zeta + param_step * round((Lambda - zeta) / param_step)`` (so the described model is the
  one used) and the nonzero differences are coded (:func:`delta_bits`). An unchanged
  pre-distribution costs 0 bits.
* **Bitstream** of one item: header ``((fold * rungs) + rung) * clusters + cluster`` (uniform),
  the side latent ``zhat`` under the learned factorized density of its channel, then
  ``q = round(y - mu)`` under a discretized Gaussian of the element's scale rounded up to
  :data:`~simulator.semantic.hyperprior.SCALES`; both with escape codes for values outside the
  tables.

Every hyper-synthesis and synthesis call runs on batches of exactly :data:`_FIXED` items (the
last one padded), so the scales and means the teacher codes with are bit for bit the ones the
apprentice decodes with, whatever items share a call.
"""

from __future__ import annotations

import copy
import json
import logging
import math

import numpy as np
import torch

from .. import model_cache, zoo
from ..context import RunContext
from ..errors import InputError
from ..flops import forward_flops
from ..folds import two_folds
from ..metrics import psnr_from_mse
from ..progress import StepMeter
from .config import SemanticConfig
from .entropy import (CodingTable, StreamReader, build_table, coded_parameter_bits, encode_stream,
                      gaussian_table)
from .hyperprior import SCALES, HyperpriorCodec, HyperShape, gaussian_likelihood, rd_cost
from .coding import (LadderCoding, Representation, TargetCoding, check_items, rungs_of, search_target, to_net,
                     to_uint8)

log = logging.getLogger(__name__)

CODE_VERSION = "hyper-v2"
_FIXED = 64
_BATCH = 256

#: Architecture of a language trained from a random start (no zoo entry for the items).
SCRATCH_ARCH = {1: HyperShape(1, 48, 32, 16, 2, 1), 3: HyperShape(3, 96, 128, 64, 3, 1)}


def _scale_rows(sigma: torch.Tensor) -> np.ndarray:
    """Index of the smallest table scale >= each sigma (int64, same shape flattened per item)."""
    s = sigma.detach().double().numpy()
    return np.minimum(np.searchsorted(SCALES, s, side="left"), len(SCALES) - 1)


def operating_points(cfg: SemanticConfig, lambdas: tuple[float, ...]) -> np.ndarray:
    """The codec's rungs a language uses: all of them with ``rate_control = "target-quality"``
    or ``"budget"``; with ``"lambda"`` the one whose lambda is nearest to ``semantic.lambda`` (in log)."""
    if cfg.rate_control != "lambda":
        return np.arange(len(lambdas), dtype=np.int64)
    dist = [abs(math.log(v) - math.log(cfg.lambda_)) for v in lambdas]
    return np.array([int(np.argmin(dist))], dtype=np.int64)


def delta_bits(params: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], step: float) -> int:
    """Coded size (bits) of ``params`` given ``reference`` (the pre-distribution; a name missing
    there counts from zero): ``round((p - ref) / step)`` per tensor, the nonzero ones coded by
    :func:`~simulator.semantic.entropy.coded_parameter_bits` plus one bit per tensor saying
    whether it changed; 0 when nothing changed."""
    changed = []
    for name, p in params.items():
        ref = reference.get(name)
        d = p.detach().double() - (ref.double() if ref is not None else 0.0)
        if bool(torch.any(torch.round(d / step) != 0)):
            changed.append(d)
    if not changed:
        return 0
    bits, _ = coded_parameter_bits(changed, step)
    return int(bits) + len(params)


class HyperLanguage:
    """A fine-tuned hyperprior language (both sides of one process); interface of
    :class:`~simulator.semantic.language.SemanticLanguage`.

    Attributes beyond it: ``pretrained`` (zoo entry name or ``"none"``), ``folds`` (number of
    post-distributions: 2 with ``fit_on = "disjoint"``), ``fit_items`` (items fine-tuned on).
    """

    def __init__(self, codecs: list[HyperpriorCodec], reference: dict[str, torch.Tensor], *, fold_of: dict[bytes, int],
                 cfg: SemanticConfig, tag: str, key: str, from_cache: bool, history: list[dict], shape, pretrained: str,
                 fit_items: int):
        self.codecs = [c.cpu().eval() for c in codecs]
        for c in self.codecs:
            for p in c.parameters():
                p.requires_grad_(False)
        self.reference = reference
        self._fold_of = fold_of
        self.cfg, self.tag, self.key, self.from_cache, self.history = cfg, tag, key, from_cache, history
        self.shape = tuple(int(v) for v in shape)
        self.pretrained = pretrained
        self.fit_items = int(fit_items)
        c0 = self.codecs[0]
        self.num_clusters = c0.num_clusters
        self._codec_rung = operating_points(cfg, c0.lambdas)
        self.lambdas = tuple(c0.lambdas[i] for i in self._codec_rung)
        self.num_rungs = len(self._codec_rung)
        self.folds = len(self.codecs)
        self.header_alphabet = self.num_clusters * self.num_rungs * self.folds
        self.header_bits = math.log2(self.header_alphabet)
        h, w, _ = self.shape
        self._zshape = c0.side_shape(h, w)
        self._yshape = c0.latent_shape(h, w)
        self._jz = int(np.prod(self._zshape))
        self._jy = int(np.prod(self._yshape))
        self._zrow = np.repeat(np.arange(self._zshape[0]), self._zshape[1] * self._zshape[2])
        self._ztables: list[CodingTable] = [build_table(c.side_density, cfg.tail_mass, cfg.max_support)
                                            for c in self.codecs]
        self._ytable = gaussian_table(SCALES, cfg.tail_mass)
        self._dens64 = [copy.deepcopy(c.side_density).double() for c in self.codecs]  # est_bits in float64
        self._param_bits: int | None = None
        self.flops_encode, self.flops_decode, self.flops_per_extra_rung = self._flops()
        self.symbols_per_item = self._jz + self._jy

    def __repr__(self) -> str:
        return (f"HyperLanguage(tag={self.tag!r}, shape={self.shape}, pretrained={self.pretrained!r}, "
                f"folds={self.folds}, clusters={self.num_clusters}, from_cache={self.from_cache})")

    # ------------------------------------------------------------------ helpers
    def _check(self, images, clusters):
        images, clusters = check_items(images, clusters, self.num_clusters, f"semantic language {self.tag!r}")
        if tuple(images.shape[1:]) != self.shape:
            raise InputError(f"items are {tuple(images.shape[1:])}, the language serves {self.shape}",
                             where=f"semantic language {self.tag!r}")
        return images, clusters

    def coding_fold(self, images: np.ndarray) -> np.ndarray:
        """``(N,)`` the post-distribution that codes each item: the one not fine-tuned on it."""
        if self.folds == 1:
            return np.zeros(len(images), dtype=np.int64)
        return np.array([1 - self._fold_of.get(model_cache.digest(im), 1) for im in images], dtype=np.int64)

    def _rungs(self, rung, n: int) -> np.ndarray:
        """``(n,)`` int64 operating points from an int, an array or ``None`` (the highest rung)."""
        return rungs_of(rung, n, self.num_rungs, self.tag)

    @torch.no_grad()
    def _hyper(self, fold: int, zhat: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, Jz)`` side symbols -> ``(mu, sigma)`` ``(N, M, h, w)``, on fixed-size batches."""
        codec = self.codecs[fold]
        n = len(zhat)
        mu = torch.zeros((n, *self._yshape))
        sigma = torch.zeros((n, *self._yshape))
        for s in range(0, n, _FIXED):
            m = min(_FIXED, n - s)
            z = torch.zeros((_FIXED, self._jz))
            z[:m] = torch.from_numpy(zhat[s: s + m].astype(np.float32))
            a, b = codec.hyper(z.reshape(_FIXED, *self._zshape))
            mu[s: s + m], sigma[s: s + m] = a[:m], b[:m]
        return mu, sigma

    @torch.no_grad()
    def _symbols(self, fold: int, images: np.ndarray, rungs_list: list[np.ndarray]
                 ) -> list[tuple[np.ndarray, torch.Tensor]]:
        """Per rung array of ``rungs_list``: ``(N, Jz + Jy)`` int64 symbols (zhat then q) and
        the scales ``(N, Jy)`` float32 they are coded with (from :meth:`_hyper`)."""
        codec = self.codecs[fold]
        n = len(images)
        y = torch.cat([codec.analysis(to_net(images[s: s + _BATCH])) for s in range(0, n, _BATCH)]) if n else \
            torch.zeros((0, *self._yshape))
        out = []
        for rungs in rungs_list:
            yg = y * codec.gain(torch.from_numpy(self._codec_rung[rungs]))
            zhat = torch.cat([torch.round(codec.h_a(yg[s: s + _BATCH])) for s in range(0, n, _BATCH)]) if n else \
                torch.zeros((0, *self._zshape))
            zs = zhat.reshape(n, -1).to(torch.int64).numpy()
            mu, sigma = self._hyper(fold, zs)
            q = torch.round(yg - mu).reshape(n, -1).to(torch.int64).numpy()
            out.append((np.concatenate([zs, q], axis=1), sigma.reshape(n, -1)))
        return out

    def _est(self, fold: int, symbols: np.ndarray, sigma: torch.Tensor | None = None) -> np.ndarray:
        """``(N,)`` estimated bits (float64): header + side bits + Gaussian bits of q (``sigma``:
        the scales if already known, else computed from the side symbols)."""
        n = len(symbols)
        if not n:
            return np.zeros(0)
        codec = self.codecs[fold]
        zs, q = symbols[:, : self._jz], symbols[:, self._jz:]
        with torch.no_grad():
            dens = self._dens64[fold]
            z = torch.from_numpy(zs.astype(np.float64)).reshape(n, *self._zshape).permute(1, 0, 2, 3).reshape(
                self._zshape[0], -1)
            zb = dens.bits(z).reshape(self._zshape[0], n, -1).sum(dim=(0, 2)).numpy()
            if sigma is None:
                _, sigma = self._hyper(fold, zs)
            lik = gaussian_likelihood(torch.from_numpy(q.astype(np.float64)), sigma.reshape(n, -1).double())
            yb = (-torch.log2(torch.clamp(lik, min=1e-9))).sum(dim=1).numpy()
        return self.header_bits + zb + yb

    def _code(self, fold: int, symbols: np.ndarray, clusters: np.ndarray, rungs: np.ndarray,
              sigma: torch.Tensor) -> list[bytes]:
        """One bitstream per item from its symbols and the scales ``(N, Jy)`` of its q."""
        n = len(symbols)
        if not n:
            return []
        rows = _scale_rows(sigma.reshape(n, -1))
        out = []
        for i in range(n):
            header = (fold * self.num_rungs + int(rungs[i])) * self.num_clusters + int(clusters[i])
            out.append(encode_stream(header, self.header_alphabet,
                                     [(symbols[i, : self._jz], self._ztables[fold], self._zrow),
                                      (symbols[i, self._jz:], self._ytable, rows[i])]))
        return out

    @torch.no_grad()
    def _reconstruct(self, fold: int, symbols: np.ndarray, clusters: np.ndarray, rungs: np.ndarray) -> np.ndarray:
        h, w, c = self.shape
        n = len(symbols)
        out = np.zeros((n, h, w, c), dtype=np.uint8)
        if not n:
            return out
        codec = self.codecs[fold]
        mu, _ = self._hyper(fold, symbols[:, : self._jz])
        yhat = torch.from_numpy(symbols[:, self._jz:].astype(np.float32)).reshape(n, *self._yshape) + mu
        for s in range(0, n, _FIXED):
            m = min(_FIXED, n - s)
            y = torch.zeros((_FIXED, *self._yshape))
            y[:m] = yhat[s: s + m]
            cl = torch.zeros(_FIXED, dtype=torch.long)
            cl[:m] = torch.from_numpy(clusters[s: s + m])
            r = torch.zeros(_FIXED, dtype=torch.long)
            r[:m] = torch.from_numpy(self._codec_rung[rungs[s: s + m]])
            out[s: s + m] = to_uint8(codec.synthesis(y, r, cl, (h, w)))[:m]
        return out

    # ------------------------------------------------------------------ the language interface
    def quantize(self, images: np.ndarray, clusters: np.ndarray, rung=None) -> np.ndarray:
        """``(N, Jz + Jy)`` int64 symbols at operating point ``rung`` (default the highest),
        each item by its coding fold (:meth:`coding_fold`)."""
        images, clusters = self._check(images, clusters)
        rungs = self._rungs(rung, len(images))
        folds = self.coding_fold(images)
        out = np.zeros((len(images), self._jz + self._jy), dtype=np.int64)
        for f in np.unique(folds):
            sel = folds == f
            out[sel] = self._symbols(int(f), images[sel], [rungs[sel]])[0][0]
        return out

    def estimated_bits(self, latents: np.ndarray, folds: np.ndarray | None = None) -> np.ndarray:
        """``(N,)`` est_bits of symbols ``(N, J)`` (header included)."""
        folds = np.zeros(len(latents), dtype=np.int64) if folds is None else folds
        out = np.zeros(len(latents))
        for f in np.unique(folds):
            out[folds == f] = self._est(int(f), latents[folds == f])
        return out

    def reconstruct(self, latents: np.ndarray, clusters: np.ndarray, rung=None, folds: np.ndarray | None = None) -> np.ndarray:
        """Symbols ``(N, J)``, clusters, rungs (default the highest) and coding folds (default 0)
        -> ``(N, H, W, C)`` uint8."""
        n = len(latents)
        rungs = self._rungs(rung, n)
        clusters = np.asarray(clusters, dtype=np.int64)
        folds = np.zeros(n, dtype=np.int64) if folds is None else np.asarray(folds, dtype=np.int64)
        out = np.zeros((n, *self.shape), dtype=np.uint8)
        for f in np.unique(folds):
            sel = folds == f
            out[sel] = self._reconstruct(int(f), np.asarray(latents)[sel], clusters[sel], rungs[sel])
        return out

    def encode(self, images: np.ndarray, clusters: np.ndarray, rung=None) -> list[Representation]:
        """Encode items at operating point ``rung`` (default the highest), one
        :class:`Representation` per item."""
        images, clusters = self._check(images, clusters)
        n = len(images)
        rungs = self._rungs(rung, n)
        folds = self.coding_fold(images)
        reps: list[Representation | None] = [None] * n
        for f in np.unique(folds):
            idx = np.flatnonzero(folds == f)
            sym, sigma = self._symbols(int(f), images[idx], [rungs[idx]])[0]
            est = self._est(int(f), sym, sigma)
            for j, d in enumerate(self._code(int(f), sym, clusters[idx], rungs[idx], sigma)):
                i = idx[j]
                reps[i] = Representation(d, 8 * len(d), float(est[j]), int(clusters[i]), int(rungs[i]))
        return reps  # type: ignore[return-value]

    def encode_to_target(self, images: np.ndarray, clusters: np.ndarray, psnr_db: float | None,
                         budget_bits: int | None = None, search: str = "scan") -> TargetCoding:
        """Per item the shortest bitstream over the operating points whose decode meets
        ``psnr_db``, found by ``search`` (same rule as :meth:`SemanticLanguage.encode_to_target`); with ``budget_bits``,
        the highest operating point whose stream fits it (:meth:`encode_ladder`, then
        :meth:`~simulator.semantic.coding.LadderCoding.fit`)."""
        if budget_bits is not None:
            return self.encode_ladder(images, clusters).fit(budget_bits)
        images, clusters = self._check(images, clusters)
        n, k = len(images), self.num_rungs
        folds = self.coding_fold(images)
        reps: list[Representation | None] = [None] * n
        met = np.zeros(n, dtype=bool)
        psnr = np.full(n, np.nan)
        tried = np.zeros(n, dtype=np.int64)
        for f in np.unique(folds):
            f = int(f)
            idx = np.flatnonzero(folds == f)
            m = len(idx)
            coded = self._symbols(f, images[idx], [np.full(m, r) for r in range(k)])
            sym = [c[0] for c in coded]
            streams = [self._code(f, sym[r], clusters[idx], np.full(m, r), coded[r][1]) for r in range(k)]
            bits = np.array([[8 * len(d) for d in streams[r]] for r in range(k)], dtype=np.int64).reshape(k, m)

            def decode(r: np.ndarray, sel: np.ndarray, f=f, sym=sym, idx=idx) -> np.ndarray:
                lat = np.stack([sym[int(rr)][j] for rr, j in zip(r, sel)]) if len(sel) else \
                    np.zeros((0, self._jz + self._jy), dtype=np.int64)
                return self._reconstruct(f, lat, clusters[idx][sel], r)

            chosen, ok, p, t = search_target(bits, decode, images[idx], psnr_db, search)
            met[idx], psnr[idx], tried[idx] = ok, p, t
            for r in np.unique(chosen):
                sel = np.flatnonzero(chosen == r)
                est = self._est(f, sym[int(r)][sel], coded[int(r)][1][sel])
                for j, e in zip(sel, est):
                    reps[idx[j]] = Representation(streams[int(r)][j], int(bits[r, j]), float(e),
                                                  int(clusters[idx[j]]), int(r))
        return TargetCoding(reps, met, psnr, tried)  # type: ignore[arg-type]

    def encode_ladder(self, images: np.ndarray, clusters: np.ndarray) -> LadderCoding:
        """Every item of ``images`` ``(N, H, W, C)`` uint8 (``clusters`` ``(N,)``) at every
        operating point, each coded by its coding fold's post-distribution (one analysis pass per
        fold; :class:`~simulator.semantic.coding.LadderCoding`)."""
        images, clusters = self._check(images, clusters)
        n, k = len(images), self.num_rungs
        folds = self.coding_fold(images)
        ladder: list[list[Representation | None]] = [[None] * n for _ in range(k)]
        for f in np.unique(folds):
            f = int(f)
            idx = np.flatnonzero(folds == f)
            coded = self._symbols(f, images[idx], [np.full(len(idx), r) for r in range(k)])
            for r, (sym, sigma) in enumerate(coded):
                est = self._est(f, sym, sigma)
                for j, d in enumerate(self._code(f, sym, clusters[idx], np.full(len(idx), r), sigma)):
                    ladder[r][idx[j]] = Representation(d, 8 * len(d), float(est[j]), int(clusters[idx[j]]), r)
        return LadderCoding(ladder)  # type: ignore[arg-type]

    def decode(self, bitstreams: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Bitstreams -> (``(N, H, W, C)`` uint8 reconstructions, ``(N,)`` int64 header clusters)."""
        n = len(bitstreams)
        readers = [StreamReader(d, self.header_alphabet) for d in bitstreams]
        cl = np.zeros(n, dtype=np.int64)
        rung = np.zeros(n, dtype=np.int64)
        fold = np.zeros(n, dtype=np.int64)
        for i, rd in enumerate(readers):
            rest, cl[i] = divmod(rd.header, self.num_clusters)
            fold[i], rung[i] = divmod(rest, self.num_rungs)
        sym = np.zeros((n, self._jz + self._jy), dtype=np.int64)
        for f in np.unique(fold):
            idx = np.flatnonzero(fold == f)
            for i in idx:
                sym[i, : self._jz] = readers[i].read(self._ztables[int(f)], self._zrow)
            _, sigma = self._hyper(int(f), sym[idx, : self._jz])
            rows = _scale_rows(sigma.reshape(len(idx), -1))
            for j, i in enumerate(idx):
                sym[i, self._jz:] = readers[i].read(self._ytable, rows[j])
                readers[i].finish()
        return self.reconstruct(sym, cl, rung, fold), cl

    # ------------------------------------------------------------------ complexity
    def parameter_bits(self) -> int:
        """The model cost: coded size (bits) of every post-distribution's receiver tensors
        beyond the pre-distribution (:func:`delta_bits`); 0 when fine-tuning changed nothing."""
        if self._param_bits is None:
            self._param_bits = sum(
                delta_bits({n: dict(c.named_parameters())[n] for n in c.receiver_names()}, self.reference,
                           self.cfg.param_step) for c in self.codecs)
        return self._param_bits

    def complexity_breakdown(self, images: np.ndarray, clusters: np.ndarray) -> dict:
        images, clusters = self._check(images, clusters)
        folds = self.coding_fold(images)
        est = self.estimated_bits(self.quantize(images, clusters), folds)
        rep = float(est.sum()) * math.log(2)
        par = self.parameter_bits() * math.log(2)
        nrec = sum(int(dict(self.codecs[0].named_parameters())[n].numel()) for n in self.codecs[0].receiver_names())
        return {"representation_nats": rep, "parameter_nats": par, "total_nats": rep + par,
                "num_items": int(len(images)), "num_receiver_parameters": nrec * self.folds}

    def complexity_nats(self, images: np.ndarray, clusters: np.ndarray) -> float:
        return self.complexity_breakdown(images, clusters)["total_nats"]

    def _flops(self) -> tuple[int, int, int]:
        """Forward FLOPs per item: the encoder at one rung (analysis, hyper-analysis, hyper-
        synthesis), the decoder, and what each further rung the rate control codes adds (the
        analysis runs once; the hyper networks once per rung)."""
        codec = self.codecs[0]
        h, w, c = self.shape
        x = torch.zeros(1, c, h, w)
        r = torch.zeros(1, dtype=torch.long)
        cl = torch.zeros(1, dtype=torch.long)
        with torch.no_grad():
            y = codec.analysis(x) * codec.gain(r)
            z = torch.round(codec.h_a(y))

            def enc():
                yy = codec.analysis(x) * codec.gain(r)
                codec.hyper(torch.round(codec.h_a(yy)))

            def dec():
                mu, _ = codec.hyper(z)
                codec.synthesis(y, r, cl, (h, w))

            def side():
                codec.hyper(torch.round(codec.h_a(y)))

            return forward_flops(enc), forward_flops(dec), forward_flops(side)


# --------------------------------------------------------------------------- fitting


def pre_distribution(cfg: SemanticConfig, channels: int) -> tuple[str, HyperShape, tuple[float, ...], dict | None, str]:
    """``(name, arch, lambdas, state or None, sha256 or "")`` of the pre-distribution
    ``semantic.pretrained`` selects for items of ``channels`` channels."""
    from .pretrain import LADDER

    if cfg.pretrained == "none":
        if channels not in SCRATCH_ARCH:
            raise InputError(f"no hyperprior architecture for {channels}-channel items", where="semantic.architecture")
        return "none", SCRATCH_ARCH[channels], LADDER, None, ""
    e = zoo.for_channels(channels) if cfg.pretrained == "auto" else zoo.entry(cfg.pretrained)
    if e is None:
        if channels not in SCRATCH_ARCH:
            raise InputError(f"no hyperprior architecture for {channels}-channel items", where="semantic.architecture")
        return "none", SCRATCH_ARCH[channels], LADDER, None, ""
    if e.channels != channels:
        raise InputError(f"zoo model {e.name!r} is for {e.channels}-channel images, the items have {channels}",
                         where="semantic.pretrained")
    return e.name, HyperShape(**e.arch), e.lambdas, zoo.load_state(e), e.sha256


def fit_hyper_language(images: np.ndarray, clusters: np.ndarray, num_clusters: int, cfg: SemanticConfig,
                       ctx: RunContext, tag: str = "semantic") -> HyperLanguage:
    """Fine-tune the pre-distribution on items (or load the result from the cache).

    Args:
        images: ``(N, H, W, C)`` uint8 items the language is fitted to.
        clusters: ``(N,)`` cluster of each item (the header).
        num_clusters: header alphabet of clusters.
        cfg: ``[semantic]`` (``pretrained``, ``fit_on``, ``fine_tune_steps``, ``fine_tune_lr``,
            ``scratch_steps``, ``param_step``).
        ctx: seed, device, cache directory.
        tag: a name for logs.
    """
    where = f"semantic ({tag})"
    images, clusters = check_items(images, clusters, int(num_clusters), where)
    if len(images) == 0:
        raise InputError("no items to train the language on", where=where)
    n, h, w, c = images.shape
    name, arch, lambdas, state, sha = pre_distribution(cfg, c)
    folds, fold = two_folds(n, cfg.fit_on == "disjoint", ctx.rng("semantic.folds"))
    meta = json.dumps({"num_clusters": int(num_clusters), "seed": int(ctx.seed), "zoo": sha, "arch": arch.as_dict(),
                       "torch": torch.__version__.split("+")[0], "threads": int(ctx.training_threads()),
                       "cfg": cfg.training_dump()}, sort_keys=True)
    key = model_cache.digest(CODE_VERSION, meta, images, np.asarray(clusters, dtype=np.int64))
    path = ctx.cache_path("semantic", f"{key[:32]}.pt")
    fold_of = {model_cache.digest(im): int(f) for im, f in zip(images, fold)}

    def build() -> HyperpriorCodec:
        with torch.random.fork_rng(devices=[]):
            codec = HyperpriorCodec(arch, lambdas, int(num_clusters),
                                    generator=ctx.torch_generator("semantic.init", device="cpu"))
        if state is not None:
            missing, unexpected = codec.load_state_dict(state, strict=False)
            if unexpected or any(k != "cluster_bias" for k in missing):
                raise InputError(f"zoo model {name!r} does not fit its architecture", where="semantic.pretrained")
        return codec

    reference = {k: v.clone() for k, v in build().state_dict().items()} if state is not None else {}

    def rebuild(blob: dict) -> HyperLanguage:
        codecs = []
        for f in range(folds):
            codec = build()
            codec.load_state_dict(blob[f"state{f}"])
            codecs.append(codec)
        return HyperLanguage(codecs, reference, fold_of=fold_of, cfg=cfg, tag=tag, key=key, from_cache=True,
                             history=json.loads(blob["history"]), shape=(h, w, c), pretrained=name,
                             fit_items=int(blob["fit_items"]))

    def train() -> tuple[HyperLanguage, dict]:
        from .pretrain import train_steps

        codecs, history = [], []
        steps = cfg.fine_tune_steps if state is not None else cfg.scratch_steps
        lr = cfg.fine_tune_lr if state is not None else 1e-3
        meter = StepMeter(ctx, f"learning: {tag} language", steps * folds)
        with ctx.threads():
            for f in range(folds):
                codec = build()
                sel = fold == f if folds == 2 else np.ones(n, dtype=bool)
                if steps:
                    opt = torch.optim.Adam(codec.parameters(), lr=lr)

                    def report(t, rec, f=f):
                        done = f * steps + t
                        if meter.due(done):
                            meter(done, f"fold {f + 1}/{folds}, loss {rec['loss']:.4g}, {rec['bits']:.0f} bits/item")

                    history += [dict(r, fold=f) for r in train_steps(
                        codec, images[sel], clusters[sel], start=0, stop=steps, total=steps,
                        batch=cfg.fine_tune_batch, lr=lr, seed=ctx.seed_for(f"semantic.finetune.{f}"), flip=False,
                        opt=opt, device=ctx.device, report=report,
                        penalty=_description_penalty(codec, reference, cfg, coded=int(n - sel.sum()) or n))]
                _snap(codec, reference, cfg.param_step)
                if steps and state is not None and cfg.fine_tune_keep == "shorter":
                    coded = ~sel if folds == 2 else sel
                    codec, kept = _worth_it(codec, build(), reference, cfg, images[coded], clusters[coded])
                    history.append({"fold": f, "post_distribution_kept": kept})
                codecs.append(codec)
        lang = HyperLanguage(codecs, reference, fold_of=fold_of, cfg=cfg, tag=tag, key=key, from_cache=False,
                             history=history, shape=(h, w, c), pretrained=name, fit_items=n)
        blob = {"history": json.dumps(history), "fit_items": int(n)}
        for f, codec in enumerate(codecs):
            blob[f"state{f}"] = {k: v.detach().cpu() for k, v in codec.state_dict().items()}
        return lang, blob

    return model_cache.load_or_train(path, key, CODE_VERSION, "semantic language", rebuild, train)[0]


def _description_penalty(codec: HyperpriorCodec, reference: dict[str, torch.Tensor], cfg: SemanticConfig,
                         coded: int):
    """The fine-tuning loss's model term, eq. (2)'s ``beta * KL(Lambda || zeta)`` per item:
    ``fine_tune_beta * sum |theta - zeta| / (param_step ln 2) / coded`` bits per item over the
    receiver tensors (the code length of the change under a Laplace prior of scale
    ``param_step``, shared by the ``coded`` items this post-distribution codes). ``None``
    without a pre-distribution or with ``fine_tune_beta = 0``."""
    if not reference or cfg.fine_tune_beta == 0:
        return None
    params = dict(codec.named_parameters())
    pairs = [(params[n], reference[n].to(params[n].device)) for n in codec.receiver_names() if n in reference]
    extra = [params[n] for n in codec.receiver_names() if n not in reference]
    scale = cfg.fine_tune_beta / (cfg.param_step * math.log(2) * max(1, coded))

    def penalty() -> torch.Tensor:
        total = sum((p - r).abs().sum() for p, r in pairs) + sum(p.abs().sum() for p in extra)
        return scale * total

    return penalty


def _worth_it(post: HyperpriorCodec, pre: HyperpriorCodec, reference: dict[str, torch.Tensor],
              cfg: SemanticConfig, images: np.ndarray, clusters: np.ndarray) -> tuple[HyperpriorCodec, bool]:
    """The post-distribution if it pays for itself on the items it will code, else the
    pre-distribution (the teacher's choice of the shorter two-part code): kept when
    ``rd_cost(post) + model bits < rd_cost(pre)``, :func:`~simulator.semantic.hyperprior.rd_cost`
    being the items' ``bits + lambda * SSE`` averaged over the operating points."""
    if not len(images):
        return post, True
    x = to_net(images)
    c = torch.from_numpy(np.asarray(clusters, dtype=np.int64))
    post.eval()
    cost = delta_bits({n: dict(post.named_parameters())[n] for n in post.receiver_names()}, reference,
                      cfg.param_step)
    if rd_cost(post, x, c) + cost < rd_cost(pre.eval(), x, c):
        return post, True
    return pre, False


@torch.no_grad()
def _snap(codec: HyperpriorCodec, reference: dict[str, torch.Tensor], step: float) -> None:
    """Receiver tensors <- ``ref + step * round((p - ref) / step)`` (ref 0 where absent): the
    post-distribution the model cost describes is exactly the one that decodes."""
    params = dict(codec.named_parameters())
    for name in codec.receiver_names():
        p = params[name]
        ref = reference.get(name)
        base = ref if ref is not None else torch.zeros_like(p)
        p.copy_(base + step * torch.round((p - base) / step))

"""Fine-tuning a zoo DeepJSCC model on a scenario's items, channel and SNR (``[jscc]
fine_tune_steps``; docs/jscc.md).

The zoo model is the starting point (the pre-distribution); ``fine_tune_steps`` optimiser
steps of :func:`~simulator.jscc.pretrain.train_steps` adapt it to the scenario:

* **Items.** With ``fit_on = "disjoint"`` (default) the items are split in two halves at
  random (``ctx.rng("jscc.folds")``); each half is coded by the model fine-tuned on the other
  half, so no item is coded by a model that trained on it. ``"all"``: one model fine-tuned on
  every item codes every item.
* **Channel and SNR.** The scenario's channel (AWGN, or Rayleigh block fading with the decoder
  told the effective SNR) at its Es/N0; a single-SNR model (``snr_aware = false``) is
  fine-tuned at ``design_snr_db`` and told it, as it is used.
* **Optimiser.** Adam at ``fine_tune_lr``, cosine-decayed to a twentieth, batches of
  ``fine_tune_batch`` with flips and shifts, seeded by the run's seed.

Each fine-tuned model is kept in the cache (``<cache_dir>/jscc/``, keyed by the zoo file's
digest, the training items, every setting above, the seed and torch's thread count).
"""

from __future__ import annotations

import numpy as np
import torch

from .. import model_cache
from ..context import RunContext
from ..folds import two_folds
from .codec import JsccCodec
from .model import DeepJSCC
from .pretrain import train_steps

#: Bump when fine-tuning changes what it produces for the same inputs.
FINETUNE_VERSION = "semsim-jscc-finetune/1"


class JsccFolds:
    """The DeepJSCC networks of a sweep point: ``codecs[f]`` codes the items of ``fold == f``.

    Attributes:
        codecs: one :class:`JsccCodec` per fold (one when not fine-tuned or ``fit_on = "all"``).
        fold: ``(N,)`` int64 fold of each item.
        fine_tuned: the networks were fine-tuned on the scenario's items.
    """

    def __init__(self, codecs: list[JsccCodec], fold: np.ndarray, fine_tuned: bool = False):
        self.codecs, self.fold, self.fine_tuned = codecs, np.asarray(fold, dtype=np.int64), fine_tuned

    def __getattr__(self, name):  # name, arch, channel_uses, bandwidth_ratio, flops: the zoo model's
        return getattr(self.codecs[0], name)

    def encode(self, images: np.ndarray, snr_db: np.ndarray) -> np.ndarray:
        """As :meth:`JsccCodec.encode`, each item by its fold's network."""
        out = np.zeros((len(images), self.codecs[0].model.reals(*images.shape[1:3])), dtype=np.float32)
        snr = np.broadcast_to(np.asarray(snr_db, dtype=np.float32), (len(images),))
        for f, codec in enumerate(self.codecs):
            sel = self.fold == f
            if sel.any():
                out[sel] = codec.encode(images[sel], snr[sel])
        return out

    def decode(self, received: np.ndarray, snr_db: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
        """As :meth:`JsccCodec.decode`, each item by its fold's network."""
        out = np.zeros((len(received), *shape), dtype=np.uint8)
        snr = np.broadcast_to(np.asarray(snr_db, dtype=np.float32), (len(received),))
        for f, codec in enumerate(self.codecs):
            sel = self.fold == f
            if sel.any():
                out[sel] = codec.decode(np.asarray(received)[sel], snr[sel], shape)
        return out


def fine_tune(base: JsccCodec, images: np.ndarray, cfg, channel: str, esn0_db: float, ctx: RunContext) -> JsccFolds:
    """``base`` fine-tuned on ``(N, H, W, C)`` uint8 ``images`` (module doc); ``cfg`` the
    scenario's ``[jscc]``. With ``cfg.fine_tune_steps = 0``, ``base`` codes every item."""
    n = len(images)
    if cfg.fine_tune_steps == 0:
        return JsccFolds([base], np.zeros(n, dtype=np.int64))
    folds, fold = two_folds(n, cfg.fit_on == "disjoint", ctx.rng("jscc.folds"))
    snr = float(esn0_db) if cfg.snr_aware else float(cfg.design_snr_db)
    told = None if cfg.snr_aware else float(cfg.design_snr_db)
    codecs = []
    for f in range(folds):
        codecs.append(_tuned(base, images[fold != f] if folds == 2 else images, cfg, channel, snr, told, f, ctx))
    return JsccFolds(codecs, fold, fine_tuned=True)


def _tuned(base: JsccCodec, items: np.ndarray, cfg, channel: str, snr: float, told: float | None, f: int,
           ctx: RunContext) -> JsccCodec:
    steps, threads = int(cfg.fine_tune_steps), int(ctx.training_threads())
    key = model_cache.digest(FINETUNE_VERSION, base.sha256, steps, float(cfg.fine_tune_lr), int(cfg.fine_tune_batch),
                             channel, snr, told, int(ctx.seed), f, threads, torch.__version__.split("+")[0], items)
    path = ctx.cache_path("jscc", f"{key[:32]}.pt")

    def rebuild(payload: dict) -> JsccCodec:
        model = DeepJSCC(base.arch)
        model.load_state_dict(payload["state"])
        return JsccCodec(model, base.name, base.sha256)

    def train():
        model = DeepJSCC(base.arch)
        model.load_state_dict(base.model.state_dict())
        opt = torch.optim.Adam(model.parameters(), lr=float(cfg.fine_tune_lr))
        # every draw comes from generators seeded here (the point's thread count is ctx's)
        train_steps(model, items, start=0, stop=steps, total=steps, batch=int(cfg.fine_tune_batch),
                    lr=float(cfg.fine_tune_lr), seed=int(ctx.rng(f"jscc.fine-tune.{f}").integers(1 << 62)),
                    snr_db=(snr, snr), opt=opt, channel=channel, told_db=told,
                    report=lambda t, r: ctx.report(f"learning: DeepJSCC fine-tuning, fold {f + 1}", t, steps))
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return JsccCodec(model, base.name, base.sha256), {"state": state}

    codec, _ = model_cache.load_or_train(path, key, FINETUNE_VERSION, "fine-tuned DeepJSCC model", rebuild, train)
    return codec


__all__ = ["JsccFolds", "fine_tune", "FINETUNE_VERSION"]

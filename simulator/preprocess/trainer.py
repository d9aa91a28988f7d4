"""Training of the contrastive pre-processor (section III): one pass of the learning phase.

Per step, for a batch of items: two perturbations chi_1, chi_2; queries z from the encoder,
keys k from the momentum encoder (with ``instance_keys = "batch"``, eq. (2) takes its positives
and negatives from the encoder's own representations of the batch, and the momentum keys only
fill the bank); ``eta L_I + epsilon L_D + marginal_weight L_M``
(losses.py); an optimiser step; the momentum update; one enqueue of the keys with their
cluster tags. The cluster tags follow an online spherical k-means on the bank: after
``warmup_epochs`` of instance discrimination alone, the bank keys are clustered (k-means++
from the run's generator), and every step re-tags the bank by its nearest prototype (one
Lloyd step). After training, every item is embedded without perturbation and the prototypes
are refined by spherical k-means on these embeddings (started from the bank prototypes).

No global random state is touched: weights are initialised, batches shuffled and
perturbations drawn from generators derived from the RunContext.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..context import RunContext
from ..progress import StepMeter
from .augment import augment, policy_for, to_float
from .bank import MemoryBank
from .config import ResolvedPreprocess
from .losses import (batch_instance_loss, cluster_loss, cluster_probabilities, fill_empty_clusters, instance_loss,
                     marginal_loss, prototypes, spherical_kmeans)
from .nets import Encoder, momentum_copy, momentum_update

log = logging.getLogger("semsim.preprocess")
EMBED_BATCH = 512


@dataclass
class TrainResult:
    """What training produces (everything the cache stores)."""

    encoder: Encoder
    prototypes: torch.Tensor         # (L, D) unit rows
    mean: torch.Tensor               # (C,) per-channel pixel mean in [0, 1]
    std: torch.Tensor                # (C,)
    history: list[dict] = field(default_factory=list)   # one row per epoch
    images_per_s: float = float("nan")                  # training throughput (item views pairs / s)
    train_seconds: float = float("nan")


def init_weights(module: nn.Module, gen: torch.Generator) -> None:
    """Re-initialise every conv/linear/BN layer from ``gen`` (PyTorch's default schemes)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=gen)
            if m.bias is not None:
                fan_in = m.weight[0].numel()
                bound = 1 / math.sqrt(fan_in)
                nn.init.uniform_(m.bias, -bound, bound, generator=gen)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def normalise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Per-channel standardisation of ``(B, C, H, W)``."""
    return (x - mean.view(1, -1, 1, 1).to(x)) / std.view(1, -1, 1, 1).to(x)


@torch.no_grad()
def embed(encoder: nn.Module, images: np.ndarray, mean: torch.Tensor, std: torch.Tensor,
          device: str = "cpu") -> torch.Tensor:
    """Unit representations ``(N, D)`` of uint8 ``(N, H, W, C)`` items, encoder in eval mode."""
    was = encoder.training
    encoder.eval()
    out = []
    for start in range(0, len(images), EMBED_BATCH):
        x = normalise(to_float(images[start:start + EMBED_BATCH]), mean, std).to(device)
        out.append(encoder(x).float().cpu())
    encoder.train(was)
    d = encoder.head[-1].out_features
    return torch.cat(out) if out else torch.zeros(0, d)


@torch.no_grad()
def _retag(bank: MemoryBank, clusters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One Lloyd step on the bank: prototypes from the current tags, then nearest-prototype
    tags. An emptied cluster is re-seeded with the key farthest from its prototype."""
    keys, tags = bank.valid_keys(), bank.valid_tags()
    mu, present = prototypes(keys, tags, clusters)
    sim = keys @ mu.t()
    sim[:, ~present] = -2.0
    new = sim.argmax(dim=1)
    fill_empty_clusters(sim, new, clusters)
    bank.retag(new)
    return prototypes(keys, new, clusters)


def train(images: np.ndarray, r: ResolvedPreprocess, ctx: RunContext, epoch_callback=None) -> TrainResult:
    """Train encoder, momentum encoder and prototypes on ``images`` (``(N, H, W, C)`` uint8).

    Labels and kinds are never seen. Returns a :class:`TrainResult`. When ``ctx.num_threads``
    is set, torch's intra-op thread count is set to it for the duration of training and
    restored afterwards (on a shared CPU, 1 thread is often several times faster than 2).
    ``epoch_callback(row, encoder, mean, std)``, if given, is called after every epoch (for
    learning curves in benchmarks; it must not touch the encoder's parameters).
    """
    with ctx.threads():
        return _train(images, r, ctx, epoch_callback)


def _train(images: np.ndarray, r: ResolvedPreprocess, ctx: RunContext, epoch_callback=None) -> TrainResult:
    device = ctx.device
    n = len(images)
    shape = tuple(images.shape[1:])
    x_all = to_float(images)
    mean = x_all.mean(dim=(0, 2, 3))
    std = x_all.std(dim=(0, 2, 3)).clamp_min(1e-3)
    # the items live on the training device, so the perturbations (grid_sample, jitter) run there;
    # their random draws stay on the CPU generator, so a seed gives the same views on any device
    x_all = x_all.to(device)
    policy = policy_for(r.augment, shape[2])
    gen_init = ctx.torch_generator("preprocess.init", device="cpu")
    gen_aug = ctx.torch_generator("preprocess.augment", device="cpu")
    gen_order = ctx.torch_generator("preprocess.order", device="cpu")
    gen_km = ctx.torch_generator("preprocess.kmeans", device="cpu")

    encoder = Encoder(shape, r.backbone, r.width, r.feature_dim)
    init_weights(encoder, gen_init)
    encoder.to(device)
    fmt = torch.channels_last if r.channels_last else torch.contiguous_format
    encoder.to(memory_format=fmt)
    key_enc = momentum_copy(encoder)
    if r.optimizer == "sgd":
        opt = torch.optim.SGD(encoder.parameters(), lr=r.lr, momentum=r.sgd_momentum, weight_decay=r.weight_decay)
    else:
        opt = torch.optim.Adam(encoder.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    steps_per_epoch = n // r.batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, r.epochs * steps_per_epoch))
    # the bank never holds more keys than there are other items (a stale copy of an item's own
    # key among its negatives would fight its positive)
    bank = MemoryBank(max(1, min(r.queue_size, n - r.batch_size)), r.feature_dim, device=device)

    low = r.precision == "bfloat16"
    dev_type = torch.device(device).type

    def run(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``net(x)``, under bfloat16 autocast for ``precision = "bfloat16"`` (the encoder's output
        z is normalised in float32, and every loss is computed in float32 outside the autocast)."""
        with torch.autocast(dev_type, dtype=torch.bfloat16, enabled=low):
            return net(x)

    def views(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xb = x_all[idx.to(x_all.device)]
        return (normalise(augment(xb, policy, gen_aug), mean, std).contiguous(memory_format=fmt),
                normalise(augment(xb, policy, gen_aug), mean, std).contiguous(memory_format=fmt))

    with torch.no_grad():  # fill the bank with keys of the untrained key encoder
        fill = torch.randperm(n, generator=gen_order)[: bank.size]
        for start in range(0, len(fill), EMBED_BATCH):
            bank.enqueue(run(key_enc, views(fill[start:start + EMBED_BATCH])[1]))

    history: list[dict] = []
    meter = StepMeter(ctx, "learning: pre-processor", r.epochs * steps_per_epoch)
    mu = present = None
    seen = 0
    t0 = time.perf_counter()
    for epoch in range(r.epochs):
        clustering = epoch >= r.warmup_epochs
        if clustering and mu is None:
            _, tags = spherical_kmeans(bank.valid_keys(), r.clusters, gen_km)
            bank.retag(tags)
            mu, present = _retag(bank, r.clusters)
        order = torch.randperm(n, generator=gen_order)
        sums = {"loss": 0.0, "L_I": 0.0, "L_D": 0.0, "L_M": 0.0}
        for step in range(steps_per_epoch):
            idx = order[step * r.batch_size:(step + 1) * r.batch_size]
            v1, v2 = views(idx)
            with torch.no_grad():
                k2 = run(key_enc, v2)  # the keys enqueued in the bank (eq. (3)), in either mode
            if r.instance_keys == "batch":
                # both views in one encoder call: one set of BatchNorm statistics for the
                # positives and the negatives alike
                z1, z2 = run(encoder, torch.cat([v1, v2])).chunk(2)
                l_i = batch_instance_loss(z1, z2, r.tau)
                zs = [z1, z2]
            else:
                negatives = bank.valid_keys()
                z1 = run(encoder, v1)
                l_i = instance_loss(z1, k2, negatives, r.tau)
                zs = [z1]
                if r.symmetric:
                    z2 = run(encoder, v2)
                    with torch.no_grad():
                        k1 = run(key_enc, v1)
                    l_i = 0.5 * (l_i + instance_loss(z2, k1, negatives, r.tau))
                    zs.append(z2)
            loss = r.eta * l_i
            l_d = l_m = torch.zeros((), device=device)
            if clustering:
                p = torch.cat([cluster_probabilities(z, mu, r.cluster_tau, present) for z in zs])
                l_d, l_m = cluster_loss(p), marginal_loss(p)
                loss = loss + r.epsilon * l_d + r.marginal_weight * l_m
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            momentum_update(key_enc, encoder, r.omega)
            with torch.no_grad():
                tags = (k2 @ mu.t()).masked_fill(~present, -2.0).argmax(dim=1) if clustering else None
            bank.enqueue(k2, tags)
            if clustering:
                mu, present = _retag(bank, r.clusters)
            seen += len(idx)
            done = epoch * steps_per_epoch + step + 1
            if meter.due(done):  # the loss only when shown: .item() syncs a GPU
                meter(done, f"epoch {epoch + 1}/{r.epochs}, loss {loss.item():.4f}"
                            f"{' (clustering)' if clustering else ''}")
            for name, val in (("loss", loss), ("L_I", l_i), ("L_D", l_d), ("L_M", l_m)):
                # summed in float64 on the device: the same sums as Python floats, without a
                # host sync per step (which stalls a GPU)
                sums[name] = sums[name] + val.detach().to(torch.float64)
        row = {"epoch": epoch + 1, **{k: float(v) / max(1, steps_per_epoch) for k, v in sums.items()},
               "seconds": time.perf_counter() - t0}
        history.append(row)
        if epoch_callback is not None:
            epoch_callback(row, encoder, mean, std)
        if ctx.progress:
            log.info("preprocess epoch %d/%d loss %.4f (L_I %.4f L_D %.4f L_M %.4f) %.1fs", row["epoch"], r.epochs,
                     row["loss"], row["L_I"], row["L_D"], row["L_M"], row["seconds"])
    elapsed = time.perf_counter() - t0
    encoder.to(memory_format=torch.contiguous_format)
    # final prototypes: spherical k-means on the unperturbed embeddings of all items
    z_all = embed(encoder, images, mean, std, device)
    init = mu.cpu() if (mu is not None and bool(present.all())) else None
    centres, _ = spherical_kmeans(z_all, r.clusters, gen_km, iters=50, init=init)
    encoder.eval()
    return TrainResult(encoder.cpu(), centres.cpu(), mean, std, history,
                       images_per_s=seen / elapsed if elapsed > 0 else float("nan"), train_seconds=elapsed)

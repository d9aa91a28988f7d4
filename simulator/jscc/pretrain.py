"""Pretraining the zoo's DeepJSCC models: recipes, resumable training, export.

A recipe names the training items (the first 500 images of each class of the CIFAR-10 test
split; a benchmark evaluates on the other 500), the architecture (its bandwidth ratio) and
the optimiser. Each step draws a batch, flips, 36x36 reflect-padded random crops, an SNR per
item (uniform over ``snr_train_db``) and the channel noise from generators seeded by
``(seed, step)``, so a run stopped at a checkpoint and resumed ends with the weights of an
uninterrupted one (same device and thread count). The loss is the mean squared error on
``[0, 1]`` pixels after the AWGN channel (:func:`~simulator.jscc.model.awgn`).

Commands (``--device cuda`` where a GPU is lent)::

    python -m simulator.jscc.pretrain deepjscc-1-6 --steps 12000 --checkpoint ckpt/deepjscc-1-6.ckpt --export
    python -m simulator.jscc.pretrain deepjscc-1-12 --steps 5000 --checkpoint ckpt/deepjscc-1-12.ckpt --export
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import InputError
from ..semantic.coding import to_net
from ..sources.base import first_per_class
from ..semantic.pretrain import arguments, command, load_training_items, resume  # shared with the languages
from .model import DeepJSCC, JsccShape, awgn, rayleigh_block


@dataclass(frozen=True)
class JsccRecipe:
    """How one zoo DeepJSCC model is pretrained.

    Attributes:
        name: the zoo entry.
        dataset: the dataset spec it is meant for (``--data`` may point elsewhere).
        per_class: items taken from the start of each class.
        arch: the architecture (its ``symbols`` set the bandwidth ratio).
        batch: items per step.
        lr: Adam learning rate, cosine-decayed to ``lr / 20`` over the run's steps.
        snr_train_db: the SNR range (Es/N0, dB) drawn uniformly per item.
        seed: the seed of the run's generators.
        held_out: what a benchmark evaluates instead (documentation).
    """

    name: str
    dataset: str
    per_class: int
    arch: JsccShape
    batch: int
    lr: float
    snr_train_db: tuple[float, float]
    seed: int
    held_out: str

    def select(self, labels: np.ndarray) -> np.ndarray:
        """Indices of the training items among a dataset's items (labels in loader order)."""
        return first_per_class(labels, self.per_class)


_NATURAL = dict(dataset="imagefolder:../shared/data/cifar10/test", per_class=500, batch=32, lr=1e-3,
                snr_train_db=(-2.0, 22.0), seed=0, held_out="images 500..999 of each class of the CIFAR-10 test split")

RECIPES = {
    "deepjscc-1-6": JsccRecipe(name="deepjscc-1-6", arch=JsccShape(channels=3, hidden=96, symbols=16), **_NATURAL),
    "deepjscc-1-12": JsccRecipe(name="deepjscc-1-12", arch=JsccShape(channels=3, hidden=96, symbols=8), **_NATURAL),
}


def build_model(arch: JsccShape, seed: int) -> DeepJSCC:
    """A freshly initialised network of ``arch``: every parameter drawn from ``seed`` (the
    global torch generator is seeded inside a fork, so its state outside is unchanged)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return DeepJSCC(arch, torch.Generator().manual_seed(int(seed)))


def augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """``(B, C, H, W)``: random horizontal flips and random crops of the 2-pixel
    reflect-padded images (drawn from ``rng``)."""
    b, _, h, w = x.shape
    flip = torch.from_numpy(rng.random(b) < 0.5)
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if h > 4 and w > 4:
        pad = F.pad(x, (2, 2, 2, 2), mode="reflect")
        dy, dx = rng.integers(0, 5, size=b), rng.integers(0, 5, size=b)
        x = torch.stack([pad[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])
    return x


def train_steps(model: DeepJSCC, images: np.ndarray, *, start: int, stop: int, total: int, batch: int, lr: float,
                seed: int, snr_db: tuple[float, float], opt: torch.optim.Optimizer, device: str = "cpu",
                report=None, channel: str = "awgn", told_db: float | None = None) -> list[dict]:
    """Run optimiser steps ``start .. stop-1`` of a ``total``-step schedule on ``images``
    ``(N, H, W, C)`` uint8 (module doc). Returns one record per 100 steps:
    ``{"step", "mse", "psnr_db"}`` (batch means; PSNR of the mean MSE on 0..1 pixels).

    ``channel``: ``"awgn"`` (pretraining) or ``"rayleigh"`` (one gain per item, equalised; the
    decoder is told the effective SNR). ``told_db``: a single-SNR model, both halves told this
    SNR whatever the channel's (``None``: told the channel's)."""
    x_all = to_net(images)
    model.to(device).train()
    out, acc, count = [], 0.0, 0
    for t in range(start, stop):
        rng = np.random.default_rng([seed, t])
        idx = rng.integers(0, len(images), size=min(batch, len(images)))
        x = augment(x_all[idx], rng).to(device)
        snr = torch.from_numpy(rng.uniform(*snr_db, size=len(idx))).float().to(device)
        noise = torch.Generator(device=device).manual_seed(int(rng.integers(1 << 62)))
        for g in opt.param_groups:
            g["lr"] = lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t / max(1, total))))
        told = snr if told_db is None else torch.full_like(snr, float(told_db))
        z = model.encode(x, told)
        if channel == "rayleigh":
            y, eff = rayleigh_block(z, snr, noise)
            told_rx = eff if told_db is None else told
        else:
            y, told_rx = awgn(z, snr, noise), told
        mse = (model.decode(y, told_rx, x.shape[2:]) - x).square().mean()
        opt.zero_grad(set_to_none=True)
        mse.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        acc += mse.item()
        count += 1
        if (t + 1) % 100 == 0 or t + 1 == stop:
            m = acc / count
            if not math.isfinite(m):
                raise InputError(f"training diverged at step {t + 1} (MSE {m})", where="pretraining")
            out.append({"step": t + 1, "mse": m, "psnr_db": -10 * math.log10(max(m, 1e-12))})
            if report is not None:
                report(t + 1, out[-1])
            acc, count = 0.0, 0
    model.eval()  # stays on ``device``: the optimiser's state lives there too
    return out


def pretrain(recipe: JsccRecipe, data: str, steps: int, checkpoint: str, *, device: str = "cpu", threads: int = 1,
             stop_after: float | None = None, every: int = 500, echo=print) -> dict:
    """Train ``recipe`` for ``steps`` steps in all, resuming from ``checkpoint`` if it exists;
    a checkpoint (written atomically) every ``every`` steps and at the end; ``stop_after``
    seconds stops early with a checkpoint. Returns the checkpoint's content. The torch thread
    count is set to ``threads`` for the run and restored."""
    prev = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        images = load_training_items(recipe, data)
        model = build_model(recipe.arch, recipe.seed).to(device)  # before the optimiser and its resumed state
        opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
        state = {"recipe": recipe.name, "steps": int(steps), "step": 0, "history": [], "items": int(len(images)),
                 "data": data, "device": device, "seconds": 0.0}
        resume(checkpoint, recipe.name, steps, model, opt, state, echo)
        begun = time.monotonic()
        while state["step"] < steps:
            t0 = time.monotonic()
            stop = min(steps, state["step"] + every)
            state["history"] += train_steps(
                model, images, start=state["step"], stop=stop, total=steps, batch=recipe.batch, lr=recipe.lr,
                seed=recipe.seed, snr_db=recipe.snr_train_db, opt=opt, device=device,
                report=lambda t, r: echo(f"{recipe.name} step {t}/{steps}: MSE {r['mse']:.5f} ({r['psnr_db']:.2f} dB)"))
            state["step"] = stop
            state["seconds"] += time.monotonic() - t0
            os.makedirs(os.path.dirname(os.path.abspath(checkpoint)), exist_ok=True)
            torch.save(dict(state, state=model.state_dict(), opt=opt.state_dict()), checkpoint + ".tmp")
            os.replace(checkpoint + ".tmp", checkpoint)
            if stop_after is not None and time.monotonic() - begun > stop_after:
                echo(f"stopped at step {stop}; the same command resumes")
                break
        return dict(state, state={k: v.cpu() for k, v in model.state_dict().items()})
    finally:
        torch.set_num_threads(prev)


def main(argv=None) -> int:
    a = arguments("python -m simulator.jscc.pretrain", "pretrain (or resume) a zoo DeepJSCC model", RECIPES).parse_args(argv)
    recipe = RECIPES[a.recipe]
    from ..zoo import export_jscc

    return command("python -m simulator.jscc.pretrain", argv, a, lambda: pretrain(
        recipe, a.data or recipe.dataset, a.steps, a.checkpoint, device=a.device, threads=a.threads,
        stop_after=a.stop_after, echo=lambda s: print(s, flush=True)), lambda out, line: export_jscc(recipe, out, line))


if __name__ == "__main__":
    sys.exit(main())

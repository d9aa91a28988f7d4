"""Pretraining the zoo's pre-distributions: recipes, resumable training, export.

A *recipe* names the data a zoo model trains on (a dataset spec and which of its items), the
architecture, the operating points and the optimiser. :func:`pretrain` trains it with
checkpoints: stopped at any point (Ctrl-C, a lost machine), the same command resumes from the
last checkpoint and, on the same device and thread count, ends with the same weights as an
uninterrupted run, because every step's batch, flips, operating points and noise are drawn
from generators seeded by ``(seed, step)``. :func:`export` writes the half-precision weights
and the manifest entry of :mod:`simulator.zoo`.

Commands (retrain the zoo's entries; ``--device cuda`` where a GPU is lent)::

    python -m simulator.semantic.pretrain digits-grey --steps 20000 --checkpoint ckpt/digits-grey.ckpt --export
    python -m simulator.semantic.pretrain natural-rgb-base --data imagefolder:../shared/data/cifar10/test \
        --steps 60000 --checkpoint ckpt/natural-rgb-base.ckpt
    python -m simulator.semantic.pretrain natural-rgb-wide --data imagefolder:../shared/data/cifar10/test \
        --steps 10000 --checkpoint ckpt/natural-rgb-wide.ckpt --init-from ckpt/natural-rgb-base.ckpt
    python -m simulator.semantic.pretrain natural-rgb --data imagefolder:../shared/data/cifar10/test \
        --steps 3000 --checkpoint ckpt/natural-rgb.ckpt --init-from ckpt/natural-rgb-wide.ckpt --export
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..sources.base import first_per_class
from .coding import to_net
from .hyperprior import HyperpriorCodec, HyperShape, train_step_terms

LADDER = tuple(2.0 ** (k / 2) for k in range(-24, -7))
"""Operating points lambda = 2^-12 .. 2^-4 in half octaves (17 rungs; D = SSE per item on
0..255, R bits per item): ``digits-grey`` and the first stage of ``natural-rgb``."""

WIDE_LADDER = tuple(2.0 ** (k / 2) for k in range(-32, -7))
"""lambda = 2^-16 .. 2^-4 in half octaves (25 rungs): ``natural-rgb-wide``, whose photos need
operating points below 24 dB."""

NATURAL_LADDER = tuple(2.0 ** (k / 2) for k in range(-38, -7))
"""lambda = 2^-19 .. 2^-4 in half octaves (31 rungs): ``natural-rgb``, ``WIDE_LADDER`` with six
rungs below it, for photos down to about 16 dB."""


@dataclass(frozen=True)
class Recipe:
    """How one zoo model is pretrained.

    Attributes:
        name: the zoo entry.
        dataset: the dataset spec it is meant for (``--data`` may point elsewhere).
        per_class: items taken from the start of each class (0: see ``first``).
        first: items taken from the start of the dataset (with ``per_class = 0``).
        arch: the architecture.
        batch: items per step.
        lr: Adam learning rate, cosine-decayed to ``lr / 20`` over the run's steps.
        flip: random horizontal flips.
        seed: the seed of the run's generators.
        held_out: what a benchmark evaluates instead (documentation).
        ladder: the operating points (lambdas).
        starts_from: the recipe whose finished checkpoint this one starts from (``--init-from``;
            its gains mapped onto this ladder by :func:`map_gains`), or ``""`` (a random start).
        new_gains_only: train only the gains of the operating points that ``starts_from``'s
            ladder lacks, on those points only; every other parameter, and so every operating
            point of ``starts_from``, stays exactly as it was.
    """

    name: str
    dataset: str
    per_class: int
    first: int
    arch: HyperShape
    batch: int
    lr: float
    flip: bool
    seed: int
    held_out: str
    ladder: tuple[float, ...] = LADDER
    starts_from: str = ""
    new_gains_only: bool = False

    def new_rungs(self) -> np.ndarray:
        """Indices into ``ladder`` of the operating points ``starts_from``'s ladder lacks."""
        old = set(RECIPES[self.starts_from].ladder) if self.starts_from else set()
        return np.array([i for i, v in enumerate(self.ladder) if v not in old], dtype=np.int64)

    def select(self, labels: np.ndarray) -> np.ndarray:
        """Indices of the training items among a dataset's items (labels in loader order)."""
        if self.per_class:
            return first_per_class(labels, self.per_class)
        return np.arange(min(self.first, len(labels)))


_NATURAL = dict(dataset="imagefolder:../shared/data/cifar10/test", per_class=500, first=0,
                arch=HyperShape(channels=3, hidden=96, latent=128, side=64, stages=3, side_stages=1),
                batch=16, flip=True, held_out="images 500..999 of each class of the CIFAR-10 test split")

RECIPES = {
    "natural-rgb-base": Recipe(name="natural-rgb-base", lr=1e-3, seed=0, **_NATURAL),
    "natural-rgb-wide": Recipe(name="natural-rgb-wide", lr=3e-4, seed=1, ladder=WIDE_LADDER,
                               starts_from="natural-rgb-base", **_NATURAL),
    "natural-rgb": Recipe(name="natural-rgb", lr=1e-2, seed=2, ladder=NATURAL_LADDER, starts_from="natural-rgb-wide",
                          new_gains_only=True, **_NATURAL),
    "digits-grey": Recipe(
        name="digits-grey", dataset="digits", per_class=0, first=900,
        arch=HyperShape(channels=1, hidden=48, latent=32, side=16, stages=2, side_stages=1),
        batch=32, lr=1e-3, flip=False, seed=0,
        held_out="digits 900..1796"),
}


def build_codec(arch: HyperShape, seed: int, ladder: tuple[float, ...] = LADDER) -> HyperpriorCodec:
    """A freshly initialised codec of ``arch`` over ``ladder`` (no cluster conditioning)."""
    with torch.random.fork_rng(devices=[]):
        return HyperpriorCodec(arch, ladder, generator=torch.Generator().manual_seed(int(seed)))


def map_gains(state: dict[str, torch.Tensor], old: tuple[float, ...], new: tuple[float, ...]) -> dict:
    """``state`` (a codec over the operating points ``old``) with its ``log_gain`` ``(K_old, M)``
    mapped onto ``new``: per latent channel, linear in ``log lambda`` through the two nearest old
    points (interpolated inside ``old``'s range, extrapolated outside; an old lambda keeps its
    gain exactly)."""
    g = state["log_gain"].double()
    x = np.log(np.asarray(old, dtype=np.float64))
    rows = []
    for lam in new:
        t = math.log(lam)
        i = int(np.clip(np.searchsorted(x, t), 1, len(x) - 1))
        w = (t - x[i - 1]) / (x[i] - x[i - 1])
        rows.append(g[i - 1] + w * (g[i] - g[i - 1]))
    return dict(state, log_gain=torch.stack(rows).float())


def train_steps(codec: HyperpriorCodec, images: np.ndarray, clusters: np.ndarray, *, start: int, stop: int,
                total: int, batch: int, lr: float, seed: int, flip: bool, opt: torch.optim.Optimizer,
                device: str = "cpu", report=None, penalty=None, rungs: np.ndarray | None = None) -> list[dict]:
    """Run optimiser steps ``start .. stop-1`` of a ``total``-step schedule.

    Step t draws its batch (with replacement), flips, operating points and noise from
    generators seeded by ``(seed, t)``, so a resumed run repeats an uninterrupted one.
    ``images`` ``(N, H, W, C)`` uint8, ``clusters`` ``(N,)`` int64. ``penalty``: a callable
    returning a scalar added to each step's loss (bits per item). ``rungs``: the operating
    points (indices) a step draws from (default: every one). Returns one record per 100
    steps: ``{"step", "loss", "bits", "sse"}`` (batch means).
    """
    x_all = to_net(images)
    c_all = torch.from_numpy(np.asarray(clusters, dtype=np.int64))
    lams = torch.tensor(codec.lambdas, dtype=torch.float32, device=device)
    codec.to(device).train()
    out = []
    acc = np.zeros(3)
    count = 0
    n = len(images)
    for t in range(start, stop):
        rng = np.random.default_rng([seed, t])
        idx = rng.integers(0, n, size=min(batch, n))
        x = x_all[idx]
        if flip:
            f = torch.from_numpy(rng.random(len(idx)) < 0.5)
            x = torch.where(f[:, None, None, None], x.flip(3), x)
        x, cl = x.to(device), c_all[idx].to(device)
        pick = rng.integers(0, len(lams) if rungs is None else len(rungs), size=len(idx))
        rung = torch.from_numpy(pick if rungs is None else np.asarray(rungs)[pick]).to(device)
        noise = torch.Generator(device=device).manual_seed(int(rng.integers(1 << 62)))
        for g in opt.param_groups:
            g["lr"] = lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t / max(1, total))))
        bits, sse = train_step_terms(codec, x, cl, rung, noise)
        loss = (bits + lams[rung] * sse).mean()
        if penalty is not None:
            loss = loss + penalty()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(codec.parameters(), 1.0)
        opt.step()
        acc += [loss.item(), bits.mean().item(), sse.mean().item()]
        count += 1
        if (t + 1) % 100 == 0 or t + 1 == stop:
            m = acc / count
            if not np.isfinite(m).all():
                raise InputError(f"training diverged at step {t + 1} (loss {m[0]})", where="pretraining")
            out.append({"step": t + 1, "loss": float(m[0]), "bits": float(m[1]), "sse": float(m[2])})
            if report is not None:
                report(t + 1, out[-1])
            acc[:] = 0
            count = 0
    codec.cpu().eval()
    return out


def load_training_items(recipe, data: str) -> np.ndarray:
    """The training items of ``recipe`` (a :class:`Recipe` or any recipe with ``name``,
    ``arch.channels`` and ``select(labels)``) from dataset spec ``data``, ``(N, H, W, C)`` uint8."""
    from ..sources import load_dataset

    items = load_dataset(data)
    if items.shape[2] != recipe.arch.channels:
        raise InputError(f"{data} has {items.shape[2]} channel(s); {recipe.name} is for {recipe.arch.channels}",
                         where="--data")
    return items.images[recipe.select(items.labels)]


def pretrain(recipe: Recipe, data: str, steps: int, checkpoint: str, *, device: str = "cpu",
             threads: int = 1, stop_after: float | None = None, every: int = 500, init_from: str = "",
             echo=print) -> dict:
    """Train ``recipe`` for ``steps`` steps in all, resuming from ``checkpoint`` if it exists.

    Writes the checkpoint (atomically) every ``every`` steps and at the end. ``stop_after``:
    stop (with a checkpoint) after this many seconds. Returns the checkpoint's content.
    """
    prev = torch.get_num_threads()
    torch.set_num_threads(int(threads))  # scoped: restored on return
    try:
        return _pretrain(recipe, data, steps, checkpoint, device=device, stop_after=stop_after, every=every,
                         init_from=init_from, echo=echo)
    finally:
        torch.set_num_threads(prev)


def trainable(codec: HyperpriorCodec, rungs: np.ndarray | None) -> list[torch.nn.Parameter]:
    """The parameters a recipe trains: all of them (``rungs = None``), or only ``log_gain``
    with the gradient of every row but ``rungs`` zeroed, so that Adam leaves those rows, and
    every other parameter, bit-identical."""
    if rungs is None:
        return list(codec.parameters())
    for p in codec.parameters():
        p.requires_grad_(False)
    codec.log_gain.requires_grad_(True)
    keep = torch.zeros(codec.log_gain.shape[0], 1, dtype=codec.log_gain.dtype, device=codec.log_gain.device)
    keep[torch.as_tensor(rungs)] = 1.0
    codec.log_gain.register_hook(lambda g: g * keep)
    return [codec.log_gain]


def resume(checkpoint: str, name: str, steps: int, model: torch.nn.Module, opt: torch.optim.Optimizer, state: dict,
           echo) -> bool:
    """Load the checkpoint of a run of recipe ``name`` over ``steps`` steps into ``model``,
    ``opt`` and ``state`` (its ``step``, ``history``, ``seconds`` and ``starts_from``); False
    when there is none. A checkpoint of another recipe or length is refused (InputError)."""
    if not os.path.exists(checkpoint):
        return False
    blob = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if blob["recipe"] != name or blob["steps"] != int(steps):
        raise InputError(f"checkpoint is for {blob['recipe']} over {blob['steps']} steps, not {name} over {steps}",
                         where=checkpoint)
    model.load_state_dict(blob["state"])
    opt.load_state_dict(blob["opt"])
    state.update({k: blob[k] for k in ("step", "history", "seconds", "starts_from") if k in blob})
    echo(f"resumed {name} at step {state['step']}/{steps}")
    return True


def _pretrain(recipe: Recipe, data: str, steps: int, checkpoint: str, *, device: str, stop_after: float | None,
              every: int, init_from: str, echo) -> dict:
    images = load_training_items(recipe, data)
    codec = build_codec(recipe.arch, recipe.seed, recipe.ladder).to(device)  # before the optimiser's resumed state
    rungs = recipe.new_rungs() if recipe.new_gains_only else None
    opt = torch.optim.Adam(trainable(codec, rungs), lr=recipe.lr)
    state = {"recipe": recipe.name, "steps": int(steps), "step": 0, "history": [], "items": int(len(images)),
             "data": data, "device": device, "seconds": 0.0}
    if not resume(checkpoint, recipe.name, steps, codec, opt, state, echo) and recipe.starts_from:
        if not init_from or not os.path.exists(init_from):
            raise InputError(f"{recipe.name} starts from a finished {recipe.starts_from} checkpoint: give it with "
                             "--init-from", where="--init-from")
        base = torch.load(init_from, map_location="cpu", weights_only=False)
        if base["recipe"] != recipe.starts_from or base["step"] < base["steps"]:
            raise InputError(f"not a finished {recipe.starts_from} checkpoint ({base['recipe']}, step "
                             f"{base['step']}/{base['steps']})", where=init_from)
        codec.load_state_dict(map_gains(base["state"], RECIPES[recipe.starts_from].ladder, recipe.ladder))
        state["starts_from"] = {"recipe": base["recipe"], "steps": int(base["steps"]),
                                "seconds": float(base["seconds"]), "items": int(base["items"])}
        echo(f"{recipe.name} starts from {init_from} ({base['recipe']}, {base['steps']} steps)")
    clusters = np.zeros(len(images), dtype=np.int64)
    begun = time.monotonic()

    def save() -> None:
        blob = dict(state, state=codec.state_dict(), opt=opt.state_dict())
        os.makedirs(os.path.dirname(os.path.abspath(checkpoint)), exist_ok=True)
        tmp = checkpoint + ".tmp"
        torch.save(blob, tmp)
        os.replace(tmp, checkpoint)

    def report(t: int, rec: dict) -> None:
        px = images.shape[1] * images.shape[2]
        echo(f"{recipe.name} step {t}/{steps}: loss {rec['loss']:.1f}, {rec['bits'] / px:.3f} bit/px, "
             f"SSE {rec['sse']:.0f}")

    while state["step"] < steps:
        t0 = time.monotonic()
        stop = min(steps, state["step"] + every)
        state["history"] += train_steps(codec, images, clusters, start=state["step"], stop=stop, total=steps,
                                        batch=recipe.batch, lr=recipe.lr, seed=recipe.seed, flip=recipe.flip, opt=opt,
                                        device=device, report=report, rungs=rungs)
        state["step"] = stop
        state["seconds"] += time.monotonic() - t0
        save()
        if stop_after is not None and time.monotonic() - begun > stop_after:
            echo(f"stopped at step {stop}; the same command resumes")
            break
    return dict(state, state=codec.state_dict())


def arguments(prog: str, description: str, recipes) -> argparse.ArgumentParser:
    """The command line every zoo pretraining module takes (``recipes``: the names allowed)."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("recipe", choices=sorted(recipes))
    p.add_argument("--data", help="dataset spec (default: the recipe's)")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--stop-after", type=float, help="seconds; stop with a checkpoint")
    p.add_argument("--export", action="store_true", help="write the zoo weights when the run is complete")
    return p


def main(argv=None) -> int:
    p = arguments("python -m simulator.semantic.pretrain", "pretrain (or resume) a zoo pre-distribution", RECIPES)
    p.add_argument("--init-from", default="", help="a finished checkpoint of the recipe this one starts from")
    a = p.parse_args(argv)
    recipe = RECIPES[a.recipe]
    from ..zoo import export

    return command("python -m simulator.semantic.pretrain", argv, a, lambda: pretrain(
        recipe, a.data or recipe.dataset, a.steps, a.checkpoint, device=a.device, threads=a.threads,
        stop_after=a.stop_after, init_from=a.init_from, echo=lambda s: print(s, flush=True)),
        lambda out, line: export(recipe, out, recipe.ladder, line))


def command(prog: str, argv, a: argparse.Namespace, train, write) -> int:
    """A pretraining command: ``train()`` (returns the checkpoint's content), then, when the run
    is complete and ``--export`` was given, ``write(content, command line)`` (returns the
    weights' path). Bad input: one line on stderr, exit status 2."""
    try:
        out = train()
        if a.export and out["step"] >= a.steps:
            path = write(out, " ".join([prog] + (sys.argv[1:] if argv is None else list(argv))))
            print(f"wrote {path}")
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

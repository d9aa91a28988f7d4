"""RunContext: everything a component needs to know about the run it is part of.

There is no global mutable state in semsim. A :class:`RunContext` is built once from the
scenario (or a test) and passed explicitly to every component. Random streams are derived from
``(seed, stream name)``, so components draw from independent, reproducible streams and adding
a consumer of randomness in one component never shifts the numbers another one sees.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .errors import InputError

DEVICES = ("auto", "cpu", "cuda")
#: The most torch CPU threads a run takes (``--threads``, ``simulator.run(threads=...)``).
MAX_THREADS = 256


def default_cache_dir() -> Path:
    """``$SEMSIM_CACHE`` if set, else ``$XDG_CACHE_HOME/semsim`` or ``~/.cache/semsim``."""
    env = os.environ.get("SEMSIM_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "semsim"


def resolve_device(device: str) -> str:
    """Map ``auto | cpu | cuda`` to a concrete torch device string (``"cpu"`` or ``"cuda"``).

    Raises :class:`InputError` if ``cuda`` is asked for and no CUDA device is visible.
    """
    if device not in DEVICES:
        raise InputError(f"device must be one of {', '.join(DEVICES)} (got {device!r})", where="device")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device = 'cuda' was asked for but no CUDA device is visible; use 'auto' or 'cpu'",
                         where="device")
    return device


def _stream_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


@dataclass(frozen=True)
class RunContext:
    """Seed, device and cache directory of one run.

    Attributes:
        seed: master seed (int >= 0). Every random stream is derived from it.
        device: concrete torch device, ``"cpu"`` or ``"cuda"`` (see :func:`resolve_device`).
        cache_dir: where trained models and calibration tables are kept (created on demand).
        progress: whether long steps show progress bars.
        num_threads: torch intra-op threads on the CPU (``None`` leaves torch's default).
        on_step: the progress callback ``on_step(step, done, total, detail)`` that long
            steps (training) report to through :meth:`report` (:mod:`simulator.progress`);
            ``None`` reports nothing. Not part of equality, and dropped when the context is
            sent to another process (:meth:`detached`).
    """

    seed: int = 0
    device: str = "cpu"
    cache_dir: Path = field(default_factory=default_cache_dir)
    progress: bool = True
    num_threads: int | None = None
    on_step: Callable[[str, int, int, str], None] | None = field(default=None, compare=False, repr=False)

    def report(self, step: str, done: int, total: int, detail: str = "") -> None:
        """Tell the progress callback (if any) that ``done`` of ``total`` units of ``step`` are finished."""
        if self.on_step is not None:
            self.on_step(step, done, total, detail)

    def with_progress(self, on_step: Callable[[str, int, int, str], None] | None) -> "RunContext":
        """The same context reporting to ``on_step`` (``None``: to nothing)."""
        return replace(self, on_step=on_step)

    def detached(self) -> "RunContext":
        """The same context without its progress callback (what a Ray task is sent)."""
        return replace(self, on_step=None)

    def with_seed(self, seed: int) -> "RunContext":
        """The same context with another master seed."""
        return replace(self, seed=int(seed))

    def seed_for(self, stream: str) -> int:
        """A 63-bit integer seed for the named stream, a pure function of (seed, stream)."""
        ss = np.random.SeedSequence([int(self.seed), _stream_key(stream)])
        return int(ss.generate_state(2, dtype=np.uint32).astype(np.uint64) @ np.array([1 << 31, 1], dtype=np.uint64)) & ((1 << 63) - 1)

    def rng(self, stream: str) -> np.random.Generator:
        """An independent NumPy generator for the named stream."""
        return np.random.default_rng(np.random.SeedSequence([int(self.seed), _stream_key(stream)]))

    def torch_generator(self, stream: str, device: str | None = None) -> torch.Generator:
        """An independent torch generator for the named stream on ``device`` (default: ours)."""
        gen = torch.Generator(device=device or self.device)
        gen.manual_seed(self.seed_for(stream))
        return gen

    def training_threads(self) -> int:
        """The torch thread count models are trained with (:attr:`num_threads`, else torch's
        current one); part of every model cache key, since float reductions, and so the
        trained weights, depend on it."""
        return int(self.num_threads or torch.get_num_threads())

    @contextlib.contextmanager
    def threads(self):
        """Run the block with torch's intra-op thread count at :attr:`num_threads` (when set),
        restoring the previous count afterwards. The one place semsim changes it."""
        if not self.num_threads:
            yield
            return
        prev = torch.get_num_threads()
        torch.set_num_threads(int(self.num_threads))
        try:
            yield
        finally:
            torch.set_num_threads(prev)

    def cache_path(self, *parts: str) -> Path:
        """``cache_dir/parts...``, with the parent directory created."""
        path = Path(self.cache_dir, *parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

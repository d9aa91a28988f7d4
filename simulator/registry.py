"""Named components: one small registry mechanism, one registry per kind of component.

A :class:`Registry` maps names to components (pipeline specs, link modes, channels,
datasets, classical coders, memorizable kinds). The scenario schema validates names against
it and its error messages list :meth:`Registry.names` ("allowed: ..."); the docs test and the
plots read the same lists. Nothing else repeats a list of names.

User code adds a component by registering it before loading a scenario::

    from simulator.registry import PIPELINES
    PIPELINES.register("my-pipeline", spec)

The registries are the only module-level containers semsim has; they hold definitions, not
run state, and the package registers its built-ins when the defining module is imported
(see :func:`builtins`), so importing :mod:`simulator` alone changes nothing.
"""

from __future__ import annotations

import importlib
from typing import Any, Generic, Iterator, TypeVar

T = TypeVar("T")

# The modules that register the built-in components of each registry (imported on first use,
# so that a registry is complete whenever it is read).
_BUILTIN_MODULES = {
    "pipeline": "simulator.pipelines",
    "link mode": "simulator.classical.modes",
    "channel": "simulator.classical.channels",
    "dataset": "simulator.sources",
    "classical coder": "simulator.classical.source_coding",
    "memorizable kind": "simulator.sources.mixture",
}


class Registry(Generic[T]):
    """Names -> components of one kind, in registration order.

    Args:
        kind: what the components are, for messages (e.g. ``"pipeline"``).
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._loaded = False

    def _load_builtins(self) -> None:
        if not self._loaded:
            self._loaded = True
            module = _BUILTIN_MODULES.get(self.kind)
            if module:
                importlib.import_module(module)

    def register(self, name: str, component: T | None = None, *, replace: bool = False):
        """Register ``component`` under ``name``; usable as a decorator when ``component`` is omitted.

        Raises:
            ValueError: ``name`` is empty, not a plain name, or already registered (unless ``replace``).
        """
        if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name):
            raise ValueError(f"a {self.kind} name must be a non-empty word of letters, digits, '-', '_' or '.' "
                             f"(got {name!r})")

        def add(obj: T) -> T:
            if name in self._items and not replace:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return add if component is None else add(component)

    def names(self) -> list[str]:
        """Registered names, in registration order (built-ins first)."""
        self._load_builtins()
        return list(self._items)

    def allowed(self) -> str:
        """``"a, b, c"``: the names as error messages list them."""
        return ", ".join(self.names())

    def check(self, name: Any) -> str:
        """``name`` if registered, else ``ValueError("unknown <kind> 'x'; allowed: ...")``."""
        if name not in self.names():
            raise ValueError(f"unknown {self.kind}; allowed: {self.allowed()} (got {name!r})")
        return name

    def get(self, name: str) -> T:
        """The component registered under ``name`` (``ValueError`` naming the allowed ones)."""
        return self._items[self.check(name)]

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


PIPELINES: Registry = Registry("pipeline")
LINK_MODES: Registry = Registry("link mode")
CHANNELS: Registry = Registry("channel")
DATASETS: Registry = Registry("dataset")
CODERS: Registry = Registry("classical coder")
MEMORIZABLE_KINDS: Registry = Registry("memorizable kind")


__all__ = ["Registry", "PIPELINES", "LINK_MODES", "CHANNELS", "DATASETS", "CODERS", "MEMORIZABLE_KINDS"]

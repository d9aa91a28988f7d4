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
import sys
from typing import Any, Generic, Iterator, TypeVar

T = TypeVar("T")

# The modules that register the built-in components of each registry (imported on first use,
# so that a registry is complete whenever it is read).
_BUILTIN_MODULES = {
    "pipeline": "simulator.pipelines",
    "link mode": "simulator.link.modes",
    "transport": "simulator.link.transport",
    "channel": "simulator.link.channels",
    "dataset": "simulator.sources",
    "classical coder": ("simulator.classical.source_coding", "simulator.classical.codecs"),
    "memorizable kind": "simulator.sources.mixture",
}


class Registry(Generic[T]):
    """Names -> components of one kind, in registration order.

    Args:
        kind: what the components are, for messages (e.g. ``"pipeline"``).
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._builtin: dict[str, T] = {}
        self._user: dict[str, T] = {}
        self._loaded = False

    def _modules(self) -> tuple[str, ...]:
        modules = _BUILTIN_MODULES.get(self.kind, ())
        return (modules,) if isinstance(modules, str) else tuple(modules)

    def _load_builtins(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._modules():
                importlib.import_module(module)

    def register(self, name: str, component: T | None = None, *, replace: bool = False):
        """Register ``component`` under ``name``; usable as a decorator when ``component`` is omitted.

        A registration from the package's own modules is a built-in; any other is the user's.
        Built-ins are listed first, whenever either is registered; a user's registration with
        ``replace=True`` replaces a built-in of the same name (also one not loaded yet).

        Raises:
            ValueError: ``name`` is empty, not a plain name, or already registered (unless ``replace``).
        """
        if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name):
            raise ValueError(f"a {self.kind} name must be a non-empty word of letters, digits, '-', '_' or '.' "
                             f"(got {name!r})")
        builtin = sys._getframe(1).f_globals.get("__name__", "") in self._modules()
        if not builtin:
            self._load_builtins()

        def add(obj: T) -> T:
            table = self._builtin if builtin else self._user
            if (name in table or (not builtin and name in self._builtin)) and not replace:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            table[name] = obj
            return obj

        return add if component is None else add(component)

    def names(self) -> list[str]:
        """Registered names: the built-ins in registration order, then the user's."""
        self._load_builtins()
        return list(self._builtin) + [n for n in self._user if n not in self._builtin]

    def allowed(self) -> str:
        """``"a, b, c"``: the names as error messages list them."""
        return ", ".join(self.names())

    def check(self, name: Any) -> str:
        """``name`` if registered, else ``ValueError("unknown <kind> 'x'; allowed: ...")``."""
        if name not in self.names():
            raise ValueError(f"unknown {self.kind}; allowed: {self.allowed()} (got {name!r})")
        return name

    def get(self, name: str) -> T:
        """The component registered under ``name`` (``ValueError`` naming the allowed ones); a
        user's replacement of a built-in wins."""
        self.check(name)
        return self._user[name] if name in self._user else self._builtin[name]

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


PIPELINES: Registry = Registry("pipeline")
TRANSPORTS: Registry = Registry("transport")
LINK_MODES: Registry = Registry("link mode")
CHANNELS: Registry = Registry("channel")
DATASETS: Registry = Registry("dataset")
CODERS: Registry = Registry("classical coder")
MEMORIZABLE_KINDS: Registry = Registry("memorizable kind")


__all__ = ["Registry", "PIPELINES", "LINK_MODES", "CHANNELS", "DATASETS", "CODERS", "MEMORIZABLE_KINDS"]

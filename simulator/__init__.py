"""semsim: a semantic-communication link simulator.

Data flows one way: Source -> Teacher -> Link -> Apprentice -> Ledger (see docs/design.md).

Python entry point (importing the package loads nothing heavy and changes no global state)::

    import simulator
    sc = simulator.load_scenario("scenarios/demo.toml")   # validated Scenario (InputError if bad)
    res = simulator.run(sc)                               # res.items, res.summary (DataFrames), res.meta
    res = simulator.run(sc, out="results/mine")           # the same, also written to disk

New pipelines, coders, datasets, memorizable kinds, channels and link modes are registered in
:mod:`simulator.registry` (docs/extending.md).
"""

__all__ = ["__version__", "load_scenario", "parse_scenario", "run", "Result", "InputError", "OutputError",
           "LostWorkError", "SemsimError"]


def __getattr__(name: str):
    # Lazy: ``import simulator`` stays cheap (no torch, no matplotlib) until something is used.
    if name == "__version__":
        from .version import __version__

        return __version__
    if name in ("load_scenario", "parse_scenario"):
        from . import scenario

        return getattr(scenario, name)
    if name in ("run", "Result"):
        from . import runner

        return getattr(runner, name)
    if name in ("InputError", "OutputError", "LostWorkError", "SemsimError"):
        from . import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")

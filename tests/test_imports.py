"""The package's import diagram has no cycle, counting every import statement (also those
inside functions, which would otherwise hide one), and importing the package changes no
global state."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "simulator"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                if t in modules and t != mod and not mod.startswith(t + "."):  # a parent package: implicit
                    graph[mod].add(t)
    return graph


def test_no_import_cycles():
    graph = import_graph()
    assert "simulator.link.phy" in graph and graph["simulator.link.modes"] >= {
        "simulator.link.phy", "simulator.link.abstraction", "simulator.link.fixed_bler"}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_importing_simulator_changes_nothing_global():
    code = ("import sys, matplotlib; backend = matplotlib.get_backend(); import simulator; "
            "assert matplotlib.get_backend() == backend; "
            "assert not [m for m in sys.modules if m.startswith('simulator.')], sorted(sys.modules); "
            "assert 'torch' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_sionna_is_loaded_only_by_a_link_that_uses_it(tmp_path):
    """Validating a scenario and running a fixed-bler link (no Sionna) leave Sionna unloaded
    (about 2 s of every ``semsim`` start); building a bit-true link loads it."""
    code = ("import sys; from simulator.scenario import parse_scenario; from simulator.runner import run; "
            "from simulator.link.modes import build_phy; from simulator.context import RunContext; "
            "sc = parse_scenario({'name': 'x', 'pipelines': ['classical'], "
            "'source': {'dataset': 'digits', 'max_items': 5}, 'classical': {'coder': 'raw'}, "
            "'link': {'mode': 'fixed-bler', 'bler': 0.1, 'channel': 'rayleigh'}}); run(sc); "
            "assert 'sionna' not in sys.modules, 'fixed-bler'; "
            "build_phy(sc.link.model_copy(update={'mode': 'bit-true'}), RunContext(seed=0)); "
            "assert 'sionna' in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "SEMSIM_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-2000:]

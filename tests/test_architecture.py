"""The layout the architecture promises: data flows one way (Source -> Teacher -> Link ->
Apprentice -> Ledger), no module imports a module of a later stage, the link imports nothing
from the stages around it, and no function takes a long positional parameter list."""

from __future__ import annotations

import ast

from test_imports import PKG, import_graph

# The chain's stages, in order; everything not named is shared vocabulary (stage 0: context,
# errors, registry, route, bits, ...) or an orchestrator after the chain (point, runner, cli,
# results, plots, ...), which may import every stage but is imported by none of them.
STAGES = {
    "simulator.sources": 1,
    # the teacher's coders and pipeline specs come before the teacher that uses them (the
    # pre-processor's cost model must not reach into the teacher)
    "simulator.classical": 2, "simulator.semantic": 2, "simulator.preprocess": 2, "simulator.pipelines": 2,
    "simulator.teacher": 2.5,
    "simulator.link": 3,
    "simulator.apprentice": 4,
    "simulator.ledger": 5,
}
SHARED = {"simulator.context", "simulator.errors", "simulator.files", "simulator.registry",
          "simulator.route", "simulator.bits", "simulator.section", "simulator.progress", "simulator.flops",
          "simulator.model_cache", "simulator.metrics", "simulator.version", "simulator.sweep", "simulator.zoo",
          "simulator.folds", "simulator.cluster_count"}


def stage(module: str) -> int | None:
    """The chain stage of ``module``, 0 for shared modules, ``None`` for an orchestrator."""
    if module in SHARED:
        return 0
    for prefix, number in STAGES.items():
        if module == prefix or module.startswith(prefix + "."):
            return number
    return None


def test_no_module_imports_a_later_stage():
    wrong = []
    for module, imported in import_graph().items():
        here = stage(module)
        if here is None:
            continue
        for target in imported:
            there = stage(target)
            if there is None or there > here:
                wrong.append(f"{module} (stage {here}) imports {target} (stage {there})")
    assert not wrong, "\n".join(sorted(wrong))


def test_the_link_imports_nothing_from_teacher_apprentice_pipelines_or_ledger():
    banned = ("simulator.teacher", "simulator.apprentice", "simulator.pipelines", "simulator.ledger",
              "simulator.point", "simulator.semantic", "simulator.preprocess", "simulator.classical")
    for module, imported in import_graph().items():
        if module.startswith("simulator.link"):
            assert not [t for t in imported if t.startswith(banned)], module


def _positional(node: ast.FunctionDef) -> int:
    a = node.args
    return len([x for x in a.posonlyargs + a.args if x.arg not in ("self", "cls")])


CHAIN = ("simulator/teacher.py", "simulator/apprentice.py", "simulator/ledger.py", "simulator/point.py",
         "simulator/link/")


def test_no_long_positional_parameter_lists():
    too_long = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).as_posix()
        limit = 6 if rel.startswith(CHAIN) else 8
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _positional(node) > limit:
                too_long.append(f"{rel}:{node.lineno} {node.name}: {_positional(node)} positional (at most {limit})")
    assert not too_long, "\n".join(too_long)


def test_no_record_has_fields_typed_object():
    """Records between the stages name their types (no bag of ``object`` fields)."""
    loose = []
    for path in sorted(PKG.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(d, (ast.Name, ast.Call)) and "dataclass" in ast.unparse(d) for d in node.decorator_list):
                for item in node.body:
                    if isinstance(item, ast.AnnAssign) and "object" in ast.unparse(item.annotation).replace(
                            "dtype=object", ""):
                        loose.append(f"{path.relative_to(PKG.parent)}:{item.lineno} {node.name}.{ast.unparse(item.target)}: "
                                     f"{ast.unparse(item.annotation)}")
    assert not loose, "\n".join(loose)

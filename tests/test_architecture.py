"""The import graph of radae/, read statically (ast) from every module, function-level imports included.

Imports must point one way: no cycles among radae's modules, no module importing another's private
(leading underscore) name, and the core (radae/ outside radae/sweep/) never importing the sweep layer
nor, at module level, an orchestration library (style rule 12). An edge goes to the most specific
radae module an import names (``from radae.fast.packed import X`` -> ``radae.fast.packed``;
``from radae.fast import packed`` -> ``radae.fast.packed``); the parent packages Python initialises
on the way are not edges, so a package's ``__init__`` may re-export its submodules.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "radae"
SWEEP = "radae.sweep"
ORCHESTRATION = ("ray", "mlflow", "boto3", "optuna")


@dataclass(frozen=True)
class Import:
    importer: str  # module doing the import
    target: str  # most specific module named (radae or third-party top-level package)
    name: str | None  # the imported name when it is not a module (``from m import name``)
    line: int
    module_level: bool  # not inside a function (runs when the importer is imported)

    def __str__(self) -> str:
        what = f"{self.target}.{self.name}" if self.name else self.target
        return f"{self.importer}:{self.line} imports {what}"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    """The absolute module of ``from <node.module> import ...`` (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = importer if modules()[importer].name == "__init__.py" else importer.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _radae_module(dotted: str) -> str:
    """The longest prefix of ``dotted`` that is a radae module."""
    parts = dotted.split(".")
    while parts and ".".join(parts) not in modules():
        parts.pop()
    return ".".join(parts)


def _walk(tree: ast.AST, in_function: bool = False):
    for child in ast.iter_child_nodes(tree):
        yield child, in_function
        yield from _walk(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))


def imports_of(importer: str, source: str) -> list[Import]:
    """Every import statement of module ``importer`` whose text is ``source``."""
    found: list[Import] = []
    for node, in_function in _walk(ast.parse(source, importer)):
        if isinstance(node, ast.Import):
            targets = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(importer, node)
            targets = [
                (f"{base}.{alias.name}", None) if f"{base}.{alias.name}" in modules() else (base, alias.name)
                for alias in node.names
            ]
        else:
            continue
        for target, name in targets:
            ours = target == "radae" or target.startswith("radae.")
            module = _radae_module(target) if ours else target.split(".")[0]  # third party: its top package
            found.append(Import(importer, module, name, node.lineno, not in_function))
    return found


@cache
def imports() -> tuple[Import, ...]:
    return tuple(imp for importer, path in modules().items() for imp in imports_of(importer, path.read_text()))


def is_core(module: str) -> bool:
    return module != SWEEP and not module.startswith(SWEEP + ".")


def graph_of(selected: set[str]) -> dict[str, set[str]]:
    """Module -> the modules it imports, among ``selected`` modules."""
    graph: dict[str, set[str]] = {m: set() for m in selected}
    for imp in imports():
        if imp.importer in selected and imp.target in selected and imp.target != imp.importer:
            graph[imp.importer].add(imp.target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def private_imports(importers: set[str], found: tuple[Import, ...] | list[Import] | None = None) -> list[str]:
    """Imports by ``importers`` of a leading-underscore name (not a dunder) from another radae module."""
    return [
        str(imp)
        for imp in (imports() if found is None else found)
        if imp.importer in importers
        and imp.target in modules()
        and imp.target != imp.importer
        and imp.name is not None
        and imp.name.startswith("_")
        and not imp.name.startswith("__")
    ]


CORE = {m for m in modules() if is_core(m)}
SWEEP_MODULES = set(modules()) - CORE


def test_the_graph_sees_radae_and_its_function_level_imports():
    """The reader finds the modules and edges it must (so the checks below cannot pass vacuously)."""
    assert {"radae.trainer", "radae.trainsteps", "radae.fast.packed_train", "radae.sweep.trial"} <= set(modules())
    edges = {(i.importer, i.target) for i in imports()}
    assert ("radae.trainer", "radae.runfolder") in edges  # module level
    assert ("radae.sweep.trainable", "radae.trainer") in edges  # inside run_job
    assert any(i.target == "ray" and not i.module_level for i in imports())


def test_the_checks_catch_what_they_look_for():
    source = "import ray\n\ndef f():\n    from radae.trainer import _hidden, train\n    from . import _x\n"
    found = imports_of("radae.fast.packed_train", source)
    assert [(i.target, i.name, i.module_level) for i in found] == [
        ("ray", None, True),
        ("radae.trainer", "_hidden", False),
        ("radae.trainer", "train", False),
        ("radae.fast", "_x", False),
    ]
    assert private_imports({"radae.fast.packed_train"}, found) == [
        "radae.fast.packed_train:4 imports radae.trainer._hidden",
        "radae.fast.packed_train:5 imports radae.fast._x",
    ]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_core_import_graph_has_no_cycles():
    assert cycles(graph_of(CORE)) == []


def test_core_imports_no_private_names():
    assert private_imports(CORE) == []


def test_core_imports_no_sweep_module_and_no_orchestration_library_at_module_level():
    sweep = [str(i) for i in imports() if i.importer in CORE and not is_core(i.target) and i.target.startswith("radae")]
    assert sweep == []
    orchestration = [str(i) for i in imports() if i.importer in CORE and i.module_level and i.target in ORCHESTRATION]
    assert orchestration == []


def test_sweep_import_graph_has_no_cycles_and_no_private_imports():
    assert cycles(graph_of(set(modules()))) == []
    assert private_imports(SWEEP_MODULES) == []

"""The import graph of radae/, read statically (ast) from every module, function-level imports included.

Imports must point one way: no cycles among radae's modules, no module importing another's private
(leading underscore) name, and the layers only downwards, function-level imports counted too::

    radae.sweep     (running a sweep)       -> store, analysis, core
    radae.analysis  (what results mean)     -> store, core          never sweep
    radae.store     (where results live)    -> core                 never sweep nor analysis
    core            (everything else)       -> core                 and no orchestration library at module level

``dashboards/`` import the analysis and the core only. No package holds more than a third of radae's lines. An edge goes to the most specific
radae module an import names (``from radae.fast.packed import X`` -> ``radae.fast.packed``;
``from radae.fast import packed`` -> ``radae.fast.packed``); the parent packages Python initialises
on the way are not edges, so a package's ``__init__`` may re-export its submodules.

An import of a radae module inside a function hides a dependency from the module's header, so each
one says why with a ``# lazy: <reason>`` comment (on its line, or on the comment lines right above it
or above the block of imports it opens): a heavy or orchestration library the importer's users do
not need, or a module only a Ray worker needs.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "radae"
DASHBOARDS = ROOT.parent / "dashboards"
SWEEP = "radae.sweep"
LAYERS = {"radae.sweep": "sweep", "radae.store": "store", "radae.analysis": "analysis"}
ALLOWED = {  # layer -> the layers it may import
    "core": {"core"},
    "store": {"core", "store"},
    "analysis": {"core", "store", "analysis"},
    "sweep": {"core", "store", "analysis", "sweep"},
    "dashboards": {"core", "analysis"},
}
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


def layer_of(module: str) -> str:
    """``sweep``, ``store`` or ``analysis`` for a module of those packages, else ``core``."""
    for package, layer in LAYERS.items():
        if module == package or module.startswith(package + "."):
            return layer
    return "core"


def is_core(module: str) -> bool:
    return layer_of(module) == "core"


def upward_imports(found: tuple[Import, ...] | list[Import] | None = None, importer_layer=layer_of) -> list[str]:
    """Imports of a radae module from a layer the importer's layer may not import (:data:`ALLOWED`)."""
    return [
        f"{imp} ({importer_layer(imp.importer)} -> {layer_of(imp.target)})"
        for imp in (imports() if found is None else found)
        if imp.target.startswith("radae") and layer_of(imp.target) not in ALLOWED[importer_layer(imp.importer)]
    ]


def dashboard_imports() -> list[Import]:
    """Every import of the dashboards' scripts (importer ``dashboards.<name>``)."""
    return [
        imp
        for path in sorted(DASHBOARDS.glob("*.py"))
        for imp in imports_of(f"dashboards.{path.stem}", path.read_text())
    ]


def package_lines() -> dict[str, int]:
    """Lines of each package under radae/ (all its modules, subpackages included) and of radae/ as a whole."""
    lines = {"radae": 0}
    for name, path in modules().items():
        n = len(path.read_text().splitlines())
        lines["radae"] += n
        parts = name.split(".")
        for i in range(2, len(parts) + (path.name == "__init__.py")):
            package = ".".join(parts[:i])
            if (ROOT.parent / Path(*parts[:i]) / "__init__.py").is_file():
                lines[package] = lines.get(package, 0) + n
    return lines


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


LAZY_REASON = "# lazy:"


def has_lazy_reason(lines: list[str], line: int) -> bool:
    """A non-empty ``# lazy: <reason>`` on ``line`` (1-based) or on the comment and import lines right above it."""

    def reason(text: str) -> bool:
        head, found, rest = text.partition(LAZY_REASON)
        return bool(found) and bool(rest.strip())

    if reason(lines[line - 1]):
        return True
    i = line - 2
    while i >= 0:
        text = lines[i].strip()
        if text.startswith("#") and reason(text):
            return True
        if not text.startswith(("#", "import ", "from ")):
            return False
        i -= 1
    return False


def unexplained_lazy_imports(
    found: tuple[Import, ...] | list[Import] | None = None, source: str | None = None
) -> list[str]:
    """Function-level imports of a radae module without a :data:`LAZY_REASON` comment (``source``: the text of
    the one module ``found`` was read from; default every module's file)."""
    out = []
    for imp in imports() if found is None else found:
        if imp.module_level or not imp.target.startswith("radae"):
            continue
        lines = (source if source is not None else modules()[imp.importer].read_text()).splitlines()
        if not has_lazy_reason(lines, imp.line):
            out.append(str(imp))
    return out


CORE = {m for m in modules() if is_core(m)}
SWEEP_MODULES = set(modules()) - CORE


def test_the_graph_sees_radae_and_its_function_level_imports():
    """The reader finds the modules and edges it must (so the checks below cannot pass vacuously)."""
    assert {"radae.trainer", "radae.trainsteps", "radae.fast.packed_train", "radae.sweep.trial"} <= set(modules())
    edges = {(i.importer, i.target) for i in imports()}
    assert ("radae.trainer", "radae.runfolder") in edges  # module level
    assert ("radae.sweep.trainable", "radae.trainer") in edges
    assert ("radae.config", "radae.prior") in edges  # inside RunConfig.placement
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


def test_layers_import_only_downwards_counting_function_level_imports():
    assert upward_imports() == []


def test_dashboards_use_the_analysis_and_the_core_only():
    found = dashboard_imports()
    assert any(i.target.startswith("radae.analysis") for i in found)  # the scan sees them
    assert upward_imports(found, importer_layer=lambda _: "dashboards") == []


def test_the_layer_check_catches_an_upward_import():
    source = "from radae.sweep.options import default_of\n\ndef f():\n    from radae.analysis import tables\n"
    store = imports_of("radae.store.results", source)
    assert upward_imports(store) == [
        "radae.store.results:1 imports radae.sweep.options.default_of (store -> sweep)",
        "radae.store.results:4 imports radae.analysis.tables (store -> analysis)",
    ]
    assert upward_imports(imports_of("radae.analysis.report", source)) == [
        "radae.analysis.report:1 imports radae.sweep.options.default_of (analysis -> sweep)"
    ]
    assert upward_imports(imports_of("radae.sweep.runner", source)) == []


def test_no_package_holds_more_than_a_third_of_radae():
    lines = package_lines()
    assert {"radae.sweep", "radae.store", "radae.analysis", "radae.attacks"} <= set(lines)
    assert lines["radae"] > 10_000
    too_big = {p: n for p, n in lines.items() if p != "radae" and n > lines["radae"] / 3}
    assert too_big == {}, f"{too_big} of {lines['radae']} lines"


def test_sweep_import_graph_has_no_cycles_and_no_private_imports():
    assert cycles(graph_of(set(modules()))) == []
    assert private_imports(SWEEP_MODULES) == []


def test_function_level_radae_imports_say_why():
    assert unexplained_lazy_imports() == []


def test_the_lazy_check_catches_an_import_without_a_reason():
    source = (
        "def f():\n"
        "    from radae.trainer import train\n"  # line 2: no reason
        "\n"
        "def g():\n"
        "    # lazy: loads torch, which the report does not need\n"
        "    import os\n"
        "    from radae.trainer import train\n"  # line 7: covered by the comment above the block
        "\n"
        "def h():\n"
        "    from radae.data import load_dataset  # lazy: loads torch\n"
        "\n"
        "def k():\n"
        "    x = 1  # lazy: not about the import below\n"
        "    from radae.data import load_dataset\n"  # line 14
        "    # lazy:\n"
        "    import radae.fid\n"  # line 16: an empty reason is no reason
    )
    found = imports_of("radae.fast.packed_train", source)
    assert unexplained_lazy_imports(found, source) == [
        "radae.fast.packed_train:2 imports radae.trainer.train",
        "radae.fast.packed_train:14 imports radae.data.load_dataset",
        "radae.fast.packed_train:16 imports radae.fid",
    ]

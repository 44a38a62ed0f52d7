"""The packages import one way, and no module imports itself back through others.

    connectors  (the contract, HTTP, the platforms, the conformance kit)
        ↑
    store       (tables, migrations, upserts, identity; the typed Store)
        ↑
    sync, loyalty, crm   (the runner, windows, leases and cluster; the loyalty program; what goes to CRMs)
                    — not each other
        ↑
    app         (CLI, config, scheduler and service, metrics, export, report, demo)

Read from the source with `ast`, so it sees every import, including those inside functions.
Imports under `if TYPE_CHECKING:` must still point down, but do not count as cycles (they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER = {"connectors": 0, "store": 1, "sync": 2, "loyalty": 2, "crm": 2, "app": 3}
SIDE_BY_SIDE = {("sync", "loyalty"), ("loyalty", "sync"), ("crm", "sync"), ("sync", "crm"), ("crm", "loyalty"),
                ("loyalty", "crm")}


def _modules() -> dict[str, Path]:
    found = {}
    for package in LAYER:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(n) for n in ast.walk(node))
    return inside


def _imports(module: str, path: Path) -> Iterator[tuple[str, bool]]:
    """(imported module, only under TYPE_CHECKING) for every import of our packages in `module`.

    `from package import submodule` is an import of the submodule (what it runs is the package's
    `__init__` and then the submodule; a package importing its own submodules is not a cycle)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = _type_checking_nodes(tree)
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            submodules = [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in MODULES]
            names = submodules or [source]
        else:
            continue
        for name in names:
            while name and name not in MODULES:  # `import a.b.c` of a name inside a module
                name = name.rpartition(".")[0]
            if name and name != module:
                yield name, id(node) in typing_only


IMPORTS = {module: sorted(set(_imports(module, path))) for module, path in MODULES.items()}


def _package(module: str) -> str:
    return module.split(".")[0]


def test_every_import_points_down_the_layers():
    upward = [f"{m} imports {target}" for m, targets in IMPORTS.items() for target, _ in targets
              if LAYER[_package(target)] > LAYER[_package(m)]
              or (_package(m), _package(target)) in SIDE_BY_SIDE]
    assert upward == []


def test_the_conformance_kit_needs_only_the_connector_contract():
    """A third-party connector's tests run the kit without the daemon installed around it."""
    outside = [f"{m} imports {target}" for m, targets in IMPORTS.items() if m.startswith("connectors.testing")
               for target, _ in targets if _package(target) != "connectors"]
    assert outside == []


def test_no_module_imports_itself_back():
    graph = {m: {t for t, typing_only in targets if not typing_only} for m, targets in IMPORTS.items()}
    cycles = _strongly_connected(graph)
    assert cycles == [], "import cycles: " + "; ".join(" → ".join(c) for c in cycles)


def test_the_walk_sees_function_local_imports_and_would_report_a_cycle():
    """The checks above are only as good as the walk: it must see an import inside a function and
    find a two-module cycle in a made-up graph."""
    cli_imports = {t for t, _ in IMPORTS["app.cli"]}
    assert "app.cli_common" in cli_imports
    assert _strongly_connected({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; only the components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found

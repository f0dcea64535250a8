"""The import graph of ``ofa_deploy`` has no cycles (issue 13).

Every ``import`` statement of every module is counted, function-local and
``TYPE_CHECKING`` ones included.  ``from x import y`` resolves to module
``x.y`` when that is a module, else to ``x``.  An edge from a module to one
of its own ancestor packages is ignored (a child importing its package's
``__init__`` is not a loop the package can untangle).

Cycles that remain are listed in ``KNOWN_CYCLES`` / ``KNOWN_PACKAGE_CYCLES``;
the lists must only shrink: the tests fail on a new cycle and on a listed
cycle that no longer exists.

Not import statements, so not edges here: the executor plugins named by string in
`executors.EXECUTOR_PLUGINS` ("ray" -> `scale.ray_executor`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import ofa_deploy

PACKAGE_DIR = Path(ofa_deploy.__file__).resolve().parent

# Strongly connected components (of size > 1) still present, module level.
KNOWN_CYCLES: set[frozenset[str]] = set()

# Same, between the top-level subpackages / modules of ``ofa_deploy``.
KNOWN_PACKAGE_CYCLES: set[frozenset[str]] = set()


def _modules() -> dict[str, Path]:
    """Map dotted module names (without the ``ofa_deploy.`` prefix) to files."""
    out: dict[str, Path] = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["ofa_deploy", *parts])] = path
    return out


def _targets(module: str, node: ast.Import | ast.ImportFrom, is_package: bool,
             modules: dict[str, Path]) -> list[str]:
    """The package modules one import statement depends on."""
    found: list[str] = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            name = alias.name
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.append(name)
        return found
    if node.level:
        base = module.split(".")
        if not is_package:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    for alias in node.names:
        candidate = f"{source}.{alias.name}"
        if candidate in modules:
            found.append(candidate)
        elif source in modules:
            found.append(source)
    return found


def import_graph() -> dict[str, set[str]]:
    """Edges module -> imported package modules, names without the prefix."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(module, node, path.name == "__init__.py", modules):
                    if target != module and not module.startswith(target + "."):
                        deps.add(target)
        short = module.removeprefix("ofa_deploy").lstrip(".")
        graph[short] = {d.removeprefix("ofa_deploy").lstrip(".") for d in deps}
    return graph


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """Strongly connected components with more than one node (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: set[frozenset[str]] = set()
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    result.add(frozenset(component))
    return result


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Collapse modules onto their top-level subpackage of ``ofa_deploy``."""
    out: dict[str, set[str]] = {}
    for module, deps in graph.items():
        if not module:
            continue
        top = module.split(".")[0]
        for dep in deps:
            dep_top = dep.split(".")[0] if dep else ""
            if dep_top and dep_top != top:
                out.setdefault(top, set()).add(dep_top)
    return out


def _describe(found: set[frozenset[str]]) -> str:
    return "\n".join(sorted(" <-> ".join(sorted(c)) for c in found))


def test_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    assert "profiling.lut" in graph and "spaces.layer_spec" in graph


def test_no_new_module_cycles() -> None:
    found = cycles(import_graph())
    new = found - KNOWN_CYCLES
    assert not new, f"new import cycles:\n{_describe(new)}"


def test_known_module_cycles_still_exist() -> None:
    found = cycles(import_graph())
    gone = KNOWN_CYCLES - found
    assert not gone, f"cycles fixed, remove them from KNOWN_CYCLES:\n{_describe(gone)}"


def test_no_new_package_cycles() -> None:
    found = cycles(package_graph(import_graph()))
    new = found - KNOWN_PACKAGE_CYCLES
    assert not new, f"new package-level import cycles:\n{_describe(new)}"


def test_known_package_cycles_still_exist() -> None:
    found = cycles(package_graph(import_graph()))
    gone = KNOWN_PACKAGE_CYCLES - found
    assert not gone, (
        f"package cycles fixed, remove them from KNOWN_PACKAGE_CYCLES:\n{_describe(gone)}")


def test_cycle_finder_detects_a_loop() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {
        frozenset({"a", "b", "c"})}
    assert cycles({"a": {"b"}, "b": set()}) == set()

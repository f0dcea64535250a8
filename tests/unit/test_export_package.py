"""Static checks of the export package: no import cycles (function-level imports count), no global RNG seeding,
no bare ValueError/TypeError raised, no test helpers in the library."""
from __future__ import annotations

import ast
from pathlib import Path

import ofa_deploy.export

PKG = "ofa_deploy.export"
PKG_DIR = Path(ofa_deploy.export.__file__).parent


def _module_name(path: Path) -> str:
    return PKG if path.name == "__init__.py" else f"{PKG}.{path.stem}"


def _sources() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(PKG_DIR.glob("*.py"))}


def import_graph() -> dict[str, set[str]]:
    """module -> export-package modules it imports anywhere (top level, functions, TYPE_CHECKING blocks)."""
    trees = _sources()
    graph: dict[str, set[str]] = {name: set() for name in trees}
    for name, tree in trees.items():
        package = PKG if name == PKG else name.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([base] if base else [])])
                # `from pkg import sub` imports the submodule `sub`; `from pkg import name` runs pkg's __init__
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in trees else base for a in node.names]
            for target in targets:
                while target and target not in trees and target.startswith(PKG + "."):
                    target = target.rsplit(".", 1)[0]  # a.b.c where a.b is the module
                if target in trees and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [m0, m1, ..., m0], or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_cycle_finder_sees_function_level_imports_and_cycles():
    graph = import_graph()
    assert f"{PKG}.runners" in graph[f"{PKG}.common"]  # imported inside reference_for()
    assert f"{PKG}.onnx" in graph[PKG]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_export_package_has_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle in ofa_deploy.export: " + " -> ".join(cycle or [])


def _calls(tree: ast.AST) -> list[str]:
    """Dotted names of every call whose callee is a plain attribute chain (``torch.manual_seed(...)``)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts, f = [], node.func
            while isinstance(f, ast.Attribute):
                parts.append(f.attr)
                f = f.value
            if isinstance(f, ast.Name):
                out.append(".".join([f.id, *reversed(parts)]))
    return out


GLOBAL_SEEDING = {"torch.manual_seed", "torch.random.manual_seed", "torch.cuda.manual_seed_all", "np.random.seed",
                  "numpy.random.seed", "random.seed"}


def test_the_library_never_seeds_global_rngs():
    assert "torch.manual_seed" in _calls(ast.parse("torch.manual_seed(0)"))
    assert "torch.Generator" in _calls(ast.parse("torch.Generator().manual_seed(0)"))  # a local generator is fine
    bad = {name: sorted(GLOBAL_SEEDING & set(_calls(tree))) for name, tree in _sources().items()}
    assert not {k: v for k, v in bad.items() if v}


def test_test_helpers_live_under_tests_and_benchmarks_do_not_import_conftest():
    assert not (PKG_DIR / "testing.py").exists()
    repo = PKG_DIR.parents[1]
    for path in sorted((repo / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.startswith(("tests.conftest", "ofa_deploy.export.testing")) for n in names), path

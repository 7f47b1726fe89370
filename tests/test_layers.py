"""The library's import graph: no cycle, every module imports on its own, no local import hiding a cycle."""

import ast
import os
import subprocess
import sys

import cktat_core

PKG = os.path.dirname(cktat_core.__file__)
MODULES = sorted(f[:-3] for f in os.listdir(PKG) if f.endswith(".py") and f != "__main__.py")


def _imports(module: str) -> tuple[set[str], set[str]]:
    """The package's modules that `module` imports at module level, and those it imports inside functions."""
    tree = ast.parse(open(os.path.join(PKG, f"{module}.py")).read())
    top, local = set(), set()

    def targets(node):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            return {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cktat_core."):
            return {node.module.split(".")[1]}
        return set()

    for node in tree.body:
        top |= targets(node)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                local |= targets(inner)
    return {m for m in top if m in MODULES}, {m for m in local if m in MODULES}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == "open":
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        state[n] = "done"
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_module_level_imports_have_no_cycle():
    graph = {m: _imports(m)[0] for m in MODULES}
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph))}"


def test_no_local_import_breaks_a_cycle():
    """Function-local imports of library modules are allowed only where the same imports at the top would close no
    cycle (lazy imports that keep `cktat --help` or torch-free modules light), not to hide a cycle."""
    graph = {m: set.union(*_imports(m)) for m in MODULES}
    assert _cycle(graph) is None, f"a local import hides the cycle {' -> '.join(_cycle(graph))}"


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_every_module_imports_on_its_own():
    code = ("import importlib, sys\n"
            f"for m in {MODULES!r}:\n"
            "    for k in [k for k in sys.modules if k.startswith('cktat_core')]:\n"
            "        del sys.modules[k]\n"
            "    importlib.import_module('cktat_core.' + m)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]

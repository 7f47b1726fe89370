"""The import graph of the library (`cktat_core`) and of the book's package (`cktat_book`): no cycle, every module
imports on its own, no local import hiding a cycle, and one direction only: the book imports the library, the
library never the book (the `cktat` command imports the book's runner inside the two commands that run it)."""

import ast
import os
import subprocess
import sys

import cktat_book
import cktat_core

PACKAGES = {"cktat_core": os.path.dirname(cktat_core.__file__), "cktat_book": os.path.dirname(cktat_book.__file__)}
MODULES = sorted(f"{p}.{f[:-3]}" for p, d in PACKAGES.items() for f in os.listdir(d)
                 if f.endswith(".py") and f != "__main__.py")
LIBRARY = [m for m in MODULES if m.startswith("cktat_core.")]
# the `cktat` commands that run the book (`cktat reproduce`, `cktat runs`) import it when they are called
BOOK_COMMANDS = {("cktat_core.cli", "cmd_reproduce"), ("cktat_core.cli", "cmd_runs")}


def _path(module: str) -> str:
    package, name = module.split(".")
    return os.path.join(PACKAGES[package], f"{name}.py")


def _targets(node, package: str) -> set[str]:
    """The modules of the two packages an import statement names ("cktat_core.train")."""
    if isinstance(node, ast.ImportFrom) and node.level == 1:
        names = [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
        return {f"{package}.{n}" for n in names}
    if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
        parts = node.module.split(".")
        return {f"{parts[0]}.{parts[1]}"} if len(parts) > 1 else {f"{parts[0]}.{a.name}" for a in node.names}
    if isinstance(node, ast.Import):
        return {".".join(a.name.split(".")[:2]) for a in node.names if a.name.split(".")[0] in PACKAGES}
    return set()


def _imports(module: str) -> tuple[set[str], set[str]]:
    """The modules of the two packages that `module` imports at module level, and those it imports inside
    functions, each local import with the function it sits in (`_local_imports`)."""
    package = module.split(".")[0]
    tree = ast.parse(open(_path(module)).read())
    top = set().union(*(_targets(node, package) for node in tree.body))
    local = set().union(*(t for _, t in _local_imports(module))) if _local_imports(module) else set()
    return {m for m in top if m in MODULES}, {m for m in local if m in MODULES}


def _local_imports(module: str) -> list[tuple[str, set[str]]]:
    """(function name, modules it imports) for every import inside a function of `module`."""
    package = module.split(".")[0]
    tree = ast.parse(open(_path(module)).read())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                found = _targets(inner, package)
                if found:
                    out.append((node.name, found))
    return out


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
    """Function-local imports are allowed only where the same imports at the top would close no cycle (lazy imports
    that keep `cktat --help` or torch-free modules light), not to hide a cycle."""
    graph = {m: set.union(*_imports(m)) for m in MODULES}
    assert _cycle(graph) is None, f"a local import hides the cycle {' -> '.join(_cycle(graph))}"


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_library_never_imports_the_book():
    """No library module names a module of the book's package, at the top or inside a function, but the two commands
    that run the book; and importing every library module, in a fresh process, loads none of them."""
    named = {m: _imports(m)[0] for m in LIBRARY}
    assert not {m: t for m, t in named.items() if any(x.startswith("cktat_book") for x in t)}
    local = [(m, fn, t) for m in LIBRARY for fn, t in _local_imports(m)
             if any(x.startswith("cktat_book") for x in t) and (m, fn) not in BOOK_COMMANDS]
    assert not local, local
    assert any(any(x.startswith("cktat_book") for x in t) for fn, t in _local_imports("cktat_core.cli")
               if ("cktat_core.cli", fn) in BOOK_COMMANDS)  # the exception is used, so the check above can fail
    code = ("import importlib, sys\n"
            f"for m in {LIBRARY!r}:\n"
            "    importlib.import_module(m)\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] == 'cktat_book'))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_the_library_is_thin():
    """The library holds what training and evaluating a model needs, about 6,500 lines at most; the page machinery
    lives in the book's package."""
    lines = sum(len(open(_path(m)).read().splitlines()) for m in LIBRARY)
    assert lines <= 6500, lines


def test_every_module_imports_on_its_own():
    code = ("import importlib, sys\n"
            f"for m in {MODULES!r}:\n"
            "    for k in [k for k in sys.modules if k.split('.')[0] in ('cktat_core', 'cktat_book')]:\n"
            "        del sys.modules[k]\n"
            "    importlib.import_module(m)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]

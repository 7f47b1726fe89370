"""Running the book: execute every chapter notebook with papermill, then build the site.

Chapters live in `notebooks/NN_name.ipynb` with a papermill `parameters` cell (at least `profile`,
`overrides`, `results` and `progress`). `execute_chapters` writes the executed copies to
`book/chapters/`, which `_toc.yml` lists; `build` runs `jupyter-book build -W -n --keep-going .`, so a
failing cell fails the build. Results of every run land in `results/<profile>/`; runs resume, so executing
the book twice retrains nothing.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from typing import Any

from .errors import CktatError


def repo_root(start: str | None = None) -> str:
    """The folder holding `_toc.yml` (searched upwards from `start`, default the working directory)."""
    here = os.path.abspath(start or os.getcwd())
    while True:
        if os.path.exists(os.path.join(here, "_toc.yml")) and os.path.isdir(os.path.join(here, "cktat_core")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            # an installed package outside a checkout: fall back to the package's parent folder
            return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        here = parent


def results_dir(profile: str, results: str | None = None) -> str:
    """Where a chapter keeps its runs: `results` if given, else `<repo>/results/<profile>`."""
    path = results or os.path.join(repo_root(), "results", profile)
    os.makedirs(path, exist_ok=True)
    return path


def chapter_notebooks(root: str | None = None) -> list[str]:
    return sorted(glob.glob(os.path.join(root or repo_root(), "notebooks", "[0-9][0-9]_*.ipynb")))


def execute_chapters(profile: str = "smoke", overrides: dict[str, Any] | None = None, only: list[str] | None = None,
                     results: str | None = None, out_dir: str | None = None, root: str | None = None) -> list[str]:
    """Execute the chapter notebooks with papermill; returns the executed notebooks' paths."""
    import papermill as pm

    root = root or repo_root()
    out_dir = out_dir or os.path.join(root, "book", "chapters")
    os.makedirs(out_dir, exist_ok=True)
    done = []
    notebooks = chapter_notebooks(root)
    if only:
        notebooks = [nb for nb in notebooks if any(os.path.basename(nb).startswith(o) for o in only)]
        if not notebooks:
            raise CktatError(f"--only: no chapter matches {', '.join(only)}")
    for nb in notebooks:
        target = os.path.join(out_dir, os.path.basename(nb))
        print(f"executing {os.path.relpath(nb, root)} ({profile} profile)", file=sys.stderr, flush=True)
        params = {"profile": profile, "overrides": dict(overrides or {}), "progress": False}
        if results:
            params["results"] = results
        try:
            pm.execute_notebook(nb, target, parameters=params, kernel_name="python3",
                                cwd=os.path.dirname(nb), progress_bar=False)
        except pm.PapermillExecutionError as e:
            raise CktatError(f"{os.path.basename(nb)} failed in cell {e.exec_count}: {e.ename}: {e.evalue}") from None
        _show_only_injected_parameters(target)
        done.append(target)
    return done


def _show_only_injected_parameters(path: str) -> None:
    """In the book, the parameters cell papermill injected (the values used) replaces the defaults cell."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = tags + ["remove-cell"]
    nbformat.write(nb, path)


def build(root: str | None = None) -> str:
    """`jupyter-book build -W -n --keep-going .`; returns the path of the HTML site."""
    root = root or repo_root()
    exe = os.path.join(os.path.dirname(sys.executable), "jupyter-book")
    cmd = [exe if os.path.exists(exe) else "jupyter-book", "build", "-W", "-n", "--keep-going", "."]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        problems = [line for line in lines if "WARNING" in line or "ERROR" in line] or lines[-15:]
        print("\n".join(problems[:30]), file=sys.stderr)
        raise CktatError("jupyter-book build failed (see the lines above)")
    return os.path.join(root, "_build", "html", "index.html")

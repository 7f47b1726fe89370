"""The book's site and the notebooks' links to Colab.

Chapters live in `notebooks/NN_name.ipynb` with a papermill `parameters` cell (at least `profile`,
`overrides`, `results` and `progress`); `cktat_core.reproduce` executes the stale ones into
`book/chapters/`, which `_toc.yml` lists, and `build` runs `jupyter-book build -W -n --keep-going .` on them.
Results of every run land in `results/<profile>/` (or `$CKTAT_RESULTS/<profile>`, which the Colab cell sets to
a Drive folder); runs resume, so executing a chapter twice retrains nothing.

The repository's address is written once, in `_config.yml` (`repository.url` and `repository.branch`). Every
notebook starts with an "Open in Colab" badge built from it (`colab_badge`) and a first code cell that installs
the project on Colab only (`colab_cell_source`); `sync_colab_cells` rewrites both from `_config.yml`.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import yaml

from cktat_core.errors import CktatError

COLAB = "https://colab.research.google.com/github"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB_CELL_TAG = "colab-install"


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
    """Where a chapter keeps its runs: `results` if given, else `$CKTAT_RESULTS/<profile>` when that variable
    is set (the Colab cell sets it to a Drive folder), else `<repo>/results/<profile>`."""
    base = os.environ.get("CKTAT_RESULTS") or os.path.join(repo_root(), "results")
    path = results or os.path.join(base, profile)
    os.makedirs(path, exist_ok=True)
    return path


def chapter_notebooks(root: str | None = None) -> list[str]:
    return sorted(glob.glob(os.path.join(root or repo_root(), "notebooks", "[0-9][0-9]_*.ipynb")))


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


def repository(root: str | None = None) -> tuple[str, str]:
    """(url, branch) of the project's repository, from `_config.yml` (the one place they are written)."""
    path = os.path.join(root or repo_root(), "_config.yml")
    with open(path) as fh:
        repo = (yaml.safe_load(fh) or {}).get("repository") or {}
    url = str(repo.get("url", "")).rstrip("/")
    if not url.startswith("https://github.com/") or len(url.split("/")) != 5:
        raise CktatError(f"{path}: repository.url must be https://github.com/OWNER/NAME (got {url!r})")
    return url, str(repo.get("branch", "main"))


def colab_url(notebook: str, root: str | None = None) -> str:
    """The Colab address that opens `notebook` (a path relative to the repository) from the repository."""
    url, branch = repository(root)
    return f"{COLAB}/{url[len('https://github.com/'):]}/blob/{branch}/{notebook}"


def colab_badge(notebook: str, root: str | None = None) -> str:
    """The markdown "Open in Colab" badge line for `notebook` (relative to the repository)."""
    return f"[![Open in Colab]({BADGE_IMAGE})]({colab_url(notebook, root)})"


def colab_cell_source(root: str | None = None) -> str:
    """The first code cell of every chapter: on Colab, clone the repository, install it, keep results on Drive
    and say how to switch to the paper profile; on any other Jupyter it does nothing."""
    url, branch = repository(root)
    return f'''# On Colab: install the book's code and keep results on Google Drive. Elsewhere this cell does nothing.
import os, subprocess, sys

if "google.colab" in sys.modules:  # Colab imports it in every kernel it starts
    REPO = "{url}"
    if not os.path.isdir("/content/cktat-book"):
        subprocess.run(["git", "clone", "--depth", "1", "--branch", "{branch}", REPO, "/content/cktat-book"], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/cktat-book[book]"], check=True)
    sys.path.insert(0, "/content/cktat-book")
    os.chdir("/content/cktat-book/notebooks")
    try:
        from google.colab import drive

        drive.mount("/content/drive")
        os.environ["CKTAT_RESULTS"] = "/content/drive/MyDrive/cktat-book/results"
    except Exception as e:  # no Drive: results stay in this session
        print(f"Drive not mounted ({{e}}); results go to /content/cktat-book/results and end with the session.")
    import torch

    if torch.cuda.is_available():
        print('GPU runtime: for the paper profile (CIFAR-10, ResNet-18 by our reading) set profile = "paper" and',
              'overrides = {{"download": True}} in the next cell, then run all cells.')
    print("Results go to", os.environ.get("CKTAT_RESULTS", "/content/cktat-book/results") + "/<profile>;",
          "rerunning the notebook resumes every phase from its last checkpoint.")'''


def sync_colab_cells(root: str | None = None) -> list[str]:
    """Make every chapter notebook start with its Colab badge (first line of the first markdown cell) and
    the Colab install cell (first code cell, tagged `colab-install` and `remove-cell`); returns the
    notebooks it rewrote. Nothing else in a notebook is touched."""
    import nbformat

    root = root or repo_root()
    changed = []
    for path in chapter_notebooks(root):
        nb = nbformat.read(path, as_version=4)
        before = nbformat.writes(nb)
        badge = colab_badge(os.path.relpath(path, root).replace(os.sep, "/"), root)
        first_md = next(c for c in nb.cells if c.cell_type == "markdown")
        lines = first_md.source.split("\n")
        if lines and lines[0].startswith("[![Open in Colab]"):
            lines = lines[1:]
            if lines and not lines[0].strip():
                lines = lines[1:]
        first_md.source = "\n".join([badge, ""] + lines)
        source = colab_cell_source(root)
        first_code = next((c for c in nb.cells if c.cell_type == "code"), None)
        if first_code is not None and COLAB_CELL_TAG in first_code.metadata.get("tags", []):
            first_code.source = source
        else:
            cell = nbformat.v4.new_code_cell(source, metadata={"tags": [COLAB_CELL_TAG, "remove-cell"]})
            position = nb.cells.index(first_code) if first_code is not None else len(nb.cells)
            nb.cells.insert(position, cell)
        if nbformat.writes(nb) != before:
            nbformat.write(nb, path)
            changed.append(path)
    return changed


def badges(path: str) -> list[str]:
    """The Colab addresses of the badges in a notebook's markdown cells."""
    with open(path) as fh:
        nb = json.load(fh)
    found = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            found += [part.split(")", 1)[0] for part in text.split(f"]({COLAB}/")[1:]]
    return [f"{COLAB}/{f}" for f in found]

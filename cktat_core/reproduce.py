"""Reproducing the book: execute a chapter notebook only when it is stale.

A chapter `notebooks/NN_name.ipynb` is executed with papermill into `book/chapters/NN_name.ipynb`, the copy
the site is built from. The executed copy's metadata holds, under `cktat.fingerprint`, what it was made from:

- `notebook`: SHA-256 of the source notebook's cells (each cell's type, source and tags; not outputs,
  execution counts or notebook metadata, so opening and saving a notebook without editing it changes nothing);
- `parameters`: the parameters papermill injected (`profile`, `overrides`, `progress`, and `results` when a
  results folder was given);
- `library`: SHA-256 over the path and content of every `.py` file of `cktat_core/`;
- `paper_numbers`: SHA-256 of `cktat_core/paper_numbers.yaml`;
- `results`: every file under the chapter's results folder (`results/<profile>/` or the folder given) that
  the chapter opened for reading during its execution and did not itself write in that execution
  (`result.json` files, summaries, evaluations, checkpoints), with its path relative to that folder and its
  SHA-256.

A chapter is stale, and re-executed, when its executed copy is missing or has no fingerprint, or when any of
the five entries differs from its current value (for `results`: a recorded file whose content changed, or
which is gone, except a checkpoint: checkpoints are not committed, so a clean clone has none, and the
committed `result.json` of their run records what the chapter showed of them). Files that appear later
(another chapter's new runs) do not make it stale, and neither do files the chapter wrote itself (a summary
it rewrote with a new wall time), since those are its own output. `force=True` executes every selected chapter. Deciding reads and hashes files only: a run where
nothing is stale starts no kernel and imports no torch.

How the reads are recorded: the kernel is started with `IPYTHONDIR` pointing at a temporary folder whose IPython
startup file installs a `sys.addaudithook` hook. The hook sees every `open` (and `os.rename`, which atomic
writes end with) of a path under the results folder and appends `r PATH` or `w PATH` to a file that this module
reads back after the chapter ran. The notebook itself is not modified.

A chapter that fails stops the run with one line naming the notebook, the cell and the error; the chapters
executed before it keep their new copies, the failing chapter keeps its previous copy (still stale) and its
partial execution is left in `book/chapters/NN_name.failed.ipynb`.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from .book import chapter_notebooks, repo_root, results_dir
from .errors import CktatError

LIBRARY = os.path.dirname(os.path.abspath(__file__))
METADATA_KEY = "cktat"

_TRACKER = r'''
import os as _os
import sys as _sys


def _cktat_record_reads():
    root, out = _os.environ.get("CKTAT_TRACK_ROOT"), _os.environ.get("CKTAT_TRACK_OUT")
    if not root or not out:
        return
    root = _os.path.realpath(root) + _os.sep
    fd = _os.open(out, _os.O_WRONLY | _os.O_CREAT | _os.O_APPEND, 0o644)
    seen = set()
    writes = _os.O_WRONLY | _os.O_RDWR | _os.O_CREAT | _os.O_APPEND | _os.O_TRUNC

    def hook(event, args):
        try:
            if event == "open":
                path, mode, flags = args
                writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & writes)
            elif event == "os.rename":
                path, writing = args[1], True
            else:
                return
            if isinstance(path, int) or path is None:
                return
            path = _os.path.realpath(_os.fsdecode(path))
            if not path.startswith(root):
                return
            line = ("w " if writing else "r ") + path
            if line not in seen:
                seen.add(line)
                _os.write(fd, (line + "\n").encode())
        except Exception:
            pass

    _sys.addaudithook(hook)


_cktat_record_reads()
del _cktat_record_reads
'''


@dataclass
class Chapter:
    name: str  # e.g. "01_multiview"
    source: str  # notebooks/NN_name.ipynb
    executed: str  # book/chapters/NN_name.ipynb


def chapters(only: list[str] | None = None, root: str | None = None, out_dir: str | None = None) -> list[Chapter]:
    """The chapters to consider, in book order; `only` keeps those whose file name starts with one of its items."""
    root = root or repo_root()
    out_dir = out_dir or os.path.join(root, "book", "chapters")
    found = chapter_notebooks(root)
    if only:
        found = [nb for nb in found if any(os.path.basename(nb).startswith(o) for o in only)]
        if not found:
            raise CktatError(f"--chapters: no chapter matches {', '.join(only)} (chapters are notebooks/NN_*.ipynb)")
    return [Chapter(os.path.basename(nb)[:-len(".ipynb")], nb, os.path.join(out_dir, os.path.basename(nb)))
            for nb in found]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_hash(path: str) -> str:
    with open(path, "rb") as fh:
        return _sha256(fh.read())


def notebook_hash(path: str) -> str:
    """SHA-256 of a notebook's cells: type, source and tags only."""
    with open(path) as fh:
        nb = json.load(fh)
    cells = [{"type": c.get("cell_type"), "source": "".join(c.get("source", [])) if isinstance(c.get("source"), list)
              else c.get("source", ""), "tags": sorted(c.get("metadata", {}).get("tags", []))} for c in nb["cells"]]
    return _sha256(json.dumps(cells, sort_keys=True).encode())


def library_hash(package: str | None = None) -> str:
    """SHA-256 over the relative path and content of every .py file of the library."""
    package = package or LIBRARY
    h = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(package, "**", "*.py"), recursive=True)):
        h.update(os.path.relpath(path, package).encode() + b"\0")
        with open(path, "rb") as fh:
            h.update(fh.read() + b"\0")
    return h.hexdigest()


def parameters(profile: str, overrides: dict[str, Any] | None, results: str | None) -> dict[str, Any]:
    """The parameters injected into every chapter (and recorded in its fingerprint)."""
    params: dict[str, Any] = {"profile": profile, "overrides": dict(overrides or {}), "progress": False}
    if results:
        params["results"] = os.path.abspath(results)
    return params


def fingerprint_inputs(chapter: Chapter, params: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint entries known before execution (all but `results`)."""
    return {"notebook": notebook_hash(chapter.source), "parameters": json.loads(json.dumps(params, sort_keys=True)),
            "library": library_hash(), "paper_numbers": file_hash(os.path.join(LIBRARY, "paper_numbers.yaml"))}


def recorded(executed: str) -> dict[str, Any] | None:
    """The fingerprint stored in an executed chapter, or None (missing copy, unreadable, or none recorded)."""
    try:
        with open(executed) as fh:
            return json.load(fh).get("metadata", {}).get(METADATA_KEY, {}).get("fingerprint")
    except (OSError, ValueError):
        return None


def stale_reasons(chapter: Chapter, params: dict[str, Any], results_folder: str) -> list[str]:
    """Why `chapter` must be re-executed (empty: its executed copy is current). See the module docstring."""
    old = recorded(chapter.executed)
    if old is None:
        return ["not executed yet" if not os.path.exists(chapter.executed) else "no fingerprint"]
    now = fingerprint_inputs(chapter, params)
    reasons = [f"{key.replace('_', ' ')} changed" for key in now if old.get(key) != now[key]]
    for rel, digest in sorted((old.get("results") or {}).items()):
        path = os.path.join(results_folder, rel)
        if not os.path.isfile(path):
            if not rel.endswith(".pt"):  # checkpoints are not committed: a missing one is not a change
                reasons.append(f"{rel} is gone")
        elif file_hash(path) != digest:
            reasons.append(f"{rel} changed")
    return reasons


@contextmanager
def _recording_reads(results_folder: str) -> Iterator[str]:
    """Environment for the kernel that records its opens under `results_folder`; yields the log's path."""
    with tempfile.TemporaryDirectory(prefix="cktat-ipython-") as ipython_dir:
        startup = os.path.join(ipython_dir, "profile_default", "startup")
        os.makedirs(startup)
        with open(os.path.join(startup, "00-cktat-record-reads.py"), "w") as fh:
            fh.write(_TRACKER)
        log = os.path.join(ipython_dir, "opened.txt")
        env = {"IPYTHONDIR": ipython_dir, "CKTAT_TRACK_ROOT": results_folder, "CKTAT_TRACK_OUT": log}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield log
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@contextmanager
def _quiet_stderr(path: str) -> Iterator[None]:
    """Send this process's stderr, and the kernel's it passes on, to `path` while the block runs."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "w") as fh:
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def results_read(log: str, results_folder: str) -> dict[str, str]:
    """{path relative to the results folder: SHA-256} of the files the kernel read and did not write."""
    if not os.path.exists(log):
        return {}
    reads, writes = set(), set()
    with open(log) as fh:
        for line in fh:
            kind, path = line.rstrip("\n").split(" ", 1)
            (writes if kind == "w" else reads).add(path)
    base = os.path.realpath(results_folder)
    return {os.path.relpath(p, base): file_hash(p) for p in sorted(reads - writes)
            if not p.endswith(".tmp") and os.path.isfile(p)}


def execute(chapter: Chapter, params: dict[str, Any], results_folder: str) -> dict[str, Any]:
    """Execute one chapter with papermill into its executed copy, with its fingerprint; returns the fingerprint."""
    import papermill as pm

    inputs = fingerprint_inputs(chapter, params)
    os.makedirs(os.path.dirname(chapter.executed), exist_ok=True)
    partial = chapter.executed[:-len(".ipynb")] + ".failed.ipynb"
    t0 = time.perf_counter()
    with _recording_reads(results_folder) as log:
        try:
            with _quiet_stderr(log + ".stderr"):  # the kernel's own log lines would break the chapter's line
                pm.execute_notebook(chapter.source, partial, parameters=params, kernel_name="python3",
                                    cwd=os.path.dirname(chapter.source), progress_bar=False)
        except pm.PapermillExecutionError as e:
            error = (e.evalue or "").strip().splitlines()
            shown = os.path.relpath(partial) if not os.path.relpath(partial).startswith("..") else partial
            raise CktatError(f"{os.path.basename(chapter.source)}: cell {_source_cell(partial, e.cell_index)} "
                             f"(In [{e.exec_count}]) failed: {e.ename}: {error[0] if error else ''} "
                             f"(partial execution: {shown})") from None
        except Exception as e:  # the kernel died, did not start, or papermill could not run it
            said = [line for line in _read(log + ".stderr").splitlines() if line.strip()]
            raise CktatError(f"{os.path.basename(chapter.source)}: the kernel failed: {type(e).__name__}: "
                             f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                             f"{' (kernel: ' + said[-1].strip() + ')' if said else ''}") from None
        fingerprint = {**inputs, "results": results_read(log, results_folder)}
    _finish(partial, chapter.executed, fingerprint, time.perf_counter() - t0)
    return fingerprint


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def _source_cell(executed: str, index: int) -> int:
    """The 1-based number, in the source notebook, of cell `index` of its executed copy (papermill inserts
    one cell, the injected parameters, after the `parameters` cell)."""
    import nbformat

    cells = [c for c in nbformat.read(executed, as_version=4).cells  # less the error banner papermill adds
             if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])]
    injected = [i for i, c in enumerate(cells) if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    return index + (0 if injected and index > injected[0] else 1)


def _finish(partial: str, target: str, fingerprint: dict[str, Any], seconds: float) -> None:
    """Hide the default parameters cell (the injected one shows the values used), store the fingerprint, and
    move the executed copy into place atomically."""
    import nbformat

    nb = nbformat.read(partial, as_version=4)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = tags + ["remove-cell"]
    nb.metadata[METADATA_KEY] = {"fingerprint": fingerprint, "seconds": round(seconds, 1)}
    nbformat.write(nb, partial)
    os.replace(partial, target)


def reproduce(profile: str = "smoke", overrides: dict[str, Any] | None = None, only: list[str] | None = None,
              results: str | None = None, force: bool = False, root: str | None = None, out_dir: str | None = None,
              echo=print) -> list[tuple[Chapter, str]]:
    """Re-execute the stale chapters (all with `force`), in book order, printing one line per chapter
    (`reused` or `executed in N s (why)`) and the total. Returns (chapter, "reused" | "executed") pairs."""
    selected = chapters(only, root, out_dir)
    params = parameters(profile, overrides, results)
    folder = os.path.realpath(results_dir(profile, results))
    width = max(len(c.name) for c in selected)
    done, t_start = [], time.perf_counter()
    for chapter in selected:
        reasons = ["--force"] if force else stale_reasons(chapter, params, folder)
        if not reasons:
            echo(f"{chapter.name:<{width}}  reused")
            done.append((chapter, "reused"))
            continue
        echo(f"{chapter.name:<{width}}  ", end="", flush=True)
        t0 = time.perf_counter()
        try:
            execute(chapter, params, folder)
        except BaseException:
            echo("failed")
            raise
        echo(f"executed in {time.perf_counter() - t0:.0f} s ({', '.join(reasons[:3])}"
             f"{', ...' if len(reasons) > 3 else ''})")
        done.append((chapter, "executed"))
    n_exec = sum(1 for _, how in done if how == "executed")
    echo(f"total: {len(done)} chapters, {n_exec} executed, {len(done) - n_exec} reused, "
         f"in {time.perf_counter() - t_start:.0f} s")
    return done


def execute_chapters(profile: str = "smoke", overrides: dict[str, Any] | None = None, only: list[str] | None = None,
                     results: str | None = None, out_dir: str | None = None, root: str | None = None,
                     force: bool = True) -> list[str]:
    """Execute the chapters (every selected one by default); returns the executed notebooks' paths."""
    done = reproduce(profile, overrides, only, results, force, root, out_dir,
                     echo=lambda *a, **k: print(*a, **{**k, "file": sys.stderr}))
    return [chapter.executed for chapter, _ in done]

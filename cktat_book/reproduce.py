"""Reproducing the book: execute a chapter notebook only when it is stale.

A chapter `notebooks/NN_name.ipynb` is executed with papermill into `book/chapters/NN_name.ipynb`, the copy
the site is built from. The executed copy's metadata holds, under `cktat.fingerprint`, what it was made from:

- `notebook`: SHA-256 of the source notebook's cells (each cell's type, source and tags; not outputs,
  execution counts or notebook metadata, so opening and saving a notebook without editing it changes nothing);
- `parameters`: the parameters papermill injected (`profile`, `overrides`, `progress`, and `results` when a
  results folder was given);
- `library`: SHA-256 over the path and content of every `.py` file of `cktat_core/` and `cktat_book/`;
- `paper_numbers`: SHA-256 of `cktat_book/paper_numbers.yaml`;
- `results`: every file under the chapter's results folder (`results/<profile>/` or the folder given) that
  the chapter opened for reading during its execution and did not itself write in that execution
  (`result.json` files, summaries, evaluations, checkpoints), with its path relative to that folder and its
  SHA-256 (null, `ABSENT`, for a file that was not there when the chapter tried to open it).

A chapter is stale, and re-executed, when its executed copy is missing or has no fingerprint, or when any of
the five entries differs from its current value (for `results`: a recorded file whose content changed, or
which is gone, except a checkpoint: checkpoints are not committed, so a clean clone has none, and the
committed `result.json` of their run records what the chapter showed of them), or a file the chapter tried to
open and did not find that is there now (`ABSENT`, a checkpoint again excepted: a page that shows the runs of a
stage that has landed so far looks for the others, `train.read_finished` opens rather than asks, so it is rebuilt
when one lands). Other files that appear later (another chapter's new runs) do not make it stale, and neither do
files the chapter wrote itself (a summary it rewrote with a new wall time), since those are its own output.
`force=True` executes every selected chapter. Deciding reads and hashes files only: a run where nothing is stale
starts no kernel and imports no torch.

How the reads are recorded: the kernel is started with `IPYTHONDIR` pointing at a temporary folder whose IPython
startup file installs a `sys.addaudithook` hook. The hook sees every `open` (and `os.rename`, which atomic
writes end with) of a path under the results folder and appends `r STAMP PATH` (a read, with the file's modification
time and size then), `a PATH` (a read of a file not there at that moment) or `w PATH` to a file that this module reads
back after the chapter ran: a file read that changed before the chapter ended is recorded as `CHANGED`, so the chapter
is executed again. The notebook itself is not modified.

`train=False` (`cktat reproduce --no-train`) executes the stale chapters on what the results folder holds and trains
nothing (`chapter.TRAIN_ENV` for the kernel): a chapter that asks for a run that is not finished there stops
with `chapter.RunPending`, and its page becomes one that names that run and shows no number (`_pending_page`);
its saved claims are withdrawn, so the scorecard counts it as not executed. The fingerprint records the run and
the state of its result.json (`pending`); without training, such a page is current until that result changes,
with training it is always stale. A page that shows the runs landed so far instead (chapter 10, `book_runs.ladder`
through `Chapter.landed`) executes, and its fingerprint records the runs it left out that it would have trained,
each with the state of its result.json (`would_train`; a run retired by a change of settings has one): with training
it is stale while one of them is as it was, since executing it then trains it.
The committed book is built this way while its runs are trained.

A chapter that fails stops the run with one line naming the notebook, the cell and the error; the chapters
executed before it keep their new copies, the failing chapter keeps its previous copy (still stale) and its
partial execution is left in `book/chapters/NN_name.failed.ipynb`.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import cktat_core
from cktat_core.errors import CktatError
from cktat_core.results import duration

from .site import chapter_notebooks, repo_root, results_dir

LIBRARY = os.path.dirname(os.path.abspath(__file__))  # the book's package (its paper_numbers.yaml)
PACKAGES = (os.path.dirname(os.path.abspath(cktat_core.__file__)), LIBRARY)  # what a chapter's code runs
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
            if writing:
                line = "w " + path
            else:
                try:
                    st = _os.stat(path)
                    line = f"r {st.st_mtime_ns}:{st.st_size} {path}"
                except FileNotFoundError:
                    line = "a " + path
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


def library_hash(packages: tuple[str, ...] | None = None) -> str:
    """SHA-256 over the relative path and content of every .py file of the library and of the book's package
    (`PACKAGES`: what a chapter's code runs)."""
    h = hashlib.sha256()
    for package in packages or PACKAGES:
        root = os.path.dirname(package)
        for path in sorted(glob.glob(os.path.join(package, "**", "*.py"), recursive=True)):
            h.update(os.path.relpath(path, root).encode() + b"\0")
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


def pending_state(path: str, results_folder: str) -> str | None:
    """What a pending page waits for, as it stands: a run folder's result.json (its SHA-256, None when absent), or
    a checkpoint ("here" or None)."""
    full = os.path.join(results_folder, path)
    if path.endswith(".pt"):
        return "here" if os.path.isfile(full) else None
    result = os.path.join(full, "result.json")
    return file_hash(result) if os.path.isfile(result) else None


ABSENT = None  # in a fingerprint's `results`: the chapter looked for this file and did not find it
CHANGED = "changed while the chapter ran"  # in place of a SHA-256: no content matches it, so the chapter is stale


def stale_reasons(chapter: Chapter, params: dict[str, Any], results_folder: str, train: bool = True) -> list[str]:
    """Why `chapter` must be re-executed (empty: its executed copy is current). See the module docstring; a page
    waiting for a run is stale when training is allowed, else when what it waits for changed."""
    old = recorded(chapter.executed)
    if old is None:
        return ["not executed yet" if not os.path.exists(chapter.executed) else "no fingerprint"]
    now = fingerprint_inputs(chapter, params)
    reasons = [f"{key.replace('_', ' ')} changed" for key in now if old.get(key) != now[key]]
    waits = old.get("pending")
    if waits and train:
        reasons.append(f"waits for {waits['path']}")
    elif waits and pending_state(waits["path"], results_folder) != waits["state"]:
        reasons.append(f"{waits['path']} changed")
    if train:  # runs the page left out without training (`Chapter.landed`), as they were then: not trained since
        missing = [r for r, state in (old.get("would_train") or {}).items()
                   if pending_state(r, results_folder) == state]
        if missing:
            reasons.append(f"would train {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    for rel, digest in sorted((old.get("results") or {}).items()):
        path = os.path.join(results_folder, rel)
        if rel.endswith(".pt") and (digest is ABSENT or not os.path.isfile(path)):
            continue  # checkpoints are not committed: one missing, or restored, changes no result
        if not os.path.isfile(path):
            if digest is not ABSENT:
                reasons.append(f"{rel} is gone")
        elif digest is ABSENT:
            reasons.append(f"{rel} appeared")
        elif file_hash(path) != digest:
            reasons.append(f"{rel} changed")
    return reasons


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """`env` in this process's environment (which the kernel inherits) while the block runs."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _recording_reads(results_folder: str) -> Iterator[str]:
    """Environment for the kernel that records its opens under `results_folder`; yields the log's path."""
    with tempfile.TemporaryDirectory(prefix="cktat-ipython-") as ipython_dir:
        startup = os.path.join(ipython_dir, "profile_default", "startup")
        os.makedirs(startup)
        with open(os.path.join(startup, "00-cktat-record-reads.py"), "w") as fh:
            fh.write(_TRACKER)
        log = os.path.join(ipython_dir, "opened.txt")
        with _environment({"IPYTHONDIR": ipython_dir, "CKTAT_TRACK_ROOT": results_folder, "CKTAT_TRACK_OUT": log}):
            yield log


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


def results_read(log: str, results_folder: str) -> dict[str, str | None]:
    """{path relative to the results folder: SHA-256} of the files the kernel read and did not write; `ABSENT` for a
    file that was not there when it tried to open it (a run a page looked for that is not trained yet), even where the
    file landed while the chapter executed: the page showed it missing; `CHANGED` for a file that changed after the
    kernel first read it (a run the build rewrote meanwhile): the page showed what it was."""
    if not os.path.exists(log):
        return {}
    reads, absent, writes = {}, set(), set()
    with open(log) as fh:
        for line in fh:
            kind, rest = line.rstrip("\n").split(" ", 1)
            if kind == "r":
                stamp, path = rest.split(" ", 1)
                reads.setdefault(path, stamp)
            else:
                (writes if kind == "w" else absent).add(rest)
    base = os.path.realpath(results_folder)
    out = {os.path.relpath(p, base): ABSENT for p in absent - writes if not p.endswith(".tmp")}
    for p, stamp in reads.items():
        if p in writes or p in absent or p.endswith(".tmp") or not os.path.isfile(p):
            continue
        st = os.stat(p)
        out[os.path.relpath(p, base)] = file_hash(p) if f"{st.st_mtime_ns}:{st.st_size}" == stamp else CHANGED
    return dict(sorted(out.items()))


PENDING = "RunPending"  # the exception a chapter that may not train raises (`chapter.RunPending`)
WOULD_TRAIN = ".would_train"  # beside the reads' log: the runs `Chapter.landed` left out without training


def would_train(log: str) -> list[str]:
    """The runs (`runs/<name>`) a chapter executed without training left out and would have trained
    (`Chapter.landed`), read from the file beside the reads' `log`; [] when none."""
    try:
        with open(log + WOULD_TRAIN) as fh:
            return sorted({line.strip() for line in fh if line.strip()})
    except FileNotFoundError:
        return []


def execute(chapter: Chapter, params: dict[str, Any], results_folder: str, train: bool = True) -> dict[str, Any]:
    """Execute one chapter with papermill into its executed copy, with its fingerprint; returns the fingerprint
    (with "pending" when, not allowed to train, the chapter waits for a run: `_pending_page`)."""
    import papermill as pm

    from .chapter import TRAIN_ENV, WOULD_TRAIN_ENV

    inputs = fingerprint_inputs(chapter, params)
    os.makedirs(os.path.dirname(chapter.executed), exist_ok=True)
    partial = chapter.executed[:-len(".ipynb")] + ".failed.ipynb"
    t0 = time.perf_counter()
    with _recording_reads(results_folder) as log, _environment({TRAIN_ENV: "1" if train else "0",
                                                                WOULD_TRAIN_ENV: log + WOULD_TRAIN}):
        try:
            with _quiet_stderr(log + ".stderr"):  # the kernel's own log lines would break the chapter's line
                pm.execute_notebook(chapter.source, partial, parameters=params, kernel_name="python3",
                                    cwd=os.path.dirname(chapter.source), progress_bar=False)
        except pm.PapermillExecutionError as e:
            error = (e.evalue or "").strip().splitlines()
            if e.ename == PENDING and not train and error:
                path = error[0].split(" ", 1)[0]
                fingerprint = {**inputs, "results": results_read(log, results_folder),
                               "pending": {"path": path, "state": pending_state(path, results_folder)}}
                _pending_page(chapter, partial, params, fingerprint, time.perf_counter() - t0)
                return fingerprint
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
        if not train:
            fingerprint["would_train"] = {r: pending_state(r, results_folder) for r in would_train(log)}
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
    """Hide the default parameters cell and fold the injected one (the values used, a click away on the page, since
    the page says its profile in words), store the fingerprint, and move the executed copy into place atomically."""
    import nbformat

    nb = nbformat.read(partial, as_version=4)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = tags + ["remove-cell"]
        elif "injected-parameters" in tags and "hide-input" not in tags:
            cell.metadata["tags"] = tags + ["hide-input"]
    nb.metadata[METADATA_KEY] = {"fingerprint": fingerprint, "seconds": round(seconds, 1)}
    nbformat.write(nb, partial)
    os.replace(partial, target)


# The stage of `cktat runs` (`book_runs.STAGES`) that trains the runs a chapter waits for, where one stage does.
CHAPTER_STAGES = {"06_capacity": "capacity", "07_ablations": "table3",
                  "10_budget": "headline"}  # chapter 10 waits only for the profile's seeds: it shows the ladder as it lands


GLUED = re.compile(r"```\{glue[^}]*\}.*?```|\{glue[^}]*\}`[^`]*`", re.S)  # a glue directive block, or a role


def without_glue(markdown: str) -> str:
    """A markdown cell without what a run would glue into it: every `{glue:...}` directive block (its options and
    closing fence with it) and every inline glue role."""
    return GLUED.sub("", markdown).strip()


def _pending_page(chapter: Chapter, partial: str, params: dict[str, Any], fingerprint: dict[str, Any],
                  seconds: float) -> None:
    """The page of a chapter waiting for a run: its opening cell (badge and title, without the findings a run
    would have glued) and one paragraph naming the run, written atomically in place of its executed copy; the
    partial execution is removed and the chapter's saved claims are withdrawn (`claims.withdraw`)."""
    import nbformat

    from . import claims

    source = nbformat.read(chapter.source, as_version=4)
    first = next((c for c in source.cells if c.cell_type == "markdown"), None)
    opening = without_glue(first.source if first else "")
    path, profile = fingerprint["pending"]["path"], params["profile"]
    what = "checkpoint" if path.endswith(".pt") else "run"
    stage = CHAPTER_STAGES.get(chapter.name)
    note = (f"**This page is waiting for a {what}.** It reads `{path}`, which the {profile} results do not hold "
            f"yet (the first of the page's runs found missing; others may follow it), so it shows none of its numbers "
            f"rather than ones an earlier version of its code produced. `cktat runs --profile {profile}"
            + (f" --stages {stage}` trains this page's runs" if stage else "` trains the book's runs")
            + f" (a stopped build resumes where it stopped) and `cktat reproduce` then executes this page; the "
            f"notebook, opened in Colab from the badge above, trains what it needs itself once its parameters cell "
            f"names the profile (it opens on `smoke`).")
    page = nbformat.v4.new_notebook(metadata=source.metadata)
    page.cells = [nbformat.v4.new_markdown_cell(opening.strip()), nbformat.v4.new_markdown_cell(note)]
    page.metadata[METADATA_KEY] = {"fingerprint": fingerprint, "seconds": round(seconds, 1)}
    tmp = chapter.executed + ".tmp"
    nbformat.write(page, tmp)
    os.replace(tmp, chapter.executed)
    if os.path.exists(partial):
        os.remove(partial)
    results = params.get("results") or results_dir(profile)
    claims.withdraw(results, chapter.name)


# The profile each chapter of the committed book is executed in: the multi-view mechanism in `smoke`, every table
# on real images in `cpu` (SPEC 8).
BOOK_PROFILES = {"01_multiview": "smoke"}
BOOK_DEFAULT = "cpu"


def book_profile(chapter: Chapter) -> str:
    """The profile `chapter` is executed in for the committed book."""
    return BOOK_PROFILES.get(chapter.name, BOOK_DEFAULT)


def _target(chapter: Chapter, profile: str, root: str, out_dir: str | None) -> Chapter:
    """Where the executed copy of `chapter` in `profile` goes: the book's folder in its book profile, else
    `results/<profile>/chapters/` (a chapter run in another profile never replaces a page of the book); `out_dir`
    when given."""
    if out_dir is None and profile != book_profile(chapter):
        out_dir = os.path.join(root, "results", profile, "chapters")
    if out_dir is None:
        return chapter
    return Chapter(chapter.name, chapter.source, os.path.join(out_dir, os.path.basename(chapter.source)))


def runs_needed(chapter: Chapter, results_folder: str) -> list[str]:
    """The runs (`runs/<name>`) whose result.json the chapter read when it was last executed, in any profile (run
    names do not depend on the profile), or that it left out without training and would train (`would_train`), and
    that are missing from `results_folder`: an estimate of what it will train. A run it looked for and did not find
    (`ABSENT`) is not counted: a page that only shows whether a run is there does not train it."""
    old = recorded(chapter.executed) or {}
    names = sorted({os.path.dirname(rel) for rel, digest in (old.get("results") or {}).items()
                    if rel.startswith("runs" + os.sep) and rel.endswith("result.json") and digest is not ABSENT}
                   | set(old.get("would_train") or {}))
    return [n for n in names if not os.path.isfile(os.path.join(results_folder, n, "result.json"))]


def seconds_per_run(results_folder: str) -> float | None:
    """The median time of the runs finished in `results_folder` (`results.run_seconds`: an epoch during which the
    process was stopped counted at its run's median; None before the first one)."""
    from cktat_core.results import run_seconds

    times = []
    for path in glob.glob(os.path.join(results_folder, "runs", "*", "result.json")):
        try:
            with open(path) as fh:
                t = run_seconds(json.load(fh))[0]
        except (OSError, ValueError):
            continue
        if t > 0:
            times.append(t)
    times.sort()
    return times[len(times) // 2] if times else None


class Progress:
    """The runs left to train over the whole call and the time they should take: one line per run as the
    chapters' kernels report them (`train.RUN_LOG`)."""

    def __init__(self, left: int, per_run: float | None, echo):
        self.left, self.per_run, self.echo = left, per_run, echo

    def estimate(self) -> str:
        if self.left <= 0:
            return "no more runs expected"
        about = f", about {duration(self.left * self.per_run)}" if self.per_run else ""
        return f"about {self.left} run{'s' * (self.left != 1)} left{about}"

    def event(self, line: dict, results_folder: str) -> None:
        name = os.path.relpath(line["run"], results_folder)
        if line["event"] == "start":
            self.echo(f"    {name}: training ({line.get('kind', '')}, {line.get('epochs', '?')} epochs)")
        else:
            self.left -= 1
            self.per_run = self.per_run or line.get("seconds")
            self.echo(f"    {name}: trained in {duration(line.get('seconds', 0))}; {self.estimate()}")


@contextmanager
def _following_runs(progress: Progress, results_folder: str) -> Iterator[None]:
    """Point `train.RUN_LOG` at a fresh file for the kernel and echo each line it appends, while the block runs."""
    import threading

    from cktat_core.train import RUN_LOG

    with tempfile.TemporaryDirectory(prefix="cktat-runs-") as folder:
        log = os.path.join(folder, "runs.jsonl")
        open(log, "w").close()
        saved, stop = os.environ.get(RUN_LOG), threading.Event()
        os.environ[RUN_LOG] = log

        def follow():
            with open(log) as fh:
                while True:
                    line = fh.readline()
                    if line.endswith("\n"):
                        try:
                            progress.event(json.loads(line), results_folder)
                        except (ValueError, KeyError):
                            pass
                    elif stop.is_set():
                        return
                    else:
                        time.sleep(0.5)

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)
            if saved is None:
                os.environ.pop(RUN_LOG, None)
            else:
                os.environ[RUN_LOG] = saved


def check_data(profile: str, overrides: dict[str, Any] | None, names: list[str]) -> None:
    """Before stale chapters of a profile on CIFAR execute: the images they need are there and intact, else one
    DataError line naming the folder to fill (or the file that is truncated or foreign)."""
    from cktat_core.config import from_profile
    from cktat_core.data import MULTIVIEW_DATASETS, load_splits

    cfg = from_profile(profile, overrides)
    if cfg.dataset in MULTIVIEW_DATASETS:
        return
    try:
        load_splits(cfg.dataset, cfg.data_dir, cfg.val_size, cfg.train_limit, cfg.test_limit, cfg.download,
                    cfg.train_per_file)
    except CktatError as e:
        raise CktatError(f"{', '.join(names)} need{'s' * (len(names) == 1)} {cfg.dataset} ({profile} profile): {e}") \
            from None


def reproduce(profile: str | None = None, overrides: dict[str, Any] | None = None, only: list[str] | None = None,
              results: str | None = None, force: bool = False, root: str | None = None, out_dir: str | None = None,
              echo=print, train: bool = True) -> list[tuple[Chapter, str]]:
    """Re-execute the stale chapters (all with `force`), in book order, printing one line per chapter
    (`reused` or `executed in N s (why)`), one line per run a chapter trains (with the runs and time left), and
    the total. Returns (chapter, "reused" | "executed" | "kept" | "pending") pairs; with `train` False nothing is
    trained and a chapter waiting for a run gets a page that says so ("pending", see the module docstring).

    The book (profile None) without the data of a profile keeps that profile's stale chapters as committed ("kept",
    a line says what is stale and where the data goes), so the site still builds; asking for the profile (or
    `force`) stops with the one-line data error instead (`check_data`).

    profile None: the book, every chapter in its own profile (`book_profile`). A profile: the chapters whose book
    profile it is (every chapter when none is, e.g. `paper`), unless `only` picks others; a chapter executed in a
    profile other than its book profile goes to `results/<profile>/chapters/` (`_target`), or to `out_dir`."""
    root = root or repo_root()
    selected = chapters(only, root)
    if profile is not None and not only:
        own = [c for c in selected if book_profile(c) == profile]
        selected = own or selected
    jobs = []  # (chapter to execute, its profile, params, results folder, why stale)
    for chapter in selected:
        prof = profile or book_profile(chapter)
        target = _target(chapter, prof, root, out_dir)
        params = parameters(prof, overrides, results)
        folder = os.path.realpath(results_dir(prof, results))
        jobs.append((target, prof, params, folder, ["--force"] if force else stale_reasons(target, params, folder, train)))
    width = max(len(c.name) for c, *_ in jobs)
    missing = {}  # the book (no profile asked): a profile whose data is not here keeps its committed pages
    for prof in dict.fromkeys(p for _, p, _, _, why in jobs if why):
        try:
            check_data(prof, overrides, [c.name for c, p, _, _, why in jobs if why and p == prof])
        except CktatError as e:
            if profile is not None or force:
                raise
            missing[prof] = str(e)
    kept = [(c, why) for c, p, _, _, why in jobs if why and p in missing]
    jobs = [(c, p, params, f, [] if p in missing else why) for c, p, params, f, why in jobs]
    stale = [(c, f) for c, _, _, f, why in jobs if why]
    needed = {os.path.join(f, n) for c, f in stale for n in runs_needed(c, f)}
    per_run = next((t for t in (seconds_per_run(f) for f in dict.fromkeys(f for _, f in stale)) if t), None)
    progress = Progress(len(needed), per_run, echo)
    if needed:
        echo(f"{len(stale)} stale chapter{'s' * (len(stale) != 1)} to execute; {progress.estimate()} "
             f"(the runs they read when last executed that are not here; median run time measured here"
             f"{': ' + duration(per_run) if per_run else ': none finished yet'})")
    done, t_start = [], time.perf_counter()
    stale_kept = dict((c.name, why) for c, why in kept)
    for chapter, prof, params, folder, reasons in jobs:
        tag = f"{chapter.name:<{width}}" + (f"  [{prof}]" if profile is None else "")
        if chapter.name in stale_kept:
            why = stale_kept[chapter.name]
            echo(f"{tag}  stale ({', '.join(why[:3])}{', ...' if len(why) > 3 else ''}), not executed: its data is "
                 f"not here" + (", the committed page stays" if os.path.exists(chapter.executed) else ""))
            done.append((chapter, "kept"))
            continue
        if not reasons and not force and prof not in missing and any(how in ("executed", "pending") for _, how in done):
            # a chapter executed in this call may have rewritten what this one reads (the scorecard reads the
            # claims every chapter before it saves): decided again now, not at the start
            reasons = stale_reasons(chapter, params, folder, train)
        if not reasons:
            echo(f"{tag}  reused")
            done.append((chapter, "reused"))
            continue
        echo(f"{tag}  executing ({', '.join(reasons[:3])}{', ...' if len(reasons) > 3 else ''})", flush=True)
        t0 = time.perf_counter()
        try:
            with _following_runs(progress, folder):
                fingerprint = execute(chapter, params, folder, train)
        except BaseException:
            echo(f"{tag}  failed")
            raise
        where = "" if os.path.dirname(chapter.executed) == os.path.join(root, "book", "chapters") else \
            f" into {os.path.relpath(chapter.executed, root)}"
        if "pending" in fingerprint:
            echo(f"{tag}  waits for {fingerprint['pending']['path']}: its page says so{where}")
            done.append((chapter, "pending"))
            continue
        echo(f"{tag}  executed in {time.perf_counter() - t0:.0f} s{where}")
        done.append((chapter, "executed"))
    n_exec = sum(1 for _, how in done if how == "executed")
    n_kept = sum(1 for _, how in done if how == "kept")
    n_wait = sum(1 for _, how in done if how == "pending")
    echo(f"total: {len(done)} chapters, {n_exec} executed, {len(done) - n_exec - n_kept - n_wait} reused"
         + (f", {n_wait} waiting for runs" if n_wait else "") + (f", {n_kept} stale but kept" if n_kept else "") + f", in {time.perf_counter() - t_start:.0f} s")
    for prof, err in missing.items():
        echo(f"the stale {prof} chapters were not executed; to execute them: {err}")
    return done


def execute_chapters(profile: str = "smoke", overrides: dict[str, Any] | None = None, only: list[str] | None = None,
                     results: str | None = None, out_dir: str | None = None, root: str | None = None,
                     force: bool = True) -> list[str]:
    """Execute the chapters (every selected one, all by default, whatever their book profile) in `profile`;
    returns the executed notebooks' paths."""
    root = root or repo_root()
    only = only or [c.name for c in chapters(None, root)]
    done = reproduce(profile, overrides, only, results, force, root, out_dir,
                     echo=lambda *a, **k: print(*a, **{**k, "file": sys.stderr}))
    return [chapter.executed for chapter, _ in done]

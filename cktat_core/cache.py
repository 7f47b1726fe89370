"""Results computed from a run's weights, cached as JSON with the request that produced them.

A clone holds the committed results, never the checkpoints. A chapter re-executed there reads what was computed
from the weights (an attack suite, attribution maps, a teacher's softened labels) from these files instead of
training the run again. A cached file is reused only when it was computed from the same request: the same
arguments and the same weights. The weights are named by the run that wrote them (`weights_identity`: the
training history its result.json records), which a clone has; only a checkpoint that no run claims is named by
its file (path, size and time). A run trained again (`train.restore_checkpoint`) writes another history, so what was computed
from its earlier weights is computed again, never shown beside the new run's numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any, Callable

from .checkpoint import write_text_atomic

FILE_KEYS = ("checkpoint", "size", "mtime")  # which file: absent from a clone, where checkpoints are not committed
PHASES = ("teacher", "student")  # a run folder's phase subfolders, as `train.run` writes them


def run_of_checkpoint(path: str) -> tuple[str, dict] | None:
    """(run folder, its result.json) of the finished run that wrote checkpoint `path` (<run>/last.pt,
    <run>/teacher/last.pt or <run>/student/last.pt), or None when no result.json claims it."""
    folder = os.path.dirname(os.path.abspath(path))
    for _ in range(3):
        result = os.path.join(folder, "result.json")
        if os.path.isfile(result):
            with open(result) as fh:
                return folder, json.load(fh)
        folder = os.path.dirname(folder)
    return None


def phase_history(path: str, folder: str, saved: dict) -> list[dict] | None:
    """The per-epoch history that run `folder` (result.json `saved`) records for the phase that wrote `path`:
    a stand-alone teacher run's own, else its `teacher` or `student` phase's; None when it records none."""
    if "kind" in saved:  # a stand-alone teacher run (`train.teacher_run`)
        return saved.get("history")
    phase = os.path.relpath(os.path.abspath(path), folder).split(os.sep)[0]
    return (saved.get(phase) or {}).get("history") if phase in PHASES else None


def losses(history: list[dict]) -> list[float]:
    """The training losses of a history, epoch by epoch: what tells two trainings of one recipe apart (a second
    training that repeats the first bit for bit writes the same list, and its weights are the same too)."""
    return [h.get("train_loss") for h in history]


def weights_identity(path: str) -> str | None:
    """Which training wrote checkpoint `path`: a digest of its file name and of the training losses its run's
    result.json records (`phase_history`). Needs the run's result.json, not the checkpoint; None when no finished
    run claims the file."""
    found = run_of_checkpoint(path)
    history = phase_history(path, *found) if found else None
    if history is None:
        return None
    text = json.dumps([os.path.basename(path), losses(history)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def request(checkpoint: str, **fields) -> dict:
    """What a result computed from `checkpoint` depends on: the file (path, size, time), the weights' identity
    (`weights_identity`, absent when no run claims the file) and `fields`."""
    stat = os.stat(checkpoint) if os.path.isfile(checkpoint) else None
    identity = weights_identity(checkpoint)
    return {"checkpoint": os.path.abspath(checkpoint), "size": stat and stat.st_size,
            "mtime": stat and stat.st_mtime, **({"weights": identity} if identity else {}), **fields}


def reused(out: str | None, now: dict) -> dict | None:
    """The result saved at `out` when it was computed from the same request `now`, else None. When both name the
    weights' identity (the training their run records), that identity decides and the file keys are not compared:
    a results folder may move, and a clone's copy of a committed checkpoint has its own time. When the checkpoint
    is not here, the file keys are not compared either; otherwise (no run claims the file) the same file must be
    here, unchanged."""
    if not (out and os.path.isfile(out)):
        return None
    with open(out) as fh:
        previous = json.load(fh)
    saved, now = previous.get("request") or {}, json.loads(json.dumps(now))
    if now["size"] is None or ("weights" in saved and "weights" in now):
        saved, now = ({k: v for k, v in r.items() if k not in FILE_KEYS} for r in (saved, now))
    return previous if saved == now else None


def computed(checkpoint: str, out: str, compute: Callable[[str], dict], restore: Callable[[str], Any] | None = None,
             **fields) -> dict:
    """`compute(checkpoint)` (a JSON-able dict), read from `out` when it was computed from the same request, else
    computed and written there with its request and the seconds it took. `restore(checkpoint)` is called first where the weights are
    needed (`Chapter.weights`: a missing checkpoint of a committed run is trained again)."""
    saved = reused(out, request(checkpoint, **fields))
    if saved is not None:
        return saved
    if restore is not None:
        restore(checkpoint)
    start = time.perf_counter()
    result = compute(checkpoint)
    result = {**result, "seconds": time.perf_counter() - start,
              "request": request(checkpoint, **fields)}  # a restored run: a new identity
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_text_atomic(json.dumps(result, separators=(",", ":")), out)  # compact: attribution maps are long lists
    return result

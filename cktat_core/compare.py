"""Methods side by side under one budget: the data behind the book's comparison chapters.

`compare(["pgdat", "trades", "cktat"], "smoke", "runs/compare")` trains every method with the same profile,
seed and overrides, one run directory per method (`OUT/<method>`), and trains each kind of frozen teacher the
methods need once (`OUT/teacher_clean`, `OUT/teacher_robust`), handing it to every method as `teacher_checkpoint`.
Everything resumes: rerunning the same call continues unfinished runs and re-reads finished ones (`train.run`
returns a finished run's saved result; a checkpoint's test evaluation is computed once and stored beside it).
The summary JSON ("cktat-compare/2") holds, per method, the flat rows (`report.row`) of the last and of the
best-on-validation epoch, the training seconds, and the resolved config, the versions and the device::

    {"schema": "cktat-compare/2", "profile": "smoke", "methods": ["pgdat", ...], "attack": "pgd20",
     "config": {...}, "overrides": {...}, "versions": {...}, "device": "cpu", "data": {"train": 3500, ...},
     "teachers": {"clean": {"checkpoint": "teacher_clean/teacher/last.pt", "train_seconds": 21.0, "last": ROW}},
     "rows": [{"method": "pgdat", "paper": "PGDAT", "teacher": "none", "train_seconds": 60.2,
               "wall_seconds": 75.3, "run_dir": "pgdat", "checkpoint": "pgdat/student/last.pt",
               "last": ROW, "best": {"epoch": 9, **ROW}}],
     "wall_seconds": 290.1}

    ROW = {"natural": 91.3, "pgd20": 70.2, "natural single_view": 84.0, "pgd20 multi_view": 97.1, ...,
           "probe_f1": 88.0, "probe_f2": 12.0}

`wall_seconds` of a method is the time of its `train.run` call in this invocation (small when the run was
already finished; a summary file that differs from a new one only in these times is not rewritten, so re-reading
finished runs changes no file); `train_seconds` sums its epochs' training time from the history, so it survives resumes.
On disk, paths are relative to the summary's own folder, so a results folder can be moved, committed or copied
to a Drive; `load_summary` reads a summary back with those paths resolved (and reads schema 1 too).
"""

from __future__ import annotations

import json
import os
import time

from . import checkpoint as ckpt
from .config import from_profile, resolve
from .errors import ConfigError
from .methods import METHODS, frozen_teacher
from .results import row
from .runtime import versions
from .train import run, teacher_run

SCHEMA = "cktat-compare/2"


def _train_seconds(history: list[dict]) -> float:
    return float(sum(r.get("train_seconds", 0.0) for r in history))


def _teacher(cfg, kind: str, out_dir: str) -> dict:
    """Train (or resume, or re-read) the `kind` teacher of `cfg` under out_dir; its checkpoint and test numbers."""
    t = teacher_run(cfg, kind, out_dir)
    return {"checkpoint": t["checkpoint"], "kind": kind, "train_seconds": _train_seconds(t["history"]),
            "best_epoch": t["best_epoch"], "used": t["used"], "last": row(t["evaluation"])}


def compare(methods: list[str], profile: str = "smoke", out_dir: str = "runs/compare",
            overrides: dict | None = None, summary_path: str | None = None) -> dict:
    """Train `methods` under one profile, seed and budget; write and return the summary (see the module doc)."""
    if not methods:
        raise ConfigError("methods", "name at least one method")
    overrides = dict(overrides or {})
    overrides.pop("method", None)
    cfgs = {m: from_profile(profile, {**overrides, "method": m}) for m in methods}  # validates every method
    t_start = time.perf_counter()
    os.makedirs(out_dir, exist_ok=True)

    teachers: dict[str, dict] = {}
    for m, cfg in cfgs.items():
        kind = frozen_teacher(METHODS[m], cfg)
        if kind is None or cfg.teacher_checkpoint:
            continue
        if kind not in teachers:
            teachers[kind] = _teacher(cfg, kind, os.path.join(out_dir, f"teacher_{kind}"))
        cfgs[m] = cfg.replace(teacher_checkpoint=teachers[kind]["checkpoint"])

    rows = []
    attack = None
    for m, cfg in cfgs.items():
        t0 = time.perf_counter()
        run_dir = os.path.join(out_dir, m)
        res = run(cfg, run_dir)
        attack = f"pgd{res['config']['eval_steps']}"
        entry = {"method": m, "paper": METHODS[m].title, "teacher": METHODS[m].teacher,
                 "train_seconds": _train_seconds(res["student"]["history"]),
                 "wall_seconds": time.perf_counter() - t0, "run_dir": run_dir,
                 "checkpoint": os.path.join(run_dir, res["student"]["checkpoints"]["last"]),
                 "last": row(res["student"]["last"])}
        if "best" in res["student"]:
            entry["best"] = {"epoch": res["student"]["best"]["epoch"], **row(res["student"]["best"])}
        if "teacher" in res:
            entry["teacher_checkpoint"] = os.path.join(run_dir, res["teacher"]["checkpoint"])
        rows.append(entry)
        data, device = res["data"], res["device"]

    first = resolve(next(iter(cfgs.values()))).to_dict()
    first.pop("method")
    first.pop("teacher_checkpoint")
    summary = {"schema": SCHEMA, "profile": profile, "methods": list(methods), "attack": attack,
               "seed": first["seed"], "config": first, "overrides": overrides, "versions": versions(),
               "device": device, "data": data, "teachers": teachers, "rows": rows,
               "wall_seconds": time.perf_counter() - t_start}
    path = summary_path or os.path.join(out_dir, "summary.json")
    summary = _map_paths(summary, os.path.abspath)
    base = os.path.dirname(os.path.abspath(path))
    on_disk = _map_paths(summary, lambda p: os.path.relpath(p, base))
    if _changed(path, on_disk):
        ckpt.write_text_atomic(json.dumps(on_disk, indent=1) + "\n", path)
    summary["path"] = path
    return summary


def _without_clock(summary: dict) -> dict:
    """A summary without the wall-clock times of the invocation that wrote it."""
    return {**{k: v for k, v in summary.items() if k != "wall_seconds"},
            "rows": [{k: v for k, v in r.items() if k != "wall_seconds"} for r in summary["rows"]]}


def _changed(path: str, summary: dict) -> bool:
    """Whether the summary at `path` differs from `summary` in more than its wall-clock times: re-reading finished
    runs leaves the file (and every chapter that read it) as it was."""
    try:
        with open(path) as fh:
            saved = json.load(fh)
    except (OSError, ValueError):
        return True
    return _without_clock(saved) != _without_clock(json.loads(json.dumps(summary)))


def _map_paths(summary: dict, f) -> dict:
    """A copy of `summary` with f applied to its file paths (rows' run_dir and teacher_checkpoint, teachers'
    checkpoint)."""
    rows = [{**r, **{k: f(r[k]) for k in ("run_dir", "checkpoint", "teacher_checkpoint") if r.get(k)}}
            for r in summary["rows"]]
    teachers = {k: {**t, "checkpoint": f(t["checkpoint"])} for k, t in summary["teachers"].items()}
    return {**summary, "rows": rows, "teachers": teachers}


def load_summary(path: str) -> dict:
    """A summary written by `compare`, its paths resolved against the summary's folder."""
    with open(path) as fh:
        summary = json.load(fh)
    base = os.path.dirname(os.path.abspath(path))
    summary = _map_paths(summary, lambda p: os.path.normpath(os.path.join(base, p)))
    if summary.get("schema") == "cktat-compare/1":
        summary = _from_schema_1(summary)
    summary["path"] = path
    return summary


def _from_schema_1(summary: dict) -> dict:
    """A schema-1 summary (rows with nested groups and probes) with its rows flattened as `report.row` makes them."""
    def flat(r: dict) -> dict:
        r = dict(r)
        for key in [k for k in r if k.endswith("_groups")]:
            r.update({f"{key[:-len('_groups')]} {g}": v for g, v in r.pop(key).items()})
        r.update(r.pop("probes", {}))
        return r

    rows = [{**r, "last": flat(r["last"]), **({"best": flat(r["best"])} if "best" in r else {})}
            for r in summary["rows"]]
    teachers = {k: {**t, "last": flat(t["last"])} for k, t in summary["teachers"].items()}
    return {**summary, "schema": SCHEMA, "rows": rows, "teachers": teachers}


def format_summary(summary: dict) -> str:
    """A plain-text table of a comparison: last-epoch test accuracies and training time per method."""
    a = summary["attack"]
    head = f"{'method':<12}{'natural':>9}{a.upper():>9}{'nat 1-view':>12}{'nat multi':>11}{a + ' 1-view':>14}" \
           f"{'probe f1':>10}{'probe f2':>10}{'train s':>9}"
    lines = [f"{summary['profile']} profile, seed {summary['seed']}, last epoch, test accuracy (%):", head]

    def f(v):
        return "-" if v is None else f"{v:.2f}"

    for r in summary["rows"]:
        x = r["last"]
        lines.append(f"{r['paper']:<12}{f(x['natural']):>9}{f(x[a]):>9}{f(x.get('natural single_view')):>12}"
                     f"{f(x.get('natural multi_view')):>11}{f(x.get(f'{a} single_view')):>14}"
                     f"{f(x.get('probe_f1')):>10}{f(x.get('probe_f2')):>10}{r['train_seconds']:>9.0f}")
    for kind, t in summary["teachers"].items():
        lines.append(f"{kind} teacher: natural {f(t['last']['natural'])}, {a} {f(t['last'][a])}, "
                     f"{t['train_seconds']:.0f} s")
    lines.append(f"wall time {summary['wall_seconds']:.0f} s")
    return "\n".join(lines)

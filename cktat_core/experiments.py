"""Methods side by side under one budget: the data behind the book's comparison chapters.

`compare(["pgdat", "trades", "cktat"], "smoke", "runs/compare")` trains every method with the same profile,
seed and overrides, one run directory per method (`OUT/<method>`), and trains each kind of teacher the methods
need once (`OUT/teacher_clean`, `OUT/teacher_robust`), handing it to every method as `teacher_checkpoint`.
Everything resumes: rerunning the same call continues unfinished runs and re-reads finished ones. The summary
JSON ("cktat-compare/1") holds, per method, the test accuracies of the last and of the best-on-validation epoch
(natural, PGD, each by sample group, and the probe sets of the multi-view data), the training seconds, and the
resolved config, the versions and the device of the run::

    {"schema": "cktat-compare/1", "profile": "smoke", "methods": ["pgdat", ...], "attack": "pgd20",
     "config": {...}, "overrides": {...}, "versions": {...}, "device": "cpu", "data": {"train": 3500, ...},
     "teachers": {"clean": {"checkpoint": ".../teacher/last.pt", "train_seconds": 21.0, "last": ROW}},
     "rows": [{"method": "pgdat", "paper": "PGDAT", "teacher": "none", "train_seconds": 60.2,
               "wall_seconds": 75.3, "run_dir": ".../pgdat", "last": ROW, "best": {"epoch": 9, **ROW}}],
     "wall_seconds": 290.1}

    ROW = {"natural": 91.3, "pgd20": 70.2, "natural_groups": {"single_view": 84.0, "multi_view": 97.1, ...},
           "pgd20_groups": {...}, "probes": {"probe_f1": 88.0, "probe_f2": 12.0}}

`wall_seconds` of a method is the time of its `train.run` call in this invocation (small when the run was
already finished); `train_seconds` sums its epochs' training time from the history, so it survives resumes.
On disk, `run_dir` and the checkpoint paths are relative to the summary's own folder, so a results folder can
be moved, committed or copied to a Drive; `load_summary` reads a summary back with those paths resolved (the
dict `compare` returns holds them resolved already).
"""

from __future__ import annotations

import json
import os
import time

from . import checkpoint as ckpt
from .config import from_profile, resolve
from .data import Splits, load_splits
from .errors import ConfigError
from .methods import METHODS
from .runtime import pick_device, versions
from .train import final_evaluation, run, teacher_kind, train_teacher

SCHEMA = "cktat-compare/1"


def _row(ev: dict, attack: str) -> dict:
    """The numbers of one final evaluation that a comparison reports."""
    t = ev["test"]["attacks"]
    row = {"natural": t["natural"]["accuracy"], attack: t[attack]["accuracy"]}
    if "groups" in t["natural"]:
        row["natural_groups"] = t["natural"]["groups"]
        row[f"{attack}_groups"] = t[attack]["groups"]
    probes = {k: v["attacks"]["natural"]["accuracy"] for k, v in ev.items() if k.startswith("probe")}
    if probes:
        row["probes"] = probes
    for name, gap in ev.get("protocol_gap", {}).items():
        row[name] = t[name]["accuracy"]
        row[f"{name}_minus_{attack}"] = gap
    return row


def _train_seconds(history: list[dict]) -> float:
    return float(sum(r.get("train_seconds", 0.0) for r in history))


def _teacher(cfg, kind: str, out_dir: str) -> dict:
    """Train (or resume, or re-read) the `kind` teacher of `cfg` under out_dir; its checkpoint and test numbers."""
    rcfg = resolve(cfg)
    device = pick_device(rcfg.device)
    s = load_splits(rcfg.dataset, rcfg.data_dir, rcfg.val_size, rcfg.train_limit, rcfg.test_limit, rcfg.download)
    splits = Splits(s.train.to(device), s.val.to(device), s.test.to(device),
                    {k: v.to(device) for k, v in s.probes.items()})
    model, res = train_teacher(rcfg, splits, out_dir, device, kind)
    path = os.path.join(out_dir, "teacher", "best.pt" if rcfg.teacher_select == "best" else "last.pt")
    ev = final_evaluation(model, splits, rcfg, device)
    return {"checkpoint": path, "kind": kind, "train_seconds": _train_seconds(res.history),
            "best_epoch": res.best_epoch, "used": rcfg.teacher_select, "last": _row(ev, f"pgd{rcfg.eval_steps}")}


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
        method = METHODS[m]
        if method.teacher not in ("clean", "robust") or cfg.teacher_checkpoint:
            continue
        kind = teacher_kind(method, cfg)
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
        row = {"method": m, "paper": METHODS[m].title, "teacher": METHODS[m].teacher,
               "train_seconds": _train_seconds(res["student"]["history"]),
               "wall_seconds": time.perf_counter() - t0, "run_dir": run_dir,
               "last": _row(res["student"]["last"], attack)}
        if "best" in res["student"]:
            row["best"] = {"epoch": res["student"]["best"]["epoch"], **_row(res["student"]["best"], attack)}
        if "teacher" in res:
            row["teacher_checkpoint"] = res["teacher"].get("checkpoint")
        rows.append(row)
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
    ckpt.write_text_atomic(json.dumps(_map_paths(summary, lambda p: os.path.relpath(p, base)), indent=1) + "\n", path)
    summary["path"] = path
    return summary


def _map_paths(summary: dict, f) -> dict:
    """A copy of `summary` with f applied to its file paths (rows' run_dir and teacher_checkpoint, teachers'
    checkpoint)."""
    rows = [{**r, **{k: f(r[k]) for k in ("run_dir", "teacher_checkpoint") if r.get(k)}} for r in summary["rows"]]
    teachers = {k: {**t, "checkpoint": f(t["checkpoint"])} for k, t in summary["teachers"].items()}
    return {**summary, "rows": rows, "teachers": teachers}


def load_summary(path: str) -> dict:
    """A summary written by `compare`, its paths resolved against the summary's folder."""
    with open(path) as fh:
        summary = json.load(fh)
    base = os.path.dirname(os.path.abspath(path))
    summary = _map_paths(summary, lambda p: os.path.normpath(os.path.join(base, p)))
    summary["path"] = path
    return summary


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
        g, ga, p = x.get("natural_groups", {}), x.get(f"{a}_groups", {}), x.get("probes", {})
        lines.append(f"{r['paper']:<12}{f(x['natural']):>9}{f(x[a]):>9}{f(g.get('single_view')):>12}"
                     f"{f(g.get('multi_view')):>11}{f(ga.get('single_view')):>14}{f(p.get('probe_f1')):>10}"
                     f"{f(p.get('probe_f2')):>10}{r['train_seconds']:>9.0f}")
    for kind, t in summary["teachers"].items():
        lines.append(f"{kind} teacher: natural {f(t['last']['natural'])}, {a} {f(t['last'][a])}, "
                     f"{t['train_seconds']:.0f} s")
    lines.append(f"wall time {summary['wall_seconds']:.0f} s")
    return "\n".join(lines)

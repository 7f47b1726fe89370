"""Reading what a run wrote: its `result.json`, a final evaluation as one flat row, a duration in words.

What a run cost (`run_seconds`) is read here too: the seconds of its work, with the epochs during which its process
was stopped counted at its median epoch, so a build that shared its machine is not charged for the wait.

Torch-free; the trainer (`train.run`) and `cktat eval` write the files, `compare` and the book's tables read them
through these functions.
"""

from __future__ import annotations

import json
import os
import statistics


def load_result(run_dir: str) -> dict:
    """The `result.json` a finished run wrote into `run_dir`."""
    with open(os.path.join(run_dir, "result.json")) as fh:
        return json.load(fh)


def row(evaluation: dict) -> dict:
    """One final evaluation (`train.final_evaluation`) as the flat row every table of the book is made from.

    Keys: "natural" and each attack by name ("pgd20"), "<attack> <group>" for each sample group of the multi-view
    data ("natural weak_f1", "pgd20 multi_view"), each probe set ("probe_f1", "probe_f2"; under attack
    "probe_f2 pgd20"), and for a method's extra protocols (DUCAT's raw head) "<attack>_minus_<first attack>", the
    protocol gap.
    """
    attacks = evaluation["test"]["attacks"]
    out = {name: a["accuracy"] for name, a in attacks.items()}
    for name, a in attacks.items():
        for group, value in a.get("groups", {}).items():
            out[f"{name} {group}"] = value
    for key, value in evaluation.items():
        if key.startswith("probe"):
            for name, a in value["attacks"].items():
                out[key if name == "natural" else f"{key} {name}"] = a["accuracy"]
    first = next((k for k in attacks if k != "natural"), None)
    for name, gap in evaluation.get("protocol_gap", {}).items():
        out[f"{name}_minus_{first}"] = gap
    return out



def duration(seconds: float) -> str:
    """"40.0 s", "12.5 min", "3.2 h", "2.1 days"."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _histories(res: dict) -> list[list[dict]]:
    return [part.get("history") or [] for part in (res, res.get("teacher") or {}, res.get("student") or {})]


STOPPED = 4.0  # an epoch that took this many times its history's median was not the run's work alone


def stopped_excess(res: dict) -> tuple[float, int]:
    """Seconds by which the epochs that took more than `STOPPED` times their history's median exceed that median,
    and how many such epochs: the process was stopped or shared the machine during them (a build on two cores waits
    while tests run). Histories shorter than four epochs are left as they are."""
    excess, n = 0.0, 0
    for hist in _histories(res):
        t = [h.get("train_seconds", 0.0) + h.get("validation_seconds", 0.0) for h in hist]
        med = statistics.median(t) if len(t) >= 4 else 0.0
        for x in t:
            if med > 0 and x > STOPPED * med:
                excess, n = excess + x - med, n + 1
    return excess, n


def measured_seconds(res: dict) -> float:
    """What the result records of the work itself: every epoch's training and validation seconds (the validation
    where the run records it: runs trained before it was timed do not) and the final test evaluations' attack
    seconds (a teacher trained in the run, the last epoch, and the best epoch where it is another; not a frozen
    teacher's evaluation, which its own run did and the student's result repeats). An epoch during which the process
    was stopped counts at its history's median (`stopped_excess`)."""
    total = sum(h.get("train_seconds", 0.0) + h.get("validation_seconds", 0.0) for hist in _histories(res)
                for h in hist) - stopped_excess(res)[0]
    for part in (res, res.get("teacher") or {}, res.get("student") or {}):
        best = part.get("best") or {}
        other_best = best if best.get("epoch") not in (None, len(part.get("history") or [])) else None
        own_test = "test" in part and "history" in part  # a frozen teacher's test is a copy of its own run's
        for ev in (part.get("evaluation"), part.get("last"), other_best, part if own_test else None):
            attacks = ((ev or {}).get("test") or {}).get("attacks") or {}
            total += sum(a.get("seconds", 0.0) for a in attacks.values())
    return total


def validation_timed(res: dict) -> bool:
    """Whether every epoch of the run records its validation seconds."""
    return all("validation_seconds" in h for hist in _histories(res) for h in hist)


def run_seconds(res: dict) -> tuple[float, bool]:
    """A run's seconds and whether its last process did not train all of it (resumed after an interruption, or
    evaluated again). Such a run records the time of its last process plus its earlier epochs' recorded seconds
    (`resumed_at_epoch`); one written before it did records its last process alone, which is then less than its
    recorded training and evaluation, and that sum counts instead."""
    work = measured_seconds(res)
    wall = float(res.get("wall_seconds") or 0.0)
    if stopped_excess(res)[1]:  # the wall clock ran on while the process was stopped: its recorded work counts
        return work, True
    resumed = any(part.get("resumed_at_epoch") for part in (res, res.get("teacher") or {}, res.get("student") or {}))
    return max(wall, work), resumed or wall < work

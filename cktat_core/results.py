"""Reading what a run wrote: its `result.json`, a final evaluation as one flat row, a duration in words.

Torch-free; the trainer (`train.run`) and `cktat eval` write the files, `compare` and the book's tables read them
through these functions.
"""

from __future__ import annotations

import json
import os


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

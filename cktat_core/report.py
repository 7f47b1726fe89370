"""Turning results files into the rows and tables the book shows, with the paper's numbers beside ours.

Nothing here computes accuracy: it reads what `train.run` / `evaluate.evaluate` wrote. Paper numbers come
from `paper_numbers.yaml` (transcribed from the papers) and are always labelled as the paper's.
"""

from __future__ import annotations

import functools
import json
import os

import yaml

GROUP_COLUMNS = {"single_view": "single-view", "weak_f1": "single-view, feature 1 weak",
                 "weak_f2": "single-view, feature 2 weak", "multi_view": "multi-view"}


@functools.lru_cache(maxsize=1)
def paper_numbers() -> dict:
    """Every number the papers report (CKTAT, RAAT), as transcribed in paper_numbers.yaml."""
    with open(os.path.join(os.path.dirname(__file__), "paper_numbers.yaml")) as fh:
        return yaml.safe_load(fh)


def load_result(run_dir: str) -> dict:
    with open(os.path.join(run_dir, "result.json")) as fh:
        return json.load(fh)


def row(evaluation: dict) -> dict:
    """One final evaluation (`train.final_evaluation`) as the flat row every table of the book is made from.

    Keys: "natural" and each attack by name ("pgd20"), "<attack> <group>" for each sample group of the multi-view
    data ("natural weak_f1", "pgd20 multi_view"), each probe set ("probe_f1", "probe_f2"; under attack
"probe_f2 pgd20"), and for a method's
    extra protocols (DUCAT's raw head) "<attack>_minus_<first attack>", the protocol gap.
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


summary = row  # the name chapters written before `row` use


def markdown_table(rows: list[dict], columns: list[str] | None = None, digits: int = 1,
                   headers: dict[str, str] | None = None) -> str:
    """A GitHub/MyST markdown table; floats rounded to `digits`, missing values shown as a dash."""
    columns = columns or list(rows[0])
    headers = headers or {}

    def cell(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.{digits}f}"
        return str(v).replace("|", "\\|")  # a literal bar, not a column break

    lines = ["| " + " | ".join(headers.get(c, c) for c in columns) + " |",
             "| " + " | ".join("---" for _ in columns) + " |"]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)

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


def summary(evaluation: dict) -> dict:
    """Flatten one `final_evaluation` dict: natural, robust (the first attack after natural), groups, probes."""
    attacks = evaluation["test"]["attacks"]
    robust_name = next((k for k in attacks if k != "natural"), None)
    row = {"natural": attacks["natural"]["accuracy"]}
    if robust_name:
        row[robust_name] = attacks[robust_name]["accuracy"]
    for group, value in attacks["natural"].get("groups", {}).items():
        row[f"natural {group}"] = value
    if robust_name:
        for group, value in attacks[robust_name].get("groups", {}).items():
            row[f"{robust_name} {group}"] = value
    for key, value in evaluation.items():
        if key.startswith("probe"):
            row[key] = value["attacks"]["natural"]["accuracy"]
    return row


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
        return str(v)

    lines = ["| " + " | ".join(headers.get(c, c) for c in columns) + " |",
             "| " + " | ".join("---" for _ in columns) + " |"]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)

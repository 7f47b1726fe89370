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


# ---- Table 4, RAAT and DUCAT
TABLE4_ATTACKS = ["natural", "pgd20", "pgd100", "mim", "cw", "aa"]  # the paper's columns (`table4_columns`)
PAPER_TABLE4_KEYS = {"CKTAT (beta=0)": "CKTAT_beta0", "CKTAT (beta=6)": "CKTAT_beta6"}


def paper_table(table: dict, columns: list[str], keys: dict[str, str] | None = None) -> dict[str, dict]:
    """A table of paper_numbers.yaml (method -> list of numbers) as method -> {column: value}; `keys` renames
    our method labels to the paper's keys (CKTAT (beta=6) -> CKTAT_beta6)."""
    keys = keys or {}
    back = {v: k for k, v in keys.items()}
    return {back.get(m, m): dict(zip(columns, values)) for m, values in table.items()}


def flags_of(*evaluations: dict) -> list[str]:
    """The checks flagged in any of these evaluations (`evaluate` results), "<protocol>: <check>", in order."""
    out = []
    for ev in evaluations:
        out += [f"{ev.get('protocol', '?')}: {f['check']}" for f in ev.get("flags", [])]
    return out


def selection(result: dict, attack: str) -> dict:
    """Which epoch a run's evaluated network comes from and what the epoch best on validation scored on the test
    set: the last epoch's number, the best epoch's number and that checkpoint's natural and `attack` accuracy
    (its final evaluation, `train.run`'s result["student"]["best"])."""
    student = result["student"]
    best = student.get("best")
    return {"last epoch": len(student["history"]), "best epoch": best and best["epoch"],
            "best natural": best and best["test"]["attacks"]["natural"]["accuracy"],
            f"best {attack}": best and best["test"]["attacks"][attack]["accuracy"]}


def table4_row(method: str, evaluation: dict, aa_from: dict | None = None) -> dict:
    """One method under one protocol, as Table 4 shows it: the accuracies of `TABLE4_ATTACKS` (AutoAttack from
    `aa_from`, the standard evaluation, when `evaluation` ran without it: it is the same attack under both
    protocols), NRR (`evaluate.nrr` of natural and AutoAttack accuracy) and the mean of the two, as the evaluation
    computed them (`metrics`), the evaluation's flags, and how many of the checks that ran (a check needing an
    attack the protocol did not run is "not run") passed."""
    attacks = evaluation["attacks"]
    row = {"method": method, "protocol": evaluation["protocol"], "n": evaluation["n"],
           **{c: attacks[c]["accuracy"] for c in TABLE4_ATTACKS if c in attacks}}
    metrics = evaluation["metrics"]
    if "aa" not in row and aa_from is not None:  # natural accuracy is the same under both protocols
        row["aa"], metrics = aa_from["attacks"]["aa"]["accuracy"], aa_from["metrics"]
    row["nrr"], row["clean/AA mean"] = metrics["nrr_aa"], metrics["clean_aa_mean"]
    checks = evaluation.get("checks", {})
    ran = [v for v in checks.values() if not v.startswith("not run")]
    row["checks passed"] = f"{sum(v == 'passed' for v in ran)} of {len(ran)}"
    row["flags"] = ", ".join(f["check"] for f in evaluation.get("flags", [])) or "none"
    return row

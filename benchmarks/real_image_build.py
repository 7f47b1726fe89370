"""What the real-image book cost and whether its profile meets its targets, read from the committed results.

Reads `results/cpu/`: every run's `result.json` (its wall time: training, per-epoch validation and final test
evaluation), every file in `eval/` (an attack suite: the seconds of each attack; a per-image mask or what a chapter
computes from the weights: its seconds, where recorded), the executed chapters' recorded execution time and
the pages still waiting for a run (`chapter_states`: the build is not finished while one stands). Checks the `cpu`
profile's targets:

- PGD-AT, mean of the book's seeds, at least 50% natural and 25% PGD-20 accuracy on the 5,000 test images;
- the median run, evaluation included, at most 600 s;
- every real-image run of the book together at most 10 hours, the later parts (`PARTS`) apart: each has a budget of
  its own.

Torch-free; run it after the book is built: `python benchmarks/real_image_build.py`. Writes
`benchmarks/results/real_image_build.{json,md}`; `--results results/cpu-lr0.1 --name real_image_build_lr0.1` reads
the first build, at lr 0.1, kept beside the book's.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(1, ROOT)

from machine import machine  # noqa: E402

from cktat_book.budget import NOT_TRAINED_YET  # noqa: E402  (what a page says of a run not landed; torch-free)
from cktat_core.results import STOPPED, run_seconds, stopped_excess, validation_timed  # noqa: E402  (torch-free)

SMOKE_CHAPTERS = {"01_multiview"}  # executed on the multi-view data in the book (`reproduce.BOOK_PROFILES`)
TARGETS = {"natural": 50.0, "pgd20": 25.0, "median_run_s": 600.0, "total_h": 10.0}


def load(path: str) -> dict:
    with open(path) as fh:
        return json.load(fh)


def selection_row(pgdat: dict) -> dict | None:
    """The row of `cpu_profile_selection.json` that is this profile's PGD-AT: the seed-0 PGD-AT candidate whose every
    varied setting has the value the run's config records."""
    path = os.path.join(HERE, "results", "cpu_profile_selection.json")
    if not os.path.exists(path):
        return None
    cfg = pgdat["config"]
    return next((r for r in load(path)["rows"] if r["method"] == pgdat["method"] and r["settings"]["seed"] == 0
                 and all(cfg.get(k) == v for k, v in r["settings"].items() if k != "seed")), None)


def validation_natural(pgdat: list[dict]) -> dict:
    """What the validation split said of PGD-AT's natural accuracy: the profile selection's run and the book's own
    seeds at their last epoch, with the binomial standard error of one such estimate (in points)."""
    vals = [r["student"]["history"][-1]["val_natural"] for r in pgdat]
    n = pgdat[0]["data"]["val"]
    row = selection_row(pgdat[0])
    p = statistics.fmean(vals) / 100
    return {"selection": row["val_natural"] if row else None, "seeds": vals, "mean": statistics.fmean(vals), "n": n,
            "se": 100 * (p * (1 - p) / n) ** 0.5}


# The later parts of the build, each with a budget of its own, counted apart: the runs (and the attack-suite files of
# `eval/`) each part trained, told by name. The verdicts: CKTAT at the paper's tau with the committed clean teachers
# (every CKTAT run of Table 3 and the headline, each seed with its own teacher), the controls, PGD-AT's seeds trained
# again for their per-seed AutoAttack and the small student's seeds. The budget: the ladder's rungs and the runs the
# chapters' readings name.
PARTS = {
    "the verdicts (tau 5, committed teachers, independent seeds, controls, per-seed AutoAttack)": {
        "hours": 8.0,
        "runs": lambda n: (n.startswith("cktat") or n.startswith("teacher_clean") or "_init-teacher_clean" in n
                           or n in ("pgdat_seed1", "pgdat_seed2") or n.startswith("pgdat_width16_seed"))
        and not _ladder_or_reading(n),
        "eval": lambda f: (f.endswith("_aa.json") or f.startswith(("CKTAT", "teacher_", "attributions_cktat",
                                                                    "attributions_clean_teacher")))
        and not _ladder_or_reading_eval(f)},
    "the budget ladder and the readings' runs": {
        "hours": 10.0,
        "runs": lambda n: _ladder_or_reading(n),
        "eval": lambda f: _ladder_or_reading_eval(f)},
}


NARROW = re.compile(r"width[48](?!\d)")  # chapter 06's narrower students (widths 8 and 4): the readings' runs


def _ladder_or_reading_eval(name: str) -> bool:
    return "_epochs" in name or bool(NARROW.search(name))


def parts_of(seconds: dict[str, float], eval_seconds: dict[str, float]) -> tuple[dict, float]:
    """Each part of `PARTS` with its runs and seconds (a run or evaluation file counts in the first part that names
    it), and the seconds of everything no part names: the book the 10-hour target is about."""
    parts, taken_runs, taken_files = {}, set(), set()
    for name, part in PARTS.items():
        runs = sorted(k for k in seconds if part["runs"](k) and k not in taken_runs)
        files = [f for f in eval_seconds if part["eval"](f) and f not in taken_files]
        taken_runs.update(runs)
        taken_files.update(files)
        parts[name] = {"runs": runs, "run_seconds": sum(seconds[k] for k in runs),
                       "eval_seconds": sum(eval_seconds[f] for f in files), "budget_hours": part["hours"]}
    rest = sum(t for k, t in seconds.items() if k not in taken_runs)
    rest += sum(t for f, t in eval_seconds.items() if f not in taken_files)
    return parts, rest


def _ladder_or_reading(name: str) -> bool:
    return ("_epochs32" in name or "_epochs64" in name or "attack_steps10" in name or name.startswith("raat_raat_eta")
            or bool(NARROW.search(name)))


PGDAT_SEEDS = ("pgdat", "pgdat_seed1", "pgdat_seed2")
VARIED = ("width", "epochs", "attack_steps", "alpha_ratio", "lr")  # what tells the profile's points apart (PGD-AT's)


def earlier_points(root: str = ROOT, profile: dict | None = None) -> list[dict]:
    """The profile's earlier points, kept as `results/cpu-<tag>/` beside the book's (and `results/cpu/` itself when
    its runs are not those of `profile`, the current settings, yet): per folder holding the book's PGD-AT seeds,
    their settings, test accuracy (last epoch, natural and PGD-20), last-epoch validation natural and robust
    accuracy, and how many student runs the folder holds."""
    out = []
    folders = sorted(glob.glob(os.path.join(root, "results", "cpu-*")))
    for folder in [os.path.join(root, "results", "cpu")] + folders:
        found = [load(p) for p in (os.path.join(folder, "runs", n, "result.json") for n in PGDAT_SEEDS)
                 if os.path.isfile(p)]
        if not found:
            continue
        if folder.endswith(os.sep + "cpu") and (profile is None or
                                                all(found[0]["config"][k] == profile[k] for k in VARIED)):
            continue  # the book's own runs, not an earlier point
        test = lambda a: [r["student"]["last"]["test"]["attacks"][a]["accuracy"] for r in found]
        out.append({"folder": os.path.relpath(folder, root).replace(os.sep, "/"),
                    "settings": {k: found[0]["config"][k] for k in VARIED},
                    "natural": test("natural"), "pgd20": test("pgd20"),
                    "val_natural": [r["student"]["history"][-1]["val_natural"] for r in found],
                    "val_robust": [next(v for k, v in r["student"]["history"][-1].items() if k.startswith("val_pgd"))
                                   for r in found],
                    "pgd20_step": sorted({round(a["spec"]["alpha"] / a["spec"]["eps"], 4) for r in found
                                          for a in [r["student"]["last"]["test"]["attacks"]["pgd20"]]}),
                    "runs": sum(not os.path.basename(os.path.dirname(p)).startswith("teacher_")
                                for p in glob.glob(os.path.join(folder, "runs", "*", "result.json")))})
    return out


def _point_row(p: dict) -> str:
    mean = statistics.fmean
    st = p["settings"]
    return (f"| `{p['folder']}` | {st['width']} | {st['epochs']} | PGD-{st['attack_steps']}, step {st['alpha_ratio']:g} "
            f"eps | {st['lr']:g} | {len(p['natural'])} | {mean(p['val_natural']):.1f} | {mean(p['natural']):.1f} "
            f"({', '.join(f'{v:.1f}' for v in p['natural'])}) | {mean(p['pgd20']):.1f} | {p['runs']} |")


def earlier_markdown(points: list[dict], targets: dict) -> list[str]:
    """The profile's other points as a table: those whose PGD-AT missed a target on the test images (replaced), and
    those that meet both but are not the book's runs yet (a build in progress), with what the replaced ones lost
    from validation to the test images."""
    if not points:
        return []
    mean = statistics.fmean
    meets = lambda p: mean(p["natural"]) >= targets["natural"] and mean(p["pgd20"]) >= targets["pgd20"]
    header = ["| results | width | epochs | training attack | lr | seeds | val natural | test natural | test PGD-20 | "
              "student runs |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines = []
    missed = [p for p in points if not meets(p)]
    if missed:
        gaps = [mean(p["val_natural"]) - mean(p["natural"]) for p in missed]
        lines += ["", "## Earlier points of the profile", "",
                  "Each point was chosen on the validation split; the test images were read only to check the targets. "
                  "These points' PGD-AT missed one, so each was replaced by one with more on validation, and their runs "
                  "are kept beside the book's:", ""] + header + [_point_row(p) for p in missed]
        lines += ["", f"Their PGD-AT lost {', '.join(f'{g:.1f}' for g in gaps)} points of natural accuracy from "
                      f"validation to the test images (mean of the seeds)."]
    other_step = [p for p in points if any(r != 0.25 for r in p.get("pgd20_step") or [0.25])]
    if other_step:
        lines += ["", "The test PGD-20 of " + ", ".join(f"`{p['folder']}`" for p in other_step) + " took the "
                  "training step (" + ", ".join(" and ".join(f"{r:g} eps" for r in p["pgd20_step"] if r != 0.25)
                                                for p in other_step)
                  + "), as every run's did before the test attack had a step of its own; the book's steps by 0.25 eps "
                    "(2/255), as the paper's."]
    building = [p for p in points if meets(p)]
    if building:
        lines += ["", "## A point being built", "",
                  "Its PGD-AT meets both targets on the test images; the rest of its runs are being trained beside "
                  "the book's, which this page still counts above:", ""] + header + [_point_row(p) for p in building]
    return lines


def chapter_states(root: str = ROOT) -> tuple[dict[str, float], dict[str, str | None]]:
    """The real-image chapters' state, read from their executed copies' fingerprints (`book/chapters/*.ipynb`,
    metadata `cktat`): those executed on the `cpu` profile with their execution seconds, and those not: each with
    the result it waits for (the fingerprint's `pending` path, written by `cktat reproduce` in place of a page it
    could not execute without training), or None when the chapter has no `cpu` page at all. A waiting page carries
    the `cpu` profile too, so the profile alone does not tell an executed page. A page executed on the runs landed so
    far, which marks the others *not trained yet* (`marks_not_trained`: chapter 10, and the readings of the chapters
    and the scorecard, while the ladder trains), counts as executed and also as waiting, as `LANDED_SO_FAR`."""
    executed_pages, waiting = {}, {}
    for p in sorted(glob.glob(os.path.join(root, "notebooks", "*.ipynb"))):
        name = os.path.basename(p)[:-len(".ipynb")]
        if name in SMOKE_CHAPTERS:
            continue
        executed = os.path.join(root, "book", "chapters", name + ".ipynb")
        meta = load(executed).get("metadata", {}).get("cktat", {}) if os.path.exists(executed) else {}
        fingerprint = meta.get("fingerprint", {})
        if fingerprint.get("parameters", {}).get("profile") != "cpu":
            waiting[name] = None
        elif fingerprint.get("pending"):
            waiting[name] = fingerprint["pending"].get("path")
        else:
            executed_pages[name] = meta.get("seconds", 0.0)
            if marks_not_trained(load(executed)):
                waiting[name] = LANDED_SO_FAR
    return executed_pages, waiting


LANDED_SO_FAR = "landed so far"  # `chapter_states`: executed on the runs landed so far
# A verdict of NOT_TRAINED_YET as the pages show one: bold after a reading's run, or a table's cell (alone, or before
# the run it waits for); not the words inside a sentence, such as the scorecard's count of such readings.
VERDICT = re.compile(r"(\*\*|\| )" + re.escape(NOT_TRAINED_YET) + r"(\*\*| \||:)")


def marks_not_trained(notebook: dict) -> bool:
    """Whether an executed page shows a run as not trained yet (`VERDICT`) in its outputs."""
    return any(VERDICT.search(text) for cell in notebook.get("cells", []) for out in cell.get("outputs", [])
               for text in _texts(out))


def _texts(output: dict) -> list[str]:
    """The text of one notebook output: a stream's, and each text-like representation of its data."""
    join = lambda v: "".join(v) if isinstance(v, list) else str(v)
    out = [join(output["text"])] if "text" in output else []
    return out + [join(v) for k, v in (output.get("data") or {}).items() if "text" in k or "markdown" in k]


def pending_sentence(waiting: dict[str, str | None]) -> str:
    """The line that says the build is not finished: each chapter not executed on real images, with the result its
    page waits for where it names one, and each executed on the runs landed so far, with the runs it still lacks."""
    if not waiting:
        return ""
    named = [f"{k} (its page waits for `{v}`)" if v else f"{k} (not executed on the `cpu` profile)"
             for k, v in waiting.items() if v != LANDED_SO_FAR]
    partial = [k for k, v in waiting.items() if v == LANDED_SO_FAR]
    out = "**The build is not finished.**"
    if named:
        out += f" Not yet executed on real images: {', '.join(named)}."
    if partial:
        out += f" Executed on the runs landed so far, marking the others {NOT_TRAINED_YET}: {', '.join(partial)}."
    return out + " Every figure below counts what has run so far."


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=os.path.join("results", "cpu"), help="the build's results folder")
    ap.add_argument("--name", default="real_image_build", help="the file name of the figures written")
    args = ap.parse_args(argv)
    folder = os.path.join(ROOT, args.results)
    runs = {os.path.basename(os.path.dirname(p)): load(p) for p in sorted(glob.glob(f"{folder}/runs/*/result.json"))}
    if not any(not k.startswith("teacher_") for k in runs):
        print(f"no finished student run in {args.results}/runs: build the real-image chapters first")
        return 1
    timed = {k: run_seconds(v) for k, v in runs.items()}
    seconds = {k: t for k, (t, _) in timed.items()}
    stopped = sorted(k for k, v in runs.items() if stopped_excess(v)[1])
    resumed = sorted(k for k, (_, r) in timed.items() if r and k not in stopped)
    untimed_validation = [k for k in resumed if not validation_timed(runs[k])]
    students = {k: s for k, s in seconds.items() if not k.startswith("teacher_")}
    suite, eval_seconds = 0.0, {}
    for p in glob.glob(f"{folder}/eval/*.json"):  # attack suites, per-image masks, what chapters compute from weights
        ev = load(p)
        attacks = sum(a.get("seconds", 0.0) for a in ev.get("attacks", {}).values())
        attacks += sum(pt.get("seconds", 0.0) for pt in (ev.get("eps_sweep") or {}).get("points", []))
        eval_seconds[os.path.basename(p)] = attacks or ev.get("seconds", 0.0)
        suite += eval_seconds[os.path.basename(p)]
    book = os.path.abspath(folder) == os.path.join(ROOT, "results", "cpu")  # the executed chapters read this one
    chapters, waiting = chapter_states(ROOT) if book else ({}, {})
    pgdat = [r for k, r in runs.items() if k == "pgdat" or (k.startswith("pgdat_seed") and k[len("pgdat_seed"):].isdigit())]
    acc = {m: [r["student"]["last"]["test"]["attacks"][m]["accuracy"] for r in pgdat] for m in ("natural", "pgd20")}
    total = sum(seconds.values()) + suite
    out = {"machine": machine(), "runs": len(students), "teachers": len(seconds) - len(students),
           "run_seconds_total": sum(seconds.values()), "suite_seconds": suite,
           "median_run_seconds": statistics.median(students.values()) if students else None,
           "slowest": max(students, key=students.get) if students else None,
           "slowest_seconds": max(students.values()) if students else None,
           "results": args.results.replace(os.sep, "/"), "total_hours": total / 3600, "chapter_seconds": chapters,
           "chapters_waiting": waiting, "resumed": resumed, "stopped": stopped, "untimed_validation": untimed_validation,
           "pgdat_seeds": len(pgdat), "pgdat": {m: statistics.fmean(v) if v else None for m, v in acc.items()},
           "pgdat_values": acc, "targets": TARGETS,
           "pgdat_validation": validation_natural(pgdat) if pgdat else None,
           "earlier": earlier_points() if book else []}
    out["machines"] = machines_of(runs, students)
    out["parts"], base = parts_of(seconds, eval_seconds)
    out["base_hours"] = base / 3600
    out["met"] = {"natural": (out["pgdat"]["natural"] or 0) >= TARGETS["natural"],
                  "pgd20": (out["pgdat"]["pgd20"] or 0) >= TARGETS["pgd20"],
                  "median_run_s": (out["median_run_seconds"] or 1e9) <= TARGETS["median_run_s"],
                  "total_h": out["base_hours"] <= TARGETS["total_h"]}
    with open(os.path.join(HERE, "results", args.name + ".json"), "w") as fh:
        json.dump(out, fh, indent=1)
    md = markdown(out)
    with open(os.path.join(HERE, "results", args.name + ".md"), "w") as fh:
        fh.write(md)
    print(md)
    return 0


UNRECORDED = "not recorded (trained before runs recorded their machine)"


def machines_of(runs: dict[str, dict], students: dict[str, float]) -> dict[str, dict]:
    """The machines the student runs were timed on (each run's `machine`), with their runs' count, median and total
    seconds: a build that moved between machines is not one machine's figure."""
    from cktat_book.report import PRECISION_WORDS, trained_precision  # torch-free

    by: dict[str, list[float]] = {}
    arithmetic: dict[str, set] = {}
    for k, s in students.items():
        m = runs[k].get("machine") or UNRECORDED
        by.setdefault(m, []).append(s)
        p, _ = trained_precision(runs[k])
        if p:
            arithmetic.setdefault(m, set()).add(PRECISION_WORDS.get(p, p))
    return {m: {"runs": len(v), "median_seconds": statistics.median(v), "seconds": sum(v),
                "precision": " and ".join(sorted(arithmetic.get(m, ())))} for m, v in by.items()}


def machine_rows(o: dict) -> list[str]:
    """The median-run target per machine, where the runs were timed on more than one: the profile's arithmetic
    depends on the CPU (bf16 autocast where it has bf16 instructions, float32 elsewhere), so is its cost."""
    ms = {k: v for k, v in (o.get("machines") or {}).items() if k != UNRECORDED}
    if len(ms) < 2:
        return []
    goal = o["targets"]["median_run_s"]
    return [
        f"| median run on {name}" + (f", trained in {x['precision']}" if x.get("precision") else "")
        + f" ({x['runs']} run{'s' * (x['runs'] != 1)}) | {x['median_seconds']:.0f} s | <= {goal:.0f} s | "
        + ("met" if x["median_seconds"] <= goal else "**not met**") + " |" for name, x in ms.items()]


def natural_gap(v: dict, test: float, target: float) -> str:
    """Why the natural-accuracy target is missed on the test images: what validation said when the profile was
    chosen, what it says of the book's own runs, and that estimate's noise."""
    own = (f"the book's {len(v['seeds'])} PGD-AT runs measure {v['mean']:.1f}% on the {v['n']:,} validation "
           f"images at their last epoch ({', '.join(f'{x:.1f}' for x in v['seeds'])}), and {test:.1f}% on the test "
           f"images. One validation estimate has a binomial standard error of {v['se']:.1f} points")
    if v["selection"] is None:
        return own[0].upper() + own[1:] + "."
    z = (v["selection"] - target) / v["se"]
    return (f"The profile was chosen on validation, where its PGD-AT run measured {v['selection']:.1f}% natural "
            f"accuracy ({v['selection'] - target:+.1f} points from the target); {own}: the selection's margin over "
            f"the target was {z:.1f} standard errors, {'within' if abs(z) < 2 else 'beyond'} the noise of the split "
            f"that decided it.")


def markdown(o: dict) -> str:
    yes = lambda k: "met" if o["met"][k] else "**not met**"
    m = o["machine"]
    lines = ["# The real-image book: its cost and its targets", "",
             f"Read from the runs finished in `{o['results']}/` (this summary written on {m['cpu']}, {m['cores']} cores; while a build is under way it counts only what has landed). "
             f"Every run's wall time includes its per-epoch validation and its final test evaluation; the attack suite "
             f"of the Table 4 chapters is counted separately.", ""]
    if o["chapters_waiting"]:
        lines += [pending_sentence(o["chapters_waiting"]), ""]
    seeds = lambda k: "-" if o["pgdat"][k] is None else \
        f"{o['pgdat'][k]:.1f}% ({', '.join(f'{v:.1f}' for v in o['pgdat_values'][k])})"
    lines += [
             "| target | measured | goal | |", "| --- | --- | --- | --- |",
             f"| PGD-AT natural accuracy, mean of {o['pgdat_seeds']} seeds (5,000 test images) | {seeds('natural')} | "
             f">= {o['targets']['natural']:.0f}% | {yes('natural')} |",
             f"| PGD-AT PGD-20 accuracy, mean of {o['pgdat_seeds']} seeds | {seeds('pgd20')} | "
             f">= {o['targets']['pgd20']:.0f}% | {yes('pgd20')} |",
             f"| median run, evaluation included ({o['runs']} runs) | {o['median_run_seconds'] or 0:.0f} s | <= "
             f"{o['targets']['median_run_s']:.0f} s | {yes('median_run_s')} |",
             *machine_rows(o),
             f"| every real-image run and evaluation of the book, the later parts below apart | "
             f"{o.get('base_hours', o['total_hours']):.2f} h | <= {o['targets']['total_h']:.0f} h | {yes('total_h')} |",
             "",
             f"With the later parts, the whole build so far: {o['total_hours']:.2f} h.",
             "",
             f"Of the total: {o['runs']} runs and {o['teachers']} teacher{'s' * (o['teachers'] != 1)}, {o['run_seconds_total'] / 3600:.2f} h; "
             f"the attack suites, {o['suite_seconds'] / 3600:.2f} h. The slowest run: `{o['slowest']}`, "
             f"{o['slowest_seconds']:.0f} s."]
    parts = o.get("parts") or {}
    if any(p["runs"] for p in parts.values()):
        lines += ["", "The later parts of the build, counted apart against their own budgets (runs told by name, "
                  "`PARTS` in `benchmarks/real_image_build.py`; their evaluation files beside them):", "",
                  "| part | runs | training and evaluation | attack suites | total | budget |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for name, p in parts.items():
            total = (p["run_seconds"] + p["eval_seconds"]) / 3600
            lines.append(f"| {name} | {len(p['runs'])} | {p['run_seconds'] / 3600:.2f} h | {p['eval_seconds'] / 3600:.2f} h "
                         f"| {total:.2f} h | {p['budget_hours']:.0f} h, {'met' if total <= p['budget_hours'] else '**not met**'} |")
    ms = o.get("machines") or {}
    if len(ms) > 1:
        lines += ["", "The runs were timed on more than one machine, so the figures above mix them: " + "; ".join(
            f"{name}: {x['runs']} runs" + (f" trained in {x['precision']}" if x.get("precision") else "")
            + f", median {x['median_seconds']:.0f} s, {x['seconds'] / 3600:.2f} h" for name, x in ms.items())
            + ". The profile trains with bf16 autocast on a CPU with bf16 instructions and in float32 on one without, "
              "so a machine's median also tells its arithmetic; a run that does not record its arithmetic is given its "
              "machine's (`report.MACHINE_PRECISION`), and `results/cpu/bf16-control` measures what it changes."]
    elif ms:
        only = next(iter(ms))
        lines += ["", "No student run records the machine it was timed on (all were trained before runs recorded it)."
                  if only == UNRECORDED else f"Every student run was timed on {only}."]
    v = o.get("pgdat_validation")
    if v and not o["met"]["natural"]:
        lines += ["", natural_gap(v, o["pgdat"]["natural"], o["targets"]["natural"])]
    if o["resumed"]:
        lines += ["", f"Resumed after an interruption or evaluated again, so timed by their last process and the "
                      f"recorded seconds of the epochs trained before it: {', '.join(o['resumed'])}."]
        if o.get("untimed_validation"):
            lines[-1] += (" Of these, trained before the validation was timed, so their per-epoch validation is not "
                          f"counted: {', '.join(o['untimed_validation'])}.")
    if o.get("stopped"):
        lines += ["", f"Stopped during some epochs (the machine ran something else meanwhile), so timed by their "
                      f"recorded work with each such epoch, one over {STOPPED:g} times its run's median, counted at "
                      f"that median: {', '.join(o['stopped'])}."]
    if o["chapter_seconds"]:
        lines += ["", "Execution time of each executed real-image chapter in its last execution (seconds; small when "
                      "its runs were already trained): " + ", ".join(f"{k} {v:.0f}" for k, v in o["chapter_seconds"].items()) + "."]
    lines += earlier_markdown(o.get("earlier") or [], o["targets"])
    lines += ["", "Generated by `python benchmarks/real_image_build.py`."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

"""How long the book's main command takes on this machine: warm from a fresh clone, and cold in the smoke profile.

Targets on two CPU cores: the README's first command on a fresh clone (the committed chapters, every one current)
in at most 2 minutes, the site build included; a cold reproduction of every chapter in the smoke profile in at most
30 minutes. The real-image chapters' cold build takes hours and is measured by `benchmarks/real_image_build.py`
from the runs themselves.

The script clones the repository's committed HEAD into a temporary folder and runs there:

1. warm: `bash scripts/reproduce.sh`, the README's first command: every chapter must report `reused`;
2. cold (unless `--warm-only`): with the committed smoke results removed, `bash scripts/reproduce.sh smoke`: every
   run of every chapter is trained and evaluated on the multi-view data, and every chapter executed (the copies go
   to `results/smoke/chapters/`, not over the book's pages).

`scripts/setup.sh` (the virtual environment and the installs, which the main command also calls and which is
then a no-op) runs first and is timed on its own. The per-chapter lines the command prints are kept. Results:
`benchmarks/results/reproduce_cpu.{json,md}`, the machine named. Run: `python benchmarks/bench_reproduce.py` (about
30 minutes on two cores; needs no torch itself). `--keep DIR` keeps the clone in DIR.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from machine import machine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINE = re.compile(r"^(\d\d_\S+)\s+(?:\[\w+\]\s+)?(reused|executed in (\d+) s)")


def timed(cmd: list[str], cwd: str) -> tuple[float, str]:
    """(seconds, combined output) of a command that must succeed."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return seconds, proc.stdout + proc.stderr


def chapter_lines(output: str) -> dict[str, dict]:
    """The command's one line per chapter: {"01_multiview": {"status": "executed", "seconds": 435}, ...}."""
    out = {}
    for line in output.splitlines():
        m = LINE.match(line.strip())
        if m:
            out[m.group(1)] = {"status": "reused" if m.group(2) == "reused" else "executed",
                               "seconds": int(m.group(3)) if m.group(3) else 0}
    return out


def without_smoke_results(clone: str) -> None:
    """The clone without its committed smoke runs."""
    shutil.rmtree(os.path.join(clone, "results", "smoke"), ignore_errors=True)
    os.makedirs(os.path.join(clone, "results", "smoke"))


def measure(clone: str, cold: bool) -> dict:
    setup_s, _ = timed(["bash", "scripts/setup.sh"], clone)
    res = {"setup_seconds": setup_s}
    run_s, output = timed(["bash", "scripts/reproduce.sh"], clone)
    res["warm"] = {"seconds": run_s, "chapters": chapter_lines(output)}
    print(f"warm: {run_s:.0f} s", flush=True)
    if cold:
        without_smoke_results(clone)
        run_s, output = timed(["bash", "scripts/reproduce.sh", "smoke"], clone)
        res["cold"] = {"seconds": run_s, "chapters": chapter_lines(output)}
        print(f"cold (smoke): {run_s:.0f} s", flush=True)
    return res


def earlier_cold(path: str) -> dict | None:
    """The cold measurement of an earlier run of this script, with the commit and date it was measured on (kept
    when only the warm command is measured)."""
    if not os.path.isfile(path):
        return None
    with open(path) as fh:
        rec = json.load(fh)
    cold = rec.get("cold")
    return cold and {"commit": rec["commit"], "date": rec["date"], **cold}


def markdown(rec: dict) -> str:
    m, warm, cold = rec["machine"], rec["warm"], rec.get("cold")
    lines = [
        "# Reproducing the book: warm and cold",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; commit {rec['commit']}, {rec['date']}. "
        "Warm: the README's main command (`bash scripts/reproduce.sh`: the book, every chapter in its own profile, "
        "then the site build) on a fresh clone, with the committed chapters and results. "
        + ("Cold: every chapter in the smoke profile (`bash scripts/reproduce.sh smoke`) after removing the "
           "committed smoke results, so every smoke run is trained"
           + (f" (measured earlier, on commit {cold['commit']}, {cold['date']}; this run measured the warm "
              "command only). " if cold and cold.get("commit") else ". ") if cold else
           "The cold smoke reproduction was not measured in this run. ")
        + "Targets: warm <= 2 minutes, cold <= 30 minutes.",
        "",
        "| chapter | warm (the book) | cold (smoke) |",
        "| --- | --- | --- |",
    ]
    names = list(dict.fromkeys([*warm["chapters"], *((cold or {}).get("chapters") or {})]))
    for name in names:
        w = warm["chapters"].get(name, {"status": "-", "seconds": 0})
        c = (cold or {}).get("chapters", {}).get(name)
        ws = w["status"] if w["status"] != "executed" else f"executed in {w['seconds']} s"
        lines.append(f"| {name} | {ws} | {'-' if c is None else c['status'] + ' in ' + str(c['seconds']) + ' s'} |")
    lines += [
        f"| **total, site build included** | **{warm['seconds']:.0f} s** | "
        + (f"**{cold['seconds']:.0f} s ({cold['seconds'] / 60:.1f} min)** |" if cold else "- |"),
        "",
        f"Before both, the first `scripts/setup.sh` (virtual environment, PyTorch and the project) took "
        f"{rec['setup_seconds']:.0f} s.",
        "",
        "Generated by `python benchmarks/bench_reproduce.py`.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", default=None, help="keep the clone in this folder")
    ap.add_argument("--warm-only", action="store_true", help="only the README's first command on a fresh clone")
    args = ap.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    work = tempfile.mkdtemp(prefix="cktat-reproduce-")
    clone = args.keep or os.path.join(work, "book")
    subprocess.run(["git", "clone", "-q", ROOT, clone], check=True)
    out = os.path.join(ROOT, "benchmarks", "results")
    try:
        rec = {"machine": machine(), "commit": commit, "date": datetime.date.today().isoformat(),
               **measure(clone, not args.warm_only)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.warm_only:
        rec["cold"] = earlier_cold(os.path.join(out, "reproduce_cpu.json"))
    with open(os.path.join(out, "reproduce_cpu.json"), "w") as fh:
        json.dump(rec, fh, indent=1)
    with open(os.path.join(out, "reproduce_cpu.md"), "w") as fh:
        fh.write(markdown(rec))
    print(markdown(rec))


if __name__ == "__main__":
    main()

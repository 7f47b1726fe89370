"""Turning results files into the rows and tables the book shows, with the paper's numbers beside ours.

Nothing here computes accuracy: it reads what `train.run` / `evaluate.evaluate` wrote. Paper numbers come
from `paper_numbers.yaml` (transcribed from the papers) and are always labelled as the paper's.
"""

from __future__ import annotations

import functools
import math
import os

import yaml

from cktat_core.results import duration, load_result, row, run_seconds  # noqa: F401  (chapters read them as report.*)

from .noise import ABOVE, BELOW, WITHIN, bits_of, compare_evaluations, p_text, rounded, seeded_columns

GROUP_COLUMNS = {"single_view": "single-view", "weak_f1": "single-view, feature 1 weak",
                 "weak_f2": "single-view, feature 2 weak", "multi_view": "multi-view"}


@functools.lru_cache(maxsize=1)
def paper_numbers() -> dict:
    """Every number the papers report (CKTAT, RAAT), as transcribed in paper_numbers.yaml."""
    with open(os.path.join(os.path.dirname(__file__), "paper_numbers.yaml")) as fh:
        return yaml.safe_load(fh)


def show(markdown: str) -> None:
    """Display `markdown` in the running notebook, or nothing when it is empty (a reading that only exists where a
    claim is not reproduced)."""
    if markdown:
        from IPython.display import Markdown, display

        display(Markdown(markdown))


AA_TITLES = {"apgd": "AA (APGD-CE, APGD-T)", "standard": "AutoAttack"}


def aa_title(version: str) -> str:
    """What a table calls AutoAttack's `version`: the standard one (APGD-CE, APGD-T, FAB-T, Square) is AutoAttack;
    the cheaper two-attack one says which attacks it ran."""
    return AA_TITLES.get(version, f"AutoAttack ({version})")


TABLE4_CKTAT = "cktat.table4_cifar10.CKTAT_beta6"  # the row Sec. 5.2's statements are about (tau 5, beta 6)
TABLE4_TAU = 5.0  # Table 4 states no tau; its beta-6 row is Table 3b's tau-5 row (our reading)
TABLE4_BETA = 6.0  # Table 4's CKTAT (beta = 6), the beta of Table 3a and 3b (our reading: their full rows are that row)
# The directions Sec. 5.2's text states for each CKTAT row of Table 4 against PGD-AT and TRADES, (natural, robust).
# beta 6: "natural generalization is only weaker than Generalist and PGDAT", robust "higher than all selected
# baseline methods"; beta 0: "robust generalization is only weaker than LTD and HAT, and its natural generalization is
# only weaker than Generalist". At any other setting the paper's numbers set the direction (`stated_directions`).
SEC52_STATED = {TABLE4_CKTAT: {"pgdat": (BELOW, ABOVE), "trades": (ABOVE, ABOVE)},
                "cktat.table4_cifar10.CKTAT_beta0": {"pgdat": (ABOVE, ABOVE), "trades": (ABOVE, ABOVE)}}


def stated_directions(key: str | None, other: str) -> tuple[str | None, str | None]:
    """(natural, robust) directions Sec. 5.2 states for the paper's CKTAT row `key` against `other` ("pgdat" or
    "trades"); (None, None) where the text states none and the numbers decide."""
    return SEC52_STATED.get(key, {}).get(other, (None, None))


def paper_cktat(tau: float, beta: float) -> tuple[str, list[float]] | None:
    """The paper's CKTAT row at `tau` and `beta` (CIFAR-10, ResNet-18) and its key in `paper_numbers.yaml`: Table 4 at
    tau 5 with beta 6 or 0 (every attack column), Table 3b at beta 6 (tau 1 to 6), Table 3c at tau 5 (beta 0 to 7),
    natural and PGD accuracy. None where the paper reports no row at that setting: a run at another setting is never
    compared with a row of another."""
    p = paper_numbers()["cktat"]
    if tau == TABLE4_TAU and beta in (0, TABLE4_BETA):
        key = f"CKTAT_beta{beta:g}"
        return f"cktat.table4_cifar10.{key}", p["table4_cifar10"][key]
    if beta == TABLE4_BETA and tau in p["table3b_tau"]:
        return f"cktat.table3b_tau.{tau:g}", p["table3b_tau"][tau]
    if tau == TABLE4_TAU and beta in p["table3c_beta"]:
        return f"cktat.table3c_beta.{beta:g}", p["table3c_beta"][beta]
    return None


TABLE_NAMES = {"table4_cifar10": "Table 4a", "table4_cifar100": "Table 4b", "table1_capacity": "Table 1",
               "table3a_remove": "Table 3a", "table3b_tau": "Table 3b, tau =", "table3c_beta": "Table 3c, beta ="}


def row_name(key: str) -> str:
    """A row of `paper_numbers.yaml` as a page names it: "cktat.table4_cifar10.CKTAT_beta6" -> "Table 4a
    CKTAT_beta6", "cktat.table3b_tau.5" -> "Table 3b, tau = 5"."""
    parts = key.split(".")[1:]
    return " ".join([TABLE_NAMES.get(parts[0], parts[0]), *parts[1:]]) if parts else key


def markdown_table(rows: list[dict], columns: list[str] | None = None, digits: int = 1,
                   headers: dict[str, str] | None = None, missing: str = "-") -> str:
    """A GitHub/MyST markdown table; floats rounded to `digits`, missing values (None) shown as `missing`."""
    columns = columns or list(rows[0])
    headers = headers or {}

    def text(v):
        return str(v).replace("|", "\\|")  # a literal bar (|x|), not a column break

    def cell(v):
        if v is None:
            return missing
        if isinstance(v, float):
            return f"{rounded(v, digits):.{digits}f}"
        return text(v)

    lines = ["| " + " | ".join(text(headers.get(c, c)) for c in columns) + " |",
             "| " + " | ".join("---" for _ in columns) + " |"]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


# ---- Table 4, RAAT and DUCAT
TABLE4_ATTACKS = ["natural", "pgd20", "pgd100", "mim", "cw", "aa"]  # the paper's columns (`table4_columns`)
PAPER_TABLE4_KEYS = {"CKTAT (beta=0)": "CKTAT_beta0", "CKTAT (beta=6)": "CKTAT_beta6"}
# Column headers: our attacks, and the paper's Table 4 (its "PGD" column does not say how many steps; ours is PGD-20)
ATTACK_TITLES = {"natural": "natural", "fgsm": "FGSM", "pgd20": "PGD-20", "pgd100": "PGD-100", "mim": "MIM",
                 "cw": "CW-inf", "aa": "AutoAttack"}
PAPER_TITLES = {**ATTACK_TITLES, "pgd20": "PGD"}


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
    (its final evaluation, `train.run`'s result["student"]["best"]), then the last epoch's two accuracies."""
    student = result["student"]
    best, last = student.get("best"), student["last"]["test"]["attacks"]
    return {"last epoch": len(student["history"]), "best epoch": best and best["epoch"],
            "best natural": best and best["test"]["attacks"]["natural"]["accuracy"],
            f"best {attack}": best and best["test"]["attacks"][attack]["accuracy"],
            "last natural": last["natural"]["accuracy"], f"last {attack}": last[attack]["accuracy"]}


def table4_row(method: str, evaluation: dict, aa_from: dict | None = None) -> dict:
    """One method under one protocol, as Table 4 shows it: the accuracies of `TABLE4_ATTACKS` (AutoAttack from
    `aa_from`, the standard evaluation, when `evaluation` ran without it: it is the same attack under both
    protocols), NRR (`evaluate.nrr` of natural and AutoAttack accuracy) and the mean of the two, as the evaluation
    computed them (`metrics`), the evaluation's flags, and how many of the checks that ran (a check needing an
    attack the protocol did not run is "not run") passed."""
    attacks = evaluation["attacks"]
    line = {"method": method, "protocol": evaluation["protocol"], "n": evaluation["n"],
           **{c: attacks[c]["accuracy"] for c in TABLE4_ATTACKS if c in attacks}}
    metrics = evaluation["metrics"]
    if "aa" not in line and aa_from is not None:  # natural accuracy is the same under both protocols
        line["aa"], metrics = aa_from["attacks"]["aa"]["accuracy"], aa_from["metrics"]
    line["nrr"], line["clean/AA mean"] = metrics["nrr_aa"], metrics["clean_aa_mean"]
    checks = evaluation.get("checks", {})
    ran = [v for v in checks.values() if not v.startswith("not run")]
    line["checks passed"] = f"{sum(v == 'passed' for v in ran)} of {len(ran)}"
    line["flags"] = ", ".join(f["check"] for f in evaluation.get("flags", [])) or "none"
    return line


# ---- what a chapter says about its runs
def mean_sd(values: list[float]) -> str:
    """"49.8 ± 0.6" (mean and standard deviation over seeds; the mean alone for one value)."""
    import statistics

    if len(values) < 2:
        return f"{values[0]:.1f}"
    return f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f}"


def seed_rows(runs: dict[str, list[dict]], attacks: list[str], names: dict[str, str] | None = None) -> list[dict]:
    """Per method, the last epoch's test accuracy under each attack over its seeds: mean ± standard deviation,
    then each seed's value."""
    names = names or {}
    out = []
    for method, results in runs.items():
        line = {"method": names.get(method, method), "seeds": len(results)}
        for a in attacks:
            values = [r["student"]["last"]["test"]["attacks"][a]["accuracy"] for r in results]
            line[a] = mean_sd(values)
            line[f"{a} per seed"] = ", ".join(f"{v:.1f}" for v in values)
        out.append(line)
    return out


def data_sentence(result: dict, data_dir: str = "data") -> str:
    """Which images a run's numbers come from, in one sentence (from its settings and split sizes), and, where the
    CIFAR folder's README says part of its pixels are JPEG re-encodings (`data.cifar_provenance`), how many of the
    images used here that is."""
    s, n = result["settings"], result["data"]
    if s["dataset"] in ("multiview", "multiview_f2"):
        return (f"Images: the multi-view data (chapter 01), {n['train']:,} training, {n['val']:,} validation and "
                f"{n['test']:,} test images.")
    per_file = s.get("train_per_file", 0)
    picked = (f"the first {per_file:,} images of each official training batch" if per_file else
              "every official training image")
    text = (f"Images: real {s['dataset'].upper().replace('CIFAR', 'CIFAR-')}, {picked} ({n['train']:,} for training, "
            f"{n['val']:,} held out for validation) and the first {n['test']:,} official test images.")
    from cktat_core.data import cifar_provenance

    prov = cifar_provenance(s["dataset"], data_dir)
    if prov is None:
        return text
    k = prov["official_per_batch"]
    batches = (n["train"] + n["val"]) // per_file if per_file else None
    train_jpeg = 1 - min(k, per_file) / per_file if per_file else None
    test_jpeg = 1 - min(k, n["test"]) / n["test"]
    psnr = f" (median PSNR {prov['psnr_db']:g} dB against the official pixels)" if prov["psnr_db"] else ""
    shares = (f"{100 * train_jpeg:.0f}% of the training images and " if train_jpeg is not None and batches else "")
    return text + (f" In the copy this book was built from, only the first {k:,} images of each batch carry the "
                   f"official pixels; the others were decoded from a JPEG re-encoding{psnr}: {shares}"
                   f"{100 * test_jpeg:.0f}% of the test images here. With the official download the same images are "
                   f"selected and the figures should agree within sampling noise, not exactly.")


def attacks_sentence(cfg) -> str:
    """The threat model and the three attacks a run meets, in one sentence, from its resolved config: training
    (PGD-`attack_steps` at step `alpha`), the per-epoch validation (more steps at the training step) and the test
    (PGD-`eval_steps` at eps x `eval_alpha_ratio`, SPEC 5)."""
    norm = "L-inf" if cfg.norm == "linf" else "L2"
    per255 = lambda x: f"{x * 255:.3g}/255"
    return (f"{norm} eps = {per255(cfg.eps)}; PGD-{cfg.attack_steps} with step {per255(cfg.alpha)} for training "
            f"(PGD-{cfg.val_attack_steps} at that step on the validation split), PGD-{cfg.eval_steps} with step "
            f"{per255(cfg.eps * cfg.eval_alpha_ratio)} for the test")


def source(fn) -> str:
    """The source of a library function as a markdown code block: the code a page shows is the code that runs."""
    import inspect

    return f"```python\n{inspect.getsource(fn).rstrip()}\n```"


def paper_beside(ours: dict[str, dict[str, list[float]]], paper: dict[str, list[float]], columns: list[str],
                 digits: int = 1) -> list[dict]:
    """Rows for "ours beside the paper's": per method and column, our mean over seeds (± the standard deviation),
    the paper's number (the i-th of its list for the i-th column) and our mean minus it."""
    import statistics

    out = []
    for method, cols in ours.items():
        line = {"method": method}
        for i, c in enumerate(columns):
            values = cols[c]
            line[f"ours {c}"] = mean_sd(values)
            if method in paper:
                line[f"paper {c}"] = f"{paper[method][i]:.{digits}f}"
                line[f"{c}: ours - paper"] = f"{statistics.fmean(values) - paper[method][i]:+.{digits}f}"
        out.append(line)
    return out


def declaration(method: str) -> str:
    """A method's declaration in `methods.py` (the comment above it and its `register(Method(...))` call, with the
    private helpers the call names, `_teacher_term` for CKTAT) as a markdown code block: the loss terms and Table 2's
    row come from these lines."""
    import re

    from cktat_core import methods

    with open(methods.__file__) as fh:
        lines = fh.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f'register(Method("{method}"'))
    end, depth = start, 0
    for end in range(start, len(lines)):
        depth += lines[end].count("(") - lines[end].count(")")
        if depth <= 0:
            break
    helpers = set(re.findall(r"\b(_[a-z][a-z_0-9]*)\(", "\n".join(lines[start:end + 1])))
    first = start
    while first > 0 and not lines[first - 1].startswith("# ---"):
        above = lines[first - 1]
        match = re.match(r"def (_[a-z_0-9]+)\(", above)
        if above.startswith("#") or (match and match.group(1) in helpers):
            first -= 1
        elif not above.strip() or above.startswith((" ", "\t")) or above.startswith(('"""', ")")):
            j = first - 1  # inside or between blocks: keep going only if a needed helper starts above
            while j > 0 and (not lines[j].strip() or lines[j].startswith((" ", "\t"))):
                j -= 1
            m = re.match(r"def (_[a-z_0-9]+)\(", lines[j])
            if m and m.group(1) in helpers:
                first = j
            else:
                break
        else:
            break
    while first < start and not lines[first].strip():
        first += 1
    return "```python\n" + "\n".join(lines[first:end + 1]) + "\n```"


def run_costs(runs: dict[str, dict], teachers: dict[str, dict] | None = None) -> str:
    """What a chapter's runs cost on the machine that trained them, from their result files: the number of runs,
    the total and the median, the longest."""
    import statistics

    every = {**runs, **(teachers or {})}
    seconds = {k: run_seconds(v)[0] for k, v in every.items()}  # stopped epochs counted at the run's median
    longest = max(seconds, key=seconds.get)
    devices = sorted({v.get("device", "?") for v in every.values()})
    return (f"{len(runs)} runs and {len(teachers or {})} teachers, {duration(sum(seconds.values()))} of training and "
            f"evaluation in all on {', '.join(devices)} (median {duration(statistics.median(seconds.values()))}; the "
            f"longest, {longest}, {duration(seconds[longest])}). A finished run is re-read in a moment.")


def bits(result: dict, attack: str = "natural", which: str = "last") -> str:
    """A run's per-image results under `attack` on the test set ("1": right), as its final evaluation stored them."""
    return result["student"][which]["test"]["attacks"][attack]["bits"]


def image_split(result: dict, attack: str, official: int | None) -> dict | None:
    """A run's accuracy on two parts of its test images, compared as two binomial samples (`noise.compare`): with
    `official` (how many of the first test images carry the official pixels, `data.cifar_provenance`), those against
    the JPEG-decoded rest; without, the first half against the second, two samples of one distribution. None for a
    run whose evaluation stored no per-image results."""
    from .noise import compare

    b = result["student"]["last"]["test"]["attacks"][attack].get("bits")
    if not b:
        return None
    k = official if official and official < len(b) else len(b) // 2
    first, rest = b[:k], b[k:2 * k] if not official else b[k:]
    acc = lambda part: 100.0 * part.count("1") / max(len(part), 1)
    c = compare(acc(first), acc(rest), n=min(len(first), len(rest)))
    names = (f"official pixels ({len(first):,})", f"JPEG-decoded ({len(rest):,})") if official else \
        (f"first half ({len(first):,})", f"second half ({len(rest):,})")
    return {"parts": names, "accuracies": (acc(first), acc(rest)), "comparison": c}


def halves(result: dict, attack: str = "natural") -> tuple[float, float] | None:
    """A run's accuracy (%) on the first and on the second half of its test images (None for a run whose evaluation
    stored no per-image results)."""
    b = result["student"]["last"]["test"]["attacks"][attack].get("bits")
    if not b:
        return None
    h = len(b) // 2
    return 100.0 * b[:h].count("1") / max(h, 1), 100.0 * b[h:2 * h].count("1") / max(h, 1)




def mean_of(v: list[float]) -> float:
    """The mean of the values that are numbers (an image without a value is NaN, as `noise.compare_values` skips)."""
    kept = [x for x in v if not math.isnan(x)]
    return sum(kept) / len(kept) if kept else math.nan


def validation_mean(runs: list[dict], key: str, epoch: int = -1) -> float:
    """The mean over `runs` (seeds) of one epoch's validation accuracy `key` ("val_natural"; the last epoch by
    default): where runs end on the images that selected nothing."""
    return sum(r["student"]["history"][epoch][key] for r in runs) / len(runs)


def validation_key(history: list[dict]) -> str:
    """The validation accuracy the trainer selects the best epoch on: its PGD accuracy (natural for clean runs)."""
    keys = [k for k in history[0] if k.startswith("val_pgd")]
    return keys[0] if keys else "val_natural"


def validation_robust_key(runs: list[dict]) -> str:
    """The validation accuracy key the runs select on ("val_pgd10", `validation_key`)."""
    return validation_key(runs[0]["student"]["history"])


def listed(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def teacher_trainings(runs: dict[str, dict], shown: dict | None = None) -> str:
    """Which training of its frozen teacher each of `runs` (name -> `train.run` result) learned from, told apart by
    the teacher's per-image test results that each run recorded: "" when all the runs of each teacher learned from
    one training. Otherwise, per teacher (its run folder), one sentence: the trainings of its recipe, each named by
    its natural test accuracy (a name that does not depend on the page) with the runs it taught, each compared with
    `shown` (the teacher's own evaluation, as the page shows it; `noise.compare_evaluations`, paired on the same test
    images), and whether `shown` taught any of them. Two trainings of one recipe are two teachers: training does
    not repeat bit for bit across machines, so runs trained before a teacher's weights were kept with the results
    learned from trainings of their own."""
    teachers: dict[str, dict[str, tuple[dict, list[str]]]] = {}
    for name, r in runs.items():
        t = r.get("teacher") or {}
        key = bits_of({"test": t["test"]}) if t.get("test") else None
        if key:
            folder = t.get("checkpoint", "").replace("\\", "/").split("/")
            teacher = next((p for p in folder if p not in ("", ".", "..")), "the teacher")
            teachers.setdefault(teacher, {}).setdefault(key, ({"test": t["test"]}, []))[1].append(name)
    acc = lambda e: (e["test"] if "test" in e else e)["attacks"]["natural"]["accuracy"]
    out = []
    for teacher, groups in teachers.items():
        if len(groups) < 2:
            continue
        trainings = sorted(groups.items(), key=lambda kv: -acc(kv[1][0]))
        names = [f"{acc(e):.2f}%" for _, (e, _) in trainings]
        if len(set(names)) < len(names):  # equal accuracies: numbered in the order of the list
            names = [f"{n} ({i + 1})" for i, n in enumerate(names)]
        name = {k: n for (k, _), n in zip(trainings, names)}
        ref = bits_of(shown) if shown is not None else None
        base = ref if ref in groups else trainings[0][0]
        text = (f"These runs learned from {len(trainings)} trainings of the recipe of `{teacher}`, two teachers of one "
                "recipe, named here by their natural test accuracy: "
                + "; ".join(f"the {name[k]} training taught {', '.join(runs_)}" for k, (_, runs_) in trainings) + ". ")
        others = [(k, compare_evaluations(e, groups[base][0])) for k, (e, _) in trainings if k != base]
        text += (f"Against the {name[base]} training, "
                 + "; ".join(f"the {name[k]} one differs {'within noise' if d.word == WITHIN else 'beyond noise'}: "
                             f"{d.evidence(2)}" for k, d in others) + ".")
        if shown is not None:
            text += (f" The teacher this page shows is the {name[base]} training." if ref in groups else
                     f" The teacher this page shows ({acc(shown):.2f}%) taught none of these runs.")
        out.append(text)
    return " ".join(out)


def margins_sentence(spreads: dict, robust: str, titles: dict[str, str], over: dict[str, str] | None = None) -> str:
    """What a single run is judged against in each column (`book_runs.suite_spreads`): the seeds' spread at its
    upper 95% bound (`over`: column -> whose seeds it pools, where the page names them), and which columns take the
    robust attack's spread because no seed is attacked with them."""
    over = over or {}
    own = [c for c in spreads if c in seeded_columns(robust)]
    borrowed = [titles.get(c, c) for c in spreads if c not in own]
    parts = [f"{titles.get(c, c)}, " + (spreads[c].sentence() if spreads[c] else "none (no method has two seeds)")
             + (f" ({over[c]})" if c in over else "") for c in own]
    text = "What a single run is judged against, the seeds' spread at its upper 95% bound: " + "; ".join(parts) + "."
    if borrowed:
        one = len(borrowed) == 1
        text += (f" {listed(borrowed)} {'takes' if one else 'take'} {titles.get(robust, robust)}'s margin: no seed is "
                 f"attacked with {'it' if one else 'them'}.")
    return text


# The two machines the committed `cpu` build ran on, and the arithmetic the profile trained in on each
# (`runtime.training_precision`: bf16 autocast on a CPU with bf16 instructions, float32 on one without): the Intel
# Xeon has them (`benchmarks/results/cpu_run.md` times the profile's bf16 step there); the AMD EPYC the build ran on
# has AVX2 only (its runs' epochs take the float32 time of that machine). The name alone does not tell an EPYC with
# bf16 from one without, so this serves only the runs written before results recorded their `precision`, and a page
# says which of its runs it was inferred for.
MACHINE_PRECISION = {"Intel(R) Xeon(R) Processor, 2 cores": "bf16", "AMD EPYC, 2 cores": "fp32"}
PRECISION_WORDS = {"bf16": "bf16 autocast", "fp16": "fp16 autocast", "fp32": "float32", "mixed": "mixed arithmetic"}


def trained_precision(result: dict) -> tuple[str | None, bool]:
    """The arithmetic a run's training took and whether it is inferred: its recorded `precision` (`train.trained_in`:
    bf16, fp16, fp32 or mixed), else its machine's (`MACHINE_PRECISION`, inferred), else (None, False)."""
    if result.get("precision"):
        return result["precision"], False
    guess = MACHINE_PRECISION.get(result.get("machine"))
    return guess, guess is not None


def precision_sentence(runs: dict[str, list[dict]], control: dict[str, list[dict]] | None = None,
                       robust: str = "pgd20") -> str:
    """Whether the runs a page compares (label -> its runs) trained in one arithmetic: "" when every run whose
    arithmetic is known shares one; else which trained in which (a label whose runs differ is listed with its
    count per arithmetic; runs whose arithmetic is not known are named apart) and, from `control` (precision ->
    PGD-AT's seeds trained in it: `book_runs.precision_control`), how far that recipe's seeds moved between bf16 and
    float32, in natural and `robust` accuracy, by Welch's t-test over the seeds with its 95% interval."""
    from .noise import compare

    of = {label: [trained_precision(r) for r in rs if r is not None] for label, rs in runs.items()}
    known = list(dict.fromkeys(p for ps in of.values() for p, _ in ps if p))
    if len(known) < 2:
        return ""
    word = lambda p: PRECISION_WORDS.get(p, p or "not recorded")
    names = {label: [p for p, _ in ps] for label, ps in of.items() if ps}
    by = {p: [label for label, ps in names.items() if set(ps) == {p}] for p in known + [None]}
    mixed = [f"{label} ({', '.join(f'{word(p)} for {ps.count(p)} of its {len(ps)} runs' for p in dict.fromkeys(ps))})"
             for label, ps in names.items() if len(set(ps)) > 1]
    groups = [f"{'In ' if not i else 'in '}{word(p)}: {listed(labels)}"
              for i, (p, labels) in enumerate((p, labels) for p, labels in by.items() if labels)] + (
        [f"in more than one: {listed(mixed)}"] if mixed else [])
    inferred = sorted({label for label, ps in of.items() for _, guess in ps if guess})
    text = ("The runs on this page did not all train in one arithmetic, because the build ran on machines with "
            "and without bf16 instructions (every evaluation is in float32). " + "; ".join(groups) + "."
            + (f" For the runs written before results recorded their arithmetic ({listed(inferred)}), it is "
               f"inferred from the machine each names." if inferred else ""))
    if not all((control or {}).get(p) for p in ("bf16", "fp32")):
        return text
    acc = lambda p, a: [r["student"]["last"]["test"]["attacks"][a]["accuracy"] for r in control[p]]
    said = []
    for a in ("natural", robust):
        c = compare(acc("fp32", a), acc("bf16", a))
        found = "no difference detectable" if c.word == WITHIN else "a difference beyond chance"
        said.append(f"{ATTACK_TITLES.get(a, a)} {rounded(c.difference, 2):+.2f} points (95% interval \u00b1"
                    f"{c.half_width:.2f}; {p_text(c.p)}: {found})")
    n = (len(control["fp32"]), len(control["bf16"]))
    seeds = f"{n[0]} seeds each" if n[0] == n[1] else f"{n[0]} and {n[1]} seeds"
    return text + (f" PGD-AT's seeds trained on both machines ({seeds}, the same settings; bf16 on the one with the "
                   f"instructions, float32 on the other) differ, float32 minus bf16, by {' and '.join(said)}, by "
                   f"Welch's t-test over the seeds: the arithmetic, the machines' kernels and the trainer's commits "
                   f"between the two trainings together.")

"""Chapter 08 (the CKTAT paper's Table 4), and the rows chapter 09 shares: runs, attack suites, claims, readings.

A row is a label (the paper's), a method with the fields it changes, and the stem of its evaluation files.
`trained` gets every row's run through the chapter's shared runs folder: PGDAT, TRADES and CKTAT from
`Chapter.compare` (the runs chapters 02-04 use), the others from `Chapter.variant` (runs/mart, runs/cktat_beta0,
...), so a run is trained once for the whole book. `evaluated` runs the Table 4 attack suite under both protocols
with the same calls and file names as the evaluation chapter (`<out>/eval/<stem>_standard.json`,
`<stem>_compat-generalist.json`), so a checkpoint is evaluated once; a smaller image count than that chapter's
gets files of its own (`..._n200.json`). `masks` stores which test images each model gets right under its own
PGD-20 (`eval_checkpoint.per_image_correct`).

The page's claims and sentences: the orderings against the paper's (`ordering`, `rank_agreement`), where CKTAT
stands (`top_of`), one row against another (`suite_pair`), which protocol the paper's numbers resemble
(`protocol_distance`, `protocol_sentence`), which of the paper's statements its own numbers show only within their
noise (`paper_noise_sentence`), what the runs' own evaluation covers (`own_evaluation_sentence`) and our readings
(`warm_start_sentence`, `natural_lead_reading`), with what a reading's untrained run would cost against the budget
of the ladder and the readings' runs (`readings_plan`, `beyond_budget`; `book_runs.long_rows_cost` prices the rows).
"""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass, field

from cktat_core.checks import noise_margin
from cktat_core.eval_checkpoint import evaluate_checkpoint, per_image_correct
from cktat_core.results import run_seconds

from . import budget
from .chapter import Chapter
from .claims import (LEVEL, NOT_BELOW, REPRODUCED, UNTESTABLE, WITHIN_NOISE, WORDS, Claim, judged, paper_margin, side,
                     untestable, verdict)
from .noise import ABOVE, BELOW, WITHIN, p_text
from .noise import spearman as spearman_test
from .report import PAPER_TABLE4_KEYS, TABLE4_ATTACKS, listed, load_result, mean_of, paper_numbers, paper_table

SHARED = ["pgdat", "trades", "cktat"]  # the compare run of chapters 02-04
COMPAT_ATTACKS = "natural,fgsm,pgd20,pgd100,mim,cw"  # AutoAttack runs once, under the standard protocol
HEADERS = {"natural": "natural", "pgd20": "PGD-20", "pgd100": "PGD-100", "mim": "MIM", "cw": "CW-inf", "aa": "AA",
           "nrr": "NRR", "clean/AA mean": "(natural + AA) / 2"}


@dataclass(frozen=True)
class Row:
    label: str  # as the paper's table writes it
    method: str
    fields: dict = field(default_factory=dict)
    stem: str = ""  # evaluation files: <out>/eval/<stem>_<protocol>.json (default: the label)

    @property
    def file_stem(self) -> str:
        return self.stem or self.label


# CKTAT Table 4 (CIFAR-10 and CIFAR-100, ResNet-18). LTD starts from the clean teacher (the paper's row says
# "clean training model initialization"; `ltd` initialises from its teacher by default).
TABLE4 = (Row("PGDAT", "pgdat"), Row("TRADES", "trades"), Row("MART", "mart"), Row("LBGAT", "lbgat"),
          Row("LTD", "ltd"), Row("HAT", "hat"), Row("Generalist", "generalist"),
          Row("CKTAT (beta=0)", "cktat", {"beta": 0.0}, "CKTAT_beta0"),
          Row("CKTAT (beta=6)", "cktat", {"beta": 6.0}, "CKTAT"))
# RAAT Table 1 (the paper's spellings), then DUCAT and CKTAT beside them.
RAAT_TABLE1 = (Row("PGD-AT", "pgdat", stem="PGDAT"), Row("TRADES", "trades"), Row("MART", "mart"),
               Row("Cons-AT", "cons_at"), Row("RAAT", "raat"), Row("RAAT++", "raat_pp", stem="RAATpp"),
               Row("DUCAT", "ducat"), Row("CKTAT", "cktat", {"beta": 6.0}))


# Test images of the attack suite per profile (every test image elsewhere): 200 in smoke; 1,000 on real images, where
# 200 would leave a binomial error of about 3 points, as large as the differences between methods.
SUITE_IMAGES = {"smoke": 200, "cpu": 1000}
# AutoAttack's version per profile ("standard" elsewhere): "apgd" (APGD-CE, APGD-T) where the budget does not allow
# FAB-T and Square: on two CPU cores the standard version costs several times the apgd version per image
# (`benchmarks/bench_cpu_run.py` times both; the Benchmarks page), hours the real-image book's budget does not have.
AA_VERSIONS = {"smoke": "apgd", "cpu": "apgd"}
AA_WORDS = {"standard": "APGD-CE, APGD-T, FAB-T and Square: the standard AutoAttack; the paper's tables say \"AA\" "
                         "and name no version",
            "apgd": "APGD-CE and APGD-T only: the cheaper version without FAB-T and Square"}


def evaluation_limit(profile: str, overrides: dict, eval_limit: int | None = None) -> int:
    """Test images of an attack suite: `eval_limit`, else the overrides' test_limit, else the profile's
    `SUITE_IMAGES` (0: all): the count chapters 04, 08 and 09 share, so their files are computed once."""
    if eval_limit is not None:
        return eval_limit
    return overrides.get("test_limit") or SUITE_IMAGES.get(profile, 0)


def aa_version(profile: str, asked: str | None = None) -> str:
    """The AutoAttack version of a profile's suite (`AA_VERSIONS`), unless one is asked for."""
    return asked or AA_VERSIONS.get(profile, "standard")


def eps_sweep(eps: float) -> list[float]:
    """The budgets of the suite's PGD-20 sweep: eps x 1, 2, 4, 8, up to budgets where even a robust model breaks."""
    return [m * eps for m in (1, 2, 4, 8)]


def trained(ch: Chapter, rows) -> dict[str, dict]:
    """Each row's run (`train.run`'s result) with "run_dir" and "checkpoint" (the last epoch's, which is what the
    tables evaluate), trained once and re-read by every chapter that asks."""
    summary = ch.compare(SHARED)
    shared = {r["method"]: r["run_dir"] for r in summary["rows"]}
    out = {}
    for row in rows:
        if row.method in shared and not row.fields:
            res = {**load_result(shared[row.method]), "run_dir": shared[row.method]}
        else:
            res = ch.variant(row.method, **row.fields)
        out[row.label] = {**res, "checkpoint": os.path.join(res["run_dir"], res["student"]["checkpoints"]["last"])}
    return out


def _suffix(limit: int, shared_limit: int) -> str:
    return "" if limit == shared_limit else f"_n{limit}"


def evaluated(ch: Chapter, rows, runs: dict[str, dict], limit: int, aa_version: str,
              shared_limit: int) -> dict[str, dict]:
    """Per row, {"standard": ..., "compat-generalist": ...}: the evaluation chapter's two calls of
    `evaluate_checkpoint` (all attacks with the eps sweep; the compat protocol without AutoAttack), on `limit`
    test images, cached in <out>/eval (shared with that chapter when `limit` is its `shared_limit`)."""
    sweep = eps_sweep(ch.resolved("pgdat").eps)
    suffix = _suffix(limit, shared_limit)
    out = {}
    for row in rows:
        path, base = runs[row.label]["checkpoint"], f"{ch.out}/eval/{row.file_stem}"
        out[row.label] = {  # the weights are needed (`Chapter.weights`) only where a file is not reused
            "standard": evaluate_checkpoint(path, "all", limit=limit, aa_version=aa_version, eps_sweep=sweep,
                                            progress=ch.progress, out=f"{base}_standard{suffix}.json", reuse=True,
                                            restore=ch.weights),
            "compat-generalist": evaluate_checkpoint(path, COMPAT_ATTACKS, limit=limit, protocol="compat-generalist",
                                                     progress=ch.progress, out=f"{base}_compat-generalist{suffix}.json",
                                                     reuse=True, restore=ch.weights)}
    return out


def masked_teacher(ch: Chapter, checkpoint: str, limit: int, aa_version: str, sweep: list[float]) -> dict:
    """Chapter 04's test of the checks, on the clean teacher (`checkpoint`): "plain" (natural, FGSM, PGD-20);
    "masked", the same network behind 8-bit input rounding (`models.InputQuantized`: a zero input gradient, which
    the checks must flag), with AutoAttack's `aa_version` and the eps `sweep`; and "masked_standard", on the first
    "few" images (a tenth of the suite's, at most 100: Square's 5000 queries per image that resists are the cost),
    AutoAttack's standard version, whose Square attack needs no gradient. Cached in
    <out>/eval/teacher_*.json; the weights are needed only where a file is not reused."""
    run = lambda attacks, name, **kw: evaluate_checkpoint(checkpoint, attacks, progress=ch.progress, reuse=True,
                                                          restore=ch.weights, out=f"{ch.out}/eval/{name}.json", **kw)
    plain = run("natural,fgsm,pgd20", "teacher_standard", limit=limit)
    few = max(1, min(100, plain["n"] // 10))
    return {"plain": plain, "few": few,
            "masked": run("natural,fgsm,pgd20,aa", "teacher_rounded", limit=limit, aa_version=aa_version,
                          eps_sweep=sweep, round_input=True),
            "masked_standard": run("natural,pgd20,aa", f"teacher_rounded_aa_standard_n{few}", limit=few,
                                   aa_version="standard", round_input=True)}


def masks(ch: Chapter, rows, runs: dict[str, dict], limit: int, attack: str = "pgd20") -> dict[str, str]:
    """Per row, which of the first `limit` test images its model classifies correctly under its own `attack`,
    as a bit string ("1": right; `per_image_correct`, cached in <out>/eval/<stem>_<attack>_mask[_nN].json)."""
    suffix = f"_n{limit}" if limit else ""
    out = {}
    for row in rows:
        path, file = runs[row.label]["checkpoint"], f"{ch.out}/eval/{row.file_stem}_{attack}_mask{suffix}.json"
        out[row.label] = per_image_correct(path, attack, limit=limit, out=file, restore=ch.weights)["bits"]
    return out


def paper_table4(dataset: str) -> tuple[dict[str, dict], str]:
    """The paper's Table 4 for `dataset` (method label -> {column: value}) and which table it is: CIFAR-100's for
    cifar100, CIFAR-10's for every other dataset (the multi-view data is compared with CIFAR-10's)."""
    p = paper_numbers()["cktat"]
    key = "table4_cifar100" if dataset == "cifar100" else "table4_cifar10"
    return paper_table(p[key], TABLE4_ATTACKS, PAPER_TABLE4_KEYS), "CIFAR-100" if dataset == "cifar100" else "CIFAR-10"


def at_our_tau(paper: dict[str, dict], tau: float) -> dict[str, dict]:
    """The paper's Table 4 rows a run at `tau` may be judged against: every row where our CKTAT runs at the paper's
    tau (`report.TABLE4_TAU`), else all but its CKTAT rows (a run at another tau is never judged against them)."""
    from .report import TABLE4_TAU

    return paper if tau == TABLE4_TAU else {m: v for m, v in paper.items() if not m.startswith("CKTAT")}


def rank_agreement(ours: dict[str, dict], paper: dict[str, dict], columns: list[str]) -> dict[str, dict]:
    """Per column: Spearman's rho between our methods' values and the paper's (the methods both have), its two-sided
    p-value (`noise.spearman`, scipy; as `ordering` judges the same question) and the number of methods."""
    out = {}
    for c in columns:
        names = [m for m in ours if m in paper and ours[m].get(c) is not None and paper[m].get(c) is not None]
        rho, p = spearman_test([ours[m][c] for m in names], [paper[m][c] for m in names], "two-sided")
        out[c] = {"rho": rho, "p": p, "n": len(names)}
    return out

def relative_positions(row: dict, attacks: list[str], low: str = "aa", high: str = "natural") -> dict[str, float]:
    """Where each attack's accuracy lies between AutoAttack's (0) and natural accuracy (1): a scale-free profile
    of how strong each attack is, comparable between datasets whose accuracies differ."""
    span = row[high] - row[low]
    return {a: (row[a] - row[low]) / span if span else 0.0 for a in attacks}

def protocol_distance(ours: dict[str, dict], paper: dict[str, dict], columns: list[str],
                      attacks: list[str]) -> dict[str, float]:
    """How far one protocol's table (`ours`: method -> row, with "natural" and "aa") sits from the paper's:
    "levels", the mean absolute difference of the accuracies in `columns`; "profile", the mean absolute
    difference of the attacks' `relative_positions` (0 = each attack removes the same share of the way from
    natural accuracy to AutoAttack's as in the paper); "n", the methods compared."""
    names = [m for m in ours if m in paper]
    levels = [abs(ours[m][c] - paper[m][c]) for m in names for c in columns]
    prof = [abs(relative_positions(ours[m], attacks)[a] - relative_positions(paper[m], attacks)[a])
            for m in names for a in attacks]
    return {"levels": mean_of(levels) if levels else None, "profile": mean_of(prof) if prof else None, "n": len(names)}

def profile_resolution(rows: dict[str, dict], attacks: list[str], n: int) -> float:
    """The sampling noise of a mean `relative_positions` difference over these rows (method -> row) on n images:
    per entry, the noise of an attack's accuracy against AutoAttack's (`noise_margin`) over the row's span
    (natural - AA), averaged, and divided by the square root of the number of entries averaged."""
    per = [noise_margin(r[a], r["aa"], n) / max(r["natural"] - r["aa"], noise_margin(r["natural"], r["aa"], n))
           for r in rows.values() for a in attacks]
    return mean_of(per) / math.sqrt(len(per))

def closest_protocol(distances: dict[str, dict], key: str = "profile", tolerance: float = 0.0) -> str | None:
    """The protocol whose table sits closest to the paper's by `key` of `protocol_distance`; None when the
    closest two differ by no more than `tolerance` (e.g. `profile_resolution`: the page cannot tell them apart)."""
    ranked = sorted(distances, key=lambda p: distances[p][key])
    if len(ranked) > 1 and distances[ranked[1]][key] - distances[ranked[0]][key] <= tolerance:
        return None
    return ranked[0]

def rank_sentence(agreement: dict[str, dict], headers: dict[str, str], alpha: float = 0.05) -> str:
    """The page's sentence on `rank_agreement`: which columns order the methods as the paper does beyond chance
    (two-sided p below `alpha` divided by the number of columns, Bonferroni, as `ordering` tests a table's columns),
    which do not, and which are reversed (rho < 0)."""
    shown = {c: v for c, v in agreement.items() if v["rho"] is not None}
    if not shown:
        return "No column has enough distinct values to compare the orderings."
    family = len(agreement)  # every column tested, as `ordering` counts them
    bar = f"{alpha / family:.3g}: {alpha} over the {family} columns, Bonferroni" if family > 1 else f"{alpha}"
    word = {c: ordering_word(v["rho"], v["p"], alpha, family) for c, v in shown.items()}
    parts = ", ".join(f"{headers.get(c, c)} {v['rho']:+.2f} (p = {v['p']:.2f})" for c, v in shown.items())
    agree = [headers.get(c, c) for c in shown if word[c] == ABOVE]
    against = [headers.get(c, c) for c, v in shown.items() if v["rho"] < 0]
    n = max(v["n"] for v in shown.values())
    text = f"Spearman's rank correlation between our ordering of the {n} methods and the paper's, per column: {parts}. "
    if agree:
        text += (f"Only {listed(agree)} order{'s' if len(agree) == 1 else ''} the methods as the paper does beyond "
                 f"chance (two-sided Spearman test, p < {bar})" if len(agree) < len(agreement) else
                 f"Every column orders the methods as the paper does beyond chance (p < {bar})")
    else:
        text += f"No column orders the methods as the paper does beyond chance (p < {bar})"
    if against:
        reversed_ = [headers.get(c, c) for c in shown if word[c] == BELOW]
        leaning = [h for h in against if h not in reversed_]
        if reversed_:
            text += f"; {listed(reversed_)} order{'s' if len(reversed_) == 1 else ''} them the other way round beyond chance"
        if leaning:
            text += (f"; {listed(leaning)} lean{'s' if len(leaning) == 1 else ''} the other way (a negative correlation), "
                     f"within chance")
    flat = [headers.get(c, c) for c in agreement if c not in shown]
    if flat:
        text += f"; {listed(flat)} ha{'s' if len(flat) == 1 else 've'} too few distinct values to rank"
    return text + "."

def protocol_sentence(distances: dict[str, dict], same_data: bool, resolution: float = 0.0,
                      level_noise: float = 0.0) -> str:
    """Which protocol's table the paper's numbers resemble (`protocol_distance` per protocol): by the attacks'
    relative positions (a difference within `resolution`, `profile_resolution`, decides nothing), and by the
    levels (within `level_noise` points: nothing) only when our data is the paper's (`same_data`)."""
    near = closest_protocol(distances, tolerance=resolution)
    prof = " and ".join(f"{d['profile']:.2f} under the {p} protocol" for p, d in distances.items())
    text = (f"Place each attack's accuracy between AutoAttack's (0) and natural accuracy (1): the paper's rows then "
            f"differ from ours by a mean of {prof}; "
            + (f"the paper's numbers look most like the {near} protocol. " if near else
               f"the two distances differ by less than their sampling noise ({resolution:.2f}), so by this measure the "
               f"paper's numbers look like neither protocol more than the other. "))
    levels = " and ".join(f"{d['levels']:.1f} points under the {p} protocol" for p, d in distances.items())
    if same_data:
        lv = closest_protocol(distances, "levels", level_noise)
        return text + (f"The accuracies themselves differ from the paper's by a mean of {levels}"
                       + ("." if lv is None else f", closest under the {lv} protocol" +
                          (" as well." if lv == near else ", which disagrees with the profile.")))
    return text + (f"The accuracies themselves differ by a mean of {levels}, but our data is not the paper's: that "
                   f"difference measures the datasets, not the reproduction, so only the orderings and the relative "
                   f"positions are compared.")

def table_noise(n: int, cells: int) -> float:
    """The sampling noise of a mean over `cells` accuracies, each on n images (two binomial standard errors at 50%,
    the worst case, divided by the square root of the number of cells)."""
    return noise_margin(50.0, 50.0, n) / math.sqrt(max(cells, 1))

def warm_start_sentence(rows: dict[str, dict], warm: dict[str, bool], epochs: int) -> str:
    """How the rows that start from the clean teacher compare in natural accuracy with those that start from
    scratch (`warm`: label -> starts from the teacher): the two groups' means, weighed by Welch's test over the rows
    (`noise.compare`; a method is one sample, so the spread is the spread between methods). The rows differ in more
    than their start; chapter 02's controls (PGD-AT and TRADES started from the clean teacher) test the start itself,
    and the sentence points there."""
    from .noise import WITHIN, compare, p_text

    yes = [m for m in rows if warm[m]]
    no = [m for m in rows if not warm[m]]
    if not yes or not no:
        return ""
    values = lambda ms: [rows[m]["natural"] for m in ms]
    each = lambda ms: ", ".join(f"{m} {rows[m]['natural']:.1f}" for m in ms)
    text = (f"After {epochs} epoch{'s' * (epochs != 1)}, the rows that start from the clean teacher ({each(yes)}) have "
            f"a mean natural accuracy of {statistics.fmean(values(yes)):.1f}%, the others ({each(no)}) "
            f"{statistics.fmean(values(no)):.1f}%")
    controls = (" Chapter 02's controls, PGD-AT and TRADES started from the same clean teacher, test the start itself, "
                "method by method.")
    if len(yes) < 2 or len(no) < 2:
        return text + "; one row on a side is too few to weigh the difference." + controls
    c = compare(values(yes), values(no))
    test = f"Welch's t-test over the {len(yes)} and {len(no)} rows"
    if c.word == WITHIN:
        return text + (f": the difference lies within the spread between methods ({test}, {p_text(c.p)}); rows that "
                       f"differ in more than their start cannot show whether starting from the clean model weighs on "
                       f"this column." + controls)
    return text + (f": {'above' if c.difference > 0 else 'below'} beyond the spread between methods ({test}, "
                   f"{p_text(c.p)}); the rows differ in more than their start, so this says no more than that."
                   + controls)

def natural_lead_reading(claim, rows: dict[str, dict], paper: dict[str, dict], target: str, epochs: int) -> str:
    """Our reading of chapter 08's natural-accuracy claim where it is not reproduced: the rows above `target` in
    natural accuracy here but not in the paper, with how far each lies from `target` in natural and in AutoAttack
    accuracy (`rows` and `paper`: label -> {column: accuracy}); when every one of them is below `target` in
    AutoAttack accuracy, they sit further towards natural accuracy on the trade-off, and the spread of the rows'
    natural accuracy here against the paper's says how far apart the methods land. An interpretation these runs do
    not test. Empty when the claim is reproduced or not testable, or no row is above `target` here only."""
    if claim.verdict in (REPRODUCED, UNTESTABLE):
        return ""
    t, p = rows[target], paper[target]
    above = [m for m in rows if m != target and m in paper and rows[m]["natural"] > t["natural"]
             and paper[m]["natural"] <= p["natural"]]
    if not above:
        return ""
    span = lambda table: max(v["natural"] for v in table.values()) - min(v["natural"] for v in table.values())
    each = ", ".join(f"{m} ({rows[m]['natural'] - t['natural']:+.1f} natural, {rows[m]['aa'] - t['aa']:+.1f} "
                     f"AutoAttack)" for m in above)
    text = f"**Our reading.** Above {target} in natural accuracy here, below it in the paper: {each}. "
    if all(rows[m]["aa"] < t["aa"] for m in above):
        text += (f"{'It sits' if len(above) == 1 else 'They sit'} further towards natural accuracy on the trade-off "
                 f"between the two, not above {target} on both. Our {len(rows)} rows spread over "
                 f"{span(rows):.1f} points of natural accuracy, the paper's over {span({m: paper[m] for m in rows if m in paper}):.1f}: "
                 f"we think that after {epochs} epochs each method still sits where its loss weights first put it on "
                 f"that trade-off" + (", where a longer schedule would bring the rows closer together, as they are in the paper"
                                      if span(rows) > span({m: paper[m] for m in rows if m in paper}) else "")
                 + ". The reading's test, the rows at a longer schedule, follows.")
    return text.strip()


def ordering_word(rho: float, p: float, alpha: float = 0.05, family: int = 1) -> str:
    """The one rule for an ordering against the paper's: ABOVE (the paper's order) where Spearman's rho is positive at
    a two-sided p below alpha / `family` (Bonferroni over the columns of one table tested so), BELOW (the reverse)
    where it is negative there, else WITHIN. `ordering` (the claim) and `rank_sentence` (the page's words) both
    decide by it."""
    return WITHIN if p >= alpha / family else (ABOVE if rho > 0 else BELOW)


def ordering(chapter: str, section: str, column: str, ours: dict[str, float], paper: dict[str, float],
             alpha: float = 0.05, rows: tuple[str, ...] | None = None, family: int = 1) -> Claim:
    """Our ordering of the methods in one column agrees with the paper's: Spearman's correlation between our values
    and the paper's over the methods both have, two-sided test (`scipy.stats.spearmanr`); a positive correlation at
    p < alpha / `family` reproduces the ordering, a negative one contradicts it; within noise, the claim says in words
    that our ordering has no detectable relation to the paper's. `family`: how many columns of one table are tested
    so (Bonferroni: six columns, each tested at 0.05, would find a "beyond chance" ordering by luck more often than
    one time in twenty; the columns rank the same models and are correlated, so the correction is conservative).
    `rows`: the paper's rows it rests on."""
    from .noise import spearman

    names = [m for m in ours if m in paper and ours[m] is not None and paper[m] is not None]
    rho, p = spearman([ours[m] for m in names], [paper[m] for m in names], "two-sided")
    claim = f"The {column} ordering of the {len(names)} methods"
    measure = "Spearman rho of ours against the paper's"
    if rho is None:
        return Claim(chapter, section, claim, measure, None, None, "constant values", WITHIN_NOISE)
    word = ordering_word(rho, p, alpha, family)
    words = {WITHIN: "no detectable relation to the paper's ordering", ABOVE: "the paper's ordering, beyond chance",
             BELOW: "the reverse of the paper's ordering, beyond chance"}[word]
    bar = f" (Bonferroni over {family} columns: below {alpha / family:.2g} counts)" if family > 1 else ""
    return Claim(chapter, section, claim, measure, None, rho,
                 f"Spearman over {len(names)} methods, {p_text(p)}{bar}: {words}", verdict(ABOVE, word),
                 rests_on=tuple(rows or ()))

def suite_accuracy(evaluation: dict, attack: str) -> float:
    return evaluation["attacks"][attack]["accuracy"]

def top_of(chapter: str, section: str, method: str, column: str, label: str, evals: dict[str, dict],
           paper: dict[str, dict], spread: float | None = None, excluding: tuple[str, ...] = (),
           stated: bool = False, rows: dict[str, str] | None = None) -> Claim:
    """Where `method` stands in `column` among the methods other than `excluding` (those the paper's text places above it),
    compared image by image on the attack suite's test images (`evals`: label -> `evaluate` result):
    - `stated`: the paper's text puts it first (Sec. 5.2: at beta = 6 CKTAT's robust generalization "is higher than
      all selected baseline methods", its natural one "only weaker than Generalist and PGDAT"): ours against our
      best other method, ABOVE, whatever the paper's numbers show (the scorecard's audit compares them with the text);
    - else as the paper's numbers put it: first beyond the paper's noise, ABOVE; first within the noise of the
      runner-up (`side` says LEVEL), "no method is above it", NOT_BELOW against our best other method; below the
      paper's first beyond its noise, BELOW against that method.
    `spread`: the pooled seed spread's upper bound, the run-to-run margin of two single runs (`noise.compare`);
    `rows`: label -> the paper's row key ("cktat.table4_cifar10.PGDAT") for `rests_on`."""
    from .noise import compare_evaluations

    left_out = listed(list(excluding)) if excluding else ""
    but = f" other than {left_out}" if excluding else ""
    leaving = f" (leaving out {left_out})" if excluding else ""
    if method not in paper:
        return untestable(chapter, section, f"{method}'s place in {label} accuracy among the methods{but}",
                          f"{method} - the best other method{leaving} ({label}, points)", None,
                          f"the paper reports no {method} row at this run's setting", tuple((rows or {}).values()))
    pool = [m for m in paper if m != method and m not in excluding]
    paper_rival = max(pool, key=lambda m: paper[m][column])
    lead = paper[method][column] - paper[paper_rival][column]
    band = paper_margin(paper[method][column], paper[paper_rival][column])
    direction = ABOVE if stated else side(lead, band)
    if direction in (ABOVE, LEVEL):
        rival = max((m for m in evals if m != method and m not in excluding),
                    key=lambda m: suite_accuracy(evals[m], column))
        measure = f"{method} - the best other method{leaving} ({label}, points)"
        if direction == ABOVE:
            text = f"{method} has the highest {label} accuracy of the {len(evals) - len(excluding)} methods{but}"
        else:
            text = (f"No method{but} is above {method} in {label} accuracy (the paper's lead over {paper_rival} "
                    f"lies within its noise)")
            direction = NOT_BELOW
    else:
        rival = paper_rival
        text = f"{method}'s {label} accuracy {WORDS[direction]} {paper_rival}'s"
        measure = f"{method} - {paper_rival} ({label}, points)"
    rests = tuple((rows or {}).get(m, m) for m in [method, *pool])
    return judged(chapter, section, text, measure, lead,
                  compare_evaluations(evals[method], evals[rival], column, spread), direction, band, rests,
                  stated=stated)


def suite_pair(chapter: str, section: str, first: str, second: str, column: str, label: str, evals: dict[str, dict],
               paper: dict[str, dict], spread: float | None = None, stated: str | None = None,
               rests_on: tuple[str, ...] = ()) -> Claim:
    """`first` against `second` in one column (`evals`: label -> evaluation on the same test images), compared image
    by image (McNemar) with `spread`, the pooled seed spread's upper bound, as the run-to-run margin of two single
    runs. The direction is `stated` (ABOVE or BELOW) where the paper's text states it in words, else the one its
    numbers show (`side`, the band deciding "level" for both sides)."""
    from .noise import compare_evaluations

    if first not in paper or second not in paper:
        return untestable(chapter, section, f"{first} against {second} in {label} accuracy",
                          f"{first} - {second}, {label} (points)", None,
                          f"the paper reports no {first if first not in paper else second} row at this run's setting",
                          rests_on)
    effect = paper[first][column] - paper[second][column]
    band = paper_margin(paper[first][column], paper[second][column])
    direction = stated or side(effect, band)
    return judged(chapter, section, f"{first}'s {label} accuracy {WORDS[direction]} {second}'s",
                  f"{first} - {second}, {label} (points)", effect,
                  compare_evaluations(evals[first], evals[second], column, spread), direction, band, rests_on,
                  stated=stated is not None)


def rows_above(evals: dict[str, dict], target: str, columns: list[str], spread: dict[str, float | None],
               titles: dict[str, str]) -> str:
    """Per column, the rows that lie above `target` here, beyond the noise (McNemar on the same images with `spread`,
    column -> the pooled seed spread's upper bound) or within it: what a table shows that a claim about `target`'s rank
    does not say. Empty when no row lies above it in any column."""
    from .noise import ABOVE, compare_evaluations

    parts = []
    for c in columns:
        above = {m: compare_evaluations(evals[m], evals[target], c, spread.get(c)) for m in evals
                 if m != target and suite_accuracy(evals[m], c) > suite_accuracy(evals[target], c)}
        if above:
            beyond = [m for m, x in above.items() if x.word == ABOVE]
            within = [m for m in above if m not in beyond]
            say = lambda ms: listed([f"{m} ({above[m].difference:+.1f})" for m in ms])
            parts.append(f"{titles.get(c, c)}: " + "; ".join(
                ([f"{say(beyond)} beyond the noise"] if beyond else []) + ([f"{say(within)} within it"] if within else [])))
    if not parts:
        return ""
    return f"Rows above {target} in our table, per column (points above it): " + "; ".join(parts) + "."


SPAN_READING = ("We read the rows above CKTAT in natural accuracy here (below it in the paper) as the short schedule's "
                "doing: each method still sits where its loss first puts it on the trade-off, and a longer schedule "
                "brings the rows closer together, closing those rows' lead over CKTAT.")


def natural_lead_tested(claim, short: dict[str, dict], long: dict[str, dict] | None, target: str, above: list[str],
                        spread: float | None, rung: str, cost: str):
    """Chapter 08's reading of its natural-accuracy claim, tested by the Table 4 rows at the ladder's longest schedule
    (`long`: label -> run, None when not trained): the row of `above` with the largest natural lead over `target`
    on the validation split (its last epoch; the test images, which found the claim, do not pick the row they then
    test) should lose its lead, the change from `short` to `long` BELOW beyond the noise (`schedule_reading`)."""
    if not above or claim.verdict != "contradicted":
        return []
    first = max(above, key=lambda m: short[m]["student"]["history"][-1]["val_natural"])
    says = lambda before, after: (f"{first}'s natural lead over {target} goes from {before:+.1f} to {after:+.1f} "
                                  f"points with {rung}.")
    return schedule_reading(claim, SPAN_READING, short, long, first, target, BELOW, spread, rung, cost, says)


def schedule_reading(claim, text: str, short: dict[str, dict], long: dict[str, dict] | None, row: str, target: str,
                     predicted: str, spread: float | None, rung: str, cost: str, says) -> list:
    """A short-schedule reading of chapter 08 (`text`), tested by the Table 4 rows at the ladder's longest schedule
    (`long`: label -> run; None when not trained: the reading says what that would cost): `row` - `target` in natural
    accuracy should move `predicted` (ABOVE or BELOW) from `short` to `long` beyond the noise (`budget.change`). A
    supported reading `resolves` the claim where the difference no longer lies on the contradicting side at `long`
    (`_gone`). `says(before, after)`: the sentence of what the run shows, from the two differences."""
    run = f"the Table 4 rows at the ladder's {rung} schedule"
    if long is None:
        return [budget.untested("08_baselines", claim.claim, text, run, cost)]
    natural = lambda runs, m: runs[m]["student"]["last"]["test"]["attacks"]["natural"]["accuracy"]
    c = budget.change(short, long, row, target, "natural", spread)
    verdict = budget.test_reading(c, predicted)
    contradicting = BELOW if predicted == ABOVE else ABOVE
    shows = says(natural(short, row) - natural(short, target), natural(long, row) - natural(long, target))
    return [budget.Reading("08_baselines", claim.claim, text, run, verdict, f"change {c.evidence()}", shows,
                           resolves=_gone(long, row, target, spread, contradicting) if verdict == budget.SUPPORTED
                           else None)]


def _gone(runs: dict[str, dict], first: str, second: str, spread: float | None, contradicting: str) -> bool:
    """Whether `first` - `second` in natural accuracy no longer lies `contradicting` (ABOVE or BELOW, the side that
    contradicted the claim) beyond the noise in `runs` (label -> run): a supported reading that resolves the claim."""
    from .noise import compare_evaluations

    ev = lambda m: runs[m]["student"]["last"]
    return compare_evaluations(ev(first), ev(second), "natural", spread).word != contradicting


AA_RANK_READING = ("We read CKTAT's place below other rows in AutoAttack (first in the paper) as chapter 02 reads its "
                   "AutoAttack deficit: attacks on the cross-entropy overstate CKTAT's robustness more than the other "
                   "rows', and AutoAttack's attacks after its first (APGD-CE) find what those miss.")


def aa_rank_reading(claim, evals: dict[str, dict], target: str, excluding: tuple[str, ...], seeded: dict | None,
                    spread: float | None):
    """Chapter 08's reading of "`target` has the highest AutoAttack accuracy" where rows lie above it
    (`AA_RANK_READING`), tested by chapter 02's test on the seeds (`seeded`: `headline.fall_test` of CKTAT against
    PGD-AT, whose seed-0 runs are this table's rows): its verdict. Beside it, what this table's single runs show
    (`evals`: label -> the suite's evaluation, with AutoAttack's "per_attack"): each row's fall from the first attack
    to the last, and the rows above `target` in AutoAttack that lie above it already under the first attack beyond
    the noise (the images' and the run-to-run `spread`: `noise.compare`), which the reading does not explain. As
    chapter 02's reading, it explains our reversal from the cross-entropy attacks to AutoAttack, not the paper's own
    AutoAttack ranking: a supported reading explains the contradiction in part (`resolves` False). Not a budget
    reading."""
    from .noise import compare

    if claim is None or claim.verdict != "contradicted" or (claim.ours or 0) >= 0 or seeded is None:
        return []
    per = {m: e["attacks"]["aa"].get("per_attack") or {} for m, e in evals.items() if m not in excluding}
    if any(len(p) < 2 for p in per.values()):
        return []
    head = next(iter(per[target]))
    last = {m: list(p.values())[-1] for m, p in per.items()}
    fall = {m: p[head] - last[m] for m, p in per.items()}
    passing = [m for m in per if m != target and last[m] > last[target]]
    n = evals[target]["n"]
    first = {m: compare(per[m][head], per[target][head], n=n, spread=spread) for m in passing}
    still = [m for m in passing if first[m].word == ABOVE]
    title = head.upper()
    shows = (f"{seeded['shows']} In this table's single runs, {target} falls {fall[target]:.1f} points from {title} to "
             f"the end of AutoAttack, the {len(passing)} rows above it there "
             + listed([f"{m} {fall[m]:.1f}" for m in passing]))
    if still:
        shows += (f"; under {title} alone {listed(still)} already lie{'s' if len(still) == 1 else ''} above it beyond "
                  f"the noise ({'; '.join(f'{m}: {first[m].evidence()}' for m in still)}): the reading explains "
                  + (f"the rows that pass {target} only under AutoAttack's later attacks "
                     f"({listed([m for m in passing if m not in still])}), not " if len(still) < len(passing) else "")
                  + f"{listed(still)}.")
    else:
        shows += f"; under {title} alone none lies above it beyond the noise."
    shows += (" Only CKTAT and PGD-AT have seeds, so the test is of their pair alone; the other rows are single runs, "
              f"their places under {title} judged with AutoAttack's run-to-run spread.")
    verdict = seeded["verdict"]
    return [budget.Reading("08_baselines", claim.claim, AA_RANK_READING, "chapter 02's test, " + seeded["run"], verdict,
                           seeded["evidence"], shows, budget=False,
                           resolves=False if verdict == budget.SUPPORTED else None)]


GAP_READING = ("We read {other} below {target} in natural accuracy here (above it in the paper) as the short "
               "schedule's doing, as the rows above {target}: each method still sits where its loss first puts it on "
               "the trade-off, and a longer schedule brings the rows closer together, {other} up towards {target}.")


def natural_gap_tested(claim, short: dict[str, dict], long: dict[str, dict] | None, target: str, other: str,
                       spread: float | None, rung: str, cost: str):
    """Chapter 08's reading of "`target`'s natural accuracy below `other`'s" where `other` lies below (`GAP_READING`),
    tested as `natural_lead_tested` tests the rows above (`schedule_reading`): with the rows at the ladder's longest
    schedule, `other` - `target` should rise beyond the noise."""
    if claim is None or claim.verdict != "contradicted" or (claim.ours or 0) <= 0:
        return []
    says = lambda before, after: (f"{other} - {target} in natural accuracy goes from {before:+.1f} to {after:+.1f} "
                                  f"points with {rung}.")
    return schedule_reading(claim, GAP_READING.format(other=other, target=target), short, long, other, target, ABOVE,
                            spread, rung, cost, says)


def own_evaluation_sentence(runs: dict[str, dict], suite_images: int) -> str:
    """How the runs' own final evaluation (`runs`: label -> `train.run` result) relates to the attack suite's tables
    on `suite_images` test images: the same images, or the suite's first ones only."""
    totals = sorted({r["student"]["last"]["test"]["attacks"]["natural"]["total"] for r in runs.values()})
    if totals == [suite_images]:
        return f"These are the runs' own evaluations, on the same {suite_images:,} test images as the attack suite above."
    each = listed([f"{t:,}" for t in totals])
    return (f"These are the runs' own evaluations, on all {each} test images of each run; the attack suite above uses "
            f"the first {suite_images:,} of them only, so the same network's figures differ between the two tables by "
            f"sampling noise.")


def paper_noise_sentence(found: list[Claim], names: dict[str, str] | None = None, paper: dict | None = None) -> str:
    """Which of `found` (claims whose direction the paper's text states, each resting on its first row against the
    others, `Claim.rests_on`) the paper's own numbers show only within their noise, as the scorecard's audit reads the
    text against the tables (`scorecard.statements`, each compared on the paper's test images): per claim, the rows
    against which the paper's difference lies within its noise, and those where it lies the other way beyond it.
    `names`: a row key -> the page's label. Empty when the audit reads none of the claims."""
    from .claims import PAPER_IMAGES
    from .noise import compare
    from .scorecard import COLUMN_NAMES, claim_column, row, statements

    paper = paper or paper_numbers()
    names = names or {}
    said = statements(paper)
    read, weak, wrong = [], {}, {}
    for c in found:
        if not c.rests_on:
            continue
        first, others, column = c.rests_on[0], set(c.rests_on[1:]), claim_column(c)
        mine = [st for st in said if st.first == first and st.second in others
                and (column is None or COLUMN_NAMES[st.first.split(".")[1]][st.column] == column)]
        if not mine:
            continue
        read.append(c)
        for st in mine:
            a, b = row(st.first, paper)[st.column], row(st.second, paper)[st.column]
            word = compare(a, b, n=PAPER_IMAGES).word
            if word != st.direction:
                (weak if word not in (ABOVE, BELOW) else wrong).setdefault(c.claim, []).append(
                    f"{names.get(st.second, st.second)} ({a - b:+.2f})")
    if not read:
        return ""
    n = len(read)
    if not weak and not wrong:
        return (f"The paper's own numbers show {'this statement' if n == 1 else f'each of these {n} statements'} "
                f"beyond their noise (the scorecard's audit).")
    parts = [f"\u201c{c.claim}\u201d against {listed(weak[c.claim])}" for c in read if c.claim in weak]
    text = ("The scorecard's audit reads these statements against the paper's own numbers (the paper's difference in "
            "points).")
    if parts:
        text += f" {len(parts)} of the {n} show only within their noise: " + "; ".join(parts) + "."
    if wrong:
        text += (" The numbers lie the other way beyond their noise for " + "; ".join(
            f"\u201c{c.claim}\u201d against {listed(wrong[c.claim])}" for c in read if c.claim in wrong) + ".")
    rest = [c for c in read if c.claim not in weak and c.claim not in wrong]
    if rest:
        text += (" The paper's numbers show " + ("the other" if len(rest) == 1 else f"the other {len(rest)}")
                 + " beyond their noise: " + "; ".join(f"\u201c{c.claim}\u201d" for c in rest) + ".")
    return text


# ---- the budget a reading's run would come out of (`budget.LADDER_BUDGET_HOURS`)


def scaled_seconds(run: dict, epochs: int | None = None, attack_steps: int | None = None) -> float:
    """A run like `run` (a finished result) at `epochs` and `attack_steps` (None: its own), estimated from its
    recorded seconds (`results.run_seconds`): a training epoch costs its attack's steps and one update, each a forward and a backward
    pass, so the seconds scale with the epochs and with the attack steps plus one (the final evaluation, which does
    not grow with them, is scaled alike: an estimate from above)."""
    cfg = run["config"]
    epochs = cfg["epochs"] if epochs is None else epochs
    steps = cfg["attack_steps"] if attack_steps is None else attack_steps
    return run_seconds(run)[0] * epochs / cfg["epochs"] * (steps + 1) / (cfg["attack_steps"] + 1)


def readings_plan(base: dict[str, dict | None], rungs: dict[str, dict], finished: dict[str, dict[str, dict | None]],
                  readings: list[dict] | None, readings_estimated: float = 0.0, narrow: list[dict] = ()) -> dict:
    """What the ladder and the readings' runs take of their budget (`budget.LADDER_BUDGET_HOURS`), in seconds: `base`,
    method -> its 1x run; `rungs`, rung -> the fields it changes (`book_runs.ladder_rungs`); `finished`, rung ->
    method -> its run where finished, else None; `readings`, the readings' runs finished (None: some not trained yet
    and not estimated); `readings_estimated`, the seconds of those not trained yet, estimated from their 1x runs. A
    finished run counts its recorded seconds (`results.run_seconds`: an epoch during which the build was stopped at its
    run's median), one not trained yet its 1x run's scaled to the rung (`scaled_seconds`; "unknown" counts the runs
    neither tells); `narrow`, chapter 06's runs on its narrower students (`book_runs.narrower_students`), counted with
    the readings' runs."""
    recorded = estimated = 0.0
    unknown = 0
    for rung, fields in rungs.items():
        for m, run in finished.get(rung, {}).items():
            if run is not None:
                recorded += run_seconds(run)[0]
            elif base.get(m) is not None:
                estimated += scaled_seconds(base[m], fields.get("epochs"), fields.get("attack_steps"))
            else:
                unknown += 1
    return {"budget": budget.LADDER_BUDGET_HOURS * 3600, "ladder_recorded": recorded, "ladder_estimated": estimated,
            "unknown": unknown,
            "readings": None if readings is None else sum(run_seconds(r)[0] for r in [*readings, *narrow])
            + readings_estimated,
            "readings_estimated": readings_estimated,
            "reading_runs": None if readings is None else len(readings) + len(narrow), "narrow_runs": len(narrow)}


def beyond_budget(cost: float, what: str, plan: dict) -> str:
    """`budget.untested`'s "it would cost ..." for a reading's run that no stage of the build trains: `cost` seconds
    of `what`, and the budget it would come out of (`readings_plan`): what is left of it once the ladder's rungs and
    the readings' runs are paid, and whether that is enough."""
    from cktat_core.results import duration

    ladder = plan["ladder_recorded"] + plan["ladder_estimated"]
    left = plan["budget"] - ladder - (plan["readings"] or 0.0)
    parts = []
    if ladder or not plan.get("unknown"):
        parts.append(duration(ladder) + (f", {duration(plan['ladder_estimated'])} of it estimated from the 1x runs"
                                         if plan["ladder_estimated"] else ""))
    if plan.get("unknown"):
        k = plan["unknown"]
        parts.append(f"{k} run{'s' * (k != 1)} not trained yet, with no 1x run to estimate {'them' if k != 1 else 'it'} "
                     f"from")
    rungs = "; ".join(parts)
    if plan["readings"] is None:
        paid = f"the ladder's rungs ({rungs}) are paid, the readings' runs, not all trained yet, aside"
    else:
        runs = "run" if plan.get("reading_runs") == 1 and not plan.get("readings_estimated") else "runs"
        guess = plan.get("readings_estimated")
        k = plan.get("narrow_runs")
        paid = (f"the ladder's rungs ({rungs}) and the readings' {runs} ({duration(plan['readings'])}"
                + (f", {duration(guess)} of it estimated from the 1x runs" if guess else "")
                + (f"; chapter 06's {k} run{'s' * (k != 1)} on its narrower students included" if k else "")
                + ") are paid")
    text = f"{duration(cost)} of this machine ({what}), and the {duration(plan['budget'])} budget of the ladder and the readings' runs has "
    if left <= 0:
        return text + f"nothing left once {paid}"
    return text + (f"{duration(left)} left once {paid}: "
                   + ("not enough" if left < cost else "enough, but no stage of the build trains them"))

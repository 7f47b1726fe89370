"""The runs of the table chapters, asked through one `Chapter`, so every chapter that needs a run gets the same one.

Each function trains what is missing and re-reads what is finished (`Chapter.variant` and friends), and returns the
runs' results (`train.run`'s, with "name" and "run_dir"):

- `headline`: PGD-AT, TRADES and CKTAT, each with the book's seeds (`chapter.SEEDS`), and `seed_autoattack`, each
  seed's AutoAttack: chapters 02, 03, 05, 07.
- `table3`: CKTAT's ablations and its tau and beta sweeps (Table 3): chapter 07.
- `controls`: PGD-AT and TRADES started from the clean teacher, CKTAT's start without its labels: chapters 02, 03.
- `ladder`: the headline methods at larger budgets (`ladder_rungs`): chapter 10.
- `capacity`: a clean and a robust teacher for ARD, IAD, RSLAD and LTD, LBGAT, PGD-AT and CKTAT on a small and a
  large student (Table 1): chapter 06.
- the rows of Table 4 and RAAT's Table 1 are `baselines.trained`: chapters 08 and 09.
"""

from __future__ import annotations

import os

from .chapter import SEEDS, Chapter
from cktat_core.errors import ConfigError
from cktat_core.methods import METHODS
from cktat_core.models import SMALL_CNN_WIDTH
from . import budget
from .noise import ABOVE, BELOW, Spread, seeded_columns
from .capacity import capacity_candidates, separated, separation

HEADLINE = ("pgdat", "trades", "cktat")
TAUS = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)  # Table 3b, at the profile's beta
BETAS = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)  # Table 3c, at the profile's tau
# Table 3a: what is removed. The paper's row without the teacher term (82.20 / 55.34) is unlikely to come from the
# loss that is left, beta KL(S(x) || S(x')), which has no label (our run of it collapses to one class); we think the
# paper kept a label, the one-hot y in the teacher's place, the student still started from the teacher's weights. That
# run is the one the paper's row is compared with; the label-free run is shown beside it (`LABEL_FREE`).
TEACHER_TERM = "the teacher term KL(T^tau(x), S(x'))"
ABLATIONS = {"the clean-model initialisation": {"init_from_teacher": False},
             TEACHER_TERM: {"teacher_label": "onehot"},
             "the consistency term KL(S(x), S(x'))": {"beta": 0.0}}
LABEL_FREE = {"teacher_weight": 0.0}  # the teacher term removed and nothing in its place
PAPER_ABLATIONS = {"the clean-model initialisation": "clean_model_init",
                   TEACHER_TERM: "kl_teacher_adv",
                   "the consistency term KL(S(x), S(x'))": "kl_consistency"}  # their keys in paper_numbers.yaml
# What the paper's text (Sec. 5.1) says each removal does, (natural, robust): "removing the Clean training model
# initialization and KL(T(x), S(x')) terms both resulted in a decrease in the natural accuracy and robust accuracy
# ... when the KL(S(x'), S(x)) term was removed, the model's natural accuracy increased, but its robust accuracy
# rapidly decreased". The claims test these words (`claims.ablation(stated=...)`), not only the numbers.
PAPER_STATED = {"the clean-model initialisation": (BELOW, BELOW),
                TEACHER_TERM: (BELOW, BELOW),
                "the consistency term KL(S(x), S(x'))": (ABOVE, BELOW)}
# The trends Sec. 5.1 states in words, (sweep, column 0 natural / 1 robust) -> direction: "as tau increases, both
# the model's natural accuracy and robust accuracy increase"; "if better natural accuracy is desired, a smaller beta
# can be chosen". (Of beta's robust accuracy the text says only that beta = 6 is best: its numbers set that claim.)
PAPER_TRENDS = {("tau", 0): ABOVE, ("tau", 1): ABOVE, ("beta", 0): BELOW}
# Where the text's trend ends: "The model achieves the best performance when tau reaches 5, and then the model's
# performance gradually deteriorates as tau increases" (Sec. 5.1): the rise is stated up to tau = 5 only.
PAPER_TREND_UNTIL = {"tau": 5.0}
DISTILLERS = ("ard", "iad", "rslad", "ltd")  # Table 1's methods with a frozen teacher, clean or robust


def seeded(ch: Chapter, **fields) -> dict[str, list[dict]]:
    """method -> its seeds' runs, for every method trained with the book's seeds on the network of `fields`: PGD-AT,
    TRADES and CKTAT, on the profile's own network (`headline`) as on another (chapter 06's small student), so that
    each network's spread is pooled over the same methods."""
    if not fields:
        return headline(ch)
    return {m: ch.seeds(m, **fields) for m in HEADLINE}


def spreads(ch: Chapter, attacks: tuple[str, ...], **fields) -> dict[str, Spread | None]:
    """attack -> the run-to-run spread of the network of `fields`, pooled over its seeded methods (`seeded`,
    `noise.pooled_spread`): the margin a single run of that network is judged against is its `upper` bound."""
    from .noise import pooled_spread

    runs = seeded(ch, **fields)
    return {a: pooled_spread({m: [r["student"]["last"]["test"]["attacks"][a]["accuracy"] for r in rs]
                              for m, rs in runs.items()}) for a in attacks}


def headline(ch: Chapter, methods=HEADLINE, seeds=SEEDS) -> dict[str, list[dict]]:
    """method -> its runs, one per seed (the first is the shared run of `Chapter.compare`)."""
    ch.compare(list(methods))
    return {m: ch.seeds(m, seeds) for m in methods}


def table3(ch: Chapter, taus=TAUS, betas=BETAS) -> dict:
    """{"full", "pgdat", "teacher", "ablations": {name: run}, "label_free": run, "tau": {tau: run}, "beta": {beta:
    run}}: Table 3's runs (the full CKTAT run and PGD-AT are the shared ones; a sweep value equal to the profile's is
    the full run)."""
    return {"teacher": ch.teacher("clean"), "full": ch.variant("cktat"), "pgdat": ch.variant("pgdat"),
            "ablations": {name: ch.variant("cktat", **f) for name, f in ABLATIONS.items()},
            "label_free": ch.variant("cktat", **LABEL_FREE),
            "tau": {float(t): ch.variant("cktat", tau=float(t)) for t in taus},
            "beta": {float(b): ch.variant("cktat", beta=float(b)) for b in betas}}


CONTROLS = ("pgdat", "trades")  # the baselines started from CKTAT's clean teacher


def controls(ch: Chapter) -> dict[str, dict]:
    """PGD-AT and TRADES started from the clean teacher's weights, as CKTAT is (`runs/pgdat_init-teacher_clean`):
    CKTAT's initialisation and the teacher's clean epochs of compute, without its labels. What CKTAT gains over
    them is CKTAT's loss's doing, the teacher's labels among it (chapters 02 and 03)."""
    start = ch.teacher("clean")["checkpoint"]
    return {m: ch.variant(m, init_checkpoint=start) for m in CONTROLS}


def ladder_rungs(ch: Chapter) -> dict[str, dict]:
    """The budget ladder's settings beyond the profile's own ("1x"): twice and four times its epochs, and the
    `paper` profile's training attack (its attack steps and step size; RAAT's setting, the CKTAT paper states none)
    at its epochs. A rung that changes nothing (that attack in the paper profile) is left out."""
    from cktat_core.config import from_profile

    base, paper = ch.config("pgdat"), from_profile("paper")
    rungs = {"2x epochs": {"epochs": 2 * base.epochs}, "4x epochs": {"epochs": 4 * base.epochs}}
    attack = {k: getattr(paper, k) for k in ("attack_steps", "alpha_ratio") if getattr(paper, k) != getattr(base, k)}
    if attack:
        rungs[budget.ATTACK_RUNG] = attack
    return rungs


def ladder(ch: Chapter, methods=HEADLINE) -> dict[str, dict[str, dict]]:
    """rung -> method -> run: the headline methods at the profile's budget ("1x", the seed-0 runs every chapter
    shares) and at each of `ladder_rungs` (`runs/pgdat_epochs32`, `runs/cktat_alpha_ratio0.25_attack_steps10`; one
    seed each: the 1x seeds give the run-to-run spread). Chapter 10.

    Where the chapter may not train (`Chapter.train` False: the committed book, built while the build runs), a rung
    holds only its runs that have landed (`Chapter.landed`), since the ladder is the build's longest stage and its
    page shows each run as it lands; the profile's own runs are still required (`RunPending` without them). The runs
    not found are looked for, so the page is rebuilt when one lands (`reproduce.ABSENT`), and noted as runs the page
    would train, so that executing it with training trains them."""
    out = {"1x": {m: ch.variant(m) for m in methods}}
    for rung, fields in ladder_rungs(ch).items():
        out[rung] = {m: r for m in methods if (r := ch.landed(m, **fields)) is not None}
    return out


def capacity_large(ch: Chapter, default_width: int = SMALL_CNN_WIDTH) -> dict:
    """The fields of chapter 06's large student (`capacity.capacity_candidates`: the same in every candidate pair)."""
    r = ch.resolved("pgdat")
    return capacity_candidates(r.model, r.width, default_width)[0]["large"]


SCHEDULE_RUNG = "4x epochs"  # the rung of the ladder at which chapter 06's LBGAT reading is tested


def reading_plan(ch: Chapter) -> dict[str, tuple[str, dict]]:
    """The runs the chapters' readings name beyond the ladder, as (method, fields): chapter 09's RAAT without its
    reduced perturbation (`raat_eta=1`, DICAR alone) and chapter 06's LBGAT at `SCHEDULE_RUNG`, beside the ladder's
    PGD-AT there, where chapter 06's large student is the network the ladder trains (`capacity_schedule`)."""
    plan = {"raat without the reduced perturbation": ("raat", {"raat_eta": 1.0})}
    if not capacity_large(ch):
        plan[f"lbgat at {SCHEDULE_RUNG}"] = ("lbgat", ladder_rungs(ch)[SCHEDULE_RUNG])
    return plan


def reading_runs(ch: Chapter) -> dict[str, dict]:
    """`reading_plan`'s runs, trained by the `readings` stage (re-read when finished)."""
    return {label: ch.variant(m, **fields) for label, (m, fields) in reading_plan(ch).items()}


def reading_names(ch: Chapter) -> set[str]:
    """The run folders of `reading_plan` (nothing is trained or read)."""
    return {ch.name(m, **fields) for m, fields in reading_plan(ch).values()}


def capacity_schedule(ch: Chapter) -> dict:
    """The runs chapter 06's LBGAT reading is tested by (`capacity.schedule_readings`), on its large student:
    {"student": "large", "rung", "epochs" and "longer" (the two schedules), "name" (LBGAT's longer run), "ladder":
    {"1x": {"pgdat": PGD-AT's seeds, "lbgat": LBGAT's run}, rung: PGD-AT's and LBGAT's runs there, those finished},
    "cost": None}. The longer runs are read, never trained (`Chapter.finished`): the `ladder` and `readings` stages
    train them. Where the large student is not the ladder's network, no stage trains them: "ladder" is None and
    "cost" what the two would take (their runs' seconds scaled to the rung, `baselines.scaled_seconds`)."""
    from cktat_core.results import duration

    from .baselines import scaled_seconds

    fields, rung = capacity_large(ch), ladder_rungs(ch)[SCHEDULE_RUNG]
    out = {"student": "large", "rung": SCHEDULE_RUNG, "epochs": ch.config("lbgat", **fields).epochs,
           "longer": rung["epochs"], "name": ch.name("lbgat", **fields, **rung), "ladder": None, "cost": None}
    short = {"pgdat": ch.seeds("pgdat", **fields), "lbgat": ch.variant("lbgat", **fields)}
    if fields:  # not the ladder's network
        seconds = sum(scaled_seconds(r, rung["epochs"]) for r in (short["pgdat"][0], short["lbgat"]))
        return {**out, "cost": f"{duration(seconds)} of this machine (LBGAT and PGD-AT at {SCHEDULE_RUNG})"}
    longer = {m: ch.finished(m, **rung) for m in short}
    return {**out, "ladder": {"1x": short, SCHEDULE_RUNG: {m: r for m, r in longer.items() if r is not None}}}


def wider_pair(ch: Chapter, cap: dict) -> dict | None:
    """A pair of students that may differ in both accuracies where chapter 06's do not, priced from the runs in hand:
    the small CNN at twice the large student's width as the large student, against the present large student as the
    small one (its runs are reused). It adds the runs of `cap` (`capacity`) on the large student, its clean teacher
    and the other seeds of PGD-AT, TRADES and CKTAT (that student's spread, `seeded`; the CKTAT seeds' own teachers
    left out) at the wider network, each its recorded seconds
    (`results.run_seconds`) times the ratio of the two networks' training FLOPs per 32x32 image
    (`cktat_core.bench.count_flops`, forward and backward), and the distillations of the wider PGD-AT into the present
    large student as its authors run ARD, IAD and RSLAD, each its same-size robust-teacher run times that ratio (from
    above: only the teacher's forward pass grows). Returns {"widths": (small, large), "ratio", "wider" and
    "distilled" (how many runs of each kind), "seconds", "check": the wider PGD-AT run alone, what `capacity_checks`
    pays first to see whether the pair differs, "budget": the budget it would come out of, `baselines.beyond_budget`'s
    words}, or None where the chapter's pair already differs in both accuracies (`capacity.separated`) or the large
    student is not the small CNN (ResNet-18 and WRN-34-10 are the paper's own pair)."""
    import torch

    from .baselines import beyond_budget
    from cktat_core.bench import count_flops
    from cktat_core.models import build_model
    from cktat_core.results import run_seconds

    r = ch.resolved("pgdat", **cap["pair"]["large"])
    if r.model != "small_cnn" or separated(cap["checks"][-1][1]):
        return None
    width = r.width or SMALL_CNN_WIDTH

    def flops(w: int) -> int:
        net = build_model("small_cnn", ch.num_classes, width=w)
        return count_flops(lambda: net(torch.zeros(1, 3, 32, 32)).sum().backward())

    ratio = flops(2 * width) / flops(width)
    runs = cap["runs"]
    wider = [x for (_, _, k), x in runs.items() if k == "large"]
    wider += [cap["teachers"]["large"], *(r for rs in seeded(ch, **cap["pair"]["large"]).values() for r in rs[1:])]
    distilled = [runs[t, "robust", "large"] for t, kind, _ in runs if kind == "robust (large)"]
    seconds = lambda x: run_seconds(x)[0] * ratio
    cost = sum(map(seconds, wider + distilled))
    what = (f"{len(wider)} runs at width {2 * width} and {len(distilled)} distilling its PGD-AT into width {width}")
    return {"widths": (width, 2 * width), "ratio": ratio, "wider": len(wider), "distilled": len(distilled),
            "seconds": cost, "check": seconds(runs["PGDAT", "none", "large"]),
            "budget": beyond_budget(cost, what, ladder_plan(ch))}


def ladder_finished(ch: Chapter, methods=HEADLINE) -> dict[str, dict[str, dict]] | None:
    """The runs of `ladder` finished in this results folder, read without training anything (the readings of chapters
    02 and 03 use them; chapter 10 trains them): rung -> method -> its run, for the methods whose run at that rung
    has landed, and at "1x" method -> its finished seeds (the base every change is measured from, `budget.change`);
    None when the profile's own runs are missing."""
    out = {}
    for rung, fields in ladder_rungs(ch).items():
        out[rung] = {m: r for m in methods if (r := ch.finished(m, **fields)) is not None}
    base = {m: ch.config(m).seed for m in methods}
    seeds = {m: [r for r in (ch.finished(m, **({} if s == base[m] else {"seed": s})) for s in SEEDS) if r]
             for m in methods}
    if not all(runs and runs[0]["seed"] == base[m] for m, runs in seeds.items()):
        return None  # the profile's own run of a method is missing
    return {"1x": seeds, **out}


def seed_autoattack(ch: Chapter, runs: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """method -> per seed, the AutoAttack evaluation (natural and `aa`, the profile's version) of the run's last
    epoch on the attack suite's test images (`baselines.evaluation_limit`), cached in <out>/eval/<run>_aa.json:
    the headline difference under AutoAttack with the seeds' spread (chapter 02)."""
    from . import baselines
    from cktat_core.eval_checkpoint import evaluate_checkpoint

    limit = baselines.evaluation_limit(ch.profile, ch.overrides)
    version = baselines.aa_version(ch.profile)
    out = {}
    for m, seeds in runs.items():
        out[m] = [evaluate_checkpoint(os.path.join(r["run_dir"], r["student"]["checkpoints"]["last"]), "natural,aa",
                                      limit=limit, aa_version=version, progress=ch.progress, reuse=True,
                                      restore=ch.weights, out=f"{ch.out}/eval/{r['name']}_aa.json") for r in seeds]
    return out


def narrower_students(ch: Chapter, default_width: int = SMALL_CNN_WIDTH) -> list[dict]:
    """The finished runs of this results folder (stand-alone teachers included) on chapter 06's candidate small
    students after the first (`capacity.capacity_candidates`): the runs that looked for a pair of students that differ,
    and trained the chapter on it, beyond the pair every profile starts from. They come out of the budget of the
    ladder and the readings' runs (`ladder_plan`). Read from the results' recorded networks; nothing is trained."""
    import glob
    import json

    r = ch.resolved("pgdat")
    later = capacity_candidates(r.model, r.width, default_width)[1:]
    nets = {(c.model, c.width) for c in (ch.resolved("pgdat", **pair["small"]) for pair in later)}
    out = []
    for path in sorted(glob.glob(os.path.join(ch.runs, "*", "result.json"))):
        with open(path) as fh:
            res = json.load(fh)
        settings = res.get("settings") or {}
        if (settings.get("model"), settings.get("width")) in nets:
            out.append({**res, "name": os.path.basename(os.path.dirname(path))})
    return out


def ladder_plan(ch: Chapter) -> dict:
    """What the ladder and the readings' runs take of their budget in this results folder (`baselines.readings_plan`),
    read without training anything: the budget a run no stage trains would come out of (`baselines.beyond_budget`). A
    reading's run not trained yet is estimated from its method's 1x run (`baselines.scaled_seconds`); where that is
    missing too, the readings' runs are left aside. Chapter 06's runs on its narrower students (`narrower_students`)
    count with the readings' runs."""
    from .baselines import readings_plan, scaled_seconds

    rungs = ladder_rungs(ch)
    base = {m: ch.finished(m) for m in HEADLINE}
    finished = {k: {m: ch.finished(m, **fields) for m in HEADLINE} for k, fields in rungs.items()}
    readings, estimated = [], 0.0
    for m, fields in reading_plan(ch).values():
        if (done := ch.finished(m, **fields)) is not None:
            readings.append(done)
        elif (short := ch.finished(m)) is not None:
            estimated += scaled_seconds(short, fields.get("epochs"), fields.get("attack_steps"))
        else:
            return readings_plan(base, rungs, finished, None)
    return readings_plan(base, rungs, finished, readings, estimated, narrow=narrower_students(ch))


def long_rows_cost(ch: Chapter, rows, short: dict[str, dict], long: dict[str, dict | None], factor: int,
                   rung: str, table: str = "Table 4") -> str:
    """What the rows of `table` at `factor` times the epochs would cost beyond the ladder (`short`: label -> the
    profile's run; `long`: label -> the longer run where finished): the rows not finished that the ladder does not
    train (the headline methods at their own settings), each its run's seconds scaled (`scaled_seconds`), with the
    budget it would come out of (`beyond_budget`, `ladder_plan`)."""
    from .baselines import beyond_budget, scaled_seconds

    in_ladder = lambda r: r.method in HEADLINE and ch.config(r.method, **r.fields) == ch.config(r.method)
    planned = reading_names(ch)  # a row the `readings` stage trains is paid there
    in_readings = lambda r: ch.name(r.method, epochs=factor * short[r.label]["config"]["epochs"], **r.fields) in planned
    missing = [r.label for r in rows if not long.get(r.label) and not in_ladder(r) and not in_readings(r)]
    cost = sum(scaled_seconds(short[m], factor * short[m]["config"]["epochs"]) for m in missing)
    what = f"the {len(missing)} {table} row{'s' * (len(missing) != 1)} the ladder does not train, at its {rung} schedule"
    return beyond_budget(cost, what, ladder_plan(ch))


AA_SEEDED = ("pgdat", "cktat")  # the methods whose seeds are attacked with AutoAttack (TRADES's kept no weights)


def suite_spreads(ch: Chapter, columns, robust: str) -> dict[str, Spread | None]:
    """column -> the run-to-run spread a single run's accuracy in that column is judged against (its `upper` bound is
    the margin): natural accuracy and `robust` (the runs' own test attack, PGD-20) pooled over the headline methods'
    seeds (`spreads`); AutoAttack ("aa") over the seeds of `AA_SEEDED` (`seed_autoattack`); every other attack of the
    suite (PGD-100, MIM, CW) takes `robust`'s, since no seed is attacked with it (`report.margins_sentence` says so)."""
    from .noise import pooled_spread

    out = spreads(ch, ("natural", robust))
    if "aa" in columns:
        seed_aa = seed_autoattack(ch, {m: ch.seeds(m) for m in AA_SEEDED})
        out["aa"] = pooled_spread({m: [e["attacks"]["aa"]["accuracy"] for e in evs] for m, evs in seed_aa.items()})
    return {c: out.get(c, out[robust]) for c in columns}


def pooled_over(columns, robust: str) -> dict[str, str]:
    """column -> whose seeds `suite_spreads` pools for it, in words (what `report.margins_sentence` names)."""
    from .report import listed

    owners = lambda ms: listed([f"{budget.NAMES[m]}'s" for m in ms])
    rest = [m for m in HEADLINE if m not in AA_SEEDED]
    aa = f"{owners(AA_SEEDED)} seeds" + (f": {owners(rest)} are not attacked with it" if rest else "")
    return {c: aa if c == "aa" else f"{owners(HEADLINE)} seeds" for c in columns if c in seeded_columns(robust)}


def attribution_models(ch: Chapter) -> tuple[dict, dict[str, str]]:
    """Chapter 05's models: the headline summary (`Chapter.compare`) and name -> checkpoint of PGD-AT, TRADES and
    CKTAT (the seed-0 runs) and the clean teacher they start from."""
    summary = ch.compare(list(HEADLINE))
    paths = {r["paper"]: r["checkpoint"] for r in summary["rows"]}
    return summary, {**paths, "clean teacher": summary["teachers"]["clean"]["checkpoint"]}


def teacher_mass(ch: Chapter, taus=TAUS) -> dict[float, float]:
    """Chapter 07's reading of tau: the clean teacher's mean softened probability of the true class on the
    validation split, per tau (`eval_checkpoint.true_class_mass`, cached in <out>/eval)."""
    from cktat_core.eval_checkpoint import true_class_mass

    return true_class_mass(ch.teacher("clean")["checkpoint"], ch.config("cktat"), taus,
                           f"{ch.out}/eval/teacher_true_class_mass.json", restore=ch.weights)


def analyses(ch: Chapter) -> None:
    """What chapters 04, 05 and 07 compute from the weights of the shared runs, each cached with the results, so
    the chapters re-execute in a clone without the weights: chapter 04's suite of the clean teacher behind input
    rounding (`baselines.masked_teacher`; its suites of PGD-AT, TRADES and CKTAT are Table 4's rows), chapter 05's
    attribution maps (`attributions.measured`) and chapter 07's softened labels (`teacher_mass`)."""
    from . import attributions, baselines
    from cktat_core.data import load_test

    summary, paths = attribution_models(ch)
    limit = baselines.evaluation_limit(ch.profile, ch.overrides)
    baselines.masked_teacher(ch, paths["clean teacher"], limit, baselines.aa_version(ch.profile),
                             baselines.eps_sweep(summary["config"]["eps"]))
    cfg = ch.resolved("pgdat")
    test, _ = load_test(cfg.dataset, cfg.data_dir, cfg.test_limit, cfg.download)
    attributions.measured(ch, paths, test, attributions.table5_images(test))
    teacher_mass(ch)


def distilled(ch: Chapter, method: str, kind: str, checkpoint: str, **fields) -> dict:
    """`method` taught by a `kind` ("clean" or "robust") teacher read from `checkpoint`; teacher_kind enters the run's
    name only where it is not the method's own."""
    extra = {} if METHODS[method].teacher == kind else {"teacher_kind": kind}
    return ch.variant(method, **fields, **extra, teacher_checkpoint=checkpoint)


AUTHORS_ROBUST = ("ard", "iad", "rslad")  # distilled by their authors from a larger robust teacher


def capacity_checks(ch: Chapter, default_width: int = SMALL_CNN_WIDTH) -> tuple[list[tuple[dict, dict]], list[dict]]:
    """(checks, untried): (pair, separation) for the candidate pairs of students (`capacity.capacity_candidates`),
    the nearest width first, up to the first whose students' PGD-AT differ beyond noise on validation in both
    accuracies (`capacity.separated`): each candidate costs one PGD-AT run of its small student, so the pair is chosen
    by measurement, the least extreme that differs. Where the chapter may not train, a candidate after the first is
    checked once its PGD-AT has landed (`Chapter.landed`); `untried` holds the candidates not checked yet while none
    checked separates."""
    r = ch.resolved("pgdat")
    candidates = capacity_candidates(r.model, r.width, default_width)
    out = []
    for i, pair in enumerate(candidates):
        small = ch.variant("pgdat", **pair["small"]) if i == 0 else ch.landed("pgdat", **pair["small"])
        if small is None:
            return out, candidates[i:]
        large = ch.variant("pgdat", **pair["large"])
        sep = separation(small["student"]["history"], large["student"]["history"], small["data"]["val"])
        out.append((pair, sep))
        if separated(sep):
            break
    return out, []


def capacity(ch: Chapter, default_width: int = SMALL_CNN_WIDTH) -> dict:
    """Table 1's runs on the pair of students `capacity_checks` chooses: {"pair": {"small": fields, "large": fields},
    "checks": [(pair, separation), ...], "untried": [pair, ...] (`capacity_checks`), "teachers": {capacity: clean
    teacher run}, "runs": {(method title, teacher, capacity): run}}. Teacher is "none" (PGD-AT), "clean", "clean
    (co-trained)" (LBGAT), "robust" (the same capacity's PGD-AT run, last epoch) or "robust (large)" (the large
    student's PGD-AT distilled into the small student, as ARD's, IAD's and RSLAD's authors distil a larger robust model). PGD-AT, TRADES and CKTAT are trained
    with the book's seeds on both students (`seeded`), so each student's runs are judged against its own spread
    (`spreads`).

    The chapter's own network is trained first: its clean teacher and its PGD-AT are the runs every chapter shares,
    whose weights a clone trains again for the distillers, so the runs that need those weights follow at once."""
    checks, untried = capacity_checks(ch, default_width)
    pair = checks[-1][0]
    teachers = {k: ch.teacher("clean", **f) for k, f in pair.items()}
    runs, robust = {}, {}
    for k in sorted(pair, key=lambda k: bool(pair[k])):  # the network with no changed field, the shared one, first
        f = pair[k]
        pgdat = seeded(ch, **f)["pgdat"][0]  # PGD-AT, TRADES and CKTAT with the book's seeds: each student's spread
        runs["PGDAT", "none", k] = pgdat
        runs["CKTAT", "clean", k] = ch.variant("cktat", **f)
        for m in DISTILLERS:
            runs[METHODS[m].title, "clean", k] = distilled(ch, m, "clean", teachers[k]["checkpoint"], **f)
        runs["LBGAT", "clean (co-trained)", k] = ch.variant("lbgat", **f)
        robust[k] = os.path.join(pgdat["run_dir"], pgdat["student"]["checkpoints"]["last"])
        for m in DISTILLERS:
            runs[METHODS[m].title, "robust", k] = distilled(ch, m, "robust", robust[k], **f)
    for m in AUTHORS_ROBUST:
        runs[METHODS[m].title, "robust (large)", "small"] = distilled(ch, m, "robust", robust["large"], **pair["small"])
    return {"pair": pair, "checks": checks, "untried": untried, "teachers": teachers, "runs": runs}


STAGES = ("pgdat", "tau", "headline", "table3", "controls", "analyses", "table4", "capacity", "ladder", "readings")


def train_all(ch: Chapter, stages=STAGES, say=print) -> None:
    """Every run the table chapters read, trained (or re-read) through the chapters' own calls, without executing
    a notebook, in an order that checks the profile first: `pgdat`, PGD-AT with the book's seeds (the profile's
    targets); `tau`, the clean teacher and the temperature sweep (the profile's tau, picked on validation); then
    `headline` (chapters 02, 03; with each seed's AutoAttack), `table3` (07), `controls` (PGD-AT and TRADES from the
    clean teacher: 02, 03), `analyses` (what chapters 04, 05 and 07 compute from the weights), `table4`, the rows of
    chapters 08 and 09 with their attack suites and per-image results, `capacity` (06), `ladder` (10) and
    `readings` (the runs the chapters' readings name).
    Into a results folder other than the book's, with overrides, it builds a new point of a profile while the
    committed book keeps reading its own.

    `table4` attacks each row right after training it: a clone holds the committed results, never the checkpoints,
    so a build that stops between rows resumes in a new clone without training a finished row again (only a row
    whose suite is not written yet needs its weights, `Chapter.weights`). It starts with the rows of the shared
    runs, whose weights `analyses` has just needed too."""
    from . import baselines

    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError("--stages", f"must be among {', '.join(STAGES)}", unknown[0])
    for stage in stages:
        if stage == "pgdat":
            ch.seeds("pgdat")
        elif stage == "tau":
            for t in TAUS:
                ch.variant("cktat", tau=t)
        elif stage == "headline":
            seed_autoattack(ch, {m: runs for m, runs in headline(ch).items() if m in AA_SEEDED})
        elif stage == "table3":
            table3(ch)
        elif stage == "analyses":
            analyses(ch)
        elif stage == "table4":
            limit = baselines.evaluation_limit(ch.profile, ch.overrides)
            aa = baselines.aa_version(ch.profile)
            rows = sorted(baselines.TABLE4 + baselines.RAAT_TABLE1, key=lambda r: r.method not in HEADLINE)
            for row in rows:  # one row at a time, the shared runs' first (their weights may be here): see above
                runs = baselines.trained(ch, [row])
                baselines.evaluated(ch, [row], runs, limit, aa, limit)
                baselines.masks(ch, [row], runs, limit)
        elif stage == "controls":
            controls(ch)
        elif stage == "capacity":
            capacity(ch)
        elif stage == "ladder":
            ladder(ch)
        elif stage == "readings":
            reading_runs(ch)
        say(f"stage {stage}: done")



CONTROL_FOLDER = "bf16-control"  # in the profile's results: PGD-AT's seeds in bf16 autocast (its README.md)
CONTROL_PRECISION = "bf16"  # what the folder's runs trained in, where they do not record it themselves


def precision_control(ch: Chapter, method: str = "pgdat") -> dict[str, list[dict]]:
    """precision -> `method`'s seed runs trained in it (`report.trained_precision`): the book's finished seeds and,
    for a seed whose run trained in another arithmetic, that seed's run in the control folder of the results
    (`<results>/bf16-control/runs/`: the same recipe trained on a machine with bf16 instructions,
    `CONTROL_PRECISION` where a run does not record it), kept only where every setting the book's run records is the
    same. Nothing is trained; {} where the book's seeds are not all finished."""
    from cktat_core.results import load_result

    from .report import trained_precision

    base = ch.config(method)
    book = [ch.finished(method, **({} if s == base.seed else {"seed": s})) for s in SEEDS]
    if any(r is None for r in book):
        return {}
    out: dict[str, list[dict]] = {}
    for r in book:
        mine = trained_precision(r)[0] or "not recorded"
        out.setdefault(mine, []).append(r)
        path = os.path.join(ch.out, CONTROL_FOLDER, "runs", r["name"])
        if not os.path.isfile(os.path.join(path, "result.json")):
            continue
        other = load_result(path)
        theirs = trained_precision(other)[0] or CONTROL_PRECISION
        if theirs != mine and all(other["settings"].get(k) == v for k, v in r["settings"].items()):
            out.setdefault(theirs, []).append(other)
    return out

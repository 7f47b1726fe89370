"""Chapter 07 (the paper's Table 3): ablation and sweep rows of CKTAT runs, the value a sweep picks on the
validation split, and the paper's claims about them (`ablation`, `trend`, by the rules of `claims`).

Torch-free: every function reads what `train.run` wrote (`result.json`) or numbers taken from it.

- `table3_row`: one row of Table 3 for a run: natural and PGD test accuracy at the last epoch and at the epoch
  chosen on validation, that epoch, its validation score, and (multi-view data) the probe accuracies.
- `pick_on_validation`, `pick_sentence`: the swept value validation picks: the best validation score's (the
  trainer's selection score: the best epoch's validation PGD accuracy), or the paper's value where that lies within
  the sampling noise of the best; never the test set.
- `sweep_rows`: the rows a page shows, each run against the full CKTAT run image by image (`noise.compare`).
- `spearman`: rank correlation (scipy).
- `ablation`, `trend`, `collapsed`: Table 3a's and the sweeps' claims; a run that collapsed to chance tests nothing.
- `tau_reading`: our reading of the tau sweep where it contradicts the paper.
"""

from __future__ import annotations

from .claims import LEVEL, WITHIN_NOISE, Claim, judged, paper_margin, side, untestable, verdict
from .noise import ABOVE, BELOW, WITHIN, compare, compare_evaluations, p_text
from .noise import spearman as noise_spearman
from .report import row, validation_key  # noqa: F401  (chapter 07 calls ablations.validation_key)


def best_epoch(history: list[dict]) -> dict:
    """The epoch record the trainer keeps as best: the first epoch with the highest selection score."""
    key = validation_key(history)
    return max(history, key=lambda h: (h[key], -h["epoch"]))


def table3_row(res: dict, robust: str) -> dict:
    """One Table 3 row of a run's `result.json` (`train.run`): `natural` and `robust` at the last epoch and at the
    best-on-validation epoch (`best natural`, `best <robust>`, `best epoch`), the validation score of that epoch
    (`val <robust>`), and on the multi-view data the last epoch's probe accuracies and single-view accuracy with a
    weak feature 1 (`probe_f2`, `probe_f1`, `needs f2`)."""
    student = res["student"]
    last = row(student["last"])
    best = row(student.get("best", student["last"]))
    chosen = best_epoch(student["history"])
    out = {"natural": last["natural"], robust: last[robust], "best epoch": chosen["epoch"],
           "best natural": best["natural"], f"best {robust}": best[robust],
           f"val {robust}": chosen[validation_key(student["history"])]}
    for key, name in (("probe_f2", "probe_f2"), ("probe_f1", "probe_f1"), ("natural weak_f1", "needs f2")):
        if key in last:
            out[name] = last[key]
    return out


def pick_on_validation(histories: dict[float, list[dict]], n_val: int, default: float | None = None) -> dict:
    """The swept value validation picks: the best run's value (its validation selection score, `best_epoch`), unless
    `default` (the paper's value) lies within the sampling noise of it (`noise.compare` on the n_val validation
    images): a difference the validation split cannot resolve never moves the choice away from the paper's setting.
    Without a `default` (or when it was not swept), the smallest value within noise of the best.

    Returns {"value", "score", "best", "best_score", "runner_up", "runner_up_score", "tied", "separated",
    "default"}: `best` is the highest-scoring value (ties: higher validation natural accuracy, then the smaller
    value), `runner_up` the next one, `tied` every value within noise of the best, and `separated` whether the best
    is alone there."""
    def rank(value):
        h = best_epoch(histories[value])
        return h[validation_key(histories[value])], h["val_natural"], -value

    order = sorted(histories, key=rank, reverse=True)
    score = lambda v: rank(v)[0]
    top = score(order[0])
    tied = sorted(v for v in order if compare(top, score(v), n=n_val).word == WITHIN)
    if default not in histories:
        default = None  # the paper's value was not swept: nothing to keep
    value = (default if default in tied else order[0]) if default is not None else tied[0]
    out = {"value": value, "score": score(value), "best": order[0], "best_score": top, "runner_up": None,
           "runner_up_score": None, "tied": tied, "separated": len(tied) == 1, "default": default}
    if len(order) > 1:
        out.update(runner_up=order[1], runner_up_score=score(order[1]))
    return out


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Spearman's rank correlation of two equally long lists (`noise.spearman`, scipy), None when undefined."""
    if len(xs) != len(ys):
        raise ValueError(f"spearman needs two lists of the same length, got {len(xs)} and {len(ys)}")
    return noise_spearman(xs, ys, "two-sided")[0]


def pick_sentence(pick: dict, name: str, profile: str, profile_value: float, n_val: int) -> str:
    """The value validation picks for `name` ("tau") by `pick_on_validation`'s rule, and whether the profile uses
    it."""
    s = (f"The best validation PGD accuracy is {name} = {pick['best']:g}'s ({pick['best_score']:.1f}% on {n_val} "
         f"validation images)")
    default = pick.get("default")
    if pick["separated"]:
        if pick["runner_up"] is not None:
            s += (f", further than the sampling noise from the runner-up, {name} = {pick['runner_up']:g} at "
                  f"{pick['runner_up_score']:.1f}%")
        s += f"; validation picks {name} = {pick['value']:g}"
    elif default is not None and pick["value"] == default:
        s += (f"; {name} = {', '.join(f'{v:g}' for v in pick['tied'])} all lie within the sampling noise of it, so "
              f"validation cannot separate them and the paper's value stays, {name} = {pick['value']:g}")
    elif default is not None:
        s += (f"; the paper's {name} = {default:g} lies below it beyond the sampling noise, so validation picks "
              f"{name} = {pick['value']:g}")
    else:
        s += (f"; {name} = {', '.join(f'{v:g}' for v in pick['tied'])} all lie within the sampling noise of it, so "
              f"validation cannot separate them and picks the smallest, {name} = {pick['value']:g}")
    s += f". The {profile} profile uses {name} = {profile_value:g}: "
    if pick["value"] == profile_value:
        return s + "the same value."
    if profile == "paper":
        return s + f"the paper's value; on these runs validation would pick {pick['value']:g}."
    return s + f"a different value; the profile should be set to {pick['value']:g}."


def sweep_rows(runs: dict[str, dict], full: dict, robust: str, spread: float | None = None,
               paper: dict[str, list[float]] | None = None) -> list[dict]:
    """Table 3 rows for the page, one per run: last / best-on-validation accuracies in one cell each, the best epoch
    and its validation score, the run against the full CKTAT run in `robust` accuracy (`noise.compare` image by
    image, with the seeds' `spread` as the run-to-run margin: "above", "within noise", "below"), and the paper's
    natural and PGD accuracies for the same row when it has them, with our last epoch minus them."""
    out = []
    for label, res in runs.items():
        r = table3_row(res, robust)
        d = {"row": label, "natural": f"{r['natural']:.1f} / {r['best natural']:.1f}",
             robust: f"{r[robust]:.1f} / {r[f'best {robust}']:.1f}", "best epoch": r["best epoch"],
             "validation": r[f"val {robust}"],
             "vs full": "-" if res is full or (res.get("run_dir") and res.get("run_dir") == full.get("run_dir")) else
             compare_evaluations(res["student"]["last"], full["student"]["last"], robust, spread).word}
        if paper is not None:
            p = paper.get(label, [None, None])
            d.update({"paper natural": p[0], "paper PGD": p[1],
                      "ours - paper": "-" if p[0] is None else f"{r['natural'] - p[0]:+.1f} / {r[robust] - p[1]:+.1f}"})
        out.append(d)
    return out


def tau_reading(mass: dict[float, float], teacher_accuracy: float, num_classes: int, claims: list) -> str:
    """Our reading of the tau sweep where it contradicts the paper (`claims`: the two tau trends of `trend`),
    from the page's numbers: how much of the clean teacher's softened label stays on the true class as tau grows
    (`eval_checkpoint.true_class_probability`), and how accurate that teacher is."""
    contradicted = [c for c in claims if c.verdict == "contradicted"]
    if not contradicted:
        return ""
    lo, hi = min(mass), max(mass)
    return (f"**Our reading.** The clean teacher classifies {teacher_accuracy:.1f}% of the test images. On the "
            f"validation images its label at temperature tau keeps {100 * mass[lo]:.0f}% of its mass on the true "
            f"class at tau = {lo:g} and {100 * mass[hi]:.0f}% at tau = {hi:g}, against {100 / num_classes:.0f}% for a "
            f"uniform label. The paper (Sec. 4.2) softens the clean model's predictions because they are \"too "
            f"difficult for the adversarial training model to learn\". We think a teacher this uncertain has little to "
            f"give up: a higher temperature mostly removes what the student could learn from it, so here the trend "
            f"runs the other way. These runs do not test that reading.")


def trend(chapter: str, section: str, claim: str, measure: str, values: list[float], ours: list[float],
          paper: list[float], alpha: float = 0.05, stated: str | None = None,
          rests_on: tuple[str, ...] = (), unlike: str | None = None) -> Claim:
    """A claim that an accuracy rises (or falls) along a sweep: the direction the paper's text states (`stated`:
    ABOVE rises, BELOW falls; Sec. 5.1 for tau and for beta's natural accuracy), else the sign of the paper's
    Spearman correlation between the swept values and its accuracies; ours is judged by the two-sided Spearman test
    (`scipy.stats.spearmanr`) over our runs: the same sign at p < alpha reproduces the claim, the opposite sign
    contradicts it, anything else is within noise. `paper` and `ours` are the two correlations. A sweep at another
    setting than the paper's (`unlike`: why) is not testable."""
    from .noise import spearman

    rho_paper, _ = spearman(values, paper, "two-sided")
    rho, p = spearman(values, ours, "two-sided")
    rows = tuple(rests_on)
    if stated is None and (rho_paper is None or rho_paper == 0):
        return untestable(chapter, section, claim, measure, rho_paper, "the paper's values show no trend", rows)
    direction = stated or (ABOVE if rho_paper > 0 else BELOW)
    source = "text" if stated else "numbers"
    if unlike:
        return untestable(chapter, section, claim, measure, rho_paper, unlike, rows)
    if len(values) < 3:
        return untestable(chapter, section, claim, measure, rho_paper, f"{len(values)} runs: a trend needs three",
                          rows)
    if rho is None:
        return Claim(chapter, section, claim, measure, rho_paper, None, "our accuracies are constant", WITHIN_NOISE,
                     rests_on=rows, source=source)
    word = WITHIN if p >= alpha else (ABOVE if rho > 0 else BELOW)
    said = f"Spearman over {len(values)} runs, {p_text(p)}"
    if word == WITHIN:  # rule 5 of `claims`: an ordering with no detectable relation says so
        said += ": no detectable trend along the sweep"
    return Claim(chapter, section, claim, measure, rho_paper, rho, said, verdict(direction, word), rests_on=rows,
                 source=source)

def unlike_paper(sweep: str | None, tau: float, beta: float) -> str | None:
    """Why a Table 3 claim at our `tau` and `beta` cannot be judged against the paper's rows, or None: Table 3a and
    3c are at tau 5, 3b at beta 6 (our reading: their full rows are Table 4's beta-6 row). `sweep`: "tau" (3b, only
    beta matters), "beta" (3c, only tau), None (3a, both)."""
    from .report import TABLE4_BETA, TABLE4_TAU

    off = [f"{k} {v:g} (the paper's {p:g})" for k, v, p in (("tau", tau, TABLE4_TAU), ("beta", beta, TABLE4_BETA))
           if v != p and k != sweep]
    return f"this profile's CKTAT runs at {' and '.join(off)}: the paper's rows are at another setting" if off else None


def trend_span(name: str, values: list[float], until: float | None, rising: bool) -> tuple[list[float], str]:
    """The sweep values a trend claim is tested on and the claim's words: every value, or those up to `until` where
    the paper's text states the trend only that far (tau: a rise up to 5, then a decline)."""
    kept = [v for v in values if until is None or v <= until]
    words = f"{'rises' if rising else 'falls'} as {name} grows" + (f" to {until:g}" if until is not None else "")
    return kept, words


def collapsed(result: dict, alpha: float = 0.05) -> str | None:
    """Why a run's network cannot test a claim, or None: its natural test accuracy is not above chance (one over the
    number of classes) beyond noise (`scipy.stats.binomtest`, one-sided), as for a network that gives every image
    the same label."""
    from scipy.stats import binomtest

    nat = result["student"]["last"]["test"]["attacks"]["natural"]
    classes = nat.get("per_class") or {}
    if not classes:
        return None
    chance = 1 / len(classes)
    if binomtest(nat["correct"], nat["total"], chance, alternative="greater").pvalue < alpha:
        return None
    full = [c for c, acc in classes.items() if acc == 100.0]
    label = f"; every {full[0]} image is right and every other class wrong" if len(full) == 1 else ""
    return (f"the run collapsed: natural accuracy {nat['accuracy']:.1f}% on {nat['total']:,} images, chance "
            f"{100 * chance:.1f}%{label}")

def ablation(chapter: str, part: str, ablated: dict, full: dict, paper_ablated: list[float],
             paper_full: list[float], attack: str, column: int = 1, spread: float | None = None,
             stated: str | None = None, rests_on: tuple[str, ...] = (), unlike: str | None = None) -> Claim:
    """Table 3a: removing `part` of CKTAT ("the clean-model initialisation") moves `attack` accuracy as in the paper
    (its column `column`: 0 natural, 1 PGD). The direction is the one the paper's numbers show beyond their own noise
    (`side`), or `stated` (ABOVE or BELOW) where the paper's text states it in words (Sec. 5.1: removing the
    initialisation or the teacher term "resulted in a decrease in the natural accuracy and robust accuracy"), which
    is the claim the paper makes. Ours: the ablated run against the full run on the same test images (McNemar), with
    the pooled seed spread's upper bound (`spread`) as the run-to-run margin. An ablated run that collapsed to chance
    (`collapsed`) tests nothing: the claim is not testable, with the reason; so is a run at another setting than the
    paper's rows (`unlike`: why, e.g. our tau is not the paper's)."""
    from .noise import compare_evaluations

    label = "natural" if column == 0 else attack.replace("pgd", "PGD-")
    effect = paper_ablated[column] - paper_full[column]
    noise = paper_margin(paper_ablated[column], paper_full[column])
    direction = stated or side(effect, noise)
    word = {BELOW: "lowers", ABOVE: "raises", LEVEL: "leaves unchanged"}[direction]
    metric = "natural" if column == 0 else attack
    claim, measure = f"Removing {part} {word} {label} accuracy", f"ablated - full CKTAT, {label} (points)"
    why = unlike or collapsed(ablated)
    if why:
        return untestable(chapter, "Table 3a", claim, measure, effect, why, rests_on)
    return judged(chapter, "Table 3a", claim, measure, effect,
                  compare_evaluations(ablated["student"]["last"], full["student"]["last"], metric, spread), direction,
                  noise, rests_on, stated=stated is not None)

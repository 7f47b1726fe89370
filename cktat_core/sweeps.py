"""Table 3 of the paper (002) as data: ablation and sweep rows of CKTAT runs, the value a sweep picks on the
validation split, and the paper's two claims about tau and beta checked against a sweep.

Torch-free: every function reads what `train.run` wrote (`result.json`) or numbers taken from it.

- `table3_row`: one row of Table 3 for a run: natural and PGD test accuracy at the last epoch and at the epoch
  chosen on validation, that epoch, its validation score, and (multi-view data) the probe accuracies.
- `pick_on_validation`: the swept value validation picks: the smallest one within the sampling noise of the best
  validation score (the trainer's selection score: the best epoch's validation PGD accuracy); never the test set.
- `spearman`, `peak`, `tau_claim`, `beta_claim`: the paper's sentences "performance rises up to tau = 5 and
  falls after it" (Sec. 5, Table 3b) and "a larger beta trades natural for robust accuracy" (Table 3c) as
  numbers: where each sweep peaks and rank correlations between the swept value and each accuracy, for our
  sweep and for the paper's.
- `seed_noise`: the run-to-run difference of two seeds beside the binomial noise of the test set.
"""

from __future__ import annotations

from .checks import noise_margin
from .noise import WITHIN, compare, compare_evaluations
from .report import row


def validation_key(history: list[dict]) -> str:
    """The validation accuracy the trainer selects the best epoch on: its PGD accuracy (natural for clean runs)."""
    keys = [k for k in history[0] if k.startswith("val_pgd")]
    return keys[0] if keys else "val_natural"


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


def pick_on_validation(histories: dict[float, list[dict]], n_val: int) -> dict:
    """The swept value validation picks: the smallest value whose run's validation selection score (`best_epoch`)
    lies within the sampling noise of the best run's (`checks.noise_margin` on the n_val validation images), so a
    difference that the validation split cannot resolve never moves the choice away from the least change.

    Returns {"value", "score", "best", "best_score", "runner_up", "runner_up_score", "tied", "separated"}: `best` is
    the highest-scoring value (ties: higher validation natural accuracy, then the smaller value), `runner_up` the
    next one, `tied` every value within noise of the best, and `separated` whether the best is alone there."""
    def rank(value):
        h = best_epoch(histories[value])
        return h[validation_key(histories[value])], h["val_natural"], -value

    order = sorted(histories, key=rank, reverse=True)
    score = lambda v: rank(v)[0]
    top = score(order[0])
    tied = sorted(v for v in order if compare(top, score(v), n=n_val).word == WITHIN)
    out = {"value": tied[0], "score": score(tied[0]), "best": order[0], "best_score": top, "runner_up": None,
           "runner_up_score": None, "tied": tied, "separated": len(tied) == 1}
    if len(order) > 1:
        out.update(runner_up=order[1], runner_up_score=score(order[1]))
    return out


def _ranks(values: list[float]) -> list[float]:
    """Ranks from 1, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Spearman's rank correlation (Pearson's on average ranks); None when either side is constant or n < 2."""
    if len(xs) != len(ys):
        raise ValueError(f"spearman needs two lists of the same length, got {len(xs)} and {len(ys)}")
    if len(xs) < 2:
        return None
    rx, ry = _ranks(list(xs)), _ranks(list(ys))
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / (sxx * syy) ** 0.5


def peak(curve: dict[float, float]) -> float:
    """The swept value with the highest accuracy (the smaller value on a tie)."""
    return max(sorted(curve), key=lambda v: curve[v])


def rises_then_falls(curve: dict[float, float], n: int) -> bool:
    """Whether the curve has an interior peak: the peak is neither the first nor the last swept value and lies
    above both ends beyond the noise of two accuracies on n images."""
    values = sorted(curve)
    top = peak(curve)
    if top in (values[0], values[-1]):
        return False
    return all(curve[top] - curve[v] > noise_margin(curve[top], curve[v], n) for v in (values[0], values[-1]))


def tau_claim(ours: dict[float, float], paper: dict[float, float], n: int) -> dict:
    """The paper's tau claim (Table 3b: robust accuracy rises up to tau = 5, then falls) on our robust curve.

    Returns the peaks of both curves, whether each rises then falls (`rises_then_falls`; the paper's numbers are
    taken as exact: n = 0 there), and Spearman's correlation between our curve and the paper's over the common
    values of tau."""
    common = sorted(set(ours) & set(paper))
    return {"peak": peak(ours), "paper_peak": peak(paper), "rises_then_falls": rises_then_falls(ours, n),
            "paper_rises_then_falls": rises_then_falls(paper, 0),
            "rank_correlation": spearman([ours[t] for t in common], [paper[t] for t in common])}


def beta_claim(natural: dict[float, float], robust: dict[float, float], paper: dict[float, tuple[float, float]]) -> dict:
    """The paper's beta claim (Table 3c: a larger beta lowers natural and raises robust accuracy) on our sweep:
    Spearman's correlation of beta with natural and with robust accuracy, ours and the paper's. The trade holds
    when beta correlates negatively with natural and positively with robust accuracy."""
    bs, ps = sorted(natural), sorted(paper)
    out = {"natural": spearman(bs, [natural[b] for b in bs]), "robust": spearman(bs, [robust[b] for b in bs]),
           "paper_natural": spearman(ps, [paper[b][0] for b in ps]),
           "paper_robust": spearman(ps, [paper[b][1] for b in ps])}
    out["trade"] = (out["natural"] or 0) < 0 < (out["robust"] or 0)
    out["paper_trade"] = (out["paper_natural"] or 0) < 0 < (out["paper_robust"] or 0)
    return out


def seed_noise(a: dict, b: dict, columns: list[str], n: int) -> dict[str, dict]:
    """Per column, the difference between two seeds' rows and the binomial noise of one accuracy pair on n test
    images; `noise` is the larger of the two: the margin within which two rows of the sweep count as the same."""
    out = {}
    for c in columns:
        seed, binomial = abs(a[c] - b[c]), noise_margin(a[c], b[c], n)
        out[c] = {"seeds": seed, "binomial": binomial, "noise": max(seed, binomial)}
    return out


# ------------------------------------------------------------------------------------ what the page shows
WORDS = {"same": "level with", "higher": "above", "lower": "below"}


def noise_margins(full: dict, others: list[dict], columns: list[str], n: int) -> dict[str, dict]:
    """Per column, the largest seed gap between the full run's row and the other seeds' rows, the binomial margin
    (`seed_noise`), and `noise`: the larger of the two, the margin within which two rows count as the same."""
    out = {}
    for c in columns:
        per_seed = [seed_noise(full, o, [c], n)[c] for o in others] or [seed_noise(full, full, [c], n)[c]]
        out[c] = {"seeds": max(s["seeds"] for s in per_seed), "binomial": max(s["binomial"] for s in per_seed),
                  "noise": max(s["noise"] for s in per_seed)}
    return out


def versus(value: float, reference: float, margin: float) -> str:
    """"same" within `margin` percentage points of the reference, else "higher" or "lower"."""
    return "same" if abs(value - reference) <= margin else ("higher" if value > reference else "lower")


def display_rows(rows: dict[str, dict], robust: str, reference: dict, margin: float,
                 paper: dict[str, list[float]] | None = None) -> list[dict]:
    """Table rows for the page: last / best-on-validation accuracies in one cell each, the best epoch, the feature-2
    probe accuracy when there is one, the robust accuracy against `reference` (`versus`), and the paper's natural
    and PGD accuracies for the same row when it has them."""
    out = []
    for label, r in rows.items():
        d = {"row": label, "natural": f"{r['natural']:.1f} / {r['best natural']:.1f}",
             robust: f"{r[robust]:.1f} / {r[f'best {robust}']:.1f}", "best epoch": r["best epoch"],
             "validation": r[f"val {robust}"], "vs full": versus(r[robust], reference[robust], margin)}
        if "probe_f2" in r:
            d["probe_f2"] = r["probe_f2"]
        if paper is not None:
            p = paper.get(label, [None, None])
            d.update({"paper natural": p[0], "paper PGD": p[1]})
        out.append(d)
    return out


def _list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def noise_sentence(noise: dict[str, dict], robust_name: str, seeds: int, n_test: int) -> str:
    """What the seeds measured and which margin the rest of the page uses."""
    nat, rob = noise["natural"], noise[next(k for k in noise if k != "natural")]
    cause = "the seeds, not the finite test set, set that margin" if rob["seeds"] > rob["binomial"] else \
        "the finite test set, not the seeds, sets that margin"
    return (f"The seeds differ by {nat['seeds']:.2f} points in natural and {rob['seeds']:.2f} in {robust_name} accuracy "
            f"({seeds} seeds, {n_test} test images). Below, two rows count as the same when they differ by at most "
            f"{nat['noise']:.2f} (natural) or {rob['noise']:.2f} ({robust_name}) points; {cause}.")


def ablation_sentence(ours: dict[str, dict], paper: dict[str, list[float]], ablations: list[str], robust: str,
                      robust_name: str, margin: float, full: str = "CKTAT (full)", baseline: str = "PGD-AT") -> str:
    """Table 3a's claim (every removal lowers robust accuracy) against our rows, ablation by ablation."""
    ref, pref = ours[full][robust], paper[full][1]
    verdict = {k: versus(ours[k][robust], ref, margin) for k in ablations}
    agree = [k for k in ablations if verdict[k] == ("lower" if paper[k][1] < pref else "higher")]
    paper_part = _list([f"{k}: {paper[k][1] - pref:+.2f}" for k in ablations])
    ours_part = _list([f"{k}: {ours[k][robust] - ref:+.2f} ({verdict[k]})" for k in ablations])
    base = versus(ours[baseline][robust], ref, margin)
    return (f"In the paper every removal lowers PGD accuracy ({paper_part} points). Ours, in {robust_name} accuracy "
            f"against the full CKTAT run: {ours_part}. {len(agree)} of {len(ablations)} removals "
            f"{'moves' if len(agree) == 1 else 'move'} robust accuracy the way the paper's do{' (' + _list(agree) + ')' if agree else ''}. {baseline}, trained from scratch under "
            f"the same budget, is {WORDS[base]} the full CKTAT in {robust_name} ({ours[baseline][robust]:.2f} vs "
            f"{ref:.2f}); in the paper it is {paper[baseline][1] - pref:+.2f} points.")


def pick_sentence(pick: dict, name: str, profile: str, profile_value: float, n_val: int) -> str:
    """The value validation picks for `name` ("tau"), and whether the profile uses it."""
    s = (f"The best validation PGD accuracy is {name} = {pick['best']:g}'s ({pick['best_score']:.1f}% on {n_val} "
         f"validation images)")
    if pick["separated"]:
        if pick["runner_up"] is not None:
            s += (f", further than the sampling noise from the runner-up, {name} = {pick['runner_up']:g} at "
                  f"{pick['runner_up_score']:.1f}%")
        s += f"; validation picks {name} = {pick['value']:g}"
    else:
        s += (f"; {name} = {', '.join(f'{v:g}' for v in pick['tied'])} all lie within the sampling noise of it, so "
              f"validation cannot separate them and picks the smallest, {name} = {pick['value']:g}")
    s += f". The {profile} profile uses {name} = {profile_value:g}: "
    if pick["value"] == profile_value:
        return s + "the same value."
    if profile == "paper":
        return s + f"the paper's value; on these runs validation would pick {pick['value']:g}."
    return s + f"a different value; the profile should be set to {pick['value']:g}."


def tau_sentence(claim: dict, robust_name: str) -> str:
    """Table 3b's claim (robust accuracy peaks at an interior tau) against our sweep."""
    s = (f"Robust accuracy in the paper rises up to tau = {claim['paper_peak']:g}, then falls. Ours peaks at tau = "
         f"{claim['peak']:g} and " + ("rises then falls beyond noise" if claim["rises_then_falls"] else
                                     "does not rise then fall beyond noise"))
    if claim["rank_correlation"] is not None:
        s += (f"; the rank correlation between our {robust_name} accuracies over tau and the paper's is "
              f"{claim['rank_correlation']:+.2f}")
    return s + "."


def collapse_sentence(rows: dict[float, dict], low: list[float], no_teacher: dict, mass: dict[float, float],
                      robust: str, robust_name: str, beta: float, model: str) -> str:
    """Our reading of the temperatures whose runs end below the full CKTAT, from the page's numbers: the teacher
    term carries the label (without it the student collapses), and a higher tau leaves less of the label on the
    true class while the consistency term keeps its weight."""
    runs = "; ".join(f"tau {t:g}: {rows[t]['natural']:.1f}% natural, {rows[t][robust]:.1f}% {robust_name}" for t in low)
    first, sharpest = min(low), min(mass)
    return (f"At tau = {_list([f'{t:g}' for t in low])} the run ends below the full CKTAT beyond noise ({runs}). Our "
            f"reading, from this page's numbers: the teacher term is the only one that carries the label, and without "
            f"it the student collapses ({no_teacher['natural']:.1f}% natural, {no_teacher[robust]:.1f}% {robust_name} "
            f"in Table 3a). A higher tau weakens that term: the teacher's label keeps {100 * mass[first]:.0f}% on the "
            f"true class at tau = {first:g} against {100 * mass[sharpest]:.0f}% at tau = {sharpest:g}, while beta = "
            f"{beta:g} keeps the full weight of the consistency term, which alone leads to the collapse. The paper "
            f"(Sec. 4.2) argues that a clean teacher's predictions are too difficult for a small student and softens "
            f"them with tau to make them easier; on this {model} student a softer label makes the run worse, not "
            f"better.")


def beta_sentence(claim: dict, rows: dict[float, dict], robust: str, robust_name: str, noise: dict[str, dict]) -> str:
    """Table 3c's claim (a larger beta trades natural for robust accuracy) as rank correlations, with the spread of
    our sweep against the noise margin."""
    f = lambda v: "undefined (constant)" if v is None else f"{v:+.2f}"
    span = lambda c: max(r[c] for r in rows.values()) - min(r[c] for r in rows.values())
    return (f"In the paper the rank correlation of beta with natural accuracy is {f(claim['paper_natural'])} and with "
            f"PGD accuracy {f(claim['paper_robust'])}: a larger beta trades natural for robust accuracy. Ours: "
            f"{f(claim['natural'])} with natural and {f(claim['robust'])} with {robust_name} accuracy, so the trade "
            + ("holds here too." if claim["trade"] else "does not hold here.")
            + f" Across our beta sweep natural accuracy spans {span('natural'):.2f} points and {robust_name} "
              f"{span(robust):.2f}, against a noise margin of {noise['natural']['noise']:.2f} and "
              f"{noise[robust]['noise']:.2f}.")


def beta_pick_sentence(pick: dict, rows: dict[float, dict], full: dict, profile_beta: float, margin: float) -> str:
    """Which beta validation would pick, why the profile keeps the paper's, and (multi-view data) whether that beta
    keeps feature 2."""
    tied = [v for v in pick["tied"] if v != pick["value"]]
    s = (f"On the validation split this sweep would pick beta = {pick['value']:g} ({pick['score']:.1f}% validation PGD "
         f"accuracy{', within noise of beta = ' + ', '.join(f'{v:g}' for v in tied) if tied else ''}); the "
         f"profile keeps the paper's beta = {profile_beta:g}, so that every chapter shows the method as the paper "
         f"states it.")
    chosen = rows[pick["value"]]
    if "probe_f2" in chosen and chosen["probe_f2"] > full["probe_f2"] + margin:
        s += (f" With beta = {pick['value']:g} the student keeps feature 2: {chosen['probe_f2']:.1f}% on the feature-2 "
              f"probes against {full['probe_f2']:.1f}% at beta = {profile_beta:g}; the consistency term is what pushes "
              f"it out.")
    return s


def sweep_rows(runs: dict[str, dict], full: dict, robust: str, spread: float | None = None,
               paper: dict[str, list[float]] | None = None) -> list[dict]:
    """Table 3 rows for the page, one per run: last / best-on-validation accuracies in one cell each, the best epoch
    and its validation score, the run against the full CKTAT run in `robust` accuracy (`noise.compare` image by
    image, with the seeds' `spread` as the run-to-run margin: "above", "within noise", "below"), and the paper's
    natural and PGD accuracies for the same row when it has them."""
    out = []
    for label, res in runs.items():
        r = table3_row(res, robust)
        d = {"row": label, "natural": f"{r['natural']:.1f} / {r['best natural']:.1f}",
             robust: f"{r[robust]:.1f} / {r[f'best {robust}']:.1f}", "best epoch": r["best epoch"],
             "validation": r[f"val {robust}"],
             "vs full": "-" if res is full else
             compare_evaluations(res["student"]["last"], full["student"]["last"], robust, spread).word}
        if paper is not None:
            p = paper.get(label, [None, None])
            d.update({"paper natural": p[0], "paper PGD": p[1]})
        out.append(d)
    return out

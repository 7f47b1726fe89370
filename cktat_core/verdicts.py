"""The decisions a page states about its runs, each one function with its threshold derived, not picked.

A page says "the model uses feature 2" or "the run collapsed" only through these functions, so the same words
mean the same thing on every page. Every comparison of two accuracies goes through `noise.compare` (above / within
noise / below); a claim of the paper is judged in `claims`. Torch-free: they read the numbers `train.run` and
`evaluate` wrote.

- `above_chance`: an accuracy on n images lies above chance (100 / C %) beyond z binomial standard errors of a
  model that guesses; on the multi-view probe images (one feature only) this is "the model uses that feature".
- `not_below`, `within_noise`: `noise.compare` of two accuracies on n images, in words.
- `collapsed_epochs`: epochs whose validation accuracy fell back below half the best epoch's.
- `fair_test`, `mechanism_findings`: chapter 01's three premises of the paper's claim on the multi-view data.
- `feature_kept`: how much of the teacher's feature a student kept.
- `paired_order`, `claim_check`, `claim_sentence`, `threshold_sentence`, `feature_reading`, `orders_agree`,
  `attribution_comparison`: chapter 05's reading of Table 5 (attribution counts per image, the same images for every
  model: a paired test).
- `evaluation_findings`: chapter 04's opening.
- `capacity_pair`, `capacity_check_sentence`, `teacher_contrast_paired`, `teacher_tally`, `capacity_reading`:
  chapter 06 (Table 1).
- `rank_agreement`, `protocol_distance`, `profile_resolution`, `closest_protocol`, `table_noise`,
  `warm_start_sentence`, `wrong_shares`, `ducat_sentence` and their sentences: Table 4 and RAAT's Table 1 against
  ours (orderings by Spearman's rank correlation, which protocol the paper resembles), DUCAT's two evaluations and
  the share of images every model gets wrong (chapters 08, 09).
- `teacher_trainings`: which training of the frozen teacher's recipe each run learned from (chapters 02, 06-09).
"""

from __future__ import annotations

import math
import statistics

from .checks import noise_margin
from .noise import BELOW, WITHIN, bits_of, compare, compare_evaluations
from .noise import spearman as spearman_test


def chance(num_classes: int) -> float:
    return 100.0 / num_classes


def above_chance(accuracy: float, n: int, num_classes: int, z: float = 2.0) -> bool:
    """Whether `accuracy` (%) on n images exceeds chance by more than z standard errors of a guessing model."""
    p = 1.0 / num_classes
    return accuracy - 100 * p > z * 100 * math.sqrt(p * (1 - p) / max(n, 1))


def uses_feature(evaluation: dict, probe: str, num_classes: int) -> bool:
    """Whether a model's final evaluation classifies the probe set `probe` ("probe_f2") above chance."""
    ev = evaluation[probe]
    return above_chance(ev["attacks"]["natural"]["accuracy"], ev["n"], num_classes)


def not_below(a: float, b: float, n: int) -> bool:
    """Accuracy a (%) is not below b beyond the noise of two accuracies on n images (`noise.compare`)."""
    return compare(a, b, n=n).word != BELOW


def within_noise(a: float, b: float, n: int) -> bool:
    """Accuracies a and b (%) on n images each lie within noise of each other (`noise.compare`)."""
    return compare(a, b, n=n).word == WITHIN


def collapsed_epochs(history: list[dict], key: str) -> list[int]:
    """The 1-based epochs whose `key` (a validation accuracy) fell below half of its best value after it had first
    reached that half (the climb of the first epochs is not a collapse)."""
    half = max(h[key] for h in history) / 2
    start = next(i for i, h in enumerate(history) if h[key] >= half)
    return [h["epoch"] for h in history[start:] if h[key] < half]


def accuracy(evaluation: dict, attack: str = "natural") -> float:
    """Test accuracy (%) of one final evaluation under `attack`."""
    return evaluation["test"]["attacks"][attack]["accuracy"]


def initialisation_verdict(last: dict, best: dict, scratch: dict, history: list[dict], robust: str,
                           val_robust: str, num_classes: int) -> str:
    """Chapter 01's conclusion about PGD-AT started from the clean weights: does the clean initialisation alone
    carry feature 2 into a robust model?

    `last` and `best`: final evaluations of that run's last and best-on-validation epochs; `scratch`: PGD-AT from
    scratch; `history`: that run's per-epoch validation records. "Uses feature 2": `uses_feature` on the
    feature-2 probes; "robust": PGD accuracy `not_below` PGD-AT from scratch's.
    """
    n = scratch["test"]["n"]

    def learned(ev):
        return uses_feature(ev, "probe_f2", num_classes)

    def robust_too(ev):
        return not_below(accuracy(ev, robust), accuracy(scratch, robust), n)

    if (learned(last) and robust_too(last)) or (learned(best) and robust_too(best)):
        return "The clean initialisation carries the second feature into a robust model."
    if not (learned(last) or learned(best)):
        return "The clean initialisation alone does not carry the second feature."
    verdict = "The initialisation alone does not give a model that is robust and uses feature 2"
    if learned(last) and not robust_too(last):
        verdict += ": the last epoch uses it but is not robust"
    if robust_too(best) and not learned(best):
        verdict += ", and the epoch chosen on validation is robust without it"
    verdict += "."
    low = collapsed_epochs(history, val_robust)
    if len(low) >= 2:
        both = set(low) & set(collapsed_epochs(history, "val_natural"))
        verdict += (f" In {len(low)} of {len(history)} epochs the validation robust accuracy fell below half its "
                    f"best, and in {len(both)} of them natural accuracy did too: started from the clean weights, "
                    f"adversarial training at this learning rate is unstable, as the curves above show.")
    return verdict


def probe_accuracy(evaluation: dict, probe: str, attack: str = "natural") -> float:
    return evaluation[probe]["attacks"][attack]["accuracy"]


def fair_test(f2_only: dict, clean: dict, pgdat: dict, robust: str, num_classes: int) -> dict:
    """The three facts the paper's claim needs on the multi-view data (chapter 01), from final evaluations:

    (a) feature 2 can be used robustly: a model adversarially trained on feature-2-only images (`f2_only`,
        whose test set holds feature 2 alone) keeps `robust` accuracy above chance beyond sampling noise;
    (b) clean training learns feature 2: the clean model classifies the feature-2 probes above chance;
    (c) PGD-AT on the mixture learns it less: on the feature-2 probes its robust accuracy is below (a)'s, or its
        natural accuracy below (b)'s, beyond the noise of two accuracies on that many images.
    Returns the three booleans and the numbers they were decided from.
    """
    a_robust = accuracy(f2_only, robust)
    b_natural = probe_accuracy(clean, "probe_f2")
    c_natural, c_robust = probe_accuracy(pgdat, "probe_f2"), probe_accuracy(pgdat, "probe_f2", robust)
    n = pgdat["probe_f2"]["n"]
    return {"a": above_chance(a_robust, f2_only["test"]["n"], num_classes),
            "b": above_chance(b_natural, clean["probe_f2"]["n"], num_classes),
            "c": not not_below(c_robust, a_robust, n) or not not_below(c_natural, b_natural, n),
            "f2_only_robust": a_robust, "clean_probe": b_natural, "pgdat_probe": c_natural,
            "pgdat_probe_robust": c_robust, "chance": chance(num_classes)}


def feature_kept(student: dict, teacher: dict, probe: str, num_classes: int) -> str:
    """How much of the teacher's feature (probe set `probe`) a student kept, from their final evaluations:
    "kept" (the student's probe accuracy is not below the teacher's beyond noise), "partly" (below the teacher's,
    still above chance) or "lost" (not above chance)."""
    s, t = probe_accuracy(student, probe), probe_accuracy(teacher, probe)
    if not_below(s, t, student[probe]["n"]):
        return "kept"
    return "partly" if uses_feature(student, probe, num_classes) else "lost"


# ------------------------------------------------------------------------------------ Table 5 (chapter 05)
# Sec. 5.3 of the CKTAT paper: "CKTAT learns more discriminatory features, followed by TRADES, while PGDAT learns
# far fewer feature knowledge points" (Table 5, pictures only), as a ranking from most to fewest.
TABLE5_CLAIM = ("CKTAT", "TRADES", "PGDAT")


def _mean(v: list[float]) -> float:
    """The mean of the values that are numbers (an image without a value is NaN, as `noise.compare_values` skips)."""
    kept = [x for x in v if not math.isnan(x)]
    return sum(kept) / len(kept) if kept else math.nan


def paired_order(a: list[float], b: list[float]) -> int:
    """1 when the per-image values `a` lie above `b` (the same images, in the same order) beyond chance, -1 when
    below, 0 when within: the sign of `noise.compare_values` (a paired t-test)."""
    from .noise import compare_values

    return compare_values(a, b).sign


def claim_check(scores: dict[str, list[float]], claim: tuple[str, ...] = TABLE5_CLAIM) -> dict:
    """Does a per-image measure (e.g. knowledge points on the class's own feature patches) order the models as
    `claim` (most first)? Every pair of the claim is compared with `paired_order`.

    Returns "outcome": "matches" (every pair in the claimed order beyond noise), "contradicts" (some pair
    reversed beyond noise) or "unresolved" (no pair reversed, some within noise); "reversed" and "tied": the
    pairs (claimed higher, claimed lower) of each kind; "means"; "order": the models by mean, most first, joined
    by ">" or, within noise, "≈"; "n": images per model.
    """
    pairs = [(claim[i], claim[j]) for i in range(len(claim)) for j in range(i + 1, len(claim))]
    signs = {p: paired_order(scores[p[0]], scores[p[1]]) for p in pairs}
    reversed_ = [p for p, s in signs.items() if s < 0]
    tied = [p for p, s in signs.items() if s == 0]
    outcome = "contradicts" if reversed_ else "unresolved" if tied else "matches"
    means = {m: _mean(scores[m]) for m in claim}
    ranked = sorted(claim, key=lambda m: -means[m])
    order = ranked[0]
    for hi, lo in zip(ranked, ranked[1:]):
        order += (" > " if paired_order(scores[hi], scores[lo]) > 0 else " ≈ ") + lo
    return {"outcome": outcome, "reversed": reversed_, "tied": tied, "means": means, "order": order,
            "ranked": ranked, "n": len(scores[claim[0]])}


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def orders_agree(a: dict[str, float], b: dict[str, float]) -> bool:
    """Whether two measures of the same models (e.g. a mean attribution share and a probe accuracy) rank them in
    the same order, highest first."""
    return sorted(a, key=lambda m: -a[m]) == sorted(a, key=lambda m: -b[m])


def claim_sentence(check: dict, measure: str, claim: tuple[str, ...] = TABLE5_CLAIM, digits: int = 1,
                   unit: str = "") -> str:
    """The page's sentence for one `claim_check`: the measured order with the means, and whether it matches,
    contradicts or leaves open the paper's ranking."""
    means = ", ".join(f"{m} {check['means'][m]:.{digits}f}{unit}" for m in check["ranked"])
    said = " > ".join(claim)

    def pairs(ps):
        return _and([f"{a} vs {b}" for a, b in ps])

    tie = " ('≈': within noise, a paired t-test at p >= 0.05)" if "≈" in check["order"] else ""
    head = f"By {measure}, over {check['n']:,} images ({means}), the models order as {check['order']}{tie}. "
    if check["outcome"] == "matches":
        return head + f"This matches the paper's ranking {said}: every pair lies in that order beyond sampling noise."
    if check["outcome"] == "contradicts":
        rev = _and([f"{b} lies above {a}" for a, b in check["reversed"]])
        return head + (f"This contradicts the paper's ranking {said}: {rev} beyond sampling noise"
                       + (f" (the difference {pairs(check['tied'])} lies within it)" if len(check["tied"]) == 1
                          else f" (the differences {pairs(check['tied'])} lie within it)" if check["tied"] else "")
                       + ".")
    return head + (f"This neither confirms nor contradicts the paper's ranking {said}: no pair is reversed beyond "
                   f"sampling noise, but the difference{'s' if len(check['tied']) > 1 else ''} "
                   f"{pairs(check['tied'])} lie{'' if len(check['tied']) > 1 else 's'} within it.")


def threshold_sentence(checks: dict[float, dict], main: float) -> str:
    """Whether the outcome of `claim_check` at the main threshold holds over a sweep of thresholds (fractions
    of each image's maximum attribution)."""
    ts = sorted(checks)
    same = [t for t in ts if checks[t]["outcome"] == checks[main]["outcome"]]
    span = f"{len(ts)} thresholds from {ts[0]:.0%} to {ts[-1]:.0%} of each image's maximum"
    if len(same) == len(ts):
        return f"The outcome is the same at all {span}: it does not hinge on the threshold."
    other = ", ".join(f"{t:.0%}: {checks[t]['outcome']} ({checks[t]['order']})" for t in ts if t not in same)
    return (f"The outcome at {main:.0%} holds at {len(same)} of the {span}; elsewhere it differs ({other}), so the "
            f"ranking depends on the threshold.")


def feature_reading(shares: dict[str, list[float]], even: list[float], feature: str, images: str) -> str:
    """Which models put more of their attribution on `feature`'s patches than a map spread evenly over the image
    would (`even`: that share per image, the patches' area), beyond chance (`paired_order`), on `images`.
    `shares`: per model, the per-image share (%) on those patches."""
    above = [m for m, s in shares.items() if paired_order(s, even) > 0]
    below = [m for m in shares if m not in above]
    values = ", ".join(f"{m} {_mean(s):.1f}%" for m, s in shares.items())
    text = (f"On {images}, the share of attribution on the {feature} patches is {values}, against "
            f"{_mean(even):.1f}% for a map spread evenly over the image. ")
    if not above:
        return text + f"No model puts more there than even spreading would: none of them relies on {feature}."
    if not below:
        return text + f"Every model puts more there than even spreading would: all of them look at {feature}."
    return text + (f"{', '.join(above)} put{'s' if len(above) == 1 else ''} more there than even spreading would; "
                   f"{', '.join(below)} do{'es' if len(below) == 1 else ''} not, beyond sampling noise.")


# ---- Table 1: capacity
# Sec. 4.2 and Table 1 of the CKTAT paper: with a clean teacher, ARD, IAD, RSLAD, LTD and LBGAT lose natural and
# robust accuracy against PGD-AT on ResNet-18 ("a dual decrease") and gain both on WRN-34-10 ("a dual increase").
RESNET_FAMILY = ("resnet18", "preact_resnet18", "wrn34_10", "wrn28_10")


def capacity_pair(model: str, width: int, default_width: int) -> dict[str, dict]:
    """The smaller and the larger student of Table 1, as the config fields that change from the chapter's network
    ({} for the chapter's own network, so its runs are the ones every other chapter shares).

    ResNet-18 and WRN-34-10 (the paper's pair) when the chapter's network is a ResNet or a WRN; the small CNN at
    half its width and at its width otherwise (`width` 0 means `default_width`). A network that cannot be halved
    (width 1) raises ValueError."""
    if model in RESNET_FAMILY:
        return {"small": {} if model == "resnet18" else {"model": "resnet18"},
                "large": {} if model == "wrn34_10" else {"model": "wrn34_10"}}
    w = width or default_width
    if w < 2:
        raise ValueError(f"a width of {w} cannot be halved for a smaller student")
    return {"small": {"width": w // 2}, "large": {}}


def teacher_tally(contrasts: list[dict[str, dict[str, int]]]) -> dict[str, dict[int, int]]:
    """How many (method, accuracy) comparisons of `teacher_contrast` fall above (1), below (-1) and within (0)
    noise, per comparison ("robust", "clean": against PGD-AT; "robust_vs_clean")."""
    out = {k: {1: 0, -1: 0, 0: 0} for k in ("robust", "clean", "robust_vs_clean")}
    for c in contrasts:
        for signs in c.values():
            for k, v in signs.items():
                out[k][v] += 1
    return out


def teacher_tally_sentence(student: str, tally: dict[str, dict[int, int]]) -> str:
    """The page's sentence for one student's `teacher_tally`."""
    def part(k):
        t = tally[k]
        return f"above in {t[1]}, below in {t[-1]}, within noise in {t[0]}"
    total = sum(tally["robust"].values())
    return (f"On the {student} student, of {total} comparisons (method x accuracy) with PGD-AT: with the robust "
            f"teacher the distilled student lies {part('robust')}; with the clean teacher {part('clean')}. The robust "
            f"teacher against the clean one: {part('robust_vs_clean')}.")


# ---- Table 4, RAAT and DUCAT
# Chapters 08 and 09: orderings of methods against the papers' (rank correlation, `sweeps.spearman`), which
# evaluation protocol the paper's numbers resemble, and the share of test images every model gets wrong (DUCAT's
# abstract).


def rank_agreement(ours: dict[str, dict], paper: dict[str, dict], columns: list[str]) -> dict[str, dict]:
    """Per column: Spearman's rho between our methods' values and the paper's (the methods both have), its two-sided
    p-value (`noise.spearman`, scipy; as `claims.ordering` judges the same question) and the number of methods."""
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
    return {"levels": _mean(levels) if levels else None, "profile": _mean(prof) if prof else None, "n": len(names)}


def profile_resolution(rows: dict[str, dict], attacks: list[str], n: int) -> float:
    """The sampling noise of a mean `relative_positions` difference over these rows (method -> row) on n images:
    per entry, the noise of an attack's accuracy against AutoAttack's (`noise_margin`) over the row's span
    (natural - AA), averaged, and divided by the square root of the number of entries averaged."""
    per = [noise_margin(r[a], r["aa"], n) / max(r["natural"] - r["aa"], noise_margin(r["natural"], r["aa"], n))
           for r in rows.values() for a in attacks]
    return _mean(per) / math.sqrt(len(per))


def closest_protocol(distances: dict[str, dict], key: str = "profile", tolerance: float = 0.0) -> str | None:
    """The protocol whose table sits closest to the paper's by `key` of `protocol_distance`; None when the
    closest two differ by no more than `tolerance` (e.g. `profile_resolution`: the page cannot tell them apart)."""
    ranked = sorted(distances, key=lambda p: distances[p][key])
    if len(ranked) > 1 and distances[ranked[1]][key] - distances[ranked[0]][key] <= tolerance:
        return None
    return ranked[0]


def rank_sentence(agreement: dict[str, dict], headers: dict[str, str], alpha: float = 0.05) -> str:
    """The page's sentence on `rank_agreement`: which columns order the methods as the paper does beyond chance
    (one-sided p below `alpha`), which do not, and which are reversed (rho < 0)."""
    shown = {c: v for c, v in agreement.items() if v["rho"] is not None}
    if not shown:
        return "No column has enough distinct values to compare the orderings."
    parts = ", ".join(f"{headers.get(c, c)} {v['rho']:+.2f} (p = {v['p']:.2f})" for c, v in shown.items())
    agree = [headers.get(c, c) for c, v in shown.items() if v["p"] < alpha and v["rho"] > 0]
    against = [headers.get(c, c) for c, v in shown.items() if v["rho"] < 0]
    n = max(v["n"] for v in shown.values())
    text = f"Spearman's rank correlation between our ordering of the {n} methods and the paper's, per column: {parts}. "
    if agree:
        text += (f"Only {_and(agree)} order{'s' if len(agree) == 1 else ''} the methods as the paper does beyond "
                 f"chance (two-sided Spearman test, p < {alpha})" if len(agree) < len(shown) else
                 f"Every column orders the methods as the paper does beyond chance (p < {alpha})")
    else:
        text += f"No column orders the methods as the paper does beyond chance (p < {alpha})"
    if against:
        reversed_ = [headers.get(c, c) for c, v in shown.items() if v["rho"] < 0 and v["p"] < alpha]  # two-sided p
        leaning = [h for h in against if h not in reversed_]
        if reversed_:
            text += f"; {_and(reversed_)} order{'s' if len(reversed_) == 1 else ''} them the other way round beyond chance"
        if leaning:
            text += (f"; {_and(leaning)} lean{'s' if len(leaning) == 1 else ''} the other way (a negative correlation), "
                     f"within chance")
    return text + "."


def wrong_shares(masks: dict[str, str], clean: dict[str, str] | None = None) -> dict:
    """From per-image correctness bit strings ("1": right, the same test images in the same order for every
    model): per model the share (%) of images it gets wrong; "all": the share every model gets wrong; "any": the
    share at least one gets wrong; "independent": what "all" would be if the models erred independently (the
    product of their error rates).

    An attacked image is also wrong when the model already misclassifies it clean, and clean errors are shared
    widely. With `clean` (each model's natural per-image results on the same images) two more entries separate the
    two: "clean_all", the share every model gets wrong even clean, and "core", the same statistics (`per_model`,
    `all`, `any`, `independent`, `n`) over the images every model classifies correctly clean, where a wrong answer
    is the attack's doing alone."""
    bits = list(masks.values())
    n = len(bits[0])
    if any(len(b) != n for b in bits) or not n:
        raise ValueError("wrong_shares needs equally long, non-empty bit strings")
    out = _shares(masks, range(n))
    if clean is not None:
        if set(clean) != set(masks) or any(len(clean[m]) != n for m in masks):
            raise ValueError("clean needs a bit string of the same length for every model")
        out["clean_all"] = 100.0 * sum(all(clean[m][i] == "0" for m in masks) for i in range(n)) / n
        right = [i for i in range(n) if all(clean[m][i] == "1" for m in masks)]
        out["core"] = _shares(masks, right) if right else None
    return out


def _shares(masks: dict[str, str], images) -> dict:
    """`wrong_shares`'s statistics over the image indices `images`."""
    images = list(images)
    k = len(images)
    wrong = {m: 100.0 * sum(b[i] == "0" for i in images) / k for m, b in masks.items()}
    every = sum(all(b[i] == "0" for b in masks.values()) for i in images)
    some = sum(any(b[i] == "0" for b in masks.values()) for i in images)
    return {"per_model": wrong, "all": 100.0 * every / k, "any": 100.0 * some / k, "n": k,
            "independent": 100.0 * math.prod(w / 100 for w in wrong.values())}


def shared_beyond_chance(shares: dict, z: float = 2.0) -> bool:
    """Whether the share of images every model gets wrong exceeds what independent errors would give by more than
    z binomial standard errors of that share on n images."""
    p = shares["independent"] / 100
    return shares["all"] - shares["independent"] > z * 100 * math.sqrt(max(p * (1 - p), 1e-12) / shares["n"])


def wrong_under_all_sentence(shares: dict, claim: float, attack: str) -> str:
    """DUCAT's claim (up to `claim`% of CIFAR-10 adversarial examples are misclassified by every AT method)
    against `wrong_shares` of our models, each under its own `attack`; with the clean split of `wrong_shares`, how
    much of the shared core is clean errors and what remains among the images every model gets right clean."""
    k = len(shares["per_model"])
    lo, hi = min(shares["per_model"].values()), max(shares["per_model"].values())
    text = (f"Each of our {k} adversarially trained models gets {lo:.1f}% to {hi:.1f}% of the {shares['n']} test "
            f"images wrong under its own {attack} attack; {shares['all']:.1f}% are wrong under all {k} attacks. ")
    core = shares.get("core")
    if "clean_all" in shares:
        text += (f"{shares['clean_all']:.1f}% of the test images are wrong for every model even without an attack: "
                 f"an attack needs no effort on them. ")
    if core:
        c_lo = min(core["per_model"].values())
        text += (f"On the {core['n']} images every model classifies correctly clean, where a wrong answer is the "
                 f"attack's doing, {core['all']:.1f}% are wrong under all {k} attacks, against "
                 f"{core['independent']:.2g}% if the models erred independently and at most {c_lo:.1f}% (the "
                 f"least-fooled model's share). ")
        basis, lo = core, c_lo
    elif "clean_all" in shares:
        return text + "No image is classified correctly clean by every model, so the attack's own share is unknown."
    else:
        text = text[:-2] + (f", against {shares['independent']:.1f}% if the models erred independently and at most "
                            f"{lo:.1f}% (the least-fooled model's share). ")
        basis = shares
    if shared_beyond_chance(basis):
        text += (f"The attacks' successes are shared far beyond chance: {basis['all'] / max(lo, 1e-9):.0%} of the "
                 f"least-fooled model's errors there are errors of every model, the same hard core of images breaks "
                 f"them all. ")
    else:
        text += "The models' errors there are not more shared than independent errors would be, beyond sampling noise. "
    side = "above" if basis["all"] > claim else "below"
    return text + (f"DUCAT's abstract reports up to {claim:.0f}% on CIFAR-10 without saying how clean errors are "
                   f"counted; ours is {side} that, on other data and models, so the number itself is not comparable; "
                   f"the pattern (a core of images every model gets wrong) is what DUCAT's motivation rests on.")


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
    levels = " and ".join(f"{d['levels']:.1f} under {p}" for p, d in distances.items())
    if same_data:
        lv = closest_protocol(distances, "levels", level_noise)
        return text + (f"The accuracies themselves differ from the paper's by a mean of {levels} points"
                       + ("." if lv is None else f", closest under {lv}" +
                          (" as well." if lv == near else ", which disagrees with the profile.")))
    return text + (f"The accuracies themselves differ by {levels} points, but our data is not the paper's: that "
                   f"difference measures the datasets, not the reproduction, so only the orderings and the relative "
                   f"positions are compared.")


def ducat_sentence(last: dict, attack: str, others: dict[str, float], suite: dict | None = None,
                   suite_others: dict[str, float] | None = None) -> str:
    """DUCAT's robust accuracy under the authors' protocol (`<attack>_raw_head`: attack the raw 2C head, score
    after recovery) against the adaptive attacks on the recovered classifier (`attack`, and the per-image worst
    case `<attack>_worst_case`), from a final evaluation (`train.final_evaluation`); `others`: other methods'
    `attack` accuracy on the same images, to say where DUCAT would rank under each. With `suite` (DUCAT's
    standard attack-suite evaluation, run on the recovered classifier) and `suite_others` (the others' AutoAttack
    accuracy on the same images): where AutoAttack through the recovery leaves it."""
    a = last["test"]["attacks"]
    raw, adaptive, worst = a[f"{attack}_raw_head"]["accuracy"], a[attack]["accuracy"], a[f"{attack}_worst_case"]["accuracy"]
    gap = last["protocol_gap"][f"{attack}_raw_head"]
    best = max(others, key=others.get)
    text = (f"Under the authors' protocol DUCAT keeps {raw:.1f}% against {attack.upper().replace('PGD', 'PGD-')}; "
            f"attacked through the recovered classifier it keeps {adaptive:.1f}%, and {worst:.1f}% against the worst "
            f"case over both recoveries and the raw-head attack: "
            + (f"the authors' protocol reports {abs(gap):.1f} points {'more' if gap > 0 else 'less'} than the "
               f"adaptive attack. " if round(gap, 1) else "both protocols report the same accuracy. "))
    beats = [m for m, v in others.items() if raw > v]
    still = [m for m, v in others.items() if worst > v]
    text += (f"Scored the authors' way DUCAT is above {len(beats)} of the {len(others)} other methods "
             f"(best other: {best}, {others[best]:.1f}%); under the worst-case adaptive attack it is above "
             f"{len(still)} of them.")
    if suite is None:
        return text
    sa = suite["attacks"]
    text += (f" AutoAttack through the recovered classifier, on the first {suite['n']:,} test images, leaves "
             f"{sa['aa']['accuracy']:.1f}% (PGD-20 on the same images: {sa['pgd20']['accuracy']:.1f}%)")
    text += f", with a natural accuracy of {sa['natural']['accuracy']:.1f}%"
    if not suite_others:
        return text + "."
    below = [m for m, v in suite_others.items() if not not_below(sa["aa"]["accuracy"], v, suite["n"])]
    text += (f"; that is below the AutoAttack accuracy of {len(below)} of the {len(suite_others)} other methods "
             f"beyond sampling noise")
    if len(below) <= len(suite_others) / 2:
        return text + ": its robustness holds up under the adaptive attack."
    if len(beats) <= len(others) / 2:
        return text + (f". Scored the authors' way it was already above only {len(beats)} of {len(others)}, so the "
                       f"adaptive attack is not what puts it there: it costs {abs(gap):.1f} points on top.")
    return text + (": DUCAT's robustness does not survive an attack that sees its recovery, which is what a "
                   "deployed model would face.")


def ducat_phase_sentence(cfg, history: list[dict], val_key: str) -> str:
    """When DUCAT's dummy classes train (`cfg.ducat_start` of the epochs, `StepContext.phase_started`), the learning
    rate over those epochs, and the validation robust accuracy (`val_key`) before them and at the end."""
    epochs = len(history)
    first = round(cfg.ducat_start * cfg.epochs) + 1  # 1-based: the first epoch with dummy classes
    if first > epochs:
        return (f"DUCAT's dummy classes start at epoch {first} of {cfg.epochs}; this run has {epochs} epochs, so it "
                f"trained as PGD-AT throughout.")
    dummy = history[first - 1:]
    before = history[first - 2][val_key] if first >= 2 else None
    text = (f"DUCAT trains as PGD-AT for {first - 1} epoch{'s' * (first != 2)} and with its dummy classes from epoch "
            f"{first} of {epochs} ({cfg.ducat_start:.0%} of the schedule, as the authors' epoch 105 of 130); over "
            f"those {len(dummy)} epochs the learning rate falls from {dummy[0]['lr']:.3g} to {dummy[-1]['lr']:.3g}. ")
    if before is not None:
        text += (f"Validation {val_key[4:].upper().replace('PGD', 'PGD-')} accuracy is {before:.1f}% before them and "
                 f"{dummy[-1][val_key]:.1f}% after the last.")
    return text



# ---- the evaluation chapter (04)
def evaluation_findings(standard: dict[str, dict], compat: dict[str, dict], plain: dict, masked: dict,
                        masked_standard: dict) -> str:
    """Chapter 04's opening, from its evaluations: which attack is strongest per model, how far the compat protocol
    moves PGD-20, and what the gradient-masked model does to PGD and to AutoAttack's gradient-free attack."""
    strongest = {n: min((k for k in r["attacks"] if k != "natural"), key=lambda k: r["attacks"][k]["accuracy"])
                 for n, r in standard.items()}
    aa_first = [n for n, k in strongest.items() if k == "aa"]
    gaps = [compat[n]["attacks"]["pgd20"]["accuracy"] - standard[n]["attacks"]["pgd20"]["accuracy"] for n in standard]
    fooled = masked["attacks"]["pgd20"]["accuracy"]
    broken = masked_standard["attacks"]["aa"]["accuracy"]
    flagged = sorted({f["check"] for f in masked["flags"]})
    n = next(iter(standard.values()))["n"]
    text = (f"On {n:,} test images, AutoAttack is the strongest attack for {len(aa_first)} of the {len(standard)} "
            f"models" + (f" (for {_and([f'{m}: {k}' for m, k in strongest.items() if k != 'aa'])} another attack "
                         f"goes lower)" if len(aa_first) < len(standard) else "") + ". "
            f"The compat-generalist protocol (10 steps of 0.007, last iterate, adversarial input alone counted) reads "
            f"PGD-20 {min(gaps):+.1f} to {max(gaps):+.1f} points away from the standard protocol. "
            f"A clean model behind an 8-bit input rounding keeps {fooled:.1f}% under PGD-20 (without the rounding: "
            f"{plain['attacks']['pgd20']['accuracy']:.1f}%); the checks flag it ({_and(flagged) if flagged else 'no check'}), "
            f"and AutoAttack's standard version, whose Square attack needs no gradient, brings it to {broken:.1f}%.")
    return text


# ---- Table 1 (chapter 06), image by image
def capacity_check_sentence(best: dict[str, dict[str, float]], sep: dict, val_robust: str, name: dict[str, str],
                            n_val: int) -> str:
    """Whether the two students differ on validation (PGD-AT's best validation accuracies; `sep`: key ->
    `noise.Comparison` of the large against the small student), and what that means for the chapter's question."""
    said = {"above": "the large student lies above the small one beyond sampling noise",
            "below": "the large student lies BELOW the small one beyond sampling noise",
            "within noise": "the two lie within sampling noise of each other"}
    vr = val_robust.replace("val_pgd", "PGD-")
    text = (f"Best validation accuracy of PGD-AT over the epochs ({n_val:,} validation images): natural "
            f"{best['small']['val_natural']:.1f}% ({name['small']}) and {best['large']['val_natural']:.1f}% "
            f"({name['large']}): {said[sep['val_natural'].word]}; {vr} {best['small'][val_robust]:.1f}% and "
            f"{best['large'][val_robust]:.1f}%: {said[sep[val_robust].word]}. ")
    if any(c.word == "above" for c in sep.values()):
        return text + "So the two students differ in what adversarial training gets out of them, and the pair can test the claim."
    return text + ("So validation does not show that the larger network gets more out of adversarial training: the pair "
                   "below may not test the paper's capacity question, and what follows has to be read with that in mind.")


def teacher_contrast_paired(ev: dict[str, dict], metrics: dict[str, str]) -> dict[str, dict[str, int]]:
    """For one method on one student: each teacher's effect against PGD-AT per accuracy and the robust teacher
    against the clean one, image by image (`noise.compare_evaluations`: McNemar where the evaluations hold per-image
    results). `ev`: {"robust", "clean", "pgdat"} final evaluations; `metrics`: label -> attack."""
    from .noise import compare_evaluations

    sign = lambda a, b, att: compare_evaluations(ev[a], ev[b], att).sign
    return {label: {"robust": sign("robust", "pgdat", att), "clean": sign("clean", "pgdat", att),
                    "robust_vs_clean": sign("robust", "clean", att)} for label, att in metrics.items()}


def capacity_reading(acc: dict, paper: dict, found: list, pair: dict, name: dict[str, str], robust: str,
                     sizes: dict[str, int] | None = None, paper_sizes: dict[str, int] | None = None) -> str:
    """Chapter 06's closing reading, from its numbers: how much the attack takes from PGD-AT on each student, how far
    apart the two students' PGD-AT runs are against the paper's pair (and, with `sizes` {"small", "large"} and
    `paper_sizes` {"resnet18", "wrn34_10"} parameter counts, how much each pair grows the network), and how the
    claims came out."""
    drop = {k: acc["PGDAT", "none", k]["natural"] - acc["PGDAT", "none", k][robust] for k in pair}
    p_drop = {k: paper[net]["PGDAT"][0] - paper[net]["PGDAT"][1] for k, net in (("small", "resnet18"), ("large", "wrn34_10"))}
    ours_gap = [acc["PGDAT", "none", "large"][c] - acc["PGDAT", "none", "small"][c] for c in ("natural", robust)]
    paper_gap = [paper["wrn34_10"]["PGDAT"][i] - paper["resnet18"]["PGDAT"][i] for i in (0, 1)]
    by = {v: [c.claim for c in found if c.verdict == v] for v in ("reproduced", "within noise", "contradicted")}
    text = (f"The attack takes {drop['small']:.1f} points from PGD-AT's natural accuracy on the small student and "
            f"{drop['large']:.1f} on the large one (the paper: {p_drop['small']:.1f} on ResNet-18, {p_drop['large']:.1f} "
            f"on WRN-34-10). Our two students' PGD-AT runs differ by {ours_gap[0]:+.1f} natural and {ours_gap[1]:+.1f} "
            f"robust points, the paper's pair by {paper_gap[0]:+.1f} and {paper_gap[1]:+.1f}. ")
    signs = [c for c in found if c.section == "Table 1 (signs)" and c.ours is not None]
    if signs:
        decided = lambda nat, up: sum(1 for c in signs if ("natural" in c.claim) == nat and c.verdict != "within noise"
                                      and (c.ours > 0) == up)
        n = sum(1 for c in signs if "natural" in c.claim)
        text += (f"With the clean teacher, against PGD-AT of the same student, natural accuracy is above beyond noise in "
                 f"{decided(True, True)} of {n} method-student pairs and below in {decided(True, False)}; robust "
                 f"accuracy above in {decided(False, True)} and below in {decided(False, False)}")
        along = decided(True, True) > decided(True, False) and decided(False, False) > decided(False, True)
        text += (": the clean teacher moves our students along the trade-off, more natural and less robust accuracy, "
                 "where the paper reads a dual decrease on its small student and a dual increase on its large one. "
                 if along else ". ")
    count = lambda n, what: f"{n} {'is' if n == 1 else 'are'} {what}"
    text += (f"Of the {len(found)} claims, {count(len(by['reproduced']), 'reproduced')}, "
             f"{count(len(by['within noise']), 'within noise')} and {count(len(by['contradicted']), 'contradicted')}. ")
    if not (by["within noise"] or by["contradicted"]):
        return text
    text += "Our reading: "
    if sizes and paper_sizes:
        ours_x, paper_x = sizes["large"] / sizes["small"], paper_sizes["wrn34_10"] / paper_sizes["resnet18"]
        text += (f"both pairs grow the network by a similar factor in parameters ({ours_x:.1f}x here, {paper_x:.1f}x "
                 f"from ResNet-18 to WRN-34-10), ")
    moves = lambda o, p: "less" if abs(o) < abs(p) else "as much or more"
    text += (f"yet PGD-AT's robust accuracy moves {moves(ours_gap[1], paper_gap[1])} between our students than "
             f"between the paper's ({ours_gap[1]:+.1f} against {paper_gap[1]:+.1f} points), and its natural accuracy "
             f"{moves(ours_gap[0], paper_gap[0])} ({ours_gap[0]:+.1f} against {paper_gap[0]:+.1f}). We think networks "
             f"this far from fitting CIFAR-10, trained for a few epochs, leave a teacher's effect little room to change "
             f"with capacity, so most of the changes the claims look for lie inside our noise.")
    return text


def table_noise(n: int, cells: int) -> float:
    """The sampling noise of a mean over `cells` accuracies, each on n images (two binomial standard errors at 50%,
    the worst case, divided by the square root of the number of cells)."""
    return noise_margin(50.0, 50.0, n) / math.sqrt(max(cells, 1))


def warm_start_sentence(rows: dict[str, dict], warm: dict[str, bool], epochs: int) -> str:
    """How the rows that start from the clean teacher compare in natural accuracy with those that start from
    scratch (`warm`: label -> starts from the teacher): the two groups' means, weighed by Welch's test over the rows
    (`noise.compare`; a method is one sample, so the spread is the spread between methods)."""
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
    if len(yes) < 2 or len(no) < 2:
        return text + "; one row on a side is too few to weigh the difference."
    c = compare(values(yes), values(no))
    test = f"Welch's t-test over the {len(yes)} and {len(no)} rows"
    if c.word == WITHIN:
        return text + (f": the difference lies within the spread between methods ({test}, {p_text(c.p)}), so this "
                       f"table does not show that starting from the clean model weighs on this column.")
    return text + (f": {'above' if c.difference > 0 else 'below'} beyond the spread between methods ({test}, "
                   f"{p_text(c.p)}); the rows differ in more than their start, so this says no more than that.")



def natural_lead_reading(claim, rows: dict[str, dict], paper: dict[str, dict], target: str, epochs: int) -> str:
    """Our reading of chapter 08's natural-accuracy claim where it is not reproduced: the rows above `target` in
    natural accuracy here but not in the paper, with how far each lies from `target` in natural and in AutoAttack
    accuracy (`rows` and `paper`: label -> {column: accuracy}); when every one of them is below `target` in
    AutoAttack accuracy, they sit further towards natural accuracy on the trade-off, and the spread of the rows'
    natural accuracy here against the paper's says how far apart the methods land. An interpretation these runs do
    not test. Empty when the claim is reproduced or no row is above `target` here only."""
    if claim.verdict == "reproduced":
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
                 f"that trade-off, where the paper's longer training brings the rows closer together. These runs do "
                 f"not test that; a longer schedule would.")
    return text.strip()


def raat_reading(found: list, boundary_share: float) -> str:
    """Our reading of chapter 09's claim that RAAT's natural accuracy is level with Cons-AT's, where it is not
    reproduced: RAAT changes two things from Cons-AT (the reduced perturbation, applied to `boundary_share` percent
    of the training examples, and DICAR in place of Cons-AT's consistency term); when the first touches few examples
    (under 5%), we read the difference as the second's. An interpretation these runs do not test. Empty when the
    claim is reproduced."""
    off = next((c for c in found if c.claim.startswith("RAAT's natural accuracy") and "Cons-AT" in c.claim
                and c.verdict != "reproduced" and c.ours is not None), None)
    if off is None:
        return ""
    text = (f"**Our reading.** RAAT's natural accuracy lies {off.ours:+.1f} points from Cons-AT's here"
            + (f", {off.paper:+.1f} in RAAT's Table 1" if off.paper is not None else "") + ". RAAT changes two "
            f"things from Cons-AT: the reduced perturbation, which changed the training input of {boundary_share:.1f}% "
            f"of the examples, and DICAR in place of Cons-AT's consistency term. ")
    if boundary_share < 5:
        text += ("With so few examples on the reduced perturbation, we think the consistency term makes the "
                 "difference at this budget. These runs do not separate the two; a RAAT run without the reduced "
                 "perturbation would.")
    return text.strip()

def attribution_comparison(ours: list, theirs: list, profile: str, other: str, brief: bool = False) -> str:
    """Chapter 05's two readings side by side: its claims in this profile and those it saved in `other` (the
    multi-view data against real images), and whether they agree; `brief`: that last sentence only, with the
    other data's verdicts (for the chapter's opening)."""
    if not theirs:
        return (f"The {other} profile's execution of this chapter has saved no claims in this copy of the book, so "
                f"there is nothing to set beside ours.")
    data = {"smoke": "the multi-view data", "cpu": "real CIFAR-10 images", "paper": "CIFAR-10 (paper profile)"}
    mine = {c.claim: c for c in ours}
    if brief:
        same = sum(c.claim in mine and mine[c.claim].verdict == c.verdict for c in theirs)
        told = "; ".join(f"{c.claim}: {c.verdict}" for c in theirs)
        return (f"On {data.get(other, other)} ({other} profile) the same comparisons come out {told}; the same "
                f"verdict on {same} of {len(theirs)} (the last section compares the two readings).")
    lines = []
    for c in theirs:
        m = mine.get(c.claim)
        here = f"{m.verdict} ({m.noise})" if m else "not measured"
        lines.append(f"- {c.claim}: on {data.get(profile, profile)} {here}; on {data.get(other, other)} {c.verdict} "
                     f"({c.noise}).")
    same = [c.claim for c in theirs if c.claim in mine and mine[c.claim].verdict == c.verdict]
    lines.append(f"\nThe two data sets give the same verdict on {len(same)} of {len(theirs)} comparisons"
                 + ("." if len(same) == len(theirs) else
                    ": where they differ, the multi-view verdict counts points on the known discriminative patches, "
                    "the real-image one counts every pixel above the threshold, which rewards maps that spread "
                    "attribution over many pixels, the background included."))
    return "\n".join(lines)


# ---- the mechanism (chapter 01)
def mechanism_findings(fair: dict | None, rows: dict[str, dict], robust: str, num_classes: int,
                       evals: dict[str, dict]) -> str:
    """Chapter 01's opening: whether clean training and PGD-AT use the dim feature 2 (their feature-2 probe
    accuracy, above chance or not) and whether the three premises of the fair test hold (`fair_test`)."""
    if fair is None:
        return "This profile's data records no features, so the mechanism of Section 3 is not measured here."
    c, a = rows["clean"]["probe_f2"], rows["PGD-AT"]["probe_f2"]
    used = {k: uses_feature(evals[k], "probe_f2", num_classes) for k in ("clean", "PGD-AT")}
    holds = fair["a"] and fair["b"] and fair["c"]
    return (f"On the multi-view data, clean training {'uses' if used['clean'] else 'does not use'} the dim second "
            f"feature ({c:.1f}% on images that hold only it; chance {100 / num_classes:.0f}%) and PGD-AT "
            f"{'uses it less' if used['PGD-AT'] and a < c else 'uses it' if used['PGD-AT'] else 'does not use it'} "
            f"({a:.1f}%). {'All three premises of a fair test hold' if holds else 'Not all three premises of a fair test hold'}"
            f" (feature 2 is learnable robustly on its own: {fair['f2_only_robust']:.1f}% robust; the clean model uses "
            f"it; adversarial training on the mixture keeps less of it), so Section 3's mechanism can be watched here.")


# ---- CKTAT against PGD-AT (chapter 02)
def headline_reading(found: list, teacher_natural: float, cktat: list[dict], pgdat: list[dict]) -> str:
    """Our reading of chapter 02's two claims where ours differ from the paper's, from the runs' numbers: where each
    method starts (its first epoch's validation accuracy) against where it ends, and the clean teacher it starts
    from. Empty when both claims are reproduced."""
    off = [c for c in found if c.verdict != "reproduced"]
    if not off:
        return ""
    first = lambda runs, key: sum(r["student"]["history"][0][key] for r in runs) / len(runs)
    last = lambda runs, key: sum(r["student"]["history"][-1][key] for r in runs) / len(runs)
    vr = next(k for k in cktat[0]["student"]["history"][0] if k.startswith("val_pgd"))
    n = len(cktat)
    text = (f"**Our reading.** CKTAT starts from a clean teacher that classifies {teacher_natural:.1f}% of the test "
            f"images. Means over the {n} seed{'s' * (n != 1)} of each method, on the validation images: after its "
            f"first epoch the student's accuracy is {first(cktat, 'val_natural'):.1f}% natural and "
            f"{first(cktat, vr):.1f}% {vr[4:].upper().replace('PGD', 'PGD-')}, PGD-AT's "
            f"{first(pgdat, 'val_natural'):.1f}% and {first(pgdat, vr):.1f}%; after the last, "
            f"{last(cktat, 'val_natural'):.1f}% and {last(cktat, vr):.1f}% against {last(pgdat, 'val_natural'):.1f}% "
            f"and {last(pgdat, vr):.1f}%. ")
    nat = next((c for c in off if "natural" in c.claim), None)
    rob = next((c for c in off if "natural" not in c.claim), None)
    ahead = first(cktat, "val_natural") > first(pgdat, "val_natural") and \
        last(cktat, "val_natural") > last(pgdat, "val_natural")
    if nat is not None and nat.ours is not None and nat.ours > 0 and "level with" in nat.claim and ahead:
        text += ("CKTAT is ahead in natural accuracy after its first epoch and still after its last; we think our "
                 "short schedule leaves the initialisation's head start in place, where the paper's longer training "
                 "ends with the two level. ")
    if rob is not None and rob.ours is not None and rob.paper is not None and rob.ours < rob.paper:
        text += (f"CKTAT's robust gain over PGD-AT is {rob.ours:+.1f} points here against the paper's "
                 f"{rob.paper:+.1f}: we think a network of this size, trained this briefly, leaves the teacher's "
                 f"labels less to add to what the attack already teaches.")
    return text.strip()



# ---- TRADES against PGD-AT (chapter 03)
def label_design_reading(found: list, trades: list[dict], pgdat: list[dict], attack_steps: int,
                         paper_steps: int) -> str:
    """Our reading of chapter 03's claims about TRADES where ours differ from the paper's: where TRADES and PGD-AT end
    on the validation images (means over their seeds: the gap is not the test images'), and, when TRADES ends above
    PGD-AT in natural and below it in robust accuracy, what we think moves it along that trade-off: its attack, which
    maximises a KL divergence that is nearly zero where it starts (0.001 from the clean image, Zhang et al.), so the first
    of this profile's `attack_steps` steps climbs a gradient with little direction, where PGD-AT's cross-entropy
    climbs from its first step; with the paper's `paper_steps` the first step matters less. An interpretation these
    runs do not test. Empty when every claim naming TRADES is reproduced."""
    off = [c for c in found if c.verdict != "reproduced" and "TRADES" in c.claim]
    if not off:
        return ""
    last = lambda runs, key: sum(r["student"]["history"][-1][key] for r in runs) / len(runs)
    vr = next(k for k in trades[0]["student"]["history"][-1] if k.startswith("val_pgd"))
    attack = vr[4:].upper().replace("PGD", "PGD-")
    nat = {m: last(runs, "val_natural") for m, runs in (("trades", trades), ("pgdat", pgdat))}
    rob = {m: last(runs, vr) for m, runs in (("trades", trades), ("pgdat", pgdat))}
    text = (f"**Our reading.** On the validation images too, TRADES ends at {nat['trades']:.1f}% natural and "
            f"{rob['trades']:.1f}% {attack} accuracy, PGD-AT at {nat['pgdat']:.1f}% and {rob['pgdat']:.1f}% (last "
            f"epoch, means over the seeds), so the difference is not the test images'. ")
    if nat["trades"] > nat["pgdat"] and rob["trades"] < rob["pgdat"]:
        text += ("TRADES sits further towards natural accuracy on the trade-off between the two than in the paper. We "
                 "think its training attack moves it there: TRADES's attack maximises a KL divergence that is nearly zero "
                 "where it starts, 0.001 from the clean image, so the gradient of its first step carries little "
                 f"direction, where PGD-AT's cross-entropy attack climbs from its first step. With this profile's "
                 f"{attack_steps} training step{'s' * (attack_steps != 1)} that first step is "
                 f"{'all' if attack_steps == 1 else f'1 in {attack_steps}'} of the attack, with the paper's "
                 f"{paper_steps} it is 1 in {paper_steps}: TRADES's students here train against weaker adversarial "
                 "examples. These runs do not test that; TRADES trained with more attack steps would.")
    return text.strip()

def teacher_trainings(runs: dict[str, dict], shown: dict | None = None) -> str:
    """Which training of its frozen teacher each of `runs` (name -> `train.run` result) learned from, told apart by
    the teacher's per-image test results that each run recorded: "" when all the runs of each teacher learned from
    one training. Otherwise, per teacher (its run folder), one sentence: how many trainings of its recipe, each
    one's natural test accuracy and runs, how the trainings compare (`noise.compare_evaluations`, paired on the same
    test images) and which of them `shown` (the teacher's own evaluation, as the page shows it) is. A teacher's
    checkpoint is not committed: a run that needs its weights in a new clone trains it again
    (`train.restore_checkpoint`), and a training that does not repeat the earlier one bit for bit is another
    teacher of the same recipe."""
    teachers: dict[str, dict[str, tuple[dict, list[str]]]] = {}
    for name, r in runs.items():
        t = r.get("teacher") or {}
        key = bits_of({"test": t["test"]}) if t.get("test") else None
        if key:
            folder = t.get("checkpoint", "").replace("\\", "/").split("/")
            teacher = next((p for p in folder if p not in ("", ".", "..")), "the teacher")
            teachers.setdefault(teacher, {}).setdefault(key, ({"test": t["test"]}, []))[1].append(name)
    acc = lambda e: e["test"]["attacks"]["natural"]["accuracy"]
    out = []
    for teacher, groups in teachers.items():
        if len(groups) < 2:
            continue
        trainings = list(groups.values())
        diffs = [compare_evaluations(e, trainings[0][0]) for e, _ in trainings[1:]]
        text = (f"These runs learned from {len(trainings)} trainings of the recipe of `{teacher}`: its checkpoint is "
                "not committed, so a run that needed its weights in a new clone trained it again, and that training "
                "did not repeat the earlier one bit for bit. Its natural test accuracy was "
                + "; ".join(f"{acc(e):.2f}% for {', '.join(names)}" for e, names in trainings) + ". "
                + ("The trainings differ within noise" if all(d.word == WITHIN for d in diffs) else
                   "The trainings differ beyond noise") + " ("
                + "; ".join(f"{i + 2} against 1: {d.evidence(2)}" for i, d in enumerate(diffs)) + ").")
        if shown is not None:
            which = next((i for i, k in enumerate(groups) if k == bits_of(shown)), None)
            text += (f" The teacher this page shows is training {which + 1}." if which is not None else
                     " The teacher this page shows is a later training than all of them.")
        out.append(text)
    return " ".join(out)

"""The decisions a page states about its runs, each one function with its threshold derived, not picked.

A page says "the model uses feature 2" or "the run collapsed" only through these functions, so the same words
mean the same thing on every page. Torch-free: they read the numbers `train.run` and `evaluate` wrote.

- `above_chance`: an accuracy on n images lies above chance (100 / C %) beyond z binomial standard errors of a
  model that guesses; on the multi-view probe images (one feature only) this is "the model uses that feature".
- `not_below`: accuracy a is not below accuracy b beyond the noise of two accuracies on the same n images
  (`checks.noise_margin`, two binomial standard errors of the difference, at least one image).
- `collapsed_epochs`: epochs whose validation accuracy fell back below half the best epoch's.
- `fair_test`: chapter 01's three premises of the paper's claim on the multi-view data.
- `feature_kept`: how much of the teacher's feature a student kept (chapters 02, 03).
- `claim_check` and the sentences after it: Table 5's ranking claim against paired per-image scores (chapter 05).
- `paired_order`, `claim_check`, `claim_sentence`, `threshold_sentence`, `feature_reading`, `orders_agree`:
  chapter 05's reading of Table 5 (attribution counts per image, the same images for every model; noise from the paired differences).
"""

from __future__ import annotations

import math

from .checks import noise_margin, within_noise  # within_noise: "the same" on a page


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
    """Accuracy a (%) is not below b beyond the noise of two accuracies on the same n images."""
    return a >= b - noise_margin(a, b, n)


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
    return sum(v) / len(v)


def paired_order(a: list[float], b: list[float], z: float = 2.0) -> int:
    """1 when the per-image values `a` lie above `b` (the same images, in the same order) beyond z standard errors
    of their mean paired difference, -1 when below, 0 when within. Values that are all equal are within."""
    if len(a) != len(b) or not a:
        raise ValueError("paired_order needs two equally long, non-empty lists")
    d = [u - v for u, v in zip(a, b)]
    mean = _mean(d)
    n = len(d)
    var = sum((x - mean) ** 2 for x in d) / (n - 1) if n > 1 else 0.0
    margin = z * math.sqrt(var / n)
    if mean > margin:
        return 1
    if mean < -margin:
        return -1
    return 0


def claim_check(scores: dict[str, list[float]], claim: tuple[str, ...] = TABLE5_CLAIM, z: float = 2.0) -> dict:
    """Does a per-image measure (e.g. knowledge points on the class's own feature patches) order the models as
    `claim` (most first)? Every pair of the claim is compared with `paired_order`.

    Returns "outcome": "matches" (every pair in the claimed order beyond noise), "contradicts" (some pair
    reversed beyond noise) or "unresolved" (no pair reversed, some within noise); "reversed" and "tied": the
    pairs (claimed higher, claimed lower) of each kind; "means"; "order": the models by mean, most first, joined
    by ">" or, within noise, "≈"; "n": images per model.
    """
    pairs = [(claim[i], claim[j]) for i in range(len(claim)) for j in range(i + 1, len(claim))]
    signs = {p: paired_order(scores[p[0]], scores[p[1]], z) for p in pairs}
    reversed_ = [p for p, s in signs.items() if s < 0]
    tied = [p for p, s in signs.items() if s == 0]
    outcome = "contradicts" if reversed_ else "unresolved" if tied else "matches"
    means = {m: _mean(scores[m]) for m in claim}
    ranked = sorted(claim, key=lambda m: -means[m])
    order = ranked[0]
    for hi, lo in zip(ranked, ranked[1:]):
        order += (" > " if paired_order(scores[hi], scores[lo], z) > 0 else " ≈ ") + lo
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

    tie = " ('≈': within two paired standard errors)" if "≈" in check["order"] else ""
    head = f"By {measure}, over {check['n']} images ({means}), the models order as {check['order']}{tie}. "
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


def feature_reading(shares: dict[str, list[float]], even: list[float], feature: str, images: str,
                    z: float = 2.0) -> str:
    """Which models put more of their attribution on `feature`'s patches than a map spread evenly over the image
    would (`even`: that share per image, the patches' area), beyond z paired standard errors, on `images`.
    `shares`: per model, the per-image share (%) on those patches."""
    above = [m for m, s in shares.items() if paired_order(s, even, z) > 0]
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

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


def capacity_separated(best_small: float, best_large: float, n: int) -> str:
    """Whether two capacities differ on validation (best validation accuracy of PGD-AT over the epochs, on the same
    n images): "larger" when the larger network's lies above beyond `noise_margin`, "smaller" when below, "tied"
    when within it."""
    if within_noise(best_small, best_large, n):
        return "tied"
    return "larger" if best_large > best_small else "smaller"


def sign_beyond_noise(a: float, b: float, n: int) -> int:
    """1 when accuracy a (%) lies above b beyond the noise of two accuracies on the same n images, -1 below, 0
    within."""
    if within_noise(a, b, n):
        return 0
    return 1 if a > b else -1


def change_margin(accuracies: tuple[float, ...], n: int, z: float = 2.0) -> float:
    """Percentage points within which a sum of accuracies with signs (here (m_L - p_L) - (m_S - p_S), the change of
    a method's gap to PGD-AT from the small to the large student) counts as zero: z binomial standard errors of that
    combination, each accuracy measured on n images and taken as independent (which overstates the noise of
    accuracies on the same images, so the verdict errs towards "within noise"); never less than one image."""
    var = sum((a / 100) * (1 - a / 100) / n for a in accuracies)
    return max(z * 100 * math.sqrt(var), 100 / n)


def capacity_direction(method: dict[str, float], pgdat: dict[str, float], n: int) -> dict:
    """Table 1's claim for one method and one accuracy (natural or robust): does the clean teacher hurt the small
    student and help the large one, relative to PGD-AT of the same capacity?

    `method` and `pgdat`: {"small": accuracy, "large": accuracy} (%), every accuracy on n test images. Returns
    the gaps ("small", "large": method minus PGD-AT), their signs beyond noise (`sign_beyond_noise`), the change of
    the gap from small to large with its margin (`change_margin`) and "outcome":
    "reproduced"  the gap is negative on the small student and positive on the large one, both beyond noise;
    "same trend"  not that, but the gap grows from small to large beyond noise (capacity favours the method, as
                  the paper says, without the change of sign);
    "reversed"    the gap shrinks from small to large beyond noise (the opposite of the paper's claim);
    "within noise" none of these.
    """
    gaps = {k: method[k] - pgdat[k] for k in ("small", "large")}
    signs = {k: sign_beyond_noise(method[k], pgdat[k], n) for k in ("small", "large")}
    change = gaps["large"] - gaps["small"]
    margin = change_margin((method["small"], pgdat["small"], method["large"], pgdat["large"]), n)
    if signs["small"] < 0 and signs["large"] > 0:
        outcome = "reproduced"
    elif change > margin:
        outcome = "same trend"
    elif change < -margin:
        outcome = "reversed"
    else:
        outcome = "within noise"
    return {"gaps": gaps, "signs": signs, "change": change, "margin": margin, "outcome": outcome, "n": n}


OUTCOME_WORDS = {"reproduced": "hurts the small student and helps the large one",
                 "same trend": "does better against PGD-AT on the large student than on the small one, without "
                               "the change of sign",
                 "reversed": "does worse against PGD-AT on the large student than on the small one",
                 "within noise": "shows no change from the small to the large student beyond sampling noise"}


def _effect(sign: int) -> str:
    return {1: "helps", -1: "hurts", 0: "within noise"}[sign]


def capacity_rows(method: str, ours: dict[str, dict], paper: dict[str, dict] | None) -> list[dict]:
    """One table row per accuracy of a method: our gaps to PGD-AT on the small and the large student, the change
    with its margin and the outcome (`capacity_direction`), and the paper's gaps and outcome (None without a row)."""
    rows = []
    for metric, d in ours.items():
        row = {"method": method, "accuracy": metric, "ours small": d["gaps"]["small"],
               "ours large": d["gaps"]["large"], "ours change": f"{d['change']:+.1f} ± {d['margin']:.1f}",
               "ours": d["outcome"]}
        if paper is not None:
            p = paper[metric]
            row.update({"paper small": p["gaps"]["small"], "paper large": p["gaps"]["large"],
                        "paper change": f"{p['change']:+.2f} ± {p['margin']:.2f}", "paper": p["outcome"]})
        rows.append(row)
    return rows


def capacity_sentence(method: str, ours: dict[str, dict], paper: dict[str, dict] | None) -> str:
    """The page's sentence for one method: on which accuracies our runs reproduce Table 1's direction (the clean
    teacher hurts the small student and helps the large one, beyond noise; `capacity_direction`), what they show on
    the others, and the same reading of the paper's own numbers (`paper` None: the paper has no row)."""
    yes = [m for m, d in ours.items() if d["outcome"] == "reproduced"]
    other = [m for m in ours if m not in yes]
    if not yes:
        text = f"**{method}**: our runs do not reproduce Table 1's direction on either accuracy"
    else:
        text = (f"**{method}**: our runs reproduce Table 1's direction (the clean teacher hurts the small student and "
                f"helps the large one) on {_and([m + ' accuracy' for m in yes])}")
    if other:
        text += ("; " if yes else ": ") + "; ".join(
            f"on {m} accuracy the method {OUTCOME_WORDS[ours[m]['outcome']]} "
            f"({ours[m]['gaps']['small']:+.1f} then {ours[m]['gaps']['large']:+.1f} points)" for m in other)
    text += "."
    if paper is None:
        return text + " The paper's Table 1 has no row for it."
    pyes = [m for m, d in paper.items() if d["outcome"] == "reproduced"]
    pother = [m for m in paper if m not in pyes]
    n = next(iter(paper.values()))["n"]
    if not pother:
        return text + " The paper's own numbers show the direction on both."
    words = "; ".join(f"on {m} accuracy the method {OUTCOME_WORDS[paper[m]['outcome']]} "
                      f"({paper[m]['gaps']['small']:+.2f} then {paper[m]['gaps']['large']:+.2f})" for m in pother)
    head = f" In the paper's own numbers (judged on {n:,} test images) " + (
        f"the direction holds on {_and([m + ' accuracy' for m in pyes])}; " if pyes else "the direction does not hold: ")
    return text + head + words + "."


def capacity_summary(outcomes: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """The methods grouped by how many of their accuracies reproduce the paper's direction: "both", "one",
    "none" (`outcomes`: method -> metric -> outcome of `capacity_direction`)."""
    out = {"both": [], "one": [], "none": []}
    for m, by_metric in outcomes.items():
        k = sum(o == "reproduced" for o in by_metric.values())
        out["both" if k == len(by_metric) else "one" if k else "none"].append(m)
    return out


def run_work(runs: list[dict], n_train: int, epoch_seconds: dict[str, float] | None = None) -> dict:
    """What a list of runs costs: per run, epochs x training images x (attack steps + 1) forward-backward passes
    (attack steps 0 for a clean phase) and, with `epoch_seconds` (seconds of one epoch per "kind" of run, e.g.
    measured by `bench`), epochs x that plus the run's "extra_s" (its test evaluations). `runs`: dicts with "name",
    "kind", "epochs", "attack_steps" and optionally "extra_s". Returns the rows (with "passes" and "seconds") and
    the totals."""
    rows = []
    for r in runs:
        row = {**r, "images": n_train, "passes": r["epochs"] * n_train * (r["attack_steps"] + 1)}
        if epoch_seconds is not None:
            row["seconds"] = r["epochs"] * epoch_seconds[r["kind"]] + r.get("extra_s", 0.0)
        rows.append(row)
    out = {"rows": rows, "passes": sum(r["passes"] for r in rows)}
    if epoch_seconds is not None:
        out["seconds"] = sum(r["seconds"] for r in rows)
    return out


def teacher_contrast(accs: dict[str, dict[str, float]], n: int) -> dict[str, dict[str, int]]:
    """For one method on one student: each teacher's effect against PGD-AT per accuracy (`sign_beyond_noise`) and
    the robust teacher against the clean one. `accs`: {"robust": {metric: %}, "clean": {...}, "pgdat": {...}}."""
    return {metric: {"robust": sign_beyond_noise(accs["robust"][metric], accs["pgdat"][metric], n),
                     "clean": sign_beyond_noise(accs["clean"][metric], accs["pgdat"][metric], n),
                     "robust_vs_clean": sign_beyond_noise(accs["robust"][metric], accs["clean"][metric], n)}
            for metric in accs["pgdat"]}


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

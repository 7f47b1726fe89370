"""Chapter 01 (the mechanism, Section 3 of the CKTAT paper): the theory, and what the page decides about its runs.

The decisions (`above_chance`, `uses_feature`, `fair_test`, `initialisation_verdict`, `feature_kept`,
`mechanism_findings`) read the final evaluations `train.run` wrote on the multi-view data; the rest of this
docstring is the theory.

Section 3.2: why adversarial training may refuse to learn a second feature.

Notation of the paper: a fraction mu of the data is single-view; a learned feature answers its own class
with output Theta(1) = `theta`; an adversarial perturbation aimed at feature j moves the runner-up class by
k_j * S, where S = sum_{j' != j} Theta(k/d) (`mixture_sum`) is the dense-mixture response and k1, k2 in [0, 1]
say how un-purified the two features' weights are.

Eq. 11 gives the change of the robust training error when the adversarially trained model starts to learn
its second feature v_{y,3-j}. Learning it does not pay off (adversarial training "lacks incentive") when

    (1 - mu) * ( e^t / (e^t + e^{k1 S}) - e^{2t} / (e^{2t} + e^{(k1+k2) S}) ) - 0.5 mu * e^t / (e^t + e^{k2 S}) >= 0.

Clean training always gains from the feature (Eq. 12: the clean error falls by 0.5 mu).
"""

from __future__ import annotations

import math

from .noise import not_below


def _share(a: float, b: float) -> float:
    """e^a / (e^a + e^b), computed stably."""
    return 1.0 / (1.0 + math.exp(b - a))


def robust_error_change(mu: float, k1: float, k2: float, theta: float = 1.0, mixture_sum: float = 3.0) -> float:
    """R2_robust - R1_robust of Eq. 11 (per sample): positive means learning the second feature hurts."""
    s = mixture_sum
    multi = (1 - mu) * (_share(theta, k1 * s) - _share(2 * theta, (k1 + k2) * s))
    single = 0.5 * mu * _share(theta, k2 * s)
    return multi - single


def clean_error_change(mu: float) -> float:
    """R2_clean - R1_clean of Eq. 12: learning the feature removes the error on half of the single-view data."""
    return -0.5 * mu


def lacks_incentive(mu: float, k1: float, k2: float, theta: float = 1.0, mixture_sum: float = 3.0) -> bool:
    """The paper's condition under which adversarial training does not learn the second feature."""
    return robust_error_change(mu, k1, k2, theta, mixture_sum) >= 0


def paper_example_as_printed(mu: float = 0.4, k1: float = 0.3, k2: float = 0.8, theta: float = 1.0,
                             mixture_sum: float = 3.0, printed_joint_exponent: float = 2.9) -> float:
    """The numeric example exactly as the paper prints it: 0.6 (e/(e+e^0.9) - e^2/(e^2+e^2.9)) - 0.2 e/(e+e^2.4).

    The paper's second exponent is 2.9, whereas (k1 + k2) * S = 3.3 for its own parameters; this function
    evaluates the printed expression so the book can show both values side by side.
    """
    s = mixture_sum
    multi = (1 - mu) * (_share(theta, k1 * s) - _share(2 * theta, printed_joint_exponent))
    return multi - 0.5 * mu * _share(theta, k2 * s)


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

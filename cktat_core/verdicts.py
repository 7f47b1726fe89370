"""The decisions a page states about its runs, each one function with its threshold derived, not picked.

A page says "the model uses feature 2" or "the run collapsed" only through these functions, so the same words
mean the same thing on every page. Torch-free: they read the numbers `train.run` and `evaluate` wrote.

- `above_chance`: an accuracy on n images lies above chance (100 / C %) beyond z binomial standard errors of a
  model that guesses; on the multi-view probe images (one feature only) this is "the model uses that feature".
- `not_below`: accuracy a is not below accuracy b beyond the noise of two accuracies on the same n images
  (`checks.noise_margin`, two binomial standard errors of the difference, at least one image).
- `collapsed_epochs`: epochs whose validation accuracy fell back below half the best epoch's.
- `fair_test`: chapter 01's three premises of the paper's claim on the multi-view data.
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

"""Chapter 09 (RAAT's Table 1, DUCAT): RAAT's reading against Cons-AT, DUCAT under the authors' protocol and
adaptive attacks, and the share of test images every model gets wrong (DUCAT's premise). Torch-free.
"""

from __future__ import annotations

import math

from . import budget
from .claims import REPRODUCED, Claim, quantity
from .noise import ABOVE, BELOW, compare_evaluations, not_below


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
                   f"counted; ours is {side} that, with other models and attacks than DUCAT's. The claim below judges "
                   f"the number as the abstract states it; the pattern (a core of images every model gets wrong) is "
                   f"what DUCAT's motivation rests on.")

def ducat_sentence(last: dict, attack: str, others: dict[str, float], suite: dict | None = None,
                   suite_others: dict[str, float] | None = None, spread: float | None = None) -> str:
    """DUCAT's robust accuracy under the authors' protocol (`<attack>_raw_head`: attack the raw 2C head, score
    after recovery) against the adaptive attacks on the recovered classifier (`attack`, and the per-image worst
    case `<attack>_worst_case`), from a final evaluation (`train.final_evaluation`); `others`: other methods'
    `attack` accuracy on the same images, to say where DUCAT would rank under each. With `suite` (DUCAT's
    standard attack-suite evaluation, run on the recovered classifier) and `suite_others` (the others' AutoAttack
    accuracy on the same images): where AutoAttack through the recovery leaves it, each a single run against another
    (`spread`: the pooled seed spread's upper bound of AutoAttack accuracy, the run-to-run margin)."""
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
    below = [m for m, v in suite_others.items() if not not_below(sa["aa"]["accuracy"], v, suite["n"], spread)]
    text += (f"; that is below the AutoAttack accuracy of {len(below)} of the {len(suite_others)} other methods "
             f"beyond sampling {'and run-to-run ' if spread else ''}noise")
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
            f"{first} of {epochs} ({cfg.ducat_start:.0%} of the schedule, as the authors' code starts at epoch 105 of "
            f"the 130 its README trains: `dummy_start`, FlaAI/DUCAT); over "
            f"those {len(dummy)} epochs the learning rate falls from {dummy[0]['lr']:.3g} to {dummy[-1]['lr']:.3g}. ")
    if before is not None:
        text += (f"Validation {val_key[4:].upper().replace('PGD', 'PGD-')} accuracy is {before:.1f}% before them and "
                 f"{dummy[-1][val_key]:.1f}% after the last.")
    return text

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


def shared_errors(chapter: str, shares: dict, claim_share: float, attack: str, dataset: str = "cifar10") -> Claim:
    """DUCAT's premise as its abstract states it: "up to `claim_share`% of CIFAR-10 adversarial samples always fail"
    to be classified as their class "across various AT methods and robust models". Judged on that quantity
    (`claims.quantity`): the share of test images whose adversarial example (each model under its own `attack`)
    every model gets wrong, `wrong_shares`' "all", with its 95% Wilson interval on the n images; the paper's number
    inside our interval reproduces it. Whether those shared errors are more common than independent errors would
    make them (the pattern DUCAT's motivation rests on) is the page's second line (`wrong_under_all_sentence`)."""
    from scipy.stats import binomtest

    from .claims import untestable

    text = f"Up to {claim_share:g}% of adversarial examples ({attack}) are misclassified by every model"
    measure = "share of test images every model gets wrong under its own attack (%)"
    if dataset != "cifar10":  # the abstract's number is CIFAR-10's
        return untestable(chapter, "DUCAT", text, measure, claim_share, f"DUCAT's number is CIFAR-10's, the data here "
                          f"{dataset}", ("ducat.wrong_under_every_model_cifar10",))
    n = shares["n"]
    k = round(shares["all"] * n / 100)
    ci = binomtest(k, n).proportion_ci(method="wilson")
    return quantity(chapter, "DUCAT", text, measure, claim_share, shares["all"], 100 * ci.low, 100 * ci.high,
                    f"Wilson interval on {n:,} images", rests_on=("ducat.wrong_under_every_model_cifar10",))


DICAR_READING = ("We read RAAT's natural accuracy below Cons-AT's as DICAR's doing, not the reduced perturbation's, "
                 "which changed the training input of few examples: RAAT without the reduced perturbation (eta = 1, "
                 "DICAR alone) should stay below Cons-AT.")


def raat_reading_tested(found: list[Claim], without: dict | None, raat: dict, cons_at: dict,
                        spread: float | None, cost: str) -> list[budget.Reading]:
    """Chapter 09's reading of RAAT's natural accuracy against Cons-AT's, where that claim is not reproduced and
    RAAT lies below, tested by `without` (RAAT with `raat_eta=1`: the reduced perturbation removed): supported when
    it stays below Cons-AT beyond the noise; not supported when it rises above RAAT beyond the noise (the reduced
    perturbation was what held RAAT down); within noise otherwise. Image by image on the runs' test images, with
    `spread` (the pooled seed spread's upper bound) as the run-to-run margin."""
    claim = next((c for c in found if c.claim.startswith("RAAT's natural accuracy") and "Cons-AT" in c.claim
                  and c.verdict != REPRODUCED and (c.ours or 0) < 0), None)
    if claim is None:
        return []
    run = "RAAT without its reduced perturbation (`runs/raat_raat_eta1`)"
    if without is None:
        return [budget.untested("09_raat_ducat", claim.claim, DICAR_READING, run, cost, budget=False)]
    ev = lambda r: r["student"]["last"]
    below = compare_evaluations(ev(without), ev(cons_at), "natural", spread)
    raised = compare_evaluations(ev(without), ev(raat), "natural", spread)
    verdict = (budget.SUPPORTED if below.word == BELOW else
               budget.NOT_SUPPORTED if raised.word == ABOVE or below.word == ABOVE else budget.WITHIN_NOISE)
    shows = (f"Without the reduced perturbation RAAT's natural accuracy lies {below.difference:+.1f} points from "
             f"Cons-AT's and {raised.difference:+.1f} from RAAT's.")
    return [budget.Reading("09_raat_ducat", claim.claim, DICAR_READING, run, verdict,
                           f"against Cons-AT: {below.evidence()}; against RAAT: {raised.evidence()}", shows,
                           budget=False)]

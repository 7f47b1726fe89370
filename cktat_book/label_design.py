"""Chapter 03 (label designs, the paper's Table 2): our reading of TRADES against PGD-AT where a claim is not
reproduced. Torch-free.
"""

from __future__ import annotations

from dataclasses import replace

from . import budget
from .claims import CONTRADICTED
from .report import validation_mean, validation_robust_key



def label_design_reading(found: list, trades: list[dict], pgdat: list[dict], attack_steps: int,
                         paper_steps: int) -> str:
    """Our reading of chapter 03's claims about TRADES where ours differ from the paper's: where TRADES and PGD-AT end
    on the validation images (means over their seeds: the gap is not the test images'), and, when TRADES ends above
    PGD-AT in natural and below it in robust accuracy, what we think moves it along that trade-off: its attack, which
    maximises a KL divergence that is nearly zero where it starts (0.001 from the clean image, Zhang et al.), so the first
    of this profile's `attack_steps` steps follows a gradient of second order (the curvature applied to the random
    start), where PGD-AT's first step follows the cross-entropy's own gradient; with the `paper_steps` of the book's `paper` profile (PGD-10, the setting RAAT and
    Pang et al. train with: the CKTAT paper states no training attack) the first step matters less. An interpretation
    these runs do not test. Empty when every claim naming TRADES is reproduced."""
    off = [c for c in found if c.verdict != "reproduced" and "TRADES" in c.claim]
    if not off:
        return ""
    last = validation_mean
    vr = validation_robust_key(trades)
    attack = vr[4:].upper().replace("PGD", "PGD-")
    nat = {m: last(runs, "val_natural") for m, runs in (("trades", trades), ("pgdat", pgdat))}
    rob = {m: last(runs, vr) for m, runs in (("trades", trades), ("pgdat", pgdat))}
    # the test images' TRADES - PGD-AT (the claims' own numbers): natural first, then robust
    test_gap = {("natural" in c.claim): c.ours for c in found if c.claim.startswith("TRADES's") and c.ours is not None}
    same = ((nat["trades"] - nat["pgdat"]) * test_gap.get(True, 0) >= 0
            and (rob["trades"] - rob["pgdat"]) * test_gap.get(False, 0) >= 0)
    text = (f"**Our reading.** On the validation images, TRADES ends at {nat['trades']:.1f}% natural and "
            f"{rob['trades']:.1f}% {attack} accuracy, PGD-AT at {nat['pgdat']:.1f}% and {rob['pgdat']:.1f}% (last "
            f"epoch, means over the seeds)"
            + (", the same way round as on the test images, so the difference is not the test images'. " if same else
               ", not the same way round as on the test images. "))
    if nat["trades"] > nat["pgdat"] and rob["trades"] < rob["pgdat"]:
        text += ("TRADES sits further towards natural accuracy on the trade-off between the two than in the paper. We "
                 "think its training attack moves it there: TRADES's attack maximises a KL divergence that is nearly zero "
                 "where it starts, 0.001 from the clean image, so its first step follows a gradient of second order "
                 "(the divergence's curvature applied to that random start), where PGD-AT's first step follows the "
                 f"cross-entropy's own gradient away from the true class. With this profile's "
                 f"{attack_steps} training step{'s' * (attack_steps != 1)} that first step is "
                 f"{'all' if attack_steps == 1 else f'1 in {attack_steps}'} of the attack; with the {paper_steps} "
                 f"steps of the book's `paper` profile (the setting RAAT trains with; the CKTAT paper states no "
                 f"training attack) it is 1 in {paper_steps}: we think TRADES's students here train against weaker "
                 "adversarial examples. These runs do not measure the training attack's strength; TRADES trained with "
                 "more attack steps tests the reading.")
    return text.strip()


def weak_first_step(attack_steps: int, paper_steps: int) -> str:
    """Chapter 03's reading of TRADES's place on the trade-off, as a prediction the `paper` profile's training attack
    tests."""
    share = "all of the attack" if attack_steps == 1 else f"1 in {attack_steps} of the attack"
    return ("We read TRADES's place on the trade-off (towards natural accuracy, against the paper's) as its training "
            "attack's doing: its first step follows the second-order gradient of a KL divergence that is nearly "
            "zero where it starts, and with "
            f"{attack_steps} step{'s' * (attack_steps != 1)} that step is {share}. With the `paper` profile's "
            f"attack (PGD-{paper_steps}, RAAT's setting) TRADES should move towards robust accuracy against PGD-AT.")


def readings(found: list, ladder: dict | None, spread: dict[str, float | None], attack: str, attack_steps: int,
             paper_steps: int) -> list[budget.Reading]:
    """Chapter 03's readings of its contradicted claims on TRADES against PGD-AT where TRADES sits towards natural
    accuracy (above PGD-AT in natural, below it in robust accuracy, against the paper), tested by the ladder's rung with
    the `paper` profile's training attack: TRADES - PGD-AT should fall in natural and rise in robust accuracy."""
    out = []
    for c in found:
        if c.verdict != CONTRADICTED or not c.claim.startswith("TRADES's") or "PGD-AT" not in c.claim:
            continue
        natural = "natural" in c.claim
        if c.ours is None or (c.ours <= 0 if natural else c.ours >= 0):
            continue  # not the move towards natural accuracy the reading explains
        out.append(budget.ladder_reading("03_label_design", c.claim, weak_first_step(attack_steps, paper_steps),
                                         ladder, "trades", "pgdat", "natural" if natural else attack, budget.ATTACK_RUNG,
                                         budget.BELOW if natural else budget.ABOVE,
                                         spread.get("natural" if natural else attack),
                                         "natural accuracy" if natural else f"{attack.replace('pgd', 'PGD-')} accuracy"))
    return joint(out)


def joint(readings: list[budget.Reading]) -> list[budget.Reading]:
    """One mechanism predicts both moves, so its readings share one verdict once both are tested: supported when both
    moves are, not supported when either goes the other way beyond the noise, within noise otherwise; each keeps its
    claim, and both carry the two tests' evidence and what the run shows."""
    tested = (budget.SUPPORTED, budget.NOT_SUPPORTED, budget.WITHIN_NOISE)
    if len(readings) < 2 or any(r.verdict not in tested for r in readings):
        return readings
    verdicts = {r.verdict for r in readings}
    verdict = (budget.NOT_SUPPORTED if budget.NOT_SUPPORTED in verdicts else
               budget.SUPPORTED if verdicts == {budget.SUPPORTED} else budget.WITHIN_NOISE)
    evidence = "; ".join(f"{r.claim}: {r.evidence}" for r in readings)
    shows = " ".join(r.shows.split(":")[0].rstrip(".,") + "." for r in readings)
    return [replace(r, verdict=verdict, evidence=evidence, shows=shows) for r in readings]

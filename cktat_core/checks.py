"""Sanity checks on an evaluation result (`cktat_core.evaluate`), in plain Python: no torch, so a report script
or a notebook can import them to reread a result file.

A suspicious result is flagged, never hidden. "Beyond noise" means a difference larger than `noise_margin`: two
binomial standard errors of the difference of two accuracies p_a, p_b measured on the same n images,
2 * sqrt(2 p (1 - p) / n) with p = (p_a + p_b) / 2, and never less than one image (100 / n percentage points).
Treating the two measurements as independent overstates the noise of attacks run on the same images (their
successes are positively correlated), so the checks err on the side of silence.

    robust_le_clean          no attack leaves the ADVERSARIAL accuracy (adversarial prediction right, whatever
                             the clean one; `adversarial_accuracy` in a result) above the clean accuracy beyond
                             noise: an attack that makes the model more accurate is broken (a flipped sign, a
                             wrong label). Robust accuracy that also requires the clean prediction to be right
                             (the `standard` protocol) can never exceed the clean accuracy, so it is not what
                             this check compares
    more_steps_not_weaker    PGD with more steps is not weaker than PGD with fewer beyond noise
                             (PGD-100 <= PGD-20 + noise); compared only where the step counts differ
    autoattack_strongest     AutoAttack is not weaker than any other attack in the same ball beyond noise
    fgsm_weaker_than_pgd     FGSM is not stronger than a PGD attack in the same ball beyond noise (a single
                             step beating many is the classic sign of gradient masking)
    accuracy_falls_with_eps  (eps sweep) PGD-20 accuracy never rises beyond noise as eps grows, and falls
                             beyond noise between the smallest and the largest eps when it started above
                             noise from zero (else no fall could show) and the largest eps is at least twice
                             the smallest
    nonzero_gradients        (gradient check) the input gradient of the cross-entropy is not exactly zero at
                             any of the first `batch_size` clean test points
    autoattack_package       the AutoAttack package's own checks raised no warning
A check that does not apply (for instance no AutoAttack run) is reported as "not run: <why>".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable


def noise_margin(acc_a: float, acc_b: float, n: int, z: float = 2.0) -> float:
    """Percentage points within which two accuracies on the same n images count as equal (module docstring)."""
    if n <= 0:
        return 0.0
    p = (acc_a + acc_b) / 200
    return max(z * math.sqrt(2 * p * (1 - p) / n) * 100, 100 / n)


def within_noise(acc_a: float, acc_b: float, n: int, z: float = 2.0) -> bool:
    """The two accuracies (percent, on the same n images) differ by no more than `noise_margin`."""
    return abs(acc_a - acc_b) <= noise_margin(acc_a, acc_b, n, z)


def _flag(check, message, attacks, difference, noise):
    return {"check": check, "message": message, "attacks": list(attacks), "difference": difference, "noise": noise}


@dataclass(frozen=True)
class PairCheck:
    """Flag attack a's accuracy above attack b's beyond noise, for every pair of attacks in the same ball whose
    kinds are `kinds_a` and `kinds_b` (and, if given, `applies(spec_a, spec_b)`)."""
    name: str
    kinds_a: frozenset
    kinds_b: frozenset
    message: Callable[[str, str, dict, dict, float], str]  # (a, b, accuracies, specs, margin) -> text
    not_run: str
    applies: Callable[[dict, dict], bool] = lambda sa, sb: True
    weaker_first: bool = True  # list the flagged pair as [a, b] (else [b, a])


PAIR_CHECKS = (
    PairCheck("more_steps_not_weaker", frozenset({"pgd"}), frozenset({"pgd"}),
              lambda a, b, acc, sp, m: f"{a} ({sp[a]['steps']} steps) {acc[a]:.2f}% is above {b} "
                                       f"({sp[b]['steps']} steps) {acc[b]:.2f}% beyond noise ({m:.2f})",
              "needs two PGD attacks with different step counts", lambda sa, sb: sa["steps"] > sb["steps"]),
    PairCheck("autoattack_strongest", frozenset({"autoattack"}), frozenset({"fgsm", "pgd", "mim", "cw"}),
              lambda a, b, acc, sp, m: f"AutoAttack {acc[a]:.2f}% is above {b} {acc[b]:.2f}% beyond noise "
                                       f"({m:.2f}): an attack is broken or the model masks gradients",
              "needs AutoAttack and another attack in its ball"),
    PairCheck("fgsm_weaker_than_pgd", frozenset({"pgd"}), frozenset({"fgsm"}),
              lambda a, b, acc, sp, m: f"FGSM {acc[b]:.2f}% is below {a} {acc[a]:.2f}% beyond noise "
                                       f"({m:.2f}): one step beats many, a sign of gradient masking",
              "needs FGSM and PGD in the same ball", weaker_first=False),
)


def _same_ball(sa: dict, sb: dict) -> bool:
    return sa["norm"] == sb["norm"] and math.isclose(sa["eps"], sb["eps"])


def _pair_flags(check: PairCheck, acc: dict, specs: dict, n: int, z: float) -> tuple[list[dict], bool]:
    """(flags, whether any pair applied)."""
    pairs = [(a, b) for a in specs for b in specs if a != b and specs[a]["kind"] in check.kinds_a
             and specs[b]["kind"] in check.kinds_b and _same_ball(specs[a], specs[b])
             and check.applies(specs[a], specs[b])]
    found = []
    for a, b in pairs:
        margin = noise_margin(acc[a], acc[b], n, z)
        if acc[a] - acc[b] > margin:
            found.append(_flag(check.name, check.message(a, b, acc, specs, margin),
                               [a, b] if check.weaker_first else [b, a], acc[a] - acc[b], margin))
    return found, bool(pairs)


def _sweep_flags(sweep: dict, n: int, z: float) -> list[dict]:
    pts, found = sweep["points"], []
    for i, p in enumerate(pts):
        for q in pts[i + 1:]:
            margin = noise_margin(q["accuracy"], p["accuracy"], n, z)
            if q["eps"] > p["eps"] and q["accuracy"] - p["accuracy"] > margin:
                found.append(_flag("accuracy_falls_with_eps", f"accuracy rises from {p['accuracy']:.2f}% at eps "
                                   f"{p['eps']:.4f} to {q['accuracy']:.2f}% at eps {q['eps']:.4f}",
                                   ["eps_sweep"], q["accuracy"] - p["accuracy"], margin))
    first, last = pts[0], pts[-1]
    margin = noise_margin(first["accuracy"], last["accuracy"], n, z)
    can_fall = first["accuracy"] > noise_margin(first["accuracy"], 0.0, n, z)
    if last["eps"] >= 2 * first["eps"] and can_fall and first["accuracy"] - last["accuracy"] <= margin:
        found.append(_flag("accuracy_falls_with_eps", f"accuracy does not fall from {first['accuracy']:.2f}% at "
                           f"eps {first['eps']:.4f} to {last['accuracy']:.2f}% at eps {last['eps']:.4f} "
                           f"(noise {margin:.2f}): the attack makes no use of a larger budget",
                           ["eps_sweep"], first["accuracy"] - last["accuracy"], margin))
    return found


def sanity_checks(res: dict, z: float = 2.0) -> tuple[dict[str, str], list[dict]]:
    """(check name -> "passed" / "flagged" / "not run: <why>", list of flags) for a result of `evaluate`."""
    n, attacks = res["n"], res["attacks"]
    clean = attacks["natural"]["accuracy"]
    robust = {k: v for k, v in attacks.items() if k != "natural"}
    specs = {k: v["spec"] for k, v in robust.items() if v.get("spec")}
    acc = {k: v["accuracy"] for k, v in robust.items()}
    checks: dict[str, str] = {}
    flags: list[dict] = []

    def record(check, found, why_not_run=None):
        if why_not_run:
            checks[check] = f"not run: {why_not_run}"
        else:
            checks[check] = "flagged" if found else "passed"
            flags.extend(found)

    found = []
    for k, v in robust.items():
        adv = v.get("adversarial_accuracy", v["accuracy"])
        margin = noise_margin(adv, clean, n, z)
        if adv - clean > margin:
            found.append(_flag("robust_le_clean", f"{k}: adversarial accuracy {adv:.2f}% is above the clean "
                               f"{clean:.2f}% beyond noise ({margin:.2f}): the attack helps the model",
                               [k, "natural"], adv - clean, margin))
    record("robust_le_clean", found, None if robust else "no attack")

    for check in PAIR_CHECKS:
        found, applied = _pair_flags(check, acc, specs, n, z)
        record(check.name, found, None if applied else check.not_run)

    sweep = res.get("eps_sweep")
    has_sweep = bool(sweep and len(sweep["points"]) >= 2)
    record("accuracy_falls_with_eps", _sweep_flags(sweep, n, z) if has_sweep else [],
           None if has_sweep else "no eps sweep")

    grad = res.get("gradient_check")
    zero = grad["zero_gradient"] if grad else 0
    record("nonzero_gradients", [_flag("nonzero_gradients", f"{zero} of {grad['points']} clean points "
                                       + ("has an exactly zero input gradient: gradient attacks cannot move it"
                                          if zero == 1 else "have an exactly zero input gradient: gradient "
                                          "attacks cannot move them") + " (masked or saturated gradients)",
                                       ["natural"], zero, 0)]
           if grad and grad["zero_gradient"] else [], None if grad else "no gradient check")

    aa = [(k, v) for k, v in robust.items() if "package_warnings" in v]
    record("autoattack_package", [_flag("autoattack_package", f"AutoAttack: {w}", [k], 0.0, 0.0)
                                  for k, v in aa for w in v["package_warnings"]], None if aa else "no AutoAttack run")
    return checks, flags


def format_table(res: dict) -> str:
    """The printed form of a result: one line per attack, the metrics, then every check and flag."""
    lines = [f"protocol {res['protocol']}, {res['n']:,} test images"]
    for name, a in res["attacks"].items():
        s = a.get("spec") or {}
        how = "" if s.get("kind") in (None, "natural", "fgsm", "autoattack") else \
            f"  [{s['steps']} steps of {s['alpha']:.4f}, {s['norm']}]"
        if s.get("kind") == "autoattack":
            how = f"  [{s['version']}: " + ", ".join(f"{k} {v:.2f}%" for k, v in a["per_attack"].items()) + "]"
        lines.append(f"  {name:<10} {a['accuracy']:6.2f}%  ({a['correct']}/{a['total']}, {a['seconds']:.1f} s){how}")
    m = res["metrics"]
    if m.get("aa") is not None:
        lines.append(f"  clean/AA mean {m['clean_aa_mean']:.2f}%, NRR(AA) {m['nrr_aa']:.2f}")
    if res.get("eps_sweep"):
        pts = ", ".join(f"{p['eps']:.4f}: {p['accuracy']:.2f}%" for p in res["eps_sweep"]["points"])
        lines.append(f"  eps sweep (pgd20): {pts}")
    ran = [k for k, v in res["checks"].items() if not v.startswith("not run")]
    if res["flags"]:
        lines += [f"  FLAG {f['check']}: {f['message']}" for f in res["flags"]]
    else:
        lines.append(f"  sanity checks: all {len(ran)} passed ({', '.join(ran)})")
    skipped = [f"{k} ({v[len('not run: '):]})" for k, v in res["checks"].items() if v.startswith("not run")]
    if skipped:
        lines.append(f"  not run: {'; '.join(skipped)}")
    return "\n".join(lines)

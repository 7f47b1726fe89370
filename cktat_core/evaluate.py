"""Natural and robust accuracy of a model: the Table 4 attack suite, two protocols, sanity checks.

Robust accuracy counts a test point only when the clean input AND its adversarial input are both
classified correctly (SPEC 5). The model is evaluated in eval() mode; attacks see it in eval() mode too.

Attacks, by name (`attack_spec`):
    natural        clean accuracy
    fgsm           one signed-gradient step of size eps from x
    pgdN           N steps of PGD on cross-entropy, uniform random start (pgd20, pgd100, ...)
    pgdN_l2        the same in the L2 ball of radius threat.eps_l2, step threat.alpha_l2
    mim, mimN      momentum iterative attack, decay 1.0, from x (20 steps by default)
    cw, cwN        PGD on the CW margin -relu(z_y - max_{j!=y} z_j + kappa), uniform start (30 steps)
    aa             AutoAttack, version "standard" (APGD-CE, APGD-T, FAB-T, Square) or "apgd" (APGD-CE,
                   APGD-T; for CPUs), through `cktat_core.autoattack`
    all            natural, fgsm, pgd20, pgd100, mim, cw, aa: one row of the paper's Table 4 (+ FGSM)

Protocols (SPEC 5), which fix the step sizes and counts of the iterative attacks:
    standard           pgdN: N steps of threat.alpha (2/255 for CIFAR); mim: 20 steps; cw: 30 steps;
                       every step threat.alpha.
    compat-generalist  every iterative attack (pgdN, mim, cw) runs 10 steps of 0.007 whatever its name, as
                       the evaluation code whose metric list CKTAT's Table 4 matches. FGSM and AutoAttack
                       are unchanged. For L2 attacks only the step count changes (0.007 is an L-inf step).
Each result records the protocol and, per attack, the steps, step size, start and budget it really used.

Sanity checks (`sanity_checks`): a suspicious result is flagged in the result and in the printed output,
never hidden. "Beyond noise" means a difference larger than `noise_margin`: two binomial standard errors
of the difference of two accuracies p_a, p_b measured on the same n images, 2 * sqrt(2 p (1 - p) / n) with
p = (p_a + p_b) / 2, and never less than one image (100 / n percentage points). Treating the two
measurements as independent overstates the noise of attacks run on the same images (their successes are
positively correlated), so the checks err on the side of silence.
    robust_le_clean          no attack leaves accuracy above the clean accuracy (exact, no noise allowed)
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

Result schema ("cktat-eval/1"), accuracies in percent::

    {"schema": "cktat-eval/1",
     "n": 517,                                   # test images
     "protocol": "standard",
     "threat": {"eps": 0.0314, "alpha": 0.0078, "norm": "linf", "eps_l2": 0.502, "alpha_l2": 0.125},
     "attacks": {
        "natural": {"accuracy": 91.3, "correct": 472, "total": 517, "seconds": 0.4,
                    "spec": {"name": "natural", "kind": "natural", ...},
                    "per_class": {"airplane": 92.0, ...},          # None for a class absent from the set
                    "groups": {"single_view": 84.0, ...}},        # only for data with groups (multi-view)
        "pgd20":   {... as above ..., "nrr": 12.1,                # 2 * clean * robust / (clean + robust)
                    "spec": {"name": "pgd20", "kind": "pgd", "eps": 0.0314, "norm": "linf", "steps": 20,
                             "alpha": 0.0078, "random_start": "uniform", "decay": 0.0, "kappa": 0.0,
                             "version": ""}},
        "aa":      {... as above ..., "version": "standard", "package": "pyautoattack 0.2.0",
                    "per_attack": {"apgd-ce": 40.1, "apgd-t": 38.0, ...},   # cumulative robust accuracy
                    "per_attack_seconds": {"apgd-ce": 12.0, ...}, "package_warnings": [...]}},
     "metrics": {"clean": 91.3, "aa": 38.0, "clean_aa_mean": 64.6, "nrr_aa": 53.6,   # None without "aa"
                 "worst_attack": "aa", "worst_accuracy": 38.0},
     "eps_sweep": {"attack": "pgd20", "points": [{"eps": 0.0157, "accuracy": 60.2, "correct": 311,
                                                  "total": 517, "seconds": 20.1}, ...]},   # or None
     "gradient_check": {"points": 500, "zero_gradient": 0},                              # or None
     "checks": {"robust_le_clean": "passed", "autoattack_strongest": "flagged", ...},
     "flags": [{"check": "autoattack_strongest", "message": "...", "attacks": ["aa", "pgd20"],
                "difference": 3.1, "noise": 2.4}]}

The `cktat eval` command adds "checkpoint", "model", "dataset", "device", "seed" and "versions".
"""

from __future__ import annotations

import contextlib
import math
import re
import sys
import time
from dataclasses import asdict, dataclass
from functools import partial
from typing import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attacks import cw_inf, fgsm, mim, pgd
from .data import TensorData
from .errors import ConfigError

AttackFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
SCHEMA = "cktat-eval/1"
TABLE4 = ("natural", "fgsm", "pgd20", "pgd100", "mim", "cw", "aa")
AA_VERSIONS = ("standard", "apgd")


@dataclass(frozen=True)
class Threat:
    eps: float = 8 / 255
    alpha: float = 2 / 255
    norm: str = "linf"
    eps_l2: float = 128 / 255  # the pgdN_l2 attacks (RAAT Table 5)
    alpha_l2: float = 32 / 255


@dataclass(frozen=True)
class Protocol:
    """How the iterative attacks are run. None keeps each attack's own value."""
    name: str
    steps: int | None = None  # every iterative attack runs this many steps
    alpha: float | None = None  # every iterative L-inf attack uses this step


PROTOCOLS = {
    "standard": Protocol("standard"),
    "compat-generalist": Protocol("compat-generalist", steps=10, alpha=0.007),
}


@dataclass(frozen=True)
class AttackSpec:
    """What one named attack really runs; stored with its result."""
    name: str
    kind: str  # natural | fgsm | pgd | mim | cw | autoattack
    eps: float = 0.0
    norm: str = "linf"
    steps: int = 0
    alpha: float = 0.0
    random_start: str = "none"
    decay: float = 0.0  # mim
    kappa: float = 0.0  # cw
    version: str = ""  # autoattack


def get_protocol(name: str | Protocol) -> Protocol:
    if isinstance(name, Protocol):
        return name
    if name not in PROTOCOLS:
        raise ConfigError("protocol", f"must be one of {', '.join(PROTOCOLS)}", name)
    return PROTOCOLS[name]


def expand_names(names: Iterable[str]) -> list[str]:
    """Attack names with "all" replaced by the Table 4 row, duplicates dropped, order kept."""
    out: list[str] = []
    for n in names:
        for m in (TABLE4 if n == "all" else (n,)):
            if m not in out:
                out.append(m)
    return out


def attack_spec(name: str, threat: Threat = Threat(), protocol: str | Protocol = "standard", kappa: float = 50.0,
                aa_version: str = "standard") -> AttackSpec:
    """The attack a name stands for under a protocol (see the module docstring for the names)."""
    proto = get_protocol(protocol)

    def iterative(kind, default_steps, norm=threat.norm, eps=threat.eps, alpha=threat.alpha, **kw):
        steps = proto.steps or default_steps
        if proto.alpha is not None and norm == "linf":
            alpha = proto.alpha
        return AttackSpec(name, kind, eps, norm, steps, alpha, **kw)

    if name == "natural":
        return AttackSpec(name, "natural")
    if name == "fgsm":
        return AttackSpec(name, "fgsm", threat.eps, threat.norm, 1, threat.eps)
    if name in ("aa", "autoattack"):
        if aa_version not in AA_VERSIONS:
            raise ConfigError("aa_version", f"must be one of {', '.join(AA_VERSIONS)}", aa_version)
        return AttackSpec(name, "autoattack", threat.eps, threat.norm, version=aa_version)
    m = re.fullmatch(r"pgd(\d+)(_l2)?", name)
    if m and int(m.group(1)) >= 1:
        if m.group(2):
            return iterative("pgd", int(m.group(1)), "l2", threat.eps_l2, threat.alpha_l2, random_start="uniform")
        return iterative("pgd", int(m.group(1)), random_start="uniform")
    m = re.fullmatch(r"(mim|cw)(\d*)", name)
    if m and (not m.group(2) or int(m.group(2)) >= 1):
        steps = int(m.group(2) or (20 if m.group(1) == "mim" else 30))
        if m.group(1) == "mim":
            return iterative("mim", steps, random_start="none", decay=1.0)
        if threat.norm != "linf":
            raise ConfigError("attacks", "cw is an L-inf attack; use a linf threat", name)
        return iterative("cw", steps, random_start="uniform", kappa=kappa)
    raise ConfigError("attacks", "unknown attack; known: natural, fgsm, pgdN (e.g. pgd20), pgdN_l2, mim, mimN, "
                      "cw, cwN, aa, all", name)


def build_attack(spec: AttackSpec, batch_size: int = 500) -> AttackFn | None:
    """The attack function (model, x, y) -> x_adv of a spec; None for "natural"."""
    if spec.kind == "natural":
        return None
    if spec.kind == "fgsm":
        return partial(fgsm, eps=spec.eps, norm=spec.norm)
    if spec.kind == "pgd":
        return partial(pgd, eps=spec.eps, alpha=spec.alpha, steps=spec.steps, norm=spec.norm, loss="ce",
                       random_start=spec.random_start)
    if spec.kind == "mim":
        return partial(mim, eps=spec.eps, alpha=spec.alpha, steps=spec.steps, decay=spec.decay, norm=spec.norm)
    if spec.kind == "cw":
        return partial(cw_inf, eps=spec.eps, alpha=spec.alpha, steps=spec.steps, kappa=spec.kappa,
                       random_start=spec.random_start)
    if spec.kind == "autoattack":
        from .autoattack import autoattack
        return partial(autoattack, eps=spec.eps, norm=spec.norm, version=spec.version, batch_size=batch_size)
    raise ValueError(f"unknown attack kind {spec.kind!r}")


def attack_by_name(name: str, threat: Threat = Threat(), protocol: str | Protocol = "standard",
                   kappa: float = 50.0, aa_version: str = "standard") -> AttackFn | None:
    """The attack function of a name (None for "natural"); ConfigError (a ValueError) for an unknown name."""
    return build_attack(attack_spec(name, threat, protocol, kappa, aa_version))


# ------------------------------------------------------------------------------------------- accuracy
def correct_mask(model: nn.Module, data: TensorData, attack: AttackFn | None = None,
                 batch_size: int = 500, bar=None) -> torch.Tensor:
    """Bool tensor (N,): whether model classifies each (attacked, if `attack`) input correctly."""
    was_training = model.training
    model.eval()
    try:
        out = []
        for start in range(0, len(data), batch_size):
            x, y = data.x[start:start + batch_size], data.y[start:start + batch_size]
            if attack is not None:
                x = attack(model, x, y)
            with torch.no_grad():
                out.append(model(x).argmax(1) == y)
            if bar is not None:
                bar.update(1)
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)
    finally:
        model.train(was_training)


def _acc(mask: torch.Tensor) -> float | None:
    n = int(mask.numel())
    return 100.0 * int(mask.sum()) / n if n else None


def summarize(mask: torch.Tensor, data: TensorData) -> dict:
    """Accuracy, count, per-class accuracy and (multi-view data) per-group accuracy of a correctness mask."""
    n = int(mask.numel())
    correct = int(mask.sum())
    res = {"accuracy": 100.0 * correct / max(n, 1), "correct": correct, "total": n}
    if data.classes and n:
        k = len(data.classes)
        y = data.y.to(mask.device)
        hits = torch.bincount(y[mask], minlength=k).tolist()
        counts = torch.bincount(y, minlength=k).tolist()
        res["per_class"] = {c: (100.0 * h / t if t else None) for c, h, t in zip(data.classes, hits, counts)}
    if data.groups:
        res["groups"] = {g: _acc(mask[m]) for g, m in data.groups.items()}
    return res


def nrr(clean: float, robust: float) -> float:
    """Natural-robust ratio, the harmonic mean 2 * clean * robust / (clean + robust) (RAAT Tables 2, 3)."""
    return 2 * clean * robust / (clean + robust) if clean + robust > 0 else 0.0


def zero_gradient_count(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """How many inputs have an input gradient of the cross-entropy that is exactly zero (eval mode)."""
    was_training = model.training
    model.eval()
    try:
        x = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            grad, = torch.autograd.grad(F.cross_entropy(model(x).float(), y, reduction="sum"), x,
                                        allow_unused=True)
        if grad is None:
            return len(x)
        return int((grad.flatten(1).abs().sum(1) == 0).sum())
    finally:
        model.train(was_training)


# ----------------------------------------------------------------------------------------- the suite
def _bar(total: int, progress: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, disable=not progress, file=sys.stderr, unit="batch", dynamic_ncols=True, leave=False)


def _run_autoattack(model, data, spec, natural, batch_size, bar) -> dict:
    from .autoattack import run_autoattack

    bar.set_description(spec.name)
    out = run_autoattack(model, data.x, data.y, spec.eps, spec.norm, spec.version, seed=0, batch_size=batch_size,
                         on_attack=lambda _name: bar.update(1))
    robust = out.robust.to(natural.device) & natural
    return {**summarize(robust, data), "version": spec.version, "package": out.package,
            "per_attack": out.per_attack, "per_attack_seconds": out.seconds, "package_warnings": out.warnings}


def evaluate(model: nn.Module, data: TensorData, attacks: dict[str, AttackFn | None] | Iterable[str] = ("pgd20",),
             threat: Threat = Threat(), batch_size: int = 500, *, protocol: str | Protocol = "standard",
             kappa: float = 50.0, aa_version: str = "standard", eps_sweep: Iterable[float] = (),
             gradient_check: bool = False, progress: bool = False, seed: int | None = None) -> dict:
    """Natural accuracy and robust accuracy under each attack, metrics and sanity checks (schema above).

    attacks: names (see the module docstring; "all" is the Table 4 row) or a dict name -> attack function.
    eps_sweep: budgets at which to rerun PGD-20 (step eps * threat.alpha / threat.eps) for the eps check.
    gradient_check: count the first `batch_size` clean test points whose input gradient is exactly zero.
    seed: when given, the random starts are drawn from this seed and the caller's random state is restored
    afterwards; None draws from (and advances) the global generator.
    """
    rng = contextlib.nullcontext() if seed is None else torch.random.fork_rng(
        devices=[data.x.device] if data.x.device.type == "cuda" else [])
    with rng:
        if seed is not None:
            torch.manual_seed(seed)
        return _evaluate(model, data, attacks, threat, batch_size, get_protocol(protocol), kappa, aa_version,
                         sorted(eps_sweep), gradient_check, progress)


def _evaluate(model, data, attacks, threat, batch_size, proto, kappa, aa_version, sweep, gradient_check, progress):
    if isinstance(attacks, dict):
        plan = {name: (None, fn) for name, fn in attacks.items() if fn is not None}
    else:
        specs = [attack_spec(n, threat, proto, kappa, aa_version) for n in expand_names(attacks)]
        plan = {s.name: (s, build_attack(s, batch_size)) for s in specs if s.kind != "natural"}
    nb = -(-len(data) // batch_size)
    aa = [s for s, _ in plan.values() if s is not None and s.kind == "autoattack"]
    n_aa = sum(4 if s.version == "standard" else 2 for s in aa)  # AutoAttack ticks once per attack
    bar = _bar(nb * (1 + len(plan) - len(aa) + len(sweep)) + n_aa, progress)
    try:
        bar.set_description("natural")
        t0 = time.perf_counter()
        natural = correct_mask(model, data, None, batch_size, bar)
        clean = summarize(natural, data)
        results = {"natural": {**clean, "seconds": time.perf_counter() - t0, "spec": asdict(AttackSpec("natural",
                                                                                                       "natural"))}}
        for name, (spec, fn) in plan.items():
            t0 = time.perf_counter()
            if spec is not None and spec.kind == "autoattack":
                entry = _run_autoattack(model, data, spec, natural, batch_size, bar)
            else:
                bar.set_description(name)
                entry = summarize(correct_mask(model, data, fn, batch_size, bar) & natural, data)
            entry["seconds"] = time.perf_counter() - t0
            entry["nrr"] = nrr(clean["accuracy"], entry["accuracy"])
            if spec is not None:
                entry["spec"] = asdict(spec)
            results[name] = entry
        sweep_res = None
        if sweep:
            points = []
            for eps in sweep:
                bar.set_description(f"eps {eps:.4f}")
                t0 = time.perf_counter()
                fn = partial(pgd, eps=eps, alpha=eps * threat.alpha / threat.eps, steps=20, norm=threat.norm,
                             loss="ce", random_start="uniform")
                s = summarize(correct_mask(model, data, fn, batch_size, bar) & natural, data)
                points.append({"eps": eps, "accuracy": s["accuracy"], "correct": s["correct"], "total": s["total"],
                               "seconds": time.perf_counter() - t0})
            sweep_res = {"attack": "pgd20", "points": points}
        grad_res = None
        if gradient_check and len(data):
            x, y = data.x[:batch_size], data.y[:batch_size]
            grad_res = {"points": len(x), "zero_gradient": zero_gradient_count(model, x, y)}
    finally:
        bar.close()
    res = {"schema": SCHEMA, "n": len(data), "protocol": proto.name, "threat": asdict(threat), "attacks": results,
           "metrics": _metrics(results), "eps_sweep": sweep_res, "gradient_check": grad_res}
    res["checks"], res["flags"] = sanity_checks(res)
    return res


def _metrics(results: dict) -> dict:
    clean = results["natural"]["accuracy"]
    aa = next((r["accuracy"] for r in results.values() if r.get("spec", {}).get("kind") == "autoattack"), None)
    robust = {k: v["accuracy"] for k, v in results.items() if k != "natural"}
    worst = min(robust, key=robust.get) if robust else None
    return {"clean": clean, "aa": aa, "clean_aa_mean": None if aa is None else (clean + aa) / 2,
            "nrr_aa": None if aa is None else nrr(clean, aa), "worst_attack": worst,
            "worst_accuracy": robust.get(worst) if worst else None}


# ------------------------------------------------------------------------------------- sanity checks
def noise_margin(acc_a: float, acc_b: float, n: int, z: float = 2.0) -> float:
    """Percentage points within which two accuracies on the same n images count as equal (module docstring)."""
    if n <= 0:
        return 0.0
    p = (acc_a + acc_b) / 200
    return max(z * math.sqrt(2 * p * (1 - p) / n) * 100, 100 / n)


def _flag(check, message, attacks, difference, noise):
    return {"check": check, "message": message, "attacks": list(attacks), "difference": difference, "noise": noise}


def sanity_checks(res: dict, z: float = 2.0) -> tuple[dict[str, str], list[dict]]:
    """(check name -> "passed" / "flagged" / "not run: <why>", list of flags) for a result of `evaluate`."""
    n, attacks = res["n"], res["attacks"]
    clean = attacks["natural"]["accuracy"]
    robust = {k: v for k, v in attacks.items() if k != "natural"}
    specs = {k: v.get("spec") for k, v in robust.items()}
    known = {k: s for k, s in specs.items() if s}
    checks: dict[str, str] = {}
    flags: list[dict] = []

    def same_ball(a, b):
        return known[a]["norm"] == known[b]["norm"] and math.isclose(known[a]["eps"], known[b]["eps"])

    def record(check, found, why_not_run=None):
        if why_not_run:
            checks[check] = f"not run: {why_not_run}"
        else:
            checks[check] = "flagged" if found else "passed"
            flags.extend(found)

    acc = {k: v["accuracy"] for k, v in robust.items()}
    record("robust_le_clean", [_flag("robust_le_clean", f"{k} accuracy {a:.2f}% is above the clean {clean:.2f}%",
                                     [k, "natural"], a - clean, 0.0) for k, a in acc.items() if a > clean],
           None if robust else "no attack")

    def pairs(kind_a, kind_b):
        return [(a, b) for a in known for b in known if a != b and known[a]["kind"] in kind_a
                and known[b]["kind"] in kind_b and same_ball(a, b)]

    def above(a, b):  # a's accuracy above b's beyond noise
        margin = noise_margin(acc[a], acc[b], n, z)
        return acc[a] - acc[b] > margin, margin

    found = []
    steps_pairs = [(a, b) for a, b in pairs({"pgd"}, {"pgd"}) if known[a]["steps"] > known[b]["steps"]]
    for a, b in steps_pairs:
        hit, margin = above(a, b)
        if hit:
            found.append(_flag("more_steps_not_weaker", f"{a} ({known[a]['steps']} steps) {acc[a]:.2f}% is above "
                               f"{b} ({known[b]['steps']} steps) {acc[b]:.2f}% beyond noise ({margin:.2f})",
                               [a, b], acc[a] - acc[b], margin))
    record("more_steps_not_weaker", found, None if steps_pairs else "needs two PGD attacks with different step counts")

    found = []
    aa_pairs = pairs({"autoattack"}, {"fgsm", "pgd", "mim", "cw"})
    for a, b in aa_pairs:
        hit, margin = above(a, b)
        if hit:
            found.append(_flag("autoattack_strongest", f"AutoAttack {acc[a]:.2f}% is above {b} {acc[b]:.2f}% beyond "
                               f"noise ({margin:.2f}): an attack is broken or the model masks gradients",
                               [a, b], acc[a] - acc[b], margin))
    record("autoattack_strongest", found, None if aa_pairs else "needs AutoAttack and another attack in its ball")

    found = []
    fg_pairs = pairs({"pgd"}, {"fgsm"})
    for a, b in fg_pairs:
        hit, margin = above(a, b)
        if hit:
            found.append(_flag("fgsm_weaker_than_pgd", f"FGSM {acc[b]:.2f}% is below {a} {acc[a]:.2f}% beyond noise "
                               f"({margin:.2f}): one step beats many, a sign of gradient masking",
                               [b, a], acc[a] - acc[b], margin))
    record("fgsm_weaker_than_pgd", found, None if fg_pairs else "needs FGSM and PGD in the same ball")

    sweep = res.get("eps_sweep")
    found = []
    if sweep and len(sweep["points"]) >= 2:
        pts = sweep["points"]
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
    record("accuracy_falls_with_eps", found, None if sweep and len(sweep["points"]) >= 2 else "no eps sweep")

    grad = res.get("gradient_check")
    record("nonzero_gradients", [_flag("nonzero_gradients", f"{grad['zero_gradient']} of {grad['points']} clean "
                                       "points have an exactly zero input gradient: gradient attacks cannot move "
                                       "them (masked or saturated gradients)", ["natural"], grad["zero_gradient"], 0)]
           if grad and grad["zero_gradient"] else [], None if grad else "no gradient check")

    aa = [(k, v) for k, v in robust.items() if "package_warnings" in v]
    record("autoattack_package", [_flag("autoattack_package", f"AutoAttack: {w}", [k], 0.0, 0.0)
                                  for k, v in aa for w in v["package_warnings"]], None if aa else "no AutoAttack run")
    return checks, flags


def format_table(res: dict) -> str:
    """The printed form of a result: one line per attack, the metrics, then every check and flag."""
    lines = [f"protocol {res['protocol']}, {res['n']} test images"]
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


def evaluate_checkpoint(checkpoint: str, attacks: str | Iterable[str] = "natural,pgd20", *, dataset: str | None = None,
                        data_dir: str | None = None, model: str | None = None, limit: int = 0,
                        eps: float | None = None, alpha: float | None = None, protocol: str = "standard",
                        kappa: float = 50.0, aa_version: str = "standard", eps_sweep: Iterable[float] = (),
                        seed: int = 0, device: str = "auto", batch_size: int = 500, progress: bool = True,
                        out: str | None = None, reuse: bool = False) -> dict:
    """Evaluate a checkpoint on its test set: what `cktat eval` does, as a library call.

    Our checkpoints carry their network, dataset and budget (a DUCAT checkpoint comes back as its recovered
    C-way classifier); a plain state_dict needs `model` (and `dataset`, default cifar10). eps defaults to the
    checkpoint's training eps or the dataset's, alpha to eps / 4 (SPEC 5: 2/255 at 8/255). With `out`, the
    result is written there as JSON; with `reuse`, an existing `out` computed from the same request (same
    arguments, same checkpoint file) is returned instead of recomputing.
    """
    import json
    import os

    from . import checkpoint as ckpt
    from .data import dataset_defaults, load_test
    from .checkpoint import load_classifier
    from .runtime import pick_device, versions

    names = expand_names(attacks.split(",") if isinstance(attacks, str) else attacks)
    stat = os.stat(checkpoint) if os.path.isfile(checkpoint) else None
    request = {"checkpoint": os.path.abspath(checkpoint), "size": stat and stat.st_size,
               "mtime": stat and stat.st_mtime, "attacks": names, "dataset": dataset, "model": model, "limit": limit,
               "eps": eps, "alpha": alpha, "protocol": protocol, "kappa": kappa, "aa_version": aa_version,
               "eps_sweep": sorted(eps_sweep), "seed": seed}
    if reuse and out and os.path.isfile(out):
        with open(out) as fh:
            previous = json.load(fh)
        if previous.get("request") == json.loads(json.dumps(request)):
            return previous
    get_protocol(protocol)
    if aa_version not in AA_VERSIONS:
        raise ConfigError("aa_version", f"must be one of {', '.join(AA_VERSIONS)}", aa_version)
    if model:  # a plain state_dict (or our checkpoint read as a bare network)
        net, info = ckpt.load_model(checkpoint, model)
    else:  # our checkpoint, as its method deploys it
        net, info = load_classifier(checkpoint)
    cfg = info.get("config", {})
    dataset = dataset or cfg.get("dataset") or "cifar10"
    defaults = dataset_defaults(dataset)
    if defaults["num_classes"] != info["num_classes"]:
        raise ConfigError("dataset", f"{dataset} has {defaults['num_classes']} classes, the checkpoint "
                          f"{info['num_classes']}", dataset)
    norm = cfg.get("norm", "linf")
    eps = eps if eps is not None else (cfg.get("eps") or defaults["eps"])
    alpha = alpha if alpha is not None else eps / 4
    threat = Threat(eps, alpha, norm, defaults["eps_l2"], defaults["eps_l2"] / 4)
    for n in names:  # unknown names fail before any work
        attack_spec(n, threat, protocol, kappa, aa_version)
    test, _ = load_test(dataset, data_dir or cfg.get("data_dir") or "data", limit)
    dev = pick_device(device)
    net, test = net.to(dev), test.to(dev)
    with torch.inference_mode(False):
        res = evaluate(net, test, names, threat, batch_size, protocol=protocol, kappa=kappa, aa_version=aa_version,
                       eps_sweep=eps_sweep, gradient_check=True, progress=progress, seed=seed)
    res.update({"checkpoint": os.path.abspath(checkpoint), "model": info["model_name"], "dataset": dataset,
                "device": str(dev), "seed": seed, "versions": versions(), "request": request})
    if out:
        ckpt.write_text_atomic(json.dumps(res, indent=1), out)
    return res

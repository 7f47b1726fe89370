"""Natural and robust accuracy of a model: the Table 4 attack suite, two protocols, sanity checks.

Every number is computed in float32: `evaluate` turns autocast off around everything it runs (attacks, scoring,
AutoAttack), whatever context its caller set up for training. The model is evaluated in eval() mode; attacks
see it in eval() mode too, and every submodule gets its own mode back afterwards.

Attacks, by name (`attack_spec`):
    natural        clean accuracy
    fgsm           one signed-gradient step of size eps from x
    pgdN           N steps of PGD on cross-entropy, uniform random start (pgd20, pgd100, ...)
    pgdN_l2        the same in the L2 ball of radius threat.eps_l2, step threat.alpha_l2
    mim, mimN      momentum iterative attack, decay 1.0 (20 steps by default)
    cw, cwN        PGD on the CW margin -relu(z_y - max_{j!=y} z_j + kappa), uniform start (30 steps)
    aa             AutoAttack, version "standard" (APGD-CE, APGD-T, FAB-T, Square) or "apgd" (APGD-CE,
                   APGD-T; for CPUs), through `cktat_core.autoattack`
    all            natural, fgsm, pgd20, pgd100, mim, cw, aa: one row of the paper's Table 4 (+ FGSM)

Protocols (SPEC 5) fix the step sizes and counts of the iterative attacks, where MIM starts, whether an image
broken at any iterate counts as broken, and how robust accuracy is counted:
    standard           pgdN: N steps of threat.alpha (2/255 for CIFAR); mim: 20 steps from x; cw: 30 steps;
                       every step threat.alpha. An image counts as broken if ANY iterate of the attack (the start
                       included) fooled the model (`attacks.pgd(best_iterate=True)`). Robust accuracy counts a
                       test point only when the clean input AND its adversarial input are both classified
                       correctly.
    compat-generalist  the evaluation code of Generalist (Wang et al. 2023, `AttackerPolymer`), whose metric list
                       (Natural, PGD-20, PGD-100, MIM, CW, AA) CKTAT's Table 4 matches: every iterative attack
                       (pgdN, mim, cw) runs 10 steps of 0.007 whatever its name; PGD, MIM and CW all start from a
                       uniform point of the eps-ball; the last iterate is scored; robust accuracy counts a point
                       when its ADVERSARIAL input is classified correctly, whatever the clean prediction. FGSM
                       and AutoAttack are unchanged (for AutoAttack the two counts agree: a point misclassified
                       clean is not attacked and stays misclassified). For L2 attacks only the step count
                       changes (0.007 is an L-inf step). Two small differences remain: that code draws its
                       starts with numpy, so no seed reproduces its exact noise, and its CW takes its first
                       gradient at the start before clipping it to [0, 1]; here every start is clipped.
Each result records the protocol and, per attack, the steps, step size, start, iterate rule and budget it
really used, the accuracy under the protocol's count (`accuracy`) and the adversarial accuracy whatever the
clean prediction (`adversarial_accuracy`).

Sanity checks: `cktat_core.checks` (torch-free), run on every result; a suspicious result is flagged in the
result and in the printed output, never hidden.

Result schema ("cktat-eval/1"), accuracies in percent::

    {"schema": "cktat-eval/1",
     "n": 517,                                   # test images
     "protocol": "standard",
     "threat": {"eps": 0.0314, "alpha": 0.0078, "norm": "linf", "eps_l2": 0.502, "alpha_l2": 0.125},
     "attacks": {
        "natural": {"accuracy": 91.3, "correct": 472, "total": 517, "seconds": 0.4,
                    "bits": "1101...",                               # per image, "1" counted correct
                    "spec": {"name": "natural", "kind": "natural", ...},
                    "per_class": {"airplane": 92.0, ...},          # None for a class absent from the set
                    "groups": {"single_view": 84.0, ...}},        # only for data with groups (multi-view)
        "pgd20":   {... as above ..., "nrr": 12.1,                # 2 * clean * robust / (clean + robust)
                    "adversarial_accuracy": 12.4,   # adversarial input right, clean or not ("accuracy": as the
                                                    # protocol counts: standard also needs the clean one right)
                    "spec": {"name": "pgd20", "kind": "pgd", "eps": 0.0314, "norm": "linf", "steps": 20,
                             "alpha": 0.0078, "random_start": "uniform", "decay": 0.0, "kappa": 0.0,
                             "version": "", "best_iterate": true}},
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
import re
import sys
import time
from dataclasses import asdict, dataclass
from functools import partial
from typing import Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attacks import AttackFn, cw_inf, eval_mode, fgsm, mim, pgd
from .checks import sanity_checks
from .data import TensorData
from .errors import ConfigError

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
    """How the iterative attacks are run and robust accuracy is counted. None keeps each attack's own value."""
    name: str
    steps: int | None = None  # every iterative attack runs this many steps
    alpha: float | None = None  # every iterative L-inf attack uses this step
    mim_start: str = "none"  # where MIM starts: "none" (at x) or "uniform" (in the ball)
    best_iterate: bool = True  # an image is broken if any iterate fooled the model (else: the last iterate)
    count_clean: bool = True  # robust only if the clean input is right too (else: adversarial input right)


PROTOCOLS = {
    "standard": Protocol("standard"),
    "compat-generalist": Protocol("compat-generalist", steps=10, alpha=0.007, mim_start="uniform",
                                  best_iterate=False, count_clean=False),
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
    best_iterate: bool = False  # fgsm, pgd, mim, cw: any iterate that fooled the model counts


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
        return AttackSpec(name, kind, eps, norm, steps, alpha, best_iterate=proto.best_iterate, **kw)

    if name == "natural":
        return AttackSpec(name, "natural")
    if name == "fgsm":
        return AttackSpec(name, "fgsm", threat.eps, threat.norm, 1, threat.eps, best_iterate=proto.best_iterate)
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
            return iterative("mim", steps, random_start=proto.mim_start, decay=1.0)
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
        return partial(fgsm, eps=spec.eps, norm=spec.norm, best_iterate=spec.best_iterate)
    if spec.kind == "pgd":
        return partial(pgd, eps=spec.eps, alpha=spec.alpha, steps=spec.steps, norm=spec.norm, loss="ce",
                       random_start=spec.random_start, best_iterate=spec.best_iterate)
    if spec.kind == "mim":
        return partial(mim, eps=spec.eps, alpha=spec.alpha, steps=spec.steps, decay=spec.decay, norm=spec.norm,
                       random_start=spec.random_start, best_iterate=spec.best_iterate)
    if spec.kind == "cw":
        return partial(cw_inf, eps=spec.eps, alpha=spec.alpha, steps=spec.steps, kappa=spec.kappa,
                       random_start=spec.random_start, best_iterate=spec.best_iterate)
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
    with eval_mode(model):
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


@torch.no_grad()
def softened_label_mass(model: nn.Module, x: torch.Tensor, y: torch.Tensor, taus: Iterable[float],
                        batch_size: int = 500) -> dict[float, float]:
    """Mean probability that the softened label softmax(z(x) / tau) puts on the true class y, per tau: how much of
    the label a temperature leaves to the class (CKTAT Eq. 17's first term labels the student's adversarial examples
    with the teacher's softened label; Table 3b varies tau). Batches run on the model's device in eval() mode; the
    softmax in float32 on the CPU."""
    device = next(model.parameters()).device
    with eval_mode(model):
        logits = torch.cat([model(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])
    y = y.view(-1, 1).cpu()
    return {float(t): torch.softmax(logits / float(t), dim=1).gather(1, y).mean().item() for t in taus}


def _acc(mask: torch.Tensor) -> float | None:
    n = int(mask.numel())
    return 100.0 * int(mask.sum()) / n if n else None


def bit_string(mask: torch.Tensor) -> str:
    """A correctness mask as text, one character per image in data order ("1": counted correct): two models scored
    on the same images are then compared image by image (`verdicts.compare`, McNemar's exact test)."""
    return "".join("1" if v else "0" for v in mask.tolist())


def summarize(mask: torch.Tensor, data: TensorData) -> dict:
    """Accuracy, count, per-image correctness (`bit_string`), per-class accuracy and (multi-view data) per-group
    accuracy of a correctness mask."""
    n = int(mask.numel())
    correct = int(mask.sum())
    res = {"accuracy": 100.0 * correct / max(n, 1), "correct": correct, "total": n, "bits": bit_string(mask)}
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
    with eval_mode(model):
        x = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            grad, = torch.autograd.grad(F.cross_entropy(model(x).float(), y, reduction="sum"), x,
                                        allow_unused=True)
        if grad is None:
            return len(x)
        return int((grad.flatten(1).abs().sum(1) == 0).sum())


# ----------------------------------------------------------------------------------------- the suite
def _bar(total: int, progress: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, disable=not progress, file=sys.stderr, unit="batch", dynamic_ncols=True, leave=False)


def _run_autoattack(model, data, spec, natural, batch_size, bar) -> dict:
    from .autoattack import run_autoattack

    bar.set_description(spec.name)
    out = run_autoattack(model, data.x, data.y, spec.eps, spec.norm, spec.version, seed=0, batch_size=batch_size,
                         on_attack=lambda _name: bar.update(1))
    robust = out.robust.to(natural.device) & natural  # a point misclassified clean is never counted robust
    return {**summarize(robust, data), "adversarial_accuracy": _acc(robust), "version": spec.version,
            "package": out.package, "per_attack": out.per_attack, "per_attack_seconds": out.seconds,
            "package_warnings": out.warnings}


@contextlib.contextmanager
def autocast_off(device_type: str):
    """Autocast off for the CPU and for `device_type`: every operation runs in its tensors' own dtype."""
    with contextlib.ExitStack() as stack:
        for kind in dict.fromkeys(("cpu", device_type)):
            stack.enter_context(torch.autocast(kind, enabled=False))
        yield


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
    Autocast is off inside (`autocast_off`): a caller in a bf16 autocast context still gets float32 attacks
    and scores.
    """
    rng = contextlib.nullcontext() if seed is None else torch.random.fork_rng(
        devices=[data.x.device] if data.x.device.type == "cuda" else [])
    with rng, autocast_off(data.x.device.type):
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
                adversarial = correct_mask(model, data, fn, batch_size, bar)
                entry = {**summarize(adversarial & natural if proto.count_clean else adversarial, data),
                         "adversarial_accuracy": _acc(adversarial)}
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
                             loss="ce", random_start="uniform", best_iterate=proto.best_iterate)
                adversarial = correct_mask(model, data, fn, batch_size, bar)
                s = summarize(adversarial & natural if proto.count_clean else adversarial, data)
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

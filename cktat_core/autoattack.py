"""AutoAttack (Croce and Hein 2020) through the PyPI package `pyautoattack`, or the upstream `autoattack`.

Two versions (SPEC 5):
- "standard": APGD-CE, APGD-T (9 target classes), FAB-T (9 target classes), Square (5000 queries), with the
  package's own "standard" settings: the evaluation RobustBench reports.
- "apgd": APGD-CE then APGD-T with the same settings, for CPU runs. It drops FAB-T and Square, so it can
  only be weaker than "standard" (in practice FAB-T and Square rarely break a point the APGD pair missed
  on an undefended or adversarially trained model; on a gradient-masked one they are what finds it).

The attacks run one after another on the points still robust, as AutoAttack itself does; running them one
call at a time gives the robust accuracy after each attack (`per_attack`, cumulative, in percent of all
points) and its wall time. A point counts only if its clean input is classified correctly too.

`pyautoattack` 0.2.0 differs from the GitHub version: keyword-only arguments after the model,
`attacks=[...]`, no `log_path`/`verbose` (it logs to the "auto-attack" logger) and
`run_standard_evaluation` returns `(x_adv, y_adv)`. The upstream package takes `verbose`, `attacks_to_run`
and returns `x_adv`. Both are wrapped here. The package's own warnings (zero gradients, a randomised or
dynamic model, Square stronger than the gradient attacks, logits that look like probabilities) are
captured from its logger into `warnings` instead of being printed, and `cktat_core.evaluate` turns them
into flags.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn

from .attacks import eval_mode
from .errors import CktatError

VERSIONS = {"standard": ("apgd-ce", "apgd-t", "fab-t", "square"), "apgd": ("apgd-ce", "apgd-t")}
PACKAGES = ("pyautoattack", "autoattack")


@dataclass
class AutoAttackOutput:
    x_adv: torch.Tensor  # the adversarial input where an attack succeeded, the clean input elsewhere
    robust: torch.Tensor  # bool (N,): clean right and no attack succeeded
    per_attack: dict[str, float]  # robust accuracy (percent of N) after each attack, cumulative
    seconds: dict[str, float]  # wall time of each attack
    warnings: list[str] = field(default_factory=list)  # messages of the package's own checks
    package: str = ""


def find_package() -> tuple[str, object]:
    """(name version, module) of the first importable AutoAttack package; CktatError if none is."""
    for name in PACKAGES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        return f"{name} {getattr(mod, '__version__', '?')}", mod
    raise CktatError("AutoAttack needs the package pyautoattack: pip install pyautoattack "
                     "(or the upstream autoattack from github.com/fra31/auto-attack)")


def _adversary(mod, model: nn.Module, eps: float, norm: str, seed: int, device, num_classes: int):
    norm = {"linf": "Linf", "l2": "L2"}[norm]
    if mod.__name__.startswith("pyautoattack"):
        adv = mod.AutoAttack(model, norm=norm, eps=eps, version="standard", seed=seed, device=device)
    else:  # upstream: prints unless verbose=False
        adv = mod.AutoAttack(model, norm=norm, eps=eps, version="standard", seed=seed, device=device, verbose=False)
    adv.apgd_targeted.n_target_classes = min(adv.apgd_targeted.n_target_classes, num_classes - 1)
    adv.fab.n_target_classes = min(adv.fab.n_target_classes, num_classes - 1)
    return adv


def _run_one(adv, attack: str, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> torch.Tensor:
    adv.attacks_to_run = [attack]
    if type(adv).__module__.startswith("pyautoattack"):
        x_adv, _ = adv.run_standard_evaluation(x, y, batch_size=batch_size)
        return x_adv
    with contextlib.redirect_stdout(io.StringIO()):  # the upstream package prints its checks' warnings
        return adv.run_standard_evaluation(x, y, bs=batch_size)


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def run_autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 8 / 255, norm: str = "linf",
                   version: str = "standard", seed: int = 0, batch_size: int = 500,
                   on_attack: Callable[[str], None] | None = None) -> AutoAttackOutput:
    """AutoAttack `version` on (x, y); the model is attacked in eval() mode and every submodule is left in the mode
    it was in.

    on_attack(name) is called after each attack (a progress bar hook).
    """
    if version not in VERSIONS:
        raise CktatError(f"AutoAttack version must be one of {', '.join(VERSIONS)}, got {version!r}")
    if norm not in ("linf", "l2"):
        raise CktatError(f"AutoAttack norm must be linf or l2, got {norm!r}")
    package, mod = find_package()
    modes = contextlib.ExitStack()
    modes.enter_context(eval_mode(model))
    logger = logging.getLogger("auto-attack")
    capture, propagate = _Capture(), logger.propagate
    logger.addHandler(capture)
    logger.propagate = False
    try:
        x, y = x.detach(), y.detach()
        with torch.no_grad():
            logits = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
        robust = logits.argmax(1) == y
        adv = _adversary(mod, model, eps, norm, seed, x.device, logits.shape[1])
        x_adv = x.clone()
        per_attack, seconds = {}, {}
        for attack in VERSIONS[version]:
            t0 = time.perf_counter()
            idx = robust.nonzero().squeeze(1)
            if len(idx):
                xa = _run_one(adv, attack, x[idx], y[idx], batch_size)
                with torch.no_grad():
                    broken = torch.cat([model(xa[i:i + batch_size]).argmax(1) != y[idx][i:i + batch_size]
                                        for i in range(0, len(idx), batch_size)])
                x_adv[idx[broken]] = xa[broken]
                robust[idx[broken]] = False
            per_attack[attack] = 100.0 * float(robust.sum()) / max(len(x), 1)
            seconds[attack] = time.perf_counter() - t0
            if on_attack is not None:
                on_attack(attack)
        kinds, messages = set(), []  # each kind of message once, numbers aside (its first occurrence)
        for m in capture.messages:
            if re.sub(r"[0-9.]+", "#", m) not in kinds:
                kinds.add(re.sub(r"[0-9.]+", "#", m))
                messages.append(m)
        return AutoAttackOutput(x_adv, robust, per_attack, seconds, messages, package)
    finally:
        logger.removeHandler(capture)
        logger.propagate = propagate
        modes.close()


def autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 8 / 255, norm: str = "linf",
               version: str = "standard", seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """AutoAttack as an attack function: the adversarial inputs only (see `run_autoattack`)."""
    return run_autoattack(model, x, y, eps, norm, version, seed, batch_size).x_adv

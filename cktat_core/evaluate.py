"""Natural and robust accuracy of a model on a TensorData set.

Robust accuracy counts a test point only when the clean input AND its adversarial input are both
classified correctly (SPEC 5). The model is evaluated in eval() mode; attacks see it in eval() mode too.

`evaluate` returns a dict of the form (accuracies in percent)::

    {"n": 2000,
     "attacks": {"natural": {"accuracy": 91.3, "correct": 1826, "total": 2000, "seconds": 0.4,
                             "groups": {"single_view": 84.0, ...}},
                 "pgd20":   {...}}}
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
import torch.nn as nn

from .attacks import fgsm, pgd
from .data import TensorData

AttackFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Threat:
    eps: float = 8 / 255
    alpha: float = 2 / 255
    norm: str = "linf"


def attack_by_name(name: str, threat: Threat) -> AttackFn | None:
    """`natural` (None), `fgsm`, or `pgdN` (N steps of threat.alpha from a uniform start)."""
    if name == "natural":
        return None
    if name == "fgsm":
        return partial(fgsm, eps=threat.eps, norm=threat.norm)
    m = re.fullmatch(r"pgd(\d+)", name)
    if m:
        return partial(pgd, eps=threat.eps, alpha=threat.alpha, steps=int(m.group(1)), norm=threat.norm,
                       loss="ce", random_start="uniform")
    raise ValueError(f"unknown attack {name!r}; known: natural, fgsm, pgdN (e.g. pgd20)")


def correct_mask(model: nn.Module, data: TensorData, attack: AttackFn | None = None,
                 batch_size: int = 500) -> torch.Tensor:
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
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)
    finally:
        model.train(was_training)


def summarize(mask: torch.Tensor, data: TensorData) -> dict:
    n = int(mask.numel())
    correct = int(mask.sum())
    res = {"accuracy": 100.0 * correct / max(n, 1), "correct": correct, "total": n}
    if data.groups:
        res["groups"] = {g: 100.0 * float(mask[m].float().mean()) if int(m.sum()) else None
                         for g, m in data.groups.items()}
    return res


def evaluate(model: nn.Module, data: TensorData, attacks: dict[str, AttackFn | None] | list[str] = ("pgd20",),
             threat: Threat = Threat(), batch_size: int = 500) -> dict:
    """Natural accuracy and robust accuracy under each attack (name -> attack function, or names)."""
    if not isinstance(attacks, dict):
        attacks = {name: attack_by_name(name, threat) for name in attacks}
    t0 = time.perf_counter()
    natural = correct_mask(model, data, None, batch_size)
    results = {"natural": {**summarize(natural, data), "seconds": time.perf_counter() - t0}}
    for name, attack in attacks.items():
        if attack is None:
            continue
        t0 = time.perf_counter()
        robust = correct_mask(model, data, attack, batch_size) & natural
        results[name] = {**summarize(robust, data), "seconds": time.perf_counter() - t0}
    return {"n": len(data), "attacks": results}

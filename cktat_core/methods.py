"""Every method is a label design (CKTAT paper, Sec. 4.3 and Table 2).

A `Method` states, as data, what f(x) and f(x') are trained towards, which kind of teacher supplies the
labels (none / clean / robust / co-trained) and which learning-difficulty reducers it uses; its `step`
computes one batch's loss from the student, the batch and (if any) the frozen teacher. One trainer
(`cktat_core.train`) runs any of them; `table2()` renders the paper's Table 2 from these definitions.

To add a method: write its loss in `losses.py`, a step function here, and `register(Method(...))`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import losses
from .attacks import pgd
from .errors import ConfigError

TEACHER_KINDS = ("none", "clean", "robust", "co-trained")


@dataclass
class StepContext:
    """What a method's step may use: the student, its frozen teacher, the resolved config, the epoch."""

    model: nn.Module
    cfg: "object"  # a resolved Config
    teacher: nn.Module | None = None
    epoch: int = 0  # 0-based epoch of the current phase
    extra: dict[str, nn.Module] = field(default_factory=dict)  # modules trained jointly (co-trained teachers)

    def attack(self, x: torch.Tensor, y: torch.Tensor, loss=None, model: nn.Module | None = None,
               **kw) -> torch.Tensor:
        """The training attack of SPEC 1 (PGD-`attack_steps` in the config's ball) on `model` (the student).

        loss=None uses the config's `attack_loss` ("ce" or "trades_kl").
        """
        c = self.cfg
        if loss is None:
            loss = "kl" if c.attack_loss == "trades_kl" else "ce"
        start = None if c.random_start == "auto" else c.random_start
        args = dict(eps=c.eps, alpha=c.alpha, steps=c.attack_steps, norm=c.norm, loss=loss, random_start=start)
        args.update(kw)
        return pgd(model or self.model, x, y, **args)

    @torch.no_grad()
    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen teacher's logits for x (eval mode, no gradient)."""
        return self.teacher(x)


def _no_checks(cfg) -> None:
    return None


@dataclass(frozen=True)
class Method:
    name: str
    step: Callable[[StepContext, torch.Tensor, torch.Tensor], torch.Tensor]
    clean_target: str  # label of f(x) ("-" when f(x) is not trained directly)
    adv_target: str  # label of f(x')
    teacher: str = "none"  # none | clean | robust | co-trained
    reducers: tuple[str, ...] = ()
    attack: str = "PGD-10 CE from a uniform start"
    reference: str = ""
    adversarial: bool = True  # False: clean training (phase 1)
    init_from_teacher: bool = False  # the student starts as a copy of the teacher (cfg.init_from_teacher turns it off)
    in_table2: bool = True
    validate: Callable = _no_checks
    extra_modules: Callable | None = None  # (cfg, num_classes) -> {name: module} trained jointly

    def __post_init__(self):
        if self.teacher not in TEACHER_KINDS:
            raise ValueError(f"teacher must be one of {TEACHER_KINDS}")


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    METHODS[method.name] = method
    return method


# ----------------------------------------------------------------------------------------- clean
def clean_step(ctx: StepContext, x, y):
    return F.cross_entropy(ctx.model(x).float(), y)


register(Method(
    "clean", clean_step, clean_target="y", adv_target="-", attack="none", adversarial=False, in_table2=False,
    reference="standard training with cross-entropy (phase 1 of CKTAT Algorithm 1)",
))


# ------------------------------------------------------------------------------------------ PGDAT
def pgdat_step(ctx: StepContext, x, y):
    x_adv = ctx.attack(x, y, loss="ce")
    return losses.pgdat_loss(ctx.model(x_adv), y)


register(Method(
    "pgdat", pgdat_step, clean_target="-", adv_target="y",
    reference="Madry et al. 2018, Towards deep learning models resistant to adversarial attacks",
))


# ----------------------------------------------------------------------------------------- TRADES
def trades_step(ctx: StepContext, x, y):
    x_adv = ctx.attack(x, y, loss="kl")
    return losses.trades_loss(ctx.model(x), ctx.model(x_adv), y, beta=ctx.cfg.beta)


register(Method(
    "trades", trades_step, clean_target="y", adv_target="f(x)",
    attack="PGD-10 maximising KL(f(x)||f(x')) from x + 0.001 N(0, I)",
    reference="Zhang et al. 2019, TRADES (beta = 6)",
))


# ------------------------------------------------------------------------------------------ CKTAT
def cktat_step(ctx: StepContext, x, y):
    """Algorithm 1, lines 10-13: x' = attack(x, y); loss = Eq. 17."""
    c = ctx.cfg
    x_adv = ctx.attack(x, y)
    t_logits = ctx.teacher_logits(x)
    return losses.cktat_loss(ctx.model(x_adv), ctx.model(x), t_logits, tau=c.tau, beta=c.beta,
                             teacher_weight=c.teacher_weight, tau_squared=c.tau_squared,
                             detach_clean=c.detach_clean)


def _cktat_checks(cfg) -> None:
    if cfg.init_from_teacher and cfg.teacher_model and cfg.teacher_model != cfg.model:
        raise ConfigError("init_from_teacher",
                          f"needs teacher_model equal to model ({cfg.model}); set init_from_teacher=false",
                          cfg.teacher_model)


register(Method(
    "cktat", cktat_step, clean_target="-", adv_target="T^tau(x), f(x)", teacher="clean",
    reducers=("temperature", "initialisation"),
    attack="PGD-10 CE from a uniform start (attack_loss=trades_kl selectable)",
    reference="CKTAT, Eq. 17 and Algorithm 1 (tau = 5, beta = 6)", validate=_cktat_checks, init_from_teacher=True,
))


def initialises_from_teacher(method: Method, cfg) -> bool:
    """Whether the student starts as a copy of the teacher (CKTAT; switchable for Table 3a)."""
    return method.init_from_teacher and method.teacher in ("clean", "robust") and cfg.init_from_teacher


def table2() -> list[dict[str, str]]:
    """Rows of the paper's Table 2, generated from the registered methods."""
    rows = []
    for m in METHODS.values():
        if not m.in_table2:
            continue
        rows.append({"method": m.name, "label of f(x)": m.clean_target, "label of f(x')": m.adv_target,
                     "teacher": m.teacher, "difficulty reducers": ", ".join(m.reducers) or "-"})
    return rows


def autocast(cfg, device: torch.device):
    """bf16 autocast on CUDA when cfg.amp; a no-op elsewhere."""
    if cfg.amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()

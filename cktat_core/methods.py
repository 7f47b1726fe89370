"""Every method is a label design (CKTAT paper, Sec. 4.3 and Table 2), read by one trainer (`cktat_core.train`).

A `Method` says what f(x) and f(x') are trained towards, which kind of teacher supplies the labels (none / clean
/ robust / co-trained) and which learning-difficulty reducers it uses. Most methods DECLARE their loss as a
weighted sum of divergences, `terms` (`Term(output, target, divergence, weight)`), e.g. CKTAT's Eq. 17 is
KL(T^tau(x) || f(x')) + beta KL(f(x) || f(x')); the same declaration computes the loss in training and writes the
method's row of the paper's Table 2 (`table2()`, printed by `cktat methods`). Methods whose loss is not such a
sum (MART's boosted CE, HAT's helper examples, IAD's reliability weights, the two-view methods, DUCAT's schedule)
give a hand-written `custom_step` and their Table 2 `labels`. The few that need more from the trainer than a loss (LBGAT's co-trained teacher,
Generalist's EMA learners, DUCAT's 2C head and recovery, the two-view batches of Cons-AT / RAAT / RAAT++) own that
in a `Machinery` subclass, kept beside their step.

Registered (CLI name, paper spelling): pgdat PGDAT, trades TRADES, mart MART, lbgat LBGAT, ltd LTD, hat HAT,
generalist Generalist, ard ARD, iad IAD, rslad RSLAD, kd_at_auto KD-AT-Auto, cktat CKTAT, cons_at Cons-AT,
raat RAAT, raat_pp RAAT++, ducat DUCAT (`method_name` maps a paper spelling to its CLI name). Each method cites
the paper, states the defaults and lists every deviation from the authors' code, including the known traps of those codes
that are deliberately not copied (in the step's docstring, or in the comment above a declared method). Attacks
always run with the model in eval() mode and model selection uses the validation split, never the test
set.

To add a method: `register(Method(...))` here, with its `terms` (or a `custom_step` and its Table 2 `labels`),
and its test in tests/test_methods.py (a declared method also gets its reference loss in that test's
`REFERENCE_LOSSES`, against which its terms are checked). The trainer, the CLI and Table 2 need no change. Only a
method with settings of its own also touches `config.py`: one line per setting (default, group "method", range).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import losses, models
from .attacks import pgd, worst_case_attack
from .data import augment
from .models import build_model

TEACHER_KINDS = ("none", "clean", "robust", "co-trained")

@dataclass
class StepContext:
    """What a method's step may use: the student, its frozen teacher, the resolved config, the epoch.

    `extra` holds the method's extra modules (co-trained teachers, EMA copies), `generator` the trainer's data
    generator (checkpointed with the run, so drawing from it keeps resume exact) and `epochs` the length of the
    phase (schedules such as DUCAT's final phase or IAD's begin epoch are fractions of it). `counts` is the
    epoch's tally of `count` (the trainer empties it at the start of every epoch).
    """

    model: nn.Module
    cfg: "object"  # a resolved Config
    teacher: nn.Module | None = None
    epoch: int = 0  # 0-based epoch of the current phase
    extra: dict[str, nn.Module] = field(default_factory=dict)  # modules trained jointly (co-trained teachers)
    generator: torch.Generator | None = None
    epochs: int = 1
    num_classes: int = 10
    counts: dict[str, tuple[tuple[str, ...], int, torch.Tensor]] = field(default_factory=dict)

    def count(self, group: str, masks: dict[str, torch.Tensor]) -> None:
        """Add how many examples of the batch each boolean mask of `masks` holds to the epoch's tally `group`.
        The sums stay on the device (no host sync per step); the trainer writes each mask's share of the examples
        counted into the epoch's history record as `<group>_<name>` (`epoch_fractions`)."""
        sums = torch.stack([m.sum() for m in masks.values()]).float()
        n = next(iter(masks.values())).numel()
        names, total, before = self.counts.get(group, (tuple(masks), 0, 0.0))
        self.counts[group] = (names, total + n, before + sums)

    def attack(self, x: torch.Tensor, y: torch.Tensor, loss=None, model: nn.Module | None = None,
               **kw) -> torch.Tensor:
        """The training attack (PGD-`attack_steps` in the config's ball) on `model` (the student).

        loss=None uses the config's `attack_loss` ("ce" or "trades_kl"); a callable loss(logits_adv, y) is
        maximised as given (e.g. RSLAD's KL to the teacher).
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

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """One random crop(pad 4)+flip of a batch drawn from the trainer's generator; x itself when the run does
        not augment (cfg.augment false, the multi-view default: two "views" are then the same image)."""
        if not self.cfg.augment:
            return x
        return augment(x, self.generator)

    def phase_started(self, fraction: float) -> bool:
        """Whether the current epoch lies at or after `fraction` of the phase (0-based epochs)."""
        return self.epoch >= round(fraction * self.epochs)

# ------------------------------------------------------------------------------------ declared losses
OUTPUTS = ("f(x)", "f(x')", "T(x)", "T(x')")  # the student on x and x', the teacher on x and x'
DIVERGENCES = ("ce", "kl", "mse")
Value = Union[float, str, Callable[[object], float]]  # a number, a config field's name, or a function of cfg


@dataclass(frozen=True)
class Term:
    """One summand of a declared loss: weight * D(output, target), a mean over the batch.

    - `output`: "f(x)" or "f(x')" (the student), "T(x)" (a co-trained teacher's own term);
    - `target`: "y" or one of OUTPUTS;
    - `divergence`: "ce" (cross-entropy to y, or to softmax(target / tau) when the target is a network's
      output), "kl" (KL(softmax(target / tau) || softmax(output / tau_output)), `losses.kl`, batchmean), "mse"
      (on logits, mean over batch and classes);
    - `weight`, `tau`, `tau_output`: a number, a config field's name or a function of the config;
    - `detach`: whether the target carries no gradient: True / False, or the name of a boolean config field;
      None (default) detaches a teacher's outputs "T(...)" and keeps the student's gradient (TRADES's clean
      branch). A co-trained teacher that learns through a student's term says detach=False;
    - `table2`: whether the term belongs to the method's Table 2 row (False for a term only an ablation turns on).
    """

    output: str
    target: str
    divergence: str = "kl"
    weight: Value = 1.0
    tau: Value = 1.0
    tau_output: Value = 1.0
    detach: bool | str | None = None
    table2: bool = True

    def __post_init__(self):
        if self.output not in OUTPUTS or self.target not in ("y",) + OUTPUTS or self.output == self.target:
            raise ValueError(f"bad term {self.output} : {self.target}")
        if self.divergence not in DIVERGENCES or (self.target == "y" and self.divergence != "ce"):
            raise ValueError(f"bad divergence {self.divergence}: one of {DIVERGENCES}, ce for a term on y")

    def label(self) -> str:
        """The target as Table 2 writes it: T^tau(x) when softened, "(MSE)" when not a CE or KL."""
        text = self.target
        if self.tau != 1.0:
            text = f"{text[0]}^tau{text[1:]}"
        return f"{text} (MSE)" if self.divergence == "mse" else text


def value_of(value: Value, cfg) -> float:
    """A Term's number: as given, read from the config field it names, or computed from the config."""
    if isinstance(value, str):
        return getattr(cfg, value)
    if callable(value):
        return value(cfg)
    return value


def _scaled(logits: torch.Tensor, tau: float) -> torch.Tensor:
    return logits.float() if tau == 1.0 else logits.float() / tau


def term_loss(term: Term, outputs, y: torch.Tensor, cfg) -> torch.Tensor:
    """D(output, target) of one term (unweighted), from a mapping of OUTPUTS to logits."""
    z = outputs[term.output]
    tau_output = value_of(term.tau_output, cfg)
    if term.target == "y":
        return F.cross_entropy(_scaled(z, tau_output), y)
    t = outputs[term.target]
    detach = term.target.startswith("T") if term.detach is None else value_of(term.detach, cfg)
    if detach:
        t = t.detach()
    tau = value_of(term.tau, cfg)
    if term.divergence == "kl":
        return losses.kl(t, z, tau_target=tau, tau=tau_output)
    if term.divergence == "ce":
        return losses.soft_cross_entropy(_scaled(z, tau_output), F.softmax(_scaled(t, tau), dim=1))
    return F.mse_loss(z.float(), t.float())


def terms_loss(terms: tuple[Term, ...], outputs, y: torch.Tensor, cfg) -> torch.Tensor:
    """sum_k weight_k * D_k(output_k, target_k): a declared method's loss from logits (OUTPUTS -> tensors)."""
    return sum(value_of(t.weight, cfg) * term_loss(t, outputs, y, cfg) for t in terms)


class Outputs(dict):
    """The logits a declared loss reads, each computed once, on first use (the order of the forward passes, which
    moves BatchNorm's running statistics, is the order of the terms). "T(...)" is the frozen teacher (no gradient),
    or the co-trained one in ctx.extra["teacher"]; x_adv is set once the attack has run."""

    def __init__(self, ctx: StepContext, x: torch.Tensor, cotrained: bool = False):
        super().__init__()
        self.ctx, self.x, self.x_adv, self.cotrained = ctx, x, None, cotrained

    def __missing__(self, key: str) -> torch.Tensor:
        inputs = self.x if key.endswith("(x)") else self.x_adv
        if key.startswith("f"):
            logits = self.ctx.model(inputs)
        elif self.cotrained:
            logits = self.ctx.extra["teacher"](inputs)
        else:
            logits = self.ctx.teacher_logits(inputs)
        self[key] = logits
        return logits


# The training attacks of the declared methods: (ctx, x, y, outputs) -> x'.
def attack_ce(ctx: StepContext, x, y, outputs) -> torch.Tensor:
    """PGD-`attack_steps` maximising CE(f(x'), y) from a uniform start."""
    return ctx.attack(x, y, loss="ce")


def attack_kl(ctx: StepContext, x, y, outputs) -> torch.Tensor:
    """TRADES's attack: PGD maximising KL(f(x) || f(x')) from x + 0.001 N(0, I)."""
    return ctx.attack(x, y, loss="kl")


def attack_configured(ctx: StepContext, x, y, outputs) -> torch.Tensor:
    """The config's `attack_loss` (CE from a uniform start by default; trades_kl selectable)."""
    return ctx.attack(x, y)


def attack_kl_to_teacher(ctx: StepContext, x, y, outputs) -> torch.Tensor:
    """RSLAD's attack: PGD maximising KL(T(x) || f(x')) from x + 0.001 N(0, I)."""
    t = outputs["T(x)"]
    return ctx.attack(x, y, loss=lambda logits, _y: losses.kl(t, logits, reduction="none"), random_start="normal")


# ------------------------------------------------------------------------------------ special machinery
class Machinery:
    """What the shared trainer does for a method beyond computing its loss; the defaults make a plain
    single-network method. Subclassed only by the methods that need more (LBGAT, Generalist, DUCAT, and the
    two-view methods):

    - `extra_modules`: modules created with the student, checkpointed with it and trained in the same optimiser
      when their parameters require grad (a co-trained teacher); the others are only carried (EMA copies);
    - `two_views`: the trainer hands `step` un-augmented batches; the step draws its own augmentations with
      `ctx.augment`;
    - `after_step`: called after every optimiser step;
    - `head_size`: output width of the trained network;
    - `result_network`: the network the method produces; it is validated, saved as best.pt and evaluated;
    - `classifier`: how that network classifies C classes at test time, the model every attack is run against;
    - `eval_attacks`: extra named attacks for the final evaluation.
    """

    two_views = False

    def extra_modules(self, cfg, num_classes: int, model: nn.Module) -> dict[str, nn.Module]:
        return {}

    def after_step(self, ctx: StepContext) -> None:
        return None

    def head_size(self, num_classes: int) -> int:
        return num_classes

    def result_network(self, model: nn.Module, extra: dict[str, nn.Module]) -> nn.Module:
        return model

    def classifier(self, net: nn.Module, cfg, num_classes: int) -> nn.Module:
        return net

    def eval_attacks(self, cfg, threat, steps: int) -> dict:
        return {}


# ---------------------------------------------------------------------------------------------- Method
@dataclass(frozen=True)
class Method:
    """A method as a label design.

    - `name` (CLI), `display` (the paper's spelling), `teacher` (none / clean / robust / co-trained);
    - the loss: `terms` (declared; x' comes from `attack`) or a hand-written `custom_step(ctx, x, y)`, never
      both; the trainer calls `step` either way;
    - Table 2: the labels of f(x) and f(x') come from `terms`; a method with a hand-written step states them in
      `labels`; `reducers` (how the learning difficulty is lowered); `note` (a footnote to the row);
    - `adversarial` (False: clean training, phase 1), `init_from_teacher` (the student starts as a copy of the
      teacher; cfg.init_from_teacher turns it off), `in_table2`;
    - `machinery`: what the trainer must do differently, for the few methods that need it;
    - `settings`: the per-method config fields (group "method") its loss, attack or machinery reads. A run's
      settings hold only these of that group (`train.student_keys`), so changing another method's setting in a
      profile (CKTAT's tau) leaves this method's finished runs as they are; a test traces every method's step and
      checks the declaration.
    """

    name: str
    display: str = ""  # "" = name
    teacher: str = "none"
    terms: tuple[Term, ...] = ()
    attack: Callable = attack_ce  # (ctx, x, y, outputs) -> x', for declared terms
    custom_step: Callable[[StepContext, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    labels: tuple[str, str] | None = None  # (label of f(x), label of f(x')): only with a hand-written step
    reducers: tuple[str, ...] = ()
    note: str = ""
    adversarial: bool = True
    init_from_teacher: bool = False
    in_table2: bool = True
    machinery: Machinery = Machinery()
    settings: tuple[str, ...] = ()  # the per-method config fields (group "method") the method reads

    def __post_init__(self):
        if self.teacher not in TEACHER_KINDS:
            raise ValueError(f"teacher must be one of {TEACHER_KINDS}")
        if bool(self.terms) == (self.custom_step is not None):
            raise ValueError(f"{self.name}: give either terms or a step")
        if self.terms and self.labels is not None:
            raise ValueError(f"{self.name}: the labels of a declared method come from its terms")
        if not self.terms and self.labels is None:
            raise ValueError(f"{self.name}: a hand-written step needs its Table 2 labels")

    @property
    def frozen_teacher(self) -> bool:
        """Whether phase 1 trains (or a checkpoint supplies) a frozen teacher: "clean" or "robust" teachers, not
        "co-trained" ones (LBGAT, Generalist), which live in the student's phase."""
        return self.teacher in ("clean", "robust")

    @property
    def title(self) -> str:
        return self.display or self.name

    def step(self, ctx: StepContext, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One batch's loss: the hand-written step, or x' from `attack` and the declared terms."""
        if self.custom_step is not None:
            return self.custom_step(ctx, x, y)
        outputs = Outputs(ctx, x, cotrained=self.teacher == "co-trained")
        if self.adversarial:
            outputs.x_adv = self.attack(ctx, x, y, outputs)
        return terms_loss(self.terms, outputs, y, ctx.cfg)

    def row(self) -> dict[str, str]:
        """The method's row of Table 2; for declared methods, the label of f(x) (f(x')) lists the targets of the
        terms whose output is f(x) (f(x')), and a co-trained teacher's own terms follow its reducers."""
        reducers = ", ".join(self.reducers)
        if self.terms:
            def targets(output):
                return ", ".join(t.label() for t in self.terms if t.output == output and t.table2) or "-"
            clean, adv = targets("f(x)"), targets("f(x')")
            own = [f"{t.output} : {t.label()}" for t in self.terms if t.output.startswith("T")]
            if own:
                reducers = f"{reducers} ({'; '.join(own)})"
        else:
            clean, adv = self.labels
        return {"method": self.name, "paper": self.title, "label of f(x)": clean, "label of f(x')": adv,
                "teacher": self.teacher, "difficulty reducers": reducers or "-", "note": self.note}


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    METHODS[method.name] = method
    return method


# ----------------------------------------------------------------------------------------- clean
# Standard training with cross-entropy (phase 1 of CKTAT Algorithm 1).
register(Method("clean", terms=(Term("f(x)", "y", "ce"),), adversarial=False, in_table2=False))


# ------------------------------------------------------------------------------------------ PGDAT
# PGD-AT (Madry et al. 2018): CE(f(x'), y) with x' from PGD-10 CE, uniform start. No deviation.
register(Method("pgdat", "PGDAT", terms=(Term("f(x')", "y", "ce"),), attack=attack_ce))


# ----------------------------------------------------------------------------------------- TRADES
# TRADES (Zhang et al. 2019): CE(f(x), y) + beta KL(f(x)||f(x')), x' maximises the KL from x + 0.001 N(0, I)
# with the model in eval() mode, clean branch not detached, beta = `beta` (6). No deviation.
register(Method("trades", "TRADES", attack=attack_kl, terms=(
    Term("f(x)", "y", "ce"),
    Term("f(x')", "f(x)", "kl", weight="beta"),
), settings=("beta",)))


# ------------------------------------------------------------------------------------------- MART
def mart_step(ctx: StepContext, x, y):
    """MART (Wang et al. 2020, Eq. 9): BCE(f(x'), y) + beta * sum_i KL(f(x_i)||f(x'_i)) (1 - p_y(x_i)) / B.

    As the authors code it: x' from PGD-10 CE started at x + 0.001 N(0, I) (eval mode); BCE adds
    -log(1.0001 - max_{k != y} p_k(x') + 1e-12); the clean probabilities keep their gradient; beta = `beta`
    (6, the WRN setting; the authors use 5 for ResNet-18). No deviation.
    """
    x_adv = ctx.attack(x, y, loss="ce", random_start="normal")
    return losses.mart_loss(ctx.model(x), ctx.model(x_adv), y, beta=ctx.cfg.beta)


register(Method("mart", "MART", custom_step=mart_step,
                labels=("-", "y (boosted CE), f(x) weighted by 1 - p_y(x)"), settings=("beta",)))


# ------------------------------------------------------------------------------------------ LBGAT
class CoTrainedTeacher(Machinery):
    """LBGAT's natural model T, trained jointly with the student in one optimiser (`teacher_model`, default the
    student's network), initialised with seed + 2."""

    def extra_modules(self, cfg, num_classes: int, model: nn.Module) -> dict[str, nn.Module]:
        torch.manual_seed(cfg.seed + 2)
        return {"teacher": build_model(cfg.teacher_model or cfg.model, num_classes, width=cfg.width)}


# LBGAT (Cui et al. 2021): MSE(f(x'), T(x)) + CE(T(x), y) + beta KL(f(x)||f(x')), T trained jointly.
# As the authors code it: x' maximises TRADES's KL from x + 0.001 N(0, I) (eval mode); one optimiser holds the
# student and the natural model T, which gets gradient through the MSE and its own CE; beta = `beta` (6 =
# LBGAT6; `beta=0` is LBGAT0). Deviations: T is initialised with seed + 2 and built as `teacher_model` (their
# ResNet-18 guide for WRN students is `teacher_model=resnet18`). Trap not copied: their evaluation loads
# checkpoints with strict=False; ours are loaded strictly.
register(Method("lbgat", "LBGAT", teacher="co-trained", attack=attack_kl, terms=(
    Term("f(x')", "T(x)", "mse", detach=False),
    Term("T(x)", "y", "ce"),
    Term("f(x')", "f(x)", "kl", weight="beta"),
), reducers=("collaborative training",), machinery=CoTrainedTeacher(), settings=("beta",)))


# -------------------------------------------------------------------------------------------- LTD
# LTD (Chen & Lee 2021): KL(T^{tau_t}(x) || f^{tau_s}(x)) + beta KL(f(x)||f(x')), clean teacher.
# LTD has no public training code. Decisions: the teacher temperature `ltd_tau_teacher` (0.5, "relatively low")
# and the student temperature `ltd_tau_student` (1) are our choice, not the authors' tuned values; x' maximises
# TRADES's KL (the adversarial branch is TRADES's); beta = `beta` (6); the student starts from the clean teacher
# as in the CKTAT paper's Table 4 ("LTD (clean training model initialization)"; `init_from_teacher=false` turns
# it off).
register(Method("ltd", "LTD", teacher="clean", attack=attack_kl, terms=(
    Term("f(x)", "T(x)", "kl", tau="ltd_tau_teacher", tau_output="ltd_tau_student"),
    Term("f(x')", "f(x)", "kl", weight="beta"),
), reducers=("temperature", "initialisation"), init_from_teacher=True,
                settings=("ltd_tau_teacher", "ltd_tau_student", "beta")))


# -------------------------------------------------------------------------------------------- HAT
def hat_step(ctx: StepContext, x, y):
    """HAT (Rade & Moosavi-Dezfooli 2022): TRADES + gamma * CE(f(x + h (x' - x)), argmax H(x')).

    As the authors code it: x' maximises TRADES's KL from x + 0.001 N(0, I); the helper example x + h (x' - x)
    is NOT clipped to [0, 1]; the helper label comes from the clean helper model H on x'. H is phase 1's clean
    model (teacher kind clean), frozen and never copied into the student. Defaults `hat_beta` 2.5, `hat_gamma`
    0.5, `hat_h` 2. Trap not copied: test-set model selection (we select on the validation split).
    """
    c = ctx.cfg
    x_adv = ctx.attack(x, y, loss="kl")
    x_help = x + c.hat_h * (x_adv - x)
    y_help = ctx.teacher_logits(x_adv).argmax(dim=1)
    return losses.hat_loss(ctx.model(x), ctx.model(x_adv), ctx.model(x_help), y, y_help, beta=c.hat_beta,
                           gamma=c.hat_gamma)

register(Method("hat", "HAT", teacher="clean", custom_step=hat_step,
                labels=("y", "f(x); f(x + h(x'-x)) : argmax H(x')"),
                reducers=("helper examples (no need to defend larger perturbations)",),
                settings=("hat_beta", "hat_gamma", "hat_h")))


# ------------------------------------------------------------------------------------- Generalist
class EMA(nn.Module):
    """An exponential moving average of a network's weights and buffers, with Generalist's warm-up decay
    min(decay, (n + 1) / (n + 10)) after n updates. Integer buffers (BatchNorm's counter) are copied."""

    def __init__(self, model: nn.Module, decay: float = 0.999):
        super().__init__()
        self.network = copy.deepcopy(model)
        for p in self.network.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, source: dict[str, torch.Tensor]) -> None:
        n = int(self.updates)
        d = min(self.decay, (n + 1) / (n + 10))
        for k, v in self.network.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(source[k].detach(), alpha=1 - d)
            else:
                v.copy_(source[k])
        self.updates += 1

    def forward(self, x):
        return self.network(x)


models.PURE_FORWARD.add(EMA)


def _mix_states(a: dict, b: dict, w: float) -> dict:
    return {k: w * a[k] + (1 - w) * b[k] if a[k].dtype.is_floating_point else a[k] for k in a}


def generalist_step(ctx: StepContext, x, y):
    """Generalist (Wang et al. 2023): an adversarial learner (the student, CE on PGD-10 CE inputs) and a clean
    learner (CE on x) train side by side; `Generalist.after_step` maintains their EMA teachers (decay
    `generalist_ema` 0.999 with warm-up) and copies the mixed teacher back into both learners.

    The result is the mixed EMA teacher (validated, saved as best.pt and evaluated). Deviations: one SGD optimiser
    over both learners (equivalent to the authors' two, the parameters being disjoint) with the run's piecewise-
    constant schedule instead of their piecewise-linear one; the copy-back start (epoch 75 of 120:
    `generalist_copy_start` 0.625) and the mix schedule scale with the configured epochs. Trap not copied:
    test-set model selection.
    """
    x_adv = ctx.attack(x, y, loss="ce")
    return losses.generalist_loss(ctx.model(x_adv), ctx.extra["clean_learner"](x), y)


def generalist_mix_weight(epoch: int, epochs: int) -> float:
    """Weight of the adversarial EMA teacher in the mixed teacher at 1-based `epoch`: piecewise linear through
    (0, 1), (E/3, 1), (2E/3, 1), (E, 0.9), as the authors' schedule."""
    return float(np.interp(epoch, [0, epochs // 3, epochs * 2 // 3, epochs], [1.0, 1.0, 1.0, 0.9]))

class Generalist(Machinery):
    """Generalist's learners and teachers: the clean learner (a copy of the adversarial learner, as the authors'
    deepcopy) and three EMA teachers, updated after every step; the result is the mixed EMA teacher."""

    def extra_modules(self, cfg, num_classes: int, model: nn.Module) -> dict[str, nn.Module]:
        return {"clean_learner": copy.deepcopy(model),
                "ema_adv": EMA(model, cfg.generalist_ema), "ema_clean": EMA(model, cfg.generalist_ema),
                "ema_mixed": EMA(model, cfg.generalist_ema)}

    def after_step(self, ctx: StepContext) -> None:
        """EMA of each learner; EMA of their weighted mix; in the copy-back epochs (1-based epoch
        >= `generalist_copy_start` * E and divisible by `generalist_copy_every`) both learners restart from the
        mixed teacher after every step, as the authors' loop does."""
        e, c = ctx.extra, ctx.cfg
        e["ema_adv"].update(ctx.model.state_dict())
        e["ema_clean"].update(e["clean_learner"].state_dict())
        epoch = ctx.epoch + 1
        w = generalist_mix_weight(epoch, ctx.epochs)
        e["ema_mixed"].update(_mix_states(e["ema_adv"].network.state_dict(), e["ema_clean"].network.state_dict(),
                                          w))
        if epoch >= round(c.generalist_copy_start * ctx.epochs) and epoch % c.generalist_copy_every == 0:
            mixed = e["ema_mixed"].network.state_dict()
            ctx.model.load_state_dict(mixed)
            e["clean_learner"].load_state_dict(mixed)

    def result_network(self, model: nn.Module, extra: dict[str, nn.Module]) -> nn.Module:
        return extra["ema_mixed"].network


register(Method("generalist", "Generalist", teacher="co-trained", custom_step=generalist_step,
                labels=("y (clean learner)", "y (adversarial learner)"),
                reducers=("decoupled learners", "mixed EMA teachers"), machinery=Generalist(),
                settings=("generalist_ema", "generalist_copy_start", "generalist_copy_every")))


# ------------------------------------------------------------------------------------ distillation
# ARD (Goldblum et al. 2020): alpha tau^2 KL(T^tau(x)||f^tau(x')) + (1 - alpha) CE(f(x), y).
# Defaults as the authors' code: `ard_tau` 30, `distill_alpha` 1; x' from PGD-10 CE, uniform start; the teacher
# is robust (phase 1 = PGD-AT) unless `teacher_kind=clean` (Table 1). Traps not copied: their KL divides by the
# number of classes (nn.KLDivLoss() mean), we use batchmean; their attack runs with BatchNorm in train() mode,
# ours in eval(); their learning rate decays once.
register(Method("ard", "ARD", teacher="robust", attack=attack_ce, terms=(
    Term("f(x')", "T(x)", "kl", weight=lambda c: c.distill_alpha * c.ard_tau**2, tau="ard_tau", tau_output="ard_tau"),
    Term("f(x)", "y", "ce", weight=lambda c: 1 - c.distill_alpha),
), reducers=("robust teacher", "temperature"), settings=("distill_alpha", "ard_tau")))
def iad_step(ctx: StepContext, x, y):
    """IAD (Zhu et al. 2022, IAD-I as coded by the authors): ARD's distillation plus, from the begin epoch on,
    mean_i (1 - P_T(y_i|x'_i)^b) KL(f(x_i)||f(x'_i)).

    Defaults: `iad_tau` 1, `iad_b` 0.1, `iad_begin` 0.3 of the epochs (their epoch 60 of 200), `distill_alpha` 1.
    Deviations: the authors compute f(x) twice and run an unused forward of f(x') that only moves BatchNorm
    statistics; we compute f(x) once. Traps not copied: BatchNorm in train() mode during the attack; learning
    rate decayed once; test-set model selection.
    """
    c = ctx.cfg
    t_clean = ctx.teacher_logits(x)
    x_adv = ctx.attack(x, y, loss="ce")
    introspect = ctx.phase_started(c.iad_begin)
    t_adv = ctx.teacher_logits(x_adv) if introspect else None
    return losses.iad_loss(ctx.model(x_adv), ctx.model(x), t_clean, t_adv, y, tau=c.iad_tau, b=c.iad_b,
                           alpha=c.distill_alpha, introspect=introspect)

register(Method("iad", "IAD", teacher="robust", custom_step=iad_step,
                labels=("-", "T^tau(x), f(x) weighted by 1 - P_T(y|x')^b"),
                reducers=("robust teacher", "temperature", "introspection"),
                settings=("iad_tau", "iad_b", "iad_begin", "distill_alpha")))


# RSLAD (Zi et al. 2021): 5/6 KL(T(x)||f(x')) + 1/6 KL(T(x)||f(x)); x' maximises KL(T(x)||f(x')) from
# x + 0.001 N(0, I), model in eval() mode. Teacher robust by default, `teacher_kind=clean` for Table 1. Traps not
# copied: their KL averages over batch and classes (1/C; x10 for CIFAR-100) and adds 1e-5 inside the log, we use
# batchmean; test-set model selection.
register(Method("rslad", "RSLAD", teacher="robust", attack=attack_kl_to_teacher, terms=(
    Term("f(x')", "T(x)", "kl", weight=5 / 6),
    Term("f(x)", "T(x)", "kl", weight=1 / 6),
), reducers=("robust teacher",)))


# KD-AT-Auto (Dong et al. 2022): (1 - rho) CE(f(x'), y) + rho t^2 softCE(f(x')/t, softmax(T(x')/t)) with a
# robust teacher; x' from PGD-10 CE (uniform start); the teacher labels the student's x'. Deviation: the authors
# pick t and rho by a grid search on the NLL; here they are config fields (`kd_tau` 2, `kd_rho` 0.5) to sweep on
# the validation split. Trap not copied: test-set model selection.
KD_AT_AUTO_NOTE = ("robust teacher, where the CKTAT paper's Table 2 lists Tclean: the paper's own introduction "
                   "(Sec. 1) describes the label as the interpolation of y with the temperature-scaled prediction "
                   "of an adversarially trained model, which is what KD-AT-Auto's authors use (on x')")
register(Method("kd_at_auto", "KD-AT-Auto", teacher="robust", attack=attack_ce, terms=(
    Term("f(x')", "y", "ce", weight=lambda c: 1 - c.kd_rho),
    Term("f(x')", "T(x')", "ce", weight=lambda c: c.kd_rho * c.kd_tau**2, tau="kd_tau", tau_output="kd_tau"),
), reducers=("temperature", "interpolation"), note=KD_AT_AUTO_NOTE, settings=("kd_rho", "kd_tau")))


# ------------------------------------------------------------------------------------------ CKTAT
# Algorithm 1, lines 10-13: x' = attack(x, y) (the config's `attack_loss`, CE from a uniform start by default);
# loss = Eq. 17, KL(T^tau(x) || f(x')) + beta KL(f(x) || f(x')) with tau = 5, beta = 6; the decisions the paper
# leaves open are config fields (`losses.cktat_loss`): `teacher_weight` (and tau^2 with `tau_squared`) on
# the distillation term, `detach_clean` on the consistency term. `teacher_label=onehot` puts the one-hot label in
# place of the teacher's (KL(onehot(y) || f(x')) = CE(f(x'), y)): Table 3a's "without KL(T(x), S(x'))" as a run
# that still has a label, the student still started from the teacher's weights; that term is not in Table 2.
def _teacher_term(label: str):
    """The weight of CKTAT's first term when the run's `teacher_label` is `label` (zero otherwise)."""
    def weight(c) -> float:
        if c.teacher_label != label:
            return 0.0
        return c.teacher_weight * (c.tau**2 if c.tau_squared and label == "soft" else 1.0)
    return weight


register(Method("cktat", "CKTAT", teacher="clean", attack=attack_configured, terms=(
    Term("f(x')", "T(x)", "kl", weight=_teacher_term("soft"), tau="tau"),
    Term("f(x')", "y", "ce", weight=_teacher_term("onehot"), table2=False),
    Term("f(x')", "f(x)", "kl", weight="beta", detach="detach_clean"),
), reducers=("temperature", "initialisation"), init_from_teacher=True,
    settings=("tau", "beta", "teacher_weight", "tau_squared", "detach_clean", "teacher_label")))


# ----------------------------------------------------------------------------------------- Cons-AT
class TwoViews(Machinery):
    """Un-augmented batches: the step draws two augmentations of each image itself (`ctx.augment`, from the
    trainer's checkpointed generator, so resuming stays exact)."""

    two_views = True
def _two_views(ctx: StepContext, x, y):
    """Two independent augmentations of each image as one 2B batch, and its labels."""
    return torch.cat([ctx.augment(x), ctx.augment(x)]), torch.cat([y, y])


def cons_at_step(ctx: StepContext, x, y):
    """Cons-AT (Tack et al. 2022): CE over the 2B adversarial batch + lambda JS_T(f(x1')||f(x2')).

    As the authors code it: two independent crop+flip views of each image, PGD-10 CE on the 2B batch (uniform
    start), JS on softmax(logits / T) with the mean clamped at 1e-8; `cons_lambda` 1, `js_tau` 0.5. With
    augmentation off (the multi-view default) both views are the same image and only the attacks' random starts
    differ.
    """
    c = ctx.cfg
    pair, y2 = _two_views(ctx, x, y)
    adv_1, adv_2 = ctx.model(ctx.attack(pair, y2, loss="ce")).chunk(2)
    return losses.cons_at_loss(adv_1, adv_2, y, lam=c.cons_lambda, tau=c.js_tau)


register(Method("cons_at", "Cons-AT", custom_step=cons_at_step, labels=("-", "y; f(x1') <-> f(x2') (JS_T)"),
                reducers=("consistency of two views",), machinery=TwoViews(), settings=("cons_lambda", "js_tau")))


# -------------------------------------------------------------------------------------- RAAT, RAAT++
@dataclass
class RAATBatch:
    """One RAAT batch: both views (2B), their adversarial and reduced inputs, the partition, the training inputs."""

    pair: torch.Tensor
    y: torch.Tensor
    adv: torch.Tensor
    reduced: torch.Tensor
    parts: dict[str, torch.Tensor]
    train_inputs: torch.Tensor  # x + eta delta for boundary samples, x + delta for the others


@torch.no_grad()
def raat_batch(ctx: StepContext, pair: torch.Tensor, y2: torch.Tensor) -> RAATBatch:
    """PGD on both views, the reduced inputs x + eta (x' - x), and the partition by eval-mode predictions."""
    adv = ctx.attack(pair, y2, loss="ce")
    reduced = pair + ctx.cfg.raat_eta * (adv - pair)
    model, was_training = ctx.model, ctx.model.training
    model.eval()
    try:
        preds = [model(t).argmax(dim=1) for t in (pair, adv, reduced)]
    finally:
        model.train(was_training)
    parts = losses.raat_partition(*preds, y2)
    ctx.count("partition", parts)
    train_inputs = torch.where(parts["boundary"].view(-1, 1, 1, 1), reduced, adv)
    return RAATBatch(pair, y2, adv, reduced, parts, train_inputs)


def dicar_mix_ratio(gamma: float) -> float:
    """m = max(l, 1 - l), l ~ Beta(gamma, gamma), drawn once per batch from torch's (checkpointed) generator."""
    g = torch.tensor(float(gamma))
    lam = float(torch.distributions.Beta(g, g).sample())
    return max(lam, 1 - lam)


def dicar_term(ctx: StepContext, b: RAATBatch, clean_logits: torch.Tensor | None = None):
    """lambda * DICAR over the images whose two clean views are both classified correctly (0 when there are none).

    Returns (term, clean_logits): the clean logits of both views, computed here when not given (train mode)."""
    c = ctx.cfg
    n = len(b.y) // 2
    keep = ~(b.parts["misclassified"][:n] | b.parts["misclassified"][n:])
    if not bool(keep.any()):
        return torch.zeros((), device=b.y.device), clean_logits
    m = dicar_mix_ratio(c.raat_beta_gamma)
    adv_1, adv_2 = b.adv[:n][keep], b.adv[n:][keep]
    mixed_logits = ctx.model(m * adv_1 + (1 - m) * adv_2)
    if clean_logits is None:
        clean_logits = ctx.model(b.pair)
    c1, c2 = clean_logits[:n][keep], clean_logits[n:][keep]
    return c.cons_lambda * losses.dicar_loss(mixed_logits, c1, c2, m, tau=c.js_tau), clean_logits


def raat_step(ctx: StepContext, x, y):
    """RAAT (RAAT paper, Appendix C.2, Table 4): CE on x + delta, or on x + eta delta for boundary samples, over
    both views (mean over 2B), + lambda DICAR over images whose two clean views are right.

    As the authors code it: the partition uses eval-mode argmaxes (boundary = clean right, wrong at x + delta AND
    at x + eta delta); the same delta is scaled by eta (`raat_eta` 0.1); m = max(l, 1 - l), l ~ Beta(0.75, 0.75)
    once per batch (`raat_beta_gamma`); the clean outputs are interpolated as logits; JS at T = `js_tau` 0.5,
    batchmean over the DICAR subset; lambda = `cons_lambda` 1; three train-mode forwards (training inputs,
    interpolated adversarial inputs, clean views). Deviation: m is drawn from torch's generator, not numpy's.
    """
    pair, y2 = _two_views(ctx, x, y)
    b = raat_batch(ctx, pair, y2)
    loss = F.cross_entropy(ctx.model(b.train_inputs).float(), b.y)
    return loss + dicar_term(ctx, b)[0]


def raat_pp_step(ctx: StepContext, x, y):
    """RAAT++ (RAAT paper, Table 4): MART's boosted CE on the RAAT training inputs + beta * MART's weighted
    KL(f(x)||f(x')) + lambda DICAR.

    The authors publish no RAAT++ code. Decisions: the KL uses the full perturbation x' for every sample (Table 4
    writes p(x'), not x''); it is weighted by `beta` (6, MART's) while DICAR keeps lambda = `cons_lambda` (1)
    (Table 4 writes one lambda before both terms, D.1 gives 6 to MART's and 1 to the consistency term).
    """
    c = ctx.cfg
    pair, y2 = _two_views(ctx, x, y)
    b = raat_batch(ctx, pair, y2)
    loss = losses.mart_boosted_ce(ctx.model(b.train_inputs), b.y)
    adv_logits = ctx.model(b.adv)
    dicar, clean_logits = dicar_term(ctx, b)
    if clean_logits is None:
        clean_logits = ctx.model(b.pair)
    return loss + c.beta * losses.mart_kl(clean_logits, adv_logits, b.y) + dicar


register(Method("raat", "RAAT", custom_step=raat_step,
                labels=("-", "y at x+delta (boundary: x+eta*delta); f(mix x') : mix f(x)"),
                reducers=("reduced perturbation for boundary samples", "interpolation consistency (DICAR)"),
                machinery=TwoViews(), settings=("raat_eta", "raat_beta_gamma", "cons_lambda", "js_tau")))
register(Method("raat_pp", "RAAT++", custom_step=raat_pp_step,
                labels=("-", "y (boosted CE) at x+delta (boundary: x+eta*delta); f(x) weighted; f(mix x') : mix f(x)"),
                reducers=("reduced perturbation for boundary samples", "interpolation consistency (DICAR)"),
                machinery=TwoViews(), settings=("raat_eta", "raat_beta_gamma", "cons_lambda", "js_tau", "beta")))


# ------------------------------------------------------------------------------------------- DUCAT
class Recovered(nn.Module):
    """The C-way classifier a DUCAT user deploys: the 2C-way network with its dummy classes folded back inside.

    Logits of class k: max(z_k, z_{k+C}) ("max", default: argmax identical to the authors' recovery) or
    logsumexp(z_k, z_{k+C}) ("sum": softmax = p_k + p_{k+C}). Attacks on this module are adaptive: they see the
    recovery.
    """

    def __init__(self, network: nn.Module, num_classes: int, how: str = "max"):
        super().__init__()
        self.network, self.num_classes, self.how = network, num_classes, how

    def forward(self, x):
        return losses.recover_logits(self.network(x), self.num_classes, self.how)


models.PURE_FORWARD.add(Recovered)


def ducat_step(ctx: StepContext, x, y):
    """DUCAT (ICLR 2025 submission 6428, code FlaAI/DUCAT): a 2C-way head; PGD-AT on labels in [0, C) until
    `ducat_start` of the epochs (their epoch 105 of 130), then soft-target CE on one forward of the clean and
    adversarial batch: clean (1 - w_b) onehot(y) + w_b onehot(y + C), adversarial onehot(y + C)
    (`ducat_w_benign` 0.25, `ducat_w_adv` 1).

    As the authors code it, the training attack is PGD-10 CE on label y of the raw 2C head. Evaluation (our
    addition): the trained network is deployed as `Recovered` (recovery inside the model) and attacked
    adaptively through it; the authors' protocol (attack the raw head with CE on y, score after recovery) is
    reported beside it as `pgdN_raw_head`.
    """
    c = ctx.cfg
    x_adv = ctx.attack(x, y, loss="ce")
    if ctx.phase_started(c.ducat_start):
        clean_logits, adv_logits = ctx.model(torch.cat([x, x_adv])).split(len(y))
        return losses.ducat_loss(clean_logits, adv_logits, y, ctx.num_classes, c.ducat_w_benign, c.ducat_w_adv)
    return F.cross_entropy(ctx.model(x_adv).float(), y)


class DummyClasses(Machinery):
    """DUCAT's 2C-way head, deployed as its C-way `Recovered` classifier (`ducat_recovery`), and the authors'
    evaluation protocol beside the adaptive one."""

    def head_size(self, num_classes: int) -> int:
        return 2 * num_classes

    def classifier(self, net: nn.Module, cfg, num_classes: int) -> nn.Module:
        return Recovered(net, num_classes, cfg.ducat_recovery)

    def eval_attacks(self, cfg, threat, steps: int) -> dict:
        """Two more attacks on the deployed (recovered) model, scored after recovery:

        - `pgd{steps}_raw_head`, the authors' protocol: PGD-`steps` CE on label y against the raw 2C head;
        - `pgd{steps}_worst_case`, the adaptive evaluation: per image, the worst case over PGD through the "max"
          recovery, PGD through the "sum" recovery and the raw-head attack (`attacks.worst_case_attack`).
        An image counts as fooled at any iterate that fools the recovered model (`best_iterate`).
        """
        step = partial(pgd, eps=threat.eps, alpha=threat.alpha, steps=steps, norm=threat.norm, loss="ce",
                       random_start="uniform", best_iterate=True)

        def recovered_prediction(z):
            return losses.recover_logits(z, z.shape[1] // 2).argmax(1)

        def raw_head(model, x, y):
            return step(model.network, x, y, predict=recovered_prediction)

        views = {}  # the recovery views of one deployed model, built once (their folded networks are cached)

        def view(how):
            def make(model):
                key = (id(model), how)
                if key not in views:
                    views[key] = Recovered(model.network, model.num_classes, how)
                return views[key]
            return make

        worst = worst_case_attack([(view("max"), step), (view("sum"), step), (lambda m: m, raw_head)])
        return {f"pgd{steps}_raw_head": raw_head, f"pgd{steps}_worst_case": worst}


register(Method("ducat", "DUCAT", custom_step=ducat_step,
                labels=("(1 - w) y + w (y + C)", "y + C (dummy class)"),
                reducers=("dummy classes with runtime recovery",), machinery=DummyClasses(),
                settings=("ducat_start", "ducat_w_benign", "ducat_w_adv", "ducat_recovery")))


def method_name(text: str) -> str:
    """The registered name for a CLI or paper spelling: "RAAT++" -> raat_pp, "KD-AT-Auto" -> kd_at_auto."""
    t = text.strip()
    for m in METHODS.values():
        if t.lower() == m.title.lower():
            return m.name
    return t.lower().replace("++", "_pp").replace("-", "_").replace(" ", "_")


def frozen_teacher(method: Method, cfg) -> str | None:
    """The kind of frozen teacher a run trains (or loads) in phase 1: "clean", "robust" or None.

    The one place that decides it: the method's own kind (CKTAT, LTD, HAT: clean; ARD, IAD, RSLAD, KD-AT-Auto:
    robust), which `cfg.teacher_kind` overrides (a clean teacher for ARD in Table 1). Methods without a teacher or
    with a co-trained one (LBGAT, Generalist) have no phase 1.
    """
    return (cfg.teacher_kind or method.teacher) if method.frozen_teacher else None


def initialises_from_teacher(method: Method, cfg) -> bool:
    """Whether the student starts as a copy of the teacher (CKTAT; switchable for Table 3a)."""
    return method.init_from_teacher and method.frozen_teacher and cfg.init_from_teacher


def table2() -> list[dict[str, str]]:
    """Rows of the paper's Table 2, generated from the registered methods (CLI name, the paper's spelling, the
    labels of f(x) and f(x'), the kind of teacher, the difficulty reducers and a note where this library departs
    from the paper's table)."""
    return [m.row() for m in METHODS.values() if m.in_table2]

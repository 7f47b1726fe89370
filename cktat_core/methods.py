"""Every method is a label design (CKTAT paper, Sec. 4.3 and Table 2).

A `Method` states, as data, what f(x) and f(x') are trained towards, which kind of teacher supplies the
labels (none / clean / robust / co-trained) and which learning-difficulty reducers it uses; its `step`
computes one batch's loss from the student, the batch and (if any) the frozen teacher. One trainer
(`cktat_core.train`) runs any of them; `table2()` renders the paper's Table 2 from these definitions.

Registered (CLI name, paper spelling): pgdat PGDAT, trades TRADES, mart MART, lbgat LBGAT, ltd LTD, hat HAT,
generalist Generalist, ard ARD, iad IAD, rslad RSLAD, kd_at_auto KD-AT-Auto, cktat CKTAT, cons_at Cons-AT,
raat RAAT, raat_pp RAAT++, ducat DUCAT (`method_name` maps a paper spelling to its CLI name). Each step's
docstring cites the paper, states the defaults and lists every deviation from the authors' code, including the
traps of SPEC 3 that are deliberately not copied. Attacks always run with the model in eval() mode (SPEC 1)
and model selection uses the validation split, never the test set.

To add a method: write its loss in `losses.py`, a step function here, and `register(Method(...))`; the hooks
of `Method` (extra modules, two views, after-step, head size, result network, classifier, extra evaluation
attacks) cover what the shared trainer must do differently.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import losses, models
from .attacks import pgd
from .data import augment
from .errors import ConfigError
from .models import build_model

TEACHER_KINDS = ("none", "clean", "robust", "co-trained")


@dataclass
class StepContext:
    """What a method's step may use: the student, its frozen teacher, the resolved config, the epoch.

    `extra` holds the method's extra modules (co-trained teachers, EMA copies), `generator` the trainer's data
    generator (checkpointed with the run, so drawing from it keeps resume exact) and `epochs` the length of the
    phase (schedules such as DUCAT's final phase or IAD's begin epoch are fractions of it).
    """

    model: nn.Module
    cfg: "object"  # a resolved Config
    teacher: nn.Module | None = None
    epoch: int = 0  # 0-based epoch of the current phase
    extra: dict[str, nn.Module] = field(default_factory=dict)  # modules trained jointly (co-trained teachers)
    generator: torch.Generator | None = None
    epochs: int = 1
    num_classes: int = 10

    def attack(self, x: torch.Tensor, y: torch.Tensor, loss=None, model: nn.Module | None = None,
               **kw) -> torch.Tensor:
        """The training attack of SPEC 1 (PGD-`attack_steps` in the config's ball) on `model` (the student).

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


def _no_checks(cfg) -> None:
    return None


def _identity_network(model: nn.Module, extra: dict[str, nn.Module]) -> nn.Module:
    return model


def _identity_classifier(net: nn.Module, cfg, num_classes: int) -> nn.Module:
    return net


@dataclass(frozen=True)
class Method:
    """A method as a label design, plus the few hooks the shared trainer calls.

    Label design (Table 2): `clean_target` / `adv_target` (what f(x) and f(x') are trained towards), `teacher`
    (none / clean / robust / co-trained), `reducers` (how the learning difficulty is lowered), `attack`.

    Hooks (all optional; the defaults make a plain single-network method):
    - `extra_modules(cfg, num_classes, model) -> {name: module}`: modules created with the student, checkpointed
      with it and trained in the same optimiser when their parameters require grad (a co-trained teacher);
      modules whose parameters do not require grad are only carried (EMA copies).
    - `two_views`: the trainer hands `step` un-augmented batches; the step draws its own augmentations with
      `ctx.augment` (Cons-AT, RAAT).
    - `after_step(ctx)`: called after every optimiser step (Generalist's EMA updates and copies).
    - `head_size(num_classes)`: output width of the trained network (DUCAT: 2C).
    - `result_network(model, extra)`: the network the method produces (Generalist: the mixed EMA teacher); it is
      validated, saved as best.pt and evaluated.
    - `classifier(net, cfg, num_classes)`: how that network classifies C classes at test time (DUCAT: recovery of
      the dummy classes inside the model), the model every attack is run against.
    - `eval_attacks(cfg, threat, steps)`: extra named attacks for the final evaluation (DUCAT: the authors'
      protocol, attacking the raw 2C head).
    """

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
    extra_modules: Callable | None = None  # (cfg, num_classes, model) -> {name: module}
    display: str = ""  # the paper's spelling (e.g. "RAAT++"); "" = name
    two_views: bool = False
    after_step: Callable[[StepContext], None] | None = None
    head_size: Callable[[int], int] = lambda num_classes: num_classes
    result_network: Callable = _identity_network
    classifier: Callable = _identity_classifier
    eval_attacks: Callable | None = None  # (cfg, threat, steps) -> {name: attack(model, x, y)}

    def __post_init__(self):
        if self.teacher not in TEACHER_KINDS:
            raise ValueError(f"teacher must be one of {TEACHER_KINDS}")

    @property
    def title(self) -> str:
        return self.display or self.name


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
    """PGD-AT (Madry et al. 2018): CE(f(x'), y) with x' from PGD-10 CE, uniform start. No deviation."""
    x_adv = ctx.attack(x, y, loss="ce")
    return losses.pgdat_loss(ctx.model(x_adv), y)


register(Method(
    "pgdat", pgdat_step, clean_target="-", adv_target="y", display="PGDAT",
    reference="Madry et al. 2018, Towards deep learning models resistant to adversarial attacks",
))


# ----------------------------------------------------------------------------------------- TRADES
def trades_step(ctx: StepContext, x, y):
    """TRADES (Zhang et al. 2019): CE(f(x), y) + beta KL(f(x)||f(x')), x' maximises the KL from x + 0.001 N(0, I)
    with the model in eval() mode, clean branch not detached, beta = `beta` (6). No deviation."""
    x_adv = ctx.attack(x, y, loss="kl")
    return losses.trades_loss(ctx.model(x), ctx.model(x_adv), y, beta=ctx.cfg.beta)


register(Method(
    "trades", trades_step, clean_target="y", adv_target="f(x)", display="TRADES",
    attack="PGD-10 maximising KL(f(x)||f(x')) from x + 0.001 N(0, I)",
    reference="Zhang et al. 2019, TRADES (beta = 6)",
))


def _init_checks(cfg) -> None:
    """A student initialised from the teacher needs the teacher's architecture."""
    if cfg.init_from_teacher and cfg.teacher_model and cfg.teacher_model != cfg.model:
        raise ConfigError("init_from_teacher",
                          f"needs teacher_model equal to model ({cfg.model}); set init_from_teacher=false",
                          cfg.teacher_model)


# ------------------------------------------------------------------------------------------- MART
def mart_step(ctx: StepContext, x, y):
    """MART (Wang et al. 2020, Eq. 9): BCE(f(x'), y) + beta * sum_i KL(f(x_i)||f(x'_i)) (1 - p_y(x_i)) / B.

    As the authors code it: x' from PGD-10 CE started at x + 0.001 N(0, I) (eval mode); BCE adds
    -log(1.0001 - max_{k != y} p_k(x') + 1e-12); the clean probabilities keep their gradient; beta = `beta`
    (6, the WRN setting; the authors use 5 for ResNet-18). No deviation.
    """
    x_adv = ctx.attack(x, y, loss="ce", random_start="normal")
    return losses.mart_loss(ctx.model(x), ctx.model(x_adv), y, beta=ctx.cfg.beta)


register(Method(
    "mart", mart_step, clean_target="-", adv_target="y (boosted CE), f(x) weighted by 1 - p_y(x)", display="MART",
    attack="PGD-10 CE from x + 0.001 N(0, I)", reference="Wang et al. 2020, MART (beta = 6)",
))


# ------------------------------------------------------------------------------------------ LBGAT
def _cotrained_teacher(cfg, num_classes: int, model: nn.Module) -> dict[str, nn.Module]:
    """LBGAT's natural model, trained jointly with the student (`teacher_model`, default the student's network)."""
    torch.manual_seed(cfg.seed + 2)
    return {"teacher": build_model(cfg.teacher_model or cfg.model, num_classes, width=cfg.width)}


def lbgat_step(ctx: StepContext, x, y):
    """LBGAT (Cui et al. 2021): MSE(f(x'), T(x)) + CE(T(x), y) + beta KL(f(x)||f(x')), T trained jointly.

    As the authors code it: x' maximises TRADES's KL from x + 0.001 N(0, I) (eval mode); one optimiser holds the
    student and the natural model T, which gets gradient through the MSE and its own CE; beta = `beta` (6 =
    LBGAT6; `beta=0` is LBGAT0). Deviations: T is initialised with seed + 2 and built as `teacher_model` (their
    ResNet-18 guide for WRN students is `teacher_model=resnet18`). Trap not copied: their evaluation loads
    checkpoints with strict=False; ours are loaded strictly.
    """
    t = ctx.extra["teacher"]
    x_adv = ctx.attack(x, y, loss="kl")
    return losses.lbgat_loss(ctx.model(x_adv), ctx.model(x), t(x), y, beta=ctx.cfg.beta)


register(Method(
    "lbgat", lbgat_step, clean_target="-", adv_target="T(x) (MSE), f(x)", teacher="co-trained", display="LBGAT",
    reducers=("collaborative training (T(x) : y)",), attack="PGD-10 maximising KL(f(x)||f(x')) from x + 0.001 N(0, I)",
    reference="Cui et al. 2021, Learnable Boundary Guided Adversarial Training", extra_modules=_cotrained_teacher,
))


# -------------------------------------------------------------------------------------------- LTD
def ltd_step(ctx: StepContext, x, y):
    """LTD (Chen & Lee 2021): KL(T^{tau_t}(x) || f^{tau_s}(x)) + beta KL(f(x)||f(x')), clean teacher.

    LTD has no public training code. Decisions: the teacher temperature `ltd_tau_teacher` (0.5, "relatively low")
    and the student temperature `ltd_tau_student` (1) are our choice, not the authors' tuned values; x' maximises
    TRADES's KL (the adversarial branch is TRADES's); beta = `beta` (6); the student starts from the clean teacher
    as in the CKTAT paper's Table 4 ("LTD (clean training model initialization)"; `init_from_teacher=false` turns
    it off).
    """
    c = ctx.cfg
    x_adv = ctx.attack(x, y, loss="kl")
    return losses.ltd_loss(ctx.model(x), ctx.model(x_adv), ctx.teacher_logits(x), tau_teacher=c.ltd_tau_teacher,
                           tau_student=c.ltd_tau_student, beta=c.beta)


register(Method(
    "ltd", ltd_step, clean_target="T^tau(x)", adv_target="f(x)", teacher="clean", display="LTD",
    reducers=("temperature", "initialisation"), attack="PGD-10 maximising KL(f(x)||f(x')) from x + 0.001 N(0, I)",
    reference="Chen & Lee 2021, LTD: Low Temperature Distillation (no public code)", validate=_init_checks,
    init_from_teacher=True,
))


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


register(Method(
    "hat", hat_step, clean_target="y", adv_target="f(x); f(x + h(x'-x)) : argmax H(x')", teacher="clean",
    display="HAT", reducers=("helper examples (no need to defend larger perturbations)",),
    attack="PGD-10 maximising KL(f(x)||f(x')) from x + 0.001 N(0, I)",
    reference="Rade & Moosavi-Dezfooli 2022, Helper-based adversarial training (beta 2.5, gamma 0.5, h 2)",
))


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


def _generalist_modules(cfg, num_classes: int, model: nn.Module) -> dict[str, nn.Module]:
    """The clean learner (a copy of the adversarial learner, as the authors' deepcopy) and three EMA teachers."""
    return {"clean_learner": copy.deepcopy(model),
            "ema_adv": EMA(model, cfg.generalist_ema), "ema_clean": EMA(model, cfg.generalist_ema),
            "ema_mixed": EMA(model, cfg.generalist_ema)}


def generalist_step(ctx: StepContext, x, y):
    """Generalist (Wang et al. 2023): an adversarial learner (the student, CE on PGD-10 CE inputs) and a clean
    learner (CE on x) train side by side; `generalist_after_step` maintains their EMA teachers (decay
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


def generalist_after_step(ctx: StepContext) -> None:
    """After each step: EMA of each learner; EMA of their weighted mix; in the copy-back epochs (1-based epoch
    >= `generalist_copy_start` * E and divisible by `generalist_copy_every`) both learners restart from the
    mixed teacher after every step, as the authors' loop does."""
    e, c = ctx.extra, ctx.cfg
    e["ema_adv"].update(ctx.model.state_dict())
    e["ema_clean"].update(e["clean_learner"].state_dict())
    epoch = ctx.epoch + 1
    w = generalist_mix_weight(epoch, ctx.epochs)
    e["ema_mixed"].update(_mix_states(e["ema_adv"].network.state_dict(), e["ema_clean"].network.state_dict(), w))
    if epoch >= round(c.generalist_copy_start * ctx.epochs) and epoch % c.generalist_copy_every == 0:
        mixed = e["ema_mixed"].network.state_dict()
        ctx.model.load_state_dict(mixed)
        e["clean_learner"].load_state_dict(mixed)


register(Method(
    "generalist", generalist_step, clean_target="y (clean learner)", adv_target="y (adversarial learner)",
    teacher="co-trained", display="Generalist", reducers=("decoupled learners", "mixed EMA teachers"),
    reference="Wang et al. 2023, Generalist: decoupling natural and robust generalization",
    extra_modules=_generalist_modules, after_step=generalist_after_step,
    result_network=lambda model, extra: extra["ema_mixed"].network,
))


# ------------------------------------------------------------------------------------ distillation
def ard_step(ctx: StepContext, x, y):
    """ARD (Goldblum et al. 2020): alpha tau^2 KL(T^tau(x)||f^tau(x')) + (1 - alpha) CE(f(x), y).

    Defaults as the authors' code: `ard_tau` 30, `distill_alpha` 1; x' from PGD-10 CE, uniform start; the teacher
    is robust (phase 1 = PGD-AT) unless `teacher_kind=clean` (Table 1). Traps not copied: their KL divides by the
    number of classes (nn.KLDivLoss() mean), we use batchmean; their attack runs with BatchNorm in train() mode,
    ours in eval(); their learning rate decays once.
    """
    c = ctx.cfg
    x_adv = ctx.attack(x, y, loss="ce")
    t = ctx.teacher_logits(x)
    return losses.ard_loss(ctx.model(x_adv), ctx.model(x), t, y, tau=c.ard_tau, alpha=c.distill_alpha)


register(Method(
    "ard", ard_step, clean_target="y (weight 1 - alpha)", adv_target="T^tau(x)", teacher="robust", display="ARD",
    reducers=("robust teacher", "temperature"), reference="Goldblum et al. 2020, Adversarially Robust Distillation",
))


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


register(Method(
    "iad", iad_step, clean_target="-", adv_target="T^tau(x), f(x) weighted by 1 - P_T(y|x')^b", teacher="robust",
    display="IAD", reducers=("robust teacher", "temperature", "introspection"),
    reference="Zhu et al. 2022, Reliable Adversarial Distillation with Unreliable Teachers",
))


def rslad_step(ctx: StepContext, x, y):
    """RSLAD (Zi et al. 2021): 5/6 KL(T(x)||f(x')) + 1/6 KL(T(x)||f(x)); x' maximises KL(T(x)||f(x')) from
    x + 0.001 N(0, I), model in eval() mode.

    Teacher robust by default, `teacher_kind=clean` for Table 1. Traps not copied: their KL averages over batch
    and classes (1/C; x10 for CIFAR-100) and adds 1e-5 inside the log, we use batchmean; test-set model selection.
    """
    t = ctx.teacher_logits(x)
    x_adv = ctx.attack(x, y, loss=lambda logits, _y: losses.kl(t, logits, reduction="none"), random_start="normal")
    return losses.rslad_loss(ctx.model(x_adv), ctx.model(x), t)


register(Method(
    "rslad", rslad_step, clean_target="T(x)", adv_target="T(x)", teacher="robust", display="RSLAD",
    reducers=("robust teacher",), attack="PGD-10 maximising KL(T(x)||f(x')) from x + 0.001 N(0, I)",
    reference="Zi et al. 2021, Robust Soft Label Adversarial Distillation",
))


def kd_at_auto_step(ctx: StepContext, x, y):
    """KD-AT-Auto: (1 - rho) CE(f(x'), y) + rho t^2 softCE(f(x')/t, softmax(T(x')/t)) with a robust teacher.

    x' from PGD-10 CE (uniform start); the teacher labels the student's x'. Deviation: the authors pick t and rho
    by a grid search on the NLL; here they are config fields (`kd_tau` 2, `kd_rho` 0.5) to sweep on the
    validation split. Trap not copied: test-set model selection.
    """
    c = ctx.cfg
    x_adv = ctx.attack(x, y, loss="ce")
    return losses.kd_at_loss(ctx.model(x_adv), ctx.teacher_logits(x_adv), y, tau=c.kd_tau, rho=c.kd_rho)


register(Method(
    "kd_at_auto", kd_at_auto_step, clean_target="-", adv_target="(1 - rho) y + rho T^t(x')", teacher="robust",
    display="KD-AT-Auto", reducers=("temperature", "interpolation"),
    reference="KD-AT-Auto (knowledge distillation with automatically chosen t and rho)",
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


register(Method(
    "cktat", cktat_step, clean_target="-", adv_target="T^tau(x), f(x)", teacher="clean",
    reducers=("temperature", "initialisation"),
    attack="PGD-10 CE from a uniform start (attack_loss=trades_kl selectable)",
    reference="CKTAT, Eq. 17 and Algorithm 1 (tau = 5, beta = 6)", validate=_init_checks, init_from_teacher=True,
    display="CKTAT",
))


# ----------------------------------------------------------------------------------------- Cons-AT
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


register(Method(
    "cons_at", cons_at_step, clean_target="-", adv_target="y; f(x1') <-> f(x2') (JS_T)", display="Cons-AT",
    reducers=("consistency of two views",), two_views=True, attack="PGD-10 CE from a uniform start, both views",
    reference="Tack et al. 2022, Consistency Regularization for Adversarial Robustness (lambda 1, T 0.5)",
))


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


register(Method(
    "raat", raat_step, clean_target="-", adv_target="y at x+delta (boundary: x+eta*delta); f(mix x') : mix f(x)",
    display="RAAT", reducers=("reduced perturbation for boundary samples", "interpolation consistency (DICAR)"),
    two_views=True, attack="PGD-10 CE from a uniform start, both views",
    reference="RAAT paper (arXiv 2604.26496), Appendix C, Table 4 (eta 0.1, lambda 1, T 0.5, Beta(0.75, 0.75))",
))
register(Method(
    "raat_pp", raat_pp_step, clean_target="-",
    adv_target="y (boosted CE) at x+delta (boundary: x+eta*delta); f(x) weighted; f(mix x') : mix f(x)",
    display="RAAT++", reducers=("reduced perturbation for boundary samples", "interpolation consistency (DICAR)"),
    two_views=True, attack="PGD-10 CE from a uniform start, both views",
    reference="RAAT paper (arXiv 2604.26496), Table 4: RAAT with MART's losses (beta 6, lambda 1)",
))


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
    addition, SPEC 4): the trained network is deployed as `Recovered` (recovery inside the model) and attacked
    adaptively through it; the authors' protocol (attack the raw head with CE on y, score after recovery) is
    reported beside it as `pgdN_raw_head`.
    """
    c = ctx.cfg
    x_adv = ctx.attack(x, y, loss="ce")
    if ctx.phase_started(c.ducat_start):
        clean_logits, adv_logits = ctx.model(torch.cat([x, x_adv])).split(len(y))
        return losses.ducat_loss(clean_logits, adv_logits, y, ctx.num_classes, c.ducat_w_benign, c.ducat_w_adv)
    return F.cross_entropy(ctx.model(x_adv).float(), y)


def _ducat_raw_head_attacks(cfg, threat, steps: int) -> dict:
    """The authors' protocol: PGD-`steps` CE on label y against the raw 2C head; scored after recovery."""
    def attack(model, x, y):
        return pgd(model.network, x, y, eps=threat.eps, alpha=threat.alpha, steps=steps, norm=threat.norm,
                   loss="ce", random_start="uniform")
    return {f"pgd{steps}_raw_head": attack}


register(Method(
    "ducat", ducat_step, clean_target="(1 - w) y + w (y + C)", adv_target="y + C (dummy class)", display="DUCAT",
    reducers=("dummy classes with runtime recovery",), head_size=lambda num_classes: 2 * num_classes,
    classifier=lambda net, cfg, num_classes: Recovered(net, num_classes, cfg.ducat_recovery),
    eval_attacks=_ducat_raw_head_attacks,
    reference="DUCAT: dummy classes-based adversarial training (ICLR 2025 submission; FlaAI/DUCAT)",
))


def method_name(text: str) -> str:
    """The registered name for a CLI or paper spelling: "RAAT++" -> raat_pp, "KD-AT-Auto" -> kd_at_auto."""
    t = text.strip()
    for m in METHODS.values():
        if t.lower() == m.title.lower():
            return m.name
    return t.lower().replace("++", "_pp").replace("-", "_").replace(" ", "_")


def load_classifier(path: str):
    """(classifier, info) from a checkpoint written by the trainer: the network wrapped as the method deploys it
    (a DUCAT checkpoint holds the 2C-way network and comes back as its C-way `Recovered` classifier)."""
    from . import checkpoint as ckpt
    from .config import Config

    net, info = ckpt.load_model(path)
    obj = ckpt.load(path)
    method = METHODS.get(obj.get("method", "")) if isinstance(obj, dict) else None
    if method is None or "classes" not in obj:
        return net, info
    cfg = Config.from_dict(obj["config"])
    return method.classifier(net, cfg, obj["classes"]).eval(), {**info, "num_classes": obj["classes"]}


def initialises_from_teacher(method: Method, cfg) -> bool:
    """Whether the student starts as a copy of the teacher (CKTAT; switchable for Table 3a)."""
    return method.init_from_teacher and method.teacher in ("clean", "robust") and cfg.init_from_teacher


def table2() -> list[dict[str, str]]:
    """Rows of the paper's Table 2, generated from the registered methods (CLI name, the paper's spelling, the
    labels of f(x) and f(x'), the kind of teacher and the difficulty reducers)."""
    rows = []
    for m in METHODS.values():
        if not m.in_table2:
            continue
        rows.append({"method": m.name, "paper": m.title, "label of f(x)": m.clean_target,
                     "label of f(x')": m.adv_target, "teacher": m.teacher,
                     "difficulty reducers": ", ".join(m.reducers) or "-"})
    return rows


"""One plain dataclass holds every setting of a run; profiles are named sets of overrides.

The defaults are the paper setting (SPEC 1, RAAT D.1): ResNet-18 on CIFAR-10, SGD with momentum 0.9,
weight decay 5e-4, batch 128, lr 0.1 decayed x0.1 at epochs 100 and 105 of 110, L-inf eps 8/255,
PGD-10 with step 2/255 from a uniform start. The `smoke` profile shrinks all of it to minutes on a CPU.

Fields left at ``None`` take the dataset's own default when the config is resolved (`resolve`):
the multi-view dataset lives on a different pixel scale than CIFAR, so its eps differs.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any, get_args, get_origin, get_type_hints

from .errors import ConfigError

DATASETS = ("multiview", "cifar10", "cifar100")
NORMS = ("linf", "l2")
RANDOM_STARTS = ("auto", "uniform", "normal", "none")
ATTACK_LOSSES = ("ce", "trades_kl")
TEACHER_SELECT = ("last", "best")


@dataclass
class Config:
    # --- what to run -------------------------------------------------------------------------
    method: str = "cktat"
    dataset: str = "cifar10"
    data_dir: str = "data"
    download: bool = False  # fetch CIFAR through torchvision when it is importable
    model: str = "resnet18"
    width: int = 0  # small_cnn channel width; 0 = the model's default
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # --- data -----------------------------------------------------------------------------------
    val_size: int = 1000  # training images held out for model selection (never the test set)
    train_limit: int = 0  # use only the first N training images (0 = all)
    augment: bool | None = None  # crop(pad 4)+flip; None = the dataset's default (CIFAR yes, multiview no)
    # --- optimisation (both phases) ---------------------------------------------------------------
    epochs: int = 110  # adversarial phase
    teacher_epochs: int = 110  # phase 1, the clean teacher
    batch_size: int = 128
    lr: float = 0.1
    teacher_lr: float | None = None  # None = lr
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_milestones: tuple[float, ...] = (100 / 110, 105 / 110)  # fractions of a phase's epochs
    lr_gamma: float = 0.1
    # --- threat model (SPEC 1) -------------------------------------------------------------------
    norm: str = "linf"
    eps: float | None = None  # None = dataset default (8/255 for CIFAR)
    alpha: float | None = None  # None = eps * alpha_ratio (2/255 for CIFAR)
    alpha_ratio: float = 0.25
    attack_steps: int = 10
    random_start: str = "auto"  # auto = the objective's own start: uniform for CE, 0.001*N(0,I) for KL
    attack_loss: str = "ce"  # ce (Algorithm 1 line 11) | trades_kl
    # --- CKTAT, Eq. 17 (SPEC 2) --------------------------------------------------------------------
    tau: float = 5.0
    beta: float = 6.0
    teacher_weight: float = 1.0
    tau_squared: bool = False
    detach_clean: bool = False
    init_from_teacher: bool = True
    teacher_checkpoint: str = ""  # use this clean teacher instead of training one
    teacher_model: str = ""  # "" = same as model
    teacher_select: str = "last"  # which phase-1 checkpoint teaches: last epoch or best on validation
    init_checkpoint: str = ""  # start the student from these weights (any method; e.g. PGD-AT from a clean model)
    teacher_kind: str = ""  # "" = the method's own; "clean" or "robust" (phase 1 with CE or with PGD-AT)
    # --- the other label designs (SPEC 3, 4; the authors' defaults; MART, LBGAT, LTD, RAAT++ use `beta`) ------
    hat_beta: float = 2.5  # HAT: weight of TRADES's KL
    hat_gamma: float = 0.5  # HAT: weight of the helper-example CE
    hat_h: float = 2.0  # HAT: helper example x + h (x' - x)
    ltd_tau_teacher: float = 0.5  # LTD: teacher temperature (no public code: our choice)
    ltd_tau_student: float = 1.0  # LTD: student temperature (our choice)
    generalist_ema: float = 0.999  # Generalist: EMA decay (with warm-up min(decay, (n+1)/(n+10)))
    generalist_copy_start: float = 0.625  # Generalist: copy-back from this fraction of the epochs (75 of 120)
    generalist_copy_every: int = 3  # Generalist: copy-back epochs are multiples of this
    distill_alpha: float = 1.0  # ARD, IAD: weight of the distillation terms; 1 - alpha on CE(f(x), y)
    ard_tau: float = 30.0  # ARD: temperature of teacher and student
    iad_tau: float = 1.0  # IAD: temperature
    iad_b: float = 0.1  # IAD: exponent of the teacher's reliability P_T(y|x')^b
    iad_begin: float = 0.3  # IAD: introspection from this fraction of the epochs (60 of 200)
    kd_tau: float = 2.0  # KD-AT-Auto: temperature t
    kd_rho: float = 0.5  # KD-AT-Auto: interpolation between y and the teacher's soft label
    cons_lambda: float = 1.0  # Cons-AT, RAAT, RAAT++: weight of the JS consistency (DICAR) term
    js_tau: float = 0.5  # Cons-AT, RAAT, RAAT++: JS temperature
    raat_eta: float = 0.1  # RAAT: reduced perturbation x + eta * delta for boundary samples
    raat_beta_gamma: float = 0.75  # RAAT: DICAR ratio m = max(l, 1 - l), l ~ Beta(gamma, gamma)
    ducat_start: float = 105 / 130  # DUCAT: soft dummy-class targets from this fraction of the epochs
    ducat_w_benign: float = 0.25  # DUCAT: clean target (1 - w) onehot(y) + w onehot(y + C)
    ducat_w_adv: float = 1.0  # DUCAT: adversarial target (1 - w) onehot(y) + w onehot(y + C)
    ducat_recovery: str = "max"  # DUCAT: deployed C-way logits per pair of twins: max | sum (logsumexp)
    # --- evaluation ----------------------------------------------------------------------------------
    eval_steps: int = 20  # PGD steps of the final test evaluation (PGD-20)
    val_attack_steps: int = 10  # PGD steps of the per-epoch validation
    eval_batch_size: int = 500
    test_limit: int = 0  # evaluate on the first N test images only (0 = all)
    # --- runtime ---------------------------------------------------------------------------------------
    amp: bool = True  # bf16 autocast, CUDA only
    channels_last: bool = True  # CUDA only
    progress: bool = True
    amp_dtype: str = "auto"  # auto (bf16 on Ampere and newer, fp16 + gradient scaler before) | bf16 | fp16
    device_data: bool | None = None  # training set as uint8 on the device, crop/flip there; None = on CUDA
    compile: bool = False  # torch.compile the networks (model.compile(), in place)

    # ------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["lr_milestones"] = list(self.lr_milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown field; valid fields are {', '.join(sorted(known))}")
        d = dict(d)
        if "lr_milestones" in d:
            d["lr_milestones"] = tuple(d["lr_milestones"])
        return cls(**d)

    def replace(self, **kw) -> "Config":
        return dataclasses.replace(self, **kw)


# Named overrides. `paper` is the default setting; `smoke` runs in minutes on two CPU cores.
PROFILES: dict[str, dict[str, Any]] = {
    "paper": {},
    # Minutes on two CPU cores: the multi-view dataset, a 61k-parameter CNN, PGD-5 with step 0.4 eps for
    # training and validation (PGD-20 for the test). tau = 1: at this scale tau = 5 flattens the teacher's
    # targets and the student collapses to near-constant outputs (the temperature chapter shows the sweep on
    # the validation split).
    "smoke": {
        "dataset": "multiview",
        "model": "small_cnn",
        "teacher_epochs": 30,
        "epochs": 10,
        "lr": 0.02,
        "teacher_lr": 0.05,
        "attack_steps": 5,
        "val_attack_steps": 5,
        "alpha_ratio": 0.4,
        "tau": 1.0,
        "val_size": 500,
        "eval_batch_size": 1000,
        "amp": False,
    },
}


def from_profile(profile: str, overrides: dict[str, Any] | None = None) -> Config:
    """The config of a named profile with `overrides` (field -> value) applied, validated."""
    if profile not in PROFILES:
        raise ConfigError("profile", f"must be one of {', '.join(PROFILES)}", profile)
    cfg = Config()
    cfg = apply_overrides(cfg, PROFILES[profile])
    cfg = apply_overrides(cfg, overrides or {})
    validate(cfg)
    return cfg


def _field_types() -> dict[str, Any]:
    return get_type_hints(Config)


def parse_value(name: str, text: str) -> Any:
    """Parse a command-line string for field `name` into the field's type ("8/255" is a number)."""
    types = _field_types()
    if name not in types:
        raise ConfigError(name, f"unknown field; valid fields are {', '.join(sorted(types))}")
    tp = types[name]
    optional = type(None) in get_args(tp)
    base = [a for a in get_args(tp) if a is not type(None)][0] if optional else tp
    if optional and text.lower() in ("none", "null", ""):
        return None
    try:
        if base is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if base is int:
            return int(text)
        if base is float:
            return _number(text)
        if get_origin(base) is tuple:
            return tuple(_number(t) for t in text.split(",") if t.strip())
        return text
    except (ValueError, ZeroDivisionError):
        kind = {bool: "true or false", int: "an integer", float: "a number such as 0.1 or 8/255"}.get(
            base, "a comma-separated list of numbers"
        )
        raise ConfigError(name, f"must be {kind}", text) from None


def _number(text: str) -> float:
    text = text.strip()
    if "/" in text:
        num, den = text.split("/", 1)
        return float(num) / float(den)
    return float(text)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """["tau=2", "eps=8/255"] -> {"tau": 2.0, "eps": 0.0313...}."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError("--set", "takes key=value pairs", item)
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        out[key] = parse_value(key, value.strip())
    return out


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    known = {f.name for f in fields(Config)}
    for key in overrides:
        if key not in known:
            raise ConfigError(key, f"unknown field; valid fields are {', '.join(sorted(known))}")
    return dataclasses.replace(cfg, **overrides)


def validate(cfg: Config) -> None:
    """Raise ConfigError naming the first field whose value is not allowed."""
    from .methods import METHODS  # late: methods import losses/attacks
    from .models import MODELS

    def need(ok: bool, name: str, allowed: str):
        if not ok:
            raise ConfigError(name, allowed, getattr(cfg, name))

    need(cfg.method in METHODS, "method", f"must be one of {', '.join(METHODS)}")
    need(cfg.dataset in DATASETS, "dataset", f"must be one of {', '.join(DATASETS)}")
    need(cfg.model in MODELS, "model", f"must be one of {', '.join(MODELS)}")
    need(cfg.teacher_model == "" or cfg.teacher_model in MODELS, "teacher_model",
         f"must be empty or one of {', '.join(MODELS)}")
    need(cfg.norm in NORMS, "norm", f"must be one of {', '.join(NORMS)}")
    need(cfg.random_start in RANDOM_STARTS, "random_start", f"must be one of {', '.join(RANDOM_STARTS)}")
    need(cfg.attack_loss in ATTACK_LOSSES, "attack_loss", f"must be one of {', '.join(ATTACK_LOSSES)}")
    need(cfg.teacher_kind in ("", "clean", "robust"), "teacher_kind", "must be empty, clean or robust")
    need(cfg.teacher_select in TEACHER_SELECT, "teacher_select", f"must be one of {', '.join(TEACHER_SELECT)}")
    need(_finite(cfg.tau) and cfg.tau > 0, "tau", "must be > 0")
    need(_finite(cfg.beta) and cfg.beta >= 0, "beta", "must be >= 0")
    need(_finite(cfg.teacher_weight) and cfg.teacher_weight >= 0, "teacher_weight", "must be >= 0")
    need(cfg.eps is None or (_finite(cfg.eps) and 0 <= cfg.eps <= 1), "eps", "must be in [0, 1]")
    need(cfg.alpha is None or (_finite(cfg.alpha) and 0 < cfg.alpha <= 1), "alpha", "must be in (0, 1]")
    need(_finite(cfg.alpha_ratio) and 0 < cfg.alpha_ratio <= 1, "alpha_ratio", "must be in (0, 1]")
    need(cfg.epochs >= 0, "epochs", "must be >= 0")
    need(cfg.teacher_epochs >= 0, "teacher_epochs", "must be >= 0")
    need(cfg.batch_size >= 2, "batch_size", "must be >= 2")
    need(cfg.eval_batch_size >= 1, "eval_batch_size", "must be >= 1")
    need(_finite(cfg.lr) and cfg.lr > 0, "lr", "must be > 0")
    need(cfg.teacher_lr is None or (_finite(cfg.teacher_lr) and cfg.teacher_lr > 0), "teacher_lr", "must be > 0")
    need(0 <= cfg.momentum < 1, "momentum", "must be in [0, 1)")
    need(cfg.weight_decay >= 0, "weight_decay", "must be >= 0")
    need(all(0 < m <= 1 for m in cfg.lr_milestones), "lr_milestones", "must be fractions in (0, 1]")
    need(0 < cfg.lr_gamma <= 1, "lr_gamma", "must be in (0, 1]")
    need(cfg.attack_steps >= 1, "attack_steps", "must be >= 1")
    need(cfg.eval_steps >= 1, "eval_steps", "must be >= 1")
    need(cfg.val_attack_steps >= 1, "val_attack_steps", "must be >= 1")
    need(cfg.val_size >= 0, "val_size", "must be >= 0")
    need(cfg.train_limit >= 0, "train_limit", "must be >= 0")
    need(cfg.test_limit >= 0, "test_limit", "must be >= 0")
    need(cfg.width >= 0, "width", "must be >= 0")
    need(cfg.device == "auto" or cfg.device == "cpu" or cfg.device.startswith("cuda"), "device",
         "must be auto, cpu, cuda or cuda:N")
    method = METHODS[cfg.method]
    need(cfg.teacher_kind == "" or method.teacher in ("clean", "robust"), "teacher_kind",
         f"must be empty: {cfg.method} has no clean or robust teacher")
    for name in ("hat_beta", "hat_gamma", "distill_alpha", "kd_rho", "cons_lambda", "ducat_w_benign",
                 "ducat_w_adv", "iad_b"):
        need(_finite(getattr(cfg, name)) and getattr(cfg, name) >= 0, name, "must be >= 0")
    for name in ("distill_alpha", "kd_rho", "ducat_w_benign", "ducat_w_adv", "generalist_ema", "iad_begin",
                 "ducat_start", "generalist_copy_start"):
        need(_finite(getattr(cfg, name)) and 0 <= getattr(cfg, name) <= 1, name, "must be in [0, 1]")
    for name in ("hat_h", "ltd_tau_teacher", "ltd_tau_student", "ard_tau", "iad_tau", "kd_tau", "js_tau",
                 "raat_beta_gamma"):
        need(_finite(getattr(cfg, name)) and getattr(cfg, name) > 0, name, "must be > 0")
    need(_finite(cfg.raat_eta) and 0 < cfg.raat_eta < 1, "raat_eta", "must be in (0, 1)")
    need(cfg.generalist_copy_every >= 1, "generalist_copy_every", "must be >= 1")
    need(cfg.ducat_recovery in ("max", "sum"), "ducat_recovery", "must be max or sum")
    method.validate(cfg)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def resolve(cfg: Config) -> Config:
    """Fill the fields left at None with the dataset's defaults."""
    from .data import dataset_defaults

    d = dataset_defaults(cfg.dataset)
    eps = d["eps"] if cfg.eps is None else cfg.eps
    if cfg.norm == "l2" and cfg.eps is None:
        eps = d["eps_l2"]
    alpha = eps * cfg.alpha_ratio if cfg.alpha is None else cfg.alpha
    augment = d["augment"] if cfg.augment is None else cfg.augment
    teacher_lr = cfg.lr if cfg.teacher_lr is None else cfg.teacher_lr
    return dataclasses.replace(cfg, eps=eps, alpha=alpha, augment=augment, teacher_lr=teacher_lr)


def fingerprint(cfg: Config, keys: tuple[str, ...]) -> str:
    """A stable string of the fields that define a phase, stored in its checkpoints."""
    d = cfg.to_dict()
    return json.dumps({k: d[k] for k in keys}, sort_keys=True)

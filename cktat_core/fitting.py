"""Your network, your data, one call: `fit` trains any method of the library on a network you define, and
`evaluate_suite` attacks any network with the Table 4 suite.

    net = MyNet()                                   # any nn.Module: images in [0, 1] -> logits
    res = fit(net, (x_train, y_train), method="cktat", out="runs/mine", epochs=20)
    table = evaluate_suite(res.model, (x_test, y_test))

`fit` runs the same trainer as every run of the book (`train.train_phase`): CKTAT's two phases (Algorithm 1: a
clean teacher trained from a copy of your network, then the student started from it and trained with Eq. 17),
or any other method of `methods.METHODS` with its own teacher or machinery; the paper's settings by default
(`config.Config`: SGD, lr 0.1, L-inf eps 8/255, PGD-10 with step 2/255, tau 5, beta 6); every epoch checkpointed
atomically in `out`, so calling `fit` again with the same arguments resumes where it stopped (`stop_after`
trains a few epochs per call, for sessions with a time limit); model selection on a validation split, never the
test set. Deviations from a run of the book, all forced by a network the library did not build: phase 1 and
every network a method builds (LBGAT's co-trained natural model) start from a copy of `net` with its parameters
reset (`reset_parameters` of each layer), the student from `net` as you pass it (or from the teacher, for the
methods that start there); data augmentation is off unless you ask for it (`augment=True`: crop with 4 pixels of
padding and flip, CIFAR's).

Data: a `DataLoader` (read once, into memory) or a pair of tensors (images (N, C, H, W) in [0, 1], labels (N,)).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from . import checkpoint as ckpt
from . import models
from .config import Config, apply_overrides, resolve, validate
from .data import Splits, TensorData, split_validation
from .errors import ConfigError
from .attacks import eval_mode
from .evaluate import Threat, correct_mask, evaluate, softened_label_mass
from .methods import METHODS, frozen_teacher, initialises_from_teacher
from .runtime import evaluation_precision, pick_device
from .train import DATA_KEYS, THREAT_KEYS, _prepare, student_keys, train_phase

NETWORK_KEYS = ("model", "width", "teacher_model")  # fields that name a library network: yours has its own name


@dataclass
class FitResult:
    """What `fit` returns: the trained network as its method deploys it (`model`; DUCAT's recovered C-way classifier),
    the frozen teacher (None for methods without one), the student phase's per-epoch validation `history`, the epoch
    validation picked (`best_epoch`, its weights in `out/student/best.pt`), whether every epoch is trained
    (`finished`: False after a call that `stop_after` cut short), with test data natural and PGD-20 accuracy of
    the last epoch on it (`test`), and per phase ("teacher", "student") the epochs earlier calls had trained
    (`resumed_at`; a phase this call did not reach is absent)."""

    model: nn.Module
    teacher: nn.Module | None
    history: list[dict]
    best_epoch: int
    finished: bool
    out: str
    test: dict | None = None
    settings: dict = field(default_factory=dict)
    resumed_at: dict = field(default_factory=dict)


def as_data(data, num_classes: int | None = None) -> TensorData:
    """A `TensorData` from a DataLoader (every batch read once) or an (images, labels) pair of tensors."""
    if isinstance(data, TensorData):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(torch.is_tensor(t) for t in data):
        x, y = data
    elif isinstance(data, torch.utils.data.DataLoader):
        xs, ys = zip(*((b[0], b[1]) for b in data))
        x, y = torch.cat(xs), torch.cat(ys)
    else:
        raise ConfigError("data", "must be a DataLoader or a pair (images, labels) of tensors", type(data).__name__)
    if x.ndim != 4 or len(x) != len(y):
        raise ConfigError("data", f"images must be (N, C, H, W) with one label each, got {tuple(x.shape)} and "
                          f"{len(y)} labels", tuple(x.shape))
    x, y = x.float(), y.long()
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise ConfigError("data", "images must lie in [0, 1] (normalise inside the network, `models.Normalized`)",
                          f"[{float(x.min()):.3g}, {float(x.max()):.3g}]")
    classes = num_classes or int(y.max()) + 1
    return TensorData(x, y, tuple(str(c) for c in range(classes)))


def _fresh(net: nn.Module, seed: int) -> nn.Module:
    """A copy of `net` with every layer's parameters reset (`reset_parameters`), drawn from `seed`."""
    torch.manual_seed(seed)
    out = copy.deepcopy(net)
    for m in out.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return out


def register_network(net: nn.Module) -> str:
    """Your network as a model of the library (`models.MODELS`), under its class name: what the trainer builds from
    a model's name (the co-trained natural model of LBGAT, a checkpoint's network) is then a fresh copy of it."""
    name = type(net).__name__
    if name in models.MODELS and not getattr(models.MODELS[name], "user_network", False):
        raise ConfigError("net", f"its class name {name} is a network of the library; rename your class", name)

    def build(num_classes: int, **kw) -> nn.Module:
        return _fresh(net, kw.get("seed", 0))

    build.user_network = True
    models.MODELS[name] = build
    return name


def config_for(net: nn.Module, method: str, **settings) -> Config:
    """The paper's settings (`Config`'s defaults) with `settings`, for `method` on your network, validated."""
    unknown = [k for k in settings if k in NETWORK_KEYS]
    if unknown:
        raise ConfigError(unknown[0], "names a network of the library; fit trains the network you pass", unknown[0])
    cfg = apply_overrides(Config(), {"augment": False, "progress": True, **settings, "method": method,
                                      "model": register_network(net), "width": 0})
    validate(cfg)
    return resolve(cfg)


def _keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(k for k in keys if k not in ("width", "teacher_model"))


def fit(net: nn.Module, train, *, method: str = "cktat", val=None, test=None, out: str = "runs/fit",
        teacher: nn.Module | None = None, stop_after: int | None = None, **settings) -> FitResult:
    """Train `net` with `method` on `train` (see the module docstring); `settings` are `Config` fields (epochs, lr,
    eps, tau, beta, teacher_epochs, ...). `val`: the validation data that picks the best epoch (default: `val_size`
    images held out of `train`, at most a tenth of them). `teacher`: a trained network to use as the frozen teacher
    instead of training one in phase 1. `stop_after`: train at most this many epochs of each phase in this call.
    Returns a `FitResult`, and writes it (without the networks) to `out/result.json`."""
    if method not in METHODS or method == "clean":
        raise ConfigError("method", f"must be one of {', '.join(m for m in METHODS if m != 'clean')}", method)
    cfg = config_for(net, method, **settings)
    m = METHODS[method]
    device = pick_device(cfg.device)
    data = as_data(train)
    classes = data.num_classes
    if val is None:
        data, held = split_validation(data, max(1, min(cfg.val_size, len(data) // 10)), cfg.seed)
    else:
        held = as_data(val, classes)
    splits = Splits(data.to(device), held.to(device), (as_data(test, classes) if test is not None else held).to(device))
    head = m.machinery.head_size(classes)
    with torch.no_grad():
        where = next((p.device for p in net.parameters()), torch.device("cpu"))
        width = net.eval()(held.x[:2].to(where)).shape[1]
    if width != head:
        raise ConfigError("net", f"{method} trains a {head}-way head on {classes} classes; this network gives "
                          f"{width} outputs", width)
    os.makedirs(out, exist_ok=True)

    frozen, kind, resumed = None, frozen_teacher(m, cfg), {}
    if kind is not None:
        if teacher is None:
            teacher = _prepare(_fresh(net, cfg.seed), cfg, device)
            phase1 = METHODS["clean"] if kind == "clean" else METHODS["pgdat"]
            threat = THREAT_KEYS if kind == "robust" else ()
            keys = _keys(DATA_KEYS + ("model", "teacher_epochs", "teacher_lr") + threat)
            done = train_phase(teacher, phase1, splits, cfg, os.path.join(out, "teacher"), cfg.teacher_epochs,
                               cfg.teacher_lr, keys, desc=f"phase 1: {kind} teacher", model_name=cfg.model,
                               stop_after=stop_after)
            resumed["teacher"] = done.resumed_at
            if len(done.history) < cfg.teacher_epochs:  # cut short: the student waits for a finished teacher
                return _result(cfg, net, done.model, [], 0, False, out, None, resumed)
        frozen = _prepare(teacher, cfg, device).eval()
        for p in frozen.parameters():
            p.requires_grad_(False)
    student = _prepare(copy.deepcopy(net), cfg, device)
    if initialises_from_teacher(m, cfg) and frozen is not None:
        student.load_state_dict(frozen.state_dict())
    res = train_phase(student, m, splits, cfg, os.path.join(out, "student"), cfg.epochs, cfg.lr,
                      _keys(student_keys(cfg)), teacher=frozen, desc=f"{method}", model_name=cfg.model,
                      stop_after=stop_after)
    resumed["student"] = res.resumed_at
    finished = len(res.history) == cfg.epochs
    deployed = m.machinery.classifier(res.model, cfg, classes)
    scores = None
    if test is not None and finished:
        threat = Threat(cfg.eps, cfg.eps * cfg.eval_alpha_ratio, cfg.norm)
        with evaluation_precision(device):
            ev = evaluate(deployed, splits.test, [f"pgd{cfg.eval_steps}"], threat, cfg.eval_batch_size, seed=cfg.seed)
        scores = {k: v["accuracy"] for k, v in ev["attacks"].items()}
    return _result(cfg, deployed, frozen, res.history, res.best_epoch, finished, out, scores, resumed)


def _result(cfg: Config, model, teacher, history, best_epoch, finished, out, test, resumed) -> FitResult:
    settings = {k: v for k, v in cfg.to_dict().items() if k in student_keys(cfg)}
    res = FitResult(model, teacher, history, best_epoch, finished, out, test, settings, resumed)
    ckpt.write_text_atomic(json.dumps({"settings": settings, "history": history, "best_epoch": best_epoch,
                                       "finished": finished, "test": test, "resumed_at": resumed}, indent=1),
                           os.path.join(out, "result.json"))
    return res


def teacher_summary(result: FitResult, test, train, batch_size: int = 500) -> dict | None:
    """What a run's frozen teacher hands its student: its natural accuracy (%) on `test`, and where the method has a
    temperature (`settings["tau"]`) and labels with the teacher (not Table 3a's one-hot variant) the mean probability
    (%) its softened label softmax(T(x) / tau) puts on the true class over `train`, the images the student's
    adversarial examples are made from (Eq. 17's first term; `evaluate.softened_label_mass`). None for a method
    without a teacher. Data as for `fit`."""
    teacher = result.teacher
    if teacher is None:
        return None
    device = next(teacher.parameters()).device
    test = as_data(test)
    right = correct_mask(teacher, test.to(device), batch_size=batch_size)
    soft = result.settings.get("teacher_label", "soft") == "soft"  # Table 3a's one-hot variant trains on y instead
    out = {"accuracy": 100 * right.float().mean().item(), "test_images": len(test),
           "tau": result.settings.get("tau") if soft else None}
    if out["tau"] is not None:
        train = as_data(train)
        mass = softened_label_mass(teacher, train.x, train.y, [out["tau"]], batch_size)[float(out["tau"])]
        with torch.no_grad(), eval_mode(teacher):
            classes = teacher(train.x[:1].to(device)).shape[1]  # the label's width, whatever classes `train` holds
        out.update(label_mass=100 * mass, train_images=len(train), classes=classes)
    return out


def evaluate_suite(net: nn.Module, test, *, attacks="all", eps: float = 8 / 255, alpha: float | None = None,
                   norm: str = "linf", aa_version: str = "standard", limit: int = 0, batch_size: int = 250,
                   seed: int = 0, device: str = "auto", progress: bool = False, out: str | None = None) -> dict:
    """`net` (in eval mode, float32) under the Table 4 suite on `test` (a DataLoader or (images, labels)), what
    `cktat eval` does for a checkpoint: natural accuracy, FGSM, PGD-20, PGD-100, MIM, CW-inf and AutoAttack (`attacks`:
    "all" or a list of names), at `eps` with step `alpha` (default eps / 4, 2/255 at 8/255, SPEC 5), the first `limit`
    images (0: all). AutoAttack `aa_version` "standard" is the paper's (APGD-CE, APGD-T, FAB-T, Square); "apgd" is
    the cheaper two-attack version. Returns `evaluate.evaluate`'s result: per attack its accuracy (%), with the
    sanity checks of chapter 04 (`flags`). With `out` (a .json path) the result is written there with its request
    (the weights' and the images' SHA-256 and every argument that changes the numbers) and read back, not computed
    again, when a later call makes the same request."""
    data = as_data(test).head(limit)
    dev = pick_device(device)
    threat = Threat(eps, eps / 4 if alpha is None else alpha, norm)
    names = attacks.split(",") if isinstance(attacks, str) else list(attacks)
    request = {"weights": _sha256(net.state_dict().values()), "images": _sha256([data.x, data.y]), "attacks": names,
               "eps": threat.eps, "alpha": threat.alpha, "norm": norm, "aa_version": aa_version, "seed": seed,
               "batch_size": batch_size, "device": dev.type}  # random starts are drawn batch by batch
    if out and os.path.isfile(out):
        with open(out) as fh:
            saved = json.load(fh)
        if saved.get("request") == request:
            return saved
    with torch.inference_mode(False):
        res = evaluate(net.float().to(dev).eval(), data.to(dev), names, threat, batch_size, aa_version=aa_version,
                       gradient_check=True, progress=progress, seed=seed)
    if out:
        res = {**res, "request": request}
        ckpt.write_text_atomic(json.dumps(res, indent=1), out)
    return res


def _sha256(tensors) -> str:
    """One SHA-256 over the bytes of `tensors`, in order (weights and buffers, or images and labels)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu()
        h.update((t.float() if t.dtype == torch.bfloat16 else t).contiguous().numpy().tobytes())  # numpy has no bf16
    return h.hexdigest()

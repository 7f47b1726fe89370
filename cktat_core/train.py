"""The two-phase trainer of CKTAT Algorithm 1, shared by every method.

Phase 1 (`OUT/teacher`): train the frozen teacher, a clean model with cross-entropy (lines 3-7; a robust one
with PGD-AT for the distillation methods), unless a teacher checkpoint is given; `methods.frozen_teacher` decides
which kind a run needs. Phase 2 (`OUT/student`, for every method, teacher or not): build the student, copy the
teacher into it when the method initialises from the teacher (line 8; `init_from_teacher=false` is the Table 3a
ablation), and train it with the method's loss (lines 9-14; Eq. 17 for CKTAT).

Each phase: SGD (momentum, weight decay) with the learning rate of `lr_factor` set before every step (piecewise
constant as SPEC 1, or one-cycle for short budgets); after every epoch, natural
(and for adversarial phases PGD) accuracy on a validation split held out of the training set, one JSON
line in `metrics.jsonl`, `best.pt` when the validation score improved (robust accuracy for adversarial
phases, natural accuracy for clean ones), and `last.pt`, written atomically, holding everything needed to
resume: rerunning the same command continues from the last finished epoch and ends with the same weights
as an uninterrupted run (same seed, CPU). Both the last and the best-on-validation model are evaluated on
the test set, in float32; the test set never selects anything.

A run ends with `OUT/result.json` ("cktat-run/2"): the settings it was trained under (`run_settings`, no
absolute path), the teacher's and the student's test evaluations and the paths of every checkpoint it used or
wrote, relative to OUT, and `wall_seconds`: the time of the process that finished it plus the recorded epochs
(training and validation) of earlier ones. Calling `run` again with the same settings returns that file as it is
(nothing is loaded, trained or evaluated), also after OUT was moved; with other test settings (`EVAL_KEYS`), or a
file whose test attack took another step (written before the test attack had a step of its own), the finished
training is re-read from its checkpoints and only evaluated again. A checkpoint's test evaluation is stored
beside it (`<name>.final_eval.json`), so a teacher shared by many runs is evaluated once.

Every method runs through the same loop; what a few methods do differently lives in their
`methods.Machinery`: extra modules checkpointed with the student (LBGAT's co-trained teacher, Generalist's
learners and EMA teachers), an after-step call (Generalist), un-augmented batches for the two-view methods
(Cons-AT, RAAT), the output width (DUCAT's 2C), the network a method produces (Generalist's mixed EMA teacher,
which is what gets validated, saved and evaluated; `last.pt` then also holds the student under "student") and
how it classifies at test time (DUCAT's recovery). Checkpoints record the method and the number of classes, so
`checkpoint.load_classifier` rebuilds the deployable model.


Precision, channels_last, the on-device batch source and compilation are chosen per device by `runtime`
(bf16 or fp16 autocast on CUDA, float32 evaluation always); with several processes (`torchrun`, see
`distributed`) every rank trains on its slice of each global batch and rank 0 alone writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from . import cache
from . import checkpoint as ckpt
from .config import Config, fields_in, fingerprint, resolve, validate
from .data import Splits, batches, load_splits, num_batches
from .device_data import DeviceData, epoch_batches, num_epoch_batches
from .distributed import (barrier, check_batch, is_main_process, mean_over_ranks, seed_step_rng, sync_buffers,
                          sync_gradients, world_size)
from .errors import CheckpointError
from .evaluate import Threat, evaluate
from .methods import METHODS, Machinery, Method, StepContext, frozen_teacher, initialises_from_teacher
from .runtime import (evaluation_precision, grad_scaler, machine, maybe_compile, pick_device, precision_of,
                      uses_channels_last, uses_device_data, versions)
from .models import build_model

# Config fields that change what a phase computes; a checkpoint written under other values is not resumed.
DATA_KEYS = fields_in("data", "optim")
TEACHER_KEYS = DATA_KEYS + fields_in("network", "teacher")
THREAT_KEYS = fields_in("threat")
RUNTIME_KEYS = set(fields_in("eval", "runtime"))
METHOD_KEYS = set(fields_in("method"))


def student_keys(cfg: Config) -> tuple[str, ...]:
    """The fields phase 2 depends on: every field but the evaluation and runtime ones, and of the per-method
    settings only those the run's method reads (`Method.settings`): a profile that changes CKTAT's tau leaves the
    finished runs of PGD-AT as they are. A run written when every method's settings were recorded still matches
    (`_changed_settings` compares the fields asked for now)."""
    own = set(METHODS[cfg.method].settings)
    return tuple(k for k in cfg.to_dict() if k not in RUNTIME_KEYS and (k not in METHOD_KEYS or k in own))


def _prepare(model: nn.Module, cfg: Config, device: torch.device) -> nn.Module:
    model = model.to(device)
    if uses_channels_last(cfg, device):
        model = model.to(memory_format=torch.channels_last)
    return model


def _rng_state(gen: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "data": gen.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["data"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed_all(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass
class PhaseResult:
    model: nn.Module  # weights of the last epoch (the method's result network, e.g. Generalist's EMA teacher)
    best_state: dict | None  # state_dict of the best-on-validation epoch
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    resumed_at: int = 0  # epochs trained by earlier processes (an interrupted phase resumed, a finished one re-read)

    @property
    def earlier_seconds(self) -> float:
        """The recorded seconds (training and validation) of the epochs earlier processes trained."""
        return sum(h.get("train_seconds", 0.0) + h.get("validation_seconds", 0.0)
                   for h in self.history[:self.resumed_at])


def train_phase(model: nn.Module, method: Method, splits: Splits, cfg: Config, phase_dir: str, epochs: int,
                lr: float, keys: tuple[str, ...], teacher: nn.Module | None = None, desc: str = "train",
                model_name: str | None = None, stop_after: int | None = None) -> PhaseResult:
    """Train `model` with `method` for `epochs`, resuming from `phase_dir/last.pt` if it exists.

    `keys`: the config fields this phase depends on (stored in its checkpoints; a mismatch on resume is an
    error, so a finished run is never overwritten by a different one). `stop_after`: train at most this many epochs
    in this call (a session with a time limit); the next call resumes where it stopped, and ends with the weights of
    an uninterrupted run.
    """
    device = next(model.parameters()).device
    os.makedirs(phase_dir, exist_ok=True)
    last_path, best_path = os.path.join(phase_dir, "last.pt"), os.path.join(phase_dir, "best.pt")
    fp = fingerprint(cfg, keys)
    machinery = method.machinery
    num_classes, head = splits.num_classes, machinery.head_size(splits.num_classes)
    extra = machinery.extra_modules(cfg, num_classes, model)
    extra = {k: maybe_compile(_prepare(m, cfg, device), cfg) for k, m in extra.items()}
    maybe_compile(model, cfg)
    precision = precision_of(cfg, device)
    scaler = grad_scaler(precision)  # fp16 only
    on_device = uses_device_data(cfg, device) or world_size() > 1  # several processes shard the on-device epochs
    if on_device:
        check_batch(cfg.batch_size)
        train_data = DeviceData.from_tensor_data(splits.train, device)
    # extra modules whose parameters require grad are trained jointly; the others (EMA copies) are only carried
    params = list(model.parameters()) + [p for m in extra.values() for p in m.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    gen = _seed_all(cfg.seed)
    history: list[dict] = []
    best_score, best_epoch, start = -1.0, 0, 0

    if os.path.exists(last_path):
        state = ckpt.load(last_path)
        diff = _changed_settings(state.get("fingerprint"), fp)
        if diff:
            raise CheckpointError(f"{last_path} was written by a run with other settings ({'; '.join(diff[:3])}); "
                                  f"use a new --out or the same settings")
        ckpt.load_state_strict(model, state.get("student", state["model"]), last_path)
        for k, m in extra.items():
            m.load_state_dict(state["extra"][k])
        opt.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"], gen)
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        history, best_score, best_epoch, start = state["history"], state["best_score"], state["best_epoch"], state["epoch"]
    resumed_at = start

    ctx = StepContext(model=model, cfg=cfg, teacher=teacher, extra=extra, generator=gen, epochs=epochs,
                      num_classes=num_classes)
    net = machinery.result_network(model, extra)  # what the phase produces: validated, saved, evaluated
    saved = dict(classes=num_classes, method=method.name)
    nb = (num_epoch_batches if on_device else num_batches)(len(splits.train), cfg.batch_size)
    channels_last = uses_channels_last(cfg, device)
    threat = Threat(cfg.eps, cfg.alpha, cfg.norm)
    val_attacks = {f"pgd{cfg.val_attack_steps}": None} if method.adversarial else {}
    bar = tqdm(total=epochs * nb, initial=start * nb, desc=desc, disable=not cfg.progress or not is_main_process(),
               unit="step", dynamic_ncols=True, file=sys.stderr)
    for epoch in range(start, epochs if stop_after is None else min(epochs, start + stop_after)):
        t0 = time.perf_counter()
        model.train()
        for m in extra.values():
            m.train()
        ctx.epoch, ctx.counts = epoch, {}
        seed_step_rng(cfg.seed, epoch)
        loss_sum = torch.zeros((), device=device)
        # two-view methods get un-augmented batches and draw their augmentations from `gen` (ctx.augment)
        augment_data = cfg.augment and not machinery.two_views
        if on_device:
            source = epoch_batches(train_data, cfg.batch_size, gen, augment_data, channels_last)
        else:
            source = ((x.contiguous(memory_format=torch.channels_last) if channels_last else x, y, 1.0)
                      for x, y in batches(splits.train, cfg.batch_size, gen, shuffle=True, augment_data=augment_data))
        for i, (x, y, share) in enumerate(source):
            for group in opt.param_groups:
                group["lr"] = lr * lr_factor(cfg, epoch * nb + i, epochs, nb)
            with precision.autocast():
                loss = method.step(ctx, x, y)
            opt.zero_grad(set_to_none=True)
            (loss if scaler is None else scaler.scale(loss)).backward()
            sync_gradients(params, share)  # several processes: the gradient of the global batch
            if scaler is None:
                opt.step()
            else:
                scaler.step(opt)
                scaler.update()
            sync_buffers([model, *extra.values()])
            machinery.after_step(ctx)
            loss_sum += loss.detach()
            bar.update()
        loss_sum = mean_over_ranks(loss_sum)  # read once per epoch, below
        lr_used = opt.param_groups[0]["lr"]  # the epoch's last step
        train_seconds = time.perf_counter() - t0
        with evaluation_precision(device):
            val = evaluate(machinery.classifier(net, cfg, num_classes), splits.val, list(val_attacks), threat,
                           cfg.eval_batch_size)["attacks"]
        record = {"epoch": epoch + 1, "lr": lr_used, "train_loss": float(loss_sum) / max(nb, 1),
                  "val_natural": val["natural"]["accuracy"], "train_seconds": train_seconds,
                  "validation_seconds": time.perf_counter() - t0 - train_seconds, "precision": precision.name,
                  **epoch_fractions(ctx.counts)}
        score = record["val_natural"]
        for name in val_attacks:
            record[f"val_{name}"] = val[name]["accuracy"]
            score = val[name]["accuracy"]
        history.append(record)
        bar.set_postfix({k: round(v, 2) for k, v in record.items() if k.startswith("val_")})
        if score > best_score:
            best_score, best_epoch = score, epoch + 1
            ckpt.save_atomic(ckpt.model_checkpoint(net, model_name or cfg.model, head, cfg.to_dict(),
                                                   epoch=epoch + 1, val_score=score, **saved), best_path)
        ckpt.save_atomic({
            **ckpt.model_checkpoint(net, model_name or cfg.model, head, cfg.to_dict(), **saved),
            **({"student": model.state_dict()} if net is not model else {}),
            "fingerprint": fp, "epoch": epoch + 1, "optimizer": opt.state_dict(),
            "rng": _rng_state(gen), "history": history, "best_score": best_score, "best_epoch": best_epoch,
            "extra": {k: m.state_dict() for k, m in extra.items()},
            **({"scaler": scaler.state_dict()} if scaler is not None else {}),
        }, last_path)
        ckpt.write_text_atomic("".join(json.dumps(r) + "\n" for r in history),
                               os.path.join(phase_dir, "metrics.jsonl"))
        barrier()  # the other ranks read best.pt / last.pt only after rank 0 wrote them
    bar.close()
    best_state = ckpt.load(best_path)["model"] if os.path.exists(best_path) else None
    return PhaseResult(net, best_state, best_epoch, history, resumed_at=resumed_at)


def lr_factor(cfg: Config, step: int, epochs: int, steps_per_epoch: int) -> float:
    """The learning rate of training step `step` (0-based, counted over the phase) as a fraction of the phase's lr.

    piecewise (SPEC 1): x lr_gamma at each milestone, the milestones being fractions of the epochs (epochs 100 and
    105 of 110), constant within an epoch. onecycle: a linear rise to the full rate over the first `warmup` of the
    steps, then a linear decay to zero at the last step (the short schedule of the real-image CPU profile; Smith &
    Topin 2019, as fast adversarial training uses it, Wong et al. 2020)."""
    if cfg.lr_schedule == "piecewise":
        milestones = {round(f * epochs) for f in cfg.lr_milestones}
        return cfg.lr_gamma ** sum(step // steps_per_epoch >= m for m in milestones)
    total = max(epochs * steps_per_epoch, 1)
    rise = max(round(cfg.warmup * total), 1)
    return (step + 1) / rise if step < rise else (total - step) / max(total - rise, 1)


def epoch_fractions(counts: dict, reduce=mean_over_ranks) -> dict[str, float]:
    """An epoch's `StepContext.counts` as history fields: `<group>_<name>` = the share of the examples counted in
    `group` that mask `name` held (over every rank: `reduce` averages the sums, read here, once per epoch)."""
    out = {}
    for group, (names, total, sums) in counts.items():
        out.update({f"{group}_{name}": v / max(total, 1) for name, v in zip(names, reduce(sums).tolist())})
    return out


CHECKPOINT_FIELDS = ("teacher_checkpoint", "init_checkpoint")  # settings that name a file


def _changed_settings(old: str | None, new: str) -> list[str]:
    """The fields whose values differ between a checkpoint's settings and the current ones.

    A field the checkpoint does not record (added to the library after it was written) counts as unchanged
    while it holds its default, so upgrading the library does not orphan finished runs. A checkpoint path is the
    same setting whether it was written relative to the working directory or absolute (a results folder named
    either way on the command line).
    """
    try:
        before = json.loads(old or "{}")
    except ValueError:
        before = {}
    now = json.loads(new)
    defaults = json.loads(json.dumps(Config().to_dict()))
    diff = []
    for k in sorted(now):
        was = before[k] if k in before else defaults.get(k)
        if was != now[k] and not (k in CHECKPOINT_FIELDS and was and now[k] and
                                  os.path.realpath(was) == os.path.realpath(now[k])):
            diff.append(f"{k}: {was!r} there, {now[k]!r} now")
    return diff



# ----------------------------------------------------------------------------------------- a full run
RESULT_SCHEMA = "cktat-run/2"
EVAL_KEYS = ("eval_steps", "eval_alpha_ratio", "test_limit")  # change the reported numbers, not the training
RUN_LOG = "CKTAT_RUN_LOG"  # a file to which every run trained (not re-read) appends a line when it starts and ends


def log_run(event: str, out_dir: str, **info) -> None:
    """Append {"event", "run" (absolute folder), "time", **info} as one JSON line to `$CKTAT_RUN_LOG`, when that
    variable is set: `cktat reproduce` reads it to print a line per run while a chapter executes."""
    path = os.environ.get(RUN_LOG)
    if path and is_main_process():
        line = json.dumps({"event": event, "run": os.path.abspath(out_dir), "time": time.time(), **info})
        with open(path, "a") as fh:
            fh.write(line + "\n")


def student_dir(out_dir: str) -> str:
    """Phase 2's folder, `OUT/student`, for every method (the network the method trains, teacher or not).

    A run folder written before this name was used for every method (`OUT/model`) is renamed once, in place.
    """
    path, legacy = os.path.join(out_dir, "student"), os.path.join(out_dir, "model")
    if not os.path.exists(path) and os.path.isdir(legacy):
        os.replace(legacy, path)
    return path


def _relative(path: str, base: str) -> str:
    return os.path.relpath(os.path.abspath(path), os.path.abspath(base)) if path else path


def run_settings(cfg: Config, out_dir: str) -> dict:
    """Everything that defines a run's result.json: the fields its training depends on plus `EVAL_KEYS`, with the
    teacher and initial checkpoints as paths relative to the run folder, so a moved results folder (a Drive
    folder, a committed `results/`) still matches. No absolute path is stored."""
    d = cfg.to_dict()
    settings = {k: d[k] for k in student_keys(cfg) + EVAL_KEYS}
    for key in CHECKPOINT_FIELDS:
        if settings.get(key):
            settings[key] = _relative(settings[key], out_dir)
    return settings


def read_finished(out_dir: str, settings: dict) -> dict | None:
    """The saved result of a finished run whose settings match `settings` (see `_changed_settings`) and whose test
    attack took the step they ask for (`_evaluated_as`), else None. It opens the file rather than asking whether it is
    there, so a caller that records the files a process opens sees that the run was looked for, found or not (the
    book rebuilds a page that looked for a run when the run lands)."""
    try:
        with open(os.path.join(out_dir, "result.json")) as fh:
            saved = json.load(fh)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    if saved.get("schema") != RESULT_SCHEMA or "settings" not in saved:
        return None
    if _changed_settings(json.dumps(saved["settings"]), json.dumps(settings)) or not _evaluated_as(saved, settings):
        return None
    return {**saved, "reused": True}


def _attack_tables(obj):
    """Every `attacks` table (attack name -> result) anywhere in a saved result."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "attacks" and isinstance(value, dict):
                yield value
            else:
                yield from _attack_tables(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _attack_tables(value)


def _evaluated_as(saved: dict, settings: dict) -> bool:
    """Whether every PGD-`eval_steps` evaluation recorded in a saved result attacked with the step `settings` ask
    for (eps x `eval_alpha_ratio`). A result written before the evaluation had a step of its own was attacked with
    the training step, and its training is reused but its evaluation is run again."""
    name = f"pgd{settings.get('eval_steps', Config.eval_steps)}"
    ratio = settings.get("eval_alpha_ratio", Config.eval_alpha_ratio)
    specs = [table[name]["spec"] for table in _attack_tables(saved)
             if isinstance(table.get(name), dict) and isinstance(table[name].get("spec"), dict)]
    return all(abs(s["alpha"] - s["eps"] * ratio) <= 1e-9 for s in specs if {"eps", "alpha"} <= s.keys())


def load_teacher(path: str, cfg: Config, num_classes: int, device: torch.device) -> nn.Module:
    """A teacher from a checkpoint (ours, or a plain state_dict of cfg.teacher_model / cfg.model)."""
    obj = ckpt.load(path)
    name = obj.get("model_name") if isinstance(obj, dict) and obj.get("format") == ckpt.FORMAT else None
    name = name or cfg.teacher_model or cfg.model
    width = obj.get("config", {}).get("width", cfg.width) if isinstance(obj, dict) and "config" in obj else cfg.width
    model = build_model(name, num_classes, width=width)
    ckpt.load_state_strict(model, ckpt.state_dict_of(obj, path), path)
    return _prepare(model, cfg, device)


def new_model(name: str, cfg: Config, num_classes: int, device: torch.device, seed: int) -> nn.Module:
    """A freshly initialised network; its initial weights depend on `seed` only."""
    torch.manual_seed(seed)
    return _prepare(build_model(name, num_classes, width=cfg.width), cfg, device)


def checkpoint_seed(path: str, default: int) -> int:
    """The seed a checkpoint of ours was trained with (its config), else `default`: a teacher's test evaluation uses
    it for PGD's random starts, so a student run of another seed reads the teacher's cached evaluation instead of
    rewriting it."""
    obj = ckpt.load(path)
    config = obj.get("config") if isinstance(obj, dict) else None
    return int(config.get("seed", default)) if isinstance(config, dict) else default


def teacher_checkpoint_path(out_dir: str, cfg: Config) -> str:
    """The phase-1 checkpoint that teaches: `teacher/last.pt`, or `teacher/best.pt` when teacher_select=best."""
    return os.path.join(out_dir, "teacher", "best.pt" if cfg.teacher_select == "best" else "last.pt")


def train_teacher(cfg: Config, splits: Splits, out_dir: str, device: torch.device,
                  kind: str = "clean") -> tuple[nn.Module, PhaseResult]:
    """Phase 1: a clean model trained with cross-entropy (or, kind="robust", with PGD-AT) for cfg.teacher_epochs."""
    name = cfg.teacher_model or cfg.model
    model = new_model(name, cfg, splits.num_classes, device, cfg.seed)
    method, keys = (METHODS["clean"], TEACHER_KEYS) if kind == "clean" else (METHODS["pgdat"], TEACHER_KEYS + THREAT_KEYS)
    res = train_phase(model, method, splits, cfg, os.path.join(out_dir, "teacher"), cfg.teacher_epochs,
                      cfg.teacher_lr, keys, desc=f"phase 1: {kind} teacher", model_name=name)
    if cfg.teacher_select == "best" and res.best_state is not None:
        model.load_state_dict(res.best_state)
    return model, res


def load_run_splits(cfg: Config, device: torch.device) -> Splits:
    """The run's splits on `device`; the training set stays on the CPU when `train_phase` makes its own on-device
    copy (uint8 where the images allow it, `device_data`)."""
    s = load_splits(cfg.dataset, cfg.data_dir, cfg.val_size, cfg.train_limit, cfg.test_limit, cfg.download,
                    cfg.train_per_file)
    train = s.train if uses_device_data(cfg, device) else s.train.to(device)
    return Splits(train, s.val.to(device), s.test.to(device), {k: v.to(device) for k, v in s.probes.items()})


def teacher_settings(cfg: Config, kind: str) -> dict:
    """What a stand-alone teacher run (`teacher_run`) depends on: phase 1's fields, the threat model when it is
    robust, which checkpoint teaches and the test settings."""
    keys = TEACHER_KEYS + (THREAT_KEYS if kind == "robust" else ()) + ("teacher_select",) + EVAL_KEYS
    return {"kind": kind, **{k: v for k, v in cfg.to_dict().items() if k in keys}}


def teacher_run(cfg: Config, kind: str, out_dir: str, retrain: bool = False) -> dict:
    """A frozen teacher of `kind` trained on its own in `out_dir` (`compare` shares one with every method).

    Returns {"checkpoint", "kind", "history", "best_epoch", "used", "evaluation"} and writes it to
    `out_dir/result.json`; a finished teacher run with the same settings is re-read, not trained or evaluated
    again (its checkpoint need not even be there: `restore_checkpoint` trains it again, `retrain`, when a student
    needs it). The checkpoint path is relative to `out_dir` on disk.
    """
    cfg = resolve(cfg)
    settings = teacher_settings(cfg, kind)
    finished = None if retrain else read_finished(out_dir, settings)
    if finished is None:
        log_run("start", out_dir, kind=f"{kind} teacher", epochs=cfg.teacher_epochs)
        t_start = time.perf_counter()
        device = pick_device(cfg.device)
        splits = load_run_splits(cfg, device)
        model, res = train_teacher(cfg, splits, out_dir, device, kind)
        path = teacher_checkpoint_path(out_dir, cfg)
        finished = {"schema": RESULT_SCHEMA, "settings": settings, "versions": versions(), "device": str(device),
                    "machine": machine(device), "precision": trained_in(res.history),
                    "checkpoint": _relative(path, out_dir), "kind": kind, "history": res.history,
                    "best_epoch": res.best_epoch, "used": cfg.teacher_select,
                    "evaluation": saved_final_evaluation(path, model, splits, cfg, device),
                    "resumed_at_epoch": res.resumed_at,
                    "wall_seconds": time.perf_counter() - t_start + res.earlier_seconds}
        ckpt.write_text_atomic(json.dumps(finished, indent=1), os.path.join(out_dir, "result.json"))
        log_run("end", out_dir, seconds=finished["wall_seconds"])
    return {**finished, "checkpoint": os.path.join(out_dir, finished["checkpoint"])}


def _freeze(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# The probe set evaluated under attack as well: feature 2 is the dim feature, and whether a model uses it robustly is
# the question chapter 01 asks of it (feature 1's probes and a best-epoch checkpoint's probes are evaluated naturally).
ATTACKED_PROBE = "probe_f2"


def final_evaluation(model: nn.Module, splits: Splits, cfg: Config, device: torch.device,
                     method: Method | None = None, attack_probe: bool = True) -> dict:
    """Natural and PGD-`eval_steps` accuracy on the test set, and natural accuracy on the probe sets (if any), in
    float32; with `attack_probe`, PGD accuracy on `ATTACKED_PROBE` too. PGD steps by eps x `eval_alpha_ratio` (2/255
    at 8/255, SPEC 5) whatever step the run trained with.

    No autocast here, whatever `cfg.amp`: every reported number is computed in float32 (`evaluate` also turns
    autocast off itself). With `method`, the network is evaluated as the method deploys it (`method.classifier`:
    DUCAT's recovered C-way model, attacked adaptively) and the method's extra attacks are added (DUCAT: the
    authors' protocol on the raw head), with `protocol_gap`: each extra attack's accuracy minus the standard PGD's.
    PGD's random starts are drawn from cfg.seed, so the same weights always give the same numbers (the last and the
    best epoch agree when they are the same epoch), and the caller's random state is left as it was.
    """
    threat = Threat(cfg.eps, cfg.eps * cfg.eval_alpha_ratio, cfg.norm)
    names = [f"pgd{cfg.eval_steps}"]
    clf = method.machinery.classifier(model, cfg, splits.num_classes) if method is not None else model
    with evaluation_precision(device):
        res = {"test": evaluate(clf, splits.test, names, threat, cfg.eval_batch_size, seed=cfg.seed)}
        extra = method.machinery.eval_attacks(cfg, threat, cfg.eval_steps) if method is not None else {}
        if extra:
            more = evaluate(clf, splits.test, extra, threat, cfg.eval_batch_size, seed=cfg.seed)["attacks"]
            base = res["test"]["attacks"][names[0]]["accuracy"]
            for name in extra:
                res["test"]["attacks"][name] = more[name]
            res["protocol_gap"] = {name: more[name]["accuracy"] - base for name in extra}
        for pname, pdata in splits.probes.items():
            attacked = names if attack_probe and pname == ATTACKED_PROBE else []
            res[pname] = evaluate(clf, pdata, attacked, threat, cfg.eval_batch_size, seed=cfg.seed)
    return res


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _deployment(method: Method | None) -> str | None:
    """How a method's network is deployed and attacked at test time: None for the plain network (a teacher, PGD-AT,
    CKTAT, ...), else the method whose machinery changes the classifier or adds attacks (DUCAT). A checkpoint that is
    both a run's student and another run's teacher (PGD-AT as a robust teacher) so has one evaluation, not two that
    overwrite each other."""
    if method is None:
        return None
    plain = type(method.machinery).classifier is Machinery.classifier and \
        type(method.machinery).eval_attacks is Machinery.eval_attacks
    return None if plain else method.name


def evaluation_key(path: str, cfg: Config, method: Method | None, attack_probe: bool = True) -> dict:
    """What a final evaluation of the checkpoint at `path` depends on: the file's bytes and the test settings."""
    return {"sha256": _sha256(path), "method": _deployment(method), "attack_probe": attack_probe,
            **{k: getattr(cfg, k) for k in ("dataset", "seed", "norm", "eps", "eval_alpha_ratio", "eval_steps",
                                            "test_limit", "ducat_recovery")}}


def saved_final_evaluation(path: str, model: nn.Module, splits: Splits, cfg: Config, device: torch.device,
                           method: Method | None = None, attack_probe: bool = True) -> dict:
    """`final_evaluation` of the network saved at `path` (and held by `model`), computed once per checkpoint.

    The evaluation is stored beside the checkpoint in `<name>.final_eval.json` with `evaluation_key`; a later call
    with the same file and settings (another run taught by the same teacher, a rerun after an interruption) reads it
    back instead of attacking the test set again.
    """
    if not os.path.isfile(path):
        return final_evaluation(model, splits, cfg, device, method, attack_probe)
    cache = os.path.splitext(path)[0] + ".final_eval.json"
    key = evaluation_key(path, cfg, method, attack_probe)
    if os.path.isfile(cache):
        try:
            with open(cache) as fh:
                saved = json.load(fh)
            if saved.get("key") == key:
                return saved["evaluation"]
        except ValueError:
            pass
    ev = final_evaluation(model, splits, cfg, device, method, attack_probe)
    ckpt.write_text_atomic(json.dumps({"key": key, "evaluation": ev}), cache)
    return ev


def restore_checkpoint(path: str, cfg: Config) -> None:
    """Train again the finished run that wrote checkpoint `path` when the weights its result.json describes are not
    here: a clone holds the committed results, never their checkpoints, and a student trained there from a
    committed teacher (or initialised from a committed run) needs the weights. A checkpoint that is here but was
    not written by that training (`written_by_run`: a retraining stopped part-way leaves its last epoch's) does not
    count. The run is retrained from the settings its result.json records, with `cfg`'s runtime fields (device,
    data folder), into its own folder, resuming where a stopped retraining left off; its result.json is
    rewritten. Nothing happens when no finished run claims the file (loading it then fails with a
    `CheckpointError` naming the path)."""
    if not missing_weights(path):
        return
    folder, saved = cache.run_of_checkpoint(path)
    known = set(cfg.to_dict())
    fields = {k: v for k, v in saved["settings"].items() if k in known}
    if "kind" in saved:  # a stand-alone teacher run
        teacher_run(cfg.replace(**fields), saved["kind"], folder, retrain=True)
        return
    for key in CHECKPOINT_FIELDS:  # stored relative to the run folder
        if fields.get(key):
            fields[key] = os.path.normpath(os.path.join(folder, fields[key]))
    run(cfg.replace(**fields), folder, retrain=True)


def missing_weights(path: str) -> bool:
    """Whether `restore_checkpoint(path)` would train: a finished run claims checkpoint `path` and the weights its
    result.json describes are not here."""
    if not path:
        return False
    found = cache.run_of_checkpoint(path)
    return found is not None and not (os.path.exists(path) and written_by_run(path, *found))


def written_by_run(path: str, folder: str, saved: dict) -> bool:
    """Whether checkpoint `path` holds the weights that run `folder`'s result.json (`saved`) describes: the last
    checkpoint of its phase records the same training losses (`cache.losses`) as the result. True where that
    cannot be told (no history in the result, no last checkpoint beside `path`)."""
    history = cache.phase_history(path, folder, saved)
    last = os.path.join(os.path.dirname(os.path.abspath(path)), "last.pt")
    if history is None or not os.path.isfile(last):
        return True
    return cache.losses(ckpt.load(last).get("history") or []) == cache.losses(history)


def trained_in(*histories: list[dict]) -> str | None:
    """The arithmetic the epochs of `histories` trained in (each epoch records its `precision`): the one name they
    share, "mixed" where a run resumed on a machine with another arithmetic, None where an epoch trained before
    epochs recorded it."""
    names = [h.get("precision") for hist in histories for h in hist]
    if not names or None in names:
        return None
    return names[0] if len(set(names)) == 1 else "mixed"


def run(cfg: Config, out_dir: str, retrain: bool = False) -> dict:
    """Train (resuming where a previous run stopped), evaluate, and write `out_dir/result.json`.

    A finished run whose result.json was written under the same settings (`run_settings`) is returned as saved:
    no data is loaded, nothing is trained or evaluated (unless `retrain`: `restore_checkpoint`); under other test
    settings, or evaluated with another test step (`read_finished`), its training is re-read and evaluated again. The result names
    every checkpoint it used or wrote, as paths relative to `out_dir`. A teacher or initial checkpoint that is not
    here but whose finished run is, is trained again first (`restore_checkpoint`).
    """
    validate(cfg)
    cfg = resolve(cfg)
    settings = run_settings(cfg, out_dir)
    finished = None if retrain else read_finished(out_dir, settings)
    if finished is not None:
        return finished
    for path in (cfg.teacher_checkpoint, cfg.init_checkpoint):
        restore_checkpoint(path, cfg)
    t_start = time.perf_counter()
    log_run("start", out_dir, kind=cfg.method, epochs=cfg.epochs)
    device = pick_device(cfg.device)
    method = METHODS[cfg.method]
    splits = load_run_splits(cfg, device)
    os.makedirs(out_dir, exist_ok=True)
    config = {**cfg.to_dict(), **{k: settings.get(k, "") for k in CHECKPOINT_FIELDS}}
    result: dict = {"schema": RESULT_SCHEMA, "method": cfg.method, "seed": cfg.seed, "device": str(device),
                    "machine": machine(device), "versions": versions(), "config": config, "settings": settings,
                    "data": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)}}
    teacher, kind, earlier = None, frozen_teacher(method, cfg), 0.0
    if kind is not None:
        if cfg.teacher_checkpoint:
            path = cfg.teacher_checkpoint
            teacher = load_teacher(path, cfg, splits.num_classes, device)
            result["teacher"] = {"kind": kind}
        else:
            teacher, tres = train_teacher(cfg, splits, out_dir, device, kind)
            path = teacher_checkpoint_path(out_dir, cfg)
            result["teacher"] = {"kind": kind, "history": tres.history, "best_epoch": tres.best_epoch,
                                 "used": cfg.teacher_select, "resumed_at_epoch": tres.resumed_at}
            earlier += tres.earlier_seconds
        result["teacher"]["checkpoint"] = _relative(path, out_dir)
        own = cfg.replace(seed=checkpoint_seed(path, cfg.seed))  # the same evaluation whichever run reads it
        result["teacher"].update(saved_final_evaluation(path, teacher, splits, own, device))
        teacher = _freeze(teacher)

    head = method.machinery.head_size(splits.num_classes)
    student = new_model(cfg.model, cfg, head, device, cfg.seed + 1)
    from_teacher = initialises_from_teacher(method, cfg) and teacher is not None
    if from_teacher:
        student.load_state_dict(teacher.state_dict())
    elif cfg.init_checkpoint:
        obj = ckpt.load(cfg.init_checkpoint)
        ckpt.load_state_strict(student, ckpt.state_dict_of(obj, cfg.init_checkpoint), cfg.init_checkpoint)
    phase_dir = student_dir(out_dir)
    res = train_phase(student, method, splits, cfg, phase_dir, cfg.epochs, cfg.lr, student_keys(cfg),
                      teacher=teacher, desc=f"phase 2: {cfg.method}" if teacher is not None else cfg.method)
    last_path, best_path = os.path.join(phase_dir, "last.pt"), os.path.join(phase_dir, "best.pt")
    result["student"] = {
        "initialised_from_teacher": from_teacher,
        "init_checkpoint": None if from_teacher else (settings.get("init_checkpoint") or None),
        "checkpoints": {"last": _relative(last_path, out_dir), "best": _relative(best_path, out_dir)},
        "history": res.history, "resumed_at_epoch": res.resumed_at,
        "last": saved_final_evaluation(last_path, res.model, splits, cfg, device, method)}
    if res.best_state is not None and res.best_epoch == len(res.history):
        # the best epoch is the last: the same weights, so the same numbers (PGD's starts come from cfg.seed)
        result["student"]["best"] = {"epoch": res.best_epoch, **result["student"]["last"]}
    elif res.best_state is not None:
        best = build_model(cfg.model, head, width=cfg.width)
        best.load_state_dict(res.best_state)
        best = _prepare(best, cfg, device)
        result["student"]["best"] = {"epoch": res.best_epoch,
                                     **saved_final_evaluation(best_path, best, splits, cfg, device, method,
                                                              attack_probe=False)}
    result["precision"] = trained_in(res.history)  # the student's arithmetic (a frozen teacher's is in its own run)
    # this process, plus the recorded epochs of earlier ones (an interrupted run resumed, a finished one re-evaluated)
    result["wall_seconds"] = time.perf_counter() - t_start + earlier + res.earlier_seconds
    ckpt.write_text_atomic(json.dumps(result, indent=1), os.path.join(out_dir, "result.json"))
    log_run("end", out_dir, seconds=result["wall_seconds"])
    return result

"""`cktat bench`: how fast a training step runs here, and how long the paper's run would take.

Three steps through the trainer's own code (`methods.<name>.step` in the training precision, backward, SGD
step; the gradient scaler for fp16) on random images of the chosen batch size: a clean step (the teacher's
phase), a PGD-`attack_steps` training step (PGD-AT) and a CKTAT step (Eq. 17: PGD on the student, the frozen
teacher's logits, two student forwards). Each is warmed up, then timed `repeats` times (the device is
synchronised around each step, never inside it) and summarised by its median. The evaluation attack (PGD on
the eval-mode network, float32) is timed the same way, per attack step.

Reported: images per second of each step, the device's name, peak memory (CUDA: the allocator's peak per
step kind; CPU: the process's peak resident set), the arithmetic of each step (counted by
`torch.utils.flop_counter`) and, on a GPU whose datasheet peak is listed in `PEAK_TFLOPS`, the fraction of
that peak reached. The projection multiplies the measured rates by the work of the profile's run: phase 1
(`teacher_epochs` clean epochs, natural validation), phase 2 (`epochs` CKTAT epochs, PGD validation on
`val_size` images) and the final test evaluations (teacher, last and best student: natural + PGD-`eval_steps`).
It leaves out data movement and checkpoint writes, which the on-device path keeps small.
"""

from __future__ import annotations

import resource
import statistics
import time

import torch
import torch.nn as nn

from .attacks import pgd
from .config import from_profile, resolve
from .data import MULTIVIEW, dataset_defaults
from .errors import ConfigError
from .host import cpu_model
from .methods import METHODS, StepContext
from .models import MODELS, build_model, num_parameters
from .results import duration  # noqa: F401  (`bench.duration`, as chapters call it)
from .runtime import (evaluation_precision, grad_scaler, maybe_compile, pick_device, precision_of,
                      uses_channels_last, versions)

# Training / test set sizes of each dataset (the official splits; multiview: the library's own).
DATASET_SIZES = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000),
                 "multiview": (MULTIVIEW.n_train, MULTIVIEW.n_test)}

# Datasheet peaks, dense (no sparsity), in TFLOPS: {name fragment: {precision: peak}}. Tensor-core figures
# for bf16 / fp16, plain FP32 for fp32. Sources: NVIDIA's H100, H200, A100, L4, T4 and V100 datasheets.
PEAK_TFLOPS = {
    "H100 PCIe": {"bf16": 756.0, "fp16": 756.0, "fp32": 51.0},
    "H100": {"bf16": 989.4, "fp16": 989.4, "fp32": 66.9},
    "H200": {"bf16": 989.4, "fp16": 989.4, "fp32": 66.9},
    "A100": {"bf16": 312.0, "fp16": 312.0, "fp32": 19.5},
    "L4": {"bf16": 121.0, "fp16": 121.0, "fp32": 30.3},
    "T4": {"fp16": 65.0, "fp32": 8.1},
    "V100": {"fp16": 125.0, "fp32": 15.7},
}


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model (from /proc/cpuinfo where it exists) and torch's thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = cpu_model()
    return f"{model} ({torch.get_num_threads()} threads)"


def peak_tflops(name: str, precision: str) -> float | None:
    """The datasheet peak for a device name and precision; None when not listed."""
    for fragment, peaks in PEAK_TFLOPS.items():  # "H100 PCIe" before "H100"
        if fragment in name:
            return peaks.get(precision)
    return None


def _sync(device: torch.device):
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


def median_seconds(fn, repeats: int, warmup: int, sync) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def count_flops(fn) -> int:
    """Floating-point operations of one call of fn (matrix products and convolutions, forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def training_step(method, ctx: StepContext, opt, scaler, precision, x, y):
    """One step as the trainer takes it: the method's loss in the training precision, backward, SGD step."""
    def step():
        with precision.autocast():
            loss = method.step(ctx, x, y)
        opt.zero_grad(set_to_none=True)
        (loss if scaler is None else scaler.scale(loss)).backward()
        if scaler is None:
            opt.step()
        else:
            scaler.step(opt)
            scaler.update()
    return step


def _peak_memory(device: torch.device) -> int | None:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return None


def run_bench(model: str = "resnet18", batch: int = 128, device: str = "auto", repeats: int = 5,
              profile: str = "paper", width: int = 0, warmup: int = 2) -> dict:
    """Measure the three training steps and the evaluation attack; project the profile's run (a dict)."""
    if model not in MODELS:
        raise ConfigError("--model", f"must be one of {', '.join(MODELS)}", model)
    if batch < 2:
        raise ConfigError("--batch", "must be >= 2", batch)
    if repeats < 1:
        raise ConfigError("--repeats", "must be >= 1", repeats)
    cfg = resolve(from_profile(profile, {"model": model, "width": width, "batch_size": batch, "device": device,
                                         "progress": False}))
    dev = pick_device(cfg.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device", "CUDA is not available on this machine (use cpu or auto)", device)
    precision = precision_of(cfg, dev)
    num_classes = dataset_defaults(cfg.dataset)["num_classes"]
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, 32, 32, generator=gen).to(dev)
    y = torch.randint(0, num_classes, (batch,), generator=gen).to(dev)
    if uses_channels_last(cfg, dev):
        x = x.contiguous(memory_format=torch.channels_last)

    def network() -> nn.Module:
        net = build_model(model, num_classes, width=cfg.width).to(dev)
        if uses_channels_last(cfg, dev):
            net = net.to(memory_format=torch.channels_last)
        return maybe_compile(net, cfg)

    torch.manual_seed(0)
    teacher = network().eval().requires_grad_(False)
    sync = _sync(dev)
    steps = {"clean": "clean", f"pgd{cfg.attack_steps}": "pgdat", "cktat": "cktat"}
    rows = {}
    for label, name in steps.items():
        student = network()
        student.train()
        opt = torch.optim.SGD(student.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        ctx = StepContext(model=student, cfg=cfg, teacher=teacher, generator=torch.Generator().manual_seed(0),
                          epochs=cfg.epochs, num_classes=num_classes)
        step = training_step(METHODS[name], ctx, opt, grad_scaler(precision), precision, x, y)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        seconds = median_seconds(step, repeats, warmup, sync)
        rows[label] = {"seconds": seconds, "images_per_s": batch / seconds, "flops": count_flops(step),
                       "peak_memory_bytes": _peak_memory(dev)}
        del student, opt, ctx
    # the evaluation attack: float32, eval mode, per attack step
    attack_steps = max(cfg.val_attack_steps, 1)
    with evaluation_precision(dev):
        t_attack = median_seconds(lambda: pgd(teacher, x, y, eps=cfg.eps, alpha=cfg.alpha, steps=attack_steps,
                                              norm=cfg.norm), repeats, 1, sync)
        with torch.no_grad():
            t_forward = median_seconds(lambda: teacher(x), repeats, 1, sync)
    name = device_name(dev)
    peak = peak_tflops(name, precision.name) if dev.type == "cuda" else None
    for row in rows.values():
        row["achieved_tflops"] = row["flops"] / row["seconds"] / 1e12
        row["fraction_of_peak"] = row["achieved_tflops"] / peak if peak else None
    report = {
        "device": name, "device_type": dev.type, "precision": precision.name, "model": model,
        "parameters": num_parameters(teacher), "batch": batch, "repeats": repeats, "profile": profile,
        "peak_tflops": peak, "steps": rows,
        "eval_attack_step_s_per_image": t_attack / attack_steps / batch, "forward_s_per_image": t_forward / batch,
        "process_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "versions": versions(),
    }
    report["projection"] = project(cfg, report)
    return report


def project(cfg, report: dict) -> dict:
    """Seconds of one epoch of each phase and of the whole run of `cfg` (train set minus validation split)."""
    n_train, n_test = DATASET_SIZES[cfg.dataset]
    n_train -= cfg.val_size
    n_train = min(cfg.train_limit, n_train) if cfg.train_limit else n_train
    n_test = min(cfg.test_limit, n_test) if cfg.test_limit else n_test
    fwd, step = report["forward_s_per_image"], report["eval_attack_step_s_per_image"]
    rate = {k: v["images_per_s"] for k, v in report["steps"].items()}
    teacher_epoch = n_train / rate["clean"] + cfg.val_size * fwd
    student_epoch = n_train / rate["cktat"] + cfg.val_size * (fwd + cfg.val_attack_steps * step)
    test_eval = n_test * (fwd + cfg.eval_steps * step)  # natural + PGD-eval_steps on the test set
    total = cfg.teacher_epochs * teacher_epoch + cfg.epochs * student_epoch + 3 * test_eval
    return {"train_images": n_train, "teacher_epoch_s": teacher_epoch, "cktat_epoch_s": student_epoch,
            "test_evaluation_s": test_eval, "teacher_epochs": cfg.teacher_epochs, "epochs": cfg.epochs,
            "run_s": total}


def format_report(r: dict) -> str:
    """The bench's figures as printed by `cktat bench`."""
    lines = [f"{r['model']} ({r['parameters']:,} parameters), batch {r['batch']}, on {r['device']}, "
             f"training precision {r['precision']}"]
    lines.append(f"  {'step':<8}{'images/s':>10}{'ms/step':>10}{'GFLOP/step':>12}{'TFLOPS':>9}"
                 f"{'of peak':>9}{'peak mem':>11}")
    for label, s in r["steps"].items():
        frac = "-" if s["fraction_of_peak"] is None else f"{100 * s['fraction_of_peak']:.1f}%"
        mem = "-" if s["peak_memory_bytes"] is None else f"{s['peak_memory_bytes'] / 2**20:.0f} MiB"
        lines.append(f"  {label:<8}{s['images_per_s']:>10.1f}{1000 * s['seconds']:>10.1f}{s['flops'] / 1e9:>12.2f}"
                     f"{s['achieved_tflops']:>9.3f}{frac:>9}{mem:>11}")
    if r["peak_tflops"] is None:
        lines.append("  peak arithmetic rate of this device: not listed (no fraction of peak)")
    else:
        lines.append(f"  datasheet peak ({r['precision']}): {r['peak_tflops']:.1f} TFLOPS")
    lines.append(f"  process peak resident memory: {r['process_peak_rss_bytes'] / 2**20:.0f} MiB")
    p = r["projection"]
    lines.append(f"  projected ({r['profile']} profile, {p['train_images']} training images): teacher epoch "
                 f"{duration(p['teacher_epoch_s'])}, CKTAT epoch {duration(p['cktat_epoch_s'])}, whole run "
                 f"({p['teacher_epochs']} + {p['epochs']} epochs and the test evaluations) {duration(p['run_s'])}")
    return "\n".join(lines)

"""Overhead of the library's hot paths against hand-written PyTorch doing the same arithmetic.

1. One PGD step of `cktat_core.attacks.pgd` relative to one forward + backward to the input of the network
   (the work a hand-written step cannot avoid). Target: within 10% (ratio <= 1.10). Measured twice: as the
   library runs it (on `models.fold_batchnorm`'s view, BatchNorms folded into the convolutions, which does
   less work than the network itself: the ratio falls below 1) and with `fold_bn=False`, the same modules as
   the reference, which isolates the overhead of the attack loop.
2. One CKTAT training step through the trainer's code path (`methods.cktat_step`: the StepContext attack,
   teacher logits, two student forwards, `losses.cktat_loss`; then zero_grad / backward / SGD step) relative
   to a minimal hand-written loop doing the same arithmetic on the unfolded network. Target: within 10%.

Timings are interleaved (ours, reference, ours, ...) and summarised by their medians, so a slow moment of
the machine hits both sides. Run: `python benchmarks/bench_core.py [--model small_cnn] [--batch 128]`.
Writes benchmarks/results/core_<device>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from cktat_core.attacks import pgd
from cktat_core.config import from_profile, resolve
from cktat_core.methods import METHODS, StepContext
from cktat_core.models import build_model, num_parameters

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(fn, sync) -> float:
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def interleaved(*fns, repeats: int, sync) -> tuple[float, ...]:
    """Median seconds of each function, the calls taking turns."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for t, fn in zip(times, fns):
            t.append(timed(fn, sync))
    return tuple(statistics.median(t) for t in times)


def bench_pgd_step(model, x, y, eps, alpha, steps, repeats, sync):
    model.eval()

    def forward_backward_to_input():  # the work one PGD step cannot avoid, `steps` times
        for _ in range(steps):
            d = torch.zeros_like(x, requires_grad=True)
            g, = torch.autograd.grad(F.cross_entropy(model(x + d), y, reduction="sum"), d)

    def ours():
        pgd(model, x, y, eps=eps, alpha=alpha, steps=steps)

    def ours_unfolded():
        pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, fold_bn=False)

    for _ in range(2):
        ours(), ours_unfolded(), forward_backward_to_input()
    t_ours, t_plain, t_ref = interleaved(ours, ours_unfolded, forward_backward_to_input, repeats=repeats, sync=sync)
    return {"pgd_step_s": t_ours / steps, "pgd_step_unfolded_s": t_plain / steps, "forward_backward_s": t_ref / steps,
            "ratio": t_ours / t_ref, "ratio_unfolded": t_plain / t_ref}


def hand_written_cktat_step(student, teacher, opt, x, y, eps, alpha, steps, tau, beta):
    """The same arithmetic as the library's CKTAT step, written out with no abstractions."""
    student.eval()
    delta = torch.empty_like(x).uniform_(-eps, eps)
    delta = (x + delta).clamp(0, 1) - x
    for _ in range(steps):
        delta.requires_grad_(True)
        g, = torch.autograd.grad(F.cross_entropy(student(x + delta), y, reduction="sum"), delta)
        delta = (delta.detach() + alpha * g.sign()).clamp(-eps, eps)
        delta = (x + delta).clamp(0, 1) - x
    x_adv = (x + delta).detach()
    student.train()
    with torch.no_grad():
        p_t = F.softmax(teacher(x) / tau, 1)
    log_adv = F.log_softmax(student(x_adv), 1)
    log_clean = F.log_softmax(student(x), 1)
    loss = F.kl_div(log_adv, p_t, reduction="batchmean") + beta * F.kl_div(log_adv, log_clean.exp(),
                                                                               reduction="batchmean")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def bench_cktat_step(name, width, x, y, eps, alpha, steps, repeats, sync, device):
    cfg = resolve(from_profile("smoke", {"eps": eps, "alpha": alpha, "attack_steps": steps, "tau": 5.0,
                                         "beta": 6.0, "random_start": "uniform"}))
    teacher = build_model(name, 10, width=width).to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    students = [build_model(name, 10, width=width).to(device) for _ in range(2)]
    opts = [torch.optim.SGD(s.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4) for s in students]
    ctx = StepContext(model=students[0], cfg=cfg, teacher=teacher)
    step = METHODS["cktat"].step

    def ours():  # the body of train_phase's inner loop
        students[0].train()
        loss = step(ctx, x, y)
        opts[0].zero_grad(set_to_none=True)
        loss.backward()
        opts[0].step()

    def reference():
        hand_written_cktat_step(students[1], teacher, opts[1], x, y, eps, alpha, steps, cfg.tau, cfg.beta)

    for _ in range(2):
        ours(), reference()
    t_ours, t_ref = interleaved(ours, reference, repeats=repeats, sync=sync)
    return {"library_step_s": t_ours, "hand_written_step_s": t_ref, "ratio": t_ours / t_ref}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="small_cnn")
    ap.add_argument("--width", type=int, default=0)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    model = build_model(args.model, 10, width=args.width).to(device)
    x = torch.rand(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    eps, alpha = 8 / 255, 2 / 255
    res = {
        "machine": {"device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or
                    platform.machine(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version()},
        "setup": {"model": args.model, "parameters": num_parameters(model), "batch": args.batch,
                  "pgd_steps": args.steps, "repeats": args.repeats},
        "pgd": bench_pgd_step(model, x, y, eps, alpha, args.steps, args.repeats, sync),
        "cktat_step": bench_cktat_step(args.model, args.width, x, y, eps, alpha, args.steps, args.repeats, sync,
                                       device),
    }
    p, c = res["pgd"], res["cktat_step"]
    lines = [
        f"# Core overhead benchmark ({device.type})",
        "",
        f"Machine: {res['machine']['device']}, {res['machine']['cpu_count']} CPUs, torch {res['machine']['torch']} "
        f"({res['machine']['torch_threads']} threads). Model: {args.model} ({res['setup']['parameters']:,} "
        f"parameters), batch {args.batch}, PGD-{args.steps}, median of {args.repeats} interleaved repeats.",
        "",
        "| measurement | library | reference | ratio | target |",
        "| --- | --- | --- | --- | --- |",
        f"| one PGD step (as the library runs it, BatchNorm folded) vs one forward+backward to the input | "
        f"{p['pgd_step_s'] * 1e3:.1f} ms | {p['forward_backward_s'] * 1e3:.1f} ms | {p['ratio']:.3f} | <= 1.10 |",
        f"| one PGD step on the same modules (`fold_bn=False`) vs one forward+backward to the input | "
        f"{p['pgd_step_unfolded_s'] * 1e3:.1f} ms | {p['forward_backward_s'] * 1e3:.1f} ms | "
        f"{p['ratio_unfolded']:.3f} | <= 1.10 |",
        f"| one CKTAT training step vs a hand-written loop | {c['library_step_s'] * 1e3:.1f} ms | "
        f"{c['hand_written_step_s'] * 1e3:.1f} ms | {c['ratio']:.3f} | <= 1.10 |",
        "",
        "The reference loops run the network as it is; the library's attacks run on `fold_batchnorm`'s view of "
        "it (the same function, each BatchNorm folded into the convolution before it), which is why its ratios "
        "can fall below 1. The `fold_bn=False` row measures the attack loop's own overhead.",
        "",
        "Generated by `python benchmarks/bench_core.py`.",
    ]
    print("\n".join(lines))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    stem = os.path.join(HERE, "results", f"core_{device.type}")
    with open(stem + ".json", "w") as fh:
        json.dump(res, fh, indent=1)
    with open(stem + ".md", "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

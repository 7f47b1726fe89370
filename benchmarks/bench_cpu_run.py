"""Where the time of a real-image CPU run goes, and how close a training step is to its unavoidable arithmetic.

For the `cpu` profile's network and batch (PGD-AT, and CKTAT's step beside it), measured in one process:

1. One training step of the trainer's code path (the method's step, then zero_grad / backward / SGD step) against
   (attack steps + 1) forward+backward passes of the same network: the attack needs one pass per step (to the
   input only), the update one more (to the weights). Ratio below 1: the attack runs on the BatchNorm-folded view
   and takes no weight gradients.
2. The same step in float32 and under bf16 autocast, with and without channels-last, and compiled with
   `torch.compile` (bf16): each as images per second and as a ratio to the profile's setting.
3. The batch preparation (crop + flip on the CPU, channels-last copy) per step.
4. A finished run of the profile trained by one process (`one_process_run`: PGD-AT's first, when there is one)
   split into training, per-epoch validation, final test evaluation and the rest, from its result.json; and
   AutoAttack's two versions timed on PGD-AT's checkpoint (the first `--aa-images` test images): what the standard version would add to the book's attack suites
   (1,000 images, 13 models), which is why the `cpu` profile runs the `apgd` version.

Timings are medians of interleaved repeats after a warm-up. Run: `python benchmarks/bench_cpu_run.py [--repeats 7]`.
Writes benchmarks/results/cpu_run.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from machine import interleaved_seconds, machine  # noqa: E402

from cktat_core.config import from_profile, resolve  # noqa: E402
from cktat_core.data import augment  # noqa: E402
from cktat_core.methods import METHODS, StepContext  # noqa: E402
from cktat_core.models import build_model, num_parameters  # noqa: E402


def training_step(cfg, method: str, x, y, precision: str, channels_last: bool, compiled: bool = False):
    """A closure running one training step of `method` as `train.train_phase` does."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(cfg.model, 10, width=cfg.width).to(memory_format=fmt)
    teacher = build_model(cfg.model, 10, width=cfg.width).to(memory_format=fmt).eval() if method == "cktat" else None
    if compiled:
        model.compile()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    ctx = StepContext(model=model, cfg=cfg, teacher=teacher, generator=torch.Generator().manual_seed(0))
    xb = x.contiguous(memory_format=fmt)
    dtype = torch.bfloat16 if precision == "bf16" else None

    def step():
        model.train()
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = METHODS[method].step(ctx, xb, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def forward_backward(cfg, x, y, precision: str):
    """One forward+backward pass of the network to its input and weights (the unit a step is counted in)."""
    torch.manual_seed(0)
    model = build_model(cfg.model, 10, width=cfg.width).to(memory_format=torch.channels_last)
    xb = x.contiguous(memory_format=torch.channels_last)
    dtype = torch.bfloat16 if precision == "bf16" else None

    def fb():
        xi = xb.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(xi)
        F.cross_entropy(out.float(), y).backward()
    return fb


def one_process_run(runs: str) -> str | None:
    """The result file of a finished student run of the profile trained start to end by one process, with its
    validation timed (PGD-AT's seeds first): a resumed or re-evaluated run's wall time is partly reconstructed."""
    names = ["pgdat", "pgdat_seed1", "pgdat_seed2"] + sorted(os.listdir(runs) if os.path.isdir(runs) else [])
    for name in names:
        path = os.path.join(runs, name, "result.json")
        if name.startswith("teacher_") or not os.path.isfile(path):
            continue
        with open(path) as fh:
            student = json.load(fh).get("student") or {}
        if student.get("resumed_at_epoch") == 0 and all("validation_seconds" in h for h in student["history"]):
            return path
    return None


def run_split(path: str | None) -> dict | None:
    """A finished run's wall time split into training, per-epoch validation, final evaluation and the rest
    (loading the data, the teacher's evaluation)."""
    if path is None:
        return None
    with open(path) as fh:
        res = json.load(fh)
    hist = res["student"]["history"]
    train = sum(h["train_seconds"] for h in hist)
    validation = sum(h["validation_seconds"] for h in hist)
    evaluations = [res["student"]["last"]] + ([res["student"]["best"]] if res["student"].get("best") and
                                              res["student"]["best"]["epoch"] != len(hist) else [])
    evaluation = sum(a.get("seconds", 0.0) for ev in evaluations for a in ev["test"]["attacks"].values())
    wall = res["wall_seconds"]
    return {"run": os.path.relpath(os.path.dirname(path), ROOT), "epochs": len(hist), "wall": wall, "train": train,
            "validation": validation, "final_evaluation": evaluation, "rest": wall - train - validation - evaluation,
            "test_images": res["student"]["last"]["test"]["n"]}


def autoattack_cost(checkpoint: str, n: int) -> dict | None:
    """Seconds per test image of AutoAttack's `apgd` and `standard` versions on a trained checkpoint of the profile,
    and what each would cost for the book's attack suites (1,000 images, 13 models)."""
    if not n or not os.path.isfile(checkpoint):
        return None
    from cktat_core.eval_checkpoint import evaluate_checkpoint

    out = {"images": n}
    for version in ("apgd", "standard"):
        t0 = time.perf_counter()
        res = evaluate_checkpoint(checkpoint, ["natural", "aa"], limit=n, aa_version=version, progress=False,
                                  batch_size=250)
        seconds = time.perf_counter() - t0
        out[version] = {"seconds": seconds, "per_image": seconds / n, "accuracy": res["attacks"]["aa"]["accuracy"],
                        "book_hours": seconds / n * 1000 * 13 / 3600}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    ap.add_argument("--aa-images", type=int, default=100, help="test images for the AutoAttack timing (0: skip)")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    cfg = resolve(from_profile("cpu"))
    b, k = cfg.batch_size, cfg.attack_steps
    x, y = torch.rand(b, 3, 32, 32), torch.randint(0, 10, (b,))
    variants = {
        "pgdat bf16 channels-last (profile)": ("pgdat", "bf16", True, False),
        "pgdat fp32 channels-last": ("pgdat", "fp32", True, False),
        "pgdat bf16 contiguous": ("pgdat", "bf16", False, False),
        "cktat bf16 channels-last (profile)": ("cktat", "bf16", True, False),
    }
    if not args.no_compile:
        variants["pgdat bf16 channels-last, torch.compile"] = ("pgdat", "bf16", True, True)
    fns, compile_error = {}, None
    for name, (m, prec, cl, comp) in variants.items():
        try:
            fn = training_step(cfg.replace(method=m), m, x, y, prec, cl, comp)
            for _ in range(3 if comp else 2):  # warm-up (compilation happens here)
                fn()
            fns[name] = fn
        except Exception as e:  # torch.compile needs a working C++ toolchain; report, do not hide
            compile_error = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    fns["one forward+backward, bf16"] = forward_backward(cfg, x, y, "bf16")
    fns["one forward+backward, fp32"] = forward_backward(cfg, x, y, "fp32")
    gen = torch.Generator().manual_seed(0)
    fns["batch preparation (crop+flip, channels-last)"] = lambda: augment(x, gen).contiguous(
        memory_format=torch.channels_last)
    for fn in fns.values():
        fn()
    med = {k: statistics.median(v) for k, v in interleaved_seconds(fns, args.repeats).items()}
    profile_step = med["pgdat bf16 channels-last (profile)"]
    rows = []
    for name, s in med.items():
        row = {"measurement": name, "ms": 1000 * s, "images/s": b / s}
        if name in variants:
            prec = variants[name][1]
            row["step / ((k+1) passes)"] = s / ((k + 1) * med[f"one forward+backward, {prec}"])
            row["vs profile"] = profile_step / s
        rows.append(row)
    split = run_split(one_process_run(os.path.join(ROOT, "results", "cpu", "runs")))
    aa = autoattack_cost(os.path.join(ROOT, "results", "cpu", "runs", "pgdat", "student", "last.pt"), args.aa_images)
    out = {"machine": machine(), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "model": cfg.model, "width": cfg.width, "parameters": num_parameters(build_model(cfg.model, 10, width=cfg.width)),
           "batch": b, "attack_steps": k, "rows": rows, "compile_error": compile_error, "run_split": split, "autoattack": aa}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "cpu_run.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    md = markdown(out)
    with open(os.path.join(HERE, "results", "cpu_run.md"), "w") as fh:
        fh.write(md)
    print(md)
    return 0


def markdown(out: dict) -> str:
    m = out["machine"]
    lines = [f"# Where a real-image CPU run spends its time", "",
             f"Machine: {m['cpu']}, {m['cores']} cores; torch {out['torch']} ({out['threads']} threads). Network: "
             f"{out['model']} at width {out['width']} ({out['parameters']:,} parameters), batch {out['batch']}, "
             f"PGD-{out['attack_steps']} training attack (the `cpu` profile). Medians of interleaved repeats.", "",
             "| measurement | ms | images/s | step / ((k+1) passes) | vs profile |", "| --- | --- | --- | --- | --- |"]
    f = lambda v, d=2: "-" if v is None else f"{v:.{d}f}"
    for r in out["rows"]:
        lines.append(f"| {r['measurement']} | {f(r['ms'], 1)} | {f(r['images/s'], 0)} | "
                     f"{f(r.get('step / ((k+1) passes)'))} | {f(r.get('vs profile'))} |")
    lines += ["", "*step / ((k+1) passes)*: a training step against k+1 forward+backward passes of the same network "
              "in the same precision (k attack steps to the input, one update to the weights): the arithmetic no "
              "implementation of the step avoids. Below 1 because the attack runs on the BatchNorm-folded network "
              "and takes no weight gradients. *vs profile*: how many times faster the profile's setting is."]
    if out["compile_error"]:
        lines += ["", f"`torch.compile` could not be measured here: {out['compile_error']}."]
    s = out["run_split"]
    if s:
        lines += ["", f"A finished run of the profile, `{s['run']}` ({s['epochs']} epochs, final evaluation on "
                  f"{s['test_images']:,} test images): {s['wall']:.0f} s in all, of which training "
                  f"{s['train']:.0f} s ({100 * s['train'] / s['wall']:.0f}%), the final test evaluation "
                  f"{s['final_evaluation']:.0f} s ({100 * s['final_evaluation'] / s['wall']:.0f}%, float32), the "
                  f"per-epoch validation {s['validation']:.0f} s ({100 * s['validation'] / s['wall']:.0f}%) and the "
                  f"rest (loading the data) {s['rest']:.0f} s ({100 * s['rest'] / s['wall']:.0f}%)."]
    a = out.get("autoattack")
    if a:
        lines += ["", f"AutoAttack on the first {a['images']} test images of PGD-AT's checkpoint (`results/cpu/runs/pgdat`): the `apgd` version "
                  f"(APGD-CE, APGD-T) {a['apgd']['per_image']:.2f} s per image ({a['apgd']['accuracy']:.1f}% robust), the "
                  f"`standard` version (adding FAB-T and Square) {a['standard']['per_image']:.2f} s per image "
                  f"({a['standard']['accuracy']:.1f}%). For the book's attack suites (1,000 images, 13 models) that is "
                  f"{a['apgd']['book_hours']:.1f} h against {a['standard']['book_hours']:.1f} h: the `cpu` profile runs "
                  f"the `apgd` version."]
    lines += ["", "Generated by `python benchmarks/bench_cpu_run.py`."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

"""PGD-20 throughput of `cktat_core.attacks.pgd` against `torchattacks.PGD`, and the robust accuracy of both.

Same model, same batch, same eps / step / steps, both from a uniform random start, both in eval() mode. Our
`pgd` runs on `models.fold_batchnorm(model)` (BatchNorms folded into the convolutions before them: the same
function with less work per forward and backward pass), which is where its lead comes from; the two attacks'
robust accuracies show that it attacks the same function.
Timings are interleaved (ours, theirs, ours, ...) after warm-up calls and summarised by their medians, so
a slow moment of the machine hits both sides. Target: throughput ratio ours / theirs >= 1.0, and robust
accuracies equal within noise (`cktat_core.checks.noise_margin`: two binomial standard errors of the
difference, at least one image).

Two models:
- `small_cnn` trained cleanly for a few seconds on the multi-view dataset (SPEC 6), attacked at a quarter
  of the dataset's eps, where part of the test set survives PGD-20, so the accuracy comparison means
  something; timed at batch 256.
- `resnet18` (the CIFAR ResNet-18 of the paper's tables, randomly initialised: timing only), batch 32.

torchattacks is not a dependency of the library or its tests. Install it with
    pip install --no-deps torchattacks scipy
(torchattacks 3.5 imports scipy at import time; its other requirements are not needed here.)
Run: `python benchmarks/bench_attacks.py [--repeats 9] [--skip-resnet]`.
Writes benchmarks/results/attacks_<device>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys

import torch
import torch.nn.functional as F

from cktat_core.attacks import pgd
from cktat_core.data import MULTIVIEW, batches, load_splits
from cktat_core.checks import noise_margin
from cktat_core.models import build_model, num_parameters
from machine import cpu_model, interleaved_seconds

HERE = os.path.dirname(os.path.abspath(__file__))


def machine() -> dict:
    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform()}


def train_small_cnn(seed: int = 0, epochs: int = 6):
    """The clean small CNN of the tests: 1000 multi-view images, a few seconds on a CPU."""
    torch.manual_seed(seed)
    s = load_splits("multiview", val_size=200, train_limit=1000)
    model = build_model("small_cnn", 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for x, y in batches(s.train, 100, g):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval(), s.test


def robust_accuracy(model, attack, x, y, batch: int) -> tuple[int, int]:
    correct = 0
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        with torch.no_grad():
            clean = model(xb).argmax(1) == yb
        x_adv = attack(xb, yb)
        with torch.no_grad():
            correct += int((clean & (model(x_adv).argmax(1) == yb)).sum())
    return correct, len(x)


def compare(name, model, x_time, y_time, eps, alpha, steps, warmup, repeats, torchattacks, acc_data=None):
    model.eval()
    theirs_atk = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)

    def ours(x=x_time, y=y_time):
        return pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, norm="linf", loss="ce", random_start="uniform")

    def theirs(x=x_time, y=y_time):
        return theirs_atk(x, y)

    times = interleaved_seconds({"ours": ours, "torchattacks": theirs}, repeats, warmup)
    med = {k: statistics.median(v) for k, v in times.items()}
    batch = len(x_time)
    row = {"model": name, "parameters": num_parameters(model), "batch": batch, "steps": steps, "eps": eps,
           "alpha": alpha, "repeats": repeats, "warmup": warmup,
           "seconds_median": med, "seconds_all": times,
           "images_per_second": {k: batch / v for k, v in med.items()},
           "ratio": med["torchattacks"] / med["ours"]}
    if acc_data is not None:
        x, y = acc_data
        torch.manual_seed(0)
        c_ours, n = robust_accuracy(model, lambda a, b: ours(a, b), x, y, batch)
        torch.manual_seed(0)
        c_theirs, _ = robust_accuracy(model, lambda a, b: theirs(a, b), x, y, batch)
        a_ours, a_theirs = 100 * c_ours / n, 100 * c_theirs / n
        margin = noise_margin(a_ours, a_theirs, n)
        with torch.no_grad():
            clean = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, n, batch))
        row["accuracy"] = {"images": n, "clean": 100 * clean / n, "ours": a_ours, "torchattacks": a_theirs,
                           "difference": a_ours - a_theirs, "noise": margin,
                           "agree": abs(a_ours - a_theirs) <= margin}
    return row


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = ["# PGD-20 throughput: cktat_core vs torchattacks (cpu)", "",
             f"Machine: {m['cpu']}, {m['cpus']} CPUs, torch {m['torch']} ({m['torch_threads']} threads), "
             f"torchattacks {res['torchattacks']}. Same model, batch, eps, step and steps on both sides, uniform "
             f"random start, eval() mode; median of interleaved repeats after warm-up. Our PGD attacks "
             f"`models.fold_batchnorm`'s view of the model (each BatchNorm folded into the convolution before it: "
             f"the same function, less work per step); torchattacks runs the modules as they are.", "",
             "| model | batch | ours (img/s) | torchattacks (img/s) | ratio ours/theirs | target |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in res["rows"]:
        ips = r["images_per_second"]
        lines.append(f"| {r['model']} ({r['parameters']:,} parameters) | {r['batch']} | {ips['ours']:.1f} | "
                     f"{ips['torchattacks']:.1f} | {r['ratio']:.3f} | >= 1.0 |")
    lines += ["", ("Robust accuracy under PGD-20, both attacks from seed 0, of the clean small_cnn of the tests (trained for "
               "a few seconds on 1,000 multi-view images) at a quarter of that dataset's eps, where part of the test set "
               "survives the attack, so the two attacks' accuracies can be compared:"), "",
              "| model | images | eps | clean | ours | torchattacks | difference | noise | agree |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in res["rows"]:
        a = r.get("accuracy")
        if a:
            lines.append(f"| {r['model']} | {a['images']} | {r['eps']:.5f} | {a['clean']:.2f}% | {a['ours']:.2f}% | "
                         f"{a['torchattacks']:.2f}% | {a['difference']:+.2f} | {a['noise']:.2f} | "
                         f"{'yes' if a['agree'] else 'NO'} |")
    lines += ["", "Generated by `python benchmarks/bench_attacks.py`; figures from "
              f"`{os.path.basename(res['json'])}`."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=256, help="small_cnn batch")
    p.add_argument("--resnet-batch", type=int, default=32)
    p.add_argument("--resnet-repeats", type=int, default=3)
    p.add_argument("--skip-resnet", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: min(2, cpus))")
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    args = p.parse_args(argv)
    try:
        import torchattacks
    except ImportError as e:
        what = "torchattacks is not installed" if e.name == "torchattacks" else \
            f"torchattacks cannot be imported without {e.name}"
        print(f"bench_attacks: {what}; install it with `pip install --no-deps torchattacks scipy` (it imports scipy; "
              "neither is a dependency of cktat_core)", file=sys.stderr)
        return 0
    torch.set_num_threads(args.threads or max(1, min(2, os.cpu_count() or 1)))

    rows = []
    model, test = train_small_cnn()
    eps = MULTIVIEW.eps / 4
    rows.append(compare("small_cnn", model, test.x[:args.batch], test.y[:args.batch], eps, eps / 4, args.steps,
                        args.warmup, args.repeats, torchattacks, acc_data=(test.x, test.y)))
    if not args.skip_resnet:
        torch.manual_seed(0)
        rn = build_model("resnet18", 10).eval()
        x = torch.rand(args.resnet_batch, 3, 32, 32)
        y = torch.randint(0, 10, (args.resnet_batch,))
        rows.append(compare("resnet18", rn, x, y, 8 / 255, 2 / 255, args.steps, 1, args.resnet_repeats, torchattacks))

    res = {"benchmark": "pgd20_vs_torchattacks", "machine": machine(),
           "torchattacks": getattr(torchattacks, "__version__", "?"), "rows": rows}
    os.makedirs(args.out, exist_ok=True)
    res["json"] = os.path.join(args.out, "attacks_cpu.json")
    with open(res["json"], "w") as fh:
        json.dump({k: v for k, v in res.items() if k != "json"}, fh, indent=1)
    md = markdown(res)
    with open(os.path.join(args.out, "attacks_cpu.md"), "w") as fh:
        fh.write(md)
    print(md)
    ok = all(r["ratio"] >= 1.0 for r in rows) and all(r["accuracy"]["agree"] for r in rows if "accuracy" in r)
    print("targets met" if ok else "TARGET MISSED: see the table above")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Is the channels_last memory format faster for a PGD training step on this device?

One step = PGD-5 on the input (the network in eval mode, BatchNorm folded, as the trainer attacks) and one SGD
update on the adversarial batch, for small_cnn at widths 4, 8 and 16 (batch 128) and ResNet-18 (batch 32), with the
network in the default (contiguous) format and in channels_last; inputs arrive contiguous, as the trainer's batches
do. Prints milliseconds per step and the ratio contiguous / channels_last (> 1: channels_last is faster), measured
in one process, and writes `benchmarks/results/channels_last_<device>.md`. Run: `python benchmarks/bench_channels_last.py`.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

from cktat_core.attacks import pgd
from cktat_core.models import build_model
from machine import cpu_model

CASES = [("small_cnn", 4, 128, 10), ("small_cnn", 8, 128, 10), ("small_cnn", 16, 128, 10), ("resnet18", 0, 32, 3)]


def step_ms(name: str, width: int, batch: int, repeats: int, channels_last: bool, device: str) -> float:
    torch.manual_seed(0)
    model = build_model(name, 10, width=width).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.rand(batch, 3, 32, 32, device=device), torch.randint(0, 10, (batch,), device=device)

    def step():
        x_adv = pgd(model, x, y, eps=8 / 255, alpha=2 / 255, steps=5)
        model.train()
        loss = F.cross_entropy(model(x_adv), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"{cpu_model()}, {torch.get_num_threads()} threads"
    lines = [f"PGD-5 training step, torch {torch.__version__}, {where}:", "",
             "| network | batch | contiguous (ms) | channels_last (ms) | ratio |", "| --- | --- | --- | --- | --- |"]
    for name, width, batch, repeats in CASES:
        plain = step_ms(name, width, batch, repeats, False, args.device)
        last = step_ms(name, width, batch, repeats, True, args.device)
        label = f"{name} (width {width})" if width else name
        lines.append(f"| {label} | {batch} | {plain:.1f} | {last:.1f} | {plain / last:.2f} |")
        print(lines[-1], flush=True)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", f"channels_last_{args.device}.md")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines[:1]) + f"\nwritten to {out}")


if __name__ == "__main__":
    main()

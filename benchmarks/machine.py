"""The machine a benchmark ran on, for its results file: the CPU's model (from /proc/cpuinfo where it exists) and
its core count; and how the benchmarks take their timings (`interleaved_seconds`). Torch-free, so `bench_reproduce.py` can use it without importing torch. The library's own
`cktat_core.bench.device_name` names the device for `cktat bench`."""

from __future__ import annotations

import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cktat_core.host import cpu_model  # noqa: E402  (torch-free)


def machine() -> dict:
    """CPU model, cores and Python version."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()}


def interleaved_seconds(fns: dict, repeats: int, warmup: int = 0) -> dict[str, list[float]]:
    """Seconds of each call of each function, the functions taking turns (a slow moment of the machine hits them
    all alike), after `warmup` untimed rounds."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return times

"""The machine a benchmark ran on, for its results file: the CPU's model (from /proc/cpuinfo where it exists) and
its core count. Torch-free, so `bench_reproduce.py` can use it without importing torch. The library's own
`cktat_core.bench.device_name` names the device for `cktat bench`."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's model name, else what `platform` knows."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return cpu


def machine() -> dict:
    """CPU model, cores and Python version."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()}

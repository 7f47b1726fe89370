"""Where and how a run executes: the device, the training precision, the library's versions.

Training may run under autocast (bf16 on CUDA when `cfg.amp`); every test evaluation runs in float32
(`evaluation_precision`), whatever the training precision, so reported numbers never depend on it.
"""

from __future__ import annotations

import contextlib
import platform

import torch

from . import __version__


def pick_device(name: str) -> torch.device:
    """"auto" -> CUDA when available, else the CPU; any other name is taken as given ("cpu", "cuda:1")."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(cfg, device: torch.device):
    """The training precision: bf16 autocast on CUDA when cfg.amp; a no-op elsewhere."""
    if cfg.amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def versions() -> dict:
    """The versions a result was produced with (written into every result.json)."""
    return {"cktat_core": __version__, "torch": torch.__version__, "python": platform.python_version()}

"""Where and how a run executes: the device, the training precision, compilation, the library's versions.

Training precision (`training_precision`), chosen per device so the default is the fastest one that is
correct there:
- CUDA with bf16 support (compute capability 8.0 and newer: A100, L4, H100, ...): bf16 autocast. bf16 has
  float32's exponent range, so no loss scaling is needed.
- older CUDA cards (a Colab T4, V100): fp16 autocast with a gradient scaler (`torch.amp.GradScaler`), which
  keeps small gradients from underflowing fp16's range (it reads one overflow flag back per step, the one
  host synchronisation of an fp16 step).
- a CPU with native bf16 instructions (AVX512-BF16 or AMX, `cpu_has_bf16`): bf16 autocast. On two AMD EPYC
  (Zen 4) cores a PGD-5 training step of small_cnn runs 1.6x (width 32) to 2x (width 64) faster in it than in
  float32 (`benchmarks/bench_cpu_run.py`). Other CPUs emulate bf16, slower than float32: float32 there.
`amp=false` forces float32 everywhere; `amp_dtype` forces bf16 or fp16 on CUDA (on a CPU only bf16 exists).

Training attacks run inside the training step and so in the training precision (their logits are widened to
float32 before the loss). Every evaluation (the per-epoch validation and the final test evaluation) runs in
float32 with autocast switched off (`evaluation_precision`), whatever the training precision, so reported
numbers never depend on it.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

import torch

from . import __version__
from .host import cores, cpu_model
from .errors import ConfigError

AMP_DTYPES = ("auto", "bf16", "fp16")


def pick_device(name: str) -> torch.device:
    """"auto" -> CUDA when available, else the CPU; any other name is taken as given ("cpu", "cuda:1")."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass(frozen=True)
class Precision:
    """The arithmetic of a training step: `dtype` None is float32 (no autocast); `scaler` asks for a GradScaler."""

    dtype: torch.dtype | None
    scaler: bool
    device_type: str

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def autocast(self):
        """The autocast context of a training step (a disabled one for float32)."""
        if self.dtype is None:
            return torch.autocast(self.device_type, enabled=False)
        return torch.autocast(self.device_type, dtype=self.dtype)


def cuda_capability(device: torch.device) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX tiles), so that CPU autocast pays off."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def training_precision(amp: bool, amp_dtype: str, device: torch.device,
                       capability: tuple[int, int] | None = None, cpu_bf16: bool | None = None) -> Precision:
    """The training precision for `device` (see the module docstring). `capability` (major, minor) is the CUDA
    card's; it is read from the device when not given. `cpu_bf16`: whether the CPU has bf16 instructions (read
    from it when not given)."""
    if amp_dtype not in AMP_DTYPES:
        raise ConfigError("amp_dtype", f"must be one of {', '.join(AMP_DTYPES)}", amp_dtype)
    if not amp or device.type not in ("cuda", "cpu"):
        return Precision(None, False, device.type)
    if device.type == "cpu":
        native = cpu_has_bf16() if cpu_bf16 is None else cpu_bf16
        return Precision(torch.bfloat16 if native and amp_dtype != "fp16" else None, False, "cpu")
    if amp_dtype == "auto":
        major, _ = capability if capability is not None else cuda_capability(device)
        amp_dtype = "bf16" if major >= 8 else "fp16"
    if amp_dtype == "bf16":
        return Precision(torch.bfloat16, False, "cuda")
    return Precision(torch.float16, True, "cuda")


def precision_of(cfg, device: torch.device) -> Precision:
    """`training_precision` for a config (fields amp, amp_dtype)."""
    return training_precision(cfg.amp, getattr(cfg, "amp_dtype", "auto"), device)


def autocast(cfg, device: torch.device):
    """The training precision's autocast context (bf16 or fp16 on CUDA when cfg.amp; disabled elsewhere)."""
    return precision_of(cfg, device).autocast()


def evaluation_precision(device: torch.device | str = "cuda"):
    """Autocast switched off: evaluation always runs in float32, also when called from inside a training step."""
    kind = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
    return torch.autocast(kind, enabled=False)


def grad_scaler(precision: Precision) -> "torch.amp.GradScaler | None":
    """A GradScaler for fp16 training, None otherwise."""
    return torch.amp.GradScaler(precision.device_type) if precision.scaler else None


def uses_channels_last(cfg, device: torch.device) -> bool:
    """channels_last memory format when cfg.channels_last, on every device: with torch 2.13 a PGD-5 training step on
    two CPU cores runs faster in it for every network measured (1.1x for ResNet-18 to 1.75x for small_cnn at width 4:
    `benchmarks/bench_channels_last.py`, results in `benchmarks/results/channels_last_cpu.md`)."""
    return bool(cfg.channels_last)


def uses_device_data(cfg, device: torch.device) -> bool:
    """The on-device batch source (`device_data`): cfg.device_data, or when it is None (auto), on CUDA only."""
    choice = getattr(cfg, "device_data", None)
    return device.type == "cuda" if choice is None else bool(choice)


def maybe_compile(model: torch.nn.Module, cfg) -> torch.nn.Module:
    """`model.compile()` in place when cfg.compile (parameter names and state_dict keys are unchanged)."""
    if getattr(cfg, "compile", False):
        model.compile()
    return model


def machine(device: torch.device | str = "cpu") -> str:
    """The machine a result was timed on (written into every result.json beside its wall time): the GPU's name on
    CUDA, else the CPU's model name and how many cores this process may use."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()}, {cores()} cores"


def versions() -> dict:
    """The versions a result was produced with (written into every result.json)."""
    return {"cktat_core": __version__, "torch": torch.__version__, "python": platform.python_version()}

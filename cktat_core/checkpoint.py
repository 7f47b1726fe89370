"""Checkpoints: written atomically, read with weights_only=True, mismatches reported by key.

A training checkpoint is a dict with "format": "cktat/1", the model's state_dict under "model", the
network's name and head size, the run's config, and (for `last.pt`) everything needed to resume:
optimiser, scheduler, random-number-generator states, epoch and metric history. Plain state_dicts from
elsewhere (kuangliu-style ResNet-18, TRADES-style WRN-34-10, optionally wrapped in {"state_dict": ...} or
prefixed with "module.") load too, given the network's name.
"""

from __future__ import annotations

import os
import zipfile
from typing import Any

import torch
import torch.nn as nn

from .config import Config
from .distributed import is_main_process
from .errors import CheckpointError
from .methods import METHODS

FORMAT = "cktat/1"


def save_atomic(obj: Any, path: str) -> None:
    """torch.save to a temporary file, fsync, then rename over `path`: a crash never leaves half a file.
    With several processes (`distributed`), rank 0 alone writes."""
    if not is_main_process():
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_text_atomic(text: str, path: str) -> None:
    """`save_atomic` for text (rank 0 alone writes)."""
    if not is_main_process():
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load(path: str) -> Any:
    """torch.load(weights_only=True) with one clear error for a missing or unreadable file."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"checkpoint {path} is unreadable or corrupt ({_load_failure(path, e)})") from None


def _load_failure(path: str, error: Exception) -> str:
    """Why torch.load refused a file, in a few words."""
    text = str(error).strip()
    if "weights only load failed" in text.lower():
        return "it holds Python objects that weights_only=True refuses to unpickle"
    if not zipfile.is_zipfile(path):
        return "not a file written by torch.save, or a truncated one"
    return text.splitlines()[0][:160] if text else type(error).__name__


def state_dict_of(obj: Any, path: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The model state_dict inside a loaded checkpoint of any of the accepted layouts."""
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        sd = obj["model"]
    elif isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()) and obj:
        sd = obj
    else:
        for key in ("state_dict", "model_state_dict", "model", "net"):
            if isinstance(obj, dict) and isinstance(obj.get(key), dict):
                sd = obj[key]
                break
        else:
            raise CheckpointError(f"{path} holds no model state_dict")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def load_state_strict(model: nn.Module, sd: dict[str, torch.Tensor], path: str = "checkpoint") -> None:
    """load_state_dict(strict=True), with missing / unexpected / wrongly shaped keys named in the error."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        def head(keys):
            return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
        parts = []
        if missing:
            parts.append(f"missing keys: {head(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {head(unexpected)}")
        if shapes:
            parts.append(f"shape mismatch: {head(shapes)}")
        raise CheckpointError(f"{path} does not fit the {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(sd, strict=True)


def model_checkpoint(model: nn.Module, model_name: str, num_classes: int, config: dict, **extra) -> dict:
    """The dict written for a trained model (best.pt / final evaluation input)."""
    return {"format": FORMAT, "model": model.state_dict(), "model_name": model_name,
            "num_classes": num_classes, "config": config, **extra}


def load_model(path: str, model_name: str | None = None, num_classes: int | None = None, width: int = 0):
    """(model, info) from a checkpoint: ours carries its network name and head size; a plain state_dict needs
    `model_name` (and `num_classes`, default 10). Loads strictly; returns the model on the CPU in eval mode."""
    from .models import MODELS, build_model

    obj = load(path)
    ours = isinstance(obj, dict) and obj.get("format") == FORMAT
    info = {k: v for k, v in obj.items() if k in ("model_name", "num_classes", "config", "epoch")} if ours else {}
    name = model_name or info.get("model_name")
    if not name:
        raise CheckpointError(f"{path} is a plain state_dict: pass --model, one of {', '.join(MODELS)}")
    n = num_classes or info.get("num_classes") or 10
    width = info.get("config", {}).get("width", width) if ours else width
    sd = state_dict_of(obj, path)
    kwargs = {"width": width}
    if name == "wrn34_10" and any(k.startswith("sub_block1.") for k in sd):
        kwargs["sub_block1"] = True  # TRADES-style checkpoint
    model = build_model(name, n, **kwargs)
    load_state_strict(model, sd, path)
    return model.eval(), {"model_name": name, "num_classes": n, **info}


def load_classifier(path: str):
    """(classifier, info) from a checkpoint written by the trainer: the network wrapped as the method deploys it
    (a DUCAT checkpoint holds the 2C-way network and comes back as its C-way `Recovered` classifier)."""
    net, info = load_model(path)
    obj = load(path)
    method = METHODS.get(obj.get("method", "")) if isinstance(obj, dict) else None
    if method is None or "classes" not in obj:
        return net, info
    cfg = Config.from_dict(obj["config"])
    classifier = method.machinery.classifier(net, cfg, obj["classes"])
    return classifier.eval(), {**info, "num_classes": obj["classes"]}

"""`cktat eval` as a library call: load a checkpoint, its test set and its budget, run `evaluate.evaluate`, and
write the result with the request that produced it ("cktat-eval/1" schema, see `cktat_core.evaluate`)."""

from __future__ import annotations

import json
import os
from typing import Iterable

import torch

from . import checkpoint as ckpt
from .data import dataset_defaults, load_splits, load_test
from .errors import ConfigError
from .evaluate import AA_VERSIONS, Threat, attack_spec, evaluate, expand_names, get_protocol
from .checkpoint import load_classifier
from .runtime import pick_device, versions


def evaluate_checkpoint(checkpoint: str, attacks: str | Iterable[str] = "natural,pgd20", *, dataset: str | None = None,
                        data_dir: str | None = None, model: str | None = None, limit: int = 0,
                        eps: float | None = None, alpha: float | None = None, protocol: str = "standard",
                        kappa: float = 50.0, aa_version: str = "standard", eps_sweep: Iterable[float] = (),
                        seed: int = 0, device: str = "auto", batch_size: int | None = None, progress: bool = True,
                        out: str | None = None, reuse: bool = False) -> dict:
    """Evaluate a checkpoint on its test set: what `cktat eval` does, as a library call.

    Our checkpoints carry their network, dataset and budget (a DUCAT checkpoint comes back as its recovered
    C-way classifier); a plain state_dict needs `model` (and `dataset`, default cifar10). eps defaults to the
    checkpoint's training eps or the dataset's, alpha to eps / 4 (SPEC 5: 2/255 at 8/255). With `out`, the
    result is written there as JSON; with `reuse`, an existing `out` computed from the same request (same
    arguments, same checkpoint file) is returned instead of recomputing. batch_size defaults to the checkpoint's
    `eval_batch_size` (the profile's: 256 on the CPU profile, where larger batches run slower per image), else 500.
    """
    names = expand_names(attacks.split(",") if isinstance(attacks, str) else attacks)
    stat = os.stat(checkpoint) if os.path.isfile(checkpoint) else None
    request = {"checkpoint": os.path.abspath(checkpoint), "size": stat and stat.st_size,
               "mtime": stat and stat.st_mtime, "attacks": names, "dataset": dataset, "model": model, "limit": limit,
               "eps": eps, "alpha": alpha, "protocol": protocol, "kappa": kappa, "aa_version": aa_version,
               "eps_sweep": sorted(eps_sweep), "seed": seed}
    if reuse and out and os.path.isfile(out):
        with open(out) as fh:
            previous = json.load(fh)
        if previous.get("request") == json.loads(json.dumps(request)):
            return previous
    get_protocol(protocol)
    if aa_version not in AA_VERSIONS:
        raise ConfigError("aa_version", f"must be one of {', '.join(AA_VERSIONS)}", aa_version)
    if model:  # a plain state_dict (or our checkpoint read as a bare network)
        net, info = ckpt.load_model(checkpoint, model)
    else:  # our checkpoint, as its method deploys it
        net, info = load_classifier(checkpoint)
    cfg = info.get("config", {})
    dataset = dataset or cfg.get("dataset") or "cifar10"
    defaults = dataset_defaults(dataset)
    if defaults["num_classes"] != info["num_classes"]:
        raise ConfigError("dataset", f"{dataset} has {defaults['num_classes']} classes, the checkpoint "
                          f"{info['num_classes']}", dataset)
    norm = cfg.get("norm", "linf")
    eps = eps if eps is not None else (cfg.get("eps") or defaults["eps"])
    alpha = alpha if alpha is not None else eps / 4
    threat = Threat(eps, alpha, norm, defaults["eps_l2"], defaults["eps_l2"] / 4)
    for n in names:  # unknown names fail before any work
        attack_spec(n, threat, protocol, kappa, aa_version)
    test, _ = load_test(dataset, data_dir or cfg.get("data_dir") or "data", limit)
    dev = pick_device(device)
    net, test = net.to(dev, memory_format=torch.channels_last), test.to(dev)  # faster on CPU and GPU alike
    with torch.inference_mode(False):
        res = evaluate(net, test, names, threat, batch_size or cfg.get("eval_batch_size") or 500, protocol=protocol,
                       kappa=kappa, aa_version=aa_version, eps_sweep=eps_sweep, gradient_check=True, progress=progress,
                       seed=seed)
    res.update({"checkpoint": os.path.abspath(checkpoint), "model": info["model_name"], "dataset": dataset,
                "device": str(dev), "seed": seed, "versions": versions(), "request": request})
    if out:
        ckpt.write_text_atomic(json.dumps(res, indent=1), out)
    return res


@torch.no_grad()
def true_class_probability(model: torch.nn.Module, cfg, taus: Iterable[float], batch_size: int = 500) -> dict:
    """Mean probability that the softened label T^tau(x) = softmax(z(x) / tau) puts on the true class, over the
    validation images of `cfg` (the test set is not used), per tau: how much of the label a temperature leaves to the
    class (CKTAT Eq. 17, Table 3b). Computed on the CPU in float32 with the network in eval() mode."""
    val = load_splits(cfg.dataset, cfg.data_dir, cfg.val_size, cfg.train_limit, cfg.test_limit, cfg.download).val
    model = model.float().eval()
    logits = torch.cat([model(val.x[i:i + batch_size].float()) for i in range(0, len(val), batch_size)])
    picked = lambda t: torch.softmax(logits / t, dim=1).gather(1, val.y.view(-1, 1)).mean().item()
    return {float(t): picked(float(t)) for t in taus}

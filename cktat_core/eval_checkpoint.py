"""`cktat eval` as a library call: load a checkpoint, its test set and its budget, run `evaluate.evaluate`, and
write the result with the request that produced it ("cktat-eval/1" schema, see `cktat_core.evaluate`)."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Iterable

import torch

from . import cache
from . import checkpoint as ckpt
from .data import dataset_defaults, load_splits, load_test
from .errors import ConfigError
from .evaluate import (AA_VERSIONS, Threat, attack_spec, autocast_off, build_attack, correct_mask, evaluate,
                       expand_names, get_protocol, softened_label_mass)
from .checkpoint import load_classifier
from .models import InputQuantized
from .runtime import pick_device, versions


def _load(checkpoint: str, dataset: str | None, model: str | None, eps: float | None, alpha: float | None):
    """The network of a checkpoint (as its method deploys it, or a plain state_dict of `model`), its info, its
    dataset and its threat: eps from the checkpoint's training eps or the dataset's, alpha eps / 4."""
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
    eps = eps if eps is not None else (cfg.get("eps") or defaults["eps"])
    alpha = alpha if alpha is not None else eps / 4
    return net, info, dataset, Threat(eps, alpha, cfg.get("norm", "linf"), defaults["eps_l2"], defaults["eps_l2"] / 4)


def evaluate_checkpoint(checkpoint: str, attacks: str | Iterable[str] = "natural,pgd20", *, dataset: str | None = None,
                        data_dir: str | None = None, model: str | None = None, limit: int = 0,
                        eps: float | None = None, alpha: float | None = None, protocol: str = "standard",
                        kappa: float = 50.0, aa_version: str = "standard", eps_sweep: Iterable[float] = (),
                        seed: int = 0, device: str = "auto", batch_size: int | None = None, progress: bool = True,
                        out: str | None = None, reuse: bool = False, round_input: bool = False,
                        restore: Callable[[str], Any] | None = None) -> dict:
    """Evaluate a checkpoint on its test set: what `cktat eval` does, as a library call.

    Our checkpoints carry their network, dataset and budget (a DUCAT checkpoint comes back as its recovered
    C-way classifier); a plain state_dict needs `model` (and `dataset`, default cifar10). eps defaults to the
    checkpoint's training eps or the dataset's, alpha to eps / 4 (SPEC 5: 2/255 at 8/255). With `out`, the
    result is written there as JSON; with `reuse`, an existing `out` computed from the same request (same
    arguments, same weights: `cache.reused`) is returned instead of recomputing; `restore(checkpoint)` is called
    before the weights are read (`Chapter.weights`: a missing checkpoint of a committed run is trained again). batch_size defaults to the checkpoint's
    `eval_batch_size` (the profile's: 256 on the CPU profile, where larger batches run slower per image), else 500.
    `round_input` puts `models.InputQuantized` (8-bit rounding, a zero input gradient) in front of the network: the
    gradient-masked model of chapter 04, which the checks must flag.
    """
    names = expand_names(attacks.split(",") if isinstance(attacks, str) else attacks)
    fields = dict(attacks=names, dataset=dataset, model=model, limit=limit, eps=eps, alpha=alpha, protocol=protocol,
                  kappa=kappa, aa_version=aa_version, eps_sweep=sorted(eps_sweep), seed=seed,
                  **({"round_input": True} if round_input else {}))  # absent when off: older files still match
    previous = cache.reused(out, cache.request(checkpoint, **fields)) if reuse else None
    if previous is not None:
        return previous
    if restore is not None:
        restore(checkpoint)
    request = cache.request(checkpoint, **fields)
    get_protocol(protocol)
    if aa_version not in AA_VERSIONS:
        raise ConfigError("aa_version", f"must be one of {', '.join(AA_VERSIONS)}", aa_version)
    net, info, dataset, threat = _load(checkpoint, dataset, model, eps, alpha)
    net = InputQuantized(net) if round_input else net
    cfg = info.get("config", {})
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


def true_class_probability(model: torch.nn.Module, cfg, taus: Iterable[float], batch_size: int = 500) -> dict:
    """`evaluate.softened_label_mass` over the validation images of `cfg` (the test set is not used), per tau (CKTAT
    Eq. 17, Table 3b). Computed in float32 with the network in eval() mode."""
    val = load_splits(cfg.dataset, cfg.data_dir, cfg.val_size, cfg.train_limit, cfg.test_limit, cfg.download,
                      cfg.train_per_file).val
    return softened_label_mass(model.float(), val.x.float(), val.y, taus, batch_size)


def true_class_mass(checkpoint: str, cfg, taus: Iterable[float], out: str,
                    restore: Callable[[str], Any] | None = None) -> dict[float, float]:
    """`true_class_probability` of the network in `checkpoint` (loaded as its method deploys it) per tau, cached at
    `out` with its request (`cache.computed`): chapter 07 re-executes from the file without the weights."""
    taus = [float(t) for t in taus]
    compute = lambda p: {"mass": {str(t): v for t, v in
                                  true_class_probability(load_classifier(p)[0], cfg, taus).items()}}
    r = cache.computed(checkpoint, out, compute, restore=restore, taus=taus, dataset=cfg.dataset,
                       val_size=cfg.val_size, train_limit=cfg.train_limit, train_per_file=cfg.train_per_file)
    return {float(t): v for t, v in r["mass"].items()}


def per_image_correct(checkpoint: str, attack: str = "pgd20", *, limit: int = 0, protocol: str = "standard",
                      seed: int = 0, device: str = "auto", batch_size: int | None = None, data_dir: str | None = None,
                      out: str | None = None, reuse: bool = True, restore: Callable[[str], Any] | None = None) -> dict:
    """Which test images a checkpoint classifies correctly under `attack` (its adversarial input right, whatever
    the clean prediction; "natural": the clean input), for comparing models image by image (DUCAT's "misclassified
    by every AT method").

    Returns {"attack", "n", "accuracy" (%), "bits": "0110..." (one character per test image, in test-set order,
    "1" right), "seconds", "request"}; with `out` written there as JSON and, with `reuse`, read back instead of recomputed when
    the request (checkpoint file, attack, limit, protocol, seed) is the same. Same loading, threat and attacks as
    `evaluate_checkpoint` (batch_size and `restore` too); the random starts come from `seed`.
    """
    fields = dict(attack=attack, limit=limit, protocol=protocol, seed=seed)
    previous = cache.reused(out, cache.request(checkpoint, **fields)) if reuse else None
    if previous is not None:
        return previous
    if restore is not None:
        restore(checkpoint)
    request = cache.request(checkpoint, **fields)
    net, info, dataset, threat = _load(checkpoint, None, None, None, None)
    cfg = info.get("config", {})
    batch_size = batch_size or cfg.get("eval_batch_size") or 500
    fn = build_attack(attack_spec(attack, threat, protocol), batch_size)
    test, _ = load_test(dataset, data_dir or cfg.get("data_dir") or "data", limit)
    dev = pick_device(device)
    net, test = net.to(dev), test.to(dev)
    start = time.perf_counter()
    with torch.inference_mode(False), torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []), \
            autocast_off(dev.type):
        torch.manual_seed(seed)
        mask = correct_mask(net, test, fn, batch_size).cpu()
    res = {"attack": attack, "n": len(mask), "accuracy": 100.0 * float(mask.float().mean()) if len(mask) else None,
           "bits": "".join("1" if v else "0" for v in mask.tolist()), "seconds": time.perf_counter() - start,
           "request": request}
    if out:
        ckpt.write_text_atomic(json.dumps(res), out)
    return res

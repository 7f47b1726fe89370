"""The `cktat` command line.

    cktat train --method cktat --profile smoke --out runs/cktat [--set tau=2 beta=6 ...]
    cktat eval --checkpoint runs/cktat/student/last.pt [--attacks natural,pgd20]
    cktat methods

Bad input (an out-of-range value, an unknown name, a missing dataset or a corrupt checkpoint) prints one
line naming the field and what is allowed, and exits with status 2; finished checkpoints are never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .errors import CktatError


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def _acc_line(label: str, ev: dict) -> str:
    attacks = ev["test"]["attacks"]
    parts = [f"{name} {_fmt(a['accuracy'])}%" for name, a in attacks.items()]
    probes = [f"{k} {_fmt(v['attacks']['natural']['accuracy'])}%" for k, v in ev.items() if k.startswith("probe")]
    return f"  {label:<22}" + "  ".join(parts + probes)


def cmd_train(args) -> int:
    from .config import from_profile, parse_overrides
    from .train import run

    overrides = parse_overrides(args.set or [])
    overrides["method"] = args.method
    cfg = from_profile(args.profile, overrides)
    result = run(cfg, args.out)
    print(f"{cfg.method} ({args.profile} profile) on {cfg.dataset}, {result['wall_seconds']:.0f} s; test accuracy:")
    if "teacher" in result:
        print(_acc_line("teacher", result["teacher"]))
    print(_acc_line("student, last epoch" if "teacher" in result else "last epoch", result["student"]["last"]))
    if "best" in result["student"]:
        print(_acc_line(f"best on val (ep {result['student']['best']['epoch']})", result["student"]["best"]))
    print(f"results: {os.path.join(args.out, 'result.json')}")
    return 0


def cmd_eval(args) -> int:
    import torch

    from . import checkpoint as ckpt
    from .config import parse_value
    from .data import dataset_defaults, load_test
    from .evaluate import Threat, evaluate
    from .train import pick_device, versions

    model, info = ckpt.load_model(args.checkpoint, args.model)
    cfg = info.get("config", {})
    dataset = args.dataset or cfg.get("dataset") or "cifar10"
    defaults = dataset_defaults(dataset)
    if defaults["num_classes"] != info["num_classes"]:
        raise CktatError(f"--dataset: {dataset} has {defaults['num_classes']} classes, the checkpoint "
                         f"{info['num_classes']}")
    eps = parse_value("eps", args.eps) if args.eps else (cfg.get("eps") or defaults["eps"])
    alpha = cfg.get("alpha") if not args.eps and cfg.get("alpha") else eps / 4
    threat = Threat(eps, alpha, cfg.get("norm", "linf"))
    test, _ = load_test(dataset, args.data_dir or cfg.get("data_dir") or "data", args.limit)
    device = pick_device(args.device)
    model = model.to(device)
    test = test.to(device)
    names = [a.strip() for a in args.attacks.split(",") if a.strip()]
    try:
        from .evaluate import attack_by_name
        attacks = {n: attack_by_name(n, threat) for n in names}
    except ValueError as e:
        raise CktatError(f"--attacks: {e}") from None
    with torch.inference_mode(False):
        res = evaluate(model, test, attacks, threat, args.batch_size or 500)
    res.update({"checkpoint": os.path.abspath(args.checkpoint), "model": info["model_name"], "dataset": dataset,
                "threat": {"eps": eps, "alpha": alpha, "norm": threat.norm}, "versions": versions()})
    print(f"{info['model_name']} on {dataset} ({res['n']} test images, eps {eps:.5f}):")
    for name, a in res["attacks"].items():
        print(f"  {name:<10} {a['accuracy']:6.2f}%  ({a['correct']}/{a['total']}, {a['seconds']:.1f} s)")
    out_dir = args.out or os.path.dirname(os.path.abspath(args.checkpoint))
    out = os.path.join(out_dir, f"eval_{os.path.splitext(os.path.basename(args.checkpoint))[0]}.json")
    ckpt.write_text_atomic(json.dumps(res, indent=1), out)
    print(f"results: {out}")
    return 0


def cmd_methods(args) -> int:
    from .methods import table2

    rows = table2()
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    print("  ".join("-" * widths[c] for c in cols))
    for r in rows:
        print("  ".join(r[c].ljust(widths[c]) for c in cols))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cktat", description="CKTAT book: train and evaluate adversarially robust models")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model (teacher first when the method needs one)")
    t.add_argument("--method", default="cktat", help="cktat, pgdat, trades, ... (see `cktat methods`)")
    t.add_argument("--profile", default="smoke", help="smoke (CPU, minutes) or paper (GPU, the paper's setting)")
    t.add_argument("--out", required=True, help="run directory: checkpoints, metrics.jsonl, result.json")
    t.add_argument("--set", nargs="+", action="extend", metavar="KEY=VALUE",
                   help="override config fields, e.g. --set tau=2 beta=6 eps=8/255 model=resnet18")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="natural and robust accuracy of a checkpoint")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--attacks", default="natural,pgd20", help="comma-separated attack names, or 'all'")
    e.add_argument("--dataset", default=None, help="default: the checkpoint's own (cifar10 for plain state_dicts)")
    e.add_argument("--data-dir", default=None)
    e.add_argument("--model", default=None, help="network name, needed for a plain state_dict")
    e.add_argument("--limit", type=int, default=0, help="evaluate the first N test images only")
    e.add_argument("--eps", default=None, help="L-inf budget, e.g. 8/255 (default: the checkpoint's)")
    e.add_argument("--batch-size", type=int, default=None)
    e.add_argument("--device", default="auto")
    e.add_argument("--out", default=None, help="directory for eval.json (default: beside the checkpoint)")
    e.set_defaults(func=cmd_eval)

    m = sub.add_parser("methods", help="print Table 2 of the paper generated from the method definitions")
    m.set_defaults(func=cmd_methods)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CktatError as e:
        print(f"cktat: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cktat: interrupted; rerun the same command to resume from the last finished epoch", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

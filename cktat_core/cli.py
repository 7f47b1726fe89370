"""The `cktat` command line.

    cktat train --method cktat --profile smoke --out runs/cktat [--set tau=2 beta=6 ...]
    cktat eval --checkpoint runs/cktat/student/last.pt [--attacks all --protocol standard --limit N]
    cktat methods
    cktat bench [--model resnet18|wrn34_10|small_cnn] [--batch N]
    torchrun --nproc_per_node=N -m cktat_core.cli train ...   (one process per GPU; rank 0 writes and prints)
    cktat compare --methods pgdat,trades,cktat --profile smoke --out runs/compare [--summary results/x.json]
    cktat reproduce [--chapters 01,05] [--profile cpu|smoke|paper] [--force] [--no-train] [--results DIR]   (alias: cktat book)
    cktat runs --profile cpu [--set epochs=16 ...] [--results DIR] [--stages pgdat,tau,...]

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
    """One line of a final evaluation: every attack and probe set of `report.row`, sample groups left out."""
    from .results import row

    return f"  {label:<22}" + "  ".join(f"{k} {_fmt(v)}%" for k, v in row(ev).items() if " " not in k)


def cmd_train(args) -> int:
    from .config import from_profile, parse_overrides
    from .distributed import is_main_process, session
    from .methods import method_name
    from .train import run

    overrides = parse_overrides(args.set or [])
    overrides["method"] = method_name(args.method)
    if args.teacher:
        overrides["teacher_checkpoint"] = args.teacher
    cfg = from_profile(args.profile, overrides)
    with session():  # a process group when launched by torchrun
        result = run(cfg, args.out)
        if not is_main_process():
            return 0
    when = "finished earlier, saved result" if result.get("reused") else f"{result['wall_seconds']:.0f} s"
    print(f"{cfg.method} ({args.profile} profile) on {cfg.dataset}, {when}; test accuracy:")
    if "teacher" in result:
        print(_acc_line("teacher", result["teacher"]))
    print(_acc_line("student, last epoch" if "teacher" in result else "last epoch", result["student"]["last"]))
    if "best" in result["student"]:
        print(_acc_line(f"best on val (ep {result['student']['best']['epoch']})", result["student"]["best"]))
    print(f"results: {os.path.join(args.out, 'result.json')}")
    return 0


def _eval_options(args, names: list[str]):
    """Validate the eval options that argparse cannot: one clear error line each."""
    from .config import parse_value
    from .errors import ConfigError
    from .evaluate import AA_VERSIONS, get_protocol

    get_protocol(args.protocol)
    if args.aa_version not in AA_VERSIONS:
        raise ConfigError("--aa-version", f"must be one of {', '.join(AA_VERSIONS)}", args.aa_version)
    if args.limit < 0:
        raise ConfigError("--limit", "must be >= 0 (0 = the whole test set)", args.limit)
    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError("--batch-size", "must be >= 1", args.batch_size)
    if args.kappa < 0:
        raise ConfigError("--kappa", "must be >= 0", args.kappa)
    sweep = [parse_value("eps", t.strip()) for t in (args.eps_sweep or "").split(",") if t.strip()]
    if any(e <= 0 for e in sweep):
        raise ConfigError("--eps-sweep", "every eps must be > 0", args.eps_sweep)
    if any(n in ("aa", "autoattack", "all") for n in names):
        from .autoattack import find_package
        find_package()
    return sweep


def cmd_eval(args) -> int:
    from .config import parse_value
    from .checks import format_table
    from .eval_checkpoint import evaluate_checkpoint
    from .evaluate import expand_names

    names = expand_names(a.strip() for a in args.attacks.split(",") if a.strip())
    sweep = _eval_options(args, names)
    out_dir = args.out or os.path.dirname(os.path.abspath(args.checkpoint))
    suffix = "" if args.protocol == "standard" else f"_{args.protocol}"
    out = os.path.join(out_dir, f"eval_{os.path.splitext(os.path.basename(args.checkpoint))[0]}{suffix}.json")
    res = evaluate_checkpoint(
        args.checkpoint, names, dataset=args.dataset, data_dir=args.data_dir, model=args.model, limit=args.limit,
        eps=parse_value("eps", args.eps) if args.eps else None,
        alpha=parse_value("alpha", args.alpha) if args.alpha else None, protocol=args.protocol, kappa=args.kappa,
        aa_version=args.aa_version, eps_sweep=sweep, seed=args.seed, device=args.device,
        batch_size=args.batch_size, progress=not args.no_progress, out=out)
    print(f"{res['model']} on {res['dataset']}, {res['threat']['norm']} eps {res['threat']['eps']:.5f}:")
    print(format_table(res))
    print(f"results: {out}")
    return 0


def cmd_compare(args) -> int:
    from .config import parse_overrides
    from .compare import compare, format_summary
    from .methods import method_name

    methods = [method_name(m) for m in args.methods.split(",") if m.strip()]
    summary = compare(methods, args.profile, args.out, parse_overrides(args.set or []), summary_path=args.summary)
    print(format_summary(summary))
    print(f"summary: {summary['path']}")
    return 0


def cmd_reproduce(args) -> int:
    from cktat_book.site import build, sync_colab_cells
    from .config import from_profile, parse_overrides
    from cktat_book.reproduce import reproduce

    if args.sync_colab:
        for path in sync_colab_cells():
            print(f"rewrote {os.path.relpath(path)}")
        return 0
    from cktat_book.reproduce import BOOK_DEFAULT, BOOK_PROFILES

    overrides = parse_overrides(args.set or [])
    for profile in [args.profile] if args.profile else {BOOK_DEFAULT, *BOOK_PROFILES.values()}:
        from_profile(profile, overrides)  # bad values stop here, before any notebook runs
    if not args.build_only:
        only = [o.strip() for o in args.chapters.split(",") if o.strip()] if args.chapters else None
        reproduce(args.profile, overrides, only, args.results, force=args.force, train=not args.no_train)
    if not args.no_build:
        print(f"book: {build()}")
    return 0


def cmd_methods(args) -> int:
    """Print Table 2 as the methods declare it; a row with a note is marked [k] and its note follows the table."""
    from .methods import table2

    rows, notes = [], []
    for r in table2():
        row = {k: v for k, v in r.items() if k != "note"}
        if r["note"]:
            notes.append(r["note"])
            row["paper"] = f"{row['paper']} [{len(notes)}]"
        rows.append(row)
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    print("  ".join("-" * widths[c] for c in cols))
    for r in rows:
        print("  ".join(r[c].ljust(widths[c]) for c in cols))
    for k, note in enumerate(notes, 1):
        print(f"[{k}] {note}")
    return 0


def cmd_bench(args) -> int:
    from .bench import format_report, run_bench

    report = run_bench(args.model, args.batch, device=args.device, repeats=args.repeats, profile=args.profile,
                       width=args.width)
    print(format_report(report))
    if args.json:
        from .checkpoint import write_text_atomic
        write_text_atomic(json.dumps(report, indent=1), args.json)
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
    t.add_argument("--teacher", default=None, metavar="PATH",
                   help="teacher checkpoint (same as --set teacher_checkpoint=PATH); without it phase 1 trains one")
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("compare", help="train several methods with the same seed and budget; one summary JSON")
    c.add_argument("--methods", default="pgdat,trades,cktat", help="comma-separated method names")
    c.add_argument("--profile", default="smoke", help="smoke (CPU, minutes) or paper (GPU)")
    c.add_argument("--out", required=True, help="directory for the runs (one per method, the shared teacher)")
    c.add_argument("--summary", default=None, help="where to write the summary JSON (default: OUT/summary.json)")
    c.add_argument("--set", nargs="+", action="extend", metavar="KEY=VALUE", help="override config fields")
    c.set_defaults(func=cmd_compare)

    e = sub.add_parser("eval", help="natural and robust accuracy of a checkpoint (Table 4 attack suite)")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--attacks", default="natural,pgd20",
                   help="comma-separated: natural, fgsm, pgdN, pgdN_l2, mim, cw, aa, or 'all' (the Table 4 row)")
    e.add_argument("--protocol", default="standard", help="standard or compat-generalist (10 steps of 0.007)")
    e.add_argument("--aa-version", default="standard", help="AutoAttack: standard or apgd (APGD-CE + APGD-T, for CPUs)")
    e.add_argument("--kappa", type=float, default=50.0, help="CW margin kappa (default 50)")
    e.add_argument("--alpha", default=None, help="PGD step (default eps/4: 2/255 at eps 8/255)")
    e.add_argument("--eps-sweep", default=None, help="comma-separated budgets for the eps check, e.g. 2/255,4/255,8/255,16/255")
    e.add_argument("--seed", type=int, default=0, help="seed of the random starts")
    e.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    e.add_argument("--dataset", default=None, help="default: the checkpoint's own (cifar10 for plain state_dicts)")
    e.add_argument("--data-dir", default=None)
    e.add_argument("--model", default=None, help="network name, needed for a plain state_dict")
    e.add_argument("--limit", type=int, default=0, help="evaluate the first N test images only")
    e.add_argument("--eps", default=None, help="L-inf budget, e.g. 8/255 (default: the checkpoint's)")
    e.add_argument("--batch-size", type=int, default=None)
    e.add_argument("--device", default="auto")
    e.add_argument("--out", default=None, help="directory for eval_<checkpoint>.json (default: beside the checkpoint)")
    e.set_defaults(func=cmd_eval)

    b = sub.add_parser("reproduce", aliases=["book"],
                       help="re-execute the stale chapter notebooks in a profile, then build the book's site")
    b.add_argument("--chapters", "--only", default=None, help="comma-separated chapter prefixes, e.g. 01,05 (default: all)")
    b.add_argument("--profile", default=None,
                   help="default: the book, each chapter in its own profile (01 smoke, the tables cpu); cpu: the "
                        "real-image chapters (CIFAR-10 on a CPU, hours); smoke: every chapter on the multi-view data "
                        "(minutes; pages outside the book); paper: the paper's setting (GPU)")
    b.add_argument("--force", action="store_true", help="execute the selected chapters even when none is stale")
    b.add_argument("--results", default=None, help="folder for the runs (default results/<profile>)")
    b.add_argument("--set", nargs="+", action="extend", metavar="KEY=VALUE", help="config overrides for every chapter")
    b.add_argument("--no-train", action="store_true",
                   help="train nothing: a chapter whose runs are not all finished gets a page naming the run it waits for")
    b.add_argument("--no-build", action="store_true", help="execute the stale chapters only")
    b.add_argument("--build-only", action="store_true", help="build the site from the chapters already executed")
    b.add_argument("--sync-colab", action="store_true",
                   help="rewrite every notebook's Colab badge and install cell from _config.yml, then stop")
    b.set_defaults(func=cmd_reproduce)

    n = sub.add_parser("bench", help="images per second of a clean, a PGD-10 and a CKTAT training step; projected run time")
    n.add_argument("--model", default="resnet18", help="resnet18, wrn34_10, small_cnn, ...")
    n.add_argument("--batch", type=int, default=128, help="images per step (default 128, the paper's)")
    n.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    n.add_argument("--repeats", type=int, default=5, help="timed steps of each kind (the median is reported)")
    n.add_argument("--profile", default="paper", help="the profile whose epochs and attacks are projected")
    n.add_argument("--width", type=int, default=0, help="small_cnn channel width (0 = its default)")
    n.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON")
    n.set_defaults(func=cmd_bench)

    r = sub.add_parser("runs", help="train every run the table chapters read, without executing them; resumes")
    r.add_argument("--profile", default="cpu", help="cpu (CIFAR-10 on a CPU), smoke or paper")
    r.add_argument("--set", nargs="+", action="extend", metavar="KEY=VALUE", help="config overrides for every run")
    r.add_argument("--results", default=None, help="folder for the runs (default results/<profile>, the book's)")
    r.add_argument("--stages", default=None,
                   help="comma-separated, in order: pgdat, tau, headline, table3, controls, analyses, table4 (with "
                        "the attack suites), capacity, ladder, readings (default all)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    r.set_defaults(func=cmd_runs)

    m = sub.add_parser("methods", help="print Table 2 of the paper generated from the method definitions")
    m.set_defaults(func=cmd_methods)
    return p


def cmd_runs(args) -> int:
    import time

    from cktat_book.book_runs import STAGES, train_all
    from cktat_book.chapter import Chapter
    from .config import from_profile, parse_overrides

    overrides = parse_overrides(args.set or [])
    from_profile(args.profile, overrides)  # bad values stop here, before anything trains
    stages = [s.strip() for s in (args.stages or ",".join(STAGES)).split(",") if s.strip()]
    ch = Chapter(args.profile, overrides, args.results, not args.no_progress)
    t0 = time.perf_counter()
    train_all(ch, stages, say=lambda line: print(f"[{time.perf_counter() - t0:7.0f} s] {line}", flush=True))
    print(f"every run of {', '.join(stages)} is in {ch.runs}")
    return 0


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

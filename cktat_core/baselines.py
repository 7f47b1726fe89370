"""The rows of the CKTAT paper's Table 4 and of RAAT's Table 1 as runs and evaluations of one chapter.

A row is a label (the paper's), a method with the fields it changes, and the stem of its evaluation files.
`trained` gets every row's run through the chapter's shared runs folder: PGDAT, TRADES and CKTAT from
`Chapter.compare` (the runs chapters 02-04 use), the others from `Chapter.variant` (runs/mart, runs/cktat_beta0,
...), so a run is trained once for the whole book. `evaluated` runs the Table 4 attack suite under both protocols
with the same calls and file names as the evaluation chapter (`<out>/eval/<stem>_standard.json`,
`<stem>_compat-generalist.json`), so a checkpoint is evaluated once; a smaller image count than that chapter's
gets files of its own (`..._n200.json`). `masks` stores which test images each model gets right under its own
PGD-20 (`eval_checkpoint.per_image_correct`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .chapter import Chapter
from .eval_checkpoint import evaluate_checkpoint, per_image_correct
from .report import PAPER_TABLE4_KEYS, TABLE4_ATTACKS, load_result, paper_numbers, paper_table

SHARED = ["pgdat", "trades", "cktat"]  # the compare run of chapters 02-04
COMPAT_ATTACKS = "natural,fgsm,pgd20,pgd100,mim,cw"  # AutoAttack runs once, under the standard protocol
HEADERS = {"natural": "natural", "pgd20": "PGD-20", "pgd100": "PGD-100", "mim": "MIM", "cw": "CW-inf", "aa": "AA",
           "nrr": "NRR", "clean/AA mean": "(natural + AA) / 2"}


@dataclass(frozen=True)
class Row:
    label: str  # as the paper's table writes it
    method: str
    fields: dict = field(default_factory=dict)
    stem: str = ""  # evaluation files: <out>/eval/<stem>_<protocol>.json (default: the label)

    @property
    def file_stem(self) -> str:
        return self.stem or self.label


# CKTAT Table 4 (CIFAR-10 and CIFAR-100, ResNet-18). LTD starts from the clean teacher (the paper's row says
# "clean training model initialization"; `ltd` initialises from its teacher by default).
TABLE4 = (Row("PGDAT", "pgdat"), Row("TRADES", "trades"), Row("MART", "mart"), Row("LBGAT", "lbgat"),
          Row("LTD", "ltd"), Row("HAT", "hat"), Row("Generalist", "generalist"),
          Row("CKTAT (beta=0)", "cktat", {"beta": 0.0}, "CKTAT_beta0"),
          Row("CKTAT (beta=6)", "cktat", {"beta": 6.0}, "CKTAT"))
# RAAT Table 1 (the paper's spellings), then DUCAT and CKTAT beside them.
RAAT_TABLE1 = (Row("PGD-AT", "pgdat", stem="PGDAT"), Row("TRADES", "trades"), Row("MART", "mart"),
               Row("Cons-AT", "cons_at"), Row("RAAT", "raat"), Row("RAAT++", "raat_pp", stem="RAATpp"),
               Row("DUCAT", "ducat"), Row("CKTAT", "cktat", {"beta": 6.0}))


# Test images of the attack suite per profile (every test image elsewhere): 200 in smoke; 1,000 on real images, where
# 200 would leave a binomial error of about 3 points, as large as the differences between methods.
SUITE_IMAGES = {"smoke": 200, "cpu": 1000}
# AutoAttack's version per profile ("standard" elsewhere): "apgd" (APGD-CE, APGD-T) where the budget does not allow
# FAB-T and Square: on two CPU cores the standard version costs several times the apgd version per image
# (`benchmarks/bench_cpu_run.py` times both; the Benchmarks page), hours the real-image book's budget does not have.
AA_VERSIONS = {"smoke": "apgd", "cpu": "apgd"}
AA_WORDS = {"standard": "APGD-CE, APGD-T, FAB-T and Square, as the paper's AutoAttack",
            "apgd": "APGD-CE and APGD-T only: the cheaper version without FAB-T and Square"}


def evaluation_limit(profile: str, overrides: dict, eval_limit: int | None = None) -> int:
    """Test images of an attack suite: `eval_limit`, else the overrides' test_limit, else the profile's
    `SUITE_IMAGES` (0: all): the count chapters 04, 08 and 09 share, so their files are computed once."""
    if eval_limit is not None:
        return eval_limit
    return overrides.get("test_limit") or SUITE_IMAGES.get(profile, 0)


def aa_version(profile: str, asked: str | None = None) -> str:
    """The AutoAttack version of a profile's suite (`AA_VERSIONS`), unless one is asked for."""
    return asked or AA_VERSIONS.get(profile, "standard")


def eps_sweep(eps: float) -> list[float]:
    """The budgets of the suite's PGD-20 sweep: eps x 1, 2, 4, 8, up to budgets where even a robust model breaks."""
    return [m * eps for m in (1, 2, 4, 8)]


def trained(ch: Chapter, rows) -> dict[str, dict]:
    """Each row's run (`train.run`'s result) with "run_dir" and "checkpoint" (the last epoch's, which is what the
    tables evaluate), trained once and re-read by every chapter that asks."""
    summary = ch.compare(SHARED)
    shared = {r["method"]: r["run_dir"] for r in summary["rows"]}
    out = {}
    for row in rows:
        if row.method in shared and not row.fields:
            res = {**load_result(shared[row.method]), "run_dir": shared[row.method]}
        else:
            res = ch.variant(row.method, **row.fields)
        out[row.label] = {**res, "checkpoint": os.path.join(res["run_dir"], res["student"]["checkpoints"]["last"])}
    return out


def _suffix(limit: int, shared_limit: int) -> str:
    return "" if limit == shared_limit else f"_n{limit}"


def evaluated(ch: Chapter, rows, runs: dict[str, dict], limit: int, aa_version: str,
              shared_limit: int) -> dict[str, dict]:
    """Per row, {"standard": ..., "compat-generalist": ...}: the evaluation chapter's two calls of
    `evaluate_checkpoint` (all attacks with the eps sweep; the compat protocol without AutoAttack), on `limit`
    test images, cached in <out>/eval (shared with that chapter when `limit` is its `shared_limit`)."""
    sweep = eps_sweep(ch.resolved("pgdat").eps)
    suffix = _suffix(limit, shared_limit)
    out = {}
    for row in rows:
        path, base = runs[row.label]["checkpoint"], f"{ch.out}/eval/{row.file_stem}"
        out[row.label] = {  # the weights are needed (`Chapter.weights`) only where a file is not reused
            "standard": evaluate_checkpoint(path, "all", limit=limit, aa_version=aa_version, eps_sweep=sweep,
                                            progress=ch.progress, out=f"{base}_standard{suffix}.json", reuse=True,
                                            restore=ch.weights),
            "compat-generalist": evaluate_checkpoint(path, COMPAT_ATTACKS, limit=limit, protocol="compat-generalist",
                                                     progress=ch.progress, out=f"{base}_compat-generalist{suffix}.json",
                                                     reuse=True, restore=ch.weights)}
    return out


def masked_teacher(ch: Chapter, checkpoint: str, limit: int, aa_version: str, sweep: list[float]) -> dict:
    """Chapter 04's test of the checks, on the clean teacher (`checkpoint`): "plain" (natural, FGSM, PGD-20);
    "masked", the same network behind 8-bit input rounding (`models.InputQuantized`: a zero input gradient, which
    the checks must flag), with AutoAttack's `aa_version` and the eps `sweep`; and "masked_standard", on the first
    "few" (100) images, AutoAttack's standard version, whose Square attack needs no gradient. Cached in
    <out>/eval/teacher_*.json; the weights are needed only where a file is not reused."""
    run = lambda attacks, name, **kw: evaluate_checkpoint(checkpoint, attacks, progress=ch.progress, reuse=True,
                                                          restore=ch.weights, out=f"{ch.out}/eval/{name}.json", **kw)
    plain = run("natural,fgsm,pgd20", "teacher_standard", limit=limit)
    few = min(100, plain["n"])
    return {"plain": plain, "few": few,
            "masked": run("natural,fgsm,pgd20,aa", "teacher_rounded", limit=limit, aa_version=aa_version,
                          eps_sweep=sweep, round_input=True),
            "masked_standard": run("natural,pgd20,aa", f"teacher_rounded_aa_standard_n{few}", limit=few,
                                   aa_version="standard", round_input=True)}


def masks(ch: Chapter, rows, runs: dict[str, dict], limit: int, attack: str = "pgd20") -> dict[str, str]:
    """Per row, which of the first `limit` test images its model classifies correctly under its own `attack`,
    as a bit string ("1": right; `per_image_correct`, cached in <out>/eval/<stem>_<attack>_mask[_nN].json)."""
    suffix = f"_n{limit}" if limit else ""
    out = {}
    for row in rows:
        path, file = runs[row.label]["checkpoint"], f"{ch.out}/eval/{row.file_stem}_{attack}_mask{suffix}.json"
        out[row.label] = per_image_correct(path, attack, limit=limit, out=file, restore=ch.weights)["bits"]
    return out


def paper_table4(dataset: str) -> tuple[dict[str, dict], str]:
    """The paper's Table 4 for `dataset` (method label -> {column: value}) and which table it is: CIFAR-100's for
    cifar100, CIFAR-10's for every other dataset (the multi-view data is compared with CIFAR-10's)."""
    p = paper_numbers()["cktat"]
    key = "table4_cifar100" if dataset == "cifar100" else "table4_cifar10"
    return paper_table(p[key], TABLE4_ATTACKS, PAPER_TABLE4_KEYS), "CIFAR-100" if dataset == "cifar100" else "CIFAR-10"


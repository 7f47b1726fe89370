"""The "Use the library" page: the data and budget of each profile for its script, and what the page says about
the runs it made. Torch-free but for `data` (which loads tensors through the library).

The page trains a network defined on the page with `cktat_core.fit` (CKTAT, PGD-AT and a label design declared on
the page) and attacks each with `cktat_core.evaluate_suite`. Its budget per profile (`SETTINGS`): the multi-view
data in smoke, the first images of every CIFAR-10 file on a CPU, the paper's setting on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from .noise import compare_evaluations

# Per profile: the data (`load_splits` arguments), the budget of every `fit` and the attack suite's images.
SETTINGS = {
    "smoke": {"data": dict(dataset="multiview", val_size=200, train_limit=2000, test_limit=500),
              "fit": dict(epochs=6, teacher_epochs=10, lr=0.05, teacher_lr=0.05, attack_steps=5, val_attack_steps=5,
                          alpha_ratio=0.4, eval_batch_size=250, amp=False),
              "suite": dict(limit=500, aa_version="apgd")},
    "cpu": {"data": dict(dataset="cifar10", val_size=500, train_per_file=1000, test_limit=1000),
            "fit": dict(epochs=8, teacher_epochs=15, lr=0.1, teacher_lr=0.1, attack_steps=2, alpha_ratio=0.5,
                        lr_schedule="onecycle", augment=True, eval_batch_size=250),
            "suite": dict(limit=1000, aa_version="apgd")},
    "paper": {"data": dict(dataset="cifar10", val_size=1000),
              "fit": dict(augment=True),
              "suite": dict(limit=0, aa_version="standard")},
}
DATA_KEYS = ("dataset", "data_dir", "download", "val_size", "train_limit", "test_limit", "train_per_file")
# what a page override is that `fit` does not take (the page's own `progress` parameter decides the bars)
NOT_FIT = DATA_KEYS + ("model", "width", "teacher_model", "progress")  # a page override `fit` does not take


@dataclass
class Page:
    """The page's data (pairs of tensors), the budget of every `fit` and the suite's settings."""

    train: tuple
    val: tuple
    test: tuple
    dataset: str
    eps: float
    fit: dict
    suite: dict


def page(profile: str, overrides: dict | None = None, progress: bool = True) -> Page:
    """`SETTINGS[profile]` with the chapter's `overrides` (Config fields: the data's go to the data, the others to
    every `fit`; a smaller `test_limit` also limits the suite), and the data loaded; `progress`: the runs' bars."""
    from cktat_core.data import dataset_defaults, load_splits

    over = dict(overrides or {})
    data = {**SETTINGS[profile]["data"], **{k: v for k, v in over.items() if k in DATA_KEYS}}
    fit = {**SETTINGS[profile]["fit"], **{k: v for k, v in over.items() if k not in NOT_FIT}}
    suite = dict(SETTINGS[profile]["suite"])
    if data.get("test_limit"):
        suite["limit"] = min(suite["limit"] or data["test_limit"], data["test_limit"])
    s = load_splits(data["dataset"], data.get("data_dir", "data"), data["val_size"], data.get("train_limit", 0),
                    data.get("test_limit", 0), data.get("download", False), data.get("train_per_file", 0))
    eps = dataset_defaults(data["dataset"])["eps"]
    return Page((s.train.x, s.train.y), (s.val.x, s.val.y), (s.test.x, s.test.y), data["dataset"], eps,
                {**fit, "eps": eps, "progress": progress}, suite)


def resume_sentence(cuts: dict, fits: dict, settings: dict) -> str:
    """What each method's two calls did (`FitResult.resumed_at`, `finished`): the first, cut after one epoch of a
    phase, and the second, which resumed it at that phase and epoch; every run ends with all its epochs. Where the
    first call already found the run finished, an earlier execution of the page made both calls, and the sentence
    says so instead of presenting a re-read as a resumption."""
    epochs = {"teacher": settings.get("teacher_epochs") or 0, "student": settings.get("epochs") or 0}

    def started(r):  # the phases a call found begun but not finished
        return [p for p in ("teacher", "student") if p in r.resumed_at and r.resumed_at[p] < epochs[p]]

    ok = all(r.finished for r in fits.values())
    end = "Every run ends with all its epochs trained." if ok else "Some run did not finish."
    earlier = [m for m, r in cuts.items() if r.finished and not started(r)]
    if earlier and len(earlier) == len(cuts):
        return (f"This execution found the runs of {', '.join(earlier)} finished by an earlier execution of this page "
                "(their checkpoints in its results folder): the call cut short and the call that resumed it ran "
                "then. To watch both, delete the page's `library` folder and run the page again. " + end)
    parts = []
    for method, r in fits.items():
        cut, again = cuts.get(method), started(r)
        first = ("first call stopped unfinished" if cut is not None and not cut.finished
                 else "first call found it finished")
        if not again:
            parts.append(f"{method}: {first}; the second found nothing left to train")
        else:
            p = again[0]
            parts.append(f"{method}: {first}; the second resumed its {p} phase at epoch {r.resumed_at[p]} of "
                         f"{epochs[p]}")
    return "Each method's two calls: " + "; ".join(parts) + ". " + end


def rows(suites: dict[str, dict]) -> list[dict]:
    """One table row per method: natural accuracy and each attack's, on the suite's images."""
    return [{"method": m, "images": s["n"], **{a: v["accuracy"] for a, v in s["attacks"].items()},
             "flags": ", ".join(f["check"] for f in s["flags"]) or "none"} for m, s in suites.items()]


def findings(suites: dict[str, dict], first: str, second: str, paper_first: list[float],
             paper_second: list[float]) -> str:
    """The page's opening: `first` against `second` naturally and under AutoAttack, image by image on the suite's
    images (`noise.compare_evaluations`: McNemar), beside the paper's Table 4 difference of the same two methods
    (`paper_*`: its row, columns natural, PGD, PGD-100, MIM, CW, AutoAttack; CIFAR-10, ResNet-18)."""
    from .noise import p_text

    parts = []
    for attack, label in (("natural", "natural"), ("aa", "AutoAttack")):
        c = compare_evaluations(suites[first], suites[second], attack)
        parts.append(f"{label} {c.difference:+.1f} points ({c.word}; {c.test}, {p_text(c.p)})")
    flagged = [m for m in (first, second) if suites[m]["flags"]]
    return (f"On this page's network and data, {first} against {second}: " + "; ".join(parts) + ". "
            + (f"The checks flag {' and '.join(flagged)} (under the table: what they found), so the comparison "
               f"stands on evaluations they question. " if flagged else "")
            + f"The paper's Table 4 (CIFAR-10; ResNet-18 by our reading, the paper names no network or schedule for "
            f"it): natural {paper_first[0] - paper_second[0]:+.2f}, AutoAttack {paper_first[5] - paper_second[5]:+.2f} "
            f"points.")


def flags_sentence(suites: dict[str, dict]) -> str:
    """What the evaluation's checks flagged (`cktat_core.checks`), model by model, in the checks' own words; empty
    where nothing was flagged."""
    said = [f"{m}: " + "; ".join(f"{f['check']}, {f['message'].rstrip('.')}" for f in s["flags"])
            for m, s in suites.items() if s["flags"]]
    return ("What the checks flag (a flag names the check that failed). " + " ".join(f"{x}." for x in said)
            if said else "")


def settings_text(settings: dict) -> str:
    """A `fit` budget as a page prints it: "epochs = 8, lr = 0.1, eps = 8/255" (a budget on the 0-1 pixel scale in
    255ths, as the papers write it; `progress` left out)."""
    def value(k, v):
        if k in ("eps", "alpha") and isinstance(v, float):
            return f"{v * 255:.3g}/255"
        return f"{v:g}" if isinstance(v, float) else f"{v}"
    return ", ".join(f"{k} = {value(k, v)}" for k, v in settings.items() if k != "progress")


def teacher_sentence(method: str, summary: dict | None) -> str:
    """What `method`'s clean teacher hands its student, in words, from `fitting.teacher_summary` (its natural
    accuracy on the test images and, where the run has a temperature, the mean probability its softened label
    puts on the true class over the training images). Empty for a method without a teacher."""
    if summary is None:
        return ""
    text = f"{method}'s clean teacher classifies {summary['accuracy']:.1f}% of the {summary['test_images']:,} test images"
    if summary.get("tau") is None:
        return text + "."
    return text + (f"; at tau = {summary['tau']:g} its softened label puts {summary['label_mass']:.1f}% of its "
                   f"probability on the true class, on average over the {summary['train_images']:,} training images "
                   f"(uniform: {100 / summary['classes']:.0f}%): the label its student's adversarial examples are "
                   f"trained on.")

"""Table 3 of the paper (002) as data: ablation and sweep rows of CKTAT runs, the value a sweep picks on the
validation split, and the paper's two claims about tau and beta checked against a sweep.

Torch-free: every function reads what `train.run` wrote (`result.json`) or numbers taken from it.

- `table3_row`: one row of Table 3 for a run: natural and PGD test accuracy at the last epoch and at the epoch
  chosen on validation, that epoch, its validation score, and (multi-view data) the probe accuracies.
- `pick_on_validation`: the swept value whose run scores best on the validation split (the trainer's selection
  score: the best epoch's validation PGD accuracy); never the test set.
- `spearman`, `peak`, `tau_claim`, `beta_claim`: the paper's sentences "performance rises up to tau = 5 and
  falls after it" (Sec. 5, Table 3b) and "a larger beta trades natural for robust accuracy" (Table 3c) as
  numbers: where each sweep peaks and rank correlations between the swept value and each accuracy, for our
  sweep and for the paper's.
- `seed_noise`: the run-to-run difference of two seeds beside the binomial noise of the test set.
"""

from __future__ import annotations

from .checks import noise_margin
from .report import row


def validation_key(history: list[dict]) -> str:
    """The validation accuracy the trainer selects the best epoch on: its PGD accuracy (natural for clean runs)."""
    keys = [k for k in history[0] if k.startswith("val_pgd")]
    return keys[0] if keys else "val_natural"


def best_epoch(history: list[dict]) -> dict:
    """The epoch record the trainer keeps as best: the first epoch with the highest selection score."""
    key = validation_key(history)
    return max(history, key=lambda h: (h[key], -h["epoch"]))


def table3_row(res: dict, robust: str) -> dict:
    """One Table 3 row of a run's `result.json` (`train.run`): `natural` and `robust` at the last epoch and at the
    best-on-validation epoch (`best natural`, `best <robust>`, `best epoch`), the validation score of that epoch
    (`val <robust>`), and on the multi-view data the last epoch's probe accuracies and single-view accuracy with a
    weak feature 1 (`probe_f2`, `probe_f1`, `needs f2`)."""
    student = res["student"]
    last = row(student["last"])
    best = row(student.get("best", student["last"]))
    chosen = best_epoch(student["history"])
    out = {"natural": last["natural"], robust: last[robust], "best epoch": chosen["epoch"],
           "best natural": best["natural"], f"best {robust}": best[robust],
           f"val {robust}": chosen[validation_key(student["history"])]}
    for key, name in (("probe_f2", "probe_f2"), ("probe_f1", "probe_f1"), ("natural weak_f1", "needs f2")):
        if key in last:
            out[name] = last[key]
    return out


def pick_on_validation(histories: dict[float, list[dict]], n_val: int) -> dict:
    """The swept value whose run has the highest validation selection score (`best_epoch`); ties go to the higher
    validation natural accuracy at that epoch, then to the smaller value.

    Returns {"value", "score", "runner_up", "runner_up_score", "separated"}: `separated` is False when the winner and
    the runner-up are within the noise of two accuracies on the n_val validation images (`checks.noise_margin`)."""
    def rank(value):
        h = best_epoch(histories[value])
        return h[validation_key(histories[value])], h["val_natural"], -value

    order = sorted(histories, key=rank, reverse=True)
    score = lambda v: rank(v)[0]
    out = {"value": order[0], "score": score(order[0]), "runner_up": None, "runner_up_score": None,
           "separated": True}
    if len(order) > 1:
        a, b = score(order[0]), score(order[1])
        out.update(runner_up=order[1], runner_up_score=b, separated=a - b > noise_margin(a, b, n_val))
    return out


def _ranks(values: list[float]) -> list[float]:
    """Ranks from 1, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Spearman's rank correlation (Pearson's on average ranks); None when either side is constant or n < 2."""
    if len(xs) != len(ys):
        raise ValueError(f"spearman needs two lists of the same length, got {len(xs)} and {len(ys)}")
    if len(xs) < 2:
        return None
    rx, ry = _ranks(list(xs)), _ranks(list(ys))
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / (sxx * syy) ** 0.5


def peak(curve: dict[float, float]) -> float:
    """The swept value with the highest accuracy (the smaller value on a tie)."""
    return max(sorted(curve), key=lambda v: curve[v])


def rises_then_falls(curve: dict[float, float], n: int) -> bool:
    """Whether the curve has an interior peak: the peak is neither the first nor the last swept value and lies
    above both ends beyond the noise of two accuracies on n images."""
    values = sorted(curve)
    top = peak(curve)
    if top in (values[0], values[-1]):
        return False
    return all(curve[top] - curve[v] > noise_margin(curve[top], curve[v], n) for v in (values[0], values[-1]))


def tau_claim(ours: dict[float, float], paper: dict[float, float], n: int) -> dict:
    """The paper's tau claim (Table 3b: robust accuracy rises up to tau = 5, then falls) on our robust curve.

    Returns the peaks of both curves, whether each rises then falls (`rises_then_falls`; the paper's numbers are
    taken as exact: n = 0 there), and Spearman's correlation between our curve and the paper's over the common
    values of tau."""
    common = sorted(set(ours) & set(paper))
    return {"peak": peak(ours), "paper_peak": peak(paper), "rises_then_falls": rises_then_falls(ours, n),
            "paper_rises_then_falls": rises_then_falls(paper, 0),
            "rank_correlation": spearman([ours[t] for t in common], [paper[t] for t in common])}


def beta_claim(natural: dict[float, float], robust: dict[float, float], paper: dict[float, tuple[float, float]]) -> dict:
    """The paper's beta claim (Table 3c: a larger beta lowers natural and raises robust accuracy) on our sweep:
    Spearman's correlation of beta with natural and with robust accuracy, ours and the paper's. The trade holds
    when beta correlates negatively with natural and positively with robust accuracy."""
    bs, ps = sorted(natural), sorted(paper)
    out = {"natural": spearman(bs, [natural[b] for b in bs]), "robust": spearman(bs, [robust[b] for b in bs]),
           "paper_natural": spearman(ps, [paper[b][0] for b in ps]),
           "paper_robust": spearman(ps, [paper[b][1] for b in ps])}
    out["trade"] = (out["natural"] or 0) < 0 < (out["robust"] or 0)
    out["paper_trade"] = (out["paper_natural"] or 0) < 0 < (out["paper_robust"] or 0)
    return out


def seed_noise(a: dict, b: dict, columns: list[str], n: int) -> dict[str, dict]:
    """Per column, the difference between two seeds' rows and the binomial noise of one accuracy pair on n test
    images; `noise` is the larger of the two: the margin within which two rows of the sweep count as the same."""
    out = {}
    for c in columns:
        seed, binomial = abs(a[c] - b[c]), noise_margin(a[c], b[c], n)
        out[c] = {"seeds": seed, "binomial": binomial, "noise": max(seed, binomial)}
    return out

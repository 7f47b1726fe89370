"""Whether two accuracies differ beyond noise: the one three-way comparison every page calls.

`compare(a, b, ...)` says "above", "within noise" or "below" (a against b) and why, from the strongest evidence it
is given:

- several seeds per side (a and b are lists): Welch's t-test on the per-seed accuracies
  (`scipy.stats.ttest_ind(equal_var=False)`), the run-to-run spread of each method: the test for "method A beats
  method B" when both were trained with several seeds;
- per-image correctness of two models on the same test images (`bits`, as `evaluate.summarize` stores them):
  McNemar's exact test, a two-sided binomial test on the images exactly one of the two gets right
  (`scipy.stats.binomtest`), far more sensitive than two independent margins, because the images both get right or
  both get wrong carry no information about the difference;
- two single accuracies on n images each: two binomial standard errors of their difference (`checks.noise_margin`),
  what remains for numbers without per-image results (the paper's).

A single run of each side measures test-sampling noise only; runs of another seed move further. `spread` (the
standard deviation of one run's accuracy over seeds, `seed_spread`) adds that: a difference then also has to exceed
z * sqrt(2) * spread, the noise of the difference of two runs.

Every comparison also carries `half_width`, the half-width of a 95% interval for the difference (the t interval of
the seeds or of the per-image differences; two standard errors of the paired difference plus the seeds' margin
where one is given; for two single accuracies without per-image results, the larger of their binomial margin and
the seeds' margin): how large a difference the evidence could have missed. A claim that two methods
are level is only reproduced when that interval is narrow enough (`claims.verdict`). Torch-free.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

from cktat_core.checks import noise_margin

ABOVE, WITHIN, BELOW = "above", "within noise", "below"
ALPHA = 0.05  # two-sided level of every test here
Z = 2.0  # standard errors of a margin (about the same 95%)


@dataclass(frozen=True)
class Comparison:
    """a against b: `word` (ABOVE, WITHIN or BELOW), `difference` (a - b, points; seed means for seeds), `p` (the
    test's two-sided p-value; None for a margin rule), `margin` (points within which the difference counts as zero;
    None for a pure test), `test` (which evidence decided, in words) and `half_width` (points: the difference lies
    within `difference` +- `half_width` at about 95%; None when unknown)."""

    word: str
    difference: float
    p: float | None
    margin: float | None
    test: str
    half_width: float | None = None

    @property
    def sign(self) -> int:
        return {ABOVE: 1, WITHIN: 0, BELOW: -1}[self.word]

    def evidence(self, digits: int = 1) -> str:
        """"+1.2 points, p = 0.03, by McNemar, 5000 paired images": no parenthesis of its own, so a page can put it in
        one."""
        parts = [f"{rounded(self.difference, digits):+.{digits}f} points"]
        if self.p is not None:
            parts.append(p_text(self.p))
        if self.margin is not None:
            parts.append(f"noise {self.margin:.{digits}f}")
        return ", ".join(parts) + f", by {self.test}"


def rounded(v: float, digits: int) -> float:
    """`v` rounded to `digits`, a value that rounds to zero made +0.0, so a page never prints "-0.0"."""
    return round(v, digits) + 0.0


def p_value(p: float) -> str:
    """A p-value for a table cell, two significant figures: "0.0031", "0.10"; "< 1e-300" where the float underflowed
    to zero ("0" is never true)."""
    return "< 1e-300" if p <= 0 else f"{p:#.2g}"


def p_text(p: float) -> str:
    """A p-value for a sentence: "p = 0.0031", or "p < 1e-300" (`p_value`)."""
    return f"p {p_value(p)}" if p <= 0 else f"p = {p_value(p)}"


def _word(difference: float, decided: bool) -> str:
    return WITHIN if not decided or difference == 0 else (ABOVE if difference > 0 else BELOW)


def mcnemar_p(bits_a: str, bits_b: str) -> tuple[float, int, int]:
    """McNemar's exact test of two models on the same images ("1" right): (two-sided p, images only a gets right,
    images only b gets right)."""
    from scipy.stats import binomtest

    if len(bits_a) != len(bits_b):
        raise ValueError(f"per-image results of different lengths ({len(bits_a)} and {len(bits_b)} images)")
    only_a = sum(1 for x, y in zip(bits_a, bits_b) if x == "1" and y == "0")
    only_b = sum(1 for x, y in zip(bits_a, bits_b) if x == "0" and y == "1")
    p = 1.0 if only_a + only_b == 0 else binomtest(only_a, only_a + only_b, 0.5).pvalue
    return float(p), only_a, only_b


def seed_spread(values: Sequence[float]) -> float | None:
    """The standard deviation of one run's accuracy over seeds (None for fewer than two seeds)."""
    return statistics.stdev(values) if len(values) >= 2 else None


@dataclass(frozen=True)
class Spread:
    """The run-to-run spread of one network's runs, pooled over every seeded method: `sd` (the pooled standard
    deviation of one run's accuracy), `df` (its degrees of freedom: runs minus methods), `upper` (the one-sided 95%
    upper confidence bound of that standard deviation, from the chi-square distribution of df * s^2 / sigma^2),
    `methods` and `runs` (how many of each it pools)."""

    sd: float
    df: int
    upper: float
    methods: int
    runs: int

    def sentence(self, what: str = "accuracy") -> str:
        """"3 methods, 9 runs: pooled standard deviation 0.3 points (6 degrees of freedom), at most 0.6 at 95%
        confidence, so two single runs count as apart only beyond 1.7 points" (`run_margin`)."""
        return (f"{self.methods} methods, {self.runs} runs: pooled standard deviation of one run's {what} "
                f"{self.sd:.2f} points ({self.df} degrees of freedom), at most {self.upper:.2f} at 95% confidence, "
                f"so two single runs count as apart only beyond {run_margin(self.upper):.2f} points")


def pooled_spread(groups: dict[str, Sequence[float]], confidence: float = 0.95) -> Spread | None:
    """The seeds' spread of one network pooled over every method with at least two seeds (`groups`: method -> its
    seeds' accuracies): a standard deviation from three seeds is uncertain by several times itself, and pooling the
    methods trained under one budget (whose spreads estimate the same training noise) gives it more degrees of
    freedom. Its upper confidence bound is the margin a single run is judged against. None without two seeds of any
    method."""
    from scipy.stats import chi2

    kept = [list(v) for v in groups.values() if len(v) >= 2]
    if not kept:
        return None
    df = sum(len(v) - 1 for v in kept)
    ss = sum(sum((x - statistics.fmean(v)) ** 2 for x in v) for v in kept)
    sd = math.sqrt(ss / df)
    upper = math.sqrt(ss / chi2.ppf(1 - confidence, df))
    return Spread(sd, df, upper, len(kept), sum(len(v) for v in kept))


def detectable_difference(n: int, discordant: float, z: float = Z) -> float:
    """The smallest difference (points) between two models on the same `n` images that a paired test can tell from
    noise when a share `discordant` (0 to 1) of the images gets different answers from the two: z standard errors of
    the mean per-image difference when that difference is zero (`paired_half_width`)."""
    return 100 * z * math.sqrt(max(discordant, 0.0) / max(n, 1))


def detectable_sentence(n: int, shares: Sequence[float], attack: str = "AutoAttack") -> str:
    """What the page's images can resolve: on `n` images, with the share of images on which two compared models
    disagree (`shares`, one per pair compared; the median is used), the smallest difference a paired test detects."""
    q = statistics.median(shares) if shares else 0.0
    return (f"On {n:,} test images, where two of these models disagree on {100 * q:.0f}% of the images under "
            f"{attack} (the median over the pairs compared), a difference smaller than "
            f"{detectable_difference(n, q):.1f} points cannot be told from test-image noise.")


def discordance(bits_a: str, bits_b: str) -> float:
    """The share of images on which two models' per-image results differ."""
    return sum(x != y for x, y in zip(bits_a, bits_b)) / max(len(bits_a), 1)


def seeded_columns(robust: str) -> tuple[str, ...]:
    """The columns whose seeds are evaluated, so whose spread is their own: natural accuracy, the runs' own test
    attack `robust` and AutoAttack; every other attack of a suite borrows `robust`'s."""
    return ("natural", robust, "aa")


def run_margin(spread: float, z: float = Z) -> float:
    """How far two single runs must lie apart (points) before training noise cannot explain it: z standard deviations
    of the difference of two runs, each with standard deviation `spread` (the pooled spread's upper bound), z * sqrt(2)
    * spread."""
    return z * math.sqrt(2) * spread


def compare(a: float | Sequence[float], b: float | Sequence[float], *, n: int | None = None,
            bits: tuple[str, str] | None = None, spread: float | None = None, alpha: float = ALPHA) -> Comparison:
    """a against b (accuracies in %, or lists of per-seed accuracies): see the module docstring for the evidence
    used. With lists of at least two seeds on both sides the seeds decide (Welch); else `bits` (McNemar) when given,
    else the binomial margin on `n` images; `spread` adds the run-to-run margin to the last two."""
    if not isinstance(a, (int, float)) and not isinstance(b, (int, float)):
        a, b = list(a), list(b)
        if len(a) >= 2 and len(b) >= 2:
            from scipy.stats import ttest_ind

            diff = statistics.fmean(a) - statistics.fmean(b)
            if statistics.pvariance(a) + statistics.pvariance(b) == 0:
                p, half = (1.0 if diff == 0 else 0.0), 0.0
            else:
                res = ttest_ind(a, b, equal_var=False)
                ci = res.confidence_interval(1 - alpha)
                p, half = float(res.pvalue), float(ci.high - ci.low) / 2
            return Comparison(_word(diff, p < alpha), diff, p, None, f"Welch's t-test, {len(a)} and {len(b)} seeds",
                              half)
        a, b = a[0], b[0]  # one seed: the single-run rules below
    diff = float(a) - float(b)
    margin_runs = run_margin(spread) if spread else 0.0
    if bits is not None:
        p, only_a, only_b = mcnemar_p(*bits)
        decided = p < alpha and abs(diff) > margin_runs
        what = f"McNemar, {len(bits[0]):,} paired images" + (", and the seeds' spread" if spread else "")
        return Comparison(_word(diff, decided), diff, p, margin_runs or None, what,
                          paired_half_width(only_a, only_b, len(bits[0])) + margin_runs)
    if n is None:
        raise ValueError("compare needs seeds, per-image results (bits) or the number of images n")
    margin = max(noise_margin(a, b, n, Z), margin_runs)
    what = f"two binomial margins, {n:,} images each" + (", and the seeds' spread" if spread else "")
    return Comparison(_word(diff, abs(diff) > margin), diff, None, margin, what, margin)


def paired_half_width(only_a: int, only_b: int, n: int, z: float = Z) -> float:
    """z standard errors (points) of the difference of two accuracies on the same n images, from the images only
    one of them gets right: the per-image difference is +1, -1 or 0, and its mean is the difference."""
    if n <= 0:
        return 0.0
    mean = (only_a - only_b) / n
    var = (only_a + only_b) / n - mean * mean
    return 100 * z * math.sqrt(max(var, 0.0) / n)


def _t_half_width(res, alpha: float, scale: float = 1.0) -> float:
    """Half the width of the (1 - alpha) interval of a scipy t-test result, times `scale`."""
    ci = res.confidence_interval(1 - alpha)
    return scale * float(ci.high - ci.low) / 2


def bits_of(evaluation: dict, attack: str = "natural") -> str | None:
    """The per-image results of one attack of a final evaluation (`train.final_evaluation`, {"test": ...}) or of an
    `evaluate` result ({"attacks": ...}); None where they were not stored (evaluations written before they were)."""
    attacks = evaluation["test"]["attacks"] if "test" in evaluation else evaluation["attacks"]
    return attacks.get(attack, {}).get("bits")


def compare_evaluations(a: dict, b: dict, attack: str = "natural", spread: float | None = None) -> Comparison:
    """Two evaluations of the same test images under `attack`: McNemar on their per-image results where both have
    them, else the binomial margin."""
    ea = a["test"]["attacks"][attack] if "test" in a else a["attacks"][attack]
    eb = b["test"]["attacks"][attack] if "test" in b else b["attacks"][attack]
    ba, bb = bits_of(a, attack), bits_of(b, attack)
    if ba is not None and bb is not None and len(ba) == len(bb):
        return compare(ea["accuracy"], eb["accuracy"], bits=(ba, bb), spread=spread)
    return compare(ea["accuracy"], eb["accuracy"], n=min(ea["total"], eb["total"]), spread=spread)


EXACT_SPEARMAN = 8  # up to this many pairs the p-value counts every permutation (8! = 40,320)


def spearman(a: Sequence[float], b: Sequence[float], alternative: str = "greater") -> tuple[float | None, float | None]:
    """Spearman's rank correlation of two equally long lists and its p-value (`scipy.stats.spearmanr`; one-sided
    "greater" by default: do the orderings agree?). (None, None) for fewer than three pairs or a constant list.

    Up to `EXACT_SPEARMAN` pairs the p-value is exact: the share of the orderings of `a` whose correlation with `b` is
    at least as extreme (scipy's t approximation gives p = 0 for a perfect ordering of eight runs, whose exact
    two-sided p is 2 / 8!)."""
    from scipy.stats import spearmanr

    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return None, None
    res = spearmanr(a, b, alternative=alternative)
    rho = float(res.statistic)
    if len(a) > EXACT_SPEARMAN:
        return rho, float(res.pvalue)
    import itertools

    import numpy as np
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    perms = np.array(list(itertools.permutations(ra)))
    pa, pb = perms - perms.mean(axis=1, keepdims=True), rb - rb.mean()
    rhos = (pa @ pb) / (np.sqrt((pa ** 2).sum(axis=1)) * np.sqrt((pb ** 2).sum()))
    eps = 1e-12
    if alternative == "greater":
        p = float(np.mean(rhos >= rho - eps))
    elif alternative == "less":
        p = float(np.mean(rhos <= rho + eps))
    else:
        p = float(np.mean(np.abs(rhos) >= abs(rho) - eps))
    return rho, p


def change_margin(accuracies: Sequence[float], n: int, z: float = Z) -> float:
    """Points within which a signed sum of accuracies measured on n images each (a change of a gap: four models)
    counts as zero: z binomial standard errors of the sum, the accuracies taken as independent (which overstates the
    noise of accuracies on the same images, so the verdict errs towards "within noise"); at least one image."""
    var = sum((a / 100) * (1 - a / 100) / n for a in accuracies)
    return max(z * 100 * math.sqrt(var), 100 / n)


def change_margin(spread: float, seeds: int = 1, z: float = Z) -> float:
    """How far a change of a gap must go before training noise cannot explain it: z standard deviations of
    (m_L - b_L) - mean over `seeds` of (m_S - b_S), two single runs on one side and two means of `seeds` runs each on
    the other, every run with standard deviation `spread`: z * spread * sqrt(2 + 2 / seeds) (z * 2 * spread for four
    single runs)."""
    return z * spread * math.sqrt(2 + 2 / seeds)


def compare_change(large: tuple[str, str], small: tuple[str | Sequence[str], str | Sequence[str]],
                   accuracies: tuple[float, float, float, float], spread: float | None = None,
                   alpha: float = ALPHA) -> Comparison:
    """Whether a method's gap to a baseline changes from one setting to another (Table 1: from the small to the
    large student; the budget ladder: from the profile's budget to a larger one), models on the same test images.
    `large` is (method's bits, baseline's bits); `small` the same, or (the method's seeds' bits, the baseline's
    seeds' bits), as many seeds on each side; `accuracies` (method large, baseline large, method small, baseline
    small; the small side the seeds' means), in %. Per image the change is (m_L - b_L) - mean over the seeds of
    (m_S - b_S); a one-sample t-test on it (`scipy.stats.ttest_1samp`) is the paired test of the models, and `spread`
    (one run's seed spread) adds the run-to-run margin of those runs (`change_margin`)."""
    from scipy.stats import ttest_1samp

    ms_bits, bs_bits = ([v] if isinstance(v, str) else list(v) for v in small)
    if len(ms_bits) != len(bs_bits):
        raise ValueError("compare_change needs as many seeds of the method as of the baseline")
    k = len(ms_bits)
    ml, bl, ms, bs = accuracies
    diff = (ml - bl) - (ms - bs)
    before = [sum(int(m[i]) - int(b[i]) for m, b in zip(ms_bits, bs_bits)) / k for i in range(len(large[0]))]
    x = [(int(a) - int(b)) - d for a, b, d in zip(large[0], large[1], before)]
    if len(set(x)) < 2:
        p, half = (1.0 if not any(x) else 0.0), 0.0
    else:
        res = ttest_1samp(x, 0.0)
        p, half = float(res.pvalue), _t_half_width(res, alpha, 100.0)
    margin = change_margin(spread, k) if spread else 0.0
    models = "four models" if k == 1 else f"two runs against {k} seeds of each method"
    what = f"paired t-test over {len(x):,} images of {models}" + (", and the seeds' spread" if spread else "")
    return Comparison(_word(diff, p < alpha and abs(diff) > margin), diff, p, margin or None, what, half + margin)


def compare_values(a: Sequence[float], b: Sequence[float], alpha: float = ALPHA) -> Comparison:
    """Two models' per-image values (e.g. knowledge points) on the same images, in the same order: a paired t-test
    on the differences (`scipy.stats.ttest_rel`); the difference is the mean of a minus the mean of b."""
    from scipy.stats import ttest_rel

    if len(a) != len(b) or not len(a):
        raise ValueError("compare_values needs two equally long, non-empty lists")
    pairs = [(u, v) for u, v in zip(a, b) if not (math.isnan(u) or math.isnan(v))]  # images without a value
    if not pairs:
        return Comparison(WITHIN, 0.0, None, None, "no image with a value on both sides")
    a, b = [u for u, _ in pairs], [v for _, v in pairs]
    d = [u - v for u, v in pairs]
    diff = statistics.fmean(d)
    if len(set(d)) < 2:
        p, half = (1.0 if diff == 0 else 0.0), 0.0
    else:
        res = ttest_rel(a, b)
        p, half = float(res.pvalue), _t_half_width(res, alpha)
    return Comparison(_word(diff, p < alpha), diff, p, None, f"paired t-test over {len(d):,} images", half)


def split_half(bits: str) -> Comparison:
    """The accuracy on the first half of the test images against the second half (two independent binomials):
    whether a figure depends on which test images were drawn. A reader who reruns on other official test images
    should see the same figure within this noise."""
    half = len(bits) // 2
    a, b = bits[:half], bits[half:2 * half]
    acc = lambda s: 100.0 * s.count("1") / max(len(s), 1)
    return compare(acc(a), acc(b), n=half)


def not_below(a: float, b: float, n: int, spread: float | None = None) -> bool:
    """Accuracy a (%) is not below b beyond the noise of two accuracies on n images (`noise.compare`), and of two
    single runs where `spread` (the pooled seed spread's upper bound) is given."""
    return compare(a, b, n=n, spread=spread).word != BELOW

def within_noise(a: float, b: float, n: int) -> bool:
    """Accuracies a and b (%) on n images each lie within noise of each other (`noise.compare`)."""
    return compare(a, b, n=n).word == WITHIN

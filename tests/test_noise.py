"""The one three-way comparison (`noise.compare`): each kind of evidence decides, and decides in the right direction."""

import random

import pytest

from cktat_book import noise


def _bits(n, right, seed):
    """n per-image results with `right` of them correct, in a seeded random order."""
    b = ["1"] * right + ["0"] * (n - right)
    random.Random(seed).shuffle(b)
    return "".join(b)


def test_mcnemar_counts_only_the_images_where_the_models_disagree():
    a = "1100" * 50
    b = "1010" * 50
    p, only_a, only_b = noise.mcnemar_p(a, b)
    assert (only_a, only_b) == (50, 50) and p == pytest.approx(1.0)
    p, only_a, only_b = noise.mcnemar_p("1" * 30 + "0" * 70, "0" * 100)
    assert (only_a, only_b) == (30, 0) and p < 1e-8  # 2 * 0.5 ** 30
    with pytest.raises(ValueError):
        noise.mcnemar_p("11", "1")


def test_paired_images_detect_a_difference_two_margins_miss():
    """Model b is model a with 40 of 2000 images turned right: 2 points, under the two-margin noise (about 3 points)
    but certain image by image."""
    a = _bits(2000, 1000, 0)
    wrong = [i for i, c in enumerate(a) if c == "0"][:40]
    b = "".join("1" if i in wrong else c for i, c in enumerate(a))
    acc_a, acc_b = 100 * a.count("1") / 2000, 100 * b.count("1") / 2000
    margin = noise.compare(acc_b, acc_a, n=2000)
    paired = noise.compare(acc_b, acc_a, bits=(b, a))
    assert margin.word == noise.WITHIN and margin.margin > 2.0
    assert paired.word == noise.ABOVE and paired.p < 1e-6 and paired.difference == pytest.approx(2.0)
    assert noise.compare(acc_a, acc_b, bits=(a, b)).word == noise.BELOW
    # the seeds' spread can still call it noise: two runs of one method move by more than that
    assert noise.compare(acc_b, acc_a, bits=(b, a), spread=1.5).word == noise.WITHIN


def test_two_independent_models_of_equal_accuracy_are_within_noise():
    a, b = _bits(5000, 2500, 1), _bits(5000, 2500, 2)
    c = noise.compare(50.0, 50.0, bits=(a, b))
    assert c.word == noise.WITHIN and c.p > 0.05


def test_seeds_decide_with_welch_when_both_sides_have_several():
    c = noise.compare([50.1, 49.8, 50.3], [45.0, 45.4, 44.9])
    assert c.word == noise.ABOVE and c.p < 0.01 and "Welch" in c.test
    c = noise.compare([50.1, 45.2, 55.3], [49.0, 52.4, 47.9])
    assert c.word == noise.WITHIN
    # one seed on a side: the single-run rules
    assert noise.compare([50.0], [40.0], n=1000).word == noise.ABOVE


def test_binomial_margin_grows_with_fewer_images_and_needs_some_evidence():
    assert noise.compare(52.0, 50.0, n=100).word == noise.WITHIN
    assert noise.compare(52.0, 50.0, n=100000).word == noise.ABOVE
    with pytest.raises(ValueError):
        noise.compare(52.0, 50.0)


def test_compare_evaluations_uses_bits_when_both_have_them():
    ev = lambda bits: {"test": {"attacks": {"natural": {"accuracy": 100 * bits.count("1") / len(bits),
                                                        "total": len(bits), "bits": bits}}}}
    a = "1" * 60 + "0" * 40
    b = "1" * 40 + "0" * 60
    c = noise.compare_evaluations(ev(a), ev(b))
    assert c.word == noise.ABOVE and "McNemar" in c.test
    old = {"test": {"attacks": {"natural": {"accuracy": 40.0, "total": 100}}}}
    assert "binomial" in noise.compare_evaluations(ev(a), old).test


def test_spearman_from_scipy_with_a_one_sided_p():
    rho, p = noise.spearman([1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5])
    assert rho == pytest.approx(0.8286, abs=1e-3) and p < 0.05
    rho, p = noise.spearman([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1])
    assert rho == pytest.approx(-1.0) and p > 0.95
    assert noise.spearman([1, 2], [1, 2]) == (None, None)
    assert noise.seed_spread([1.0, 3.0]) == pytest.approx(2 ** 0.5) and noise.seed_spread([1.0]) is None


def test_every_comparison_carries_the_half_width_of_its_interval():
    # McNemar: 30 images only a gets right, 10 only b, of 1,000: two standard errors of the mean per-image difference
    a = "1" * 30 + "0" * 10 + "1" * 500 + "0" * 460
    b = "0" * 30 + "1" * 10 + "1" * 500 + "0" * 460
    c = noise.compare(56.0, 54.0, bits=(a, b))
    mean, var = 0.02, 0.04 - 0.02 ** 2
    assert c.half_width == pytest.approx(100 * 2 * (var / 1000) ** 0.5)
    # the seeds' margin widens the interval as it widens the decision
    assert noise.compare(56.0, 54.0, bits=(a, b), spread=0.5).half_width == pytest.approx(c.half_width + 2 * 2 ** 0.5 * 0.5)
    # Welch: scipy's 95% interval of the difference of the means
    from scipy.stats import ttest_ind

    ci = ttest_ind([50.0, 51.0, 52.5], [49.0, 49.5, 51.0], equal_var=False).confidence_interval(0.95)
    assert noise.compare([50.0, 51.0, 52.5], [49.0, 49.5, 51.0]).half_width == pytest.approx((ci.high - ci.low) / 2)
    # two binomial margins: the margin itself
    m = noise.compare(56.0, 54.0, n=1000)
    assert m.half_width == m.margin


def test_spearman_is_exact_for_few_runs():
    rho, p = noise.spearman(list(range(8)), list(range(8))[::-1], "two-sided")
    assert rho == pytest.approx(-1.0) and p == pytest.approx(2 / 40320)  # scipy's t approximation says 0
    rho, p = noise.spearman([1, 2, 3, 4], [1, 2, 3, 4], "greater")
    assert p == pytest.approx(1 / 24)
    assert noise.p_text(0.0) == "p < 1e-300" and noise.p_text(0.0312) == "p = 0.031"
    assert noise.p_text(0.1) == "p = 0.10" and noise.p_value(1.0) == "1.0"  # two significant figures, always


def test_the_margin_the_pages_state_in_words_is_the_one_the_verdicts_use():
    """Chapters 02 and 99 state the single-run margin as 2 sqrt 2 times the pooled spread's upper bound: the rule
    `run_margin` applies must be that factor, and a change of `Z` must reach their prose."""
    import glob
    import math
    import os

    factor = noise.run_margin(1.0)
    assert factor == pytest.approx(2 * math.sqrt(2))
    root = os.path.join(os.path.dirname(__file__), "..", "notebooks")
    stating = [p for p in glob.glob(os.path.join(root, "*.ipynb")) if r"2\\sqrt{2}" in open(p).read()]
    assert len(stating) == 2 and f"{noise.Z:g}" == "2"

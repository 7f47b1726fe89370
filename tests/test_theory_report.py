import math

import pytest

from cktat_book import mechanism, report


def test_eq11_matches_the_formula_written_out():
    mu, k1, k2, t, s = 0.4, 0.3, 0.8, 1.0, 3.0
    e = math.exp
    expected = (1 - mu) * (e(t) / (e(t) + e(k1 * s)) - e(2 * t) / (e(2 * t) + e((k1 + k2) * s))) \
        - 0.5 * mu * e(t) / (e(t) + e(k2 * s))
    assert mechanism.robust_error_change(mu, k1, k2, t, s) == pytest.approx(expected, rel=1e-12)
    assert mechanism.lacks_incentive(mu, k1, k2, t, s)


def test_paper_example_as_printed_is_its_printed_value():
    # 0.6 (e/(e+e^0.9) - e^2/(e^2+e^2.9)) - 0.2 e/(e+e^2.4), the expression of Sec. 3.2 (about 0.102)
    e = math.exp
    printed = 0.6 * (e(1) / (e(1) + e(0.9)) - e(2) / (e(2) + e(2.9))) - 0.2 * e(1) / (e(1) + e(2.4))
    assert mechanism.paper_example_as_printed() == pytest.approx(printed, rel=1e-12)
    assert abs(printed - 0.102) < 0.001


def test_incentive_flips_with_many_single_view_samples():
    # with all data single-view, learning the second feature always lowers the robust error
    assert not mechanism.lacks_incentive(1.0, 0.3, 0.8)
    assert mechanism.robust_error_change(0.4, 0.3, 0.8) > mechanism.robust_error_change(0.9, 0.3, 0.8)
    assert mechanism.clean_error_change(0.4) == pytest.approx(-0.2)


def test_paper_numbers_are_loaded():
    p = report.paper_numbers()
    assert p["cktat"]["table4_cifar10"]["CKTAT_beta6"][:2] == [83.45, 56.80]
    assert p["cktat"]["table3b_tau"][5] == [83.45, 56.81]


def test_markdown_table_and_summary():
    ev = {"test": {"attacks": {"natural": {"accuracy": 90.0, "groups": {"single_view": 80.0}},
                               "pgd20": {"accuracy": 40.5, "groups": {"single_view": 30.0}}}},
          "probe_f2": {"attacks": {"natural": {"accuracy": 12.5}}}}
    row = report.row(ev)
    assert row == {"natural": 90.0, "pgd20": 40.5, "natural single_view": 80.0, "pgd20 single_view": 30.0,
                   "probe_f2": 12.5}
    table = report.markdown_table([{"m": "a", **row}], ["m", "natural", "pgd20", "missing"], headers={"m": "model"})
    assert table.splitlines()[0] == "| model | natural | pgd20 | missing |"
    assert table.splitlines()[2] == "| a | 90.0 | 40.5 | - |"
    assert report.markdown_table([{"m": "P(y|x)"}]).splitlines()[2] == "| P(y\\|x) |"  # a bar is not a column
    assert report.markdown_table([{"d": 1.0}], headers={"d": "mean |a - b|"}).splitlines()[0] == "| mean \\|a - b\\| |"

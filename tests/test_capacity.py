"""Table 1 (capacity): the torch-free decisions of chapter 06 and its figure."""

import pytest

from cktat_core import report, verdicts
from cktat_core.checks import noise_margin


def test_capacity_pair_keeps_the_chapters_network_as_one_of_the_two():
    assert verdicts.capacity_pair("resnet18", 0, 16) == {"small": {}, "large": {"model": "wrn34_10"}}
    assert verdicts.capacity_pair("wrn34_10", 0, 16) == {"small": {"model": "resnet18"}, "large": {}}
    assert verdicts.capacity_pair("preact_resnet18", 0, 16) == {"small": {"model": "resnet18"},
                                                                "large": {"model": "wrn34_10"}}
    assert verdicts.capacity_pair("small_cnn", 8, 16) == {"small": {"width": 4}, "large": {}}
    assert verdicts.capacity_pair("small_cnn", 0, 16) == {"small": {"width": 8}, "large": {}}  # 0: the default
    assert verdicts.capacity_pair("small_cnn", 5, 16) == {"small": {"width": 2}, "large": {}}
    with pytest.raises(ValueError):
        verdicts.capacity_pair("small_cnn", 1, 16)


def test_capacity_separated_uses_the_noise_of_the_validation_split():
    n = 500
    m = noise_margin(60.0, 60.0, n)
    assert verdicts.capacity_separated(60.0, 60.0 + 0.9 * m, n) == "tied"
    assert verdicts.capacity_separated(60.0, 60.0 + 1.2 * m, n) == "larger"
    assert verdicts.capacity_separated(60.0 + 1.2 * m, 60.0, n) == "smaller"
    assert verdicts.capacity_separated(60.0, 63.0, 100_000) == "larger"  # more images, less noise


def test_change_margin_is_the_noise_of_four_accuracies():
    # 4 accuracies at 50% on n images: 2 * 100 * sqrt(4 * 0.25 / n) = 200 / sqrt(n)
    assert verdicts.change_margin((50.0, 50.0, 50.0, 50.0), 10_000) == pytest.approx(2.0)
    assert verdicts.change_margin((100.0, 100.0, 100.0, 100.0), 200) == pytest.approx(0.5)  # at least one image


def _dir(ms, ps, ml, pl, n=1000):
    return verdicts.capacity_direction({"small": ms, "large": ml}, {"small": ps, "large": pl}, n)


def test_capacity_direction_outcomes():
    d = _dir(70.0, 80.0, 90.0, 80.0)
    assert d["outcome"] == "reproduced" and d["gaps"] == {"small": -10.0, "large": 10.0}
    assert d["signs"] == {"small": -1, "large": 1} and d["change"] == pytest.approx(20.0)
    # hurts both, but much less on the large student: the trend without the change of sign
    assert _dir(70.0, 80.0, 79.5, 80.0)["outcome"] == "same trend"
    # helps the small student, hurts the large one: the opposite
    assert _dir(90.0, 80.0, 70.0, 80.0)["outcome"] == "reversed"
    # small effects on 100 images: nothing beyond noise
    d = _dir(79.0, 80.0, 81.0, 80.0, n=100)
    assert d["outcome"] == "within noise" and d["signs"] == {"small": 0, "large": 0}
    # the same gaps on a million images are beyond noise
    assert _dir(79.0, 80.0, 81.0, 80.0, n=1_000_000)["outcome"] == "reproduced"


def test_the_papers_own_table1_read_with_the_noise_of_10000_images():
    t1 = report.paper_numbers()["cktat"]["table1_capacity"]

    def paper(method, i):
        return verdicts.capacity_direction({"small": t1["resnet18"][method][i], "large": t1["wrn34_10"][method][i]},
                                           {"small": t1["resnet18"]["PGDAT"][i], "large": t1["wrn34_10"]["PGDAT"][i]},
                                           10_000)

    assert paper("LBGAT", 0)["outcome"] == paper("LBGAT", 1)["outcome"] == "reproduced"
    # RSLAD's natural accuracy on ResNet-18 is above PGD-AT's (86.93 vs 83.92): a help, not a hurt
    assert paper("RSLAD", 0)["signs"]["small"] == 1 and paper("RSLAD", 0)["outcome"] == "reversed"
    # LTD's natural accuracy on WRN-34-10 is below PGD-AT's (84.42 vs 86.84)
    assert paper("LTD", 0)["signs"]["large"] == -1
    # ARD's PGD gain on WRN-34-10 (+1.39) lies within the noise of two accuracies on 10,000 images (about 1.40)
    assert paper("ARD", 1)["signs"]["large"] == 0 and paper("ARD", 1)["outcome"] == "same trend"


def test_capacity_sentence_and_rows():
    ours = {"natural": _dir(70.0, 80.0, 90.0, 80.0), "PGD-20": _dir(79.0, 80.0, 81.0, 80.0, n=100)}
    paper = {"natural": _dir(70.0, 80.0, 90.0, 80.0, 10_000), "PGD-20": _dir(70.0, 80.0, 90.0, 80.0, 10_000)}
    s = verdicts.capacity_sentence("ARD", ours, paper)
    assert s.startswith("**ARD**: our runs reproduce") and "on natural accuracy" in s
    assert "on PGD-20 accuracy the method shows no change" in s and "show the direction on both" in s
    none = {"natural": _dir(90.0, 80.0, 70.0, 80.0), "PGD-20": _dir(90.0, 80.0, 70.0, 80.0)}
    s = verdicts.capacity_sentence("IAD", none, none)
    assert "do not reproduce" in s and "does worse" in s and "direction does not hold" in s
    assert "has no row" in verdicts.capacity_sentence("CKTAT", ours, None)
    rows = verdicts.capacity_rows("ARD", ours, paper)
    assert [r["accuracy"] for r in rows] == ["natural", "PGD-20"]
    assert rows[0]["ours small"] == -10.0 and rows[0]["ours"] == "reproduced" and rows[1]["paper"] == "reproduced"
    assert "paper" not in verdicts.capacity_rows("CKTAT", ours, None)[0]


def test_capacity_summary_counts_reproduced_accuracies():
    out = verdicts.capacity_summary({"A": {"n": "reproduced", "r": "reproduced"},
                                     "B": {"n": "reproduced", "r": "reversed"},
                                     "C": {"n": "same trend", "r": "within noise"}})
    assert out == {"both": ["A"], "one": ["B"], "none": ["C"]}


def test_teacher_contrast_and_tally():
    accs = {"robust": {"natural": 85.0, "pgd": 50.0}, "clean": {"natural": 70.0, "pgd": 50.5},
            "pgdat": {"natural": 80.0, "pgd": 50.0}}
    c = verdicts.teacher_contrast(accs, 1000)
    assert c["natural"] == {"robust": 1, "clean": -1, "robust_vs_clean": 1}
    assert c["pgd"] == {"robust": 0, "clean": 0, "robust_vs_clean": 0}
    t = verdicts.teacher_tally([c, c])
    assert t["robust"] == {1: 2, -1: 0, 0: 2} and t["clean"] == {1: 0, -1: 2, 0: 2}
    s = verdicts.teacher_tally_sentence("small", t)
    assert "of 4 comparisons" in s and "robust teacher the distilled student lies above in 2, below in 0" in s


def test_run_work_counts_passes_and_seconds():
    runs = [{"name": "teacher", "kind": "clean", "epochs": 30, "attack_steps": 0},
            {"name": "pgdat", "kind": "adversarial", "epochs": 10, "attack_steps": 5, "extra_s": 4.0}]
    w = verdicts.run_work(runs, 1000, {"clean": 0.5, "adversarial": 2.0})
    assert [r["passes"] for r in w["rows"]] == [30_000, 60_000] and w["passes"] == 90_000
    assert [r["seconds"] for r in w["rows"]] == [15.0, 24.0] and w["seconds"] == 39.0
    assert "seconds" not in verdicts.run_work(runs, 1000)


def test_capacity_arrows_draws_one_arrow_per_source_method_and_accuracy():
    import matplotlib

    matplotlib.use("Agg")
    from cktat_core import viz

    gaps = {"ours": {"ARD": {"natural": (-1.0, 2.0), "PGD": (-0.5, 0.5)}, "CKTAT": {"natural": (1.0, 1.5)}},
            "paper": {"ARD": {"natural": (-3.8, 2.0), "PGD": (-3.1, 1.4)}}}
    fig = viz.capacity_arrows(gaps, ["natural", "PGD"], margins={"ours": {"ARD": {"natural": 0.7}}})
    nat, pgd = fig.axes[:2]
    arrows = [a for a in nat.texts if a.arrow_patch is not None]
    assert len(arrows) == 3  # ours ARD, ours CKTAT, paper ARD
    assert sorted((a.xyann[1], a.xy[1]) for a in arrows) == [(-3.8, 2.0), (-1.0, 2.0), (1.0, 1.5)]
    assert len([a for a in pgd.texts if a.arrow_patch is not None]) == 2  # CKTAT has no PGD entry
    assert [t.get_text() for t in nat.get_xticklabels()] == ["ARD", "CKTAT"]
    assert [t.get_text() for t in nat.get_legend().get_texts()] == ["ours", "paper"]

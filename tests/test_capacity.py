"""Table 1 (capacity): the torch-free decisions of chapter 06 and its figure."""

import pytest

from cktat_book import capacity, report


def test_capacity_pair_keeps_the_chapters_network_as_one_of_the_two():
    assert capacity.capacity_pair("resnet18", 0, 16) == {"small": {}, "large": {"model": "wrn34_10"}}
    assert capacity.capacity_pair("wrn34_10", 0, 16) == {"small": {"model": "resnet18"}, "large": {}}
    assert capacity.capacity_pair("preact_resnet18", 0, 16) == {"small": {"model": "resnet18"},
                                                                "large": {"model": "wrn34_10"}}
    assert capacity.capacity_pair("small_cnn", 8, 16) == {"small": {"width": 4}, "large": {}}
    assert capacity.capacity_pair("small_cnn", 0, 16) == {"small": {"width": 8}, "large": {}}  # 0: the default
    assert capacity.capacity_pair("small_cnn", 5, 16) == {"small": {"width": 2}, "large": {}}
    with pytest.raises(ValueError):
        capacity.capacity_pair("small_cnn", 1, 16)


def _ev(bits):
    return {"test": {"attacks": {m: {"accuracy": 100 * bits.count("1") / len(bits), "total": len(bits), "bits": bits}
                                 for m in ("natural", "pgd20")}}}


def test_teacher_contrast_image_by_image_and_its_tally():
    base = "1" * 500 + "0" * 500
    ev = {"robust": _ev("1" * 600 + "0" * 400), "clean": _ev("1" * 400 + "0" * 600), "pgdat": _ev(base)}
    c = capacity.teacher_contrast_paired(ev, {"natural": "natural", "robust": "pgd20"})
    assert c["natural"] == {"robust": 1, "clean": -1, "robust_vs_clean": 1}
    same = capacity.teacher_contrast_paired({"robust": _ev(base), "clean": _ev(base), "pgdat": _ev(base)},
                                           {"natural": "natural"})
    assert same["natural"] == {"robust": 0, "clean": 0, "robust_vs_clean": 0}
    t = capacity.teacher_tally([c, same])
    assert t["robust"] == {1: 2, -1: 0, 0: 1} and t["clean"] == {1: 0, -1: 2, 0: 1}
    s = capacity.teacher_tally_sentence("small", t)
    assert "of 3 comparisons" in s and "robust teacher the distilled student lies above in 2, below in 0" in s


def test_the_capacity_check_says_whether_validation_separates_the_students():
    from cktat_book import noise

    best = {"small": {"val_natural": 40.0, "val_pgd10": 20.0}, "large": {"val_natural": 50.0, "val_pgd10": 21.0}}
    sep = {k: noise.compare(best["large"][k], best["small"][k], n=1000) for k in ("val_natural", "val_pgd10")}
    s = capacity.capacity_check_sentence(best, sep, "val_pgd10", {"small": "w16", "large": "w32"}, 1000)
    assert "above the small one beyond sampling noise" in s and "within sampling noise of each other" in s
    assert not capacity.separated(sep) and "this pair may not test" in s  # robust accuracy does not separate them
    both = {**best, "large": {"val_natural": 50.0, "val_pgd10": 30.0}}
    sep = {k: noise.compare(both["large"][k], both["small"][k], n=1000) for k in ("val_natural", "val_pgd10")}
    assert capacity.separated(sep) and "the pair can test the claim" in capacity.capacity_check_sentence(
        both, sep, "val_pgd10", {"small": "w16", "large": "w32"}, 1000)


def test_the_candidate_pairs_go_from_half_to_an_eighth_of_the_width_and_are_measured_on_validation():
    assert capacity.capacity_candidates("small_cnn", 32, 16) == [{"small": {"width": 16}, "large": {}},
                                                                {"small": {"width": 8}, "large": {}},
                                                                {"small": {"width": 4}, "large": {}}]
    assert capacity.capacity_candidates("resnet18", 0, 16) == [{"small": {}, "large": {"model": "wrn34_10"}}]
    history = lambda nat, rob: [{"val_natural": nat - 5, "val_pgd10": rob - 5}, {"val_natural": nat, "val_pgd10": rob}]
    sep = capacity.separation(history(40.0, 20.0), history(50.0, 30.0), 1000)
    assert set(sep) == {"val_natural", "val_pgd10"} and capacity.separated(sep)
    assert sep["val_pgd10"].difference == pytest.approx(10.0)  # best epoch against best epoch
    assert not capacity.separated(capacity.separation(history(40.0, 20.0), history(50.0, 21.0), 1000))


def test_capacity_arrows_draws_one_arrow_per_source_method_and_accuracy():
    import matplotlib

    matplotlib.use("Agg")
    from cktat_book import figures

    gaps = {"ours": {"ARD": {"natural": (-1.0, 2.0), "PGD": (-0.5, 0.5)}, "CKTAT": {"natural": (1.0, 1.5)}},
            "paper": {"ARD": {"natural": (-3.8, 2.0), "PGD": (-3.1, 1.4)}}}
    fig = figures.capacity_arrows(gaps, ["natural", "PGD"], margins={"ours": {"ARD": {"natural": 0.7}}})
    nat, pgd = fig.axes[:2]
    arrows = [a for a in nat.texts if a.arrow_patch is not None]
    assert len(arrows) == 3  # ours ARD, ours CKTAT, paper ARD
    assert sorted((a.xyann[1], a.xy[1]) for a in arrows) == [(-3.8, 2.0), (-1.0, 2.0), (1.0, 1.5)]
    assert len([a for a in pgd.texts if a.arrow_patch is not None]) == 2  # CKTAT has no PGD entry
    assert [t.get_text() for t in nat.get_xticklabels()] == ["ARD", "CKTAT"]
    assert [t.get_text() for t in nat.get_legend().get_texts()] == ["ours", "paper"]


def test_the_capacity_reading_counts_claims_and_compares_the_two_pairs():
    from cktat_book import claims

    acc = {("PGDAT", "none", "small"): {"natural": 46.0, "pgd20": 26.0},
           ("PGDAT", "none", "large"): {"natural": 48.7, "pgd20": 27.6}}
    paper = {"resnet18": {"PGDAT": [83.92, 51.71]}, "wrn34_10": {"PGDAT": [86.84, 56.82]}}
    found = [claims.Claim("06", "Table 1", "a", "m", 1.0, 0.5, "n", claims.REPRODUCED),
             claims.Claim("06", "Table 1", "b", "m", 1.0, 0.5, "n", claims.WITHIN_NOISE),
             claims.Claim("06", "Table 1", "c", "m", 1.0, 0.5, "n", claims.WITHIN_NOISE)]
    text = capacity.capacity_reading(acc, paper, found, {"small": {}, "large": {}}, {"small": "s", "large": "l"},
                                     "pgd20", {"small": 61_338, "large": 242_474},
                                     {"resnet18": 11_173_962, "wrn34_10": 46_160_474})
    assert "1 is reproduced, 2 are within noise and 0 are contradicted" in text
    assert "our pair grows the network 4.0x in parameters, the paper's 4.1x from ResNet-18 to WRN-34-10" in text
    assert "robust accuracy moves less" in text and "(+1.6 against +5.1 points)" in text
    assert "natural accuracy less (+2.7 against +2.9)" in text
    assert text.endswith("no run of the book tests it.")  # an interpretation, said to be one


def test_the_capacity_reading_counts_the_signs_of_the_clean_teacher():
    from cktat_book import claims

    acc = {("PGDAT", "none", k): {"natural": 46.0, "pgd20": 26.0} for k in ("small", "large")}
    paper = {"resnet18": {"PGDAT": [83.92, 51.71]}, "wrn34_10": {"PGDAT": [86.84, 56.82]}}
    sign = lambda claim, ours, verdict: claims.Claim("06", "Table 1 (signs)", claim, "m", -3.0, ours, "n", verdict)
    found = [sign("On the small student, ARD's natural accuracy (clean teacher) below PGD-AT's", 11.4,
                  claims.CONTRADICTED),
             sign("On the small student, ARD's PGD-20 accuracy (clean teacher) below PGD-AT's", -12.4, claims.REPRODUCED),
             sign("On the large student, ARD's natural accuracy (clean teacher) above PGD-AT's", 9.0, claims.REPRODUCED),
             sign("On the large student, ARD's PGD-20 accuracy (clean teacher) above PGD-AT's", -0.3,
                  claims.WITHIN_NOISE)]
    text = capacity.capacity_reading(acc, paper, found, {"small": {}, "large": {}}, {"small": "s", "large": "l"},
                                     "pgd20")
    assert "natural accuracy is above beyond noise in 2 of 2 method-student pairs and below in 0" in text
    assert "robust accuracy above in 0 and below in 1" in text and "along the trade-off" in text


def _run(natural: float, robust: float, name: str = "run", n: int = 1000) -> dict:
    """A finished run whose last epoch got `natural` and `robust` (pgd20) per cent right, the first images right."""
    bits = lambda acc: "1" * round(acc * n / 100) + "0" * (n - round(acc * n / 100))
    ev = lambda acc: {"accuracy": acc, "total": n, "bits": bits(acc)}
    return {"name": name, "student": {"last": {"test": {"attacks": {"natural": ev(natural), "pgd20": ev(robust)}}}}}


def _large_student_runs() -> dict:
    """The large student's runs of `book_runs.capacity`: PGD-AT at 50 / 30; with the clean teacher ARD, IAD and RSLAD on
    the teacher's side (more natural, less robust accuracy), LTD below PGD-AT in both and LBGAT in natural accuracy."""
    return {("PGDAT", "none", "large"): _run(50.0, 30.0),
            ("ARD", "clean", "large"): _run(65.0, 15.0), ("ARD", "robust", "large"): _run(48.0, 29.0, "ard_robust"),
            ("IAD", "clean", "large"): _run(60.0, 25.0), ("IAD", "robust", "large"): _run(58.0, 27.5, "iad_robust"),
            ("RSLAD", "clean", "large"): _run(60.0, 20.0), ("RSLAD", "robust", "large"): _run(70.0, 10.0, "rslad_r"),
            ("LTD", "clean", "large"): _run(45.0, 20.0), ("LTD", "robust", "large"): _run(50.0, 30.0, "ltd_robust"),
            ("LBGAT", "clean (co-trained)", "large"): _run(40.0, 30.0, "lbgat")}


PAPER_T1 = {net: {"PGDAT": [84.0, 52.0], **{m: [85.0, 53.0] for m in ("ARD", "IAD", "RSLAD", "LTD", "LBGAT")}}
            for net in ("resnet18", "wrn34_10")}


def test_a_distillers_sign_on_its_clean_teachers_side_is_read_as_the_teachers_and_tested_by_the_robust_one():
    from cktat_book import budget, claims

    runs = _large_student_runs()
    spread = {"large": {"natural": 1.0, "pgd20": 1.0}}  # one run's spread: two runs apart beyond about 2.8 points
    found = capacity.capacity_signs("06", runs, PAPER_T1, "pgd20", spread)
    bad = {c.claim for c in found if c.verdict == claims.CONTRADICTED}
    # the large student's signs are stated "above": the distillers' PGD-20, LTD's and LBGAT's natural accuracy below
    assert bad == {f"On the large student, {m}'s PGD-20 accuracy (clean teacher) above PGD-AT's"
                   for m in ("ARD", "IAD", "RSLAD", "LTD")} | {f"On the large student, {m}'s natural accuracy (clean "
                                                              f"teacher) above PGD-AT's" for m in ("LTD", "LBGAT")}
    teachers = {"large": {"natural": 75.0, "pgd20": 0.0}}
    tested = capacity.teacher_readings(found, runs, teachers, "pgd20", "PGD-20", spread)
    verdict = {r.claim.split("'s")[0].split()[-1]: r for r in tested}
    # LBGAT has no robust-teacher run, and LTD lies below PGD-AT in both accuracies, not on its teacher's side
    assert set(verdict) == {"ARD", "IAD", "RSLAD"}
    # ARD: the robust teacher lifts PGD-20 (+14) and lowers natural accuracy (-17): supported, in part
    assert verdict["ARD"].verdict == budget.SUPPORTED and verdict["ARD"].resolves is False
    assert not verdict["ARD"].budget and "`runs/ard_robust`" in verdict["ARD"].run
    assert "75.0% natural and 0.0% PGD-20" in verdict["ARD"].text
    assert "+14.0 points in PGD-20 and -17.0 in natural" in verdict["ARD"].shows
    assert "within noise of PGD-AT (-1.0)" in verdict["ARD"].shows
    assert verdict["IAD"].verdict == budget.WITHIN_NOISE  # +2.5 and -2.5 points: inside the noise, it cannot tell
    assert verdict["RSLAD"].verdict == budget.NOT_SUPPORTED  # the robust teacher moves it further to the clean side
    assert verdict["RSLAD"].resolves is None
    # the swap lifts it, but it stays below PGD-AT: the method loses robust accuracy whatever its teacher
    runs["IAD", "robust", "large"] = _run(55.0, 26.0, "iad_robust")
    [iad] = [r for r in capacity.teacher_readings(found, runs, teachers, "pgd20", "PGD-20", spread) if "IAD" in r.claim]
    assert iad.verdict == budget.NOT_SUPPORTED and "below PGD-AT beyond noise (-4.0)" in iad.shows


def test_a_natural_accuracy_sign_read_as_the_teachers_is_tested_on_natural_accuracy():
    from cktat_book import budget, claims

    # the small student: PGD-AT at 40 / 20; ARD with the clean teacher above it in natural accuracy (the paper: below)
    runs = {("PGDAT", "none", "small"): _run(40.0, 20.0), ("ARD", "clean", "small"): _run(50.0, 15.0),
            ("ARD", "robust", "small"): _run(38.0, 15.0, "ard_robust")}
    spread = {"small": {"natural": 1.0, "pgd20": 1.0}}
    teachers = {"small": {"natural": 55.0, "pgd20": 0.0}}
    found = capacity.capacity_signs("06", runs, PAPER_T1, "pgd20", spread)
    assert {c.claim for c in found if c.verdict == claims.CONTRADICTED} == {
        "On the small student, ARD's natural accuracy (clean teacher) below PGD-AT's"}
    [r] = capacity.teacher_readings(found, runs, teachers, "pgd20", "PGD-20", spread)
    # natural accuracy falls 12 points and lies within noise of PGD-AT: supported, though PGD-20 does not move
    assert r.verdict == budget.SUPPORTED and "fall in natural accuracy beyond the noise" in r.text
    assert "-12.0 points in natural accuracy and +0.0 in PGD-20" in r.shows
    assert "within noise of PGD-AT (-2.0) in natural accuracy" in r.shows
    # a robust teacher that lifts PGD-20 but leaves natural accuracy above PGD-AT beyond noise does not support it
    runs["ARD", "robust", "small"] = _run(47.0, 25.0, "ard_robust")
    [r] = capacity.teacher_readings(found, runs, teachers, "pgd20", "PGD-20", spread)
    assert r.verdict == budget.NOT_SUPPORTED and "above PGD-AT beyond noise (+7.0)" in r.shows


def test_lbgats_sign_is_read_as_the_short_schedules_and_waits_for_the_readings_stage():
    from cktat_book import budget

    runs = _large_student_runs()
    found = capacity.capacity_signs("06", runs, PAPER_T1, "pgd20")
    # PGD-AT with three seeds (50, 52, 54), LBGAT with one: the change is measured on seed 0 of each
    seeds = [runs["PGDAT", "none", "large"], _run(52.0, 30.0), _run(54.0, 30.0)]
    ladder = {"1x": {"pgdat": seeds, "lbgat": runs["LBGAT", "clean (co-trained)", "large"]}, "4x epochs": {}}
    schedule = {"student": "large", "rung": "4x epochs", "epochs": 16, "longer": 64, "name": "lbgat_epochs64",
                "ladder": ladder}
    spread = {"natural": 0.5, "pgd20": 0.5}
    [first] = capacity.schedule_readings(found, schedule, "pgd20", "PGD-20", spread)
    assert first.verdict == budget.NOT_TRAINED_YET and "`cktat runs --stages ladder`" in first.evidence  # PGD-AT's
    ladder["4x epochs"]["pgdat"] = _run(55.0, 32.0)
    [waiting] = capacity.schedule_readings(found, schedule, "pgd20", "PGD-20", spread)
    assert waiting.claim == "On the large student, LBGAT's natural accuracy (clean teacher) above PGD-AT's"
    assert waiting.verdict == budget.NOT_TRAINED_YET and "`cktat runs --stages readings`" in waiting.evidence
    assert "16 epochs" in waiting.text and "At 64 epochs" in waiting.text and "move up" in waiting.text
    assert "`runs/lbgat_epochs64`" in waiting.run
    ladder["4x epochs"]["lbgat"] = _run(58.0, 31.0)  # from -10 to +3 points: the gap closes and turns
    [closed] = capacity.schedule_readings(found, schedule, "pgd20", "PGD-20", spread)
    assert closed.verdict == budget.SUPPORTED and closed.resolves is True and closed.budget
    assert "LBGAT - PGD-AT in natural goes from -10.0 to +3.0 points" in closed.shows  # seed 0, as measured
    ladder["4x epochs"]["lbgat"] = _run(35.0, 31.0)  # from -10 to -20: it widens
    assert capacity.schedule_readings(found, schedule, "pgd20", "PGD-20", spread)[0].verdict == budget.NOT_SUPPORTED
    # a large student the ladder does not train (WRN-34-10 beside ResNet-18): no stage trains the test, its cost said
    [priced] = capacity.schedule_readings(found, {**schedule, "ladder": None, "cost": "9.0 h of this machine"}, "pgd20",
                                          "PGD-20", spread)
    assert priced.verdict == budget.NOT_TESTED and "it would cost 9.0 h of this machine" in priced.evidence


def test_the_wider_pair_is_priced_in_words_and_absent_where_there_is_none():
    assert capacity.wider_pair_sentence(None) == ""
    price = {"widths": (32, 64), "ratio": 3.9, "wider": 14, "distilled": 3, "seconds": 50_400.0, "check": 1800.0,
             "budget": "14.0 h of this machine (17 runs at width 64), and ... not enough"}
    text = capacity.wider_pair_sentence(price)
    assert "small_cnn at width 64 as the large student, against width 32" in text
    assert "times 3.9, the ratio of the two networks' training FLOPs" in text
    assert "would take about 30.0 min" in text and text.endswith("not enough.")


def test_the_opening_says_whether_the_pair_separates_and_whether_a_candidate_waits():
    from cktat_book import noise

    apart = {k: noise.compare(50.0, 30.0, n=1000) for k in ("val_natural", "val_pgd10")}
    close = {"val_natural": apart["val_natural"], "val_pgd10": noise.compare(25.3, 23.6, n=1000)}
    assert capacity.pair_caveat(apart, 1) == ""
    assert "No candidate pair of students differs" in capacity.pair_caveat(close, 0)
    assert "checked so far" in capacity.pair_caveat(close, 1) and "not trained yet" in capacity.pair_caveat(close, 1)
    assert capacity.untried_sentence([], "w32") == ""
    text = capacity.untried_sentence(["small_cnn at width 4"], "small_cnn at width 32")
    assert text.startswith("**small_cnn at width 4 against small_cnn at width 32**: **not trained yet**.")
    assert "`cktat runs --stages capacity`" in text and "this pair waits for its small student's" in text


def test_the_teacher_reading_sends_the_reader_to_the_capacity_claims_only_where_the_pair_differs():
    teacher = {"natural": 75.0, "pgd20": 0.0}
    assert capacity.teacher_reading_text(teacher, "pgd20", "PGD-20").endswith("differ in both accuracies (priced below).")
    apart = capacity.teacher_reading_text(teacher, "pgd20", "PGD-20", apart=True)
    assert "priced" not in apart and "from our small to our large student, tested above" in apart

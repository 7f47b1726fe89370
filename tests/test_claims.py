"""The claims behind the findings and the scorecard: verdicts follow the comparison, files round-trip and are
rewritten only when they change, and the scorecard rows carry exactly the chapters' verdicts."""

import glob
import json
import os

import pytest

from cktat_book import ablations, baselines, capacity, claims, noise


def _run(seed, nat_bits, rob_bits):
    ev = lambda bits: {"accuracy": 100 * bits.count("1") / len(bits), "total": len(bits), "bits": bits}
    return {"seed": seed, "student": {"last": {"test": {"attacks": {"natural": ev(nat_bits), "pgd20": ev(rob_bits)}}}}}


def test_a_paper_difference_within_its_own_noise_claims_no_direction():
    assert claims.side(-0.47, claims.paper_margin(83.45, 83.92)) == claims.LEVEL  # 10,000 test images
    assert claims.side(5.09, claims.paper_margin(56.80, 51.71)) == noise.ABOVE

def _cmp(word, difference, half_width):
    return noise.Comparison(word, difference, 0.5, None, "test", half_width)


def test_level_is_decided_against_one_band_for_the_paper_and_for_ours():
    """Not detecting a difference is not showing there is none: an equivalence test against the band, the paper's own
    noise, which also decided that the paper's numbers are level; ours contradict "level" only when our interval lies
    wholly outside that band."""
    narrow, wide = _cmp(noise.WITHIN, 0.2, 0.8), _cmp(noise.WITHIN, 0.2, 2.4)
    assert claims.verdict(claims.LEVEL, noise.WITHIN, narrow, 1.3) == claims.REPRODUCED
    assert claims.verdict(claims.LEVEL, noise.WITHIN, wide, 1.3) == claims.WITHIN_NOISE  # a 1,000-image test
    assert claims.verdict(claims.LEVEL, noise.BELOW, _cmp(noise.BELOW, -3.0, 1.0), 1.3) == claims.CONTRADICTED
    # a difference our test detects but that the band would call level on the paper's side: not a contradiction
    # (the paper's +1.05 is level within its 1.05; ours -1.0 +- 0.3 is no more than that)
    assert claims.verdict(claims.LEVEL, noise.BELOW, _cmp(noise.BELOW, -1.0, 0.3), 1.05) == claims.WITHIN_NOISE
    assert claims.verdict(claims.LEVEL, noise.ABOVE, _cmp(noise.ABOVE, 1.4, 0.5), 1.5) == claims.WITHIN_NOISE
    assert claims.verdict(claims.LEVEL, noise.ABOVE, _cmp(noise.ABOVE, 2.4, 0.5), 1.5) == claims.CONTRADICTED
    # "not below": reproduced when our interval rules out a loss beyond the band, contradicted when it shows one
    assert claims.verdict(claims.NOT_BELOW, noise.ABOVE, _cmp(noise.ABOVE, 3.0, 1.0), 1.3) == claims.REPRODUCED
    assert claims.verdict(claims.NOT_BELOW, noise.WITHIN, _cmp(noise.WITHIN, -0.4, 0.8), 1.3) == claims.REPRODUCED
    assert claims.verdict(claims.NOT_BELOW, noise.WITHIN, _cmp(noise.WITHIN, -1.2, 2.4), 1.3) == claims.WITHIN_NOISE
    assert claims.verdict(claims.NOT_BELOW, noise.BELOW, _cmp(noise.BELOW, -3.0, 1.0), 1.3) == claims.CONTRADICTED
    assert claims.verdict(claims.NOT_BELOW, noise.BELOW, _cmp(noise.BELOW, -1.5, 0.4), 1.3) == claims.WITHIN_NOISE
    with pytest.raises(ValueError):  # a level claim without the band cannot be judged
        claims.verdict(claims.LEVEL, noise.WITHIN, narrow)


def test_a_number_the_paper_states_is_judged_against_our_interval():
    inside = claims.quantity("09", "DUCAT", "up to 40%", "%", 40.0, 38.0, 35.1, 41.0, "Wilson")
    outside = claims.quantity("09", "DUCAT", "up to 40%", "%", 40.0, 7.5, 6.0, 9.2, "Wilson")
    assert inside.verdict == claims.REPRODUCED and outside.verdict == claims.CONTRADICTED
    assert "6.0 to 9.2" in outside.noise and outside.source == "text" and not outside.signed


def test_verdict_follows_the_claimed_direction():
    assert claims.verdict(noise.ABOVE, noise.ABOVE) == claims.REPRODUCED
    assert claims.verdict(noise.ABOVE, noise.BELOW) == claims.CONTRADICTED
    assert claims.verdict(noise.BELOW, noise.BELOW) == claims.REPRODUCED
    assert claims.verdict(noise.BELOW, noise.WITHIN) == claims.WITHIN_NOISE
    with pytest.raises(ValueError):
        claims.verdict(noise.WITHIN, noise.ABOVE)


def test_method_pair_reads_the_papers_sign_and_judges_ours():
    """The paper: CKTAT above PGD-AT in both accuracies. Ours: CKTAT above in natural accuracy beyond chance,
    below in robust accuracy beyond chance."""
    n = 400
    hi, lo = "1" * 240 + "0" * 160, "1" * 160 + "0" * 240
    runs = {"cktat": [_run(0, hi, lo)], "pgdat": [_run(0, lo, hi)]}
    found = claims.method_pair("02", "Table 4", runs, "cktat", "pgdat", [83.45, 56.80], [83.92, 51.71], "pgd20",
                               {"cktat": "CKTAT", "pgdat": "PGD-AT"})
    nat, rob = found
    # the paper's natural difference (83.45 - 83.92) lies within its own noise on 10,000 images: "level with";
    # ours is far above it, which contradicts the claim
    assert nat.paper == pytest.approx(-0.47) and "level with" in nat.claim and nat.verdict == claims.CONTRADICTED
    assert rob.paper == pytest.approx(5.09) and rob.verdict == claims.CONTRADICTED
    assert nat.ours == pytest.approx(20.0) and nat.difference == pytest.approx(20.47)
    assert "McNemar" in nat.noise
    # with several seeds on both sides, Welch's test over the seeds decides
    runs = {"cktat": [_run(s, hi, hi) for s in range(3)], "pgdat": [_run(s, hi, hi) for s in range(3)]}
    same = claims.method_pair("02", "Table 4", runs, "cktat", "pgdat", [83.45, 56.80], [83.92, 51.71], "pgd20",
                              {"cktat": "CKTAT", "pgdat": "PGD-AT"})
    assert [c.verdict for c in same] == [claims.REPRODUCED, claims.WITHIN_NOISE] and "Welch" in same[0].noise
    # where the text states a direction the claim is the text's, whatever the paper's numbers show
    told = claims.method_pair("02", "Table 4", runs, "cktat", "pgdat", [83.45, 56.80], [83.92, 51.71], "pgd20",
                              {"cktat": "CKTAT", "pgdat": "PGD-AT"}, stated=(noise.BELOW, None),
                              rests_on=("cktat.table4_cifar10.CKTAT_beta6", "cktat.table4_cifar10.PGDAT"))
    assert "natural accuracy below PGD-AT's" in told[0].claim and told[0].source == "text"
    assert told[0].verdict == claims.WITHIN_NOISE and told[1].source == "numbers"
    assert told[0].rests_on == ("cktat.table4_cifar10.CKTAT_beta6", "cktat.table4_cifar10.PGDAT")


def test_trend_and_ordering_use_spearman():
    up = ablations.trend("07", "Table 3b", "rises", "rho", [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 7])
    assert up.verdict == claims.REPRODUCED and up.ours == pytest.approx(1.0)
    down = ablations.trend("07", "Table 3b", "rises", "rho", [1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1], [1, 2, 3, 4, 5, 7])
    assert down.verdict == claims.CONTRADICTED
    flat = ablations.trend("07", "Table 3b", "rises", "rho", [1, 2, 3, 4, 5, 6], [1, 3, 2, 2.5, 1.5, 2], [1, 2, 3, 4, 5, 7])
    assert flat.verdict == claims.WITHIN_NOISE and "no detectable trend" in flat.noise
    two = ablations.trend("07", "Table 3b", "rises", "rho", [1, 2], [1, 2], [1, 2], stated=noise.ABOVE)
    assert two.verdict == claims.UNTESTABLE and "needs three" in two.noise  # not "constant"
    # the text's tau trend is a rise up to 5, then a decline: the claim is tested on tau 1..5 and says so
    xs, words = ablations.trend_span("tau", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 5.0, True)
    assert xs == [1.0, 2.0, 3.0, 4.0, 5.0] and words == "rises as tau grows to 5"
    assert ablations.trend_span("beta", [0.0, 7.0], None, False) == ([0.0, 7.0], "falls as beta grows")
    order = baselines.ordering("08", "Table 4", "natural", {k: v for k, v in zip("abcdefghi", range(9))},
                            {k: v for k, v in zip("abcdefghi", range(9))})
    assert order.verdict == claims.REPRODUCED and order.ours == pytest.approx(1.0)
    # one column of six tested at once: a p-value that passes alone (about 0.02) no longer counts
    mixed = dict(zip("abcdefghi", [0, 1, 2, 3, 4, 8, 5, 7, 6]))
    alone = baselines.ordering("08", "Table 4", "CW", mixed, dict(zip("abcdefghi", [0, 2, 1, 5, 3, 4, 8, 6, 7])))
    six = baselines.ordering("08", "Table 4", "CW", mixed, dict(zip("abcdefghi", [0, 2, 1, 5, 3, 4, 8, 6, 7])),
                             family=6)
    assert "p = 0.030" in alone.noise  # beyond 0.05 / 6
    assert alone.verdict == claims.REPRODUCED and six.verdict == claims.WITHIN_NOISE
    assert "Bonferroni over 6 columns: below 0.0083 counts" in six.noise


def test_capacity_claim_tests_the_change_of_the_gap_image_by_image():
    """The method gains 10 points on PGD-AT from the small to the large student, image by image."""
    n = 500
    base = "1" * 250 + "0" * 250
    better = "1" * 300 + "0" * 200
    r = lambda bits: {"student": {"last": {"test": {"attacks": {m: {"accuracy": 100 * bits.count("1") / n, "total": n,
                                                                     "bits": bits} for m in ("natural", "pgd20")}}}}}
    runs = {("PGDAT", "none", "small"): r(base), ("ARD", "clean", "small"): r(base),
            ("PGDAT", "none", "large"): r(base), ("ARD", "clean", "large"): r(better)}
    paper = {"resnet18": {"PGDAT": [83.92, 51.71], "ARD": [80.11, 48.60]},
             "wrn34_10": {"PGDAT": [86.84, 56.83], "ARD": [88.84, 58.22]}}
    found = capacity.capacity_claims("06", runs, paper, "pgd20")
    assert [c.verdict for c in found] == [claims.REPRODUCED, claims.REPRODUCED]
    assert found[0].ours == pytest.approx(10.0) and found[0].paper == pytest.approx(5.81)
    assert "grows with capacity" in found[0].claim and found[0].source == "text"  # Sec. 4.2: decrease, then increase
    # the two students' spreads, larger than the change: noise (four runs: z * 2 * the spreads' root mean square)
    noisy = capacity.capacity_claims("06", runs, paper, "pgd20", {"small": {"natural": 3.0, "pgd20": 3.0},
                                                                 "large": {"natural": 3.0, "pgd20": 3.0}})
    assert [c.verdict for c in noisy] == [claims.WITHIN_NOISE, claims.WITHIN_NOISE]
    # a small spread on one student only: still beyond the margin of 2 * 2 * sqrt((1 + 0) / 2) = 2.8 points
    one = capacity.capacity_claims("06", runs, paper, "pgd20", {"small": {"natural": 1.0, "pgd20": 1.0},
                                                               "large": {"natural": 0.0, "pgd20": 0.0}})
    assert [c.verdict for c in one] == [claims.REPRODUCED, claims.REPRODUCED]


def test_saved_claims_round_trip_and_are_rewritten_only_when_they_change(tmp_path):
    c = claims.Claim("02_cktat", "Table 4", "CKTAT above", "points", 1.0, 2.0, "noise", claims.REPRODUCED)
    path = claims.save(str(tmp_path), "02_cktat", [c])
    before = os.stat(path)
    claims.save(str(tmp_path), "02_cktat", [c])
    after = os.stat(path)  # a rewrite replaces the file (temporary file, then os.replace): a new inode
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    claims.save(str(tmp_path), "03_label_design", [c.__class__(**{**c.__dict__, "chapter": "03_label_design"})])
    loaded = claims.load_all(str(tmp_path))
    assert [x.chapter for x in loaded] == ["02_cktat", "03_label_design"] and loaded[0] == c
    assert json.load(open(path))["claims"][0]["verdict"] == claims.REPRODUCED


def test_scorecard_rows_carry_the_chapters_verdicts_and_link_to_them():
    found = [claims.Claim("07_ablations", "Table 3a", "x", "points", -1.0, 0.5, "n", claims.CONTRADICTED),
             claims.untestable("05_attributions", "Table 5", "y", "points", None, "no masks")]
    rows = claims.scorecard_rows(found, link=lambda ch: f"{ch}.html")
    assert [r["verdict"] for r in rows] == [claims.CONTRADICTED, claims.UNTESTABLE]
    assert rows[0]["claim"] == "[x](07_ablations.html)" and rows[0]["ours - paper"] == "+1.5"
    assert claims.tally(found)[claims.CONTRADICTED] == 1
    assert "2 claims" in claims.tally_sentence(claims.tally(found), "cpu")


def test_top_of_compares_with_our_best_rival_or_with_the_papers_first():
    ev = lambda bits: {"attacks": {"aa": {"accuracy": 100 * bits.count("1") / len(bits), "total": len(bits),
                                          "bits": bits}}}
    evals = {"CKTAT": ev("1" * 60 + "0" * 40), "LTD": ev("1" * 50 + "0" * 50), "HAT": ev("1" * 20 + "0" * 80)}
    paper = {"CKTAT": {"aa": 55.0}, "LTD": {"aa": 50.56}, "HAT": {"aa": 50.10}}
    top = baselines.top_of("08", "Table 4", "CKTAT", "aa", "AutoAttack", evals, paper)
    assert top.claim.startswith("CKTAT has the highest") and top.paper == pytest.approx(4.44)
    assert top.ours == pytest.approx(10.0) and top.verdict == claims.REPRODUCED  # 10 images only CKTAT gets right
    below = baselines.top_of("08", "Table 4", "HAT", "aa", "AutoAttack", evals, paper)
    assert "below CKTAT's" in below.claim and below.ours == pytest.approx(-40.0) and below.verdict == claims.REPRODUCED
    # the paper's own Table 4: CKTAT's lead in AutoAttack (51.87 against LTD's 50.56) lies within its noise
    real = {"CKTAT": {"aa": 51.87}, "LTD": {"aa": 50.56}, "HAT": {"aa": 50.10}}
    # so the paper shows CKTAT at the top, tied: no row may be above it beyond our noise, and being above is no harm
    level = baselines.top_of("08", "Table 4", "CKTAT", "aa", "AutoAttack", evals, real)
    assert level.claim.startswith("No method is above CKTAT in AutoAttack accuracy") and "LTD" in level.claim
    assert level.ours == pytest.approx(10.0) and level.verdict == claims.REPRODUCED
    tied = {**evals, "LTD": ev("1" * 59 + "0" * 41)}  # one image apart
    assert baselines.top_of("08", "Table 4", "CKTAT", "aa", "AutoAttack", tied, real).verdict == claims.REPRODUCED
    beaten = {**evals, "HAT": ev("1" * 100)}  # our best other row is HAT, 40 images above
    lost = baselines.top_of("08", "Table 4", "CKTAT", "aa", "AutoAttack", beaten, real)
    assert lost.ours == pytest.approx(-40.0) and lost.verdict == claims.CONTRADICTED
    # the methods the paper's text places above it are left out of the pool, ours and the paper's
    spared = baselines.top_of("08", "Table 4", "CKTAT", "aa", "AutoAttack", beaten, real, excluding=("HAT",))
    assert spared.claim.startswith("No method other than HAT is above CKTAT") and spared.ours == pytest.approx(10.0)
    assert spared.verdict == claims.REPRODUCED
    # Sec. 5.2 says CKTAT's robustness is higher than every baseline's: the text's claim, first beyond the noise,
    # whatever the paper's own lead over LTD
    first = baselines.top_of("08", "Table 4", "CKTAT", "aa", "AutoAttack", tied, real, stated=True,
                             rows={"CKTAT": "cktat.table4_cifar10.CKTAT_beta6"})
    assert first.claim.startswith("CKTAT has the highest") and first.verdict == claims.WITHIN_NOISE
    assert first.source == "text" and first.rests_on[0] == "cktat.table4_cifar10.CKTAT_beta6"


def test_a_claim_needs_a_direction_and_an_equal_pair_tests_none():
    c = noise.compare(50.0, 40.0, n=1000)
    assert claims.judged("x", "T", "a", "m", 0.0, c).verdict == claims.UNTESTABLE
    assert claims.judged("x", "T", "a", "m", None, c, direction=noise.ABOVE).verdict == claims.REPRODUCED
    with pytest.raises(ValueError):
        claims.judged("x", "T", "a", "m", None, c)


def test_the_sentence_shows_our_number_and_the_papers_signed_or_not():
    diff = claims.Claim("02", "Table 4", "CKTAT above", "points", 2.0, -1.5, "McNemar", claims.CONTRADICTED)
    assert claims.sentence(diff) == "CKTAT above: **contradicted** (ours -1.5; the paper +2.0; McNemar)."
    share = claims.Claim("09", "DUCAT", "shared", "%", 40.0, 12.3, "binomial", claims.REPRODUCED, signed=False)
    assert "(ours 12.3; the paper 40.0;" in claims.sentence(share)


def test_the_scorecard_names_the_chapters_whose_claims_are_missing(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    saving = sorted(os.path.basename(p)[:-len(".ipynb")] for p in glob.glob(os.path.join(root, "notebooks", "*.ipynb"))
                    if "claims.save(" in open(p).read())
    assert saving == sorted(claims.CHAPTERS)  # every chapter that saves claims is waited for, and only those
    assert claims.pending(str(tmp_path)) == list(claims.CHAPTERS)
    claims.save(str(tmp_path), "02_cktat", [])
    claims.save(str(tmp_path), "07_ablations", [])
    left = claims.pending(str(tmp_path))
    assert "02_cktat" not in left and "07_ablations" not in left and len(left) == len(claims.CHAPTERS) - 2
    text = claims.pending_sentence(str(tmp_path), "cpu")
    assert f"{len(left)} of the {len(claims.CHAPTERS)} chapters" in text and "06_capacity" in text
    assert "chapters that test claims have saved none" in text
    for c in claims.CHAPTERS:
        if c != "06_capacity":
            claims.save(str(tmp_path), c, [])
    assert "chapters that test claims has saved none in the cpu profile (06_capacity: not executed there yet, or " \
           "waiting for a run its page names), so its claims" in claims.pending_sentence(str(tmp_path), "cpu")
    for c in claims.CHAPTERS:
        claims.save(str(tmp_path), c, [])
    assert claims.pending_sentence(str(tmp_path), "cpu") == ""


def test_a_chapter_saving_claims_for_the_first_time_changes_the_index_the_scorecard_reads(tmp_path):
    results = str(tmp_path)
    claims.save(results, "02_cktat", [])
    index = os.path.join(claims.folder(results), claims.INDEX)
    first = open(index).read()
    assert json.loads(first) == {"chapters": ["02_cktat"]}
    claims.save(results, "02_cktat", [])  # the same claims again: nothing rewritten
    assert open(index).read() == first
    claims.save(results, "07_ablations", [])
    assert json.loads(open(index).read()) == {"chapters": ["02_cktat", "07_ablations"]}
    os.remove(os.path.join(claims.folder(results), "07_ablations.json"))
    claims.write_index(results)
    assert claims.load_all(results) == [] and json.loads(open(index).read()) == {"chapters": ["02_cktat"]}


def test_a_long_opening_counts_the_verdicts_and_lists_each_claim_under_its_own():
    mk = lambda name, verdict: claims.Claim("07_ablations", "Table 3", name, "m", 1.0, 2.0, "noise", verdict)
    few = [mk("a rises", claims.REPRODUCED), mk("b falls", claims.CONTRADICTED)]
    assert claims.opening(few) == claims.findings(few)
    many = few + [mk("c rises", claims.REPRODUCED), mk("d is level", claims.WITHIN_NOISE), mk("e", claims.REPRODUCED)]
    text = claims.opening(many)
    lines = text.split("\n\n")
    assert lines[0].startswith("Of the 5 claims this chapter tests, 3 are reproduced, 1 within noise, 1 contradicted")
    assert lines[1] == "**Reproduced**: a rises; c rises; e."
    assert lines[2] == "**Within noise**: d is level." and lines[3] == "**Contradicted**: b falls."
    long = [claims.Claim("06", "Table 1 (signs)", f"s{i}", "m", 1.0, 2.0, "n", claims.REPRODUCED) for i in range(8)] + \
        [claims.Claim("06", "Table 1", f"c{i}", "m", 1.0, 2.0, "n", claims.WITHIN_NOISE) for i in range(6)]
    assert claims.opening(long) == ("Of the 14 claims this chapter tests: **Table 1 (signs)**, 8 claims: 8 reproduced; "
                                    "**Table 1**, 6 claims: 6 within noise. Each is decided, with its numbers, in its "
                                    "section below.")
    one = [mk("a", claims.REPRODUCED)] + [mk(x, claims.WITHIN_NOISE) for x in "bcde"]
    assert claims.opening(one).startswith("Of the 5 claims this chapter tests, 1 is reproduced, 4 within noise;")


def _collapsed_run():
    per_class = {c: (100.0 if c == "automobile" else 0.0) for c in
                 ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")}
    run = _run(0, "1" * 101 + "0" * 899, "1" * 101 + "0" * 899)
    nat = run["student"]["last"]["test"]["attacks"]["natural"]
    nat.update(correct=101, per_class=per_class)
    return run


def test_an_ablation_that_collapsed_to_one_class_tests_nothing():
    full = _run(0, "1" * 500 + "0" * 500, "1" * 300 + "0" * 700)
    full["student"]["last"]["test"]["attacks"]["natural"].update(
        correct=500, per_class={c: 50.0 for c in "abcdefghij"})
    assert ablations.collapsed(full) is None
    why = ablations.collapsed(_collapsed_run())
    assert "collapsed" in why and "10.1%" in why and "automobile" in why
    c = ablations.ablation("07", "the teacher term", _collapsed_run(), full, [82.20, 55.34], [83.45, 56.80], "pgd20")
    assert c.verdict == claims.UNTESTABLE and "collapsed" in c.noise


def test_an_ablation_follows_the_direction_the_paper_states_in_words():
    """The paper's numbers for removing the initialisation lie within its noise, but its text says both fall."""
    full = _run(0, "1" * 600 + "0" * 400, "1" * 300 + "0" * 700)
    lower = _run(0, "1" * 540 + "0" * 460, "1" * 300 + "0" * 700)
    for run in (full, lower):
        nat = run["student"]["last"]["test"]["attacks"]["natural"]
        nat.update(correct=nat["bits"].count("1"), per_class={c: nat["accuracy"] for c in "abcdefghij"})
    paper_ablated, paper_full = [82.50, 56.40], [83.45, 56.80]
    by_numbers = ablations.ablation("07", "the initialisation", lower, full, paper_ablated, paper_full, "pgd20", column=0)
    assert "leaves unchanged" in by_numbers.claim and by_numbers.verdict == claims.CONTRADICTED
    stated = ablations.ablation("07", "the initialisation", lower, full, paper_ablated, paper_full, "pgd20", column=0,
                             stated=noise.BELOW)
    assert "lowers natural" in stated.claim and stated.verdict == claims.REPRODUCED


def test_capacity_signs_follow_the_direction_the_text_states():
    """Sec. 4.2: "a dual decrease" on ResNet-18, "a dual increase" on WRN-34-10: below PGD-AT on the small student and
    above on the large one, for every method, whatever its own number (the audit lists where they disagree)."""
    def run(bits):
        return {"student": {"last": {"test": {"attacks": {"natural": {"accuracy": 100 * bits.count("1") / len(bits),
                                                                      "total": len(bits), "bits": bits},
                                                          "pgd20": {"accuracy": 100 * bits.count("1") / len(bits),
                                                                    "total": len(bits), "bits": bits}}}}}}
    hi, lo = "1" * 700 + "0" * 300, "1" * 500 + "0" * 500
    runs = {("PGDAT", "none", "small"): run(hi), ("LTD", "clean", "small"): run(lo),
            ("PGDAT", "none", "large"): run(lo), ("LTD", "clean", "large"): run(hi)}
    paper = {"resnet18": {"PGDAT": [83.92, 51.71], "LTD": [80.0, 48.0]},
             "wrn34_10": {"PGDAT": [86.84, 56.82], "LTD": [84.42, 60.0]}}
    found = {c.claim: c for c in capacity.capacity_signs("06", runs, paper, "pgd20")}
    small_nat = found["On the small student, LTD's natural accuracy (clean teacher) below PGD-AT's"]
    assert small_nat.verdict == claims.REPRODUCED and small_nat.ours == pytest.approx(-20.0)
    # the paper's LTD natural number on WRN-34-10 lies below PGD-AT's, but its text says "a dual increase"
    large_nat = found["On the large student, LTD's natural accuracy (clean teacher) above PGD-AT's"]
    assert large_nat.verdict == claims.REPRODUCED and large_nat.paper == pytest.approx(-2.42)
    assert large_nat.source == "text" and "cktat.table1_capacity.wrn34_10.LTD" in large_nat.rests_on
    # each student is judged against its own spread
    noisy = capacity.capacity_signs("06", runs, paper, "pgd20", {"small": {"natural": 20.0, "pgd20": 20.0}})
    assert {c.verdict for c in noisy if "small" in c.claim} == {claims.WITHIN_NOISE}
    assert {c.verdict for c in noisy if "large" in c.claim} == {claims.REPRODUCED}


def test_a_table3_claim_at_another_setting_than_the_papers_rows_is_not_judged():
    assert ablations.unlike_paper(None, 5.0, 6.0) is None and ablations.unlike_paper("tau", 2.0, 6.0) is None
    assert "tau 2 (the paper's 5)" in ablations.unlike_paper(None, 2.0, 6.0)
    assert "tau 2" in ablations.unlike_paper("beta", 2.0, 6.0) and ablations.unlike_paper("beta", 5.0, 3.0) is None
    why = ablations.unlike_paper("beta", 2.0, 6.0)
    up = ablations.trend("07", "Table 3c", "falls", "rho", [0, 1, 2, 3], [4, 3, 2, 1], [4, 3, 2, 1], unlike=why)
    assert up.verdict == claims.UNTESTABLE and up.noise == why  # judged at tau 5 it would be reproduced
    full = {"student": {"last": {"test": {"attacks": {"natural": {"accuracy": 50.0, "bits": "1" * 50 + "0" * 50}}}}}}
    gone = ablations.ablation("07", "x", full, full, [80.0, 50.0], [83.0, 56.0], "pgd20", 0, unlike=why)
    assert gone.verdict == claims.UNTESTABLE


def test_table4_claims_of_a_cktat_row_at_another_tau_are_not_judged():
    paper = {"PGDAT": {"natural": 83.9}, "CKTAT (beta=6)": {"natural": 83.5}}
    assert baselines.at_our_tau(paper, 5.0) == paper and list(baselines.at_our_tau(paper, 2.0)) == ["PGDAT"]
    c = baselines.suite_pair("08", "Table 4", "CKTAT (beta=6)", "PGDAT", "natural", "natural", {},
                             baselines.at_our_tau(paper, 2.0))
    assert c.verdict == claims.UNTESTABLE and "no CKTAT (beta=6) row" in c.noise
    t = baselines.top_of("08", "Table 4", "CKTAT (beta=6)", "natural", "natural", {}, baselines.at_our_tau(paper, 2.0),
                         stated=True)
    assert t.verdict == claims.UNTESTABLE


def test_a_number_that_rounds_to_zero_prints_without_a_minus():
    from cktat_book import report

    assert claims.value(-0.04, True) == "+0.0" and claims.value(-0.04, False) == "0.0"
    assert report.markdown_table([{"x": -0.004}], digits=2).endswith("| 0.00 |")
    assert noise.compare(10.0, 10.02, n=1000).evidence().startswith("+0.0 points")


def test_a_claim_listed_after_a_colon_starts_in_lower_case_unless_it_starts_with_a_name():
    assert claims.in_list("The PGD-20 ordering of the 9 methods") == "the PGD-20 ordering of the 9 methods"
    assert claims.in_list("CKTAT's natural accuracy below PGD-AT's") == "CKTAT's natural accuracy below PGD-AT's"
    assert claims.in_list("Removing the teacher term lowers natural accuracy") == "removing the teacher term lowers natural accuracy"
    assert claims.in_list("TRADES's PGD-20 accuracy above PGD-AT's").startswith("TRADES's")

"""The budget ladder's reading of a difference along the budget, and the readings tested by the runs they name:
against runs with known per-image results."""

import dataclasses

import pytest

from cktat_book import baselines, budget, claims, headline, noise, raat_ducat


def _run(nat, rob, seconds=100.0):
    ev = lambda bits: {"accuracy": 100 * bits.count("1") / len(bits), "total": len(bits), "bits": bits}
    return {"wall_seconds": seconds, "student": {"last": {"test": {"attacks": {"natural": ev(nat), "pgd20": ev(rob)}}}}}


N = 1000
bits = lambda k: "1" * k + "0" * (N - k)


def _ladder(lead_1x, lead_4x):
    """CKTAT's natural lead over PGD-AT: `lead_1x` images at the profile's budget, `lead_4x` with four times it."""
    return {"1x": {"cktat": _run(bits(500 + lead_1x), bits(300)), "pgdat": _run(bits(500), bits(300)),
                   "trades": _run(bits(500), bits(300))},
            "4x epochs": {"cktat": _run(bits(500 + lead_4x), bits(300)), "pgdat": _run(bits(500), bits(300)),
                          "trades": _run(bits(500), bits(300))}}


def test_a_difference_moves_towards_the_paper_away_or_within_noise():
    ladder = _ladder(60, 0)  # a 6-point lead that the longer schedule removes
    c = budget.change(ladder["1x"], ladder["4x epochs"], "cktat", "pgdat", "natural", 0.2)
    assert c.word == noise.BELOW and c.difference == pytest.approx(-6.0)
    assert budget.movement(c, 6.0, -0.5) == "towards the paper"  # the paper's difference lies below
    assert budget.movement(c, 6.0, 9.0) == "away from the paper"
    still = budget.change(ladder["1x"], _ladder(60, 58)["4x epochs"], "cktat", "pgdat", "natural", 0.2)
    assert budget.movement(still, 6.0, -0.5) == "within noise"
    # a large run-to-run spread makes even a 6-point change noise
    assert budget.change(ladder["1x"], ladder["4x epochs"], "cktat", "pgdat", "natural", 3.0).word == noise.WITHIN
    seeds = {m: [r] for m, r in ladder["1x"].items()}
    paper = {"pgdat": [83.92, 51.71], "trades": [82.40, 53.84], "cktat": [83.45, 56.80]}
    moves = budget.movements(ladder, seeds, "pgd20", paper, {"natural": 0.2, "pgd20": 0.2}, ("4x epochs",))
    first = moves[0]
    assert (first["first"], first["attack"], first["movement"]) == ("cktat", "natural", "towards the paper")
    text = budget.movement_sentence(moves, {"natural": "natural", "pgd20": "PGD-20"})
    assert "From 1x to 4x epochs, of the 6 differences" in text and "towards the paper: CKTAT - PGD-AT in natural" in text
    # the change is measured from the seeds' mean (-2 here: seeds leading by +6 and -10), as the table shows it
    other = {"cktat": [ladder["1x"]["cktat"], _run(bits(400), bits(300))], "pgdat": seeds["pgdat"] * 2,
             "trades": seeds["trades"] * 2}
    moved = budget.movements(ladder, other, "pgd20", paper, {"natural": 0.2, "pgd20": 0.2}, ("4x epochs",))[0]
    assert moved["start"] == pytest.approx(-2.0) and moved["comparison"].difference == pytest.approx(2.0)
    assert moved["comparison"].margin == pytest.approx(noise.change_margin(0.2, 2))
    assert noise.change_margin(0.2, 2) < noise.change_margin(0.2, 1) == pytest.approx(0.8)  # four runs: z * 2 * 0.2
    # a change that crosses the paper's value is past it, though it ends nearer than it started (0 against 2 from 6)
    assert budget.movement(c, 6.0, 4.5) == budget.PAST and budget.movement(c, 6.0, 2.0) == budget.PAST
    assert budget.movement(c, 6.0, 0.5, band=1.0) == budget.TOWARDS  # it crosses, but ends within the paper's band
    assert budget.movement(c, 6.0, 5.5, band=1.0) == budget.AT_PAPER  # it started within the paper's own noise
    # without a seed spread a single run cannot be judged; the sentence says what a change must exceed
    flat = budget.movements(ladder, seeds, "pgd20", paper, {"natural": None, "pgd20": 0.2}, ("4x epochs",))
    assert flat[0]["movement"] == "not testable" and flat[1]["movement"] != "not testable"
    assert "(Bonferroni) and counts only beyond the training noise of its runs: 0.8 points in natural" in text
    rows = budget.ladder_rows(ladder, seeds, "pgd20", paper, {"pgd20": "PGD-20"})
    assert rows[0]["1x"] == pytest.approx(6.0) and rows[0]["4x epochs"] == pytest.approx(0.0)
    assert rows[0]["paper"] == pytest.approx(-0.47)


def test_a_rung_whose_runs_have_not_all_landed_shows_what_it_can_and_names_the_rest():
    """The committed page shows the ladder as the build lands it (`book_runs.ladder` without training): a difference
    whose rung lacks a run of either method is not trained yet, in the table (None), the movements, the sentence and
    the plot; the differences the landed runs allow are judged as before."""
    full = _ladder(60, 0)
    ladder = {"1x": full["1x"], "4x epochs": {m: full["4x epochs"][m] for m in ("pgdat", "trades")},
              "2x epochs": {}}
    seeds = {m: [r] for m, r in full["1x"].items()}
    paper = {"pgdat": [83.92, 51.71], "trades": [82.40, 53.84], "cktat": [83.45, 56.80]}
    labels = {"natural": "natural", "pgd20": "PGD-20"}
    rows = budget.ladder_rows(ladder, seeds, "pgd20", paper, labels)
    assert [r["4x epochs"] is None for r in rows] == [True, True, False, False, True, True]  # TRADES - PGD-AT landed
    assert all(r["2x epochs"] is None and r["1x"] is not None for r in rows)
    moves = budget.movements(ladder, seeds, "pgd20", paper, {"natural": 0.2, "pgd20": 0.2}, ("2x epochs", "4x epochs"))
    four = [m for m in moves if m["rung"] == "4x epochs"]
    assert [m["movement"] == budget.NOT_TRAINED_YET for m in four] == [True, True, False, False, True, True]
    assert four[2]["comparison"] is not None
    text = budget.movement_sentence(moves, labels)
    assert "At 2x epochs, no difference can be measured yet." in text
    assert "not trained yet: CKTAT - PGD-AT in natural, CKTAT - PGD-AT in PGD-20" in text
    assert "within noise: TRADES - PGD-AT in natural (+0.0)" in text
    assert budget.not_landed(ladder).startswith("Not trained yet: CKTAT at 4x epochs; PGD-AT, TRADES and CKTAT at 2x")
    assert budget.not_landed(full) == ""
    pytest.importorskip("matplotlib")
    from cktat_book import figures

    fig = figures.ladder(rows, {"1x": 16, "2x epochs": 32, "4x epochs": 64}, {"natural": 0.8})
    panel = fig.axes[0]  # CKTAT - PGD-AT natural: 1x alone
    assert list(panel.lines[0].get_xdata()) == [16]
    assert list(fig.axes[1].lines[0].get_xdata()) == [16, 64]  # TRADES - PGD-AT natural: 1x and 4x


def test_one_pairs_movements_are_chapter_10s_and_said_rung_by_rung():
    """Chapter 03 shows what the ladder's longer schedules do to TRADES - PGD-AT: the verdicts are chapter 10's (the
    same six-difference family), the sentence says them rung by rung, and a rung without the pair's runs is left out."""
    ladder = _ladder(0, 0)
    ladder["4x epochs"]["trades"] = _run(bits(480), bits(320))  # TRADES moves 2 points down, 2 up against PGD-AT
    seeds = {m: [r] for m, r in ladder["1x"].items()}
    paper = {"pgdat": [83.92, 51.71], "trades": [82.40, 53.84]}
    spread = {"natural": 0.2, "pgd20": 0.2}
    pair = (("trades", "pgdat"),)
    moves = budget.movements({**ladder, "2x epochs": {}}, seeds, "pgd20", paper, spread, ("2x epochs", "4x epochs"),
                             pairs=pair)
    full = budget.movements(ladder, seeds, "pgd20", {**paper, "cktat": [83.45, 56.80]}, spread, ("4x epochs",))
    assert [m["comparison"].p for m in moves if m["rung"] == "4x epochs"] == \
        [m["comparison"].p for m in full if m["first"] == "trades"]
    text = budget.pair_sentence(moves, {"natural": "natural", "pgd20": "PGD-20"})
    assert text.endswith("At 4x epochs, towards the paper in natural (-2.0) and PGD-20 (+2.0).")
    assert text.startswith("Along the ladder") and "TRADES - PGD-AT" in text and "2x epochs" not in text
    assert budget.pair_sentence([m for m in moves if m["rung"] == "2x epochs"], {}) == ""


def _claim(text, verdict, ours):
    return claims.Claim("02_cktat", "Table 4", text, "m", -0.47, ours, "n", verdict)


def test_a_reading_is_supported_not_supported_or_within_noise_by_the_run_it_names():
    found = [_claim("CKTAT's natural accuracy below PGD-AT's", claims.CONTRADICTED, 6.0)]
    gone = headline.readings(found, _ladder(60, 0), {"natural": 0.2})
    assert [r.verdict for r in gone] == [budget.SUPPORTED] and budget.shown(gone[0]) and gone[0].resolves
    narrowed = headline.readings(found, _ladder(60, 30), {"natural": 0.2})[0]  # +6 to +3: less, but still above
    assert narrowed.verdict == budget.SUPPORTED and narrowed.resolves is False and "still contradicts" in narrowed.shows
    assert "goes from +6.0 to +0.0 points" in gone[0].shows and "4x epochs" in gone[0].run
    grows = headline.readings(found, _ladder(60, 120), {"natural": 0.2})[0]
    assert grows.verdict == budget.NOT_SUPPORTED and not budget.shown(grows)
    assert "replaced by what the run shows" in grows.sentence()
    assert grows.claim == found[0].claim and f"\u201c{found[0].claim}\u201d" in grows.sentence()  # named on the page
    assert headline.readings(found, _ladder(60, 59), {"natural": 0.2})[0].verdict == budget.WITHIN_NOISE
    untested = headline.readings(found, None, {"natural": 0.2})[0]
    assert untested.verdict == budget.NOT_TRAINED_YET and "`ladder` stage" in untested.evidence  # planned, not landed
    # a rung where one of the reading's two runs has landed waits; the runs of the other methods do not matter
    half = _ladder(60, 0)
    del half["4x epochs"]["cktat"]
    assert headline.readings(found, half, {"natural": 0.2})[0].verdict == budget.NOT_TRAINED_YET
    del half["4x epochs"]["trades"]
    half["4x epochs"]["cktat"] = _ladder(60, 0)["4x epochs"]["cktat"]
    assert headline.readings(found, half, {"natural": 0.2})[0].verdict == budget.SUPPORTED
    assert headline.readings([_claim("CKTAT's natural accuracy below PGD-AT's", claims.REPRODUCED, -1.0)],
                             _ladder(60, 0), {"natural": 0.2}) == []  # a reproduced claim needs no reading


def test_the_raat_reading_is_decided_by_raat_without_its_reduced_perturbation():
    found = [claims.Claim("09_raat_ducat", "RAAT Table 1", "RAAT's natural accuracy above Cons-AT's", "m", 0.27,
                          -3.0, "n", claims.CONTRADICTED)]
    raat, cons = _run(bits(500), bits(300)), _run(bits(530), bits(300))
    still = raat_ducat.raat_reading_tested(found, _run(bits(500), bits(300)), raat, cons, 0.2)[0]
    assert still.verdict == budget.SUPPORTED  # without it RAAT stays 3 points below Cons-AT
    risen = raat_ducat.raat_reading_tested(found, _run(bits(560), bits(300)), raat, cons, 0.2)[0]
    assert risen.verdict == budget.NOT_SUPPORTED
    missing = raat_ducat.raat_reading_tested(found, None, raat, cons, 0.2)[0]
    assert missing.verdict == budget.NOT_TRAINED_YET and "`readings` stage" in missing.evidence


def test_the_natural_lead_reading_of_table4_waits_for_the_long_rows():
    claim = claims.Claim("08_baselines", "Table 4", "CKTAT has the highest natural accuracy", "m", 1.0, -4.0, "n",
                         claims.CONTRADICTED)
    val = lambda run, v: {**run, "student": {**run["student"], "history": [{"val_natural": v}]}}
    short = {"CKTAT": val(_run(bits(500), bits(300)), 50.0), "HAT": val(_run(bits(560), bits(300)), 51.0),
             "MART": val(_run(bits(580), bits(300)), 50.5)}
    long = {"CKTAT": _run(bits(500), bits(300)), "HAT": _run(bits(500), bits(300)), "MART": _run(bits(580), bits(300))}
    done = baselines.natural_lead_tested(claim, short, long, "CKTAT", ["HAT", "MART"], 0.2, "4x epochs", "2 h")[0]
    # the row is picked on validation (HAT), not by its larger lead on the test images (MART's)
    assert done.verdict == budget.SUPPORTED and "HAT's natural lead over CKTAT goes from +6.0 to +0.0" in done.shows
    assert done.resolves is True
    wait = baselines.natural_lead_tested(claim, short, None, "CKTAT", ["HAT"], 0.2, "4x epochs", "2 h")[0]
    assert wait.verdict == budget.NOT_TESTED and "2 h" in wait.evidence


def test_one_reading_of_two_claims_is_said_once_while_its_tests_agree():
    from cktat_book import budget

    r = lambda claim, evidence: budget.Reading("03", claim, "We read it so.", "the run", budget.NOT_TRAINED_YET,
                                               evidence)
    waiting = budget.sentences([r("A below B", "the ladder stage"), r("A above C", "the ladder stage")])
    assert waiting == ["**Reading of \u201cA below B\u201d and \u201cA above C\u201d, tested.** We read it so. Tested "
                       "by the run: **not trained yet**; the ladder stage."]
    apart = budget.sentences([r("A below B", "change -1.0"), r("A above C", "change +2.0")])
    # the reading once, each claim's own test beneath it
    assert apart == ["**Reading of \u201cA below B\u201d and \u201cA above C\u201d, tested.** We read it so.\n\n"
                     "- \u201cA below B\u201d: tested by the run: **not trained yet**; change -1.0.\n"
                     "- \u201cA above C\u201d: tested by the run: **not trained yet**; change +2.0."]
    other = budget.Reading("03", "D", "Another reading.", "the run", budget.SUPPORTED, "change +3.0")
    assert len(budget.sentences([r("A below B", "change -1.0"), other])) == 2  # two readings, two paragraphs


def test_one_mechanism_read_into_two_claims_gets_one_verdict():
    from cktat_book import label_design

    found = [claims.Claim("03_label_design", "Table 4", "TRADES's natural accuracy below PGD-AT's", "m", -1.5, 6.0, "n",
                          claims.CONTRADICTED),
             claims.Claim("03_label_design", "Table 4", "TRADES's PGD-20 accuracy above PGD-AT's", "m", 2.1, -6.0, "n",
                          claims.CONTRADICTED)]
    base = {"pgdat": _run(bits(500), bits(300)), "trades": _run(bits(560), bits(240)), "cktat": _run(bits(500), bits(300))}
    rung = lambda nat, rob: {"1x": base, budget.ATTACK_RUNG: {**base, "trades": _run(bits(nat), bits(rob))}}
    spread = {"natural": 0.2, "pgd20": 0.2}
    half = label_design.readings(found, rung(500, 241), spread, "pgd20", 2, 10)  # natural moves, PGD-20 does not
    assert [r.verdict for r in half] == [budget.WITHIN_NOISE] * 2 and half[0].evidence == half[1].evidence
    assert len(budget.sentences(half)) == 1  # one paragraph naming both claims
    both = label_design.readings(found, rung(500, 300), spread, "pgd20", 2, 10)
    assert {r.verdict for r in both} == {budget.SUPPORTED}
    against = label_design.readings(found, rung(500, 180), spread, "pgd20", 2, 10)  # PGD-20 moves the other way
    assert {r.verdict for r in against} == {budget.NOT_SUPPORTED}


def test_generalists_natural_gap_reading_waits_for_the_long_rows_and_is_tested_by_them():
    claim = claims.Claim("08_baselines", "Table 4", "CKTAT (beta=6)'s natural accuracy below Generalist's", "m", -4.65,
                         5.0, "n", claims.CONTRADICTED)
    short = {"CKTAT": _run(bits(560), bits(300)), "Generalist": _run(bits(510), bits(300))}
    [wait] = baselines.natural_gap_tested(claim, short, None, "CKTAT", "Generalist", 0.2, "4x epochs", "2 h")
    assert wait.verdict == budget.NOT_TESTED and "Generalist up towards CKTAT" in wait.text and "2 h" in wait.evidence
    long = {"CKTAT": _run(bits(560), bits(300)), "Generalist": _run(bits(580), bits(300))}
    [done] = baselines.natural_gap_tested(claim, short, long, "CKTAT", "Generalist", 0.2, "4x epochs", "2 h")
    assert done.verdict == budget.SUPPORTED and "goes from -5.0 to +2.0 points with 4x epochs" in done.shows
    assert done.resolves is True  # Generalist no longer below CKTAT beyond the noise at 4x
    closer = {"CKTAT": _run(bits(560), bits(300)), "Generalist": _run(bits(530), bits(300))}
    [narrowed] = baselines.natural_gap_tested(claim, short, closer, "CKTAT", "Generalist", 0.2, "4x epochs", "2 h")
    assert narrowed.verdict == budget.SUPPORTED and narrowed.resolves is False  # still 3 points below there
    assert baselines.natural_gap_tested(dataclasses.replace(claim, ours=-1.0), short, None, "CKTAT", "Generalist",
                                        0.2, "4x epochs", "2 h") == []

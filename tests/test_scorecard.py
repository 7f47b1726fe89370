"""The scorecard's audit of the paper's own numbers, the pooled noise, the paper's row at our setting, the controls
and the split of the test images by pixel source: each against numbers with a known answer."""

import copy
import math

import pytest
from scipy.stats import chi2

from cktat_book import claims, headline, noise, report, scorecard


def test_the_audit_finds_the_papers_inconsistencies_by_the_claims_rules():
    found = scorecard.audit()
    same = [f for f in found if f.check == "same_setting"]
    # LBGAT: 45.80 in Table 1, 49.57 in Table 4a for the same setting; PGD-AT's two rows agree, and Table 3b's tau = 5
    # (56.81) and Table 4a's CKTAT (56.80) differ by far less than their noise
    assert [f.rows for f in same] == [("cktat.table1_capacity.resnet18.LBGAT", "cktat.table4_cifar10.LBGAT")]
    assert "45.80 against 49.57" in same[0].text
    drops = next(f for f in found if f.check == "attack_drops" and "Table 4a" in f.text)
    large, small = drops.groups
    assert "cktat.table4_cifar10.PGDAT" in large and "cktat.table4_cifar10.TRADES" in large
    assert "cktat.table4_cifar10.CKTAT_beta6" in small and "cktat.table4_cifar10.HAT" in small
    text = [f for f in found if f.check == "text_against_table"]
    bad = " ".join(f.text for f in text if f.kind == "inconsistent")
    assert "RSLAD 86.93 against" in bad and "LTD 84.42 against" in bad  # Sec. 4.2's dual decrease and increase
    assert "Table 4b CKTAT_beta6 57.20 against Table 4b HAT 59.19" in bad  # "only weaker than Generalist and PGDAT"
    weak = " ".join(f.text for f in text if f.kind == "not shown")
    assert "beta = 7 56.89" in weak  # "beta = 6 is the best choice": beta = 7 is 0.09 higher, within the noise
    assert "Table 4b MART 28.11 in MIM" in weak and "Table 4b MART 27.61 in CW" in weak
    assert [f.kind for f in found] == sorted((f.kind for f in found), key=lambda k: k != "inconsistent")


def test_a_consistent_paper_has_nothing_to_audit():
    """The same rules on numbers that agree with each other and with the text find nothing: the audit can come out
    either way."""
    paper = copy.deepcopy(report.paper_numbers())
    c = paper["cktat"]
    flat = lambda nat, rob: [nat] + [rob] * 5  # PGD-100 takes nothing from PGD: every drop within the noise
    table4 = {"PGDAT": flat(85, 30), "TRADES": flat(70, 30), "MART": flat(70, 30), "LBGAT": flat(70, 25),
              "LTD": flat(70, 55), "HAT": flat(70, 55), "Generalist": flat(95, 30), "CKTAT_beta0": flat(90, 50),
              "CKTAT_beta6": flat(80, 60)}
    c["table4_cifar10"], c["table4_cifar100"] = copy.deepcopy(table4), copy.deepcopy(table4)
    c["table1_capacity"] = {"resnet18": {m: [80, 25] for m in c["table1_capacity"]["resnet18"]},
                            "wrn34_10": {m: [90, 60] for m in c["table1_capacity"]["wrn34_10"]}}
    c["table1_capacity"]["resnet18"].update(PGDAT=[85, 30], LBGAT=[70, 25])
    c["table1_capacity"]["wrn34_10"]["PGDAT"] = [80, 50]
    c["table3b_tau"] = {t: [80 - 5 * abs(t - 5), 60 - 5 * abs(t - 5)] for t in range(1, 7)}
    c["table3c_beta"] = {b: [80 + (6 - b) * 10 / 6, 60 - abs(6 - b) * 10 / 6] for b in range(8)}
    c["table3a_remove"] = {"clean_model_init": [75, 55], "kl_teacher_adv": [75, 55], "kl_consistency": [90, 50]}
    assert scorecard.audit(paper) == []
    c["table4_cifar10"]["HAT"][2] = 40  # one row now loses 15 points from PGD to PGD-100
    assert [f.check for f in scorecard.audit(paper)] == ["attack_drops"]


def test_a_claim_is_marked_when_it_rests_on_an_inconsistent_row():
    found = scorecard.audit()
    mk = lambda *rows: claims.Claim("02", "Table 4", "x", "m", 1.0, 1.0, "n", claims.REPRODUCED, rests_on=rows)
    across = mk("cktat.table4_cifar10.CKTAT_beta6", "cktat.table4_cifar10.PGDAT")  # the two groups of the drops
    within = mk("cktat.table4_cifar10.TRADES", "cktat.table4_cifar10.PGDAT")  # both lose several points
    lbgat = mk("cktat.table4_cifar10.LBGAT")
    assert [f.check for f in scorecard.marked(across, found)] == ["attack_drops"]
    assert scorecard.marked(within, found) == []
    assert [f.check for f in scorecard.marked(lbgat, found)] == ["same_setting"]
    rows = scorecard.table_rows([across, within], found)
    assert rows[0]["verdict"].endswith(" †") and not rows[1]["verdict"].endswith("†")
    assert "1 of the 2 claims" in scorecard.audit_sentence(found, [across, within])
    # a finding concerns its columns only: the PGD to PGD-100 drops mark a PGD-20 claim, not a natural one
    said = lambda text: claims.Claim("02", "Table 4", text, "m", 1.0, 1.0, "n", claims.REPRODUCED,
                                     rests_on=across.rests_on)
    assert [f.check for f in scorecard.marked(said("CKTAT's PGD-20 accuracy above PGD-AT's"), found)] == \
        ["attack_drops"]
    assert scorecard.marked(said("CKTAT's natural accuracy below PGD-AT's"), found) == []
    assert scorecard.claim_column(said("The AA (APGD-CE, APGD-T) ordering of the 9 methods")) == "AA"
    assert scorecard.claim_column(said("The PGD-100 ordering of the 9 methods")) == "PGD-100"
    assert scorecard.claim_column(said("TRADES has more knowledge points per image than PGDAT")) is None
    assert scorecard.claim_column(said("Removing the teacher term lowers robust accuracy")) == "PGD"


def test_the_pooled_spread_and_its_upper_bound():
    s = noise.pooled_spread({"a": [1.0, 2.0, 3.0], "b": [2.0, 2.0, 2.0], "c": [5.0]})
    assert (s.df, s.methods, s.runs) == (4, 2, 6)  # a method with one seed adds nothing
    assert s.sd == pytest.approx(math.sqrt(2 / 4))
    assert s.upper == pytest.approx(math.sqrt(2 / chi2.ppf(0.05, 4))) and s.upper > 2 * s.sd
    assert noise.pooled_spread({"a": [1.0]}) is None
    assert noise.detectable_difference(1000, 0.1) == pytest.approx(2.0)
    assert "1.9 points" in noise.detectable_sentence(1000, [0.08, 0.1])


def test_the_margins_sentence_names_the_columns_that_borrow_the_robust_attacks_spread():
    s = noise.pooled_spread({"a": [1.0, 2.0, 3.0], "b": [2.0, 2.0, 2.5]})
    titles = {"natural": "natural", "pgd20": "PGD-20", "pgd100": "PGD-100", "mim": "MIM", "cw": "CW", "aa": "AA"}
    text = report.margins_sentence({"natural": s, "pgd20": s, "pgd100": s, "mim": s, "cw": s, "aa": None}, "pgd20",
                                   titles, {"natural": "a's and b's seeds"})
    assert (f"at most {s.upper:.2f} at 95% confidence, so two single runs count as apart only beyond "
            f"{noise.run_margin(s.upper):.2f} points (a's and b's seeds)") in text
    assert "AA, none (no method has two seeds)" in text
    assert text.endswith("PGD-100, MIM and CW take PGD-20's margin: no seed is attacked with them.")
    one = report.margins_sentence({"pgd20": s, "cw": s}, "pgd20", titles)
    assert one.endswith("CW takes PGD-20's margin: no seed is attacked with it.")
    assert "take" not in report.margins_sentence({"natural": s, "pgd20": s}, "pgd20", titles)


def test_the_margins_name_whose_seeds_each_column_pools():
    from cktat_book import book_runs

    over = book_runs.pooled_over(["natural", "pgd20", "cw", "aa"], "pgd20")
    assert set(over) == {"natural", "pgd20", "aa"}  # CW borrows PGD-20's spread: it pools no seeds of its own
    assert over["natural"] == over["pgd20"] == "PGD-AT's, TRADES's and CKTAT's seeds"
    assert over["aa"] == "PGD-AT's and CKTAT's seeds: TRADES's are not attacked with it"


def test_the_papers_cktat_row_is_the_one_at_our_setting():
    assert report.paper_cktat(5.0, 6.0)[0] == "cktat.table4_cifar10.CKTAT_beta6"
    assert report.paper_cktat(5.0, 0.0)[0] == "cktat.table4_cifar10.CKTAT_beta0"
    assert report.paper_cktat(1.0, 6.0) == ("cktat.table3b_tau.1", [81.64, 53.40])  # the paper's own tau = 1 row
    assert report.paper_cktat(5.0, 3.0) == ("cktat.table3c_beta.3", [84.54, 55.62])
    assert report.paper_cktat(2.0, 3.0) is None
    assert report.row_name("cktat.table3b_tau.1") == "Table 3b, tau = 1"


def _run(seed, nat, rob):
    ev = lambda bits: {"accuracy": 100 * bits.count("1") / len(bits), "total": len(bits), "bits": bits}
    return {"seed": seed, "student": {"last": {"test": {"attacks": {"natural": ev(nat), "pgd20": ev(rob)}}}}}


def test_a_gain_survives_a_control_only_when_cktat_stays_above_it():
    n = 1000
    bits = lambda k: "1" * k + "0" * (n - k)
    cktat = [_run(s, bits(600 + s), bits(300 + s)) for s in range(3)]
    pgdat = [_run(s, bits(500 + s), bits(250 + s)) for s in range(3)]
    control = _run(0, bits(600), bits(250))  # the teacher's start gives the natural gain, not the robust one
    rows = headline.control_rows(cktat, {"pgdat": pgdat}, {"pgdat": control}, {"natural": "natural", "R": "pgd20"},
                                 {"natural": 0.2, "pgd20": 0.2}, {"pgdat": "PGD-AT"})
    assert [r["the gain"] for r in rows] == ["gone", "survives"]
    text = headline.control_sentence(rows)
    assert "1 survives the control (R accuracy over PGD-AT): CKTAT's loss adds it," in text
    assert "1 does not (natural accuracy" in text
    flat = headline.control_rows(pgdat, {"pgdat": pgdat}, {"pgdat": control}, {"natural": "natural"},
                                 {"natural": 0.2}, {"pgdat": "PGD-AT"})
    assert flat[0]["the gain"] == "no gain" and "no gain to explain" in headline.control_sentence(flat)


def test_the_test_images_split_by_where_their_pixels_come_from():
    run = _run(0, "1" * 100 + "0" * 300, "0" * 400)
    by_source = report.image_split(run, "natural", 100)
    assert by_source["parts"] == ("official pixels (100)", "JPEG-decoded (300)")
    assert by_source["accuracies"] == (100.0, 0.0) and by_source["comparison"].word == noise.ABOVE
    halves = report.image_split(run, "natural", None)
    assert halves["parts"] == ("first half (200)", "second half (200)") and halves["accuracies"] == (50.0, 0.0)


def test_a_table_names_the_autoattack_it_ran_and_the_rows_above_cktat():
    from cktat_book import baselines

    assert report.aa_title("apgd") == "AA (APGD-CE, APGD-T)" and report.aa_title("standard") == "AutoAttack"
    ev = lambda k: {"attacks": {a: {"accuracy": k / 10, "total": 1000, "bits": "1" * k + "0" * (1000 - k)}
                                for a in ("pgd20", "cw")}}
    evals = {"CKTAT": ev(300), "MART": ev(360), "HAT": ev(305), "PGDAT": ev(250)}
    text = baselines.rows_above(evals, "CKTAT", ["pgd20", "cw"], {"pgd20": 0.2, "cw": 0.2}, {"pgd20": "PGD-20"})
    assert text.startswith("Rows above CKTAT in our table") and "PGD-20: MART (+6.0) beyond the noise; HAT (+0.5) "\
        "within it" in text and "cw: MART (+6.0)" in text and "PGDAT" not in text
    assert baselines.rows_above({"CKTAT": ev(300), "PGDAT": ev(250)}, "CKTAT", ["pgd20"], {}, {}) == ""


def test_the_budget_sentence_counts_each_contradiction_once_by_its_readings_verdict():
    from cktat_book import budget, claims

    bad = [claims.Claim("02", "Table 4", f"claim {i}", "m", 1.0, -1.0, "n", claims.CONTRADICTED) for i in range(7)]
    read = lambda i, verdict, blames=True: {"chapter": "02", "claim": f"claim {i}", "verdict": verdict,
                                             "budget": blames}
    readings = [read(0, budget.SUPPORTED), read(1, budget.SUPPORTED, False), read(2, budget.NOT_TESTED),
                read(3, budget.NOT_TRAINED_YET), read(4, budget.NOT_SUPPORTED), read(5, budget.WITHIN_NOISE)]
    assert "narrowed" not in scorecard.budget_sentence(bad, readings)
    still = scorecard.budget_sentence(bad, readings[:-1] + [{**read(5, budget.SUPPORTED), "resolves": False}])
    assert "1 is narrowed by the larger budget but still contradicted there" in still  # not counted as explained
    part = scorecard.budget_sentence(bad, readings[:1] + [{**read(1, budget.SUPPORTED, False), "resolves": False}]
                                     + readings[2:])
    assert "0 by another cause a run supports, 1 in part by another cause a run supports" in part
    s = scorecard.budget_sentence(bad, readings)
    assert "Of the 7 contradicted claims, 1 is explained by the small budget" in s and "1 by another cause" in s
    assert "1 stands (the run that tested its reading, a larger budget's or another, does not support it)" in s and "1 has a reading no run within the budget tests" in s
    assert "1 is left undecided by its run (a change within noise" in s  # too little power is not a contradiction
    assert "1 has a reading whose run the build has not trained yet, and 1 has no reading" in s
    # a chapter's few claims: the counts that are not 0, beside the small budget's
    few = scorecard.budget_sentence(bad[:2], [{**read(0, budget.SUPPORTED, False), "resolves": False},
                                              read(1, budget.NOT_TRAINED_YET)], zeros=False)
    assert few == ("Of the 2 contradicted claims, 0 are explained by the small budget (a reading that blames it, "
                   "supported by a larger budget's run, where the contradiction is gone), 1 in part by "
                   "another cause a run supports (the rest of the contradiction remains), and 1 has a reading whose "
                   "run the build has not trained yet.")


def test_a_claim_reproduced_under_pgd_and_contradicted_under_autoattack_is_named():
    mk = lambda text, verdict, chapter="02_cktat": claims.Claim(chapter, "Table 4", text, "m", 1.0, 1.0, "n", verdict)
    found = [mk("CKTAT's PGD-20 accuracy above PGD-AT's", claims.REPRODUCED),
             mk("CKTAT's AutoAttack accuracy above PGD-AT's", claims.CONTRADICTED),
             mk("CKTAT's natural accuracy below PGD-AT's", claims.CONTRADICTED),
             mk("TRADES's PGD-20 accuracy above PGD-AT's", claims.REPRODUCED),
             mk("TRADES's AutoAttack accuracy above PGD-AT's", claims.WITHIN_NOISE)]
    pairs = scorecard.attack_disagreements(found)
    assert [(a.claim, b.claim) for a, b in pairs] == [("CKTAT's PGD-20 accuracy above PGD-AT's",
                                                       "CKTAT's AutoAttack accuracy above PGD-AT's")]
    assert scorecard.attack_sentence(found).startswith("1 claim reproduced under the runs' own PGD is contradicted "
                                                       "under AutoAttack on the same models: \u201cCKTAT's PGD-20")
    assert scorecard.attack_sentence(found[2:]) == ""
    stronger_first = [mk("CKTAT's AutoAttack accuracy above PGD-AT's", claims.REPRODUCED),
                      mk("CKTAT's PGD-20 accuracy above PGD-AT's", claims.CONTRADICTED)]
    assert scorecard.attack_disagreements(stronger_first) == []  # not a PGD gain that AutoAttack reverses


def test_the_autoattack_version_of_the_claims_is_said_where_it_is_not_the_standard_one():
    from cktat_book import claims

    aa = claims.Claim("02", "Table 4", "CKTAT's AutoAttack accuracy above PGD-AT's", "m", 8.1, -4.5, "n",
                      claims.CONTRADICTED)
    rank = claims.Claim("08", "Table 4", "CKTAT has the highest AA (APGD-CE, APGD-T) accuracy", "m", 1.0, -6.0, "n",
                        claims.CONTRADICTED)
    other = claims.Claim("02", "Table 4", "CKTAT's PGD-20 accuracy above PGD-AT's", "m", 5.1, 1.7, "n",
                         claims.REPRODUCED)
    text = scorecard.autoattack_sentence([aa, rank, other], "apgd", report.aa_title("apgd"), 1000)
    assert text.startswith("2 claims are about AutoAttack: ours is AA (APGD-CE, APGD-T), the version this profile "
                           "runs on the first 1,000 test images, set against the paper's")
    assert text.endswith("never lower.") and ":" not in text.split(": ", 1)[1]  # one colon, no nested one
    assert scorecard.autoattack_sentence([aa], "standard", report.aa_title("standard"), 1000) == ""
    assert scorecard.autoattack_sentence([other], "apgd", report.aa_title("apgd"), 1000) == ""

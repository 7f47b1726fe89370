"""Chapter 09's sentences (`cktat_book.raat_ducat`): DUCAT's shared errors set against its abstract's number, shares
printed for readers, the reading of RAAT's natural accuracy against Cons-AT's, DUCAT's rank. Torch-free: plain
dicts and bit strings."""

import pytest

from cktat_book import budget, claims, raat_ducat


# ------------------------------------------------------------------------------ errors every model makes
def _split_shares():
    """Two models on 100 images: both wrong clean on the first 30, both fooled on the next 20, right elsewhere. Over
    all images 50% are wrong for both (above a claim of 40), over the 70 images both get right clean 20 of 70 (below
    it)."""
    clean = {"a": "0" * 30 + "1" * 70, "b": "0" * 30 + "1" * 70}
    attacked = {"a": "0" * 50 + "1" * 50, "b": "0" * 50 + "1" * 50}
    return raat_ducat.wrong_shares(attacked, clean)


def test_the_shared_errors_sentence_puts_each_share_on_its_own_side_of_the_claim():
    shares = _split_shares()
    assert shares["all"] == 50.0 and shares["clean_all"] == 30.0 and shares["core"]["n"] == 70
    assert shares["natural"] == {"a": 70.0, "b": 70.0}
    text = raat_ducat.wrong_under_all_sentence(shares, 40, "PGD-20")
    assert "Over all the test images ours, 50.0%, is above that: the claim below judges this share" in text
    assert "30.0 points of it are images every model gets wrong even without an attack" in text
    assert "Over the 70 images every model gets right clean ours is 28.6%, below that." in text
    assert "is below that" not in text  # the all-image share, the one judged, is above
    # the claim judges the same share the sentence calls above: contradicted, as the sentence's side says
    claim = raat_ducat.shared_errors("09", shares, 40, "PGD-20")
    assert claim.ours == 50.0 and claim.verdict == claims.CONTRADICTED
    both = raat_ducat.wrong_under_all_sentence(shares, 20, "PGD-20")
    assert "ours, 50.0%, is above that" in both and "ours is 28.6%, above that." in both
    assert "The pattern DUCAT's motivation rests on is the comparison with independent errors above" in text
    other_data = raat_ducat.wrong_under_all_sentence(shares, 40, "PGD-20", judged=False)
    assert "no claim judges it on these images" in other_data and "the claim below" not in other_data


def test_the_shared_errors_sentence_weighs_our_models_natural_accuracy_against_full_budget_ones():
    shares = _split_shares()
    weak = raat_ducat.wrong_under_all_sentence(shares, 40, "PGD-20", {"X": 83.0, "Y": 79.5}, "the 2 in Table 1")
    assert "natural accuracy on these images is 70.0% to 70.0%, against 79.5% to 83.0% for the 2 in Table 1" in weak
    assert "models weaker than those full-budget ones get more images wrong even clean" in weak
    assert "depends on our models' strength" in weak
    strong = raat_ducat.wrong_under_all_sentence(shares, 40, "PGD-20", {"X": 60.0}, "a weaker table")
    assert "weaker than those full-budget ones" not in strong and "the weaker the models, the larger it is" in strong
    plain = raat_ducat.wrong_under_all_sentence(shares, 40, "PGD-20")
    assert "natural accuracy on these images is 70.0% to 70.0%." in plain
    assert "against" not in plain.split("natural accuracy")[-1]  # no full-budget range to set beside it
    # without clean results there is no natural accuracy to give and no clean split
    bare = raat_ducat.wrong_under_all_sentence(raat_ducat.wrong_shares({"a": "0" * 50 + "1" * 50}), 40, "PGD-20")
    assert "natural accuracy" not in bare and "ours, 50.0%, is above that" in bare and "points of it" not in bare


def test_small_shares_are_printed_readably():
    assert raat_ducat.share_text(5.9e-5) == "less than 0.01%" and raat_ducat.share_text(0.0) == "less than 0.01%"
    assert raat_ducat.share_text(0.01) == "0.01%" and raat_ducat.share_text(0.456) == "0.46%"
    assert raat_ducat.share_text(57.2) == "57.2%" and raat_ducat.share_text(7.25) == "7.2%"
    # six models each fooled on the same 10 of 200 images: independent errors would give 100 * 0.05 ** 6 percent
    masks = {m: "0" * 10 + "1" * 190 for m in "abcdef"}
    shares = raat_ducat.wrong_shares(masks, {m: "1" * 200 for m in masks})
    text = raat_ducat.wrong_under_all_sentence(shares, 40, "PGD-20")
    assert "against less than 0.01% if the models erred independently" in text
    assert "e-0" not in text and "e-1" not in text  # no scientific notation anywhere
    bare = raat_ducat.wrong_under_all_sentence(raat_ducat.wrong_shares(masks), 40, "PGD-20")
    assert "against less than 0.01% if the models erred independently" in bare


def test_the_least_fooled_model_is_named_and_its_share_is_the_one_on_the_images_every_model_gets_right_clean():
    # "b" misclassifies 20 more images clean: over all 100 images "a" is wrong on 60, "b" on 70 ("a" the
    # least-fooled); on the 60 images both get right clean "a" is fooled on 40, "b" on 30, every one of them shared
    clean = {"a": "0" * 20 + "1" * 80, "b": "0" * 40 + "1" * 60}
    attacked = {"a": "0" * 20 + "1" * 20 + "0" * 40 + "1" * 20, "b": "0" * 70 + "1" * 30}
    shares = raat_ducat.wrong_shares(attacked, clean)
    assert shares["per_model"] == {"a": 60.0, "b": 70.0} and shares["core"]["n"] == 60
    assert shares["core"]["per_model"]["b"] == 50.0 and shares["core"]["all"] == 50.0
    text = raat_ducat.wrong_under_all_sentence(shares, 40, "PGD-20")
    assert "at most 50.0%, the share of b, the least-fooled model on those images" in text
    assert "of b's errors on those images are errors of every model" in text
    assert "100% of b's errors" in text


# ---------------------------------------------------------------------------- RAAT against Cons-AT
def _claim(text, ours, verdict, paper=0.27):
    return claims.Claim("09_raat_ducat", "RAAT Table 1", text, "m", paper, ours, "n", verdict)


ABOVE_CONS_AT = "RAAT's natural accuracy above Cons-AT's"  # how `baselines.suite_pair` names the stated claim


def test_the_reading_speaks_of_a_claim_that_raat_lies_above_cons_at():
    off = _claim(ABOVE_CONS_AT, -1.68, claims.CONTRADICTED)
    text = raat_ducat.raat_reading([off], 1.4)
    assert text.startswith("**Our reading.** RAAT's text (Sec. 5.1) puts its natural accuracy above Cons-AT's")
    assert "(+0.3 points in its Table 1); here it lies 1.7 points below" in text and "level" not in text
    assert "These runs do not separate the two; a RAAT run without the reduced perturbation would." in text
    # within noise but on the claim's side, or reproduced: no shortfall to read
    assert raat_ducat.raat_reading([_claim(ABOVE_CONS_AT, 0.5, claims.WITHIN_NOISE)], 1.4) == ""
    assert raat_ducat.raat_reading([_claim(ABOVE_CONS_AT, 2.0, claims.REPRODUCED)], 1.4) == ""
    # the AutoAttack claim against Cons-AT is not the one read
    assert raat_ducat.raat_reading([_claim("RAAT's AutoAttack accuracy above Cons-AT's", -3.0,
                                           claims.CONTRADICTED)], 1.4) == ""


def _run(nat):
    ev = {"accuracy": 100 * nat.count("1") / len(nat), "total": len(nat), "bits": nat}
    return {"wall_seconds": 100.0, "student": {"last": {"test": {"attacks": {"natural": ev}}}}}


def test_the_reading_points_to_its_run_once_that_run_is_there():
    found = [_claim(ABOVE_CONS_AT, -3.0, claims.CONTRADICTED)]
    bits = lambda k: "1" * k + "0" * (1000 - k)
    raat, cons = _run(bits(500)), _run(bits(530))
    tested = raat_ducat.raat_reading_tested(found, _run(bits(500)), raat, cons, 0.2)
    assert [t.claim for t in tested] == [ABOVE_CONS_AT] and tested[0].verdict == budget.SUPPORTED
    assert tested[0].resolves is False  # DICAR named; why the paper's RAAT, with DICAR too, lies above: not said
    text = raat_ducat.raat_reading(found, 1.4, tested)
    assert "The run below, RAAT without the reduced perturbation, separates the two." in text
    assert "would." not in text and "do not separate" not in text
    waiting = raat_ducat.raat_reading_tested(found, None, raat, cons, 0.2)
    assert waiting[0].verdict == budget.NOT_TRAINED_YET and "`readings` stage" in waiting[0].evidence
    assert "a RAAT run without the reduced perturbation would." in raat_ducat.raat_reading(found, 1.4, waiting)
    # removing the reduced perturbation raises RAAT beyond noise, though it stays below Cons-AT: the perturbation held
    # it down, whatever Cons-AT says
    low, high = _run(bits(400)), _run(bits(470))
    raised = raat_ducat.raat_reading_tested(found, high, low, _run(bits(530)), 0.2)
    assert raised[0].verdict == budget.NOT_SUPPORTED
    # a claim on the claim's side needs no test either
    assert raat_ducat.raat_reading_tested([_claim(ABOVE_CONS_AT, 1.0, claims.WITHIN_NOISE)], None, raat, cons, 0.2) == []


# ------------------------------------------------------------------------------------------ DUCAT's rank
def test_ducat_above_none_of_the_others_is_said_in_words():
    acc = lambda v: {"accuracy": v}
    last = {"test": {"attacks": {"natural": acc(50.0), "pgd20": acc(18.0), "pgd20_raw_head": acc(20.0),
                                 "pgd20_worst_case": acc(17.0)}}, "protocol_gap": {"pgd20_raw_head": 2.0}}
    suite = {"n": 1000, "attacks": {"natural": acc(52.0), "pgd20": acc(17.5), "aa": acc(11.5)}}
    text = raat_ducat.ducat_sentence(last, "pgd20", {"A": 31.0, "B": 27.0}, suite, {"A": 25.0, "B": 22.0})
    assert "DUCAT is above none of the 2 other methods" in text and "it is above none of them" in text
    assert "already above none of the 2, so the adaptive attack" in text and "only 0" not in text
    assert "0 of" not in text
    one = raat_ducat.ducat_sentence(last, "pgd20", {"A": 31.0, "B": 27.0, "C": 19.0}, suite,
                                    {"A": 25.0, "B": 22.0, "C": 20.0})
    assert "above 1 of the 3 other methods" in one and "already above only 1 of the 3" in one


def test_raats_best_performance_claim_sets_the_better_of_its_two_against_the_best_benchmark():
    n = 1000
    ev = lambda k: {"attacks": {"aa": {"accuracy": 100 * k / n, "total": n, "bits": "1" * k + "0" * (n - k)}}}
    evals = {"PGD-AT": ev(200), "TRADES": ev(260), "MART": ev(250), "Cons-AT": ev(240), "RAAT": ev(230),
             "RAAT++": ev(300)}
    paper = {"PGD-AT": {"aa": 46.74}, "TRADES": {"aa": 47.62}, "MART": {"aa": 46.70}, "Cons-AT": {"aa": 47.72},
             "RAAT": {"aa": 47.94}, "RAAT++": {"aa": 47.50}}
    c = raat_ducat.best_of_ours("09", "RAAT Table 1", "aa", "AutoAttack", evals, paper, None, "cifar10_resnet18")
    assert c.claim == "The better of RAAT and RAAT++ above the best of the four benchmarks in AutoAttack accuracy"
    assert c.noise.startswith("ours RAAT++ against TRADES; ")  # ours: RAAT++ is the better, TRADES the best benchmark
    assert c.paper == pytest.approx(47.94 - 47.72) and c.ours == pytest.approx(4.0)
    assert c.verdict == claims.REPRODUCED and "raat.cifar10_resnet18.Cons-AT" in c.rests_on


def test_the_best_of_claim_is_read_as_dicars_and_tested_against_the_best_benchmark_on_validation():
    bits = lambda k: "1" * k + "0" * (1000 - k)
    val = lambda run, v: {**run, "student": {**run["student"], "history": [{"val_natural": v}]}}
    found = [_claim(raat_ducat.BEST_OF, -2.8, claims.CONTRADICTED)]
    # TRADES is best on the test images, Cons-AT on validation: validation picks the row the test then reads
    bench = {"PGD-AT": val(_run(bits(520)), 50.0), "TRADES": val(_run(bits(560)), 51.0),
             "MART": val(_run(bits(470)), 47.0), "Cons-AT": val(_run(bits(550)), 52.0)}
    ours = {"RAAT": _run(bits(530)), "RAAT++": _run(bits(510))}
    [still] = raat_ducat.best_of_reading_tested(found, _run(bits(520)), ours, bench, 0.2)
    assert still.verdict == budget.SUPPORTED and still.budget is False and still.resolves is False
    assert "3.0 points below Cons-AT's, the best benchmark on validation" in still.shows
    assert still.evidence.startswith("against Cons-AT")
    [risen] = raat_ducat.best_of_reading_tested(found, _run(bits(600)), ours, bench, 0.2)
    assert risen.verdict == budget.NOT_SUPPORTED
    # removing the reduced perturbation raises RAAT beyond noise though it stays below the benchmark: not supported,
    # as chapter 09's other reading of the same run says
    low = {"RAAT": _run(bits(400)), "RAAT++": _run(bits(390))}
    [raised] = raat_ducat.best_of_reading_tested(found, _run(bits(470)), low, bench, 0.2)
    assert raised.verdict == budget.NOT_SUPPORTED
    [wait] = raat_ducat.best_of_reading_tested(found, None, ours, bench, 0.2)
    assert wait.verdict == budget.NOT_TRAINED_YET
    plus = {"RAAT": _run(bits(500)), "RAAT++": _run(bits(530))}  # RAAT++ the better: the run does not test it
    [other] = raat_ducat.best_of_reading_tested(found, _run(bits(520)), plus, bench, 0.2)
    assert other.verdict == budget.NOT_TESTED and "RAAT++ is the better" in other.evidence
    assert raat_ducat.best_of_reading_tested([_claim(raat_ducat.BEST_OF, 1.0, claims.REPRODUCED)], None, ours, bench,
                                             0.2) == []


def test_a_larger_shared_error_share_is_read_as_the_models_weakness_only_where_they_err_more_than_the_papers():
    c = claims.Claim("09_raat_ducat", "DUCAT", "Up to 40% ...", "share", 40.0, 57.2, "n", claims.CONTRADICTED)
    ours = {"A": 72.0, "B": 76.0}
    [r] = raat_ducat.share_reading(c, ours, "PGD-20", {"A": 50.0, "B": 48.0}, "the 2 models at 4x", "3 h")
    assert r.verdict == budget.NOT_TESTED and "3 h" in r.evidence
    assert "our 2 models get 74% of the adversarial examples wrong on average (each under its own PGD-20), where the " \
           "2 models of RAAT's Table 1 get 51% wrong under AutoAttack" in r.text
    assert raat_ducat.share_reading(c, {"A": 40.0}, "PGD-20", {"A": 50.0}, "r", "3 h") == []  # ours err less
    below = claims.Claim("09_raat_ducat", "DUCAT", "Up to 40% ...", "share", 40.0, 20.0, "n", claims.CONTRADICTED)
    assert raat_ducat.share_reading(below, ours, "PGD-20", {"A": 50.0}, "r", "3 h") == []  # not the larger share

"""Table 4 and the RAAT / DUCAT chapter: rank correlations, protocol distances, rows with their flags, the
papers' tables, shared errors and the cached per-image correctness."""

import json
import os

import pytest
import torch

from cktat_core import checkpoint as ckpt
from cktat_book import baselines, book_runs, budget, claims, raat_ducat, report
from cktat_core.data import load_test
from cktat_core.eval_checkpoint import evaluate_checkpoint, per_image_correct
from cktat_core.errors import CheckpointError


# ------------------------------------------------------------------------------------- rank correlation
def test_rank_agreement_p_separates_agreement_from_chance():
    a = list(range(9))
    agree = lambda b: baselines.rank_agreement({m: {"c": x} for m, x in zip("abcdefghi", a)},
                                              {m: {"c": x} for m, x in zip("abcdefghi", b)}, ["c"])["c"]
    assert agree([x * 2 for x in a])["p"] < 0.001
    reversed_ = agree(a[::-1])  # two-sided: a reversed order is beyond chance too, and is no agreement
    assert reversed_["rho"] == pytest.approx(-1.0) and reversed_["p"] < 0.001
    text = baselines.rank_sentence({"c": reversed_}, {"c": "C"})
    assert "No column orders the methods as the paper does" in text and "other way round beyond chance" in text
    leaning = agree([4, 8, 0, 6, 2, 7, 1, 5, 3])  # a weakly negative correlation
    assert leaning["rho"] < 0 and leaning["p"] >= 0.05
    text = baselines.rank_sentence({"c": leaning}, {"c": "C"})
    assert "C leans the other way (a negative correlation), within chance" in text and "beyond chance;" not in text


def test_rank_agreement_uses_the_methods_both_tables_have():
    ours = {"A": {"aa": 1.0}, "B": {"aa": 2.0}, "C": {"aa": 3.0}, "D": {"aa": 0.0}}
    paper = {"A": {"aa": 10.0}, "B": {"aa": 20.0}, "C": {"aa": 30.0}, "E": {"aa": 5.0}}
    agree = baselines.rank_agreement(ours, paper, ["aa"])["aa"]
    assert agree["n"] == 3 and agree["rho"] == pytest.approx(1.0)
    text = baselines.rank_sentence({"aa": agree}, {"aa": "AA"})
    assert "AA +1.00" in text and "3 methods" in text


# ------------------------------------------------------------------------------------------ protocols
PAPER = {"A": {"natural": 80, "pgd20": 50, "pgd100": 48, "mim": 52, "cw": 49, "aa": 45},
         "B": {"natural": 85, "pgd20": 45, "pgd100": 44, "mim": 46, "cw": 44, "aa": 41}}
ATTACKS = ["pgd20", "pgd100", "mim", "cw"]


def test_relative_positions_are_scale_free():
    row = PAPER["A"]
    pos = baselines.relative_positions(row, ATTACKS)
    assert pos["pgd20"] == pytest.approx(5 / 35) and pos["mim"] == pytest.approx(7 / 35)
    # the same profile at other accuracy levels (another dataset) has the same positions
    scaled = {k: 10 + v / 2 for k, v in row.items()}
    assert baselines.relative_positions(scaled, ATTACKS) == pytest.approx(pos)


def test_the_protocol_whose_attacks_sit_like_the_papers_is_the_closest():
    # "alike": the same relative positions at other levels; "other": PGD far weaker relative to AutoAttack
    alike = {m: {k: 10 + v / 2 for k, v in r.items()} for m, r in PAPER.items()}
    other = {m: {**r, "pgd20": r["natural"] - 1, "pgd100": r["natural"] - 1} for m, r in PAPER.items()}
    cols = ["natural"] + ATTACKS + ["aa"]
    dist = {"standard": baselines.protocol_distance(alike, PAPER, cols, ATTACKS),
            "compat-generalist": baselines.protocol_distance(other, PAPER, cols, ATTACKS)}
    assert dist["standard"]["profile"] == pytest.approx(0.0) and dist["standard"]["n"] == 2
    assert dist["compat-generalist"]["profile"] > 0.3
    assert dist["compat-generalist"]["levels"] < dist["standard"]["levels"]  # the levels say the opposite
    assert baselines.closest_protocol(dist) == "standard"
    assert baselines.closest_protocol(dist, "levels") == "compat-generalist"
    same = {"standard": dist["standard"], "compat-generalist": dist["standard"]}
    assert baselines.closest_protocol(same) is None
    assert baselines.closest_protocol(dist, tolerance=1.0) is None  # a difference within the noise decides nothing
    # the noise of the relative positions shrinks with the images and grows as natural and AA accuracy close in
    res = baselines.profile_resolution(PAPER, ATTACKS, 500)
    assert 0 < res < baselines.profile_resolution(PAPER, ATTACKS, 100)
    narrow = {m: {**r, "natural": r["aa"] + 2} for m, r in PAPER.items()}
    assert baselines.profile_resolution(narrow, ATTACKS, 500) > res
    assert "neither protocol" in baselines.protocol_sentence(same, same_data=False)
    text = baselines.protocol_sentence(dist, same_data=True)
    assert "most like the standard protocol" in text and "disagrees with the profile" in text


# ----------------------------------------------------------------------------------------- rows
def _evaluation(protocol, accs, checks, flags=(), aa=None):
    attacks = {k: {"accuracy": v} for k, v in accs.items()}
    metrics = {"nrr_aa": None if aa is None else 2 * accs["natural"] * aa / (accs["natural"] + aa),
               "clean_aa_mean": None if aa is None else (accs["natural"] + aa) / 2}
    if aa is not None:
        attacks["aa"] = {"accuracy": aa}
    return {"protocol": protocol, "n": 200, "attacks": attacks, "metrics": metrics, "checks": checks,
            "flags": [{"check": f} for f in flags]}


def test_table4_row_takes_autoattack_from_the_standard_evaluation_and_shows_flags():
    std = _evaluation("standard", {"natural": 80.0, "pgd20": 50.0, "pgd100": 49.0, "mim": 51.0, "cw": 48.0},
                      {"robust_le_clean": "passed", "pgd100_le_pgd20": "flagged", "eps": "not run: no sweep"},
                      flags=["pgd100_le_pgd20"], aa=40.0)
    compat = _evaluation("compat-generalist", {"natural": 80.0, "pgd20": 60.0, "pgd100": 60.0, "mim": 61.0,
                                               "cw": 58.0}, {"robust_le_clean": "passed", "aa": "not run: no aa"})
    s, c = report.table4_row("X", std), report.table4_row("X", compat, std)
    assert s["aa"] == c["aa"] == 40.0 and c["pgd20"] == 60.0 and c["protocol"] == "compat-generalist"
    assert s["nrr"] == pytest.approx(2 * 80 * 40 / 120) == c["nrr"]
    assert s["clean/AA mean"] == 60.0 == c["clean/AA mean"]
    assert s["flags"] == "pgd100_le_pgd20" and c["flags"] == "none"
    assert s["checks passed"] == "1 of 2" and c["checks passed"] == "1 of 1"  # "not run" is not counted
    assert report.flags_of(std, compat) == ["standard: pgd100_le_pgd20"]


def test_selection_reports_the_last_and_the_best_epoch():
    ev = lambda nat, rob: {"test": {"attacks": {"natural": {"accuracy": nat}, "pgd20": {"accuracy": rob}}}}
    res = {"student": {"history": [{}, {}, {}], "last": ev(80, 40), "best": {"epoch": 2, **ev(82, 45)}}}
    assert report.selection(res, "pgd20") == {"last epoch": 3, "best epoch": 2, "best natural": 82,
                                              "best pgd20": 45, "last natural": 80, "last pgd20": 40}


def test_the_papers_tables_under_our_labels():
    c10, which = baselines.paper_table4("multiview")
    assert which == "CIFAR-10" and set(c10) == {r.label for r in baselines.TABLE4}
    raw = report.paper_numbers()["cktat"]
    assert c10["CKTAT (beta=6)"]["aa"] == raw["table4_cifar10"]["CKTAT_beta6"][5]
    assert c10["PGDAT"]["pgd20"] == raw["table4_cifar10"]["PGDAT"][1]
    c100, which = baselines.paper_table4("cifar100")
    assert which == "CIFAR-100" and c100["HAT"]["natural"] == raw["table4_cifar100"]["HAT"][0]
    assert report.paper_numbers()["ducat"]["wrong_under_every_model_cifar10"] > 0


def test_evaluation_limits():
    assert baselines.evaluation_limit("smoke", {}) == 200  # chapters 04, 08 and 09 share one count
    assert baselines.evaluation_limit("cpu", {}) == 1000  # on real images 200 would leave a 3-point binomial error
    assert baselines.evaluation_limit("paper", {}) == 0
    assert baselines.evaluation_limit("smoke", {"test_limit": 64}) == 64
    assert baselines.evaluation_limit("smoke", {"test_limit": 64}, 10) == 10
    assert baselines.aa_version("smoke") == "apgd" and baselines.aa_version("paper") == "standard"
    assert baselines.aa_version("cpu") == "apgd"  # the budget of the real-image book
    assert baselines.aa_version("smoke", "standard") == "standard"


# ---------------------------------------------------------------------------- errors every model makes
def test_wrong_shares_on_a_known_case():
    shares = raat_ducat.wrong_shares({"a": "0011", "b": "0101", "c": "0001"})
    assert shares["per_model"] == {"a": 50.0, "b": 50.0, "c": 75.0}
    assert shares["all"] == 25.0 and shares["any"] == 75.0 and shares["n"] == 4
    assert shares["independent"] == pytest.approx(100 * 0.5 * 0.5 * 0.75)
    with pytest.raises(ValueError):
        raat_ducat.wrong_shares({"a": "01", "b": "011"})


def test_shared_errors_beyond_chance():
    n = 400
    same = raat_ducat.wrong_shares({"a": "0" * 100 + "1" * 300, "b": "0" * 100 + "1" * 300})
    assert raat_ducat.shared_beyond_chance(same)  # 25% wrong under both, 6.25% if independent
    apart = raat_ducat.wrong_shares({"a": "01" * (n // 2), "b": "0011" * (n // 4)})
    assert apart["all"] == pytest.approx(apart["independent"]) and not raat_ducat.shared_beyond_chance(apart)
    text = raat_ducat.wrong_under_all_sentence(same, 40, "PGD-20")
    assert "25.0% are wrong under all 2" in text and "below that" in text and "beyond chance" in text



def test_errors_every_model_makes_clean_are_not_counted_as_the_attacks():
    """Two models that share their clean errors (the first 200 images) and are fooled independently elsewhere: the
    whole-set share looks beyond chance, the share among images both get right clean does not."""
    from cktat_book import claims

    clean = {"a": "0" * 200 + "1" * 200, "b": "0" * 200 + "1" * 200}
    attacked = {"a": "0" * 200 + "01" * 100, "b": "0" * 200 + "0011" * 50}
    shares = raat_ducat.wrong_shares(attacked, clean)
    assert raat_ducat.shared_beyond_chance(shares)  # 62.5% against 56.25%: the clean errors
    assert shares["clean_all"] == 50.0 and shares["core"]["n"] == 200
    assert shares["core"]["all"] == pytest.approx(shares["core"]["independent"])
    assert not raat_ducat.shared_beyond_chance(shares["core"])
    text = raat_ducat.wrong_under_all_sentence(shares, 40, "PGD-20")
    assert "50.0% of the test images are wrong for every model even without an attack" in text
    assert "On the 200 images every model classifies correctly clean" in text and "not more shared" in text
    # DUCAT's claim is its number: up to 40% of the adversarial examples wrong for every model. Here 62.5% of the 400
    # images are, with a Wilson interval that excludes 40: contradicted; 60 lies inside it
    claim = raat_ducat.shared_errors("09", shares, 40, "PGD-20")
    assert claim.ours == 62.5 and claim.paper == 40 and claim.verdict == claims.CONTRADICTED
    assert "400 images" in claim.noise and claim.rests_on == ("ducat.wrong_under_every_model_cifar10",)
    assert raat_ducat.shared_errors("09", shares, 60, "PGD-20").verdict == claims.REPRODUCED
    with pytest.raises(ValueError):
        raat_ducat.wrong_shares(attacked, {"a": clean["a"]})


# ------------------------------------------------------------------------------------- per-image masks
def test_per_image_correct_matches_the_evaluation_and_is_cached(trained_cnn, tmp_path, monkeypatch):
    model, _ = trained_cnn
    path = str(tmp_path / "m.pt")
    ckpt.save_atomic(ckpt.model_checkpoint(model, "small_cnn", 10, {"dataset": "multiview", "width": 0},
                                           classes=10, method="pgdat"), path)
    out = str(tmp_path / "eval" / "m_natural_mask.json")
    nat = per_image_correct(path, "natural", limit=64, out=out)
    test, _ = load_test("multiview", limit=64)
    with torch.no_grad():
        expected = (model.eval()(test.x).argmax(1) == test.y).tolist()
    assert nat["bits"] == "".join("1" if v else "0" for v in expected) and nat["n"] == 64
    assert json.load(open(out))["bits"] == nat["bits"]
    # under PGD the count agrees with the evaluation of the same checkpoint (adversarial accuracy)
    adv = per_image_correct(path, "pgd20", limit=64)
    ev = evaluate_checkpoint(path, "natural,pgd20", limit=64, progress=False)
    assert adv["bits"].count("1") / 64 * 100 == pytest.approx(ev["attacks"]["pgd20"]["adversarial_accuracy"])
    assert adv["bits"].count("1") <= nat["bits"].count("1")
    # cached: the same request reads the file back without computing
    monkeypatch.setattr("cktat_core.eval_checkpoint.correct_mask", lambda *a, **k: pytest.fail("recomputed"))
    assert per_image_correct(path, "natural", limit=64, out=out)["bits"] == nat["bits"]
    os.utime(path)  # the checkpoint changed: computed again
    with pytest.raises(pytest.fail.Exception):
        per_image_correct(path, "natural", limit=64, out=out)
    # a clone: the committed result, the checkpoint not there (and the folder elsewhere): read back as saved
    monkeypatch.undo()
    per_image_correct(path, "natural", limit=64, out=out)
    moved = str(tmp_path / "clone" / "m.pt")
    assert per_image_correct(moved, "natural", limit=64, out=out)["bits"] == nat["bits"]
    with pytest.raises(CheckpointError):  # another request still needs the weights
        per_image_correct(moved, "natural", limit=32, out=out)


def test_a_rounded_input_is_flagged_and_cached_apart_from_the_plain_evaluation(trained_cnn, tmp_path):
    """`round_input` evaluates the checkpoint behind 8-bit rounding (chapter 04's gradient-masked model): the
    gradient check flags it, PGD is blind, and its saved result is not the plain one's."""
    model, _ = trained_cnn
    path = str(tmp_path / "m.pt")
    ckpt.save_atomic(ckpt.model_checkpoint(model, "small_cnn", 10, {"dataset": "multiview", "width": 0},
                                           classes=10, method="pgdat"), path)
    out = str(tmp_path / "eval" / "m.json")
    plain = evaluate_checkpoint(path, "natural,pgd20", limit=64, progress=False, out=out, reuse=True)
    rounded = evaluate_checkpoint(path, "natural,pgd20", limit=64, progress=False, out=out, reuse=True,
                                  round_input=True)
    assert rounded["request"]["round_input"] is True and "round_input" not in plain["request"]
    assert plain["checks"]["nonzero_gradients"] != "flagged"
    assert rounded["checks"]["nonzero_gradients"] == "flagged"
    assert rounded["attacks"]["pgd20"]["accuracy"] > plain["attacks"]["pgd20"]["accuracy"]
    assert evaluate_checkpoint(path, "natural,pgd20", limit=64, progress=False, out=out, reuse=True,
                               round_input=True)["request"] == rounded["request"]


def test_ducat_sentence_reads_the_gap_and_the_adaptive_autoattack():
    acc = lambda v: {"accuracy": v}
    last = {"test": {"attacks": {"natural": acc(90.0), "pgd20": acc(50.0), "pgd20_raw_head": acc(70.0),
                                 "pgd20_worst_case": acc(45.0)}}, "protocol_gap": {"pgd20_raw_head": 20.0}}
    text = raat_ducat.ducat_sentence(last, "pgd20", {"A": 60.0, "B": 40.0})
    assert "keeps 70.0%" in text and "20.0 points more than the adaptive attack" in text
    assert "above 2 of the 2 other methods" in text and "it is above 1 of them" in text
    suite = {"n": 500, "attacks": {"natural": acc(91.0), "pgd20": acc(52.0), "aa": acc(30.0)}}
    broken = raat_ducat.ducat_sentence(last, "pgd20", {"A": 60.0}, suite, {"A": 55.0, "B": 50.0})
    assert "below the AutoAttack accuracy of 2 of the 2" in broken and "does not survive" in broken
    held = raat_ducat.ducat_sentence(last, "pgd20", {"A": 60.0}, suite, {"A": 30.5, "B": 20.0})
    assert "of none of the 2" in held and "holds up" in held
    # 30 against 36 on 500 images is beyond sampling noise, not beyond a run-to-run spread of 3 points as well
    near = raat_ducat.ducat_sentence(last, "pgd20", {"A": 60.0}, suite, {"A": 36.0, "B": 20.0})
    assert "of 1 of the 2" in near
    assert "of none of the 2" in raat_ducat.ducat_sentence(last, "pgd20", {"A": 60.0}, suite, {"A": 36.0, "B": 20.0},
                                                           3.0)
    same = {**last, "protocol_gap": {"pgd20_raw_head": 0.0}}
    assert "both protocols report the same accuracy" in raat_ducat.ducat_sentence(same, "pgd20", {"A": 1.0})
    # below most methods already under the authors' protocol: the adaptive attack is not what puts it there
    weak = raat_ducat.ducat_sentence(last, "pgd20", {"A": 80.0, "B": 75.0}, suite, {"A": 55.0, "B": 50.0})
    assert "already above none of the 2" in weak and "costs 20.0 points on top" in weak
    assert "does not survive" not in weak


def test_ducat_phase_sentence_reads_the_dummy_class_epochs():
    from cktat_core.config import Config

    cfg = Config(epochs=14)  # dummy classes from round(105 / 130 * 14) = 11 epochs on
    history = [{"epoch": e, "lr": 0.2 * (14 - e) / 13, "val_pgd10": 20.0 + e} for e in range(1, 15)]
    text = raat_ducat.ducat_phase_sentence(cfg, history, "val_pgd10")
    assert "as PGD-AT for 11 epochs and with its dummy classes from epoch 12 of 14" in text
    assert "over those 3 epochs" in text and "31.0% before them and 34.0% after the last" in text
    assert "trained as PGD-AT throughout" in raat_ducat.ducat_phase_sentence(cfg, history[:5], "val_pgd10")


def test_the_warm_start_sentence_weighs_the_two_groups_against_the_spread_between_methods():
    rows = {"A": {"natural": 60.0}, "B": {"natural": 50.0}, "C": {"natural": 55.0},
            "D": {"natural": 52.0}, "E": {"natural": 59.0}, "F": {"natural": 50.5}}
    warm = {"A": True, "B": True, "C": True, "D": False, "E": False, "F": False}
    text = baselines.warm_start_sentence(rows, warm, 14)
    assert "mean natural accuracy of 55.0%, the others (D 52.0, E 59.0, F 50.5) 53.8%" in text
    assert "within the spread between methods" in text and "cannot show whether starting" in text
    assert text.endswith("Chapter 02's controls, PGD-AT and TRADES started from the same clean teacher, test the start "
                         "itself, method by method.")
    apart = {m: {"natural": 80.0 + i if warm[m] else 40.0 + i} for i, m in enumerate(rows)}
    assert "above beyond the spread between methods" in baselines.warm_start_sentence(apart, warm, 14)
    few = baselines.warm_start_sentence(rows, {**warm, "B": False, "C": False}, 14)
    assert "too few" in few and few.endswith("test the start itself, method by method.")


# ------------------------------------------------------------------------------------- chapter 08's sentences
def test_the_protocol_sentence_puts_the_unit_after_each_level():
    dist = {"standard": {"profile": 0.06, "levels": 28.76}, "compat-generalist": {"profile": 0.06, "levels": 28.31}}
    text = baselines.protocol_sentence(dist, same_data=True, resolution=0.02, level_noise=0.5)
    assert ("by a mean of 28.8 points under the standard protocol and 28.3 points under the compat-generalist "
            "protocol") in text
    assert "compat-generalist points" not in text
    other = baselines.protocol_sentence(dist, same_data=False, resolution=0.02)
    assert "differ by a mean of 28.8 points under the standard protocol" in other and "protocol points" not in other


def _own(total):
    return {"student": {"last": {"test": {"attacks": {"natural": {"total": total}}}}}}


def test_the_runs_own_evaluation_names_its_images_and_the_suites():
    text = baselines.own_evaluation_sentence({"A": _own(5000), "B": _own(5000)}, 1000)
    assert "on all 5,000 test images of each run; the attack suite above uses the first 1,000 of them only" in text
    same = baselines.own_evaluation_sentence({"A": _own(200)}, 200)
    assert "on the same 200 test images as the attack suite above" in same and "first" not in same


def _table4_claims():
    from cktat_book.claims import Claim

    keys = {m: f"cktat.table4_cifar10.{m}" for m in ("PGDAT", "TRADES", "MART", "LBGAT", "LTD", "HAT", "Generalist",
                                                   "CKTAT_beta0", "CKTAT_beta6")}
    lead, all_but = keys["CKTAT_beta6"], lambda *out: tuple(k for m, k in keys.items() if m not in out)
    robust = Claim("08_baselines", "Table 4", "C6 has the highest AA (APGD-CE, APGD-T) accuracy of the 8 methods", "m",
                   1.31, -6.2, "n", "contradicted", rests_on=(lead,) + all_but("CKTAT_beta6", "CKTAT_beta0"))
    natural = Claim("08_baselines", "Table 4", "C6 has the highest natural accuracy of the 6 methods", "m", 0.33,
                    -6.6, "n", "contradicted",
                    rests_on=(lead,) + all_but("CKTAT_beta6", "CKTAT_beta0", "Generalist", "PGDAT"))
    below = Claim("08_baselines", "Table 4", "C6's natural accuracy below Generalist's", "m", -4.65, 5.0, "n",
                  "contradicted", rests_on=(lead, keys["Generalist"]))
    return robust, natural, below, {k: m for m, k in keys.items()}


def test_the_paper_noise_sentence_names_the_statements_its_numbers_show_only_within_their_noise():
    """Table 4a: CKTAT (beta = 6) leads LTD in AutoAttack by 1.31 points and TRADES, MART, HAT in natural accuracy by
    1.05, 0.33, 0.91, each within the noise of two accuracies on 10,000 images; Generalist's natural lead (4.65) lies
    beyond it. A comparison in another column (MART's PGD, 1.37) is not the AutoAttack claim's."""
    robust, natural, below, names = _table4_claims()
    text = baselines.paper_noise_sentence([robust, natural, below], names)
    assert text.startswith("The scorecard's audit reads these statements against the paper's own numbers (the "
                           "paper's difference in points). 2 of the 3 show only within their noise: ")
    assert "\u201cC6 has the highest AA (APGD-CE, APGD-T) accuracy of the 8 methods\u201d against LTD (+1.31);" in text
    assert "against TRADES (+1.05), MART (+0.33) and HAT (+0.91)" in text
    assert "MART (+1.37)" not in text and "PGDAT" not in text
    assert "show the other beyond their noise: \u201cC6's natural accuracy below Generalist's\u201d" in text
    assert "each of these 2 statements beyond their noise" in baselines.paper_noise_sentence([below, below], names)
    assert baselines.paper_noise_sentence([]) == ""


def _timed(seconds, epochs=16, steps=2):
    return {"wall_seconds": seconds, "config": {"epochs": epochs, "attack_steps": steps}}


def test_a_readings_run_no_stage_trains_is_priced_against_what_the_budget_has_left():
    # an epoch costs the attack's steps and one update: PGD-10 over PGD-2 is 11/3 the seconds, 4x the epochs 4x
    assert baselines.scaled_seconds(_timed(300.0), 64) == pytest.approx(1200.0)
    assert baselines.scaled_seconds(_timed(300.0), attack_steps=10) == pytest.approx(1100.0)
    rungs = {"2x epochs": {"epochs": 32}, "paper-profile attack": {"attack_steps": 10}}
    base = {"pgdat": _timed(300.0), "cktat": _timed(600.0)}
    finished = {"2x epochs": {"pgdat": _timed(700.0, 32), "cktat": None},
                "paper-profile attack": {"pgdat": None, "cktat": None}}
    plan = baselines.readings_plan(base, rungs, finished, [_timed(1800.0)])
    assert plan["ladder_recorded"] == pytest.approx(700.0)
    assert plan["ladder_estimated"] == pytest.approx(1200.0 + 1100.0 + 2200.0)
    assert plan["budget"] == pytest.approx(budget.LADDER_BUDGET_HOURS * 3600)
    left = plan["budget"] - 700.0 - 4500.0 - 1800.0
    short = baselines.beyond_budget(left + 3600.0, "the rows", plan)
    assert short.endswith(": not enough") and "the readings' run (30.0 min) are paid" in short
    assert f"has {left / 3600:.1f} h left" in short and "4500" not in short and "75.0 min of it estimated" in short
    assert short.startswith(f"{(left + 3600.0) / 3600:.1f} h of this machine (the rows), and the "
                            f"{budget.LADDER_BUDGET_HOURS:.1f} h budget of the ladder and the readings' runs")
    assert baselines.beyond_budget(60.0, "the rows", plan).endswith("enough, but no stage of the build trains them")
    spent = {**plan, "ladder_recorded": plan["budget"]}
    assert "has nothing left once" in baselines.beyond_budget(60.0, "the rows", spent)
    guessed = baselines.readings_plan(base, rungs, finished, [_timed(1800.0)], readings_estimated=1200.0)
    assert "the readings' runs (50.0 min, 20.0 min of it estimated from the 1x runs) are paid" in \
        baselines.beyond_budget(60.0, "the rows", guessed)  # a reading's run not trained yet still counts
    waiting = baselines.readings_plan(base, rungs, finished, None)
    assert "the readings' runs, not all trained yet, aside" in baselines.beyond_budget(60.0, "the rows", waiting)
    # a run during one of whose epochs the build was stopped is charged that epoch at its median, not the wait
    stopped = {**_timed(5000.0), "history": [{"train_seconds": 50.0}] * 7 + [{"train_seconds": 4000.0}]}
    assert baselines.readings_plan(base, rungs, finished, [stopped])["readings"] == pytest.approx(400.0)


def test_the_table4_rows_at_four_times_the_epochs_count_only_those_the_ladder_does_not_train(tmp_path):
    from cktat_book.chapter import Chapter

    ch = Chapter("smoke", results=str(tmp_path), progress=False, train=False)  # nothing finished: nothing trained
    short = {r.label: _timed(100.0, 10, 5) for r in baselines.TABLE4}
    text = book_runs.long_rows_cost(ch, baselines.TABLE4, short, {r.label: None for r in baselines.TABLE4}, 4,
                                    "4x epochs")
    # PGDAT, TRADES and CKTAT at its own beta are the ladder's, LBGAT the `readings` stage's (chapter 06's reading);
    # the other 5 rows at 4x the epochs, 400 s each
    assert "lbgat_epochs" in " ".join(book_runs.reading_names(ch))
    assert text.startswith("33.3 min of this machine (the 5 Table 4 rows the ladder does not train, at its 4x epochs "
                           "schedule)")
    assert "not trained yet, with no 1x run to estimate them from" in text
    assert "the readings' runs, not all trained yet, aside" in text


def test_chapter_06s_runs_on_its_narrower_students_count_in_the_ladders_budget(tmp_path):
    from cktat_book.capacity import capacity_candidates
    from cktat_book.chapter import Chapter

    ch = Chapter("smoke", results=str(tmp_path), progress=False, train=False)
    r = ch.resolved("pgdat")
    first, later = [ch.resolved("pgdat", **p["small"]) for p in capacity_candidates(r.model, r.width, 16)][:2]

    def write(name, cfg, seconds):
        os.makedirs(tmp_path / "runs" / name)
        with open(tmp_path / "runs" / name / "result.json", "w") as fh:
            json.dump({"settings": {"model": cfg.model, "width": cfg.width}, "wall_seconds": seconds}, fh)

    write("pgdat_narrow", later, 600.0)  # the second candidate's small student: a run the pair's search added
    write("teacher_clean_narrow", later, 300.0)
    write("pgdat_first", first, 900.0)  # the first candidate's: the pair every profile starts from
    write("pgdat", r, 1200.0)
    assert sorted(x["name"] for x in book_runs.narrower_students(ch, 16)) == ["pgdat_narrow", "teacher_clean_narrow"]
    rungs = {"4x epochs": {"epochs": 64}}
    plan = baselines.readings_plan({"pgdat": _timed(300.0)}, rungs, {"4x epochs": {"pgdat": _timed(1200.0, 64)}},
                                   [_timed(1800.0)], narrow=book_runs.narrower_students(ch, 16))
    assert plan["readings"] == pytest.approx(1800.0 + 900.0) and plan["reading_runs"] == 3
    assert "the readings' runs (45.0 min; chapter 06's 2 runs on its narrower students included) are paid" in \
        baselines.beyond_budget(60.0, "the rows", plan)


def test_the_rank_sentence_tests_each_column_at_the_share_of_alpha_bonferroni_gives_it():
    four = {c: {"rho": 0.7, "p": 0.03, "n": 9} for c in "wxyz"}  # each would pass alone, none of four does
    text = baselines.rank_sentence(four, {})
    assert "No column orders the methods as the paper does beyond chance (p < 0.0125: 0.05 over the 4 columns" in text
    assert "Every column" in baselines.rank_sentence({"w": four["w"]}, {})  # one column: 0.05 itself
    # a column without distinct values is still one of the columns tested, in the sentence as in `ordering`'s claims
    flat = {"w": {"rho": 0.7, "p": 0.03, "n": 9}, "x": {"rho": None, "p": None, "n": 9}}
    assert "p < 0.025: 0.05 over the 2 columns" in baselines.rank_sentence(flat, {})
    both = {"w": {"rho": 0.9, "p": 0.001, "n": 9}, "x": {"rho": None, "p": None, "n": 9}}
    text = baselines.rank_sentence(both, {"x": "X"})
    assert "Only w orders" in text and "Every column" not in text and "X has too few distinct values to rank" in text
    ours, paper = dict(zip("abcdef", (1.0, 2.0, 3.0, 4.0, 5.0, 6.0))), dict(zip("abcdef", (1.0, 2.0, 4.0, 3.0, 6.0, 5.0)))
    one, two = (baselines.ordering("08", "T", "w", ours, paper, family=f) for f in (1, 2))  # rho 0.89, exact p 0.033
    assert one.verdict == claims.REPRODUCED and two.verdict == claims.WITHIN_NOISE


def test_the_readings_stage_trains_lbgat_only_where_the_ladder_trains_pgdat_on_the_same_network():
    from cktat_book.chapter import Chapter

    assert "lbgat_epochs64" in book_runs.reading_names(Chapter("cpu"))  # the large student is the book's network
    paper = Chapter("paper")  # ResNet-18: chapter 06's large student is WRN-34-10, which the ladder does not train
    assert book_runs.capacity_large(paper) == {"model": "wrn34_10"}
    assert not any(n.startswith("lbgat") for n in book_runs.reading_names(paper))

"""What the chapters print about their runs: seed tables, the paper beside ours, which images, the code shown."""

import pytest

from cktat_core import losses
from cktat_book import baselines, headline, label_design, noise, raat_ducat, report


def _run(seed, natural, robust, bits=None):
    ev = lambda acc: {"accuracy": acc, **({"bits": bits} if bits else {})}
    return {"seed": seed, "student": {"last": {"test": {"attacks": {"natural": ev(natural), "pgd20": ev(robust)}}}}}


def test_seed_rows_give_mean_and_spread_then_each_seed():
    rows = report.seed_rows({"cktat": [_run(0, 50.0, 25.0), _run(1, 52.0, 27.0), _run(2, 54.0, 26.0)]},
                            ["natural", "pgd20"], {"cktat": "CKTAT"})
    assert rows[0]["method"] == "CKTAT" and rows[0]["seeds"] == 3
    assert rows[0]["natural"] == "52.0 ± 2.0" and rows[0]["natural per seed"] == "50.0, 52.0, 54.0"
    assert report.mean_sd([41.0]) == "41.0"


def test_the_paper_beside_ours_with_the_difference_of_the_means():
    rows = report.paper_beside({"PGD-AT": {"natural": [50.0, 52.0], "pgd20": [25.0, 27.0]}, "X": {"natural": [1.0],
                                                                                                "pgd20": [2.0]}},
                               {"PGD-AT": [83.92, 51.71]}, ["natural", "pgd20"])
    assert rows[0]["paper natural"] == "83.9" and rows[0]["natural: ours - paper"] == "-32.9"
    assert rows[0]["pgd20: ours - paper"] == "-25.7" and "paper natural" not in rows[1]


def test_the_data_sentence_names_the_images(tmp_path):
    cifar = {"settings": {"dataset": "cifar10", "train_per_file": 4000}, "data": {"train": 19000, "val": 1000,
                                                                                  "test": 5000}}
    official = tmp_path / "official" / "cifar-10-batches-py"
    official.mkdir(parents=True)
    s = report.data_sentence(cifar, str(tmp_path / "official"))
    assert "first 4,000 images of each official training batch" in s and "19,000 for training" in s
    assert "first 5,000 official test images" in s and "JPEG" not in s  # the official download has no README
    ours = tmp_path / "ours" / "cifar-10-batches-py"
    ours.mkdir(parents=True)
    (ours / "README.md").write_text("Pixels: the first 1,017 images of every batch are the official pixels. The\n"
                                    "others ... differ by a median PSNR of 30.5 dB (minimum 23.1 dB).\n")
    s = report.data_sentence(cifar, str(tmp_path / "ours"))
    assert "only the first 1,017 images of each batch carry the official pixels" in s and "30.5 dB" in s
    assert "75% of the training images and 80% of the test images" in s and "within sampling noise" in s
    mv = report.data_sentence({"settings": {"dataset": "multiview"}, "data": {"train": 3500, "val": 500, "test": 2000}})
    assert "multi-view" in mv and "JPEG" not in mv


def test_the_code_a_page_shows_is_the_code_that_runs():
    shown = report.source(losses.cktat_loss)
    assert shown.startswith("```python\ndef cktat_loss(") and shown.endswith("```")
    decl = report.declaration("trades")
    assert 'register(Method("trades", "TRADES"' in decl and decl.count("```") == 2
    assert decl.splitlines()[1].startswith("# TRADES")  # the comment above the declaration comes with it


def test_split_halves_of_one_distribution_agree_and_of_two_do_not():
    same = "10" * 2500
    assert noise.split_half(same).word == noise.WITHIN
    shifted = "1" * 2500 + "0" * 2500
    assert noise.split_half(shifted).word == noise.ABOVE
    r = {"student": {"last": {"test": {"attacks": {"natural": {"bits": "1100" * 10}}}}}}
    assert report.halves(r) == pytest.approx((50.0, 50.0))


def test_durations_read_as_a_person_would_say_them():
    assert report.duration(40) == "40.0 s" and report.duration(600) == "10.0 min" and report.duration(36000) == "10.0 h"
    assert report.run_seconds({"wall_seconds": 12.0})[0] == 12.0
    assert report.run_seconds({"history": [{"train_seconds": 2.0}, {"train_seconds": 3.0}]})[0] == 5.0


def test_the_headline_reading_speaks_where_ours_differ_from_the_paper():
    from cktat_book import claims

    hist = lambda first, last: {"student": {"history": [{"val_natural": first, "val_pgd10": 20.0},
                                                        {"val_natural": last, "val_pgd10": 28.0}]}}
    nat = claims.Claim("02", "Table 4", "CKTAT's natural accuracy level with PGD-AT's", "p", -0.47, 1.3, "n",
                       claims.CONTRADICTED)
    rob = claims.Claim("02", "Table 4", "CKTAT's PGD-20 accuracy above PGD-AT's", "p", 5.09, 0.75, "n",
                       claims.WITHIN_NOISE)
    text = headline.headline_reading([nat, rob], 75.4, [hist(45.0, 50.0)], [hist(30.0, 48.5)])
    assert text.startswith("**Our reading.**") and "75.4%" in text and "45.0% natural" in text
    assert "head start" in text and "+0.8 points here against the paper's +5.1" in text
    assert "110 epochs" not in text and "softened" not in text  # the paper states no schedule; tau may be 1
    behind = headline.headline_reading([nat, rob], 75.4, [hist(45.0, 47.0)], [hist(30.0, 48.5)])
    assert "head start" not in behind  # CKTAT no longer ahead after its last epoch: no head start to speak of
    ok = claims.Claim("02", "Table 4", "x", "p", 1.0, 1.0, "n", claims.REPRODUCED)
    assert headline.headline_reading([ok, ok], 75.4, [hist(45.0, 50.0)], [hist(30.0, 48.5)]) == ""
    # the first epoch erases the teacher's lead (seeds level with PGD-AT's), yet CKTAT ends ahead: no head start
    level = headline.headline_reading([nat, rob], 75.4, [hist(31.4, 50.0), hist(31.6, 50.2)],
                                      [hist(31.5, 48.5), hist(31.5, 48.4)])
    assert "head start" not in level and "within the seeds' noise of PGD-AT's" in level
    assert "ends +1.3 points ahead on the test images" in level and "31.5% natural accuracy" in level
    # a first-epoch lead of 0.1 points inside the seeds' spread is no lead: not "ahead after its first epoch"
    near = headline.headline_reading([nat, rob], 75.4, [hist(31.2, 50.0), hist(31.8, 50.2)],
                                     [hist(31.3, 48.5), hist(31.5, 48.4)])
    assert "ahead in natural accuracy after its first epoch" not in near and "within the seeds' noise of" in near



def test_the_label_design_reading_names_the_trade_off_only_where_trades_moved_along_it():
    from cktat_book import claims

    run = lambda nat, rob: {"student": {"history": [{"val_natural": 0.0, "val_pgd10": 0.0},
                                                    {"val_natural": nat, "val_pgd10": rob}]}}
    off = claims.Claim("03", "Table 4", "TRADES's PGD-20 accuracy above PGD-AT's", "p", 2.1, -2.4, "n",
                       claims.CONTRADICTED)
    text = label_design.label_design_reading([off], [run(57.0, 24.0), run(58.0, 25.0)], [run(56.0, 26.0)], 2, 10)
    assert text.startswith("**Our reading.**") and "57.5% natural and 24.5% PGD-10" in text and "56.0% and 26.0%" in text
    assert "1 in 2 of the attack" in text and "10 steps of the book's `paper` profile" in text and "1 in 10" in text
    assert "the CKTAT paper states no training attack" in text and "paper's 10" not in text  # it states none
    ahead_on_both = label_design.label_design_reading([off], [run(57.0, 27.0)], [run(56.0, 26.0)], 2, 10)
    assert "trade-off" not in ahead_on_both  # not a move along the trade-off: no such reading
    ok = claims.Claim("03", "Table 4", "TRADES's PGD-20 accuracy above PGD-AT's", "p", 2.1, 2.0, "n", claims.REPRODUCED)
    other = claims.Claim("03", "Table 4", "CKTAT's PGD-20 accuracy above PGD-AT's", "p", 2.1, -1.0, "n",
                         claims.CONTRADICTED)
    assert label_design.label_design_reading([ok, other], [run(57.0, 24.0)], [run(56.0, 26.0)], 2, 10) == ""


def test_the_natural_lead_reading_names_the_rows_above_here_only():
    from cktat_book import claims

    ours = {"CKTAT": {"natural": 56.2, "aa": 25.0}, "HAT": {"natural": 62.4, "aa": 15.0},
            "PGDAT": {"natural": 53.5, "aa": 22.5}, "Generalist": {"natural": 58.0, "aa": 23.0}}
    paper = {"CKTAT": {"natural": 83.5, "aa": 51.9}, "HAT": {"natural": 82.5, "aa": 50.1},
             "PGDAT": {"natural": 83.9, "aa": 43.8}, "Generalist": {"natural": 88.1, "aa": 46.0}}
    off = claims.Claim("08", "Table 4", "No method is above CKTAT in natural accuracy", "p", 0.3, -6.2, "n",
                       claims.CONTRADICTED)
    text = baselines.natural_lead_reading(off, ours, paper, "CKTAT", 16)
    assert "HAT (+6.2 natural, -10.0 AutoAttack)" in text and "Generalist" not in text  # above in the paper too
    assert "It sits further towards natural accuracy" in text and "over 8.9 points" in text and "over 5.6" in text
    both = {**ours, "HAT": {"natural": 62.4, "aa": 26.0}}  # above on both: not a move along the trade-off
    assert "trade-off" not in baselines.natural_lead_reading(off, both, paper, "CKTAT", 16)
    ok = claims.Claim("08", "Table 4", "x", "p", 0.3, 0.1, "n", claims.REPRODUCED)
    assert baselines.natural_lead_reading(ok, ours, paper, "CKTAT", 16) == ""


def test_the_raat_reading_weighs_the_share_of_boundary_samples():
    from cktat_book import claims

    off = claims.Claim("09", "RAAT Table 1", "RAAT's natural accuracy above Cons-AT's", "p", 0.27, -1.68, "n",
                       claims.CONTRADICTED)
    text = raat_ducat.raat_reading([off], 1.4)
    assert "above Cons-AT's (+0.3 points in its Table 1); here it lies 1.7 points below" in text
    assert "1.4% of the examples" in text and "the consistency term makes the difference" in text
    assert "consistency term makes" not in raat_ducat.raat_reading([off], 30.0)  # many examples: no such reading
    ok = claims.Claim("09", "RAAT Table 1", "RAAT's natural accuracy above Cons-AT's", "p", 0.27, 0.1, "n",
                      claims.REPRODUCED)
    assert raat_ducat.raat_reading([ok], 1.4) == ""

def test_the_attacks_sentence_gives_the_training_step_and_the_tests_own():
    from cktat_core.config import from_profile, resolve

    cfg = resolve(from_profile("paper", {"attack_steps": 2, "alpha_ratio": 0.5}))
    assert report.attacks_sentence(cfg) == ("L-inf eps = 8/255; PGD-2 with step 4/255 for training (PGD-10 at that "
                                            "step on the validation split), PGD-20 with step 2/255 for the test")
    smoke = resolve(from_profile("smoke"))
    assert f"step {smoke.alpha * 255:.3g}/255 for training" in report.attacks_sentence(smoke)
    assert report.attacks_sentence(resolve(from_profile("paper", {"norm": "l2"}))).startswith("L2 eps = 128/255;")


def test_the_resume_sentence_shows_a_resumption_only_where_the_page_made_one():
    from types import SimpleNamespace as R

    from cktat_book import library

    settings = {"teacher_epochs": 15, "epochs": 8}
    cut = {"cktat": R(finished=False, resumed_at={"teacher": 0}), "pgdat": R(finished=False, resumed_at={"student": 0})}
    done = {"cktat": R(finished=True, resumed_at={"teacher": 1, "student": 0}),
            "pgdat": R(finished=True, resumed_at={"student": 1})}
    s = library.resume_sentence(cut, done, settings)
    assert "cktat: first call stopped unfinished; the second resumed its teacher phase at epoch 1 of 15" in s
    assert "pgdat: first call stopped unfinished; the second resumed its student phase at epoch 1 of 8" in s
    assert s.endswith("Every run ends with all its epochs trained.")
    # a second execution of the page: both calls re-read finished runs, and the page says the resumption was earlier
    again = {m: R(finished=True, resumed_at={"teacher": 15, "student": 8}) for m in ("cktat", "pgdat")}
    s = library.resume_sentence(again, again, settings)
    assert "earlier execution" in s and "resumed its" not in s


def test_sec52_directions_belong_to_the_row_the_text_speaks_of():
    beta6, beta0 = report.TABLE4_CKTAT, "cktat.table4_cifar10.CKTAT_beta0"
    assert report.stated_directions(beta6, "pgdat") == (noise.BELOW, noise.ABOVE)  # "only weaker than ... PGDAT"
    assert report.stated_directions(beta0, "pgdat") == (noise.ABOVE, noise.ABOVE)  # "only weaker than Generalist"
    assert report.stated_directions(beta0, "trades") == (noise.ABOVE, noise.ABOVE)
    assert report.stated_directions("cktat.table3b_tau.2", "pgdat") == (None, None)  # the numbers decide


def test_the_fall_from_the_runs_attack_to_autoattack_is_read_on_the_same_images_and_weighed_over_the_seeds():
    run = lambda bits: {"student": {"last": {"test": {"attacks": {"pgd20": {"bits": bits, "accuracy": 100 * bits.count(
        "1") / len(bits)}}}}}}
    ev = lambda acc: {"n": 4, "attacks": {"aa": {"accuracy": acc}}}
    # the runs' PGD-20 on all their images; only the suite's first 4 count (75% there for every run)
    runs = {"cktat": [run("1110" + "1" * 6), run("1101" + "1" * 6), run("0111" + "1" * 6)],
            "pgdat": [run("1110" + "0" * 6), run("1011" + "0" * 6), run("1110" + "0" * 6)]}
    aa = {"cktat": [ev(50.0), ev(49.0), ev(51.0)], "pgdat": [ev(70.0), ev(71.0), ev(69.0)]}
    same = headline.on_suite_images(runs, aa, "pgd20")
    assert same["cktat"]["robust"] == pytest.approx([75.0] * 3)
    assert same["cktat"]["fall"] == pytest.approx([25.0, 26.0, 24.0]) and same["pgdat"]["fall"] == pytest.approx(
        [5.0, 4.0, 6.0])
    names = {"cktat": "CKTAT", "pgdat": "PGD-AT"}
    text = headline.drop_sentence(same, "cktat", "pgdat", 4, 10, names, "PGD-20", [83.45, 56.80, 0, 0, 0, 51.87],
                                  [83.92, 51.71, 0, 0, 0, 43.77])
    assert "On the first 4 test images, where AutoAttack ran, CKTAT's PGD-20 accuracy is 75.0%" in text
    assert "From PGD-20 to AutoAttack CKTAT falls 25.0 points (25.0, 26.0, 24.0) and PGD-AT 5.0" in text
    assert "CKTAT falls 4.9 points from PGD to AutoAttack and PGD-AT 7.9" in text  # the paper's Table 4
    assert "PGD-20 overstates CKTAT's robustness more than PGD-AT's here" in text
    assert "does not show on these 4: it rests on the images AutoAttack did not attack" in text  # level there
    alike = {"cktat": {"robust": [80.0, 81.0, 82.0], "fall": [5.0, 6.0, 4.0], "robust_all": [80.0, 81.0, 82.0]},
             "pgdat": {"robust": [70.0, 70.5, 71.0], "fall": [5.5, 4.5, 5.0], "robust_all": [70.0, 70.5, 71.0]}}
    said = headline.drop_sentence(alike, "cktat", "pgdat", 4, 10, names, "PGD-20", None, [])
    assert "rank the two methods alike" in said and "overstates" not in said and "paper" not in said
    assert "does not show" not in said  # the PGD-20 gain is there on these images too
    level = {m: {**v, "robust": [75.0, 75.5, 74.5]} for m, v in alike.items()}
    assert "does not show" in headline.drop_sentence(level, "cktat", "pgdat", 4, 10, names, "PGD-20", None, [])
    nowhere = {m: {**v, "robust_all": [75.0, 75.5, 74.5]} for m, v in level.items()}  # no gain on all images
    assert "does not show" not in headline.drop_sentence(nowhere, "cktat", "pgdat", 4, 10, names, "PGD-20", None, [])


def test_a_difference_that_rests_on_one_part_of_the_test_images_is_said_to():
    def run(official_right, jpeg_right, seed):  # 100 official-pixel images, then 300 JPEG-decoded ones
        b = "1" * official_right + "0" * (100 - official_right) + "1" * jpeg_right + "0" * (300 - jpeg_right)
        return {"seed": seed, "student": {"last": {"test": {"attacks": {"pgd20": {"bits": b}}}}}}

    names = {"cktat": "CKTAT", "pgdat": "PGD-AT"}
    runs = {"cktat": [run(28, 90, 0), run(27, 88, 1), run(29, 89, 2)],  # about 29.7% on the JPEG part
            "pgdat": [run(28, 79, 0), run(29, 80, 1), run(27, 78, 2)]}  # about 26.3%: apart there, level on the other
    text = headline.part_gap_sentence(runs, "cktat", "pgdat", "pgd20", 100, names, "PGD-20")
    assert "on the 100 official-pixel images within noise (+0.0 points" in text
    assert "on the 300 JPEG-decoded images above (+3.3 points" in text
    assert "The difference itself differs between the two parts beyond the seeds' noise" in text
    same = {"cktat": runs["cktat"], "pgdat": [run(28, 90, 0), run(29, 88, 1), run(27, 89, 2)]}
    assert "does not differ between the two parts" in headline.part_gap_sentence(same, "cktat", "pgdat", "pgd20",
                                                                                  100, names, "PGD-20")
    # a gap beyond noise on the large part only, the same size on the small one: the parts do not differ, and the
    # page does not say the difference rests on one part
    weak = {"cktat": [run(31, 90, 0), run(28, 88, 1), run(31, 89, 2)], "pgdat": runs["pgdat"]}
    said = headline.part_gap_sentence(weak, "cktat", "pgdat", "pgd20", 100, names, "PGD-20")
    assert "on the 100 official-pixel images within noise (+2.0 points" in said and "decoded images above (+3.3" in said
    assert "does not differ between the two parts" in said
    assert headline.part_gap_sentence(runs, "cktat", "pgdat", "pgd20", None, names, "PGD-20") == ""  # official copy


def test_the_autoattack_deficit_is_read_as_the_cross_entropys_overstatement_and_tested_by_autoattacks_own_attacks():
    from dataclasses import replace

    from cktat_book import budget

    ev = lambda ce, t: {"n": 1000, "attacks": {"aa": {"accuracy": t, "per_attack": {"apgd-ce": ce, "apgd-t": t}}}}
    names = {"cktat": "CKTAT", "pgdat": "PGD-AT"}
    aa = {"cktat": [ev(27.2, 18.8), ev(27.0, 18.3), ev(28.4, 18.4)],
          "pgdat": [ev(27.2, 22.2), ev(28.1, 23.6), ev(27.4, 22.4)]}
    claim = headline.autoattack_claim("02_cktat", aa, "cktat", "pgdat", [0, 0, 0, 0, 0, 51.87],
                                      [0, 0, 0, 0, 0, 43.77], names, ())
    assert claim.verdict == "contradicted" and claim.ours < 0
    [r] = headline.autoattack_reading([claim], aa, "cktat", "pgdat", names)
    assert r.verdict == budget.SUPPORTED and r.budget is False and r.claim == claim.claim
    assert "After APGD-CE alone, CKTAT - PGD-AT: within noise (+0.0 points, p = 0.95" in r.shows  # they part at APGD-T
    # a share of the survivors, not the fall in points: a model with more survivors does not fall further for that
    assert "The later attacks break 32.8% of CKTAT's survivors per seed on average (30.9, 32.2, 35.2; 9.0 points of " \
           "accuracy) and 17.5% of PGD-AT's (18.4, 16.0, 18.2; 4.8 points)." in r.shows
    assert r.resolves is False  # level after APGD-CE, yet the paper's AutoAttack gap is not explained: in part
    assert "The paper's own AutoAttack puts CKTAT 8.1 points above PGD-AT: the reading explains why our ordering " \
           "reverses" in r.shows
    # the other way round, the reading is not supported and the page says what the attacks show instead
    swapped = {"cktat": [ev(20.0, 18.8), ev(19.5, 18.3), ev(20.1, 18.4)], "pgdat": aa["pgdat"]}
    against = headline.autoattack_claim("02_cktat", swapped, "cktat", "pgdat", [0] * 5 + [51.87], [0] * 5 + [43.77],
                                        names, ())
    [no] = headline.autoattack_reading([against], swapped, "cktat", "pgdat", names)
    assert no.verdict == budget.NOT_SUPPORTED and "They break more of PGD-AT's" in no.shows and no.resolves is None
    # nothing to read where the claim holds, or where an evaluation has no per-attack record
    assert headline.autoattack_reading([replace(claim, verdict="reproduced")], aa, "cktat", "pgdat", names) == []
    bare = {m: [{"n": 1000, "attacks": {"aa": {"accuracy": e["attacks"]["aa"]["accuracy"]}}} for e in v]
            for m, v in aa.items()}
    assert headline.autoattack_reading([claim], bare, "cktat", "pgdat", names) == []


def test_table4s_autoattack_rank_reading_carries_chapter_02s_test_and_names_the_rows_it_does_not_explain():
    from cktat_book import budget, claims

    ev = lambda ce, t: {"n": 1000, "attacks": {"aa": {"accuracy": t, "per_attack": {"apgd-ce": ce, "apgd-t": t}}}}
    std = {"CKTAT (beta=6)": ev(27.2, 18.8), "CKTAT (beta=0)": ev(18.8, 9.7), "PGDAT": ev(27.2, 22.2),
           "MART": ev(32.1, 25.0), "HAT": ev(18.7, 15.0)}
    claim = claims.Claim("08_baselines", "Table 4", "CKTAT (beta=6) has the highest AA accuracy", "m", 1.3, -6.2, "n",
                         claims.CONTRADICTED)
    seeded = {"run": "AutoAttack's own attacks on the seeds", "verdict": budget.SUPPORTED, "evidence": "p = 0.008",
              "shows": "Seeds fall apart."}
    [r] = baselines.aa_rank_reading(claim, std, "CKTAT (beta=6)", ("CKTAT (beta=0)",), seeded, 0.5)
    assert r.verdict == budget.SUPPORTED and r.budget is False and r.run == "chapter 02's test, " + seeded["run"]
    assert r.shows.startswith("Seeds fall apart. In this table's single runs, CKTAT (beta=6) falls 8.4 points")
    assert "the 2 rows above it there PGDAT 5.0 and MART 7.1" in r.shows  # CKTAT (beta=0) is not among the methods
    # MART lies above already under APGD-CE: the reading explains PGDAT's pass, not MART's, so it does not resolve it
    assert "under APGD-CE alone MART already lies above it beyond the noise (MART: +4.9 points" in r.shows
    assert "the reading explains the rows that pass CKTAT (beta=6) only under AutoAttack's later attacks (PGDAT), "            "not MART." in r.shows and r.resolves is False
    level = {**std, "MART": ev(27.5, 25.0)}
    [all_explained] = baselines.aa_rank_reading(claim, level, "CKTAT (beta=6)", ("CKTAT (beta=0)",), seeded, 0.5)
    assert all_explained.resolves is False and "none lies above it beyond the noise" in all_explained.shows
    assert baselines.aa_rank_reading(claim, std, "CKTAT (beta=6)", (), None, 0.5) == []  # no seeded test to carry


def test_the_evaluation_opening_counts_its_images_and_says_how_far_each_model_falls_to_autoattack():
    from cktat_book import evaluation

    att = lambda **acc: {"n": 1000, "attacks": {k: {"accuracy": v} for k, v in acc.items()}}
    standard = {"PGDAT": att(natural=53.5, pgd20=27.3, aa=22.2), "CKTAT": att(natural=55.8, pgd20=27.5, aa=18.8)}
    compat = {"PGDAT": att(pgd20=28.0), "CKTAT": att(pgd20=27.7)}
    masked = {"attacks": {"pgd20": {"accuracy": 74.0}}, "flags": [{"check": "nonzero_gradients"}]}
    masked_std = {"n": 100, "attacks": {"aa": {"accuracy": 1.0}}}
    text = evaluation.evaluation_findings(standard, compat, {"attacks": {"pgd20": {"accuracy": 0.0}}}, masked,
                                          masked_std, "10 steps of 0.007")
    assert "AutoAttack is the strongest attack for 2 of the 2 models" in text
    assert "brings it to 1.0% (on the first 100 images)" in text
    assert "falls PGDAT 5.1 and CKTAT 8.7 points:" in text  # no CW-inf in this suite: its clause is left out
    standard["CKTAT"]["attacks"]["cw"] = {"accuracy": 19.8}
    standard["PGDAT"]["attacks"]["cw"] = {"accuracy": 24.3}
    text = evaluation.evaluation_findings(standard, compat, {"attacks": {"pgd20": {"accuracy": 0.0}}}, masked,
                                          masked_std, "10 steps of 0.007")
    assert "and to CW-inf, whose margin loss is not PGD-20's cross-entropy, PGDAT 3.0 and CKTAT 7.7:" in text


def test_the_library_page_says_what_its_checks_flag_before_it_compares_two_runs():
    from cktat_book import library

    ev = lambda k: {"accuracy": k / 10, "total": 1000, "bits": "1" * k + "0" * (1000 - k)}
    flag = {"check": "nonzero_gradients", "message": "3 of 250 clean points have an exactly zero input gradient."}
    suites = {"cktat": {"n": 1000, "attacks": {"natural": ev(240), "aa": ev(120)}, "flags": [flag]},
              "pgdat": {"n": 1000, "attacks": {"natural": ev(280), "aa": ev(190)}, "flags": []}}
    paper = [83.45, 56.80, 56.70, 58.78, 55.90, 51.87], [83.92, 51.71, 47.59, 52.05, 51.18, 43.77]
    text = library.findings(suites, "cktat", "pgdat", *paper)
    assert "natural -4.0 points (below" in text and "The checks flag cktat (under the table" in text
    assert "AutoAttack +8.10 points" in text
    said = library.flags_sentence(suites)
    assert said.endswith("cktat: nonzero_gradients, 3 of 250 clean points have an exactly zero input gradient.")
    assert "pgdat" not in said and library.flags_sentence({"pgdat": suites["pgdat"]}) == ""
    assert library.settings_text({"epochs": 8, "lr": 0.1, "eps": 8 / 255, "progress": False}) == \
        "epochs = 8, lr = 0.1, eps = 8/255"


def test_the_library_page_says_what_a_weak_teacher_hands_its_student():
    import types

    import torch

    from cktat_book import library
    from cktat_core import teacher_summary

    linear = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 2.0]]))  # predicts the larger input
    teacher = torch.nn.Sequential(torch.nn.Flatten(), linear)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]).view(4, 2, 1, 1)  # images in [0, 1]
    y = torch.tensor([0, 1, 0, 1])
    fit = types.SimpleNamespace(teacher=teacher, settings={"tau": 2.0})
    train = (x[:2], y[:2])  # the label is measured where the student learns: two images, both right
    summary = teacher_summary(fit, (x, y), train, batch_size=3)
    assert summary["accuracy"] == 75.0 and summary["test_images"] == 4 and summary["train_images"] == 2
    right = 100 * torch.sigmoid(torch.tensor(1.0)).item()  # logits 2 apart, at tau 2: 1 apart
    assert summary["label_mass"] == pytest.approx(right, abs=1e-4) and summary["classes"] == 2
    text = library.teacher_sentence("cktat", summary)
    assert text.startswith("cktat's clean teacher classifies 75.0% of the 4 test images")
    assert f"puts {right:.1f}% of its probability on the true class, on average over the 2 training images" in text
    assert "(uniform: 50%)" in text
    assert teacher_summary(fit, (x, y), (x[:1], y[:1]))["classes"] == 2  # the label's width, not the labels seen
    onehot = types.SimpleNamespace(teacher=teacher, settings={"tau": 2.0, "teacher_label": "onehot"})
    assert "label_mass" not in teacher_summary(onehot, (x, y), train)  # its student learns from y, not the teacher
    assert teacher_summary(types.SimpleNamespace(teacher=None, settings={}), (x, y), train) is None
    assert library.teacher_sentence("pgdat", None) == ""


def _seed(natural, pgd20, **fields):
    return {"student": {"last": {"test": {"attacks": {"natural": {"accuracy": natural}, "pgd20": {"accuracy": pgd20}}}}},
            **fields}


def test_a_page_whose_runs_trained_in_two_arithmetics_says_so_and_what_the_control_measures():
    from cktat_book import report

    intel, amd = {"machine": "Intel(R) Xeon(R) Processor, 2 cores"}, {"machine": "AMD EPYC, 2 cores"}
    assert report.trained_precision({**amd, "precision": "bf16"}) == ("bf16", False)  # what the run recorded first
    assert report.trained_precision(intel) == ("bf16", True) and report.trained_precision({}) == (None, False)
    same = {"A": [_seed(50, 25, **amd)], "B": [_seed(51, 24, precision="fp32")], "C": [_seed(51, 24)], "D": [None]}
    assert report.precision_sentence(same) == ""  # unknown arithmetic is not a second one
    runs = {"PGD-AT": [_seed(50, 25, precision="fp32")] * 3,
            "TRADES": [_seed(52, 23, **intel), _seed(52, 23), _seed(52, 23)], "MART": [_seed(49, 26, **intel)]}
    control = {"fp32": [_seed(54.0, 26.7), _seed(54.4, 26.8), _seed(53.8, 26.6)],
               "bf16": [_seed(55.0, 26.7), _seed(55.4, 26.8), _seed(54.8, 26.6)]}
    text = report.precision_sentence(runs, control)
    assert "In float32: PGD-AT; in bf16 autocast: MART; in more than one: TRADES (bf16 autocast for 1 of its 3 " \
           "runs, not recorded for 2 of its 3 runs)." in text
    assert "(MART and TRADES), it is inferred from the machine each names." in text  # PGD-AT recorded its own
    assert "(3 seeds each, the same settings; bf16 on the one with the instructions, float32 on the other) differ, " \
           "float32 minus bf16, by natural -1.00 points (95% interval \u00b1" in text
    assert "a difference beyond chance) and PGD-20 +0.00 points" in text and "no difference detectable)" in text
    assert "differ, float32" not in report.precision_sentence(runs, {"fp32": control["fp32"]})  # no control: no claim


def test_the_precision_control_adds_a_seed_only_where_it_trained_in_another_arithmetic(tmp_path):
    import json
    import os

    from cktat_book import book_runs
    from cktat_book.chapter import Chapter

    ch = Chapter("smoke", results=str(tmp_path), progress=False, train=False)
    settings = {"method": "pgdat", "seed": 0, "epochs": 2}
    finished = {0: {**_seed(50, 25, precision="fp32"), "name": "pgdat", "settings": settings},
                1: {**_seed(51, 25, precision="bf16"), "name": "pgdat_seed1", "settings": {**settings, "seed": 1}},
                2: {**_seed(52, 25, precision="fp32"), "name": "pgdat_seed2", "settings": {**settings, "seed": 2}}}
    ch.finished = lambda method, seed=0: finished[seed]
    for name, seed, epochs in (("pgdat", 0, 2), ("pgdat_seed1", 1, 2), ("pgdat_seed2", 2, 3)):
        folder = os.path.join(ch.out, book_runs.CONTROL_FOLDER, "runs", name)
        os.makedirs(folder)
        with open(os.path.join(folder, "result.json"), "w") as fh:  # bf16 by the folder, not recorded
            json.dump({**_seed(40, 20), "settings": {**settings, "seed": seed, "epochs": epochs, "tau": 5.0}}, fh)
    got = book_runs.precision_control(ch)
    # seed 0: the control's bf16 run joins; seed 1 trained in bf16 already; seed 2: another setting, left out
    assert {k: len(v) for k, v in got.items()} == {"fp32": 2, "bf16": 2}
    ch.finished = lambda method, seed=0: None if seed == 2 else finished[seed]
    assert book_runs.precision_control(ch) == {}

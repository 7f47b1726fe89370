"""Table 3's library side: rows of a run, the value a sweep picks on validation, the paper's two claims as numbers,
the seed noise, the explorer's callback, the teacher's softened labels, and the smoke profile's tau against the
committed sweep."""

import json
import os

import pytest
import torch

from cktat_core import sweeps
from cktat_core.chapter import Chapter, variant_name
from cktat_core.config import PROFILES
from cktat_core.eval_checkpoint import true_class_probability

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _history(scores, naturals=None):
    naturals = naturals or [50.0] * len(scores)
    return [{"epoch": i + 1, "val_natural": n, "val_pgd5": s} for i, (s, n) in enumerate(zip(scores, naturals))]


def test_spearman_on_known_orderings():
    assert sweeps.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert sweeps.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties share their average rank: ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4)
    assert sweeps.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138)
    assert sweeps.spearman([1, 2, 3], [5, 5, 5]) is None
    with pytest.raises(ValueError):
        sweeps.spearman([1, 2], [1])


def test_the_best_epoch_is_the_first_with_the_highest_validation_score():
    h = _history([10, 30, 30, 20])
    assert sweeps.best_epoch(h)["epoch"] == 2
    assert sweeps.validation_key(h) == "val_pgd5"
    assert sweeps.validation_key([{"epoch": 1, "val_natural": 3}]) == "val_natural"


def test_pick_on_validation_keeps_the_smallest_value_the_noise_cannot_separate_from_the_best():
    sweep = {1.0: _history([70, 80.4]), 2.0: _history([80.2, 60]), 4.0: _history([80.8, 60]), 5.0: _history([20, 16])}
    pick = sweeps.pick_on_validation(sweep, n_val=500)
    assert (pick["best"], pick["value"], pick["tied"], pick["separated"]) == (4.0, 1.0, [1.0, 2.0, 4.0], False)
    assert pick["runner_up"] == 1.0 and pick["score"] == 80.4
    # an exact tie on the score goes to the higher validation natural accuracy for `best`
    tie = sweeps.pick_on_validation({1.0: _history([80.6]), 2.0: _history([80.6], naturals=[90])}, 500)
    assert tie["best"] == 2.0 and tie["value"] == 1.0
    far = sweeps.pick_on_validation({1.0: _history([60]), 3.0: _history([90])}, 500)
    assert (far["value"], far["best"], far["separated"], far["tied"]) == (3.0, 3.0, True, [3.0])


def test_the_tau_claim_finds_an_interior_peak_only_beyond_noise():
    paper = {1: 53.4, 2: 53.6, 3: 54.7, 4: 56.1, 5: 56.8, 6: 56.4}
    c = sweeps.tau_claim({1: 50, 2: 60, 3: 70, 4: 60, 5: 50, 6: 40}, paper, n=2000)
    assert c["peak"] == 3 and c["paper_peak"] == 5 and c["rises_then_falls"] and c["paper_rises_then_falls"]
    assert c["rank_correlation"] == pytest.approx(sweeps.spearman([50, 60, 70, 60, 50, 40], list(paper.values())))
    flat = sweeps.tau_claim({1: 80.0, 2: 80.5, 3: 80.2}, paper, n=500)  # half a point on 500 images is noise
    assert not flat["rises_then_falls"]
    assert not sweeps.tau_claim({1: 10, 2: 20, 3: 30}, paper, 2000)["rises_then_falls"]  # peak at the end


def test_the_beta_claim_is_a_sign_pattern_of_rank_correlations():
    paper = {0: (86.5, 54.2), 3: (84.5, 55.6), 6: (83.5, 56.8)}
    trade = sweeps.beta_claim({0: 90, 3: 85, 6: 80}, {0: 40, 3: 45, 6: 50}, paper)
    assert trade["trade"] and trade["paper_trade"] and trade["natural"] == pytest.approx(-1)
    none = sweeps.beta_claim({0: 80, 3: 85, 6: 90}, {0: 40, 3: 45, 6: 50}, paper)
    assert not none["trade"] and none["natural"] == pytest.approx(1)


def _result(last, best, history):
    ev = lambda nat, rob: {"test": {"n": 2000, "attacks": {"natural": {"accuracy": nat}, "pgd20": {"accuracy": rob}}}}
    return {"student": {"last": ev(*last), "best": {**ev(*best), "epoch": 2}, "history": history}}


def test_a_table3_row_holds_both_selections_and_the_validation_score():
    row = sweeps.table3_row(_result((80, 70), (82, 75), _history([60, 75, 70])), "pgd20")
    assert row == {"natural": 80, "pgd20": 70, "best epoch": 2, "best natural": 82, "best pgd20": 75,
                   "val pgd20": 75}


def test_seed_noise_is_the_larger_of_the_seed_gap_and_the_binomial_margin():
    out = sweeps.seed_noise({"a": 80.0}, {"a": 70.0}, ["a"], n=2000)["a"]
    assert out["seeds"] == 10 and out["noise"] == 10 and 0 < out["binomial"] < 10
    out = sweeps.seed_noise({"a": 80.0}, {"a": 80.0}, ["a"], n=100)["a"]
    assert out["seeds"] == 0 and out["noise"] == out["binomial"] > 0


def test_the_explorer_shows_the_run_the_reader_picks():
    pytest.importorskip("ipywidgets")
    from cktat_core.explorer import show_run, sweep_explorer

    rows = {"tau 1": {"natural": 81.25, "pgd20": 71.5}, "tau 5": {"natural": 29.75, "pgd20": 5.5}}
    hist = {k: _history([10, 20]) for k in rows}
    panels = {"ours": {"curves": {"tau": [("1", 81.25, 71.5), ("5", 29.75, 5.5)]}}, "paper": {"points": {"x": (1, 2)}}}
    box = sweep_explorer(rows, hist, panels, "ours", "pgd20", ["natural", "pgd20"])
    choose, table, image = box.children
    assert "81.25" in table.value and "29.75" not in table.value
    first = image.value
    choose.value = "tau 5"  # what a reader's click does: the callback runs
    assert "29.75" in table.value and "tau 5" in table.value and image.value != first
    fig, _ = show_run("tau 5", rows, hist, panels, "ours", "pgd20", ["natural", "pgd20"])
    circled = [l for l in fig.axes[0].lines if l.get_label() == "chosen run"]
    assert len(circled) == 1 and list(circled[0].get_xdata()) == [29.75] and list(circled[0].get_ydata()) == [5.5]
    assert not [l for l in fig.axes[1].lines if l.get_label() == "chosen run"]


def test_the_softened_label_mass_goes_from_accuracy_to_uniform():
    cfg = Chapter("smoke", {"val_size": 200}).config("cktat")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    with torch.no_grad():
        net[1].weight.mul_(50)
    from cktat_core.data import load_splits

    val = load_splits(cfg.dataset, cfg.data_dir, cfg.val_size).val
    accuracy = (net(val.x).argmax(1) == val.y).float().mean().item()
    mass = true_class_probability(net, cfg, [1e-6, 1.0, 1e6])
    assert mass[1e-6] == pytest.approx(accuracy, abs=1e-6)  # tau -> 0: the one-hot argmax
    assert mass[1e6] == pytest.approx(0.1, abs=1e-4)  # tau -> infinity: uniform over 10 classes
    zero = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    torch.nn.init.zeros_(zero[1].weight), torch.nn.init.zeros_(zero[1].bias)
    assert true_class_probability(zero, cfg, [2.0])[2.0] == pytest.approx(0.1)


def test_the_smoke_profile_tau_is_the_one_the_committed_sweep_picks_on_validation():
    """Chapter 07 chooses the smoke profile's tau on the validation split; the profile must say the same."""
    ch = Chapter("smoke", {}, os.path.join(ROOT, "results", "smoke"), False)
    base = ch.config("cktat")
    histories = {}
    for tau in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]:
        name = variant_name("cktat", base, base.replace(tau=tau))
        with open(os.path.join(ch.runs, name, "result.json")) as fh:
            res = json.load(fh)
        assert res["config"]["tau"] == tau and res["config"]["beta"] == base.beta
        histories[tau] = res["student"]["history"]
    pick = sweeps.pick_on_validation(histories, n_val=base.val_size)
    assert PROFILES["smoke"]["tau"] == pick["value"]


def _row(nat, rob, probe=None):
    r = {"natural": nat, "pgd20": rob, "best natural": nat + 1, "best pgd20": rob + 1, "best epoch": 3, "val pgd20": 70.0}
    return {**r, "probe_f2": probe} if probe is not None else r


def test_rows_are_compared_with_the_full_run_within_the_noise_margin():
    noise = sweeps.noise_margins(_row(80, 70), [_row(80, 64)], ["natural", "pgd20"], n=2000)
    assert noise["pgd20"]["seeds"] == 6 and noise["pgd20"]["noise"] == 6 and noise["natural"]["seeds"] == 0
    assert noise["natural"]["noise"] == noise["natural"]["binomial"] > 0
    assert [sweeps.versus(v, 70, 6) for v in (75.9, 64.1, 76.1, 63.9)] == ["same", "same", "higher", "lower"]
    rows = sweeps.display_rows({"a": _row(80, 70, 12.5), "b": _row(90, 90)}, "pgd20", _row(80, 70), 6,
                               {"a": [83.0, 55.0]})
    assert rows[0]["natural"] == "80.0 / 81.0" and rows[0]["pgd20"] == "70.0 / 71.0" and rows[0]["probe_f2"] == 12.5
    assert rows[0]["paper PGD"] == 55.0 and rows[1]["paper PGD"] is None and rows[1]["vs full"] == "higher"


def test_the_ablation_sentence_counts_the_removals_that_agree_with_the_paper():
    ours = {"PGD-AT": _row(85, 77), "CKTAT (full)": _row(80, 76), "no init": _row(80, 76.5), "no teacher": _row(13, 1),
            "no consistency": _row(100, 87)}
    paper = {"PGD-AT": [83.9, 51.7], "CKTAT (full)": [83.5, 56.8], "no init": [82.5, 55.7],
             "no teacher": [82.2, 55.3], "no consistency": [86.5, 54.2]}
    s = sweeps.ablation_sentence(ours, paper, ["no init", "no teacher", "no consistency"], "pgd20", "PGD-20", margin=2.7)
    assert "1 of 3 removals moves" in s and "(no teacher)" in s and "no consistency: +11.00 (higher)" in s
    assert "PGD-AT, trained from scratch under the same budget, is level with" in s


def test_the_pick_sentence_says_whether_the_profile_agrees():
    pick = {"value": 1.0, "score": 80.4, "best": 4.0, "best_score": 80.8, "runner_up": 3.0, "runner_up_score": 80.6,
            "tied": [1.0, 3.0, 4.0], "separated": False}
    s = sweeps.pick_sentence(pick, "tau", "smoke", 1.0, 500)
    assert s.endswith("tau = 1: the same value.") and "tau = 1, 3, 4 all lie within" in s and "picks the smallest" in s
    assert "should be set to 1" in sweeps.pick_sentence(pick, "tau", "smoke", 5.0, 500)
    assert "the paper's value; on these runs validation would pick 1" in sweeps.pick_sentence(pick, "tau", "paper", 5.0, 500)


def test_the_beta_pick_mentions_feature_2_only_when_the_chosen_beta_keeps_more_of_it():
    pick = {"value": 1.0, "score": 96.2, "best": 1.0, "best_score": 96.2, "runner_up": 0.0, "runner_up_score": 95.2,
            "tied": [0.0, 1.0], "separated": False}
    rows = {1.0: _row(100, 90, 100.0), 6.0: _row(77, 76, 10.0)}
    assert "keeps feature 2: 100.0%" in sweeps.beta_pick_sentence(pick, rows, rows[6.0], 6.0, 2.7)
    rows[1.0]["probe_f2"] = 11.0
    assert "feature 2" not in sweeps.beta_pick_sentence(pick, rows, rows[6.0], 6.0, 2.7)
    assert "feature 2" not in sweeps.beta_pick_sentence(pick, {1.0: _row(100, 90)}, _row(77, 76), 6.0, 2.7)


def test_variant_names_say_what_changes_and_share_the_teacher_of_their_settings(tmp_path):
    ch = Chapter("smoke", {}, str(tmp_path), False)
    base = ch.config("cktat")
    assert variant_name("cktat", base, base.replace(tau=3.0, beta=0.0)) == "cktat_beta0_tau3"
    assert variant_name("cktat", base, base) == "cktat"  # no change: the profile's own run
    assert variant_name("cktat", base, base.replace(teacher_checkpoint="x/last.pt")) == "cktat"  # paths never name
    assert os.path.basename(ch.teacher_dir("clean", width=4, tau=3.0)) == "teacher_clean_width4"
    # student-only fields (teacher_kind here) neither name the teacher nor reach its config
    assert os.path.basename(ch.teacher_dir("clean", teacher_kind="clean", seed=1)) == "teacher_clean_seed1"
    assert ch._teacher_config(teacher_kind="clean", width=4).width == 4

"""Table 3's library side: rows of a run, the value a sweep picks on validation, the rows against the full run,
the explorer's callback, the teacher's softened labels, and each profile's tau against its committed sweep."""

import json
import os

import pytest
import torch

from cktat_book import ablations
from cktat_book.chapter import Chapter, variant_name
from cktat_core.config import PROFILES
from cktat_core.eval_checkpoint import true_class_probability

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _history(scores, naturals=None):
    naturals = naturals or [50.0] * len(scores)
    return [{"epoch": i + 1, "val_natural": n, "val_pgd5": s} for i, (s, n) in enumerate(zip(scores, naturals))]


def test_spearman_on_known_orderings():
    assert ablations.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert ablations.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties share their average rank: ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4) (scipy's, as the book uses it)
    assert ablations.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138)
    assert ablations.spearman([1, 2, 3], [5, 5, 5]) is None
    with pytest.raises(ValueError):
        ablations.spearman([1, 2], [1])


def test_the_best_epoch_is_the_first_with_the_highest_validation_score():
    h = _history([10, 30, 30, 20])
    assert ablations.best_epoch(h)["epoch"] == 2
    assert ablations.validation_key(h) == "val_pgd5"
    assert ablations.validation_key([{"epoch": 1, "val_natural": 3}]) == "val_natural"


def test_pick_on_validation_keeps_the_smallest_value_the_noise_cannot_separate_from_the_best():
    sweep = {1.0: _history([70, 80.4]), 2.0: _history([80.2, 60]), 4.0: _history([80.8, 60]), 5.0: _history([20, 16])}
    pick = ablations.pick_on_validation(sweep, n_val=500)
    assert (pick["best"], pick["value"], pick["tied"], pick["separated"]) == (4.0, 1.0, [1.0, 2.0, 4.0], False)
    assert pick["runner_up"] == 1.0 and pick["score"] == 80.4
    # an exact tie on the score goes to the higher validation natural accuracy for `best`
    tie = ablations.pick_on_validation({1.0: _history([80.6]), 2.0: _history([80.6], naturals=[90])}, 500)
    assert tie["best"] == 2.0 and tie["value"] == 1.0
    far = ablations.pick_on_validation({1.0: _history([60]), 3.0: _history([90])}, 500)
    assert (far["value"], far["best"], far["separated"], far["tied"]) == (3.0, 3.0, True, [3.0])


def test_pick_on_validation_keeps_the_papers_value_where_validation_cannot_separate_it_from_the_best():
    sweep = {1.0: _history([70, 80.4]), 2.0: _history([80.2, 60]), 4.0: _history([80.8, 60]), 5.0: _history([20, 79])}
    pick = ablations.pick_on_validation(sweep, n_val=500, default=5.0)
    assert (pick["best"], pick["value"], pick["score"], pick["default"]) == (4.0, 5.0, 79, 5.0)
    assert 5.0 in pick["tied"] and not pick["separated"]
    # the paper's value below the best beyond the noise: the best, not the smallest tied value
    sweep[5.0] = _history([20, 16])
    pick = ablations.pick_on_validation(sweep, n_val=500, default=5.0)
    assert (pick["value"], pick["tied"]) == (4.0, [1.0, 2.0, 4.0])
    s = ablations.pick_sentence(pick, "tau", "smoke", 4.0, 500)
    assert "the paper's tau = 5 lies below it beyond the sampling noise, so validation picks tau = 4" in s
    assert s.endswith("the same value.")
    tied = ablations.pick_on_validation({**sweep, 5.0: _history([79])}, n_val=500, default=5.0)
    assert "validation cannot separate them and the paper's value stays, tau = 5" in \
        ablations.pick_sentence(tied, "tau", "cpu", 5.0, 500)


def _result(last, best, history):
    ev = lambda nat, rob: {"test": {"n": 2000, "attacks": {"natural": {"accuracy": nat}, "pgd20": {"accuracy": rob}}}}
    return {"student": {"last": ev(*last), "best": {**ev(*best), "epoch": 2}, "history": history}}


def test_a_table3_row_holds_both_selections_and_the_validation_score():
    row = ablations.table3_row(_result((80, 70), (82, 75), _history([60, 75, 70])), "pgd20")
    assert row == {"natural": 80, "pgd20": 70, "best epoch": 2, "best natural": 82, "best pgd20": 75,
                   "val pgd20": 75}


def test_the_explorer_shows_the_run_the_reader_picks():
    pytest.importorskip("ipywidgets")
    from cktat_book.explorer import show_run, sweep_explorer

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


@pytest.mark.parametrize("profile", ["smoke", "cpu"])
def test_the_profile_tau_is_the_one_the_committed_sweep_picks_on_validation(profile):
    """Chapter 07 chooses a profile's tau on the validation split; the profile must say the same."""
    ch = Chapter(profile, {}, os.path.join(ROOT, "results", profile), False)
    base = ch.config("cktat")
    histories = {}
    for tau in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]:
        name = variant_name("cktat", base, base.replace(tau=tau))
        with open(os.path.join(ch.runs, name, "result.json")) as fh:
            res = json.load(fh)
        assert res["config"]["tau"] == tau and res["config"]["beta"] == base.beta
        histories[tau] = res["student"]["history"]
    pick = ablations.pick_on_validation(histories, n_val=base.val_size, default=Chapter("paper").config("cktat").tau)
    assert PROFILES[profile]["tau"] == pick["value"]


def _row(nat, rob, probe=None):
    r = {"natural": nat, "pgd20": rob, "best natural": nat + 1, "best pgd20": rob + 1, "best epoch": 3, "val pgd20": 70.0}
    return {**r, "probe_f2": probe} if probe is not None else r


def _res(nat_bits, rob_bits, history=None):
    ev = lambda bits: {"accuracy": 100 * bits.count("1") / len(bits), "total": len(bits), "bits": bits}
    last = {"test": {"attacks": {"natural": ev(nat_bits), "pgd20": ev(rob_bits)}}}
    return {"student": {"last": last, "best": last, "history": history or _history([70.0])}}


def test_rows_are_compared_with_the_full_run_image_by_image():
    full = _res("1" * 600 + "0" * 400, "1" * 300 + "0" * 700)
    better = _res("1" * 600 + "0" * 400, "1" * 400 + "0" * 600)  # 100 more images right, none fewer
    same = _res("1" * 600 + "0" * 400, "0" * 10 + "1" * 300 + "0" * 690)
    rows = ablations.sweep_rows({"full": full, "better": better, "same": same}, full, "pgd20", paper={"full": [83.0, 55.0]})
    assert [r["vs full"] for r in rows] == ["-", "above", "within noise"]
    assert rows[1]["pgd20"] == "40.0 / 40.0" and rows[0]["paper PGD"] == 55.0 and rows[1]["paper PGD"] is None
    assert rows[0]["ours - paper"] == "-23.0 / -25.0" and rows[1]["ours - paper"] == "-"
    # a run-to-run spread larger than the difference makes it noise
    assert ablations.sweep_rows({"better": better}, full, "pgd20", spread=5.0)[0]["vs full"] == "within noise"


def test_the_pick_sentence_says_whether_the_profile_agrees():
    pick = {"value": 1.0, "score": 80.4, "best": 4.0, "best_score": 80.8, "runner_up": 3.0, "runner_up_score": 80.6,
            "tied": [1.0, 3.0, 4.0], "separated": False}
    s = ablations.pick_sentence(pick, "tau", "smoke", 1.0, 500)
    assert s.endswith("tau = 1: the same value.") and "tau = 1, 3, 4 all lie within" in s and "picks the smallest" in s
    assert "should be set to 1" in ablations.pick_sentence(pick, "tau", "smoke", 5.0, 500)
    assert "the paper's value; on these runs validation would pick 1" in ablations.pick_sentence(pick, "tau", "paper", 5.0, 500)


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


def test_the_tau_reading_speaks_only_when_the_sweep_contradicts_the_paper():
    from cktat_book import claims

    mass = {1.0: 0.6, 6.0: 0.15}
    against = [claims.Claim("07", "Table 3b", "natural rises", "rho", 0.9, -1.0, "n", claims.CONTRADICTED)]
    text = ablations.tau_reading(mass, 75.4, 10, against)
    assert text.startswith("**Our reading.**") and "75.4%" in text and "60% of its mass" in text and "15%" in text
    agree = [claims.Claim("07", "Table 3b", "natural rises", "rho", 0.9, 0.9, "n", claims.REPRODUCED)]
    assert ablations.tau_reading(mass, 75.4, 10, agree) == ""

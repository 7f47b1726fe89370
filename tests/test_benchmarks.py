"""What the benchmark pages say is computed: the profile selection's sentence on the best candidate's lead; and the
benchmarks' timings take turns."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import select_cpu_profile as select  # noqa: E402
from machine import interleaved_seconds  # noqa: E402
import real_image_build as build  # noqa: E402
from cktat_core import results  # noqa: E402


def _row(name, natural, robust, **fields):
    return {"name": name, "method": "pgdat", "fields": fields, "settings": select.settings_of("pgdat", fields),
            "epochs": 10, "train_seconds": 300.0, "val_natural": natural, "val_robust": robust,
            "robust_attack": "pgd10", "score_per_minute": robust / 5}


PROFILE = {**select.START, "val_size": 1000}


def test_the_selection_names_the_profile_and_weighs_a_better_candidate_against_the_noise():
    picked, close = _row("picked", 50.4, 27.9, width=32), _row("close", 51.4, 28.1, width=32, lr=0.2)
    text = select.choice([picked, close], PROFILE)
    assert "The `cpu` profile is **picked**" in text and "ranked 2 of 2" in text
    assert "close's lead over it, +0.2 points robust" in text and "within the noise" in text
    far = _row("far", 60.0, 40.0, width=32, lr=0.2)
    text = select.choice([picked, far], PROFILE)
    assert "beyond the noise of one run on 1,000 validation images in robust and natural accuracy" in text
    # the profile's own point first: nothing to weigh
    assert "lead over it" not in select.choice([picked, _row("worse", 40.0, 20.0, lr=0.2)],
                                               PROFILE)


def test_a_candidate_run_with_more_seeds_is_ranked_once_and_reported_with_its_mean():
    picked = _row("picked", 50.4, 27.9, width=32)
    runs = [_row("close", 51.4, 28.1, width=32, lr=0.2), _row("close_seed1", 50.0, 27.0, width=32, lr=0.2, seed=1),
            _row("close_seed2", 49.6, 27.5, width=32, lr=0.2, seed=2)]
    text = select.choice([picked] + runs, PROFILE)
    assert "ranked 2 of 2" in text  # the seeds are not candidates of their own
    assert "close with seeds 0, 1, 2: validation natural 51.4, 50.0, 49.6 (mean 50.3), PGD-10 28.1, 27.0, 27.5 " \
           "(mean 27.5)." in text


def test_candidates_are_settings_from_a_fixed_start_so_a_later_profile_picks_its_own_row():
    # "pgd3" changes the attack but not lr: it ran at the start's lr 0.1 even once the profile has lr 0.2
    pgd3 = _row("pgd3", 50.4, 27.9, epochs=14, attack_steps=3, alpha_ratio=0.5)
    pgd3_lr = _row("pgd3_lr0.2", 51.4, 28.1, epochs=14, attack_steps=3, alpha_ratio=0.5, lr=0.2)
    assert pgd3["settings"]["lr"] == 0.1 and pgd3_lr["settings"]["lr"] == 0.2
    later = {**PROFILE, "epochs": 14, "attack_steps": 3, "alpha_ratio": 0.5, "lr": 0.2}
    assert "The `cpu` profile is **pgd3_lr0.2**" in select.choice([pgd3, pgd3_lr], later)
    earlier = {**later, "lr": 0.1}
    assert "The `cpu` profile is **pgd3**" in select.choice([pgd3, pgd3_lr], earlier)
    assert select.setting_cells(pgd3_lr) == ["32", "14", "PGD-3, step 0.5 eps", "0.2"]


def test_the_target_rule_adds_the_worst_validation_to_test_loss_and_the_noise_of_three_seeds():
    points = [{"folder": "results/cpu-a", "settings": {"width": 32, "epochs": 14, "attack_steps": 3,
                                                     "alpha_ratio": 0.5, "lr": 0.1},
               "natural": [48.6, 48.4, 48.7], "pgd20": [28.1, 27.6, 28.5], "val_natural": [49.3, 49.5, 48.9],
               "val_robust": [28.0, 26.6, 25.8], "runs": 50},
              {"folder": "results/cpu-b", "settings": {"width": 32, "epochs": 14, "attack_steps": 3,
                                                     "alpha_ratio": 0.5, "lr": 0.2},
               "natural": [50.0, 49.8, 49.5], "pgd20": [28.7, 28.2, 28.9], "val_natural": [51.3, 51.8, 50.4],
               "val_robust": [27.6, 26.6, 27.3], "runs": 3}]
    rule = select.target_rule(points, n_val=1000)
    assert rule["loss"]["natural"] == pytest.approx(51.1667 - 49.7667, abs=1e-3)  # the larger of the two losses
    se = 100 * 2 * (0.25 / 3000) ** 0.5
    assert rule["need"]["natural"] == pytest.approx(50 + rule["loss"]["natural"] + se)
    assert rule["reference"]["folder"] == "results/cpu-a"  # the complete build sets the time limit
    ref = _row("ref", 50.4, 27.9, epochs=14, attack_steps=3, alpha_ratio=0.5)
    fast = _row("fast", 56.0, 27.0, epochs=16, attack_steps=2, alpha_ratio=0.5, lr=0.2)
    slow = {**_row("slow", 57.0, 27.0, epochs=18, attack_steps=2, alpha_ratio=0.5, lr=0.2), "train_seconds": 400.0}
    weak = _row("weak", 56.0, 24.0, epochs=16, attack_steps=1, alpha_ratio=1.0, lr=0.2)
    profile = {**PROFILE, "epochs": 16, "attack_steps": 2, "alpha_ratio": 0.5, "lr": 0.2}
    text = select.rule_sentence([ref, fast, slow, weak], points, 1000, profile)
    assert text.startswith("To expect the targets on the test images, fast, the profile's candidate, needs at least")
    assert text.endswith("Candidates that qualify: fast.") and "no longer than ref (300 s)" in text
    assert "`results/cpu-a`, the earlier build with the most runs (50)" in text
    # a candidate's seeds count with their mean
    fast_seeds = [fast, _row("fast_s1", 50.0, 27.0, epochs=16, attack_steps=2, alpha_ratio=0.5, lr=0.2, seed=1),
                  _row("fast_s2", 50.0, 27.0, epochs=16, attack_steps=2, alpha_ratio=0.5, lr=0.2, seed=2)]
    assert select.rule_sentence([ref] + fast_seeds, points, 1000, profile).endswith("No candidate qualifies yet.")
    # once the candidate is built, its own test figures do not move what it needs
    built = {"folder": "results/cpu-c", "settings": {"width": 32, "epochs": 16, "attack_steps": 2, "alpha_ratio": 0.5,
                                                   "lr": 0.2},
             "natural": [45.0] * 3, "pgd20": [20.0] * 3, "val_natural": [56.0] * 3, "val_robust": [27.0] * 3, "runs": 3}
    assert select.rule_for(fast, points + [built], 1000)["need"] == select.rule_for(fast, points, 1000)["need"]
    assert select.rule_sentence([ref, fast], points + [built], 1000, profile).endswith("Candidates that qualify: fast.")


def test_timed_functions_take_turns_after_untimed_warmup_rounds():
    calls = []
    times = interleaved_seconds({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=2)
    assert calls == ["a", "b"] * 5  # 2 warm-up rounds, then 3 timed ones, each round a then b
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    assert all(t >= 0 for v in times.values() for t in v)


def _evaluation(seconds):
    return {"test": {"attacks": {"natural": {"seconds": seconds}, "pgd20": {"seconds": 10 * seconds}}}}


def test_a_runs_recorded_work_counts_training_validation_and_each_distinct_final_evaluation():
    history = [{"epoch": 1, "train_seconds": 100.0, "validation_seconds": 5.0},
               {"epoch": 2, "train_seconds": 100.0, "validation_seconds": 5.0}]
    best_is_last = {"student": {"history": history, "last": _evaluation(1.0), "best": {"epoch": 2, **_evaluation(1.0)}}}
    assert results.measured_seconds(best_is_last) == pytest.approx(210 + 11)
    best_earlier = {"student": {**best_is_last["student"], "best": {"epoch": 1, **_evaluation(2.0)}}}
    assert results.measured_seconds(best_earlier) == pytest.approx(210 + 11 + 22)
    assert results.validation_timed(best_is_last)
    older = {"student": {"history": [{"epoch": 1, "train_seconds": 100.0}], "last": _evaluation(1.0)}}
    assert not results.validation_timed(older) and results.measured_seconds(older) == pytest.approx(111)
    # a run trained by one process is taken at its wall time; one whose recorded wall covers less than its recorded
    # work (its last process alone, written before earlier epochs were added) by that work; a resumed one is named
    assert results.run_seconds({**best_is_last, "wall_seconds": 300.0}) == (300.0, False)
    assert results.run_seconds({**best_is_last, "wall_seconds": 12.0}) == (pytest.approx(221), True)
    resumed = {"student": {**best_is_last["student"], "resumed_at_epoch": 2}, "wall_seconds": 240.0}
    assert results.run_seconds(resumed) == (240.0, True)


def _point(folder, natural, step):
    return {"folder": folder, "settings": {"width": 32, "epochs": 14, "attack_steps": 3, "alpha_ratio": 0.5, "lr": 0.1},
            "natural": [natural] * 3, "pgd20": [27.0] * 3, "val_natural": [natural + 1] * 3, "val_robust": [28.0] * 3,
            "pgd20_step": [step], "runs": 3}


def test_an_earlier_point_whose_test_attack_took_the_training_step_is_named():
    points = [_point("results/cpu-old", 48.0, 0.5), _point("results/cpu-new", 54.0, 0.25)]
    text = "\n".join(build.earlier_markdown(points, build.TARGETS))
    assert "The test PGD-20 of `results/cpu-old` took the training step (0.5 eps)" in text
    assert "`results/cpu-new` took" not in text and "| `results/cpu-new` |" in text
    assert "took the training step" not in "\n".join(build.earlier_markdown([_point("results/cpu-new", 54.0, 0.25)],
                                                                            build.TARGETS))


def test_a_students_time_is_its_own_work_and_each_machine_is_named():
    """A frozen teacher's test evaluation, which the student's result repeats, is not the student's work; runs timed
    on different machines are reported per machine."""
    attack = lambda s: {"test": {"attacks": {"natural": {"seconds": s}}}}
    student = {"history": [{"train_seconds": 10.0, "validation_seconds": 2.0}]}
    res = {"wall_seconds": 16.0, "teacher": {"kind": "clean", "checkpoint": "../t/last.pt", **attack(100.0)},
           "student": {**student, "last": attack(3.0)}}
    assert results.measured_seconds(res) == pytest.approx(15.0)
    assert results.run_seconds(res) == (16.0, False)
    own = {"teacher": {"history": [{"train_seconds": 5.0}], **attack(4.0)}, "student": {"last": attack(1.0)}}
    assert results.measured_seconds(own) == pytest.approx(10.0)  # a teacher trained in the run counts
    runs = {"a": {"machine": "X", "precision": "fp32"}, "b": {"machine": "X", "precision": "bf16"}, "c": {}}
    ms = build.machines_of(runs, {"a": 100.0, "b": 300.0, "c": 50.0})
    assert ms["X"] == {"runs": 2, "median_seconds": 200.0, "seconds": 400.0, "precision": "bf16 autocast and float32"}
    assert ms[build.UNRECORDED]["runs"] == 1 and ms[build.UNRECORDED]["precision"] == ""
    # the median target per machine that recorded itself, where there is more than one
    runs["d"] = {"machine": "Y", "precision": "fp32"}
    rows = build.machine_rows({"machines": build.machines_of(runs, {"a": 100.0, "b": 300.0, "c": 50.0, "d": 900.0}),
                               "targets": {"median_run_s": 600.0}})
    assert rows == ["| median run on X, trained in bf16 autocast and float32 (2 runs) | 200 s | <= 600 s | met |",
                    "| median run on Y, trained in float32 (1 run) | 900 s | <= 600 s | **not met** |"]
    assert build.machine_rows({"machines": ms, "targets": {"median_run_s": 600.0}}) == []  # one machine recorded


def test_each_run_counts_once_in_the_first_part_that_names_it_and_the_rest_is_the_book():
    seconds = {"pgdat": 100.0, "cktat": 200.0, "cktat_epochs32": 300.0, "pgdat_seed1": 50.0, "trades": 10.0,
               "cktat_width4": 20.0, "pgdat_width16": 4.0}  # chapter 06's narrow students: the readings' part
    evals = {"CKTAT_epochs32_aa.json": 7.0, "cktat_aa.json": 5.0, "teacher_clean.json": 3.0, "pgdat_eval.json": 1.0}
    parts, rest = build.parts_of(seconds, evals)
    verdicts, ladder = parts.values()
    assert verdicts["runs"] == ["cktat", "pgdat_seed1"] and verdicts["eval_seconds"] == 8.0
    assert ladder["runs"] == ["cktat_epochs32", "cktat_width4"] and ladder["eval_seconds"] == 7.0  # not the verdicts'
    assert rest == 100.0 + 10.0 + 1.0 + 4.0
    total = sum(seconds.values()) + sum(evals.values())
    assert rest + sum(p["run_seconds"] + p["eval_seconds"] for p in parts.values()) == total


def _chapter(root, name, fingerprint, seconds=3.0, outputs=()):
    import json
    for folder in ("notebooks", os.path.join("book", "chapters")):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    with open(os.path.join(root, "notebooks", name + ".ipynb"), "w") as fh:
        json.dump({"cells": [], "metadata": {}}, fh)
    if fingerprint is not None:
        cells = [{"cell_type": "code", "source": "", "outputs": list(outputs)}]
        with open(os.path.join(root, "book", "chapters", name + ".ipynb"), "w") as fh:
            json.dump({"cells": cells, "metadata": {"cktat": {"fingerprint": fingerprint, "seconds": seconds}}}, fh)


def test_a_page_waiting_for_a_run_counts_as_pending_though_its_fingerprint_names_the_cpu_profile(tmp_path):
    """`cktat reproduce` writes a waiting page with the `cpu` profile and a `pending` field: the build is not finished
    while such a page stands, and the summary names the run it waits for."""
    cpu = {"parameters": {"profile": "cpu", "overrides": {}}}
    _chapter(str(tmp_path), "02_cktat", cpu, seconds=6.0)
    _chapter(str(tmp_path), "06_capacity", {**cpu, "pending": {"path": "runs/pgdat_width8", "state": None}})
    _chapter(str(tmp_path), "07_ablations", {"parameters": {"profile": "multiview"}})
    _chapter(str(tmp_path), "10_budget", None)
    _chapter(str(tmp_path), "01_multiview", {"parameters": {"profile": "multiview"}})  # a smoke chapter, not counted
    _chapter(str(tmp_path), "11_library", cpu, seconds=4.0,  # shows the runs landed so far
             outputs=[{"output_type": "stream", "text": "| TRADES | natural | 56.0 | not trained yet |"}])
    count = "0 have a reading whose run the build has not trained yet, and 0 have no reading."  # words, not a verdict
    _chapter(str(tmp_path), "99_scorecard", cpu, outputs=[{"output_type": "display_data",
                                                           "data": {"text/markdown": [count]}}])
    assert build.marks_not_trained({"cells": [{"outputs": [{"data": {"text/markdown": "Tested by x: **not trained "
                                                                                     "yet**; the build's"}}]}]})
    executed, waiting = build.chapter_states(str(tmp_path))
    assert executed == {"02_cktat": 6.0, "11_library": 4.0, "99_scorecard": 3.0}
    assert waiting == {"06_capacity": "runs/pgdat_width8", "07_ablations": None, "10_budget": None,
                       "11_library": build.LANDED_SO_FAR}
    text = build.pending_sentence(waiting)
    assert text.startswith("**The build is not finished.**")
    assert "06_capacity (its page waits for `runs/pgdat_width8`)" in text and "10_budget (not executed" in text
    assert "Executed on the runs landed so far, marking the others not trained yet: 11_library." in text
    assert build.pending_sentence({}) == ""


def test_the_cost_page_counts_the_ladder_against_the_budget_the_readings_are_priced_against():
    from cktat_book import budget

    assert build.PARTS["the budget ladder and the readings' runs"]["hours"] == budget.LADDER_BUDGET_HOURS


def test_an_epoch_during_which_the_process_was_stopped_counts_at_its_runs_median():
    epoch = lambda s: {"train_seconds": s, "validation_seconds": 0.0}
    res = {"wall_seconds": 2000.0, "student": {"history": [epoch(50.0)] * 5 + [epoch(1400.0)] + [epoch(50.0)] * 4}}
    assert results.stopped_excess(res) == (pytest.approx(1350.0), 1)
    assert results.run_seconds(res) == (pytest.approx(500.0), True)  # ten epochs of 50 s; the wall clock ran on
    steady = {"wall_seconds": 520.0, "student": {"history": [epoch(50.0)] * 10}}
    assert results.stopped_excess(steady) == (0.0, 0) and results.run_seconds(steady) == (520.0, False)

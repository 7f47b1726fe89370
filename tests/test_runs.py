"""A finished run is re-read, never retrained (re-evaluated only for another test attack); one folder per phase;
float32 final evaluation."""

import json
import math
import os
import shutil
import time

import pytest
import torch

from cktat_book import mechanism, noise, report
from cktat_core import train as train_mod

from cktat_core.config import from_profile
from cktat_core.errors import CheckpointError


def _boom(*a, **k):
    raise AssertionError("loaded, trained or evaluated again")


def test_a_finished_run_is_returned_as_saved(tiny, tmp_path, monkeypatch):
    cfg = from_profile("smoke", {**tiny, "method": "cktat"})
    first = train_mod.run(cfg, str(tmp_path / "r"))
    assert first["schema"] == train_mod.RESULT_SCHEMA and "reused" not in first
    assert first["teacher"]["checkpoint"] == os.path.join("teacher", "last.pt")
    assert first["student"]["checkpoints"] == {"last": os.path.join("student", "last.pt"),
                                               "best": os.path.join("student", "best.pt")}
    for name in ("load_splits", "batches", "final_evaluation", "train_phase"):
        monkeypatch.setattr(train_mod, name, _boom)
    again = train_mod.run(cfg, str(tmp_path / "r"))
    assert again["reused"] is True and again["student"]["last"] == first["student"]["last"]
    # moved elsewhere, still the same run
    shutil.move(str(tmp_path / "r"), str(tmp_path / "moved"))
    assert train_mod.run(cfg, str(tmp_path / "moved"))["student"]["last"] == first["student"]["last"]


def test_other_settings_are_not_taken_for_a_finished_run(tiny, tmp_path, monkeypatch):
    cfg = from_profile("smoke", {**tiny, "method": "pgdat"})
    first = train_mod.run(cfg, str(tmp_path))
    assert os.path.isfile(tmp_path / "student" / "last.pt") and not os.path.exists(tmp_path / "model")
    # another test attack: the training is re-read from its checkpoint, only the evaluation is new
    monkeypatch.setattr(train_mod, "batches", _boom)
    more = train_mod.run(cfg.replace(eval_steps=4), str(tmp_path))
    assert "pgd4" in more["student"]["last"]["test"]["attacks"] and "reused" not in more
    assert more["student"]["history"] == first["student"]["history"]
    # a setting of another method (beta is TRADES's, not PGD-AT's): the same run, re-read as it is
    assert train_mod.run(cfg.replace(beta=1.0, eval_steps=4), str(tmp_path))["reused"] is True
    # another training setting: refused, the finished checkpoint is left as it is
    before = (tmp_path / "student" / "last.pt").read_bytes()
    with pytest.raises(CheckpointError):
        train_mod.run(cfg.replace(lr=2 * cfg.lr), str(tmp_path))
    assert (tmp_path / "student" / "last.pt").read_bytes() == before


def test_the_test_attack_steps_by_eps_over_four_and_an_older_evaluation_is_run_again(tiny, tmp_path, monkeypatch):
    """The reported PGD steps by eps/4 (SPEC 5) whatever the training step; a result whose PGD took the training
    step (written before the test attack had a step of its own) keeps its training but is evaluated again."""
    cfg = from_profile("smoke", {**tiny, "method": "pgdat", "alpha_ratio": 0.5})
    first = train_mod.run(cfg, str(tmp_path))
    name = f"pgd{first['config']['eval_steps']}"
    spec = first["student"]["last"]["test"]["attacks"][name]["spec"]
    assert spec["alpha"] == pytest.approx(spec["eps"] / 4) and first["config"]["alpha"] == pytest.approx(spec["eps"] / 2)
    assert all(h["validation_seconds"] > 0 for h in first["student"]["history"])
    # the same result and evaluation caches as an older library wrote them: the test PGD at the training step, no
    # eval_alpha_ratio recorded, the caches keyed by the training step
    for path in [tmp_path / "result.json", *(tmp_path / "student").glob("*.final_eval.json")]:
        old = json.loads(path.read_text())
        (old.get("settings") or {}).pop("eval_alpha_ratio", None)
        if "key" in old:
            old["key"]["alpha"] = old["key"].pop("eval_alpha_ratio") * 2 * spec["eps"]
        for table in (t for t in train_mod._attack_tables(old) if name in t):
            table[name]["spec"]["alpha"] = table[name]["spec"]["eps"] / 2
        path.write_text(json.dumps(old))
    monkeypatch.setattr(train_mod, "batches", _boom)
    t0 = time.perf_counter()
    again = train_mod.run(cfg, str(tmp_path))
    elapsed = time.perf_counter() - t0
    assert "reused" not in again and again["student"]["history"] == first["student"]["history"]
    assert again["student"]["last"]["test"]["attacks"][name]["spec"]["alpha"] == pytest.approx(spec["eps"] / 4)
    # timed as the training it re-read plus its evaluation, and said to be resumed at its last epoch
    epochs = len(first["student"]["history"])
    assert first["student"]["resumed_at_epoch"] == 0 and again["student"]["resumed_at_epoch"] == epochs
    recorded = sum(h["train_seconds"] + h["validation_seconds"] for h in first["student"]["history"])
    assert recorded < again["wall_seconds"] <= recorded + elapsed
    monkeypatch.setattr(train_mod, "final_evaluation", _boom)
    assert train_mod.run(cfg, str(tmp_path))["reused"] is True


def test_a_checkpoint_is_evaluated_once(tiny, tmp_path, monkeypatch):
    """Two runs taught by the same teacher checkpoint evaluate that teacher once (stored beside it)."""
    cfg = from_profile("smoke", {**tiny, "method": "cktat", "epochs": 1})
    train_mod.run(cfg, str(tmp_path / "a"))
    teacher = str(tmp_path / "a" / "teacher" / "last.pt")
    assert os.path.isfile(str(tmp_path / "a" / "teacher" / "last.final_eval.json"))
    calls = []
    real = train_mod.final_evaluation
    monkeypatch.setattr(train_mod, "final_evaluation", lambda *a, **k: calls.append(1) or real(*a, **k))
    b = train_mod.run(cfg.replace(teacher_checkpoint=teacher, tau=2.0), str(tmp_path / "b"))
    assert len(calls) == 1  # the student's one epoch, last and best at once; the teacher's numbers are re-read
    assert b["teacher"]["test"] == json.loads((tmp_path / "a" / "result.json").read_text())["teacher"]["test"]


def test_a_legacy_model_folder_is_renamed_student(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "metrics.jsonl").write_text("{}\n")
    assert train_mod.student_dir(str(tmp_path)) == str(tmp_path / "student")
    assert (tmp_path / "student" / "metrics.jsonl").exists() and not (tmp_path / "model").exists()


def test_frozen_teacher_is_decided_in_one_place():
    from cktat_core.methods import METHODS, frozen_teacher

    cfg = from_profile("smoke", {"method": "ard"})
    assert frozen_teacher(METHODS["ard"], cfg) == "robust"
    assert frozen_teacher(METHODS["ard"], cfg.replace(teacher_kind="clean")) == "clean"
    assert frozen_teacher(METHODS["cktat"], cfg) == "clean"
    assert frozen_teacher(METHODS["pgdat"], cfg) is None
    assert frozen_teacher(METHODS["lbgat"], cfg) is None  # co-trained: no phase 1


class _RecordsAutocast(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.seen = model, set()

    def forward(self, x):
        self.seen.add((torch.is_autocast_enabled("cpu"), torch.is_autocast_enabled("cuda")))
        out = self.model(x)
        self.seen.add(out.dtype)
        return out


def test_final_evaluation_runs_in_float32_on_a_cuda_configured_run(trained_cnn, monkeypatch):
    """amp=True on a CUDA device: the final evaluation neither asks for the training precision nor runs under the
    autocast of a caller (here a CPU bf16 autocast stands for CUDA's)."""
    model, splits = trained_cnn
    splits = train_mod.Splits(splits.train, splits.val, splits.test.head(64), {})
    cfg = train_mod.resolve(from_profile("smoke", {"method": "pgdat", "amp": True, "eval_steps": 2}))
    monkeypatch.setattr(train_mod, "precision_of", _boom)  # the training precision is never asked for
    probe = _RecordsAutocast(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        train_mod.final_evaluation(probe, splits, cfg, torch.device("cuda"))
    assert probe.seen == {(False, False), torch.float32}


def test_verdicts_decide_from_sampling_noise():
    # 10 classes, 1000 probe images: chance 10%, two standard errors about 1.9 points
    assert mechanism.above_chance(12.5, 1000, 10) and not mechanism.above_chance(11.5, 1000, 10)
    assert not mechanism.above_chance(12.5, 100, 10)  # the same accuracy on 100 images is within noise
    assert noise.not_below(70.0, 72.0, 1000) and not noise.not_below(60.0, 72.0, 1000)
    hist = [{"epoch": e + 1, "val_pgd5": v, "val_natural": n} for e, (v, n) in
            enumerate([(4, 50), (78, 90), (1, 20), (79, 91)])]
    assert mechanism.collapsed_epochs(hist, "val_pgd5") == [3]  # epoch 1 is the climb, not a collapse
    assert mechanism.collapsed_epochs(hist, "val_natural") == [3]


def _ev(test=None, n=1000, **probes):
    ev = {"test": {"n": n, "attacks": {k: {"accuracy": v} for k, v in (test or {}).items()}}}
    for name, accs in probes.items():
        ev[name] = {"n": n, "attacks": {k: {"accuracy": v} for k, v in accs.items()}}
    return ev


def test_fair_test_premises():
    f2_only = _ev({"natural": 95.0, "pgd20": 80.0})
    clean = _ev({"natural": 99.0, "pgd20": 2.0}, probe_f2={"natural": 99.0, "pgd20": 0.0})
    forgets = _ev({"natural": 90.0, "pgd20": 80.0}, probe_f2={"natural": 60.0, "pgd20": 10.0})
    keeps = _ev({"natural": 90.0, "pgd20": 80.0}, probe_f2={"natural": 98.5, "pgd20": 79.0})
    t = mechanism.fair_test(f2_only, clean, forgets, "pgd20", 10)
    assert t["a"] and t["b"] and t["c"] and t["pgdat_probe_robust"] == 10.0
    assert not mechanism.fair_test(f2_only, clean, keeps, "pgd20", 10)["c"]  # within noise of both: not "less"
    at_chance = _ev({"natural": 11.0, "pgd20": 10.5})
    assert not mechanism.fair_test(at_chance, clean, forgets, "pgd20", 10)["a"]


def test_coefficient_movement_from_the_patterns():
    import dataclasses

    from cktat_core.data import MULTIVIEW, coefficient_movement

    f1, f2 = coefficient_movement()
    # an L-inf attack moves a coefficient by about eps * sqrt(2/pi) / pixel RMS (random patterns): dimmer moves more
    for row in (f1, f2):
        assert row["move"] == pytest.approx(MULTIVIEW.eps_centred * (2 / math.pi) ** 0.5 / row["pixel_rms"], rel=0.15)
    assert f2["move"] > f1["move"] > 0 and f1["margin"] > f2["margin"]
    old = coefficient_movement(dataclasses.replace(MULTIVIEW, amp2=0.2, eps_centred=0.1))[1]
    assert old["move"] == pytest.approx(0.4, abs=0.02) and old["margin"] < 0  # the budget could erase feature 2


def test_feature_kept_compares_with_the_teacher_and_with_chance():
    teacher = _ev(probe_f2={"natural": 99.8})
    assert mechanism.feature_kept(_ev(probe_f2={"natural": 99.5}), teacher, "probe_f2", 10) == "kept"
    assert mechanism.feature_kept(_ev(probe_f2={"natural": 23.1}), teacher, "probe_f2", 10) == "partly"
    assert mechanism.feature_kept(_ev(probe_f2={"natural": 10.5}), teacher, "probe_f2", 10) == "lost"


def test_the_runs_say_which_training_of_their_teacher_they_learned_from():
    """Runs that learned from two trainings of the teacher's recipe (a clone trained it again) are named with each
    training's accuracy, compared as a pair on the same images; runs of one training say nothing."""
    def run(bits, teacher="teacher_clean"):
        acc = 100.0 * bits.count("1") / len(bits)
        return {"teacher": {"checkpoint": f"../{teacher}/teacher/last.pt",
                            "test": {"attacks": {"natural": {"accuracy": acc, "total": len(bits), "bits": bits}}}}}

    a, close, far = "1" * 700 + "0" * 300, "1" * 698 + "0" * 2 + "1" * 2 + "0" * 298, "1" * 400 + "0" * 600
    assert report.teacher_trainings({"x": run(a), "y": run(a), "pgdat": {"teacher": None}}) == ""
    assert report.teacher_trainings({"x": run(a), "y": run(far, "pgdat")}) == ""  # two teachers, one training each
    text = report.teacher_trainings({"x": run(a), "y": run(close), "z": run(a)}, shown={"attacks": run(close)[
        "teacher"]["test"]["attacks"]})
    assert "2 trainings of the recipe of `teacher_clean`" in text and "within noise" in text
    assert "the 70.00% (1) training taught x, z; the 70.00% (2) training taught y" in text
    assert "Against the 70.00% (2) training" in text and "shows is the 70.00% (2) training" in text
    text = report.teacher_trainings({"x": run(a), "y": run(far)}, shown={"attacks": run("0" * 1000)[
        "teacher"]["test"]["attacks"]})
    assert "beyond noise" in text and "-30.00 points" in text and "(0.00%) taught none of these runs" in text
    # the names do not depend on the order of the runs: a page that lists them the other way names them the same
    again = report.teacher_trainings({"y": run(far), "x": run(a)})
    assert "the 70.00% training taught x; the 40.00% training taught y" in again


def test_a_chapter_that_may_not_train_reads_finished_runs_and_names_the_first_missing_one(tmp_path, monkeypatch):
    """`Chapter.train` False (`cktat reproduce --no-train`): the committed smoke runs are re-read as they are, and a
    run, a teacher or a checkpoint that is not finished stops the chapter with `RunPending` naming it, before any
    training starts."""
    from cktat_book.chapter import TRAIN_ENV, WOULD_TRAIN_ENV, Chapter, RunPending

    monkeypatch.setattr(train_mod, "train_phase", lambda *a, **k: pytest.fail("a chapter that may not train trained"))
    committed = Chapter("smoke", progress=False, train=False)
    assert committed.variant("pgdat")["name"] == "pgdat"
    assert committed.teacher()["kind"] == "clean"
    with pytest.raises(RunPending, match=r"^runs/pgdat_epochs1 is not trained"):
        committed.variant("pgdat", epochs=1)
    shutil.copytree(os.path.join(committed.runs, "pgdat"), tmp_path / "runs" / "pgdat",
                    ignore=shutil.ignore_patterns("*.pt"))  # as a clone holds it: the result, not the weights
    copy = Chapter("smoke", results=str(tmp_path), progress=False, train=False)
    assert copy.compare(["pgdat"])["rows"][0]["method"] == "pgdat"
    with pytest.raises(RunPending, match=r"^runs/teacher_clean is not trained"):  # a CKTAT run asks its teacher first
        copy.variant("cktat")
    with pytest.raises(RunPending, match=r"^runs/teacher_clean is not trained"):
        copy.compare(["pgdat", "cktat"])
    with pytest.raises(RunPending, match=r"^runs/other is not trained"):
        copy.run("other", "pgdat")
    last = copy.variant("pgdat")["student"]["checkpoints"]["last"]
    with pytest.raises(RunPending, match=r"^runs/pgdat/student/last.pt is not here"):
        copy.weights(os.path.join(copy.runs, "pgdat", last))
    note = tmp_path / "would_train.txt"  # `Chapter.landed`: a run not finished is left out and noted, not pending
    monkeypatch.setenv(WOULD_TRAIN_ENV, str(note))
    assert copy.landed("pgdat")["name"] == "pgdat" and not note.exists()
    assert copy.landed("pgdat", epochs=1) is None and copy.landed("trades") is None
    assert note.read_text().splitlines() == ["runs/pgdat_epochs1", "runs/trades"]
    monkeypatch.setenv(TRAIN_ENV, "0")
    assert Chapter("smoke").train is False and committed.sibling("cpu").train is False
    monkeypatch.setenv(TRAIN_ENV, "1")
    assert Chapter("smoke").train is True

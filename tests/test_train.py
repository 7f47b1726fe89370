"""The two-phase trainer: initialisation, resume equivalence, checkpoints, results."""

import json
import os

import pytest
import torch

import cktat_core.train as train_mod
from cktat_core import checkpoint as ckpt
from cktat_core.config import PROFILES, Config, from_profile
from cktat_core.errors import CheckpointError
from cktat_core.methods import METHODS


def _cfg(tiny, **kw):
    return from_profile("smoke", {**tiny, **kw})


def _same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_student_starts_as_a_copy_of_the_teacher(tiny, tmp_path):
    # with zero adversarial epochs the student is exactly the teacher
    res = train_mod.run(_cfg(tiny, epochs=0), str(tmp_path))
    assert res["student"]["initialised_from_teacher"] is True
    s_eval, t_eval = res["student"]["last"]["test"]["attacks"], res["teacher"]["test"]["attacks"]
    assert s_eval["natural"]["correct"] == t_eval["natural"]["correct"]


def test_init_copies_weights_and_ablation_does_not(tiny, tmp_path, monkeypatch):
    seen = {}
    real = train_mod.train_phase

    def spy(model, method, *a, **k):
        if method.name == "cktat":
            seen["student"] = {k_: v.clone() for k_, v in model.state_dict().items()}
        return real(model, method, *a, **k)

    monkeypatch.setattr(train_mod, "train_phase", spy)
    train_mod.run(_cfg(tiny, epochs=1), str(tmp_path / "a"))
    teacher = ckpt.load(str(tmp_path / "a" / "teacher" / "last.pt"))["model"]
    assert _same_state(seen["student"], teacher)
    train_mod.run(_cfg(tiny, epochs=1, init_from_teacher=False), str(tmp_path / "b"))
    assert not torch.equal(seen["student"]["linear.weight"], teacher["linear.weight"])


@pytest.mark.parametrize("schedule", ["piecewise", "onecycle"])
def test_resume_after_interruption_matches_uninterrupted_run(tiny, tmp_path, monkeypatch, schedule):
    cfg = _cfg(tiny, epochs=3, teacher_epochs=2, val_size=100, lr_schedule=schedule)
    full = train_mod.run(cfg, str(tmp_path / "full"))

    calls = {"n": 0}
    real_eval = train_mod.evaluate

    def crash_in_third_student_epoch(model, data, *a, **k):
        if len(data) == 100:  # a validation pass, at the end of an epoch
            calls["n"] += 1
            if calls["n"] == 2 + 3:  # 2 teacher epochs, student epochs 1 and 2 finish; epoch 3 is cut off
                raise KeyboardInterrupt
        return real_eval(model, data, *a, **k)

    monkeypatch.setattr(train_mod, "evaluate", crash_in_third_student_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_mod.run(cfg, str(tmp_path / "cut"))
    assert ckpt.load(str(tmp_path / "cut" / "student" / "last.pt"))["epoch"] == 2
    assert not (tmp_path / "cut" / "result.json").exists()
    monkeypatch.setattr(train_mod, "evaluate", real_eval)
    resumed = train_mod.run(cfg, str(tmp_path / "cut"))

    a = ckpt.load(str(tmp_path / "full" / "student" / "last.pt"))
    b = ckpt.load(str(tmp_path / "cut" / "student" / "last.pt"))
    assert _same_state(a["model"], b["model"])
    assert _same_state(a["optimizer"]["state"][0], b["optimizer"]["state"][0])
    strip = lambda h: [{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in h]
    assert strip(full["student"]["history"]) == strip(resumed["student"]["history"])
    def test_metrics(r):
        return {a: {k: v for k, v in d.items() if k != "seconds"} for a, d in r["student"]["last"]["test"]["attacks"].items()}
    assert test_metrics(full) == test_metrics(resumed)  # natural and PGD (its random start included)
    lines = (tmp_path / "cut" / "student" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["epoch"] for l in lines] == [1, 2, 3]


def test_rerun_of_a_finished_run_trains_nothing(tiny, tmp_path, monkeypatch):
    cfg = _cfg(tiny, epochs=1, teacher_epochs=1)
    train_mod.run(cfg, str(tmp_path))
    before = (tmp_path / "student" / "last.pt").read_bytes()

    def no_training(*a, **k):
        raise AssertionError("a finished phase must not train again")

    monkeypatch.setattr(train_mod, "batches", no_training)
    res = train_mod.run(cfg, str(tmp_path))
    assert (tmp_path / "student" / "last.pt").read_bytes() == before
    assert res["student"]["history"][-1]["epoch"] == 1


def test_changed_settings_refuse_to_resume_and_keep_the_checkpoint(tiny, tmp_path):
    train_mod.run(_cfg(tiny, epochs=1, teacher_epochs=1), str(tmp_path))
    before = (tmp_path / "student" / "last.pt").read_bytes()
    with pytest.raises(CheckpointError) as e:
        train_mod.run(_cfg(tiny, epochs=1, teacher_epochs=1, beta=3.0), str(tmp_path))
    assert "beta" in str(e.value)
    assert (tmp_path / "student" / "last.pt").read_bytes() == before


def test_a_finished_teacher_is_read_again_only_under_its_own_settings(tiny, tmp_path):
    """A teacher run is re-read (nothing trained) under the settings it was trained with; under other teacher
    settings its result is not taken for theirs."""
    cfg = _cfg(tiny, teacher_epochs=1)
    first = train_mod.teacher_run(cfg, "clean", str(tmp_path / "t"))
    again = train_mod.teacher_run(cfg, "clean", str(tmp_path / "t"))
    assert again["reused"] and again["history"] == first["history"]
    finished = lambda **kw: train_mod.read_finished(
        str(tmp_path / "t"), train_mod.teacher_settings(train_mod.resolve(cfg.replace(**kw)), "clean"))
    assert finished(teacher_epochs=2) is None and finished(teacher_lr=0.2) is None and finished(seed=1) is None
    assert finished(tau=3.0, epochs=5)["history"] == first["history"]  # the student's settings are not the teacher's


def test_looking_for_a_run_that_is_not_there_opens_its_result(tmp_path, monkeypatch):
    """`read_finished` opens a run's result.json rather than asking whether it is there, so a process that records the
    files it opens (the book's staleness check, `cktat_book.reproduce`) sees a run it looked for and did not find."""
    opened = []

    def spy(path, *args, **kwargs):
        opened.append(str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(train_mod, "open", spy, raising=False)
    assert train_mod.read_finished(str(tmp_path / "runs" / "late"), {"epochs": 1}) is None
    assert opened == [str(tmp_path / "runs" / "late" / "result.json")]


def test_teacher_is_reused_across_student_settings(tiny, tmp_path):
    """The teacher's checkpoint depends on teacher settings only: a tau sweep trains it once."""
    train_mod.run(_cfg(tiny, epochs=1, teacher_epochs=1), str(tmp_path / "a"))
    t = str(tmp_path / "a" / "teacher" / "last.pt")
    res = train_mod.run(_cfg(tiny, epochs=1, teacher_checkpoint=t, tau=3.0), str(tmp_path / "b"))
    assert not (tmp_path / "b" / "teacher").exists()
    assert os.path.samefile(tmp_path / "b" / res["teacher"]["checkpoint"], t)  # stored relative to the run


def test_result_json_has_what_the_book_reads(tiny, tmp_path):
    res = train_mod.run(_cfg(tiny, epochs=2, teacher_epochs=1), str(tmp_path))
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk["method"] == "cktat" and on_disk["seed"] == 0
    assert {"torch", "python", "cktat_core"} <= set(on_disk["versions"])
    assert on_disk["wall_seconds"] > 0
    assert on_disk["machine"].endswith(" cores") and on_disk["machine"].split(", ")[0]  # what timed it
    from cktat_core.runtime import cpu_has_bf16  # the arithmetic it trained in: bf16 autocast where the CPU has it
    amp = _cfg(tiny).amp
    assert on_disk["precision"] == ("bf16" if amp and on_disk["device"] == "cpu" and cpu_has_bf16() else "fp32")
    assert {h["precision"] for h in on_disk["student"]["history"]} == {on_disk["precision"]}  # recorded per epoch
    assert train_mod.trained_in([{"precision": "bf16"}], [{"precision": "fp32"}]) == "mixed"  # resumed elsewhere
    assert train_mod.trained_in([{"precision": "fp32"}, {}]) is None  # an epoch from before epochs recorded it
    for who in (on_disk["teacher"], on_disk["student"]["last"], on_disk["student"]["best"]):
        attacks = who["test"]["attacks"]
        assert {"natural", "pgd3"} <= set(attacks)
        assert 0 <= attacks["pgd3"]["accuracy"] <= attacks["natural"]["accuracy"] <= 100
        assert attacks["natural"]["total"] == 128
        assert "single_view" in attacks["natural"]["groups"]
        assert "probe_f2" in who
        assert set(who["probe_f1"]["attacks"]) == {"natural"}  # feature 1's probes: natural accuracy only
    # the feature-2 probes under attack too, for the last epoch (and the teacher); the best epoch's naturally
    assert set(on_disk["student"]["last"]["probe_f2"]["attacks"]) == {"natural", "pgd3"}
    assert set(on_disk["teacher"]["probe_f2"]["attacks"]) == {"natural", "pgd3"}
    assert set(on_disk["student"]["best"]["probe_f2"]["attacks"]) == {"natural"}
    assert 1 <= on_disk["student"]["best"]["epoch"] <= 2
    assert res["config"]["tau"] == PROFILES["smoke"]["tau"] != Config.tau  # the smoke profile's temperature, not the default


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    path = str(tmp_path / "x.pt")
    ckpt.save_atomic({"a": torch.ones(2)}, path)

    def broken_save(obj, fh):
        fh.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(RuntimeError):
        ckpt.save_atomic({"a": torch.zeros(2)}, path)
    monkeypatch.undo()
    assert torch.equal(ckpt.load(path)["a"], torch.ones(2))


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    p = tmp_path / "bad.pt"
    p.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError) as e:
        ckpt.load(str(p))
    assert "corrupt" in str(e.value)
    with pytest.raises(CheckpointError) as e:
        ckpt.load(str(tmp_path / "missing.pt"))
    assert "does not exist" in str(e.value)


class _Pickled:
    pass


def test_unreadable_checkpoints_say_why(tmp_path):
    whole = tmp_path / "whole.pt"
    torch.save({"a": torch.zeros(64)}, whole)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(whole.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated"):
        ckpt.load(str(truncated))
    objects = tmp_path / "objects.pt"
    torch.save({"a": _Pickled()}, objects)
    with pytest.raises(CheckpointError, match="weights_only=True refuses"):
        ckpt.load(str(objects))


def test_strict_loading_names_missing_and_unexpected_keys():
    from cktat_core.models import build_model

    m = build_model("resnet18")
    sd = dict(m.state_dict())
    sd.pop("linear.bias")
    sd["fc.weight"] = torch.zeros(10, 512)
    with pytest.raises(CheckpointError) as e:
        ckpt.load_state_strict(build_model("resnet18"), sd, "x.pt")
    assert "linear.bias" in str(e.value) and "fc.weight" in str(e.value)


def test_plain_and_wrapped_state_dicts_load(tmp_path):
    from cktat_core.models import build_model

    m = build_model("resnet18")
    torch.save({"state_dict": {"module." + k: v for k, v in m.state_dict().items()}}, tmp_path / "w.pt")
    loaded, info = ckpt.load_model(str(tmp_path / "w.pt"), "resnet18")
    assert info["model_name"] == "resnet18"
    assert _same_state(loaded.state_dict(), m.state_dict())
    with pytest.raises(CheckpointError) as e:
        ckpt.load_model(str(tmp_path / "w.pt"))
    assert "--model" in str(e.value)


def test_fields_added_later_do_not_orphan_finished_runs(tiny, tmp_path):
    """A checkpoint written before a config field existed resumes while the field keeps its default."""
    cfg = _cfg(tiny, epochs=1, teacher_epochs=1)
    train_mod.run(cfg, str(tmp_path))
    path = str(tmp_path / "student" / "last.pt")
    state = ckpt.load(path)
    fp = json.loads(state["fingerprint"])
    assert fp.pop("teacher_label") == "soft"  # pretend the run predates this field (of CKTAT, the run's method)
    state["fingerprint"] = json.dumps(fp, sort_keys=True)
    ckpt.save_atomic(state, path)
    train_mod.run(cfg, str(tmp_path))  # resumes (nothing left to train)
    with pytest.raises(CheckpointError) as e:
        train_mod.run(_cfg(tiny, epochs=1, teacher_epochs=1, teacher_label="onehot"), str(tmp_path))
    assert "teacher_label" in str(e.value)


def test_a_checkpoint_that_is_a_student_and_a_teacher_has_one_cached_evaluation():
    """PGD-AT's last epoch is also the robust teacher of the distillation runs: evaluated as either, the network is
    attacked the same way, so the cached evaluation's key is the same and is never rewritten; DUCAT's is its own."""
    assert train_mod._deployment(None) is None
    assert all(train_mod._deployment(METHODS[m]) is None for m in ("pgdat", "cktat", "trades", "ard", "raat"))
    assert train_mod._deployment(METHODS["ducat"]) == "ducat"


def test_a_teacher_is_evaluated_with_its_own_seed(tiny, tmp_path):
    """A student of another seed reads its teacher's cached test evaluation and leaves the file as it was."""
    train_mod.run(_cfg(tiny, epochs=1, teacher_epochs=1), str(tmp_path / "a"))
    t = tmp_path / "a" / "teacher" / "last.pt"
    cache = tmp_path / "a" / "teacher" / "last.final_eval.json"
    before = cache.read_bytes()
    res = train_mod.run(_cfg(tiny, epochs=1, teacher_checkpoint=str(t), seed=1), str(tmp_path / "b"))
    assert cache.read_bytes() == before
    assert res["teacher"]["test"] == json.loads(before)["evaluation"]["test"]
    assert train_mod.checkpoint_seed(str(t), 7) == 0


def test_learning_rate_schedules():
    """piecewise: x gamma from each milestone epoch on (SPEC 1); onecycle: a linear rise to the full rate over the
    warm-up, then a linear fall to zero at the last step."""
    from cktat_core.config import Config

    piece = Config(lr_milestones=(0.5, 0.75), lr_gamma=0.1)
    factors = [train_mod.lr_factor(piece, s, 8, 10) for s in range(80)]
    assert factors[:40] == [1.0] * 40 and factors[40:60] == [pytest.approx(0.1)] * 20
    assert factors[60:] == [pytest.approx(0.01)] * 20
    one = Config(lr_schedule="onecycle", warmup=0.25)
    f = [train_mod.lr_factor(one, s, 4, 25) for s in range(100)]
    assert f[0] == pytest.approx(1 / 25) and f[24] == pytest.approx(1.0) and max(f) == pytest.approx(1.0)
    assert all(a < b for a, b in zip(f[:24], f[1:25])) and all(a > b for a, b in zip(f[25:], f[26:]))
    assert f[25] == pytest.approx(1.0)  # the first step of the fall starts from the full rate
    assert f[-1] == pytest.approx(1 / 75)


def test_a_best_epoch_that_is_the_last_is_evaluated_once(tiny, tmp_path, monkeypatch):
    """One-cycle runs usually score best at their last epoch: the same weights, so the same numbers, without
    attacking the test set a second time."""
    calls = []
    real = train_mod.final_evaluation
    monkeypatch.setattr(train_mod, "final_evaluation", lambda *a, **k: calls.append(1) or real(*a, **k))
    res = train_mod.run(_cfg(tiny, method="pgdat", epochs=1, val_size=100), str(tmp_path / "r"))
    assert res["student"]["best"]["epoch"] == 1 == len(res["student"]["history"])
    assert len(calls) == 1
    assert res["student"]["best"]["test"] == res["student"]["last"]["test"]


def test_a_student_of_a_committed_teacher_without_its_checkpoint_trains_the_teacher_again(tiny, tmp_path):
    """A clone holds result.json files, not checkpoints: a student that needs a finished teacher's weights (or a
    finished run's, to start from) gets that run trained again from its recorded settings, not an error."""
    cfg = _cfg(tiny, method="pgdat")
    teacher = train_mod.teacher_run(cfg, "clean", str(tmp_path / "teacher_clean"))
    pgdat = train_mod.run(cfg, str(tmp_path / "pgdat"))
    pgdat_last = os.path.join(tmp_path, "pgdat", pgdat["student"]["checkpoints"]["last"])
    weights = {p: ckpt.load(p)["model"] for p in (teacher["checkpoint"], pgdat_last)}
    for p in weights:  # what a clone has: the results without the weights
        os.remove(p)
    student = train_mod.run(_cfg(tiny, teacher_checkpoint=teacher["checkpoint"]), str(tmp_path / "cktat"))
    bits = lambda ev: {k: a["bits"] for k, a in ev["test"]["attacks"].items()}
    assert bits(student["teacher"]) == bits(teacher["evaluation"])  # the same teacher, trained again
    assert _same_state(ckpt.load(teacher["checkpoint"])["model"], weights[teacher["checkpoint"]])
    started = train_mod.run(_cfg(tiny, method="pgdat", init_checkpoint=pgdat_last, seed=1), str(tmp_path / "from"))
    assert started["student"]["init_checkpoint"]
    assert _same_state(ckpt.load(pgdat_last)["model"], weights[pgdat_last])
    # a checkpoint no finished run claims stays a clear error
    with pytest.raises(CheckpointError):
        train_mod.run(_cfg(tiny, teacher_checkpoint=str(tmp_path / "nowhere" / "last.pt")), str(tmp_path / "x"))


def test_a_checkpoint_path_written_absolute_or_relative_is_the_same_setting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    absolute = json.dumps({"teacher_checkpoint": str(tmp_path / "runs" / "t" / "last.pt")})
    assert train_mod._changed_settings(absolute, json.dumps({"teacher_checkpoint": "runs/t/last.pt"})) == []
    other = train_mod._changed_settings(absolute, json.dumps({"teacher_checkpoint": "runs/u/last.pt"}))
    assert len(other) == 1 and other[0].startswith("teacher_checkpoint")
    assert train_mod._changed_settings(json.dumps({"beta": 6.0}), json.dumps({"beta": 1.0}))  # other fields as before

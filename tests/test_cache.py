"""Results computed from a run's weights, cached with their request (`cache`): read back in a clone without the
weights, computed again when the run that wrote the weights was trained again, never mixed up across a moved
results folder; and `restore_checkpoint`, which no longer takes a stopped retraining's checkpoint for the run's."""

import json
import os

import pytest

from cktat_core import cache
from cktat_core import checkpoint as ckpt
from cktat_core import train as train_mod
from cktat_core.config import from_profile


def _run_folder(tmp_path, losses=(2.0, 1.5), name="run"):
    """A finished run as a clone holds it: result.json (a student phase with its history), no checkpoint."""
    folder = tmp_path / name
    (folder / "student").mkdir(parents=True)
    history = [{"epoch": i + 1, "train_loss": v} for i, v in enumerate(losses)]
    (folder / "result.json").write_text(json.dumps({"student": {"history": history}}))
    return folder, str(folder / "student" / "last.pt")


def test_the_weights_are_named_by_the_training_their_run_records(tmp_path):
    folder, path = _run_folder(tmp_path)
    first = cache.weights_identity(path)
    assert first and cache.run_of_checkpoint(path)[0] == str(folder)
    assert cache.weights_identity(str(folder / "student" / "best.pt")) != first  # another file of the run
    (folder / "result.json").write_text(json.dumps({"student": {"history": [{"train_loss": 2.0},
                                                                             {"train_loss": 1.4}]}}))
    assert cache.weights_identity(path) != first  # trained again: another history
    assert cache.weights_identity(str(tmp_path / "elsewhere" / "m.pt")) is None  # no run claims it
    teacher = tmp_path / "teacher"
    (teacher / "teacher").mkdir(parents=True)
    (teacher / "result.json").write_text(json.dumps({"kind": "clean", "history": [{"train_loss": 1.0}]}))
    assert cache.weights_identity(str(teacher / "teacher" / "last.pt"))  # a stand-alone teacher run's own history


def test_a_cached_result_is_read_back_without_the_weights_and_computed_again_for_other_weights(tmp_path):
    folder, path = _run_folder(tmp_path)
    calls, restored = [], []
    compute = lambda p: calls.append(p) or {"value": len(calls)}
    out = str(tmp_path / "eval" / "x.json")
    restore = restored.append
    assert cache.computed(path, out, compute, restore, limit=5)["value"] == 1
    assert restored == [path] and len(calls) == 1  # computed: the weights were asked for first
    assert cache.computed(path, out, compute, restore, limit=5)["value"] == 1  # read back, no weights asked for
    assert len(calls) == 1 and restored == [path]
    assert cache.computed(path, out, compute, restore, limit=6)["value"] == 2  # another request
    (folder / "result.json").write_text(json.dumps({"student": {"history": [{"train_loss": 9.0}]}}))
    assert cache.computed(path, out, compute, restore, limit=6)["value"] == 3  # the run was trained again
    assert len(restored) == 3


def test_weights_named_by_their_run_are_the_same_in_a_moved_folder_and_in_a_clone(tmp_path):
    folder, path = _run_folder(tmp_path)
    open(path, "wb").write(b"weights")
    out = str(tmp_path / "eval" / "x.json")
    calls = []
    compute = lambda p: calls.append(p) or {"value": len(calls)}
    cache.computed(path, out, compute, limit=5)
    os.rename(folder, tmp_path / "moved")
    moved = str(tmp_path / "moved" / "student" / "last.pt")
    assert cache.computed(moved, out, compute, limit=5)["value"] == 1  # the same weights in a moved folder
    os.utime(moved, (1, 1))  # a clone's copy of a committed checkpoint: same bytes, its own time
    assert cache.computed(moved, out, compute, limit=5)["value"] == 1
    (tmp_path / "moved" / "result.json").write_text(json.dumps({"student": {"history": [{"train_loss": 0.5}]}}))
    assert cache.computed(moved, out, compute, limit=5)["value"] == 2  # its run was trained again


def test_a_request_without_a_run_still_compares_the_file(tmp_path):
    path = str(tmp_path / "m.pt")
    open(path, "wb").write(b"w")
    req = cache.request(path, limit=1)
    assert "weights" not in req and req["size"] == 1
    out = str(tmp_path / "r.json")
    cache.computed(path, out, lambda p: {"v": 1}, limit=1)
    assert cache.reused(out, cache.request(path, limit=1))["v"] == 1
    os.utime(path, (1, 1))  # no run names these weights: the file itself must be unchanged
    assert cache.reused(out, cache.request(path, limit=1)) is None
    os.remove(path)  # a clone: the file keys are not compared
    assert cache.reused(out, cache.request(path, limit=1))["v"] == 1


def test_a_checkpoint_left_by_a_stopped_retraining_is_trained_to_the_end(tiny, tmp_path, monkeypatch):
    """A retraining stopped part-way leaves its last epoch's checkpoint beside the committed result.json; it is
    not the run's weights, so `restore_checkpoint` trains again (resuming) instead of handing it out."""
    cfg = from_profile("smoke", {**tiny, "method": "pgdat"})
    res = train_mod.run(cfg, str(tmp_path / "pgdat"))
    folder = str(tmp_path / "pgdat")
    path = os.path.join(folder, res["student"]["checkpoints"]["last"])
    saved = json.load(open(os.path.join(folder, "result.json")))
    assert train_mod.written_by_run(path, folder, saved)
    calls = []
    monkeypatch.setattr(train_mod, "run", lambda c, out, retrain=False: calls.append((out, retrain)))
    train_mod.restore_checkpoint(path, cfg)
    assert calls == []  # the run's own weights: nothing to do
    state = ckpt.load(path)
    state["history"] = state["history"][:1]  # what a retraining stopped after its first epoch leaves
    ckpt.save_atomic(state, path)
    assert not train_mod.written_by_run(path, folder, saved)
    train_mod.restore_checkpoint(path, cfg)
    assert calls == [(folder, True)]

"""compare: one budget, the frozen teacher trained once, summaries with relative paths, finished runs re-read."""

import json
import os
import shutil

import pytest

from cktat_core import compare as compare_mod
from cktat_core import train as train_mod


def _no_training(monkeypatch):
    """Make any training or test evaluation fail loudly."""
    boom = lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained or evaluated again"))
    monkeypatch.setattr(train_mod, "batches", boom)
    monkeypatch.setattr(train_mod, "final_evaluation", boom)


def test_compare_trains_the_teacher_once_and_writes_the_summary(tiny, tmp_path, monkeypatch):
    over = {**tiny, "epochs": 1, "teacher_epochs": 1, "train_limit": 128, "test_limit": 32, "val_size": 64}
    summary = compare_mod.compare(["pgdat", "cktat", "ltd"], "smoke", str(tmp_path), over)
    assert [r["method"] for r in summary["rows"]] == ["pgdat", "cktat", "ltd"]
    assert list(summary["teachers"]) == ["clean"]
    teacher = summary["teachers"]["clean"]["checkpoint"]
    assert os.path.samefile(summary["rows"][1]["teacher_checkpoint"], teacher)
    assert os.path.samefile(summary["rows"][2]["teacher_checkpoint"], teacher)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["schema"] == "cktat-compare/2" and on_disk["attack"] == "pgd3"
    row = on_disk["rows"][0]["last"]
    assert {"natural", "pgd3", "natural single_view", "natural multi_view", "pgd3 single_view", "probe_f1",
            "probe_f2"} <= set(row)
    assert {"torch", "python", "cktat_core"} <= set(on_disk["versions"])
    # on disk the paths are relative to the summary's folder; load_summary resolves them to the same files
    assert on_disk["rows"][0]["run_dir"] == "pgdat"
    assert on_disk["rows"][0]["checkpoint"] == os.path.join("pgdat", "student", "last.pt")
    assert on_disk["teachers"]["clean"]["checkpoint"] == os.path.relpath(teacher, tmp_path)
    assert not os.path.isabs(on_disk["rows"][1]["teacher_checkpoint"])
    loaded = compare_mod.load_summary(str(tmp_path / "summary.json"))
    assert loaded["teachers"]["clean"]["checkpoint"] == teacher and os.path.isfile(teacher)
    assert [r["run_dir"] for r in loaded["rows"]] == [r["run_dir"] for r in summary["rows"]]
    assert all(os.path.isfile(r["checkpoint"]) for r in loaded["rows"])
    assert all(os.path.isfile(os.path.join(r["run_dir"], "result.json")) for r in loaded["rows"])
    table = compare_mod.format_summary(summary)
    assert all(name in table for name in ("PGDAT", "CKTAT", "LTD", "clean teacher"))
    # rerunning re-reads everything: nothing is trained or evaluated again, and the summary file is left as it was
    # (its wall-clock times belong to the invocation that trained), so chapters that read it stay current
    _no_training(monkeypatch)
    written = (tmp_path / "summary.json").read_bytes()
    again = compare_mod.compare(["pgdat", "cktat", "ltd"], "smoke", str(tmp_path), over)
    assert again["rows"][0]["last"] == summary["rows"][0]["last"]
    assert again["teachers"]["clean"]["last"] == summary["teachers"]["clean"]["last"]
    assert again["wall_seconds"] != summary["wall_seconds"]
    assert (tmp_path / "summary.json").read_bytes() == written


def test_a_moved_results_folder_is_still_reused(tiny, tmp_path, monkeypatch):
    over = {**tiny, "epochs": 1, "teacher_epochs": 1, "train_limit": 128, "test_limit": 32, "val_size": 64}
    first = compare_mod.compare(["pgdat", "cktat"], "smoke", str(tmp_path / "a"), over)
    shutil.move(str(tmp_path / "a"), str(tmp_path / "b"))
    _no_training(monkeypatch)
    moved = compare_mod.compare(["pgdat", "cktat"], "smoke", str(tmp_path / "b"), over)
    assert [r["last"] for r in moved["rows"]] == [r["last"] for r in first["rows"]]
    result = json.loads((tmp_path / "b" / "cktat" / "result.json").read_text())
    assert result["teacher"]["checkpoint"] == os.path.join("..", "teacher_clean", "teacher", "last.pt")
    assert not any(os.path.isabs(v) for v in result["settings"].values() if isinstance(v, str) and v)


def test_results_without_checkpoints_are_re_read(tiny, tmp_path, monkeypatch):
    """A committed results folder holds JSON, not checkpoints: the chapters' runs are still re-read from it."""
    over = {**tiny, "epochs": 1, "teacher_epochs": 1, "train_limit": 128, "test_limit": 32, "val_size": 64}
    first = compare_mod.compare(["pgdat", "cktat"], "smoke", str(tmp_path), over)
    for pt in tmp_path.rglob("*.pt"):
        pt.unlink()
    _no_training(monkeypatch)
    monkeypatch.setattr(train_mod, "load_splits", lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    again = compare_mod.compare(["pgdat", "cktat"], "smoke", str(tmp_path), over)
    assert [r["last"] for r in again["rows"]] == [r["last"] for r in first["rows"]]
    assert again["teachers"] == {k: {**t, "checkpoint": t["checkpoint"]} for k, t in first["teachers"].items()}


def test_schema_1_summaries_are_read_as_flat_rows(tmp_path):
    old = {"schema": "cktat-compare/1", "attack": "pgd20", "teachers": {"clean": {
        "checkpoint": "t/teacher/last.pt", "last": {"natural": 90.0, "pgd20": 1.0}}},
        "rows": [{"method": "pgdat", "run_dir": "pgdat", "last": {
            "natural": 80.0, "pgd20": 60.0, "natural_groups": {"multi_view": 85.0}, "pgd20_groups": {"multi_view": 70.0},
            "probes": {"probe_f2": 11.0}}}]}
    (tmp_path / "s.json").write_text(json.dumps(old))
    s = compare_mod.load_summary(str(tmp_path / "s.json"))
    assert s["rows"][0]["last"] == {"natural": 80.0, "pgd20": 60.0, "natural multi_view": 85.0,
                                    "pgd20 multi_view": 70.0, "probe_f2": 11.0}
    assert s["rows"][0]["run_dir"] == str(tmp_path / "pgdat")


def test_compare_needs_a_method(tmp_path):
    from cktat_core.errors import ConfigError

    with pytest.raises(ConfigError):
        compare_mod.compare([], "smoke", str(tmp_path))

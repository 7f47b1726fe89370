"""The command line: one-line errors with exit status 2, results on disk, finished work untouched."""

import json
import os
import subprocess
import sys

import pytest
import torch

from cktat_core.cli import main
from cktat_core.models import build_model

TINY_SET = ["train_limit=256", "val_size=128", "test_limit=128", "teacher_epochs=1", "epochs=1", "batch_size=64",
            "attack_steps=2", "val_attack_steps=2", "eval_steps=2", "progress=false"]


def _one_line_error(capsys, argv, *must_contain):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for s in must_contain:
        assert s in err, (s, err)
    return err


@pytest.mark.parametrize("setting,field,allowed", [
    ("tau=0", "tau", "> 0"), ("tau=-2", "tau", "> 0"), ("beta=-1", "beta", ">= 0"), ("eps=2", "eps", "[0, 1]"),
    ("eps=-0.5", "eps", "[0, 1]"), ("model=vgg16", "model", "resnet18"), ("dataset=imagenet", "dataset", "cifar10"),
    ("tau=hot", "tau", "number"),
])
def test_bad_values_exit_2_with_one_line(capsys, tmp_path, setting, field, allowed):
    _one_line_error(capsys, ["train", "--out", str(tmp_path), "--set", setting], field, allowed)
    assert not os.listdir(tmp_path)  # nothing was started


def test_unknown_method_and_profile(capsys, tmp_path):
    _one_line_error(capsys, ["train", "--method", "magic", "--out", str(tmp_path)], "method", "cktat", "pgdat")
    _one_line_error(capsys, ["train", "--profile", "huge", "--out", str(tmp_path)], "profile", "smoke")


def test_missing_and_corrupt_checkpoints(capsys, tmp_path):
    _one_line_error(capsys, ["eval", "--checkpoint", str(tmp_path / "nope.pt")], "does not exist")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    _one_line_error(capsys, ["eval", "--checkpoint", str(bad)], "corrupt")
    _one_line_error(capsys, ["train", "--out", str(tmp_path / "r"), "--set", f"teacher_checkpoint={bad}"] + TINY_SET,
                    "corrupt")


def test_missing_cifar_offline(capsys, tmp_path):
    _one_line_error(capsys, ["train", "--out", str(tmp_path / "r"), "--set", "dataset=cifar10",
                             f"data_dir={tmp_path / 'empty'}"], "cifar-10-batches-py")


def test_state_dict_that_does_not_fit_names_the_keys(capsys, tmp_path):
    torch.save(build_model("small_cnn").state_dict(), tmp_path / "cnn.pt")
    err = _one_line_error(capsys, ["eval", "--checkpoint", str(tmp_path / "cnn.pt"), "--model", "resnet18"],
                          "missing keys", "unexpected keys")
    assert "conv1.weight" in err and "features.0.weight" in err


def test_train_then_eval_then_refuse_changed_settings(capsys, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--method", "cktat", "--profile", "smoke", "--out", str(out), "--set"] + TINY_SET) == 0
    printed = capsys.readouterr().out
    assert "teacher" in printed and "result.json" in printed
    res = json.loads((out / "result.json").read_text())
    assert res["student"]["last"]["test"]["attacks"]["pgd2"]["total"] == 128
    # the same command on the finished run prints the saved result (nothing trained or evaluated)
    assert main(["train", "--method", "cktat", "--profile", "smoke", "--out", str(out), "--set"] + TINY_SET) == 0
    again = capsys.readouterr().out
    assert "finished earlier, saved result" in again
    assert again.splitlines()[1:] == printed.splitlines()[1:]

    assert main(["eval", "--checkpoint", str(out / "student" / "last.pt"), "--attacks", "natural,fgsm,pgd5",
                 "--limit", "64"]) == 0
    ev = json.loads((out / "student" / "eval_last.json").read_text())
    assert ev["n"] == 64 and set(ev["attacks"]) == {"natural", "fgsm", "pgd5"}
    assert ev["dataset"] == "multiview" and ev["model"] == "small_cnn"
    capsys.readouterr()

    before = {p: (out / p).read_bytes() for p in ["student/last.pt", "teacher/last.pt", "result.json"]}
    _one_line_error(capsys, ["train", "--out", str(out), "--set"] + TINY_SET + ["beta=2"], "beta", "--out")
    assert before == {p: (out / p).read_bytes() for p in before}


def test_bad_attack_name(capsys, tmp_path):
    torch.save(build_model("small_cnn").state_dict(), tmp_path / "cnn.pt")
    _one_line_error(capsys, ["eval", "--checkpoint", str(tmp_path / "cnn.pt"), "--model", "small_cnn",
                             "--dataset", "multiview", "--attacks", "natural,deepfool"], "deepfool")


def test_console_entry_point_exit_status(tmp_path):
    """The real process: exit status 2 and a single stderr line."""
    p = subprocess.run([sys.executable, "-m", "cktat_core", "train", "--out", str(tmp_path), "--set", "tau=-1"],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip() == "cktat: error: tau: must be > 0 (got -1.0)"


def test_methods_prints_table2(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "label of f(x')" in out
    row = [l for l in out.splitlines() if l.startswith("cktat")][0]
    assert "T^tau(x)" in row and "clean" in row and "temperature" in row and "initialisation" in row


def test_eval_of_a_ducat_checkpoint_attacks_the_deployed_c_way_model(capsys, tmp_path):
    out = tmp_path / "ducat"
    assert main(["train", "--method", "ducat", "--profile", "smoke", "--out", str(out), "--set"] + TINY_SET) == 0
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out / "student" / "last.pt"), "--attacks", "natural,pgd3", "--limit", "32",
                 "--no-progress"]) == 0
    ev = json.loads((out / "student" / "eval_last.json").read_text())
    assert ev["n"] == 32 and ev["attacks"]["pgd3"]["correct"] <= ev["attacks"]["natural"]["correct"]
    # the checkpoint holds a 2C-way head; evaluated, it is a 10-class classifier
    from cktat_core.checkpoint import load
    assert load(str(out / "student" / "last.pt"))["model"]["linear.weight"].shape[0] == 20


def test_runs_refuses_bad_input_before_training_and_trains_the_stages_it_is_given(capsys, tmp_path):
    results = tmp_path / "results"
    _one_line_error(capsys, ["runs", "--profile", "smoke", "--results", str(results), "--stages", "pgdat,everything"],
                    "--stages", "pgdat, tau", "everything")
    _one_line_error(capsys, ["runs", "--profile", "smoke", "--results", str(results), "--set", "tau=0"], "tau", "> 0")
    assert not (results / "runs").exists()  # nothing was started
    tiny = [s for s in TINY_SET if not s.startswith("progress")]
    assert main(["runs", "--profile", "smoke", "--results", str(results), "--stages", "pgdat", "--no-progress",
                 "--set"] + tiny) == 0
    out = capsys.readouterr().out
    assert "stage pgdat: done" in out
    assert sorted(os.listdir(results / "runs")) == ["pgdat", "pgdat_seed1", "pgdat_seed2"]  # the book's seeds
    assert all((results / "runs" / r / "result.json").is_file() for r in os.listdir(results / "runs"))


def test_the_runs_help_names_every_stage_in_the_order_they_run():
    from cktat_book.book_runs import STAGES
    from cktat_core.cli import build_parser

    runs = next(a for a in build_parser()._subparsers._group_actions[0].choices["runs"]._actions
                if a.dest == "stages")
    named = [s for s in runs.help.replace("(", ",").replace(")", ",").replace(":", ",").split(",")]
    named = [w.split()[0] for w in named if w.split() and w.split()[0] in STAGES]
    assert named == list(STAGES)

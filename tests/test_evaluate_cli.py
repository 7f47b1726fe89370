"""`cktat eval` end to end, external checkpoints loading strictly, and the AutoAttack adapter on a tiny model."""

import json

import pytest
import torch

from cktat_core import checkpoint as ckpt
from cktat_core.cli import main
from cktat_core.data import MULTIVIEW
from cktat_core.errors import CheckpointError, CktatError
from cktat_core.models import build_model


def _one_line_error(capsys, argv, *must_contain):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for s in must_contain:
        assert s in err, (s, err)


@pytest.fixture
def cnn_state_dict(trained_cnn, tmp_path):
    model, _ = trained_cnn
    path = tmp_path / "cnn.pt"
    torch.save(model.state_dict(), path)
    return path


def test_eval_all_writes_one_table4_row(capsys, cnn_state_dict, tmp_path):
    out = tmp_path / "out"
    argv = ["eval", "--checkpoint", str(cnn_state_dict), "--model", "small_cnn", "--dataset", "multiview",
            "--attacks", "all,pgd5_l2", "--aa-version", "apgd", "--limit", "16", "--eps", "0.003",
            "--eps-sweep", "0.0015,0.003,0.006", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    res = json.loads((out / "eval_cnn.json").read_text())
    assert list(res["attacks"]) == ["natural", "fgsm", "pgd20", "pgd100", "mim", "cw", "aa", "pgd5_l2"]
    assert res["schema"] == "cktat-eval/1" and res["protocol"] == "standard" and res["n"] == 16
    assert res["model"] == "small_cnn" and res["dataset"] == "multiview" and res["seed"] == 0
    assert res["threat"]["eps"] == 0.003 and res["threat"]["alpha"] == pytest.approx(0.003 / 4)
    assert res["attacks"]["aa"]["per_attack"].keys() == {"apgd-ce", "apgd-t"}
    assert res["gradient_check"]["points"] == 16 and len(res["eps_sweep"]["points"]) == 3
    assert set(res["checks"]) == {"robust_le_clean", "more_steps_not_weaker", "autoattack_strongest",
                                  "fgsm_weaker_than_pgd", "accuracy_falls_with_eps", "nonzero_gradients",
                                  "autoattack_package"}
    assert {f["check"] for f in res["flags"]} == {k for k, v in res["checks"].items() if v == "flagged"}
    for name, a in res["attacks"].items():  # every row printed with accuracy, count and time
        assert f"{name} " in printed and f"({a['correct']}/16," in printed
    if res["flags"]:
        assert all(f"FLAG {f['check']}: {f['message']}" in printed for f in res["flags"])
    else:
        assert "sanity checks: all" in printed

    # the other protocol writes its own file, and its iterative attacks ran 10 steps of 0.007
    argv = ["eval", "--checkpoint", str(cnn_state_dict), "--model", "small_cnn", "--dataset", "multiview",
            "--attacks", "natural,pgd20,mim", "--protocol", "compat-generalist", "--limit", "8", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    gen = json.loads((out / "eval_cnn_compat-generalist.json").read_text())
    assert gen["protocol"] == "compat-generalist"
    assert {(a["spec"]["steps"], a["spec"]["alpha"]) for k, a in gen["attacks"].items() if k != "natural"} == {(10, 0.007)}


@pytest.mark.parametrize("flag,value,field", [
    ("--protocol", "madry", "protocol"), ("--attacks", "natural,pgdx", "attacks"), ("--aa-version", "plus", "aa-version"),
    ("--eps-sweep", "2/255,big", "eps"), ("--eps-sweep", "0,0.01", "eps-sweep"), ("--limit", "-3", "limit"),
    ("--kappa", "-1", "kappa"), ("--batch-size", "0", "batch-size"),
])
def test_bad_eval_options_exit_2_with_one_line(capsys, cnn_state_dict, flag, value, field):
    _one_line_error(capsys, ["eval", "--checkpoint", str(cnn_state_dict), "--model", "small_cnn",
                             "--dataset", "multiview", flag, value], field)


def test_missing_autoattack_package_is_one_clear_line(capsys, cnn_state_dict, monkeypatch):
    import importlib

    real = importlib.import_module

    def no_aa(name, *a, **kw):
        if name in ("pyautoattack", "autoattack"):
            raise ImportError(name)
        return real(name, *a, **kw)

    monkeypatch.setattr(importlib, "import_module", no_aa)
    _one_line_error(capsys, ["eval", "--checkpoint", str(cnn_state_dict), "--model", "small_cnn", "--dataset",
                             "multiview", "--attacks", "all"], "pip install pyautoattack")


# -------------------------------------------------------------------------------- external checkpoints
def test_plain_kuangliu_resnet18_state_dict_loads_strictly(tmp_path):
    ref = build_model("resnet18", 10)
    sd = ref.state_dict()
    torch.save({"net": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "rn18.pth")  # DataParallel-style
    model, info = ckpt.load_model(str(tmp_path / "rn18.pth"), "resnet18")
    assert info["model_name"] == "resnet18" and not model.training
    assert all(torch.equal(v, sd[k]) for k, v in model.state_dict().items())

    bad = dict(sd)
    bad["fc.weight"] = bad.pop("linear.weight")  # a torchvision-style head name
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as e:
        ckpt.load_model(str(tmp_path / "bad.pth"), "resnet18")
    assert "missing keys: linear.weight" in str(e.value) and "unexpected keys: fc.weight" in str(e.value)


def test_trades_wrn34_10_with_sub_block1_loads_strictly(tmp_path):
    torch.manual_seed(0)
    sd = build_model("wrn34_10", 10, sub_block1=True).state_dict()
    assert any(k.startswith("sub_block1.") for k in sd)
    torch.save(sd, tmp_path / "trades_wrn.pt")
    model, _ = ckpt.load_model(str(tmp_path / "trades_wrn.pt"), "wrn34_10")
    assert torch.equal(model.state_dict()["fc.weight"], sd["fc.weight"])
    with torch.no_grad():
        assert model(torch.rand(1, 3, 32, 32)).shape == (1, 10)

    plain = build_model("wrn34_10", 10)  # without sub_block1: the TRADES checkpoint's extra keys are named
    with pytest.raises(CheckpointError) as e:
        ckpt.load_state_strict(plain, sd, "trades_wrn.pt")
    assert "unexpected keys: sub_block1." in str(e.value)
    del sd["block3.layer.0.conv1.weight"]
    with pytest.raises(CheckpointError, match="missing keys: block3.layer.0.conv1.weight"):
        ckpt.load_state_strict(build_model("wrn34_10", 10, sub_block1=True), sd, "trades_wrn.pt")


# ------------------------------------------------------------------------------------ AutoAttack adapter
def test_autoattack_adapter_on_a_tiny_model(trained_cnn, capsys):
    from cktat_core.autoattack import run_autoattack

    model, s = trained_cnn
    x, y = s.test.x[:8], s.test.y[:8]
    eps = MULTIVIEW.eps / 4
    model.train()
    try:
        out = run_autoattack(model, x, y, eps=eps, version="apgd", batch_size=8)
        assert model.training  # mode restored
    finally:
        model.eval()
    assert capsys.readouterr().out == ""  # nothing on stdout
    assert list(out.per_attack) == ["apgd-ce", "apgd-t"] and out.package.startswith(("pyautoattack", "autoattack"))
    assert (out.x_adv - x).abs().max() <= eps + 1e-6 and out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    with torch.no_grad():
        clean_ok = model(x).argmax(1) == y
        adv_ok = model(out.x_adv).argmax(1) == y
    assert not (out.robust & ~clean_ok).any()  # a point counts only if clean right
    assert torch.equal(out.robust, clean_ok & adv_ok)
    assert out.per_attack["apgd-ce"] >= out.per_attack["apgd-t"]  # cumulative
    assert 100 * int(out.robust.sum()) / 8 == out.per_attack["apgd-t"]
    assert out.per_attack["apgd-ce"] < 100 * int(clean_ok.sum()) / 8  # it breaks something


def test_autoattack_standard_version_lists_its_four_attacks(trained_cnn):
    from cktat_core.autoattack import run_autoattack

    model, s = trained_cnn
    out = run_autoattack(model, s.test.x[:4], s.test.y[:4], eps=MULTIVIEW.eps, version="standard", batch_size=4)
    assert list(out.per_attack) == ["apgd-ce", "apgd-t", "fab-t", "square"]
    with pytest.raises(CktatError, match="version"):
        run_autoattack(model, s.test.x[:4], s.test.y[:4], version="plus")

"""`fit` and `evaluate_suite` on a network the library did not build: every kind of method trains on it, a run cut
short resumes to the weights of an uninterrupted one, and bad input is one clear error."""

import json

import pytest
import torch
import torch.nn as nn

from cktat_core import evaluate_suite, fit
from cktat_core.data import load_splits
from cktat_core.errors import ConfigError


class TinyNet(nn.Module):
    """A network defined here, as a reader would: not one of `models.MODELS`."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(4),
                                  nn.Flatten(), nn.Linear(8 * 8 * 8, classes))

    def forward(self, x):
        return self.body(x)


@pytest.fixture(scope="module")
def data():
    s = load_splits("multiview", val_size=64, train_limit=320, test_limit=64)
    return (s.train.x, s.train.y), (s.val.x, s.val.y), (s.test.x, s.test.y)


FAST = dict(epochs=2, teacher_epochs=1, batch_size=64, attack_steps=2, val_attack_steps=2, eval_steps=3,
            eval_batch_size=64, eps=0.1, lr=0.02, amp=False)


def _net(seed=0, classes=10):
    torch.manual_seed(seed)
    return TinyNet(classes)


def test_cktat_on_your_network_resumes_to_the_weights_of_an_uninterrupted_run(data, tmp_path):
    train, val, test = data
    whole = fit(_net(), train, method="cktat", val=val, test=test, out=str(tmp_path / "whole"), **FAST)
    assert whole.finished and len(whole.history) == 2 and whole.teacher is not None
    assert set(whole.test) == {"natural", "pgd3"} and 0 <= whole.test["pgd3"] <= whole.test["natural"] <= 100
    saved = json.loads((tmp_path / "whole" / "result.json").read_text())
    assert saved["finished"] and saved["settings"]["model"] == "TinyNet" and saved["settings"]["tau"] == 5.0
    assert (tmp_path / "whole" / "teacher" / "last.pt").is_file()
    assert (tmp_path / "whole" / "student" / "best.pt").is_file()
    cut = fit(_net(), train, method="cktat", val=val, test=test, out=str(tmp_path / "cut"), stop_after=1, **FAST)
    assert not cut.finished and len(cut.history) == 1 and cut.test is None
    again = fit(_net(), train, method="cktat", val=val, test=test, out=str(tmp_path / "cut"), **FAST)
    drop = lambda h: [{k: v for k, v in e.items() if not k.endswith("_seconds")} for e in h]
    assert again.finished and drop(again.history) == drop(whole.history)
    a, b = whole.model.state_dict(), again.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(Exception, match="other settings"):  # the same folder under other settings: refused
        fit(_net(), train, method="cktat", val=val, out=str(tmp_path / "cut"), **{**FAST, "beta": 1.0})


@pytest.mark.parametrize("method", ["pgdat", "lbgat", "generalist", "raat"])
def test_methods_with_machinery_of_their_own_train_your_network(method, data, tmp_path):
    """LBGAT builds a co-trained natural model (a fresh copy of yours), Generalist EMA learners, RAAT two views."""
    train, val, _ = data
    start = {k: v.clone() for k, v in _net().state_dict().items()}
    res = fit(_net(), train, method=method, val=val, out=str(tmp_path), **{**FAST, "epochs": 1})
    assert res.finished and res.teacher is None
    trained = res.model.state_dict()
    assert any(not torch.equal(trained[k].cpu(), start[k]) for k in start if start[k].is_floating_point())


def test_evaluate_suite_attacks_your_network_with_the_table4_suite(data):
    _, _, test = data
    res = evaluate_suite(_net(), test, attacks="natural,fgsm,pgd20,aa", eps=0.1, aa_version="apgd", limit=32,
                         batch_size=32)
    assert res["n"] == 32 and set(res["attacks"]) == {"natural", "fgsm", "pgd20", "aa"}
    assert res["threat"]["alpha"] == pytest.approx(0.025)  # eps / 4, SPEC 5
    assert all(0 <= a["accuracy"] <= res["attacks"]["natural"]["accuracy"] for a in res["attacks"].values())
    assert isinstance(res["flags"], list)


def test_evaluate_suite_reads_back_a_suite_of_the_same_weights_and_computes_another_one_again(data, tmp_path,
                                                                                              monkeypatch):
    from cktat_core import fitting

    _, _, test = data
    calls = []
    real = fitting.evaluate
    monkeypatch.setattr(fitting, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    net, out = _net(), str(tmp_path / "suite.json")
    first = evaluate_suite(net, test, attacks="natural,fgsm", eps=0.1, limit=32, batch_size=32, out=out)
    again = evaluate_suite(net, test, attacks="natural,fgsm", eps=0.1, limit=32, batch_size=32, out=out)
    assert len(calls) == 1 and again["attacks"]["fgsm"]["accuracy"] == first["attacks"]["fgsm"]["accuracy"]
    evaluate_suite(net, test, attacks="natural,fgsm", eps=0.2, limit=32, batch_size=32, out=out)  # another request
    with torch.no_grad():
        next(net.parameters()).add_(1.0)  # other weights
    evaluate_suite(net, test, attacks="natural,fgsm", eps=0.2, limit=32, batch_size=32, out=out)
    assert len(calls) == 3


def test_bad_input_is_one_clear_error(data, tmp_path):
    train, val, _ = data
    with pytest.raises(ConfigError, match="20-way head"):  # DUCAT's dummy classes need 2C outputs
        fit(_net(), train, method="ducat", val=val, out=str(tmp_path), **FAST)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        fit(_net(), (train[0] * 255, train[1]), val=val, out=str(tmp_path), **FAST)
    with pytest.raises(ConfigError, match="network you pass"):
        fit(_net(), train, val=val, out=str(tmp_path), model="resnet18")
    with pytest.raises(ConfigError, match="DataLoader"):
        fit(_net(), [1, 2, 3], out=str(tmp_path))
    ducat = fit(_net(classes=20), train, method="ducat", val=val, out=str(tmp_path / "d"),
                **{**FAST, "epochs": 1, "ducat_start": 0.0})
    assert ducat.model(val[0][:4]).shape == (4, 10)  # deployed as its recovered 10-way classifier


def test_every_public_name_resolves_and_is_listed_with_its_line():
    import cktat_core

    for name in cktat_core.__all__:
        assert getattr(cktat_core, name) is not None
        assert f"    {name:<20} {cktat_core.PUBLIC[name][1]}" in cktat_core.__doc__
    with pytest.raises(AttributeError):
        cktat_core.nothing_here

"""The evaluation suite: protocols that really change what runs, the result schema and metrics, and sanity
checks that fire on a gradient-masked model and stay quiet on a normal one."""

import math
from dataclasses import replace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import CountForwards

from cktat_core.models import InputQuantized
from cktat_core.data import MULTIVIEW, TensorData
from cktat_core.errors import ConfigError
from cktat_core.checks import noise_margin, sanity_checks
from cktat_core.evaluate import PROTOCOLS, SCHEMA, TABLE4, Threat, attack_spec, build_attack, evaluate, expand_names, nrr

EPS = MULTIVIEW.eps
SMALL = Threat(EPS / 4, EPS / 16, "linf", 0.2, 0.05)  # some points of the clean-trained CNN survive PGD here


# ------------------------------------------------------------------------------------------ protocols
def test_protocols_set_steps_and_step_sizes():
    t = Threat(8 / 255, 2 / 255, "linf", 128 / 255, 32 / 255)
    std = {n: attack_spec(n, t, "standard") for n in TABLE4}
    gen = {n: attack_spec(n, t, "compat-generalist") for n in TABLE4}
    assert [std[n].steps for n in ("pgd20", "pgd100", "mim", "cw")] == [20, 100, 20, 30]
    assert {std[n].alpha for n in ("pgd20", "pgd100", "mim", "cw")} == {2 / 255}
    assert [gen[n].steps for n in ("pgd20", "pgd100", "mim", "cw")] == [10, 10, 10, 10]
    assert {gen[n].alpha for n in ("pgd20", "pgd100", "mim", "cw")} == {0.007}
    for n in ("natural", "aa"):  # parameter-free attacks are the same in both
        assert std[n] == gen[n]
    # FGSM too, but for the iterate rule: the standard protocol also counts x itself if it fools the model
    assert replace(std["fgsm"], best_iterate=False) == gen["fgsm"]
    assert all(std[n].best_iterate for n in ("fgsm", "pgd20", "pgd100", "mim", "cw"))
    assert not any(gen[n].best_iterate for n in ("fgsm", "pgd20", "pgd100", "mim", "cw"))
    assert std["cw"].kappa == 50 and std["mim"].decay == 1.0 and std["mim"].random_start == "none"
    assert gen["mim"].random_start == "uniform" and gen["cw"].random_start == gen["pgd20"].random_start == "uniform"
    assert std["pgd20"].random_start == "uniform" and std["fgsm"].alpha == 8 / 255
    l2 = attack_spec("pgd20_l2", t, "compat-generalist")
    assert (l2.norm, l2.eps, l2.steps, l2.alpha) == ("l2", 128 / 255, 10, 32 / 255)  # 0.007 is an L-inf step
    assert attack_spec("cw", t, kappa=0.0).kappa == 0.0 and attack_spec("mim40", t).steps == 40


def test_protocols_change_the_work_actually_done(trained_cnn):
    """Forward passes and the distance travelled differ: 20 steps of 2/255 vs 10 steps of 0.007."""
    model, s = trained_cnn
    data = s.test.head(10)
    t = Threat(8 / 255, 2 / 255)
    counts = {}
    for proto in ("standard", "compat-generalist"):
        m = CountForwards(model)
        res = evaluate(m, data, ["pgd20"], t, batch_size=10, protocol=proto)
        counts[proto] = m.calls
        assert res["protocol"] == proto
    assert counts == {"standard": 1 + 20 + 1, "compat-generalist": 1 + 10 + 1}  # natural, steps, final predict

    # a linear model has a constant gradient sign: MIM from an interior x travels steps * alpha per pixel
    lin = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    x, y = torch.full((2, 3, 4, 4), 0.5), torch.tensor([0, 1])
    wide = Threat(0.3, 0.002)
    last = {p: build_attack(replace(attack_spec("mim", wide, p), best_iterate=False)) for p in PROTOCOLS}
    assert (last["standard"](lin, x, y) - x).abs().amax().item() == pytest.approx(20 * 0.002, abs=1e-6)
    # compat-generalist starts MIM from a uniform point of the ball, as the Generalist code does, then moves
    # 10 * 0.007 along the constant gradient sign
    torch.manual_seed(3)
    start = torch.empty_like(x).uniform_(-0.3, 0.3)
    with torch.enable_grad():
        xg = x.clone().requires_grad_(True)
        direction = torch.autograd.grad(F.cross_entropy(lin(xg), y), xg)[0].sign()
    torch.manual_seed(3)
    moved = last["compat-generalist"](lin, x, y) - x
    assert torch.allclose(moved, (start + 10 * 0.007 * direction).clamp(-0.3, 0.3), atol=1e-6)


def test_names_and_errors():
    assert expand_names(["natural", "all", "pgd20_l2", "fgsm"]) == list(TABLE4) + ["pgd20_l2"]
    for bad in ("pgd", "pgd0", "pgdx", "cw0", "bim"):
        with pytest.raises(ConfigError, match="unknown attack"):
            attack_spec(bad)
    with pytest.raises(ConfigError, match="protocol"):
        attack_spec("pgd20", protocol="madry")
    with pytest.raises(ConfigError, match="aa_version"):
        attack_spec("aa", aa_version="plus")
    with pytest.raises(ValueError):  # ConfigError is a ValueError: old callers keep working
        attack_spec("nope")


# --------------------------------------------------------------------------------- schema and metrics
def test_result_schema_metrics_and_groups(trained_cnn):
    model, s = trained_cnn
    data = s.test.head(96)
    res = evaluate(model, data, ["natural", "fgsm", "pgd5"], SMALL, batch_size=48, seed=0)
    assert res["schema"] == SCHEMA and res["n"] == 96 and res["protocol"] == "standard"
    assert res["threat"]["eps"] == SMALL.eps
    assert list(res["attacks"]) == ["natural", "fgsm", "pgd5"]
    clean = res["attacks"]["natural"]
    for name, a in res["attacks"].items():
        assert a["total"] == 96 and a["accuracy"] == pytest.approx(100 * a["correct"] / 96)
        assert a["correct"] <= clean["correct"]
        counts = torch.bincount(data.y, minlength=10)
        hits = sum(round(acc * int(c) / 100) for acc, c in zip(a["per_class"].values(), counts) if acc is not None)
        assert hits == a["correct"] and list(a["per_class"]) == list(data.classes)
        g = a["groups"]
        nsv, nmv = int(data.groups["single_view"].sum()), int(data.groups["multi_view"].sum())
        assert g["single_view"] * nsv + g["multi_view"] * nmv == pytest.approx(100 * a["correct"], abs=1e-6)
        assert a["seconds"] >= 0 and a["spec"]["name"] == name
    pgd = res["attacks"]["pgd5"]
    assert pgd["spec"]["steps"] == 5 and pgd["nrr"] == pytest.approx(nrr(clean["accuracy"], pgd["accuracy"]))
    assert nrr(80.0, 40.0) == pytest.approx(2 * 80 * 40 / 120) and nrr(0.0, 0.0) == 0.0
    assert res["metrics"]["aa"] is None and res["metrics"]["worst_attack"] in ("fgsm", "pgd5")
    assert res["checks"]["autoattack_strongest"].startswith("not run")
    # the seed makes the random starts reproducible and leaves the caller's generator alone
    torch.manual_seed(123)
    state = torch.get_rng_state()
    again = evaluate(model, data, ["pgd5"], SMALL, batch_size=48, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    assert again["attacks"]["pgd5"]["correct"] == pgd["correct"]


def test_old_call_forms_still_work(trained_cnn):
    from functools import partial

    from cktat_core.attacks import pgd

    model, s = trained_cnn
    data = s.test.head(32)
    res = evaluate(model, data, {"mine": partial(pgd, eps=SMALL.eps, alpha=SMALL.alpha, steps=2)}, SMALL, 32)
    assert set(res["attacks"]) == {"natural", "mine"} and res["n"] == 32
    assert evaluate(model, data, [], SMALL, 32)["attacks"].keys() == {"natural"}


def test_clean_aa_mean_and_nrr_from_autoattack(trained_cnn):
    model, s = trained_cnn
    res = evaluate(model, s.test.head(12), ["aa"], SMALL, batch_size=12, aa_version="apgd", seed=0)
    c, a = res["attacks"]["natural"]["accuracy"], res["attacks"]["aa"]["accuracy"]
    assert res["metrics"]["clean_aa_mean"] == pytest.approx((c + a) / 2)
    assert res["metrics"]["nrr_aa"] == pytest.approx(nrr(c, a))
    assert list(res["attacks"]["aa"]["per_attack"]) == ["apgd-ce", "apgd-t"]


# ------------------------------------------------------------------------------------- sanity checks
def test_noise_margin_is_two_binomial_standard_errors_of_a_difference():
    assert noise_margin(50.0, 50.0, 100) == pytest.approx(2 * math.sqrt(2 * 0.25 / 100) * 100)
    assert noise_margin(0.0, 0.0, 10000) == pytest.approx(0.01)  # never below one image
    assert noise_margin(50.0, 50.0, 10000) < noise_margin(50.0, 50.0, 100)


def _spec(name, kind, steps=0, eps=0.03, norm="linf"):
    return {"name": name, "kind": kind, "eps": eps, "norm": norm, "steps": steps}


def _result(acc: dict, n=10000, sweep=None, zero_grad=None, warnings=()):
    kinds = {"fgsm": ("fgsm", 1), "pgd20": ("pgd", 20), "pgd100": ("pgd", 100), "mim": ("mim", 20),
             "cw": ("cw", 30), "aa": ("autoattack", 0)}
    attacks = {"natural": {"accuracy": acc.pop("natural")}}
    for k, v in acc.items():
        attacks[k] = {"accuracy": v, "spec": _spec(k, *kinds[k])}
        if k == "aa":
            attacks[k]["package_warnings"] = list(warnings)
    res = {"n": n, "attacks": attacks, "eps_sweep": None, "gradient_check": None}
    if sweep:
        res["eps_sweep"] = {"attack": "pgd20", "points": [{"eps": e, "accuracy": a} for e, a in sweep]}
    if zero_grad is not None:
        res["gradient_check"] = {"points": 500, "zero_gradient": zero_grad}
    return res


GOOD = {"natural": 84.0, "fgsm": 58.0, "pgd20": 51.7, "pgd100": 51.0, "mim": 52.0, "cw": 50.1, "aa": 47.6}
GOOD_SWEEP = [(2 / 255, 75.0), (4 / 255, 66.0), (8 / 255, 51.7), (16 / 255, 20.0)]


def test_checks_quiet_on_a_plausible_table_row():
    checks, flags = sanity_checks(_result(dict(GOOD), sweep=GOOD_SWEEP, zero_grad=0))
    assert flags == [] and set(checks.values()) == {"passed"} and len(checks) == 7


@pytest.mark.parametrize("change,check", [
    ({"natural": 51.5}, "robust_le_clean"),
    ({"pgd100": 54.0}, "more_steps_not_weaker"),  # 2.3 points above PGD-20; noise is 1.4 on 10,000 images
    ({"aa": 53.0}, "autoattack_strongest"),
    ({"fgsm": 49.5}, "fgsm_weaker_than_pgd"),
])
def test_each_check_fires_on_its_symptom(change, check):
    checks, flags = sanity_checks(_result({**GOOD, **change}))
    assert checks[check] == "flagged" and {f["check"] for f in flags} == {check}
    assert all(f["difference"] > f["noise"] for f in flags)


def test_differences_within_noise_are_not_flagged():
    checks, flags = sanity_checks(_result({**GOOD, "pgd100": 52.5, "aa": 49.0}, n=1000))
    assert flags == []
    checks, flags = sanity_checks(_result({**GOOD, "pgd100": 52.5}, n=100000))  # same gap, far less noise
    assert [f["check"] for f in flags] == ["more_steps_not_weaker"]


def test_eps_sweep_gradient_and_package_checks_fire():
    rising = [(2 / 255, 60.0), (4 / 255, 70.0), (8 / 255, 51.7)]
    flat = [(2 / 255, 80.0), (4 / 255, 80.0), (8 / 255, 79.5)]
    for sweep in (rising, flat):
        checks, _ = sanity_checks(_result(dict(GOOD), sweep=sweep))
        assert checks["accuracy_falls_with_eps"] == "flagged"
    at_zero = [(2 / 255, 0.0), (8 / 255, 0.0)]  # already broken at the smallest eps: nothing to fall
    assert sanity_checks(_result(dict(GOOD), sweep=at_zero))[0]["accuracy_falls_with_eps"] == "passed"
    # 3 of 64 points at the smallest eps is within noise of zero: no fall could show, so none is demanded ...
    near_zero = [(2 / 255, 4.6875), (4 / 255, 0.0), (8 / 255, 0.0)]
    assert sanity_checks(_result(dict(GOOD), n=64, sweep=near_zero))[0]["accuracy_falls_with_eps"] == "passed"
    # ... while 25 of 64 that stay put is a flat curve
    flat_64 = [(2 / 255, 39.0625), (8 / 255, 37.5)]
    assert sanity_checks(_result(dict(GOOD), n=64, sweep=flat_64))[0]["accuracy_falls_with_eps"] == "flagged"
    checks, flags = sanity_checks(_result(dict(GOOD), zero_grad=3, warnings=["there are 3 points with zero gradient!"]))
    assert checks["nonzero_gradients"] == "flagged" and checks["autoattack_package"] == "flagged"
    assert checks["accuracy_falls_with_eps"] == "not run: no eps sweep"


def test_checks_compare_attacks_only_in_the_same_ball():
    res = _result(dict(GOOD))
    res["attacks"]["pgd100"]["spec"]["eps"] = 0.06  # a larger ball: may legitimately differ, never compared
    res["attacks"]["pgd100"]["accuracy"] = 60.0
    checks, flags = sanity_checks(res)
    assert flags == []


def test_flags_fire_on_a_gradient_masked_model_and_not_on_the_normal_one(trained_cnn):
    model, s = trained_cnn
    data = s.test.head(64)
    sweep = [EPS / 16, EPS / 4, EPS]
    kw = dict(batch_size=64, eps_sweep=sweep, gradient_check=True, seed=0)
    names = ["natural", "fgsm", "pgd10", "pgd40", "mim", "cw"]
    normal = evaluate(model, data, names, Threat(EPS / 4, EPS / 16), **kw)
    assert normal["flags"] == [], normal["flags"]
    # the sweep starts where the normal model still holds points, so "accuracy falls" is tested, not waived
    assert normal["eps_sweep"]["points"][0]["accuracy"] > 20
    assert normal["checks"]["accuracy_falls_with_eps"] == "passed"
    masked = evaluate(InputQuantized(model), data, names, Threat(EPS / 4, EPS / 16), **kw)
    fired = {f["check"] for f in masked["flags"]}
    assert {"nonzero_gradients", "accuracy_falls_with_eps"} <= fired
    assert masked["gradient_check"]["zero_gradient"] == 64
    # the masked model looks robust: its PGD accuracy is far above the normal model's
    assert masked["attacks"]["pgd40"]["accuracy"] > normal["attacks"]["pgd40"]["accuracy"] + 20


def test_autoattack_exposes_the_masked_model(trained_cnn):
    """AutoAttack's own zero-gradient check fires, and becomes a flag."""
    model, s = trained_cnn
    data = s.test.head(8)
    res = evaluate(InputQuantized(model), data, ["pgd10", "aa"], Threat(EPS / 4, EPS / 16), batch_size=8,
                   aa_version="apgd", seed=0)
    assert res["checks"]["autoattack_package"] == "flagged"
    assert any("zero gradient" in f["message"] for f in res["flags"])

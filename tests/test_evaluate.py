"""The evaluation suite: protocols that really change what runs, the result schema and metrics, and sanity
checks that fire on a gradient-masked model and stay quiet on a normal one."""

import math
from dataclasses import replace
from functools import partial

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import CountForwards

from cktat_core.models import InputQuantized
from cktat_core.data import MULTIVIEW, TensorData
from cktat_core.errors import ConfigError
from cktat_core.attacks import pgd, worst_case_attack
from cktat_core.checks import noise_margin, sanity_checks
from cktat_core.evaluate import (PROTOCOLS, SCHEMA, TABLE4, Threat, attack_spec, build_attack, evaluate,
                                 correct_mask, expand_names, nrr)

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
    weakest = min(("fgsm", "pgd5"), key=lambda k: res["attacks"][k]["accuracy"])  # ties: the first listed
    assert res["metrics"]["aa"] is None and res["metrics"]["worst_attack"] == weakest
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


# ---------------------------------------------------------------------------------- evaluation fidelity
class RecordsPrecision(nn.Module):
    """A linear classifier that records, at every forward, whether CPU autocast is on and its output dtype."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(3 * 4 * 4, 3)
        self.seen = []

    def forward(self, x):
        out = self.lin(x.flatten(1))
        self.seen.append((torch.is_autocast_enabled("cpu"), out.dtype))
        return out


def test_evaluation_runs_in_float32_inside_a_bf16_autocast_context():
    model = RecordsPrecision()
    data = TensorData(torch.rand(6, 3, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2]), ("a", "b", "c"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(data.x)
        assert model.seen == [(True, torch.bfloat16)]  # the context really is a bf16 one
        model.seen.clear()
        res = evaluate(model, data, ["fgsm", "pgd3", "mim2", "cw2"], Threat(0.1, 0.02), batch_size=3,
                       gradient_check=True, eps_sweep=[0.05, 0.1], seed=0)
        assert torch.is_autocast_enabled("cpu")  # and it is the caller's again afterwards
    assert res["attacks"]["pgd3"]["total"] == 6
    assert len(model.seen) > 20 and set(model.seen) == {(False, torch.float32)}


class MeanThreshold(nn.Module):
    """Class 0 when the mean pixel is above 0.5, else class 1."""

    def forward(self, x):
        m = x.flatten(1).mean(1, keepdim=True)
        return torch.cat([m - 0.5, 0.5 - m], 1)


def _helpful(model, x, y):
    """A broken "attack" that moves every image to where the model predicts class 0 (every label here)."""
    return torch.full_like(x, 0.8)


def test_protocols_count_robust_accuracy_as_their_codes_do_and_robust_le_clean_fires():
    """standard: clean AND adversarial right; compat-generalist (the Generalist code): adversarial right."""
    x = torch.cat([torch.full((10, 3, 2, 2), 0.8), torch.full((10, 3, 2, 2), 0.2)])  # half right, half wrong
    data = TensorData(x, torch.zeros(20, dtype=torch.long), ("zero", "one"))
    res = {p: evaluate(MeanThreshold(), data, {"helpful": _helpful}, batch_size=20, protocol=p) for p in PROTOCOLS}
    for r in res.values():
        assert r["attacks"]["natural"]["accuracy"] == 50.0
        assert r["attacks"]["helpful"]["adversarial_accuracy"] == 100.0
        assert r["checks"]["robust_le_clean"] == "flagged"  # the attack makes the model more accurate
    assert res["standard"]["attacks"]["helpful"]["accuracy"] == 50.0
    assert res["compat-generalist"]["attacks"]["helpful"]["accuracy"] == 100.0


def test_robust_le_clean_compares_the_adversarial_accuracy():
    checks, flags = sanity_checks(_result(dict(GOOD)))
    assert checks["robust_le_clean"] == "passed"
    res = _result(dict(GOOD))
    res["attacks"]["pgd20"]["adversarial_accuracy"] = 90.0  # robust 51.7 (intersected), adversarial 90 > 84
    checks, flags = sanity_checks(res)
    assert checks["robust_le_clean"] == "flagged" and flags[0]["attacks"] == ["pgd20", "natural"]


class Band(nn.Module):
    """One-pixel images. Class 1 wins only while the pixel t is within 0.07 of 0.5; logit 2 (t - 10, never the
    argmax) lets an objective push t up at a constant rate."""

    def forward(self, x):
        t = x.flatten(1).mean(1)
        return torch.stack([torch.full_like(t, 0.5), 1 - 100 * (t - 0.5) ** 2, t - 10], 1)


def test_pgd_counts_an_image_broken_if_any_iterate_fooled_the_model():
    x, y = torch.full((1, 1, 1, 1), 0.3), torch.zeros(1, dtype=torch.long)
    kw = dict(eps=0.5, alpha=0.1, steps=4, random_start="none", loss=lambda logits, y: logits[:, 2])
    last = pgd(Band(), x, y, **kw)  # iterates 0.3, 0.4, 0.5 (fooled), 0.6, then 0.7
    assert last.item() == pytest.approx(0.7) and Band()(last).argmax(1).item() == 0
    best = pgd(Band(), x, y, best_iterate=True, **kw)
    assert best.item() == pytest.approx(0.5) and Band()(best).argmax(1).item() == 1


def test_pgd_restarts_keep_the_strongest_result_per_image():
    x, y = torch.full((400, 1, 1, 1), 0.3), torch.zeros(400, dtype=torch.long)
    kw = dict(eps=0.5, alpha=0.1, steps=0, random_start="uniform")  # the starts alone: 14% land in the band
    fooled = {}
    for r in (1, 20):
        torch.manual_seed(0)
        x_adv = pgd(Band(), x, y, restarts=r, **kw)
        assert (x_adv - x).abs().max() <= 0.5 + 1e-6
        fooled[r] = (Band()(x_adv).argmax(1) != y).float().mean().item()
    assert fooled[1] < 0.3 and fooled[20] > 0.8


def _breaks(i):
    """A fake attack that moves image i (only) to where MeanThreshold predicts class 1."""
    def attack(model, x, y):
        x = x.clone()
        x[i] = 0.2
        return x
    return attack


def test_worst_case_breaks_an_image_if_any_pair_does():
    data = TensorData(torch.full((3, 3, 2, 2), 0.8), torch.zeros(3, dtype=torch.long), ("zero", "one"))
    model, seen = MeanThreshold(), []

    def view(m):
        seen.append(m)
        return m
    pairs = [(view, _breaks(0)), (view, _breaks(1))]
    alone = [correct_mask(model, data, a, 3).tolist() for _, a in pairs]
    assert alone == [[False, True, True], [True, False, True]]
    assert correct_mask(model, data, worst_case_attack(pairs), 3).tolist() == [False, False, True]
    assert seen == [model, model]  # each view is made from the evaluated model


def test_worst_case_over_ducat_views_is_the_intersection_of_their_robust_sets(trained_cnn):
    """DUCAT (SPEC 4): PGD through the max and the sum recovery and on the raw 2C head; scored by the deployed
    (max-recovered) classifier, the robust set is the intersection of the three."""
    from cktat_core.methods import Recovered
    model, s = trained_cnn
    torch.manual_seed(0)
    twins = nn.Linear(10, 20)  # a 2C-way head whose twins k and k + C both lean towards class k
    with torch.no_grad():
        twins.weight.copy_(torch.cat([torch.eye(10), torch.eye(10)]) + 0.5 * torch.randn(20, 10))
        twins.bias.zero_()
    deployed = Recovered(nn.Sequential(model, twins), 10, "max").eval()
    data = s.test.head(48)
    step = partial(pgd, eps=EPS / 8, alpha=EPS / 32, steps=5, random_start="none")
    pairs = [(lambda m: Recovered(m.network, 10, "max"), step), (lambda m: Recovered(m.network, 10, "sum"), step),
             (lambda m: m.network, step)]
    masks = [correct_mask(deployed, data, lambda m, x, y, v=v, a=a: a(v(m), x, y), 48) for v, a in pairs]
    worst = correct_mask(deployed, data, worst_case_attack(pairs), 48)
    assert torch.equal(worst, masks[0] & masks[1] & masks[2])
    assert 0 < int(worst.sum()) < int(masks[2].sum())  # the raw-head attack alone leaves images the others break


def test_the_checks_module_needs_no_torch():
    """Report scripts reread result files with `cktat_core.checks` where torch is not installed."""
    import subprocess
    import sys
    code = "import sys; sys.modules['torch'] = None; import cktat_core.checks as c; print(c.within_noise(50, 51, 100))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr

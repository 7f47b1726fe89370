"""Every method's loss against the formula of SPEC 3/4, written out again here in numpy; RAAT's partition and
DICAR on cases with a known answer; DUCAT's recovery; every method trains on the embedded dataset."""

import dataclasses
import json
import os
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

import cktat_core.train as train_mod
from conftest import run_cut_after_epoch
from cktat_core import checkpoint as ckpt
from cktat_core import losses, methods
from cktat_core.config import Config, from_profile, resolve
from cktat_core.data import augment
from cktat_core.errors import ConfigError
from cktat_core.methods import METHODS, StepContext
from cktat_core.train import epoch_fractions

C, B = 4, 6  # classes, batch of the step tests


# ------------------------------------------------------------------------------------- numpy reference
def softmax(z, t=1.0):
    z = np.asarray(z, dtype=np.float64) / t
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def kl_rows(p, q):
    """sum_c p_c (log p_c - log q_c), one value per row."""
    return np.sum(np.where(p > 0, p * (np.log(np.where(p > 0, p, 1)) - np.log(q)), 0.0), axis=1)


def ce(z, y):
    p = softmax(z)
    return -np.log(p[np.arange(len(y)), y]).mean()


def js(za, zb, t):
    pa, pb = softmax(za, t), softmax(zb, t)
    m = np.maximum(0.5 * (pa + pb), 1e-8)
    return (0.5 * (kl_rows(pa, m) + kl_rows(pb, m))).mean()


def mart_bce_rows(z, y):
    p = softmax(z)
    others = p.copy()
    others[np.arange(len(y)), y] = -1
    return -np.log(p[np.arange(len(y)), y]) - np.log(1.0001 - others.max(axis=1) + 1e-12)


def mart_kl_term(zc, za, y):
    pc, pa = softmax(zc), softmax(za)
    rows = kl_rows(pc, pa + 1e-12)
    return np.sum(rows * (1.0000001 - pc[np.arange(len(y)), y])) / len(y)


# --------------------------------------------------------------------------------------- fixed logits
@pytest.fixture
def logits():
    g = torch.Generator().manual_seed(3)
    z = [torch.randn(B, C, generator=g) * 2 for _ in range(5)]
    y = torch.randint(0, C, (B,), generator=g)
    return z, y


def test_mart_loss_on_random_logits(logits):
    (zc, za, *_), y = logits
    got = losses.mart_loss(zc, za, y, beta=6.0).item()
    expected = mart_bce_rows(za.numpy(), y.numpy()).mean() + 6.0 * mart_kl_term(zc.numpy(), za.numpy(), y.numpy())
    assert got == pytest.approx(expected, rel=1e-5)


def test_js_divergence_on_random_logits(logits):
    (za, zb, *_), _ = logits
    for t in (0.5, 1.0, 2.0):
        assert losses.js_divergence(za, zb, t).item() == pytest.approx(js(za.numpy(), zb.numpy(), t), rel=1e-5)
    assert losses.js_divergence(za, za, 0.5).item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("w_b,w_a", [(0.25, 1.0), (0.0, 0.5)])
def test_ducat_loss_on_random_logits(w_b, w_a):
    g = torch.Generator().manual_seed(4)
    zc, za = torch.randn(B, 2 * C, generator=g), torch.randn(B, 2 * C, generator=g)
    y = torch.randint(0, C, (B,), generator=g)
    got = losses.ducat_loss(zc, za, y, C, w_b, w_a).item()
    lc, la = np.log(softmax(zc.numpy())), np.log(softmax(za.numpy()))
    r, yy = np.arange(B), y.numpy()
    clean = -((1 - w_b) * lc[r, yy] + w_b * lc[r, yy + C])
    adv = -((1 - w_a) * la[r, yy] + w_a * la[r, yy + C])
    assert got == pytest.approx(np.concatenate([clean, adv]).mean(), rel=1e-5)


def test_recovery_max_is_the_authors_rule_and_sum_adds_twin_probabilities():
    z = torch.randn(50, 2 * C, generator=torch.Generator().manual_seed(5))
    authors = z.argmax(1) % C  # argmax over 2C classes, k >= C -> k - C
    assert torch.equal(losses.recover_logits(z, C, "max").argmax(1), authors)
    p = softmax(z.numpy())
    summed = softmax(losses.recover_logits(z, C, "sum").numpy())
    np.testing.assert_allclose(summed, p[:, :C] + p[:, C:], rtol=1e-5)
    with pytest.raises(ValueError):
        losses.recover_logits(z, C, "mean")


# ------------------------------------------------------------------ each step on a tiny linear model
def linear(seed: int, out: int = C) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, out))


def f(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """The linear model's logits computed in numpy (float64)."""
    lin = model[1]
    w, b = lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy()
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1) @ w.T + b


def shift(x: torch.Tensor) -> torch.Tensor:
    """The stand-in attack: a fixed, input-dependent perturbation."""
    return (x + 0.05 * torch.sign(x - 0.5)).clamp(0, 1)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(7)
    x = torch.rand(B, 3, 8, 8, generator=g)
    y = torch.randint(0, C, (B,), generator=g)
    return x, y


@pytest.fixture
def fake_attack(monkeypatch):
    calls = []

    def attack(self, x, y, loss=None, model=None, **kw):
        calls.append({"loss": loss, **kw})
        return shift(x)

    monkeypatch.setattr(StepContext, "attack", attack)
    return calls


def make_ctx(method: str, epoch: int = 0, epochs: int = 10, head: int = C, **over):
    cfg = resolve(from_profile("smoke", {"method": method, **over}))
    student = linear(0, head)
    teacher = linear(1).eval()
    extra = {"teacher": linear(2), "clean_learner": linear(3)}
    gen = torch.Generator().manual_seed(11)
    return StepContext(model=student, cfg=cfg, teacher=teacher, extra=extra, epoch=epoch, generator=gen,
                       epochs=epochs, num_classes=C)


def step(ctx, x, y):
    return METHODS[ctx.cfg.method].step(ctx, x, y).item()


def test_pgdat_trades_cktat_steps(batch, fake_attack):
    x, y = batch
    xa, yy = shift(x), y.numpy()
    ctx = make_ctx("pgdat")
    assert step(ctx, x, y) == pytest.approx(ce(f(ctx.model, xa), yy), rel=1e-5)
    assert fake_attack[-1]["loss"] == "ce"
    ctx = make_ctx("trades", beta=6.0)
    zc, za = f(ctx.model, x), f(ctx.model, xa)
    assert step(ctx, x, y) == pytest.approx(ce(zc, yy) + 6 * kl_rows(softmax(zc), softmax(za)).mean(), rel=1e-5)
    assert fake_attack[-1]["loss"] == "kl"
    ctx = make_ctx("cktat", tau=5.0, beta=2.0)
    zc, za, zt = f(ctx.model, x), f(ctx.model, xa), f(ctx.teacher, x)
    expected = kl_rows(softmax(zt, 5.0), softmax(za)).mean() + 2 * kl_rows(softmax(zc), softmax(za)).mean()
    assert step(ctx, x, y) == pytest.approx(expected, rel=1e-5)


def test_mart_step(batch, fake_attack):
    x, y = batch
    ctx = make_ctx("mart", beta=5.0)
    zc, za, yy = f(ctx.model, x), f(ctx.model, shift(x)), y.numpy()
    expected = mart_bce_rows(za, yy).mean() + 5.0 * mart_kl_term(zc, za, yy)
    assert step(ctx, x, y) == pytest.approx(expected, rel=1e-5)
    assert fake_attack[-1]["loss"] == "ce" and fake_attack[-1]["random_start"] == "normal"


def test_lbgat_step_trains_the_teacher_jointly(batch, fake_attack):
    x, y = batch
    ctx = make_ctx("lbgat", beta=6.0)
    t = ctx.extra["teacher"]
    zc, za, zt, yy = f(ctx.model, x), f(ctx.model, shift(x)), f(t, x), y.numpy()
    expected = np.mean((za - zt) ** 2) + ce(zt, yy) + 6 * kl_rows(softmax(zc), softmax(za)).mean()
    loss = METHODS["lbgat"].step(ctx, x, y)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert t[1].weight.grad is not None and t[1].weight.grad.abs().sum() > 0  # the co-trained teacher learns
    assert fake_attack[-1]["loss"] == "kl"


def test_ltd_step(batch, fake_attack):
    x, y = batch
    ctx = make_ctx("ltd", ltd_tau_teacher=0.5, ltd_tau_student=2.0, beta=3.0)
    zc, za, zt = f(ctx.model, x), f(ctx.model, shift(x)), f(ctx.teacher, x)
    expected = kl_rows(softmax(zt, 0.5), softmax(zc, 2.0)).mean() + 3 * kl_rows(softmax(zc), softmax(za)).mean()
    assert step(ctx, x, y) == pytest.approx(expected, rel=1e-5)


def test_hat_step_uses_unclipped_helper_examples_and_the_helper_label_of_x_adv(batch, fake_attack):
    x, y = batch
    ctx = make_ctx("hat", hat_beta=2.5, hat_gamma=0.5, hat_h=2.0)
    xa = shift(x)
    x_help = x.numpy() + 2.0 * (xa.numpy() - x.numpy())
    assert (x_help > 1).any() or (x_help < 0).any()  # the helper example leaves the box: not clipped
    zc, za, zh = f(ctx.model, x), f(ctx.model, xa), f(ctx.model, x_help)
    y_help, yy = f(ctx.teacher, xa).argmax(1), y.numpy()
    expected = ce(zc, yy) + 2.5 * kl_rows(softmax(zc), softmax(za)).mean() + 0.5 * ce(zh, y_help)
    assert step(ctx, x, y) == pytest.approx(expected, rel=1e-5)


def test_generalist_step(batch, fake_attack):
    x, y = batch
    ctx = make_ctx("generalist")
    expected = ce(f(ctx.model, shift(x)), y.numpy()) + ce(f(ctx.extra["clean_learner"], x), y.numpy())
    assert step(ctx, x, y) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("alpha", [1.0, 0.7])
def test_ard_step(batch, fake_attack, alpha):
    x, y = batch
    ctx = make_ctx("ard", ard_tau=30.0, distill_alpha=alpha)
    zc, za, zt = f(ctx.model, x), f(ctx.model, shift(x)), f(ctx.teacher, x)
    expected = alpha * 900 * kl_rows(softmax(zt, 30), softmax(za, 30)).mean() + (1 - alpha) * ce(zc, y.numpy())
    # at tau 30 the KL is ~1e-4, a difference of nearly equal float32 logs: a looser tolerance
    assert step(ctx, x, y) == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("epoch,introspect", [(2, False), (3, True)])
def test_iad_step_introspects_from_the_begin_epoch(batch, fake_attack, epoch, introspect):
    x, y = batch
    ctx = make_ctx("iad", epoch=epoch, epochs=10, iad_begin=0.3, iad_tau=2.0, iad_b=0.1)
    xa, yy = shift(x), y.numpy()
    zc, za, zt = f(ctx.model, x), f(ctx.model, xa), f(ctx.teacher, x)
    expected = 4.0 * kl_rows(softmax(zt, 2.0), softmax(za, 2.0)).mean()
    if introspect:
        trust = softmax(f(ctx.teacher, xa))[np.arange(B), yy] ** 0.1
        expected += np.mean((1 - trust) * kl_rows(softmax(zc), softmax(za)))
    assert step(ctx, x, y) == pytest.approx(expected, rel=1e-5)


def test_rslad_step_and_its_attack_objective(batch, fake_attack):
    x, y = batch
    ctx = make_ctx("rslad")
    zc, za, zt = f(ctx.model, x), f(ctx.model, shift(x)), f(ctx.teacher, x)
    pt = softmax(zt)
    expected = 5 / 6 * kl_rows(pt, softmax(za)).mean() + 1 / 6 * kl_rows(pt, softmax(zc)).mean()
    assert step(ctx, x, y) == pytest.approx(expected, rel=1e-5)
    objective = fake_attack[-1]["loss"]
    probe = torch.randn(B, C, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(objective(probe, y).numpy(), kl_rows(pt, softmax(probe.numpy())), rtol=1e-5)
    assert fake_attack[-1]["random_start"] == "normal"


def test_kd_at_auto_step(batch, fake_attack):
    x, y = batch
    ctx = make_ctx("kd_at_auto", kd_tau=3.0, kd_rho=0.4)
    xa = shift(x)
    za, zt = f(ctx.model, xa), f(ctx.teacher, xa)  # the teacher labels the student's adversarial input
    soft = -(softmax(zt, 3.0) * np.log(softmax(za, 3.0))).sum(1).mean()
    assert step(ctx, x, y) == pytest.approx(0.6 * ce(za, y.numpy()) + 0.4 * 9 * soft, rel=1e-5)


def two_views(x, over_seed=11):
    """The two augmentations the step draws from its generator (seed 11 in make_ctx), recomputed here."""
    g = torch.Generator().manual_seed(over_seed)
    return augment(x, g), augment(x, g)


def test_cons_at_step(batch, fake_attack):
    x, y = batch
    ctx = make_ctx("cons_at", augment=True, cons_lambda=1.5, js_tau=0.5)
    x1, x2 = two_views(x)
    assert not torch.equal(x1, x2)
    z1, z2 = f(ctx.model, shift(x1)), f(ctx.model, shift(x2))
    yy = y.numpy()
    expected = ce(np.concatenate([z1, z2]), np.concatenate([yy, yy])) + 1.5 * js(z1, z2, 0.5)
    assert step(ctx, x, y) == pytest.approx(expected, rel=1e-5)


def raat_expected(ctx, x, y, m, boosted):
    """RAAT / RAAT++ written out: partition, training inputs, CE or MART's BCE, DICAR, MART's KL."""
    c = ctx.cfg
    x1, x2 = two_views(x)
    pair = torch.cat([x1, x2]).numpy().astype(np.float64)
    adv = shift(torch.cat([x1, x2])).numpy().astype(np.float64)
    y2 = np.concatenate([y.numpy(), y.numpy()])
    reduced = pair + c.raat_eta * (adv - pair)
    pc, pa, pr = (f(ctx.model, t).argmax(1) for t in (pair, adv, reduced))
    mis = pc != y2
    boundary = ~mis & (pa != y2) & (pr != y2)
    train_in = np.where(boundary[:, None, None, None], reduced, adv)
    zt = f(ctx.model, train_in)
    loss = mart_bce_rows(zt, y2).mean() if boosted else ce(zt, y2)
    keep = ~(mis[:B] | mis[B:])
    zc = f(ctx.model, pair)
    if keep.any():
        mixed = f(ctx.model, m * adv[:B][keep] + (1 - m) * adv[B:][keep])
        target = m * zc[:B][keep] + (1 - m) * zc[B:][keep]
        loss += c.cons_lambda * js(mixed, target, c.js_tau)
    if boosted:
        loss += c.beta * mart_kl_term(zc, f(ctx.model, adv), y2)
    return loss, keep


@pytest.mark.parametrize("method", ["raat", "raat_pp"])
def test_raat_steps(batch, fake_attack, monkeypatch, method):
    x, y = batch
    monkeypatch.setattr(methods, "dicar_mix_ratio", lambda gamma: 0.7)
    ctx = make_ctx(method, augment=True, raat_eta=0.1, cons_lambda=1.0, js_tau=0.5, beta=6.0)
    # a student that gets some images right, so that DICAR has a subset to work on
    with torch.no_grad():
        ctx.model[1].weight.mul_(5)
    expected, keep = raat_expected(ctx, x, y, 0.7, boosted=method == "raat_pp")
    assert keep.any()
    assert step(ctx, x, y) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("epoch,soft", [(7, False), (8, True)])
def test_ducat_step_switches_to_dummy_targets(batch, fake_attack, epoch, soft):
    x, y = batch
    ctx = make_ctx("ducat", epoch=epoch, epochs=10, head=2 * C, ducat_start=0.8, ducat_w_benign=0.25)
    zc, za, yy = f(ctx.model, x), f(ctx.model, shift(x)), y.numpy()
    if soft:
        r = np.arange(B)
        lc, la = np.log(softmax(zc)), np.log(softmax(za))
        expected = np.concatenate([-(0.75 * lc[r, yy] + 0.25 * lc[r, yy + C]), -la[r, yy + C]]).mean()
    else:
        expected = ce(za, yy)  # plain AT on labels in [0, C) of the 2C head
    assert step(ctx, x, y) == pytest.approx(expected, rel=1e-5)


# ----------------------------------------------------------------------- RAAT partition and DICAR
class MeanModel(nn.Module):
    """Two classes, decided by the mean pixel: class 0 when mean(x) > 0.5 (logits [s, -s], s = mean - 0.5)."""

    def forward(self, x):
        s = x.flatten(1).mean(1) - 0.5
        return torch.stack([s, -s], dim=1) * 10


def test_raat_partition_on_a_known_case(monkeypatch):
    # label 0 everywhere; clean means and the attack's target means per image:
    #   a: clean 0.40 (wrong)                                         -> misclassified
    #   b: clean 0.52, x' 0.30 (wrong), x+eta*delta 0.498 (wrong)     -> boundary
    #   c: clean 0.60, x' 0.30 (wrong), x+eta*delta 0.57 (right)      -> rest
    #   d: clean 0.80, x' 0.70 (right)                                -> rest
    clean = torch.tensor([0.40, 0.52, 0.60, 0.80])
    adv = torch.tensor([0.30, 0.30, 0.30, 0.70])
    x = clean.view(4, 1, 1, 1).expand(4, 3, 8, 8).clone()
    x_adv = adv.view(4, 1, 1, 1).expand(4, 3, 8, 8).clone()
    y = torch.zeros(4, dtype=torch.long)
    monkeypatch.setattr(StepContext, "attack", lambda self, xx, yy, **kw: x_adv)
    ctx = make_ctx("raat", raat_eta=0.1)
    ctx.model = MeanModel()
    b = methods.raat_batch(ctx, x, y)
    assert b.parts["misclassified"].tolist() == [True, False, False, False]
    assert b.parts["boundary"].tolist() == [False, True, False, False]
    assert b.parts["rest"].tolist() == [False, False, True, True]
    assert sum(p.long() for p in b.parts.values()).tolist() == [1, 1, 1, 1]  # a partition
    # the step tallied the partition for the epoch's history: shares of the 4 examples
    methods.raat_batch(ctx, x, y)
    assert epoch_fractions(ctx.counts) == {"partition_misclassified": 0.25, "partition_boundary": 0.25,
                                           "partition_rest": 0.5}
    assert ctx.counts["partition"][1] == 8  # two batches of 4 counted
    # boundary samples train on x + eta * delta (mean 0.52 + 0.1 * (0.30 - 0.52) = 0.498), the others on x'
    means = b.train_inputs.flatten(1).mean(1)
    np.testing.assert_allclose(means.numpy(), [0.30, 0.498, 0.30, 0.70], atol=1e-6)
    assert losses.raat_partition(torch.tensor([1]), torch.tensor([1]), torch.tensor([1]),
                                  torch.tensor([0]))["misclassified"].item()


def test_dicar_is_zero_for_a_linear_model_without_perturbation_and_keeps_only_twice_right_images(monkeypatch):
    g = torch.Generator().manual_seed(2)
    x1, x2 = torch.rand(B, 3, 8, 8, generator=g), torch.rand(B, 3, 8, 8, generator=g)
    y = torch.randint(0, C, (B,), generator=g)
    monkeypatch.setattr(methods, "dicar_mix_ratio", lambda gamma: 0.8)
    ctx = make_ctx("raat", js_tau=0.5, cons_lambda=1.0)
    with torch.no_grad():
        ctx.model[1].weight.mul_(10)  # confident outputs: a DICAR value well above float32 noise
    pair, y2 = torch.cat([x1, x2]), torch.cat([y, y])
    # no perturbation: f(m x1 + (1-m) x2) = m f(x1) + (1-m) f(x2) for a linear f, so DICAR vanishes
    monkeypatch.setattr(StepContext, "attack", lambda self, xx, yy, **kw: xx.clone())
    b = methods.raat_batch(ctx, pair, y2)
    b.parts["misclassified"][:] = False
    term, _ = methods.dicar_term(ctx, b)
    assert term.item() == pytest.approx(0.0, abs=1e-6)
    # with a perturbation it is positive, and an image with one misclassified view is left out
    monkeypatch.setattr(StepContext, "attack", lambda self, xx, yy, **kw: shift(xx))
    b = methods.raat_batch(ctx, pair, y2)
    b.parts["misclassified"][:] = False
    b.parts["misclassified"][B + 1] = True  # image 1's second view is wrong
    term, _ = methods.dicar_term(ctx, b)
    keep = np.ones(B, bool)
    keep[1] = False
    zc = f(ctx.model, pair)
    mixed = f(ctx.model, 0.8 * b.adv[:B].numpy()[keep] + 0.2 * b.adv[B:].numpy()[keep])
    expected = js(mixed, 0.8 * zc[:B][keep] + 0.2 * zc[B:][keep], 0.5)
    assert expected > 1e-3 and term.item() == pytest.approx(expected, rel=1e-4)


def test_dicar_mix_ratio_is_in_upper_half():
    torch.manual_seed(0)
    ms = [methods.dicar_mix_ratio(0.75) for _ in range(200)]
    assert all(0.5 <= m <= 1 for m in ms) and np.std(ms) > 0.05


# ---------------------------------------------------------------------------------------- Generalist
def test_ema_update_and_mix_schedule():
    src = linear(5)
    ema = methods.EMA(linear(6), decay=0.999)
    before = ema.network[1].weight.detach().clone()
    ema.update(src.state_dict())  # first update: decay min(0.999, 1/10)
    torch.testing.assert_close(ema.network[1].weight, 0.1 * before + 0.9 * src[1].weight.detach())
    assert int(ema.updates) == 1 and not any(p.requires_grad for p in ema.parameters())
    assert methods.generalist_mix_weight(120, 120) == pytest.approx(0.9)
    assert methods.generalist_mix_weight(60, 120) == pytest.approx(1.0)
    assert methods.generalist_mix_weight(100, 120) == pytest.approx(0.95)


@pytest.mark.parametrize("epoch,copied", [(4, False), (5, True)])  # 1-based 6 (multiple of 3, >= 0.6*10)
def test_generalist_copies_the_mixed_teacher_back_in_copy_epochs(epoch, copied):
    cfg = resolve(from_profile("smoke", {"method": "generalist", "generalist_copy_start": 0.6}))
    model = linear(0)
    extra = methods.Generalist().extra_modules(cfg, C, model)
    with torch.no_grad():
        model[1].weight.add_(1.0)
    ctx = StepContext(model=model, cfg=cfg, extra=extra, epoch=epoch, epochs=10, num_classes=C)
    methods.Generalist().after_step(ctx)
    same = torch.equal(model[1].weight, extra["ema_mixed"].network[1].weight)
    assert same == copied
    assert torch.equal(extra["clean_learner"][1].weight, extra["ema_mixed"].network[1].weight) == copied


# ------------------------------------------------------------------------------ training, end to end
TRAINABLE = [m for m in METHODS if m != "clean"]
READS: set[str] = set()  # the Config fields code in methods.py read (`Recording`)


class Recording(Config):
    """A Config that notes every field read from code in `cktat_core.methods` (steps, declared terms, machinery)."""

    def __getattribute__(self, name):
        if not name.startswith("_") and sys._getframe(1).f_globals.get("__name__") == "cktat_core.methods":
            READS.add(name)
        return object.__getattribute__(self, name)


def recording(cfg: Config) -> Recording:
    return Recording(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)})


@pytest.mark.parametrize("method", TRAINABLE)
def test_every_method_trains_and_changes_the_weights(method, tiny, tmp_path, monkeypatch):
    seen = {}
    real = train_mod.train_phase

    def spy(model, m, *a, **k):
        if m.name == method:
            seen["start"] = {k_: v.clone() for k_, v in model.state_dict().items()}
        return real(model, m, *a, **k)

    monkeypatch.setattr(train_mod, "train_phase", spy)
    cfg = from_profile("smoke", {**tiny, "method": method, "epochs": 1, "teacher_epochs": 1, "train_limit": 128,
                                 "test_limit": 64, "val_size": 64, "ducat_start": 0.0})
    READS.clear()
    res = train_mod.run(recording(cfg), str(tmp_path))
    # the per-method settings the method read are the ones it declares: its runs' settings (`train.student_keys`)
    # hold exactly those, so a changed setting it reads is never mistaken for a finished run
    assert READS & train_mod.METHOD_KEYS == set(METHODS[method].settings)
    last = ckpt.load(str(tmp_path / res["student"]["checkpoints"]["last"]))  # OUT/student for every method
    trained = last.get("student", last["model"])
    assert set(trained) == set(seen["start"])
    assert any(not torch.equal(trained[k], seen["start"][k]) for k in trained if trained[k].is_floating_point())
    assert all(torch.isfinite(v).all() for v in trained.values() if v.is_floating_point())
    assert np.isfinite(res["student"]["history"][0]["train_loss"])
    # RAAT's partition of the training examples, per epoch, as shares that cover the epoch exactly once
    shares = {k: v for k, v in res["student"]["history"][0].items() if k.startswith("partition_")}
    if method in ("raat", "raat_pp"):
        assert set(shares) == {"partition_misclassified", "partition_boundary", "partition_rest"}
        assert sum(shares.values()) == pytest.approx(1.0) and all(0 <= v <= 1 for v in shares.values())
    else:
        assert shares == {}
    head = METHODS[method].machinery.head_size(10)
    assert last["num_classes"] == head and last["classes"] == 10 and last["method"] == method
    acc = res["student"]["last"]["test"]["attacks"]
    assert 0 <= acc["pgd3"]["accuracy"] <= acc["natural"]["accuracy"] <= 100


def test_teacher_kinds_of_the_distillation_methods(tiny, tmp_path):
    """ARD's teacher is robust (phase 1 = PGD-AT) unless teacher_kind=clean, as Table 1 needs."""
    base = {**tiny, "method": "ard", "epochs": 1, "teacher_epochs": 1, "train_limit": 128, "test_limit": 64,
            "val_size": 64}
    robust = train_mod.run(from_profile("smoke", base), str(tmp_path / "r"))
    clean = train_mod.run(from_profile("smoke", {**base, "teacher_kind": "clean"}), str(tmp_path / "c"))
    assert "val_pgd2" in robust["teacher"]["history"][0]  # validated as an adversarial phase
    assert "val_pgd2" not in clean["teacher"]["history"][0]
    with pytest.raises(ConfigError) as e:
        from_profile("smoke", {"method": "pgdat", "teacher_kind": "clean"})
    assert e.value.field == "teacher_kind"


def test_ducat_is_evaluated_as_the_deployed_classifier_and_under_the_authors_protocol(tiny, tmp_path):
    cfg = from_profile("smoke", {**tiny, "method": "ducat", "epochs": 2, "train_limit": 128, "test_limit": 64,
                                 "val_size": 64, "ducat_start": 0.5})
    res = train_mod.run(cfg, str(tmp_path))
    last = res["student"]["last"]
    attacks = last["test"]["attacks"]
    assert {"natural", "pgd3", "pgd3_raw_head", "pgd3_worst_case"} <= set(attacks)
    from cktat_core.checks import noise_margin
    worst, n = attacks["pgd3_worst_case"]["accuracy"], attacks["natural"]["total"]
    for name in ("pgd3", "pgd3_raw_head"):  # the worst case over both recoveries and the raw head
        assert worst <= attacks[name]["accuracy"] + noise_margin(worst, attacks[name]["accuracy"], n)
    assert last["protocol_gap"]["pgd3_raw_head"] == pytest.approx(
        attacks["pgd3_raw_head"]["accuracy"] - attacks["pgd3"]["accuracy"])
    clf, info = ckpt.load_classifier(str(tmp_path / "student" / "best.pt"))
    assert isinstance(clf, methods.Recovered) and info["num_classes"] == 10
    x = torch.rand(5, 3, 32, 32)
    with torch.no_grad():
        assert clf(x).shape == (5, 10)
        assert torch.equal(clf(x).argmax(1), clf.network(x).argmax(1) % 10)
    # the natural accuracy of the deployed model is the authors' score: argmax over 2C mapped back
    from cktat_core.data import load_splits
    test = load_splits("multiview", val_size=64, train_limit=128, test_limit=64).test
    with torch.no_grad():
        authors = (clf.network(test.x).argmax(1) % 10 == test.y).float().mean().item() * 100
    best = res["student"]["best"]["test"]["attacks"]["natural"]["accuracy"]
    assert best == pytest.approx(authors)


@pytest.mark.parametrize("method", ["cons_at", "raat", "generalist"])
def test_resume_is_exact_with_two_views_dicar_draws_and_ema_teachers(method, tiny, tmp_path, monkeypatch):
    """Two-view augmentations (from the checkpointed generator), DICAR's Beta draws (torch's generator) and
    Generalist's EMA teachers (extra modules) all survive an interruption: same weights as an uninterrupted run."""
    cfg = from_profile("smoke", {**tiny, "method": method, "epochs": 3, "train_limit": 128, "test_limit": 32,
                                 "val_size": 64, "augment": True})
    train_mod.run(cfg, str(tmp_path / "full"))
    run_cut_after_epoch(monkeypatch, train_mod, cfg, str(tmp_path / "cut"))
    train_mod.run(cfg, str(tmp_path / "cut"))
    a = ckpt.load(str(tmp_path / "full" / "student" / "last.pt"))
    b = ckpt.load(str(tmp_path / "cut" / "student" / "last.pt"))
    for key in ("model", "student", "extra"):
        if key in a:
            flat_a = a[key] if key != "extra" else {f"{m}.{k}": v for m, sd in a[key].items() for k, v in sd.items()}
            flat_b = b[key] if key != "extra" else {f"{m}.{k}": v for m, sd in b[key].items() for k, v in sd.items()}
            assert flat_a.keys() == flat_b.keys() and all(torch.equal(flat_a[k], flat_b[k]) for k in flat_a), key
    if method == "generalist":
        assert "student" in a and set(a["extra"]) == {"clean_learner", "ema_adv", "ema_clean", "ema_mixed"}


# ------------------------------------------------------------------------------------- CLI and Table 2
def test_methods_table_lists_every_method_with_its_paper_spelling(capsys):
    from cktat_core.cli import main

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for m in TRAINABLE:
        row = [l for l in out.splitlines() if l.split() and l.split()[0] == m]
        assert row, m
        assert METHODS[m].title in row[0] and METHODS[m].teacher in row[0]
    assert "RAAT++" in out and "KD-AT-Auto" in out and "Cons-AT" in out
    assert methods.method_name("RAAT++") == "raat_pp" and methods.method_name("KD-AT-Auto") == "kd_at_auto"


# Each declared method's loss as losses.py writes it (tested against the formulas in test_losses.py and above).
REFERENCE_LOSSES = {
    "clean": lambda o, y, c: losses.pgdat_loss(o["f(x)"], y),
    "pgdat": lambda o, y, c: losses.pgdat_loss(o["f(x')"], y),
    "trades": lambda o, y, c: losses.trades_loss(o["f(x)"], o["f(x')"], y, beta=c.beta),
    "lbgat": lambda o, y, c: losses.lbgat_loss(o["f(x')"], o["f(x)"], o["T(x)"], y, beta=c.beta),
    "ltd": lambda o, y, c: losses.ltd_loss(o["f(x)"], o["f(x')"], o["T(x)"], tau_teacher=c.ltd_tau_teacher,
                                           tau_student=c.ltd_tau_student, beta=c.beta),
    "ard": lambda o, y, c: losses.ard_loss(o["f(x')"], o["f(x)"], o["T(x)"], y, tau=c.ard_tau,
                                           alpha=c.distill_alpha),
    "rslad": lambda o, y, c: losses.rslad_loss(o["f(x')"], o["f(x)"], o["T(x)"]),
    "kd_at_auto": lambda o, y, c: losses.kd_at_loss(o["f(x')"], o["T(x')"], y, tau=c.kd_tau, rho=c.kd_rho),
    "cktat": lambda o, y, c: losses.cktat_loss(o["f(x')"], o["f(x)"], o["T(x)"], tau=c.tau, beta=c.beta,
                                               teacher_weight=c.teacher_weight, tau_squared=c.tau_squared,
                                               detach_clean=c.detach_clean, teacher_label=c.teacher_label,
                                               labels=y),
}
DECLARED = [m for m in METHODS if METHODS[m].terms]
SETTINGS = [{}, {"tau": 2.0, "beta": 3.0, "teacher_weight": 0.5, "tau_squared": True, "detach_clean": True,
                 "ltd_tau_teacher": 0.7, "ltd_tau_student": 2.0, "ard_tau": 4.0, "distill_alpha": 0.6,
                 "kd_tau": 3.0, "kd_rho": 0.3},
            {"teacher_label": "onehot", "teacher_weight": 0.7, "tau": 3.0, "tau_squared": True}]


def test_every_declared_method_has_a_reference_loss():
    assert set(DECLARED) == set(REFERENCE_LOSSES)
    assert {"pgdat", "trades", "cktat", "ltd", "ard", "rslad", "kd_at_auto", "lbgat"} <= set(DECLARED)


@pytest.mark.parametrize("over", SETTINGS)
@pytest.mark.parametrize("method", DECLARED)
def test_declared_terms_give_the_loss_of_losses_py_and_its_gradients(method, over):
    """The row against its loss: the declaration that writes a method's Table 2 row computes, on random logits,
    the value and the gradients of the method's loss in losses.py (so detached targets stay detached)."""
    cfg = from_profile("smoke", {"method": method, **over})
    g = torch.Generator().manual_seed(len(method))
    base = {k: (torch.randn(8, 5, generator=g) * 3) for k in methods.OUTPUTS}
    y = torch.randint(0, 5, (8,), generator=g)

    def value_and_grads(fn):
        o = {k: v.clone().requires_grad_(True) for k, v in base.items()}
        loss = fn(o, y, cfg)
        grads = torch.autograd.grad(loss, list(o.values()), allow_unused=True)
        return loss.item(), [torch.zeros(8, 5) if gr is None else gr for gr in grads]

    got, got_grads = value_and_grads(lambda o, y, c: methods.terms_loss(METHODS[method].terms, o, y, c))
    want, want_grads = value_and_grads(REFERENCE_LOSSES[method])
    assert got == pytest.approx(want, rel=1e-5)
    for name, a, b in zip(methods.OUTPUTS, got_grads, want_grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), name


def test_table2_rows_come_from_the_declarations():
    """Rows of declared methods as the paper's Table 2 writes them (CKTAT: f(x') : T^tau(x), f(x') : f(x));
    a declared method cannot carry hand-written labels, and a hand-written step must state them."""
    rows = {r["method"]: r for r in methods.table2()}
    assert set(rows) == set(TRAINABLE)
    labels = {m: (rows[m]["label of f(x)"], rows[m]["label of f(x')"]) for m in rows}
    assert labels["cktat"] == ("-", "T^tau(x), f(x)")
    assert labels["trades"] == ("y", "f(x)")
    assert labels["ltd"] == ("T^tau(x)", "f(x)")
    assert labels["rslad"] == ("T(x)", "T(x)")
    assert labels["pgdat"] == ("-", "y")
    assert labels["ard"] == ("y", "T^tau(x)")
    assert labels["kd_at_auto"] == ("-", "y, T^tau(x')")
    assert labels["lbgat"] == ("-", "T(x) (MSE), f(x)") and "T(x) : y" in rows["lbgat"]["difficulty reducers"]
    for m in DECLARED:
        for t in METHODS[m].terms:
            assert METHODS[m].teacher != "none" or not t.target.startswith("T"), m
    with pytest.raises(ValueError):
        methods.Method("x", terms=(methods.Term("f(x')", "y", "ce"),), labels=("-", "y"))
    with pytest.raises(ValueError):
        methods.Method("x", custom_step=methods.mart_step)
    with pytest.raises(ValueError):
        methods.Term("f(x')", "y", "kl")


def test_kd_at_auto_row_states_why_its_teacher_is_robust(capsys):
    """KD-AT-Auto's teacher is robust although the paper's Table 2 lists a clean one: the row says so, and
    `cktat methods` prints the note under the table."""
    from cktat_core.cli import main

    row = [r for r in methods.table2() if r["method"] == "kd_at_auto"][0]
    assert row["teacher"] == "robust" and "Tclean" in row["note"] and "adversarially trained" in row["note"]
    assert [r["method"] for r in methods.table2() if r["note"]] == ["kd_at_auto"]
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "KD-AT-Auto [1]" in out and f"[1] {row['note']}" in out


def test_cli_teacher_flag_and_paper_spelling(tiny, tmp_path, capsys):
    from cktat_core.cli import main

    sets = [f"{k}={v}" for k, v in {**tiny, "epochs": 1, "teacher_epochs": 1, "train_limit": 128,
                                     "test_limit": 32, "val_size": 64}.items()]
    assert main(["train", "--method", "CKTAT", "--out", str(tmp_path / "a"), "--set"] + sets) == 0
    teacher = str(tmp_path / "a" / "teacher" / "last.pt")
    assert main(["train", "--method", "LTD", "--teacher", teacher, "--out", str(tmp_path / "b"), "--set"] + sets) == 0
    res = json.loads((tmp_path / "b" / "result.json").read_text())
    assert res["method"] == "ltd" and os.path.samefile(tmp_path / "b" / res["teacher"]["checkpoint"], teacher)
    assert not (tmp_path / "b" / "teacher").exists()
    capsys.readouterr()
    assert main(["train", "--method", "hat", "--out", str(tmp_path / "c"), "--set", "ducat_recovery=mean"]) == 2
    assert "ducat_recovery" in capsys.readouterr().err


@pytest.mark.parametrize("item,field", [("raat_eta=1.5", "raat_eta"), ("js_tau=0", "js_tau"),
                                        ("kd_rho=1.5", "kd_rho"), ("generalist_copy_every=0",
                                                                   "generalist_copy_every")])
def test_bad_method_settings_name_the_field(item, field):
    from cktat_core.config import parse_overrides

    with pytest.raises(ConfigError) as e:
        from_profile("smoke", parse_overrides([item]))
    assert e.value.field == field

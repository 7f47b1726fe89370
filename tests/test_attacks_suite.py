"""The Table 4 attacks (FGSM, PGD-20/100, MIM, CW-inf, L2 PGD, AutoAttack): inside the ball and [0, 1], and
stronger than a random perturbation of the same size on a small trained model."""

import copy
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from cktat_core.attacks import cw_inf, cw_loss, mim, targeted_ce
from cktat_core.data import MULTIVIEW, dataset_defaults
from cktat_core.evaluate import Threat, attack_spec, build_attack

EPS = MULTIVIEW.eps / 2  # a budget at which the clean-trained CNN is broken but a random perturbation is not
EPS_L2 = dataset_defaults("multiview")["eps_l2"]
THREAT = Threat(EPS, EPS / 4, "linf", EPS_L2, EPS_L2 / 4)


def _batch(s, n):
    return s.test.x[:n], s.test.y[:n]


def _acc(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def _random_same_size(x, spec):
    g = torch.Generator().manual_seed(0)
    if spec.norm == "linf":  # a random corner of the ball
        noise = torch.randint(0, 2, x.shape, generator=g).float().mul_(2).sub_(1) * spec.eps
    else:
        noise = torch.randn(x.shape, generator=g)
        noise = noise / noise.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * spec.eps
    return (x + noise).clamp(0, 1)


@pytest.mark.parametrize("name,n", [("fgsm", 128), ("pgd20", 128), ("pgd100", 64), ("mim", 128), ("cw", 128),
                                    ("pgd20_l2", 128), ("aa", 16)])
def test_attack_in_ball_and_box_and_beats_random_noise(trained_cnn, name, n):
    model, s = trained_cnn
    x, y = _batch(s, n)
    spec = attack_spec(name, THREAT, "standard", aa_version="apgd")
    torch.manual_seed(0)
    x_adv = build_attack(spec)(model, x, y)
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(1) if spec.norm == "linf" else delta.norm(dim=1)
    assert (size <= spec.eps + 1e-6).all()
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert not x_adv.requires_grad and x_adv.grad_fn is None and x_adv.shape == x.shape
    clean, rand, adv = _acc(model, x, y), _acc(model, _random_same_size(x, spec), y), _acc(model, x_adv, y)
    assert rand > clean - 0.15  # the random perturbation of this size is harmless ...
    assert adv < rand - 0.3  # ... the attack is not


def test_pgd100_not_weaker_than_pgd20(trained_cnn):
    model, s = trained_cnn
    x, y = _batch(s, 128)
    threat = Threat(MULTIVIEW.eps / 4, MULTIVIEW.eps / 16)  # a budget where some points survive PGD-20
    torch.manual_seed(0)
    x20 = build_attack(attack_spec("pgd20", threat))(model, x, y)
    x100 = build_attack(attack_spec("pgd100", threat))(model, x, y)
    a20, a100 = _acc(model, x20, y), _acc(model, x100, y)
    assert 0 < a20 < _acc(model, x, y)  # the comparison is not decided at 0% or at clean accuracy
    assert a100 <= a20
    # the loss of the last iterate (the evaluation keeps the first fooling iterate instead, a lower loss)
    last = {n: build_attack(replace(attack_spec(n, threat), best_iterate=False))(model, x, y)
            for n in ("pgd20", "pgd100")}
    with torch.no_grad():
        assert F.cross_entropy(model(last["pgd100"]), y) > F.cross_entropy(model(last["pgd20"]), y)


def _reference_mim(model, x, y, eps, alpha, steps, decay):
    """MI-FGSM written out (Dong et al. 2018, Algorithm 1, with the PGD projection)."""
    g = torch.zeros_like(x)
    x_adv = x.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        grad, = torch.autograd.grad(F.cross_entropy(model(x_adv), y, reduction="sum"), x_adv)
        g = decay * g + grad / grad.abs().flatten(1).sum(1).view(-1, 1, 1, 1)
        x_adv = torch.min(torch.max(x_adv.detach() + alpha * g.sign(), x - eps), x + eps).clamp(0, 1)
    return x_adv


def test_mim_matches_the_written_out_algorithm(trained_cnn):
    # float64, so that a gradient sign near zero cannot flip with the CPU's float32 rounding
    model, s = trained_cnn
    model = copy.deepcopy(model).double()
    x, y = _batch(s, 32)
    x = x.double()
    ours = mim(model, x, y, eps=EPS, alpha=EPS / 4, steps=10, decay=1.0)
    ref = _reference_mim(model, x, y, EPS, EPS / 4, 10, 1.0)
    assert ours.dtype == torch.float64 and (ours - ref).abs().max() < 1e-9
    plain = mim(model, x, y, eps=EPS, alpha=EPS / 4, steps=10, decay=0.0)  # momentum 0 is a different attack
    assert not torch.equal(plain, ours)


def test_cw_loss_is_the_margin_of_the_reference_codes():
    logits = torch.tensor([[3.0, 1.0, 0.0], [3.0, 1.0, 0.0]])
    y = torch.tensor([0, 1])
    assert torch.equal(cw_loss(50.0)(logits, y), torch.tensor([-(3 - 1 + 50.0), -(1 - 3 + 50.0)]))
    assert torch.equal(cw_loss(0.0)(logits, y), torch.tensor([-2.0, 0.0]))  # already misclassified: 0
    target = torch.tensor([2, 0])  # targeted: -relu(max_{j != t} z_j - z_t + kappa)
    assert torch.equal(cw_loss(0.0, target)(logits, y), torch.tensor([-3.0, 0.0]))


def test_cw_inf_lowers_the_margin_more_than_random_noise(trained_cnn):
    model, s = trained_cnn
    x, y = _batch(s, 128)
    spec = attack_spec("cw", THREAT)
    margin = cw_loss(0.0)
    with torch.no_grad():
        m_rand = -margin(model(_random_same_size(x, spec)), y).mean()
        m_adv = -margin(model(cw_inf(model, x, y, eps=EPS, alpha=EPS / 4, steps=30, kappa=50.0)), y).mean()
    assert m_adv < 0.5 * m_rand  # the true class's lead over the runner-up mostly gone


def test_targeted_variants_reach_the_target(trained_cnn):
    from cktat_core.attacks import pgd

    model, s = trained_cnn
    x, y = _batch(s, 64)
    target = (y + 1) % 10
    with torch.no_grad():
        before = (model(x).argmax(1) == target).float().mean().item()
    x_ce = pgd(model, x, y, eps=MULTIVIEW.eps, alpha=MULTIVIEW.eps / 4, steps=20, loss=targeted_ce(target))
    x_cw = cw_inf(model, x, y, eps=MULTIVIEW.eps, alpha=MULTIVIEW.eps / 4, steps=20, kappa=0.0, target=target)
    for x_adv in (x_ce, x_cw):
        with torch.no_grad():
            hit = (model(x_adv).argmax(1) == target).float().mean().item()
        assert hit > before + 0.4


@pytest.mark.parametrize("name", ["mim", "cw", "pgd20_l2"])
def test_new_attacks_run_in_eval_mode_and_restore_it(trained_cnn, name):
    model, s = trained_cnn
    x, y = _batch(s, 8)
    seen = []
    hook = model.register_forward_pre_hook(lambda m, inp: seen.append(m.training))
    try:
        model.train()
        build_attack(attack_spec(name, THREAT))(model, x, y)
        assert model.training
    finally:
        hook.remove()
        model.eval()
    assert seen and not any(seen)
    assert all(p.grad is None for p in model.parameters())

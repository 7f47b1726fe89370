"""PGD and FGSM: inside the ball and [0, 1], stronger than chance, and well-behaved with the model."""

import pytest
import torch
import torch.nn.functional as F

from cktat_core.attacks import fgsm, pgd


def _batch(s, n=128):
    return s.test.x[:n], s.test.y[:n]


def _ce(model, x, y):
    with torch.no_grad():
        return F.cross_entropy(model(x), y).item()


@pytest.mark.parametrize("norm,eps,alpha", [("linf", 0.02, 0.005), ("l2", 0.5, 0.125)])
@pytest.mark.parametrize("start", ["uniform", "normal", "none"])
def test_pgd_stays_in_ball_and_box(trained_cnn, norm, eps, alpha, start):
    model, s = trained_cnn
    x, y = _batch(s)
    x_adv = pgd(model, x, y, eps=eps, alpha=alpha, steps=5, norm=norm, random_start=start)
    delta = (x_adv - x).flatten(1)
    size = delta.abs().max(1).values if norm == "linf" else delta.norm(dim=1)
    assert (size <= eps + 1e-6).all()
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert not x_adv.requires_grad and x_adv.grad_fn is None


@pytest.mark.parametrize("norm,eps,alpha", [("linf", 0.0125, 0.005), ("l2", 0.4, 0.1)])
def test_pgd_raises_loss_beyond_random_noise(trained_cnn, norm, eps, alpha):
    model, s = trained_cnn
    x, y = _batch(s)
    torch.manual_seed(0)
    if norm == "linf":
        noise = (torch.rand_like(x) * 2 - 1).sign() * eps  # a random corner of the ball
    else:
        noise = torch.randn_like(x)
        noise = noise / noise.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * eps
    x_rand = (x + noise).clamp(0, 1)
    x_adv = pgd(model, x, y, eps=eps, alpha=alpha, steps=10, norm=norm)
    clean, rand, adv = _ce(model, x, y), _ce(model, x_rand, y), _ce(model, x_adv, y)
    assert adv > rand + 0.5 and adv > clean + 0.5
    with torch.no_grad():
        acc_adv = (model(x_adv).argmax(1) == y).float().mean().item()
        acc_rand = (model(x_rand).argmax(1) == y).float().mean().item()
    assert acc_adv < acc_rand - 0.2


def test_more_steps_is_not_weaker(trained_cnn):
    model, s = trained_cnn
    x, y = _batch(s)
    torch.manual_seed(1)
    l1 = _ce(model, pgd(model, x, y, eps=0.0125, alpha=0.003, steps=1), y)
    l10 = _ce(model, pgd(model, x, y, eps=0.0125, alpha=0.003, steps=10), y)
    assert l10 > l1


def test_kl_objective_moves_away_from_clean_prediction(trained_cnn):
    model, s = trained_cnn
    x, y = _batch(s)
    x_adv = pgd(model, x, y, eps=0.0125, alpha=0.003, steps=5, loss="kl")
    with torch.no_grad():
        p = F.softmax(model(x), 1)
        kl_adv = F.kl_div(F.log_softmax(model(x_adv), 1), p, reduction="batchmean").item()
        x_small = x + 0.001 * torch.randn_like(x)
        kl_start = F.kl_div(F.log_softmax(model(x_small), 1), p, reduction="batchmean").item()
    assert kl_adv > 100 * max(kl_start, 1e-6)


def test_custom_objective_callable(trained_cnn):
    model, s = trained_cnn
    x, y = _batch(s, 32)
    target = (y + 1) % 10  # a targeted attack: maximise the log-probability of target
    x_adv = pgd(model, x, y, eps=0.02, alpha=0.005, steps=10,
                loss=lambda logits, _y: F.log_softmax(logits, 1).gather(1, target[:, None]).squeeze(1))
    with torch.no_grad():
        hit = (model(x_adv).argmax(1) == target).float().mean().item()
        before = (model(x).argmax(1) == target).float().mean().item()
    assert hit > before + 0.3


@pytest.mark.parametrize("mode", [True, False])
def test_attack_restores_mode_uses_eval_and_touches_no_parameter_grads(trained_cnn, mode):
    model, s = trained_cnn
    x, y = _batch(s, 16)
    seen = []
    hook = model.register_forward_pre_hook(lambda m, inp: seen.append(m.training))
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
    stats = bn.running_mean.clone()
    try:
        model.train(mode)
        pgd(model, x, y, eps=0.01, alpha=0.003, steps=3)
    finally:
        hook.remove()
        model.eval()
    assert seen and not any(seen)  # every forward pass ran in eval mode
    assert torch.equal(bn.running_mean, stats)  # BatchNorm statistics untouched
    assert model.training is False
    assert all(p.grad is None for p in model.parameters())


def test_mode_restored_to_train(trained_cnn):
    model, s = trained_cnn
    model.train()
    try:
        pgd(model, *_batch(s, 8), eps=0.01, alpha=0.003, steps=1)
        assert model.training
    finally:
        model.eval()


def test_fgsm_is_one_full_step(trained_cnn):
    model, s = trained_cnn
    x, y = _batch(s, 64)
    x_adv = fgsm(model, x, y, eps=0.01)
    d = (x_adv - x).abs()
    interior = (x > 0.02) & (x < 0.98)
    assert torch.allclose(d[interior], torch.full_like(d[interior], 0.01), atol=1e-6)
    assert _ce(model, x_adv, y) > _ce(model, x, y)


def test_bad_arguments_raise():
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    x, y = torch.rand(2, 3, 4, 4), torch.tensor([0, 1])
    with pytest.raises(ValueError):
        pgd(m, x, y, norm="l3")
    with pytest.raises(ValueError):
        pgd(m, x, y, random_start="gaussian")
    with pytest.raises(ValueError):
        pgd(m, x, y, loss="hinge")

"""Losses against values computed independently here, straight from the formulas (SPEC 2, 3)."""

import math

import numpy as np
import pytest
import torch

from cktat_core import losses


def _softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _kl_rows(p, q):
    return np.sum(p * (np.log(p) - np.log(q)), axis=1)


@pytest.fixture
def logits():
    g = torch.Generator().manual_seed(0)
    s_adv = torch.randn(6, 10, generator=g) * 2
    s_clean = torch.randn(6, 10, generator=g) * 2
    t_clean = torch.randn(6, 10, generator=g) * 4
    y = torch.randint(0, 10, (6,), generator=g)
    return s_adv, s_clean, t_clean, y


@pytest.mark.parametrize("tau,beta,tw,sq", [(5.0, 6.0, 1.0, False), (1.0, 0.0, 1.0, False),
                                             (2.0, 3.0, 0.0, False), (4.0, 1.5, 0.5, True)])
def test_cktat_loss_matches_eq17(logits, tau, beta, tw, sq):
    s_adv, s_clean, t_clean, _ = logits
    got = losses.cktat_loss(s_adv, s_clean, t_clean, tau=tau, beta=beta, teacher_weight=tw, tau_squared=sq)
    p_t = _softmax(t_clean.numpy() / tau)  # teacher softened, student at temperature 1
    p_adv = _softmax(s_adv.numpy())
    p_clean = _softmax(s_clean.numpy())
    distill = _kl_rows(p_t, p_adv).mean() * (tau**2 if sq else 1.0)
    expected = tw * distill + beta * _kl_rows(p_clean, p_adv).mean()
    assert got.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_cktat_loss_default_is_tau5_beta6(logits):
    s_adv, s_clean, t_clean, _ = logits
    explicit = losses.cktat_loss(s_adv, s_clean, t_clean, tau=5.0, beta=6.0, teacher_weight=1.0)
    assert losses.cktat_loss(s_adv, s_clean, t_clean).item() == pytest.approx(explicit.item())


def test_cktat_clean_branch_gradient_follows_detach_flag(logits):
    s_adv, s_clean, t_clean, _ = logits
    for detach, expect_grad in [(False, True), (True, False)]:
        sc = s_clean.clone().requires_grad_(True)
        tc = t_clean.clone().requires_grad_(True)
        losses.cktat_loss(s_adv.clone().requires_grad_(True), sc, tc, detach_clean=detach).backward()
        assert (sc.grad is not None and sc.grad.abs().sum() > 0) == expect_grad
        assert tc.grad is None  # the teacher never receives gradient


def test_kl_is_zero_for_identical_and_positive_otherwise(logits):
    s_adv, s_clean, _, _ = logits
    assert losses.kl(s_adv, s_adv).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.kl(s_clean, s_adv).item() > 0


def test_trades_loss_formula(logits):
    s_adv, s_clean, _, y = logits
    got = losses.trades_loss(s_clean, s_adv, y, beta=6.0)
    p_clean, p_adv = _softmax(s_clean.numpy()), _softmax(s_adv.numpy())
    ce = -np.log(p_clean[np.arange(6), y.numpy()]).mean()
    assert got.item() == pytest.approx(ce + 6.0 * _kl_rows(p_clean, p_adv).mean(), rel=1e-5)


def test_pgdat_loss_is_mean_cross_entropy(logits):
    s_adv, _, _, y = logits
    p = _softmax(s_adv.numpy())
    assert losses.pgdat_loss(s_adv, y).item() == pytest.approx(-np.log(p[np.arange(6), y.numpy()]).mean(), rel=1e-5)


def test_kl_reduction_none_sums_to_batchmean(logits):
    s_adv, s_clean, _, _ = logits
    per = losses.kl(s_clean, s_adv, reduction="none")
    assert per.shape == (6,)
    assert per.mean().item() == pytest.approx(losses.kl(s_clean, s_adv).item(), rel=1e-6)
    with pytest.raises(ValueError):
        losses.kl(s_clean, s_adv, reduction="sum")

"""`models.fold_batchnorm`, the view of a network the attacks run on: the same function, BatchNorms folded into
the convolutions before them; and the cases where it must leave the network alone."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import CountForwards

from cktat_core import models
from cktat_core.attacks import pgd
from cktat_core.checks import noise_margin
from cktat_core.methods import EMA, Recovered
from cktat_core.models import InputQuantized, build_model, fold_batchnorm


def randomised(name: str, seed: int = 0) -> nn.Module:
    """A network in eval mode whose BatchNorms hold statistics and affine parameters far from the identity."""
    torch.manual_seed(seed)
    m = build_model(name, 10)
    with torch.no_grad():
        for bn in m.modules():
            if isinstance(bn, nn.BatchNorm2d):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.3, 3.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.3, 0.3)
    return m.eval()


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    g, = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)
    return g


def batchnorms_run(view: nn.Module) -> int:
    """How many BatchNorm2d modules a forward pass of `view` calls."""
    if not isinstance(view, torch.fx.GraphModule):
        return sum(isinstance(m, nn.BatchNorm2d) for m in view.modules())
    mods = dict(view.named_modules())
    return sum(n.op == "call_module" and isinstance(mods[n.target], nn.BatchNorm2d) for n in view.graph.nodes)


@pytest.mark.parametrize("name,left", [("small_cnn", 0), ("resnet18", 0), ("preact_resnet18", 9)])
def test_folded_view_is_the_same_function_with_fewer_batchnorms(name, left):
    model = randomised(name)
    x, y = torch.rand(6, 3, 32, 32), torch.randint(0, 10, (6,))
    view = fold_batchnorm(model)
    assert view is not model
    # all BatchNorms fold in small_cnn and resnet18; in the pre-activation network the 8 BatchNorms on residual
    # sums and the final one stay
    assert batchnorms_run(view) == left < batchnorms_run(model)
    with torch.no_grad():
        torch.testing.assert_close(view(x), model(x), rtol=1e-4, atol=1e-5)
    # The same function, checked in float64: in float32 the input gradient of a random deep network is small
    # and its rounding error depends on the CPU's kernels, in float64 any difference is the folding's own.
    model64, x64 = model.double(), x.double()
    view64 = fold_batchnorm(model64)
    with torch.no_grad():
        torch.testing.assert_close(view64(x64), model64(x64), rtol=1e-12, atol=1e-12)
    g_view, g_model = input_gradient(view64, x64, y), input_gradient(model64, x64, y)
    assert ((g_view - g_model).norm() / g_model.norm()).item() < 1e-10
    assert model.training is False and all(p.grad is None for p in model.parameters())


def test_building_a_view_draws_no_random_numbers():
    """Resumed runs restore the generator's state; a view built after that must not move it."""
    model = randomised("resnet18", seed=1)
    state = torch.get_rng_state()
    fold_batchnorm(model)
    fold_batchnorm(model)
    assert torch.equal(torch.get_rng_state(), state)


def test_folded_weights_carry_no_gradient_and_the_network_gets_none():
    model = randomised("resnet18")
    view = fold_batchnorm(model)
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    view(x).sum().backward()
    folded = [m for m in view.modules() if isinstance(m, nn.Conv2d) and m.bias is not None]
    assert folded and all(not m.weight.requires_grad and m.weight.grad is None for m in folded)
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_view_follows_new_weights_statistics_and_replaced_modules():
    model = randomised("small_cnn")
    x = torch.rand(4, 3, 32, 32)
    first = fold_batchnorm(model)
    with torch.no_grad():  # an optimiser step and new BatchNorm statistics, in place
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        model.features[1].running_var.mul_(2.0)
        before = model(x)
        torch.testing.assert_close(fold_batchnorm(model)(x), before, rtol=1e-4, atol=1e-5)
    model.linear = nn.Linear(model.linear.in_features, 10)  # a module replaced: the graph is traced again
    with torch.no_grad():
        view = fold_batchnorm(model)
        torch.testing.assert_close(view(x), model(x), rtol=1e-4, atol=1e-5)
    assert view is not first


class Branching(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x) if x.mean() > 0 else -self.model(x)


def test_the_network_is_left_alone_where_folding_is_unsafe(monkeypatch):
    model = randomised("small_cnn")
    model.train()
    assert fold_batchnorm(model) is model  # train mode: BatchNorm uses batch statistics
    model.eval()
    counting = CountForwards(model)  # a side effect in forward, which tracing would run once and never again
    assert fold_batchnorm(counting) is counting and counting.calls == 0  # unknown class: not traced, not called
    hook = model.features[1].register_forward_hook(lambda *a: None)
    assert fold_batchnorm(model) is model  # a hook would not run in the view
    hook.remove()
    assert fold_batchnorm(model) is not model
    monkeypatch.setattr(models, "PURE_FORWARD", models.PURE_FORWARD | {Branching})
    branching = Branching(model)
    assert fold_batchnorm(branching) is branching  # tracing fails: the network as it is
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)).eval()
    assert fold_batchnorm(linear) is linear  # nothing to fold


def test_wrappers_of_the_library_fold_through():
    model = randomised("small_cnn")
    x = torch.rand(4, 3, 32, 32)
    for wrapper in (InputQuantized(model), EMA(model), Recovered(build_model("small_cnn", 20), 10)):
        wrapper.eval()
        view = fold_batchnorm(wrapper)
        assert view is not wrapper and batchnorms_run(view) == 0
        with torch.no_grad():
            torch.testing.assert_close(view(x), wrapper(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("norm,eps,alpha", [("linf", 0.003125, 0.00125), ("l2", 0.1, 0.025)])
def test_pgd_on_the_folded_view_reaches_the_same_outcomes(trained_cnn, norm, eps, alpha):
    """The same attack on both: the same images survive (up to a few whose gradient is ~0 somewhere, where
    float rounding flips a sign), and the robust accuracies agree within noise. A budget where some survive."""
    model, s = trained_cnn
    x, y = s.test.x[:256], s.test.y[:256]
    stats = [b.running_mean.clone() for b in model.modules() if isinstance(b, nn.BatchNorm2d)]
    model.train()
    survived = {}
    for fold in (True, False):
        torch.manual_seed(0)
        adv = pgd(model, x, y, eps=eps, alpha=alpha, steps=10, norm=norm, fold_bn=fold)
        assert model.training  # the mode it found
        model.eval()
        with torch.no_grad():
            survived[fold] = model(adv).argmax(1) == y
        model.train()
    model.eval()
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
    acc = {f: v.float().mean().item() for f, v in survived.items()}
    assert (survived[True] == survived[False]).float().mean().item() >= 0.97
    assert abs(acc[True] - acc[False]) * 100 <= noise_margin(acc[True] * 100, acc[False] * 100, len(y))
    assert 0.05 < acc[True] < clean - 0.2  # the attack does its work and some images survive it
    assert all(torch.equal(a, b.running_mean) for a, b in
               zip(stats, [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]))


# ------------------------------------------------------------------- failure modes that must not go silent
class ConvTwice(nn.Module):
    """One convolution called at two places, a BatchNorm after the first call only; and (`read_weight`) its
    weight also read directly in forward."""

    def __init__(self, read_weight: bool = False):
        super().__init__()
        self.conv, self.bn, self.head = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.Linear(8, 10)
        self.read_weight = read_weight

    def forward(self, x):
        a = F.relu(self.bn(self.conv(x)))
        b = self.conv(x) if not self.read_weight else F.conv2d(x, self.conv.weight, padding=1)
        return self.head(F.adaptive_avg_pool2d(a + b, 1).flatten(1))


def _randomise_bn(model):
    with torch.no_grad():
        for bn in model.modules():
            if isinstance(bn, nn.BatchNorm2d):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.3, 3.0)
                bn.weight.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize("read_weight", [False, True])
def test_a_convolution_used_at_two_places_gives_the_same_function(monkeypatch, read_weight):
    monkeypatch.setattr(models, "PURE_FORWARD", models.PURE_FORWARD | {ConvTwice})
    torch.manual_seed(0)
    model = _randomise_bn(ConvTwice(read_weight))
    x, y = torch.rand(4, 3, 8, 8), torch.arange(4)
    view = fold_batchnorm(model)
    with torch.no_grad():
        torch.testing.assert_close(view(x), model(x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(input_gradient(view, x, y), input_gradient(model, x, y), rtol=1e-4, atol=1e-5)


def test_a_cached_view_follows_the_constants_tracing_captured():
    """Normalisation statistics (a buffer replaced), quantisation levels and the recovery mode (plain attributes
    read in forward, which tracing turns into constants) changed after the view was built."""
    x = torch.rand(4, 3, 32, 32)
    norm = models.Normalized(randomised("small_cnn"), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)).eval()
    quant = InputQuantized(randomised("small_cnn"), 255).eval()
    rec = Recovered(randomised("small_cnn"), 5, "max").eval()
    for wrapper, change in ((norm, lambda: setattr(norm, "mean", torch.full((1, 3, 1, 1), 0.1))),
                            (quant, lambda: setattr(quant, "levels", 1)),
                            (rec, lambda: setattr(rec, "how", "sum"))):
        with torch.no_grad():
            before = wrapper(x)
            torch.testing.assert_close(fold_batchnorm(wrapper)(x), before, rtol=1e-4, atol=1e-5)
            change()
            after = wrapper(x)
            assert not torch.allclose(after, before, atol=1e-3)  # the change matters
            torch.testing.assert_close(fold_batchnorm(wrapper)(x), after, rtol=1e-4, atol=1e-5)


def test_backward_hooks_keep_the_network_unfolded():
    model = randomised("small_cnn")
    x, y = torch.rand(4, 3, 32, 32), torch.arange(4)
    assert fold_batchnorm(model) is not model
    zero = model.features[0].register_full_backward_hook(lambda m, gin, gout: (torch.zeros_like(gin[0]),))
    assert fold_batchnorm(model) is model
    assert input_gradient(model, x, y).abs().sum() == 0  # the hook masks the gradient; the attack must see that
    zero.remove()
    pre = model.features[1].register_full_backward_pre_hook(lambda m, gout: None)
    assert fold_batchnorm(model) is model
    pre.remove()
    glob = torch.nn.modules.module.register_module_full_backward_hook(lambda m, gin, gout: None)
    try:
        assert fold_batchnorm(model) is model
    finally:
        glob.remove()
    assert fold_batchnorm(model) is not model


def test_mixed_train_eval_submodules_are_not_folded_and_keep_their_modes():
    model = randomised("small_cnn")
    model.features[1].train()  # a BatchNorm left in train mode inside an eval-mode network
    assert fold_batchnorm(model) is model
    x, y = torch.rand(4, 3, 32, 32), torch.arange(4)
    pgd(model, x, y, eps=0.01, alpha=0.005, steps=2)  # attacked in eval mode, then every mode given back
    assert [m.training for m in model.modules()] == [m is model.features[1] for m in model.modules()]

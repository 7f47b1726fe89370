"""White-box attacks on [0, 1] images: PGD (L-inf and L2, several objectives), FGSM, and the evaluation
attacks of Table 4: MIM (`mim`) and CW-inf (`cw_inf`, PGD on the margin loss `cw_loss`). AutoAttack lives
in `cktat_core.autoattack`.

Every attack
- returns a detached tensor inside the eps-ball around x and inside [0, 1];
- runs the model in eval() mode (BatchNorm uses running statistics, as SPEC 1 fixes and unlike the
  ARD/IAD codes) and leaves every submodule in the train/eval mode it found (`eval_mode`);
- takes gradients with respect to the input only (`torch.autograd.grad`), so no parameter .grad is
  touched and no weight-gradient kernels run;
- runs on `models.fold_batchnorm(model)`: the same eval-mode function with each BatchNorm that follows a
  convolution folded into it, which makes every step cheaper (`fold_bn=False` attacks the modules as they are);
- never synchronises with the host inside its loop (no .item(), no data-dependent Python branches).

For evaluation, `pgd` can keep the strongest input it met rather than its last iterate (`best_iterate`: an image
counts as broken if ANY iterate, the random start included, fooled the model; the check is one argmax per step on
logits the step computes anyway) and can restart (`restarts`: an image broken by any restart stays broken).
`worst_case_attack` combines several (classifier view, attack) pairs per image: an image survives only if it
survives every pair (DUCAT's adaptive evaluation, SPEC 4).

Objectives (`loss`):
- "ce": cross-entropy on the label y (Madry et al.; CKTAT Algorithm 1 line 11).
- "kl": KL(f(x) || f(x')), the TRADES inner maximisation; y is ignored. TRADES starts from
  x + 0.001 * N(0, I); that is the default start for this objective.
- a callable `loss(logits_adv, y) -> tensor`: any objective to maximise (summed over the batch),
  e.g. the CW margin or a teacher's KL (RSLAD).
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .models import fold_batchnorm

LossArg = str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
AttackFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
Predict = Callable[[torch.Tensor], torch.Tensor]  # logits -> predicted labels


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval() mode inside the block; afterwards every submodule is back in the mode it had (a network
    whose submodules were in mixed train/eval modes keeps them mixed)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def _argmax(logits: torch.Tensor) -> torch.Tensor:
    return logits.argmax(1)


def _wide(logits: torch.Tensor) -> torch.Tensor:
    """Logits in at least float32 (bf16/fp16 under autocast are widened; float64 stays float64)."""
    return logits if logits.dtype == torch.float64 else logits.float()


def _objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: LossArg):
    """A function of the adversarial logits to maximise."""
    if callable(loss):
        return lambda logits: loss(logits, y).sum()
    if loss == "ce":
        return lambda logits: F.cross_entropy(_wide(logits), y, reduction="sum")
    if loss == "kl":
        with torch.no_grad():
            p_clean = F.softmax(_wide(model(x)), dim=1)
        return lambda logits: F.kl_div(F.log_softmax(_wide(logits), dim=1), p_clean, reduction="sum")
    raise ValueError(f"loss must be 'ce', 'kl' or a callable, got {loss!r}")


def _start(x: torch.Tensor, eps: float, norm: str, random_start: str) -> torch.Tensor:
    if random_start == "none":
        return torch.zeros_like(x)
    if random_start == "normal":  # TRADES: 0.001 * N(0, I)
        return 0.001 * torch.randn_like(x)
    if random_start != "uniform":
        raise ValueError(f"random_start must be 'uniform', 'normal' or 'none', got {random_start!r}")
    if norm == "linf":
        return torch.empty_like(x).uniform_(-eps, eps)
    # uniform in the L2 ball: Gaussian direction, radius eps * U^(1/d)
    d = x[0].numel()
    direction = torch.randn_like(x)
    direction = direction / direction.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    radius = eps * torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) ** (1.0 / d)
    return direction * radius


def _project(delta: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Into the eps-ball, then into the [0, 1] box (x + delta stays a valid image)."""
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        norms = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        delta = delta * (eps / norms.clamp_min(1e-12)).clamp(max=1.0)
    return (x + delta).clamp(0, 1) - x


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 8 / 255, alpha: float = 2 / 255,
        steps: int = 10, norm: str = "linf", loss: LossArg = "ce", random_start: str | None = None,
        momentum: float = 0.0, fold_bn: bool = True, best_iterate: bool = False, restarts: int = 1,
        predict: Predict | None = None) -> torch.Tensor:
    """Projected gradient ascent on `loss` within the eps-ball (Madry et al. 2018).

    random_start: "uniform" (in the ball), "normal" (0.001 * N(0, I), as TRADES), "none"; None picks the
    objective's own start: "normal" for loss="kl", "uniform" otherwise.
    momentum > 0 accumulates L1-normalised gradients (MIM, Dong et al. 2018; decay 1.0 in the book).
    fold_bn: attack `models.fold_batchnorm(model)`, the same function at a lower cost per step.
    best_iterate: return, for each image, the first iterate (the start included) at which the attacked
    network's prediction `predict(logits)` (default argmax) was not y, and the last iterate where none was;
    without it the last iterate is returned, as Madry et al. and the training attacks do.
    restarts: run the attack this many times from fresh random starts; an image fooled by one restart keeps
    that restart's fooling input (the last restart's last iterate where none fooled). The final iterate of every
    restart but the last is checked with one more forward pass.
    """
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
    if restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {restarts}")
    if random_start is None:
        random_start = "normal" if loss == "kl" else "uniform"
    predict = predict or _argmax
    with eval_mode(model):
        x = x.detach()
        net = fold_batchnorm(model) if fold_bn else model
        objective = _objective(net, x, y, loss)
        if norm == "linf":  # ball and [0, 1] box in one clamp: delta in [max(-eps, -x), min(eps, 1 - x)]
            lo, hi = (-x).clamp(min=-eps), (1 - x).clamp(max=eps)
        track = best_iterate or restarts > 1
        found = torch.zeros(len(x), dtype=torch.bool, device=x.device) if track else None
        best = torch.zeros_like(x) if track else None
        for restart in range(restarts):
            delta = _project(_start(x, eps, norm, random_start), x, eps, norm)
            g_acc = torch.zeros_like(x) if momentum else None
            for _ in range(steps):
                delta.requires_grad_(True)
                with torch.enable_grad():
                    logits = net(x + delta)
                    grad, = torch.autograd.grad(objective(logits), delta)
                delta = delta.detach()
                if best_iterate:  # this iterate fooled the network: keep the first such iterate
                    new = (predict(logits.detach()) != y) & ~found
                    best = torch.where(new.view(-1, 1, 1, 1), delta, best)
                    found |= new
                if momentum:
                    g_acc = momentum * g_acc + grad / grad.abs().flatten(1).mean(1).clamp_min(1e-12).view(-1, 1, 1, 1)
                    grad = g_acc
                if norm == "linf":
                    delta = torch.clamp(delta.add_(grad.sign(), alpha=alpha), lo, hi)
                else:
                    delta = delta + alpha * grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
                    delta = _project(delta, x, eps, norm)
            if restart < restarts - 1:
                with torch.no_grad():
                    new = (predict(net(x + delta)) != y) & ~found
                best = torch.where(new.view(-1, 1, 1, 1), delta, best)
                found |= new
                if bool(found.all()):  # once per restart: nothing left to break
                    break
        if track:
            delta = torch.where(found.view(-1, 1, 1, 1), best, delta)
        return (x + delta).detach()


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 8 / 255, norm: str = "linf",
         loss: LossArg = "ce", best_iterate: bool = False) -> torch.Tensor:
    """One gradient-sign step of size eps from x (Goodfellow et al. 2015). best_iterate: as in `pgd` (x itself
    is the only other iterate)."""
    return pgd(model, x, y, eps=eps, alpha=eps, steps=1, norm=norm, loss=loss, random_start="none",
               best_iterate=best_iterate)


# ----------------------------------------------------------------- evaluation attacks (SPEC 5, Table 4)
def cw_loss(kappa: float = 50.0, target: torch.Tensor | None = None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The Carlini-Wagner margin as a per-sample objective to maximise, as the TRADES / MART evaluation codes
    write it: -relu(z_y - max_{j != y} z_j + kappa). Maximising it pushes the true logit below the runner-up
    until the margin reaches -kappa (kappa 50 in those codes; some papers use 0).

    target (optional, a label per sample): the targeted variant -relu(max_{j != t} z_j - z_t + kappa), which
    pulls the logit of class t above every other logit.
    """
    def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = _wide(logits)
        cls = y if target is None else target
        onehot = F.one_hot(cls, logits.shape[1]).bool()
        own = logits.gather(1, cls[:, None]).squeeze(1)
        other = logits.masked_fill(onehot, float("-inf")).amax(1)
        gap = own - other if target is None else other - own
        return -F.relu(gap + kappa)
    return margin


def targeted_ce(target: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Per-sample objective of a targeted attack: -CE(logits, target), maximised by moving towards class t."""
    return lambda logits, _y: -F.cross_entropy(_wide(logits), target, reduction="none")


def mim(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 8 / 255, alpha: float = 2 / 255,
        steps: int = 20, decay: float = 1.0, norm: str = "linf", loss: LossArg = "ce", random_start: str = "none",
        best_iterate: bool = False) -> torch.Tensor:
    """Momentum iterative attack (MI-FGSM, Dong et al. 2018): g <- decay * g + grad / ||grad||_1, step alpha *
    sign(g), projected into the eps-ball and [0, 1]. Starts at x by default (no random start), as Dong et al. do;
    the Generalist evaluation code starts from a uniform point of the ball (`random_start="uniform"`). The book's
    protocol: 20 steps of 2/255, decay 1.0 (SPEC 5). The gradient is divided by its mean absolute value, which
    is ||grad||_1 up to the constant number of pixels (the sign of the step does not change).
    """
    return pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, norm=norm, loss=loss, random_start=random_start,
               momentum=decay, best_iterate=best_iterate)


def cw_inf(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 8 / 255, alpha: float = 2 / 255,
           steps: int = 30, kappa: float = 50.0, random_start: str = "uniform",
           target: torch.Tensor | None = None, best_iterate: bool = False) -> torch.Tensor:
    """CW-inf: L-inf PGD on the CW margin (`cw_loss`), not the original optimisation-based C&W attack.
    SPEC 5: 30 steps of 2/255 from a uniform start, kappa 50."""
    return pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, norm="linf", loss=cw_loss(kappa, target),
               random_start=random_start, best_iterate=best_iterate)


# ------------------------------------------------------------------------------ per-image worst case
def worst_case_attack(pairs: Sequence[tuple[Callable[[nn.Module], nn.Module], AttackFn]]) -> AttackFn:
    """One attack function made of several (classifier view, attack) pairs: each attack runs against its view of
    the evaluated model (`view(model)`, e.g. a recovery of DUCAT's 2C head or the raw head itself), and for each
    image the first adversarial input that the evaluated model misclassifies is kept (the last pair's input
    where none does). Scored by the evaluated model, an image is then robust only if it survives every pair.

    DUCAT (SPEC 4): views "max" and "sum" recovery (`methods.Recovered`) and the raw 2C head, each with PGD.
    """
    def attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with eval_mode(model):
            found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
            best = x.detach().clone()
            for view, fn in pairs:
                x_adv = fn(view(model), x, y)
                with torch.no_grad():
                    new = (model(x_adv).argmax(1) != y) & ~found
                best = torch.where(new.view(-1, 1, 1, 1), x_adv, best)
                found |= new
                last = x_adv
            return torch.where(found.view(-1, 1, 1, 1), best, last) if pairs else best
    return attack

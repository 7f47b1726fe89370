"""Every method's loss as a plain function of logits, in the spirit of the one-file TRADES code.

Conventions: `*_logits` are raw network outputs; KL(p || q) is sum_c p_c (log p_c - log q_c), averaged over
the batch ("batchmean") unless a method's authors reduce otherwise, in which case the docstring says so.
The first argument of `kl` is the target distribution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kl(target_logits: torch.Tensor, logits: torch.Tensor, tau_target: float = 1.0, tau: float = 1.0,
       reduction: str = "batchmean") -> torch.Tensor:
    """KL(softmax(target_logits / tau_target) || softmax(logits / tau)).

    reduction "batchmean": sum over classes, mean over the batch; "none": one value per sample.
    Gradients flow into both arguments; detach the target where a method freezes it.
    """
    log_q = F.log_softmax(logits.float() / tau, dim=1)
    log_p = F.log_softmax(target_logits.float() / tau_target, dim=1)
    per_sample = (log_p.exp() * (log_p - log_q)).sum(dim=1)
    if reduction == "none":
        return per_sample
    if reduction == "batchmean":
        return per_sample.mean()
    raise ValueError(f"reduction must be 'batchmean' or 'none', got {reduction!r}")


def pgdat_loss(adv_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PGD-AT (Madry et al. 2018): CE(f(x'), y), mean over the batch."""
    return F.cross_entropy(adv_logits.float(), y)


def trades_loss(clean_logits: torch.Tensor, adv_logits: torch.Tensor, y: torch.Tensor,
                beta: float = 6.0) -> torch.Tensor:
    """TRADES (Zhang et al. 2019): CE(f(x), y) + beta * KL(f(x) || f(x')), batchmean.

    As the authors code it, the clean branch keeps its gradient in the KL term (it is not detached).
    """
    return F.cross_entropy(clean_logits.float(), y) + beta * kl(clean_logits, adv_logits)


def cktat_loss(student_adv_logits: torch.Tensor, student_clean_logits: torch.Tensor,
               teacher_clean_logits: torch.Tensor, tau: float = 5.0, beta: float = 6.0,
               teacher_weight: float = 1.0, tau_squared: bool = False, detach_clean: bool = False) -> torch.Tensor:
    """CKTAT, Eq. 17 of the paper: KL(T^tau(x) || S(x')) + beta * KL(S(x) || S(x')).

    Decisions the paper leaves open (SPEC 2), each a parameter:
    - the temperature tau softens the teacher only (Table 2: f(x') : T^tau(x)); student logits at 1;
    - no tau^2 factor unless `tau_squared` (Hinton et al.'s gradient-scale correction);
    - both KLs batchmean;
    - the consistency term is TRADES's: the clean branch S(x) keeps its gradient unless `detach_clean`;
    - the teacher's logits carry no gradient (they are detached here whatever the caller passes);
    - `teacher_weight` = 0 and `beta` = 0 are the Table 3a ablations.
    """
    distill = kl(teacher_clean_logits.detach(), student_adv_logits, tau_target=tau)
    if tau_squared:
        distill = distill * tau**2
    target = student_clean_logits.detach() if detach_clean else student_clean_logits
    return teacher_weight * distill + beta * kl(target, student_adv_logits)

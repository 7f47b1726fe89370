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
               teacher_weight: float = 1.0, tau_squared: bool = False, detach_clean: bool = False,
               teacher_label: str = "soft", labels: torch.Tensor | None = None) -> torch.Tensor:
    """CKTAT, Eq. 17 of the paper: KL(T^tau(x) || S(x')) + beta * KL(S(x) || S(x')).

    Decisions the paper leaves open, each a parameter:
    - the temperature tau softens the teacher only (Table 2: f(x') : T^tau(x)); student logits at 1;
    - no tau^2 factor unless `tau_squared` (Hinton et al.'s gradient-scale correction);
    - both KLs batchmean;
    - the consistency term is TRADES's: the clean branch S(x) keeps its gradient unless `detach_clean`;
    - the teacher's logits carry no gradient (they are detached here whatever the caller passes);
    - `teacher_weight` = 0 and `beta` = 0 are the Table 3a ablations;
    - `teacher_label="onehot"` replaces the teacher's label by the one-hot `labels`: KL(onehot(y) || S(x')) =
      CE(S(x'), y), the teacher term removed from a loss that keeps a label (Table 3a as the paper can have run it).
    """
    if teacher_label == "onehot":
        distill = F.cross_entropy(student_adv_logits.float(), labels)
    else:
        distill = kl(teacher_clean_logits.detach(), student_adv_logits, tau_target=tau)
        if tau_squared:
            distill = distill * tau**2
    target = student_clean_logits.detach() if detach_clean else student_clean_logits
    return teacher_weight * distill + beta * kl(target, student_adv_logits)


# ------------------------------------------------------------------------------------------ helpers
def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """-sum_c q_c log softmax(logits)_c with a probability target q; mean over the batch (or per sample)."""
    per_sample = -(target_probs.float() * F.log_softmax(logits.float(), dim=1)).sum(dim=1)
    return per_sample if reduction == "none" else per_sample.mean()


def js_divergence(logits_a: torch.Tensor, logits_b: torch.Tensor, tau: float = 1.0,
                  reduction: str = "batchmean") -> torch.Tensor:
    """Jensen-Shannon divergence of softmax(logits_a / tau) and softmax(logits_b / tau), as Cons-AT codes it.

    JS = (KL(p_a || m) + KL(p_b || m)) / 2 with m = (p_a + p_b) / 2, log m clamped at 1e-8; batchmean.
    """
    log_pa = F.log_softmax(logits_a.float() / tau, dim=1)
    log_pb = F.log_softmax(logits_b.float() / tau, dim=1)
    pa, pb = log_pa.exp(), log_pb.exp()
    log_m = (0.5 * (pa + pb)).clamp(min=1e-8).log()
    per_sample = 0.5 * ((pa * (log_pa - log_m)).sum(dim=1) + (pb * (log_pb - log_m)).sum(dim=1))
    if reduction == "none":
        return per_sample
    return per_sample.mean()


# -------------------------------------------------------------------------------------------- MART
def mart_boosted_ce(adv_logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """MART's boosted cross-entropy: CE(f(x'), y) - log(1.0001 - max_{k != y} p_k(x') + 1e-12).

    The runner-up class is the most probable class other than y (MART picks it from the top two of an argsort,
    which is the same class). The constants 1.0001 and 1e-12 are the authors' numerical guards.
    """
    logits = adv_logits.float()
    probs = F.softmax(logits, dim=1)
    others = probs.masked_fill(F.one_hot(y, probs.shape[1]).bool(), float("-inf"))
    runner_up = others.argmax(dim=1)
    margin = -torch.log(1.0001 - probs.gather(1, runner_up[:, None]).squeeze(1) + 1e-12)
    per_sample = F.cross_entropy(logits, y, reduction="none") + margin
    return per_sample if reduction == "none" else per_sample.mean()


def mart_kl(clean_logits: torch.Tensor, adv_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MART's misclassification-aware term: sum_i KL(p(x_i) || p(x'_i)) * (1.0000001 - p_y(x_i)) / B.

    As the authors code it: log p(x') is computed as log(p + 1e-12), the clean probabilities keep their gradient
    (both in the KL target and in the weight).
    """
    p_clean = F.softmax(clean_logits.float(), dim=1)
    log_p_adv = torch.log(F.softmax(adv_logits.float(), dim=1) + 1e-12)
    kl_rows = (torch.xlogy(p_clean, p_clean) - p_clean * log_p_adv).sum(dim=1)
    true_probs = p_clean.gather(1, y[:, None]).squeeze(1)
    return (kl_rows * (1.0000001 - true_probs)).sum() / len(y)


def mart_loss(clean_logits: torch.Tensor, adv_logits: torch.Tensor, y: torch.Tensor, beta: float = 6.0) -> torch.Tensor:
    """MART (Wang et al. 2020): BCE(f(x'), y) + beta * sum_i KL(f(x_i) || f(x'_i)) (1 - p_y(x_i)) / B."""
    return mart_boosted_ce(adv_logits, y) + beta * mart_kl(clean_logits, adv_logits, y)


# ------------------------------------------------------------------------------------------- LBGAT
def lbgat_loss(adv_logits: torch.Tensor, clean_logits: torch.Tensor, teacher_clean_logits: torch.Tensor,
               y: torch.Tensor, beta: float = 6.0) -> torch.Tensor:
    """LBGAT (Cui et al. 2021): MSE(f(x'), T(x)) + CE(T(x), y) + beta * KL(f(x) || f(x')).

    As the authors code it: the MSE is a mean over batch and classes and the co-trained teacher T receives
    gradient through both the MSE and its own cross-entropy (nothing is detached); the KL is batchmean.
    """
    t = teacher_clean_logits.float()
    return F.mse_loss(adv_logits.float(), t) + F.cross_entropy(t, y) + beta * kl(clean_logits, adv_logits)


# --------------------------------------------------------------------------------------------- LTD
def ltd_loss(clean_logits: torch.Tensor, adv_logits: torch.Tensor, teacher_clean_logits: torch.Tensor,
             tau_teacher: float = 0.5, tau_student: float = 1.0, beta: float = 6.0) -> torch.Tensor:
    """LTD (Chen & Lee 2021): KL(T^{tau_t}(x) || f^{tau_s}(x)) + beta * KL(f(x) || f(x')), both batchmean.

    The clean branch learns the teacher's soft labels at a low teacher temperature and a fixed, different student
    temperature; the adversarial branch is TRADES's consistency term. The teacher carries no gradient.
    """
    distill = kl(teacher_clean_logits.detach(), clean_logits, tau_target=tau_teacher, tau=tau_student)
    return distill + beta * kl(clean_logits, adv_logits)


# --------------------------------------------------------------------------------------------- HAT
def hat_loss(clean_logits: torch.Tensor, adv_logits: torch.Tensor, helper_logits: torch.Tensor, y: torch.Tensor,
             y_helper: torch.Tensor, beta: float = 2.5, gamma: float = 0.5) -> torch.Tensor:
    """HAT (Rade & Moosavi-Dezfooli 2022): CE(f(x), y) + beta * KL(f(x) || f(x')) + gamma * CE(f(x_h), y_h).

    x_h = x + h (x' - x) is the helper example and y_h = argmax H(x') the clean helper model's label for the
    adversarial input; all terms are means over the batch (the KL batchmean).
    """
    return (F.cross_entropy(clean_logits.float(), y) + beta * kl(clean_logits, adv_logits)
            + gamma * F.cross_entropy(helper_logits.float(), y_helper))


# -------------------------------------------------------------------------------------- Generalist
def generalist_loss(adv_learner_logits: torch.Tensor, clean_learner_logits: torch.Tensor,
                    y: torch.Tensor) -> torch.Tensor:
    """Generalist (Wang et al. 2023): CE(f_adv(x'), y) + CE(f_clean(x), y) for two disjoint learners.

    The learners share no parameters, so one SGD optimiser on the sum is the authors' two optimisers.
    """
    return F.cross_entropy(adv_learner_logits.float(), y) + F.cross_entropy(clean_learner_logits.float(), y)


# ------------------------------------------------------------------------------------- distillation
def ard_loss(adv_logits: torch.Tensor, clean_logits: torch.Tensor, teacher_clean_logits: torch.Tensor,
             y: torch.Tensor, tau: float = 30.0, alpha: float = 1.0) -> torch.Tensor:
    """ARD (Goldblum et al. 2020): alpha * tau^2 * KL(T^tau(x) || f^tau(x')) + (1 - alpha) * CE(f(x), y).

    KL batchmean (the authors' nn.KLDivLoss() also divides by the number of classes: not copied).
    """
    distill = kl(teacher_clean_logits.detach(), adv_logits, tau_target=tau, tau=tau)
    return alpha * tau**2 * distill + (1 - alpha) * F.cross_entropy(clean_logits.float(), y)


def iad_loss(adv_logits: torch.Tensor, clean_logits: torch.Tensor, teacher_clean_logits: torch.Tensor,
             teacher_adv_logits: torch.Tensor, y: torch.Tensor, tau: float = 1.0, b: float = 0.1,
             alpha: float = 1.0, introspect: bool = True) -> torch.Tensor:
    """IAD (Zhu et al. 2022), as the authors' IAD-I code computes it:

        alpha * tau^2 * KL(T^tau(x) || f^tau(x'))                       (batchmean)
      + alpha * mean_i (1 - P_T(y_i | x'_i)^b) * KL(f(x_i) || f(x'_i))  (from the begin epoch on: `introspect`)
      + (1 - alpha) * CE(f(x), y).

    The reliability weight P_T(y | x')^b is a constant (no gradient); f(x) keeps its gradient in the KL.
    """
    loss = alpha * tau**2 * kl(teacher_clean_logits.detach(), adv_logits, tau_target=tau, tau=tau)
    if introspect:
        with torch.no_grad():
            trust = F.softmax(teacher_adv_logits.float(), dim=1).gather(1, y[:, None]).squeeze(1).pow(b)
        loss = loss + alpha * ((1 - trust) * kl(clean_logits, adv_logits, reduction="none")).mean()
    return loss + (1 - alpha) * F.cross_entropy(clean_logits.float(), y)


def rslad_loss(adv_logits: torch.Tensor, clean_logits: torch.Tensor,
               teacher_clean_logits: torch.Tensor) -> torch.Tensor:
    """RSLAD (Zi et al. 2021): 5/6 KL(T(x) || f(x')) + 1/6 KL(T(x) || f(x)), batchmean, no temperature.

    The authors average their KL over batch AND classes (1/C, and x10 for CIFAR-100): not copied.
    """
    t = teacher_clean_logits.detach()
    return 5 / 6 * kl(t, adv_logits) + 1 / 6 * kl(t, clean_logits)


def kd_at_loss(adv_logits: torch.Tensor, teacher_adv_logits: torch.Tensor, y: torch.Tensor, tau: float = 2.0,
               rho: float = 0.5) -> torch.Tensor:
    """KD-AT-Auto: (1 - rho) CE(f(x'), y) + rho * tau^2 * softCE(f(x') / tau, softmax(T(x') / tau)).

    The robust teacher labels the student's own adversarial input x'; its probabilities carry no gradient.
    """
    target = F.softmax(teacher_adv_logits.detach().float() / tau, dim=1)
    return ((1 - rho) * F.cross_entropy(adv_logits.float(), y)
            + rho * tau**2 * soft_cross_entropy(adv_logits.float() / tau, target))


# --------------------------------------------------------------------------- Cons-AT, RAAT, RAAT++
def cons_at_loss(adv_logits_1: torch.Tensor, adv_logits_2: torch.Tensor, y: torch.Tensor, lam: float = 1.0,
                 tau: float = 0.5) -> torch.Tensor:
    """Cons-AT (Tack et al. 2022): CE over both views' adversarial inputs (mean over 2B)
    + lam * JS_tau(f(x1') || f(x2'))."""
    ce = F.cross_entropy(torch.cat([adv_logits_1, adv_logits_2]).float(), torch.cat([y, y]))
    return ce + lam * js_divergence(adv_logits_1, adv_logits_2, tau)


def raat_partition(clean_pred: torch.Tensor, adv_pred: torch.Tensor, reduced_pred: torch.Tensor,
                   y: torch.Tensor) -> dict[str, torch.Tensor]:
    """RAAT's partition of a batch (boolean masks that cover it exactly once), as the authors code it:

    - misclassified: the clean input is wrong;
    - boundary: the clean input is right, yet both x + delta and the reduced x + eta * delta are wrong;
    - rest (non-boundary): everything else.
    Predictions are eval-mode argmaxes of the current model.
    """
    misclassified = clean_pred != y
    boundary = ~misclassified & (adv_pred != y) & (reduced_pred != y)
    return {"misclassified": misclassified, "boundary": boundary, "rest": ~misclassified & ~boundary}


def dicar_loss(mixed_adv_logits: torch.Tensor, clean_logits_1: torch.Tensor, clean_logits_2: torch.Tensor,
               m: float, tau: float = 0.5) -> torch.Tensor:
    """DICAR (RAAT, Definition 4): JS_tau( f(m x1' + (1-m) x2'), m f(x1) + (1-m) f(x2) ), batchmean.

    As the authors code it, the two clean outputs are interpolated as LOGITS (before the softmax).
    """
    return js_divergence(mixed_adv_logits, m * clean_logits_1 + (1 - m) * clean_logits_2, tau)


# ------------------------------------------------------------------------------------------- DUCAT
def ducat_targets(y: torch.Tensor, num_classes: int, w_benign: float = 0.25,
                  w_adv: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """DUCAT's soft targets over 2C classes: clean (1 - w_benign) onehot(y) + w_benign onehot(y + C),
    adversarial (1 - w_adv) onehot(y) + w_adv onehot(y + C)."""
    own = F.one_hot(y, 2 * num_classes).float()
    dummy = F.one_hot(y + num_classes, 2 * num_classes).float()
    return (1 - w_benign) * own + w_benign * dummy, (1 - w_adv) * own + w_adv * dummy


def ducat_loss(clean_logits: torch.Tensor, adv_logits: torch.Tensor, y: torch.Tensor, num_classes: int,
               w_benign: float = 0.25, w_adv: float = 1.0) -> torch.Tensor:
    """DUCAT's final-phase loss: soft-target CE over the concatenated clean and adversarial batch (mean over 2B)."""
    t_clean, t_adv = ducat_targets(y, num_classes, w_benign, w_adv)
    return soft_cross_entropy(torch.cat([clean_logits, adv_logits]), torch.cat([t_clean, t_adv]))


def recover_logits(logits: torch.Tensor, num_classes: int, how: str = "max") -> torch.Tensor:
    """C-way logits from a 2C-way DUCAT head: class k collects its twins k and k + C.

    "max": max(z_k, z_{k+C}); its argmax is exactly the authors' recovery (argmax over 2C, then k >= C -> k - C).
    "sum": logsumexp(z_k, z_{k+C}); its softmax is p_k + p_{k+C} (the twins' probabilities summed).
    """
    a, b = logits[:, :num_classes], logits[:, num_classes:2 * num_classes]
    if how == "max":
        return torch.maximum(a, b)
    if how == "sum":
        return torch.logaddexp(a, b)
    raise ValueError(f"how must be 'max' or 'sum', got {how!r}")

"""Section 3.2 of the CKTAT paper: why adversarial training may refuse to learn a second feature.

Notation of the paper: a fraction mu of the data is single-view; a learned feature answers its own class
with output Theta(1) = `theta`; an adversarial perturbation aimed at feature j moves the runner-up class by
k_j * S, where S = sum_{j' != j} Theta(k/d) (`mixture_sum`) is the dense-mixture response and k1, k2 in [0, 1]
say how un-purified the two features' weights are.

Eq. 11 gives the change of the robust training error when the adversarially trained model starts to learn
its second feature v_{y,3-j}. Learning it does not pay off (adversarial training "lacks incentive") when

    (1 - mu) * ( e^t / (e^t + e^{k1 S}) - e^{2t} / (e^{2t} + e^{(k1+k2) S}) ) - 0.5 mu * e^t / (e^t + e^{k2 S}) >= 0.

Clean training always gains from the feature (Eq. 12: the clean error falls by 0.5 mu).
"""

from __future__ import annotations

import math


def _share(a: float, b: float) -> float:
    """e^a / (e^a + e^b), computed stably."""
    return 1.0 / (1.0 + math.exp(b - a))


def robust_error_change(mu: float, k1: float, k2: float, theta: float = 1.0, mixture_sum: float = 3.0) -> float:
    """R2_robust - R1_robust of Eq. 11 (per sample): positive means learning the second feature hurts."""
    s = mixture_sum
    multi = (1 - mu) * (_share(theta, k1 * s) - _share(2 * theta, (k1 + k2) * s))
    single = 0.5 * mu * _share(theta, k2 * s)
    return multi - single


def clean_error_change(mu: float) -> float:
    """R2_clean - R1_clean of Eq. 12: learning the feature removes the error on half of the single-view data."""
    return -0.5 * mu


def lacks_incentive(mu: float, k1: float, k2: float, theta: float = 1.0, mixture_sum: float = 3.0) -> bool:
    """The paper's condition under which adversarial training does not learn the second feature."""
    return robust_error_change(mu, k1, k2, theta, mixture_sum) >= 0


def paper_example_as_printed(mu: float = 0.4, k1: float = 0.3, k2: float = 0.8, theta: float = 1.0,
                             mixture_sum: float = 3.0, printed_joint_exponent: float = 2.9) -> float:
    """The numeric example exactly as the paper prints it: 0.6 (e/(e+e^0.9) - e^2/(e^2+e^2.9)) - 0.2 e/(e+e^2.4).

    The paper's second exponent is 2.9, whereas (k1 + k2) * S = 3.3 for its own parameters; this function
    evaluates the printed expression so the book can show both values side by side.
    """
    s = mixture_sum
    multi = (1 - mu) * (_share(theta, k1 * s) - _share(2 * theta, printed_joint_exponent))
    return multi - 0.5 * mu * _share(theta, k2 * s)

"""Power, minimum detectable effect and sample size for a two-proportion test.

Uses Cohen's effect size for proportions, ``h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p2))`` (Cohen 1988,
ch. 6; ``statsmodels`` ``proportion_effectsize``), whose estimate has variance ``1/n`` per arm
whatever the rate, with the normal power function ``NormalIndPower`` (two-sided). For
p = 0.10 vs 0.08 at alpha 0.05 and power 0.8 this gives 3,205 per arm; the textbook formula with
pooled and unpooled variances (Fleiss, Levin & Paik 2003, eq. 4.14 without continuity
correction) gives 3,213.

Effects are magnitudes in rate units (0.02 = two percentage points). ``direction="decrease"``
(churn) means the variant's rate is ``p_control - effect``.
"""

from __future__ import annotations

import math

import numpy as np
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

_POWER = NormalIndPower()


def _check_inputs(p_control: float, direction: str) -> None:
    if direction not in ("decrease", "increase"):
        raise ValueError(f"direction must be 'decrease' or 'increase'; got {direction!r}")
    if not 0 < p_control < 1:
        raise ValueError(f"p_control must lie strictly between 0 and 1; got {p_control!r}")


def shifted_rate(p_control: float, effect: float, direction: str = "decrease") -> float:
    """The variant's rate ``p_control -/+ effect``, validated to stay inside (0, 1)."""
    _check_inputs(p_control, direction)
    p_variant = p_control - effect if direction == "decrease" else p_control + effect
    if not (effect > 0 and 0 < p_variant < 1):
        raise ValueError(f"effect {effect!r} must be positive and keep the variant's rate in (0, 1)")
    return p_variant


def _rate_at_h(p_control: float, h: float, direction: str) -> float:
    """Invert Cohen's h: the variant rate at distance ``h`` from ``p_control``."""
    phi = math.asin(math.sqrt(p_control)) + (-h / 2 if direction == "decrease" else h / 2)
    # Past 0 (or pi/2) no rate is that far away: the detectable rate saturates at 0 (or 1).
    return math.sin(min(max(phi, 0.0), math.pi / 2)) ** 2


def power_at(p_control: float, effect: float, n_c: float, n_v: float, alpha: float = 0.05,
             direction: str = "decrease") -> float:
    """Power of the two-sided test to detect ``effect`` with ``n_c`` and ``n_v`` users."""
    h = abs(proportion_effectsize(p_control, shifted_rate(p_control, effect, direction)))
    return float(_POWER.power(h, nobs1=n_c, alpha=alpha, ratio=n_v / n_c))


def power_analysis(
    p_control: float, n_c: int, n_v: int, alpha: float = 0.05, power: float = 0.8,
    effect: float | None = None, direction: str = "decrease",
) -> dict[str, float | None]:
    """Minimum detectable effect for the sample at hand, and the power to detect ``effect``.

    Returns:
        ``mde_absolute`` (rate units) and ``mde_relative`` (share of ``p_control``) detectable
        with probability ``power``, ``p_variant_at_mde``, and ``power_at_effect`` (None when no
        ``effect`` is given), plus the inputs.
    """
    if min(n_c, n_v) <= 0:
        raise ValueError("power_analysis needs users in both arms")
    _check_inputs(p_control, direction)
    h = _POWER.solve_power(effect_size=None, nobs1=n_c, alpha=alpha, power=power, ratio=n_v / n_c)
    p_at_mde = _rate_at_h(p_control, float(np.squeeze(h)), direction)
    mde = abs(p_at_mde - p_control)
    return {
        "p_control": p_control, "n_control": n_c, "n_variant": n_v, "alpha": alpha,
        "power": power, "mde_absolute": mde, "mde_relative": mde / p_control,
        "p_variant_at_mde": p_at_mde, "effect": effect,
        "power_at_effect": (None if effect is None
                            else power_at(p_control, effect, n_c, n_v, alpha, direction)),
    }


def required_sample_size(
    p_control: float, mde: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0,
    direction: str = "decrease",
) -> tuple[int, int]:
    """Users needed per arm, ``(n_control, n_variant)`` with ``n_variant = ratio * n_control``,
    to detect an absolute change of ``mde`` with the given power (two-sided, rounded up)."""
    h = abs(proportion_effectsize(p_control, shifted_rate(p_control, mde, direction)))
    n_c = _POWER.solve_power(effect_size=h, nobs1=None, alpha=alpha, power=power, ratio=ratio)
    n_c = float(np.squeeze(n_c))
    return math.ceil(n_c), math.ceil(n_c * ratio)

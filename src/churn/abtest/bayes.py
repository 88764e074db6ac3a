"""Bayesian beta-binomial comparison of two churn rates.

Each arm's rate gets a Beta(a, b) prior; after ``churned`` churners out of ``n`` users the posterior is
``Beta(a + churned, b + n - churned)`` (conjugacy). Reported, for a chosen direction of "better":

* ``P(variant better)``: for churn (``lower_is_better=True``) that is ``P(p_v < p_c)``;
* the expected loss of a choice, ``E[max(0, how much worse the chosen arm is)]``, in rate units
  (Chris Stucchio, "Bayesian A/B Testing at VWO", 2015): ship when the loss of shipping is tiny.

Both by Monte Carlo and by one-dimensional numerical integration, the latter as a check on the
former (see :func:`exact_prob_variant_lower` and :func:`exact_loss_variant_higher`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import integrate
from scipy.stats import beta

from churn.abtest.stats import check_counts


@dataclass(frozen=True)
class BayesResult:
    """Posterior parameters and decision quantities (difference = variant - control)."""

    alpha_control: float
    beta_control: float
    alpha_variant: float
    beta_variant: float
    lower_is_better: bool
    prob_variant_better: float
    expected_loss_variant: float
    expected_loss_control: float
    prob_variant_better_exact: float
    expected_loss_variant_exact: float
    expected_loss_control_exact: float
    diff_ci_low: float
    diff_ci_high: float
    draws: int

    def as_dict(self) -> dict[str, float | bool | int]:
        return asdict(self)


def exact_prob_variant_lower(a_c: float, b_c: float, a_v: float, b_v: float) -> float:
    """``P(p_v < p_c) = ∫ F_v(x) f_c(x) dx = ∫_0^1 F_v(Q_c(u)) du`` by adaptive quadrature.

    Substituting ``x = Q_c(u)`` (the control posterior's quantile function) keeps the integrand
    bounded and spreads it over [0, 1] however concentrated the posteriors are.
    """
    value, _ = integrate.quad(lambda u: beta.cdf(beta.ppf(u, a_c, b_c), a_v, b_v), 0, 1,
                              epsabs=1e-10, limit=200)
    return float(value)


def exact_loss_variant_higher(a_c: float, b_c: float, a_v: float, b_v: float) -> float:
    """``E[max(0, p_v - p_c)]`` by quadrature over the control posterior.

    Inner expectation in closed form: ``E[(p_v - x)+] = m_v S_{a_v+1,b_v}(x) - x S_{a_v,b_v}(x)``,
    with ``m_v`` the variant's posterior mean and ``S`` a Beta survival function, because
    ``y f_{a,b}(y) = m f_{a+1,b}(y)``.
    """
    m_v = a_v / (a_v + b_v)

    def inner(u: float) -> float:
        x = beta.ppf(u, a_c, b_c)
        return m_v * beta.sf(x, a_v + 1, b_v) - x * beta.sf(x, a_v, b_v)

    value, _ = integrate.quad(inner, 0, 1, epsabs=1e-12, limit=200)
    return float(value)


def bayesian_beta_binomial(
    churned_c: int, n_c: int, churned_v: int, n_v: int, prior: tuple[float, float] = (1.0, 1.0),
    draws: int = 200_000, seed: int = 0, lower_is_better: bool = True, ci_level: float = 0.95,
) -> BayesResult:
    """Posterior comparison of the two arms' rates (see the module docstring for the formulas).

    Args:
        prior: Beta(a, b) prior shared by both arms; (1, 1) is uniform.
        lower_is_better: True for churn, where the better arm is the one with the lower rate.
        ci_level: level of the equal-tailed credible interval for ``p_v - p_c``.
    """
    check_counts(churned_c, n_c, "control")
    check_counts(churned_v, n_v, "variant")
    a0, b0 = prior
    a_c, b_c = a0 + churned_c, b0 + n_c - churned_c
    a_v, b_v = a0 + churned_v, b0 + n_v - churned_v
    rng = np.random.default_rng(seed)
    diff = rng.beta(a_v, b_v, draws) - rng.beta(a_c, b_c, draws)
    # harm > 0 means the variant is worse in the chosen direction.
    harm = diff if lower_is_better else -diff
    mean_diff = a_v / (a_v + b_v) - a_c / (a_c + b_c)
    p_lower = exact_prob_variant_lower(a_c, b_c, a_v, b_v)
    loss_higher = exact_loss_variant_higher(a_c, b_c, a_v, b_v)
    # (d)+ - (-d)+ = d, so E[(p_c - p_v)+] = E[(p_v - p_c)+] - E[p_v - p_c].
    loss_lower = loss_higher - mean_diff
    tail = (1 - ci_level) / 2
    return BayesResult(
        alpha_control=a_c, beta_control=b_c, alpha_variant=a_v, beta_variant=b_v,
        lower_is_better=lower_is_better,
        prob_variant_better=float(np.mean(harm < 0)),
        expected_loss_variant=float(np.mean(np.maximum(harm, 0))),
        expected_loss_control=float(np.mean(np.maximum(-harm, 0))),
        prob_variant_better_exact=p_lower if lower_is_better else 1 - p_lower,
        expected_loss_variant_exact=loss_higher if lower_is_better else loss_lower,
        expected_loss_control_exact=loss_lower if lower_is_better else loss_higher,
        diff_ci_low=float(np.quantile(diff, tail)), diff_ci_high=float(np.quantile(diff, 1 - tail)),
        draws=draws,
    )

"""A/B testing of a candidate churn model: assignment, statistics, sequential analysis, decision.

Differences are always ``variant - control``; for churn, negative is good.
"""

from churn.abtest.assignment import CONTROL, VARIANT, assign, buckets_of
from churn.abtest.bayes import BayesResult, bayesian_beta_binomial
from churn.abtest.decision import Decision, ExperimentResults, Guardrail, analyse, decide, model_guardrails
from churn.abtest.power import power_analysis, power_at, required_sample_size
from churn.abtest.sequential import SequentialResult, cumulative_counts, msprt, msprt_p_values
from churn.abtest.stats import (
    ProportionTest,
    SRMResult,
    WelchTest,
    pooled_z,
    srm_check,
    two_proportion_test,
    welch_test,
)

__all__ = [
    "CONTROL", "VARIANT", "BayesResult", "Decision", "ExperimentResults", "Guardrail",
    "ProportionTest", "SRMResult", "SequentialResult", "WelchTest", "analyse", "assign",
    "bayesian_beta_binomial", "buckets_of", "cumulative_counts", "decide", "model_guardrails",
    "msprt", "msprt_p_values", "pooled_z", "power_analysis", "power_at", "required_sample_size",
    "srm_check", "two_proportion_test", "welch_test",
]

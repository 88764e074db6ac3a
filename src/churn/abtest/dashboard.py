"""The A/B dashboard's view of one test: arms, posteriors, daily looks, statistics, decision."""

# IPython's display functions are untyped.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from churn.abtest.manager import ABTestManager
from churn.abtest.plots import arms_figure, looks_figure
from churn.registry import ModelRegistry
from churn.store import abtests
from churn.store.warehouse import Warehouse


def statistics_table(results: dict[str, Any]) -> pd.Series[str]:
    """Each statistic named for what it is, with its interval or verdict."""
    return pd.Series({
        "30-day churn rate, control / variant":
            f"{results['control']['churn_rate']:.2%} / {results['variant']['churn_rate']:.2%}",
        "difference in churn rate (variant - control), 95% CI":
            f"{results['difference']:+.2%} [{results['ci'][0]:+.2%}, {results['ci'][1]:+.2%}]",
        f"{results.get('p_value_test', 'two-proportion test')} p-value": f"{results['p_value']:.4f}",
        "sequential (mSPRT) always-valid p-value": f"{results['sequential_p_value']:.4f}",
        "P(variant churns less), Beta posteriors":
            f"{results['probability_test']['prob_variant_better']:.3f} (winner: {results['probability_test']['winner']})",
        "per-user log loss, Welch's t p-value": f"{results['log_loss']['p_value']:.4f}",
        "sample ratio mismatch, chi-squared p-value":
            f"{results['srm']['p_value']:.4f} ({'MISMATCH' if results['srm']['mismatch'] else 'ok'})",
        "power at the planned effect / minimum detectable effect":
            f"{results['power']['power_at_effect']:.0%} / {results['power']['mde_absolute']:.2%} (absolute)",
    }, name="value")  # fmt: skip


def show_test(
    manager: ABTestManager, warehouse: Warehouse, registry: ModelRegistry, model_name: str, test_name: str
) -> None:
    """Everything about ``test_name``: figure, statistics, decision with its reasons, registry events."""
    analysis = manager.analysis(test_name)
    if analysis and analysis[1] is not None and analysis[1].sequential is not None and analysis[3] is not None:
        results = manager.get_test_results(test_name, analysis)
        _, experiment, _, daily = analysis
        assert experiment is not None and experiment.sequential is not None and daily is not None  # checked above
        arms_figure(results, daily, experiment.sequential.p_value, float(experiment.fixed.alpha))
        plt.show()
        display(statistics_table(results).to_frame())
    else:
        display(Markdown(f"`{test_name}` has no outcomes yet."))
    test = abtests.get_test(warehouse, test_name)
    looks = abtests.read_looks(warehouse, test_name)
    if test and len(looks):
        display(Markdown(f"### Looks, one per daily cycle ({len(looks)} of at most {test['params'].get('max_days')})"))
        looks_figure(looks, float(test["params"].get("alpha", 0.05)))
        plt.show()
        columns = ["look", "as_of", "test_day", "n_control", "conv_control", "n_variant", "conv_variant",
                   "difference", "likelihood_ratio", "p_value", "decision"]  # fmt: skip
        display(looks[columns].round(dict.fromkeys(["difference", "likelihood_ratio", "p_value"], 4)).set_index("look"))
    if test:
        display(
            Markdown(
                f"### Decision: {test['decision'] or 'pending'}\n\n" + "\n".join(f"- {r}" for r in test["reasons"])
            )
        )
        display(registry.list_events(model_name).tail(8))
